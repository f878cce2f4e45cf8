#include "control/apiserver/node_proxy.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <limits>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "control/apiserver/errors.h"

namespace skiff::apiserver {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string bracketList(const std::vector<std::string>& names) {
  std::string out = "[";
  for (size_t i = 0; i < names.size(); ++i)
    out += (i ? " " : "") + names[i];
  return out + "]";
}

std::string percentEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// The container the request names, or the pod's only container; Kubernetes' errors otherwise.
std::string containerFor(const api::core::v1::Pod& pod, const HttpRequest& request) {
  std::vector<std::string> names, init_names;
  for (const auto& c : pod.spec().containers())
    names.push_back(c.name());
  for (const auto& c : pod.spec().init_containers())
    init_names.push_back(c.name());
  auto it = request.query.find("container");
  const std::string name = it == request.query.end() ? "" : it->second;
  if (name.empty()) {
    if (names.size() == 1) return names[0];
    std::string message = "a container name must be specified for pod " + pod.metadata().name() +
                          ", choose one of: " + bracketList(names);
    if (!init_names.empty())
      message += " or one of the init containers: " + bracketList(init_names);
    throw badRequest(message);
  }
  for (const auto* list : {&names, &init_names})
    for (const auto& n : *list)
      if (n == name) return name;
  throw badRequest("container " + name + " is not valid for pod " + pod.metadata().name());
}

// Sends the request on `stream` and copies the answer: the body streamed as it arrives when the
// kubelet says 200, else an ApiError with the kubelet's status and text.
template <typename Stream>
void exchange(Stream& stream, const http::request<http::empty_body>& req,
              const std::function<ResponseStream&(const HttpResponse&)>& start_stream,
              const std::string& where) {
  beast::error_code ec;
  http::write(stream, req, ec);
  if (ec) throw ApiError(503, "ServiceUnavailable", "kubelet " + where + ": " + ec.message());
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  http::read_header(stream, buffer, parser, ec);
  if (ec) throw ApiError(503, "ServiceUnavailable", "kubelet " + where + ": " + ec.message());
  const int status = static_cast<int>(parser.get().result_int());
  char chunk[16 * 1024];
  if (status != 200) {
    std::string text;
    while (!parser.is_done()) {
      parser.get().body().data = chunk;
      parser.get().body().size = sizeof chunk;
      http::read(stream, buffer, parser, ec);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) break;
      text.append(chunk, sizeof chunk - parser.get().body().size);
      if (text.size() > 64 * 1024) break;
    }
    while (!text.empty() && text.back() == '\n')
      text.pop_back();
    const std::string reason = status == 404   ? "NotFound"
                               : status == 400 ? "BadRequest"
                               : status == 401 ? "Unauthorized"
                               : status == 403 ? "Forbidden"
                                               : "InternalError";
    throw ApiError(status == 401 ? 500 : status, reason, text);
  }
  HttpResponse head;
  head.content_type = "text/plain";
  ResponseStream& out = start_stream(head);
  while (!parser.is_done()) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof chunk;
    http::read(stream, buffer, parser, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return;  // the kubelet went away: end the client's stream too
    const size_t got = sizeof chunk - parser.get().body().size;
    if (got > 0 && !out.write(std::string_view(chunk, got))) return;
  }
}

struct KubeletAddress {
  std::string address;
  uint16_t port = 0;
  std::string where;  // address:port, for messages
};

KubeletAddress kubeletOf(const api::core::v1::Pod& pod,
                         const std::function<api::core::v1::Node(const std::string&)>& getNode) {
  if (pod.spec().node_name().empty())
    throw badRequest("pod " + pod.metadata().name() + " does not have a host assigned");
  const api::core::v1::Node node = getNode(pod.spec().node_name());
  KubeletAddress out;
  for (const auto& a : node.status().addresses())
    if (a.type() == "InternalIP") {
      out.address = a.address();
      break;
    }
  const int port = node.status().daemon_endpoints().kubelet_endpoint().port();
  if (out.address.empty() || port <= 0 || port > 65535)
    throw badRequest("node " + node.metadata().name() +
                     " reports no InternalIP or kubelet port (status.daemonEndpoints)");
  beast::error_code ec;
  asio::ip::make_address(out.address, ec);
  if (ec) throw badRequest("node " + node.metadata().name() + ": bad InternalIP " + out.address);
  out.port = static_cast<uint16_t>(port);
  out.where = out.address + ":" + std::to_string(port);
  return out;
}

