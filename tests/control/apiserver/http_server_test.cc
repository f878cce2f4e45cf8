#include "control/apiserver/http_server.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "control/apiserver/errors.h"

namespace skiff::apiserver {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// Echoes what it was asked; /stream answers in three chunks; /fail throws a Kubernetes error.
void echo(const HttpRequest& req, HttpResponse& res,
          const std::function<ResponseStream&(const HttpResponse&)>& start_stream) {
  if (req.path == "/stream") {
    ResponseStream& s = start_stream(HttpResponse{200, "application/json", {}, ""});
    for (int i = 0; i < 3; ++i)
      s.write("{\"n\":" + std::to_string(i) + "}\n");
    return;
  }
  if (req.path == "/fail") throw notFound({"", "pods"}, "x");
  if (req.path == "/crash") throw std::runtime_error("boom");
  auto q = req.query.find("q");
  res.body = req.method + " " + req.path + " q=" + (q == req.query.end() ? "" : q->second) +
             " ct=" + std::string(req.header("content-type")) + " body=" + req.body;
  res.content_type = "text/plain";
}

class Client {
 public:
  explicit Client(uint16_t port) : socket_(io_) {
    socket_.connect({asio::ip::make_address("127.0.0.1"), port});
  }

  http::response<http::string_body> send(http::verb method, const std::string& target,
                                         const std::string& body = "", bool keep_alive = true) {
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "localhost");
    req.set(http::field::content_type, "application/json");
    req.keep_alive(keep_alive);
    req.body() = body;
    req.prepare_payload();
    http::write(socket_, req);
    http::response<http::string_body> res;
    http::read(socket_, buffer_, res);
    return res;
  }
  tcp::socket& socket() { return socket_; }

 private:
  asio::io_context io_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

TEST(HttpServer, ServesKeepAliveRequests) {
  HttpServer server({.max_body_bytes = 1024}, echo);
  server.start();
  Client client(server.port());
  auto r1 = client.send(http::verb::post, "/a/b?q=x%20y", "hello");
  EXPECT_EQ(r1.result_int(), 200);
  EXPECT_EQ(r1.body(), "POST /a/b q=x y ct=application/json body=hello");
  auto r2 = client.send(http::verb::get, "/c");  // same connection
  EXPECT_EQ(r2.body(), "GET /c q= ct=application/json body=");
  EXPECT_EQ(server.openConnections(), 1u);
}

TEST(HttpServer, OversizedBodiesGet413WithAStatus) {
  HttpServer server({.max_body_bytes = 1024}, echo);
  server.start();
  Client client(server.port());
  auto r = client.send(http::verb::post, "/x", std::string(2048, 'a'));
  EXPECT_EQ(r.result_int(), 413);
  EXPECT_NE(r.body().find("\"reason\":\"RequestEntityTooLarge\""), std::string::npos);
  EXPECT_NE(r.body().find("limit is 1024"), std::string::npos);
}

TEST(HttpServer, HandlerErrorsBecomeStatusObjects) {
  HttpServer server({}, echo);
  server.start();
  Client client(server.port());
  auto r = client.send(http::verb::get, "/fail");
  EXPECT_EQ(r.result_int(), 404);
  EXPECT_NE(r.body().find("\"message\":\"pods \\\"x\\\" not found\""), std::string::npos);
  auto crash = client.send(http::verb::get, "/crash");
  EXPECT_EQ(crash.result_int(), 500);
  EXPECT_NE(crash.body().find("Internal error occurred: boom"), std::string::npos);
  EXPECT_EQ(client.send(http::verb::get, "/ok").result_int(), 200);  // still serving
}

TEST(HttpServer, MalformedRequestsGet400AndTheServerStaysUp) {
  HttpServer server({}, echo);
  server.start();
  {
    Client bad(server.port());
    std::string garbage = "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n";
    asio::write(bad.socket(), asio::buffer(garbage));
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(bad.socket(), buffer, res);
    EXPECT_EQ(res.result_int(), 400);
  }
  Client good(server.port());
  EXPECT_EQ(good.send(http::verb::get, "/still").result_int(), 200);
}

TEST(HttpServer, StreamsChunkedResponses) {
  HttpServer server({}, echo);
  server.start();
  Client client(server.port());
  auto r = client.send(http::verb::get, "/stream");
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_TRUE(r.chunked());
  EXPECT_EQ(r.body(), "{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n");
}

TEST(HttpServer, IdleStreamsEndWhenTheClientLeavesOrTheServerStops) {
  HttpServer server({}, echo);
  server.start();
  {
    Client leaving(server.port());
    http::request<http::string_body> req{http::verb::get, "/idle-stream", 11};
    req.set(http::field::host, "localhost");
    http::write(leaving.socket(), req);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(server.openConnections(), 1u);
  }  // the client closes its socket
  for (int i = 0; i < 100 && server.openConnections() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(server.openConnections(), 0u);

  Client staying(server.port());
  http::request<http::string_body> req{http::verb::get, "/idle-stream", 11};
  req.set(http::field::host, "localhost");
  http::write(staying.socket(), req);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto t0 = std::chrono::steady_clock::now();
  server.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
}

TEST(HttpServer, PlainHttpOnlyOnLoopback) {
  HttpServer server({.bind_address = "0.0.0.0"}, echo);
  EXPECT_THROW(server.start(), std::runtime_error);
  HttpServer bad_address({.bind_address = "not-an-ip"}, echo);
  EXPECT_THROW(bad_address.start(), std::runtime_error);
}

TEST(HttpServer, StopClosesIdleConnectionsPromptly) {
  auto server = std::make_unique<HttpServer>(HttpServerOptions{}, echo);
  server->start();
  Client idle(server->port());
  EXPECT_EQ(idle.send(http::verb::get, "/x").result_int(), 200);
  auto t0 = std::chrono::steady_clock::now();
  server->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_EQ(server->openConnections(), 0u);
}

TEST(HttpServer, ServesTls) {
  auto dir = std::filesystem::temp_directory_path() / ("skiff-tls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string cert = (dir / "tls.crt").string(), key = (dir / "tls.key").string();
  std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
      "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -keyout " +
      key + " -out " + cert + " 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl could not make a test certificate";
  HttpServer server({.cert_file = cert, .key_file = key}, echo);
  server.start();
  EXPECT_TRUE(server.tls());

  asio::io_context io;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.load_verify_file(cert);
  ctx.set_verify_mode(asio::ssl::verify_peer);
  asio::ssl::stream<tcp::socket> stream(io, ctx);
  stream.next_layer().connect({asio::ip::make_address("127.0.0.1"), server.port()});
  stream.handshake(asio::ssl::stream_base::client);
  http::request<http::string_body> req{http::verb::get, "/secure?q=1", 11};
  req.set(http::field::host, "localhost");
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res);
  EXPECT_EQ(res.body(), "GET /secure q=1 ct= body=");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace skiff::apiserver