// TLS to a kubelet: its serving certificate verified against the CA (and its address), our
// client certificate presented.
void setUpKubeletTls(asio::ssl::context& ctx, const std::string& address,
                     const NodeProxyOptions& options) {
  beast::error_code ec;
  ctx.set_verify_mode(asio::ssl::verify_peer);
  if (options.kubelet_ca_file.empty()) {
    ctx.set_default_verify_paths();
  } else {
    ctx.load_verify_file(options.kubelet_ca_file, ec);
    if (ec)
      throw ApiError(500, "InternalError",
                     "kubelet CA " + options.kubelet_ca_file + ": " + ec.message());
  }
  if (!options.kubelet_client_cert_file.empty()) {
    ctx.use_certificate_chain_file(options.kubelet_client_cert_file, ec);
    if (!ec) ctx.use_private_key_file(options.kubelet_client_key_file, asio::ssl::context::pem, ec);
    if (ec)
      throw ApiError(
          500, "InternalError",
          "kubelet client certificate " + options.kubelet_client_cert_file + ": " + ec.message());
  }
  ctx.set_verify_callback(asio::ssl::host_name_verification(address));
}

// A connection to a kubelet, TLS verified against the cluster CA unless options say plain HTTP;
// its own io_context, so an upgraded exec stream can run it.
struct KubeletConnection {
  asio::io_context io;
  tcp::socket socket{io};
  std::optional<asio::ssl::context> ctx;
  std::optional<asio::ssl::stream<tcp::socket&>> tls;

  void open(const KubeletAddress& kubelet, const NodeProxyOptions& options) {
    beast::error_code ec;
    socket.connect(tcp::endpoint(asio::ip::make_address(kubelet.address), kubelet.port), ec);
    if (ec)
      throw ApiError(503, "ServiceUnavailable", "kubelet " + kubelet.where + ": " + ec.message());
    if (!options.kubelet_tls) return;
    ctx.emplace(asio::ssl::context::tls_client);
    setUpKubeletTls(*ctx, kubelet.address, options);
    tls.emplace(socket, *ctx);
    tls->handshake(asio::ssl::stream_base::client, ec);
    if (ec)
      throw ApiError(503, "ServiceUnavailable",
                     "kubelet " + kubelet.where + " TLS: " + ec.message());
  }
};

// The kubelet's non-101 answer as the ApiError kube-apiserver would give.
[[noreturn]] void throwKubeletError(int status, std::string text) {
  while (!text.empty() && text.back() == '\n')
    text.pop_back();
  const std::string reason = status == 404   ? "NotFound"
                             : status == 400 ? "BadRequest"
                             : status == 401 ? "Unauthorized"
                             : status == 403 ? "Forbidden"
                                             : "InternalError";
  throw ApiError(status == 401 ? 500 : status, reason, text);
}

// Sends the upgrade request and reads the kubelet's head; returns it with the bytes read past it.
template <typename Stream>
std::pair<http::response<http::string_body>, std::string> upgradeExchange(
    Stream& stream, const http::request<http::empty_body>& req, const std::string& where) {
  beast::error_code ec;
  http::write(stream, req, ec);
  if (ec) throw ApiError(503, "ServiceUnavailable", "kubelet " + where + ": " + ec.message());
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024);
  http::read(stream, buffer, parser, ec);  // a 101 has no body: done after the head
  if (ec && !parser.is_header_done())
    throw ApiError(503, "ServiceUnavailable", "kubelet " + where + ": " + ec.message());
  return {parser.release(), beast::buffers_to_string(buffer.data())};
}

// Copies bytes from one stream to the other until either ends, then closes both.
void pipeBytes(ByteStream& from, ByteStream& to) {
  char buf[32 * 1024];
  while (true) {
    const size_t n = from.read(buf, sizeof buf);
    if (n == 0 || !to.write(std::string_view(buf, n))) break;
  }
  from.close();
  to.close();
}

}  // namespace

void proxyPodExec(const api::core::v1::Pod& pod,
                  const std::function<api::core::v1::Node(const std::string&)>& getNode,
                  const HttpRequest& request, HttpResponse& response,
                  const NodeProxyOptions& options) {
  const std::string container = containerFor(pod, request);
  const std::string& phase = pod.status().phase();
  if (phase == "Succeeded" || phase == "Failed")
    throw badRequest("cannot exec into a container in a completed pod; current phase is " + phase);
  std::string target = "/exec/" + percentEncode(pod.metadata().namespace_()) + "/" +
                       percentEncode(pod.metadata().name()) + "/" + percentEncode(container);
  char sep = '?';
  bool any_command = false;
  for (auto [it, end] = request.query.equal_range("command"); it != end; ++it) {
    target += sep + std::string("command=") + percentEncode(it->second);
    sep = '&';
    any_command = true;
  }
  if (!any_command) throw badRequest("you must specify at least 1 command");
  for (const char* name : {"stdin", "stdout", "stderr", "tty"}) {
    auto it = request.query.find(name);
    if (it == request.query.end()) continue;
    target += sep + std::string(name) + "=" + percentEncode(it->second);
    sep = '&';
  }
  const KubeletAddress kubelet = kubeletOf(pod, getNode);
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, kubelet.where);
  req.set(http::field::user_agent, "skiff-apiserver");
  // The client's handshake goes through unchanged, so the kubelet's Sec-WebSocket-Accept
  // answers the client's key; extensions (compression) are not offered to the kubelet.
  for (const char* name : {"upgrade", "connection", "sec-websocket-key", "sec-websocket-version",
                           "sec-websocket-protocol"}) {
    const std::string_view value = request.header(name);
    if (!value.empty()) req.set(beast::string_view(name), std::string(value));
  }

  auto connection = std::make_shared<KubeletConnection>();
  connection->open(kubelet, options);
  auto [head, pending] = connection->tls ? upgradeExchange(*connection->tls, req, kubelet.where)
                                         : upgradeExchange(connection->socket, req, kubelet.where);
  const int status = static_cast<int>(head.result_int());
  if (status != 101) throwKubeletError(status, head.body());

  response.status = 101;
  response.content_type.clear();
  response.headers.clear();
  for (const char* name :
       {"upgrade", "connection", "sec-websocket-accept", "sec-websocket-protocol"}) {
    const auto it = head.find(name);
    if (it != head.end()) response.headers.emplace_back(name, std::string(it->value()));
  }
  auto shared_pending = std::make_shared<std::string>(std::move(pending));
  response.upgrade = [connection, shared_pending](ByteStream& client) {
    auto run = [&](auto& stream) {
      AsioByteStream kubelet_side(stream, connection->socket, connection->io,
                                  std::move(*shared_pending));
      std::thread up([&] { pipeBytes(client, kubelet_side); });
      pipeBytes(kubelet_side, client);
      up.join();
    };
    if (connection->tls)
      run(*connection->tls);
    else
      run(connection->socket);
  };
}

void proxyPodLog(const api::core::v1::Pod& pod,
                 const std::function<api::core::v1::Node(const std::string&)>& getNode,
                 const HttpRequest& request,
                 const std::function<ResponseStream&(const HttpResponse&)>& start_stream,
                 const NodeProxyOptions& options) {
  const std::string container = containerFor(pod, request);
  if (pod.spec().node_name().empty())
    throw badRequest("pod " + pod.metadata().name() + " does not have a host assigned");
  const api::core::v1::Node node = getNode(pod.spec().node_name());
  std::string address;
  for (const auto& a : node.status().addresses())
    if (a.type() == "InternalIP") {
      address = a.address();
      break;
    }
  const int port = node.status().daemon_endpoints().kubelet_endpoint().port();
  if (address.empty() || port <= 0)
    throw badRequest("node " + node.metadata().name() +
                     " reports no InternalIP or kubelet port (status.daemonEndpoints)");

  std::string target = "/containerLogs/" + percentEncode(pod.metadata().namespace_()) + "/" +
                       percentEncode(pod.metadata().name()) + "/" + percentEncode(container);
  char sep = '?';
  for (const char* name :
       {"follow", "tailLines", "timestamps", "previous", "sinceSeconds", "limitBytes"}) {
    auto it = request.query.find(name);
    if (it == request.query.end()) continue;
    target += sep + std::string(name) + "=" + percentEncode(it->second);
    sep = '&';
  }
  const std::string where = address + ":" + std::to_string(port);
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, where);
  req.set(http::field::user_agent, "skiff-apiserver");

  asio::io_context io;
  tcp::socket socket(io);
  beast::error_code ec;
  const auto ip = asio::ip::make_address(address, ec);
  if (ec) throw badRequest("node " + node.metadata().name() + ": bad InternalIP " + address);
  socket.connect(tcp::endpoint(ip, static_cast<uint16_t>(port)), ec);
  if (ec) throw ApiError(503, "ServiceUnavailable", "kubelet " + where + ": " + ec.message());
  if (!options.kubelet_tls) return exchange(socket, req, start_stream, where);

  asio::ssl::context ctx(asio::ssl::context::tls_client);
  setUpKubeletTls(ctx, address, options);
  asio::ssl::stream<tcp::socket> tls(std::move(socket), ctx);
  tls.handshake(asio::ssl::stream_base::client, ec);
  if (ec) throw ApiError(503, "ServiceUnavailable", "kubelet " + where + " TLS: " + ec.message());
  exchange(tls, req, start_stream, where);
}

}  // namespace skiff::apiserver
