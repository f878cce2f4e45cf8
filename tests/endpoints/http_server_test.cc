#include "endpoints/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "tests/endpoints/http_get.h"

namespace skiff::endpoints {
namespace {

using testing::httpGet;
using testing::httpRequest;

TEST(ParseHostPort, AcceptsWhatKubeProxyFlagsTake) {
  struct Case {
    std::string text;
    std::string host;  // empty: an error containing `error`
    uint16_t port = 0;
    std::string error;
  };
  const Case cases[] = {
      {"127.0.0.1:10249", "127.0.0.1", 10249, ""},
      {"0.0.0.0:0", "0.0.0.0", 0, ""},
      {"[::1]:10256", "::1", 10256, ""},
      {"[::]:80", "::", 80, ""},
      {"127.0.0.1", "", 0, "no port"},
      {"::1:80", "", 0, "in brackets"},
      {":10249", "", 0, "no host"},
      {"127.0.0.1:65536", "", 0, "not a number from 0 to 65535"},
      {"127.0.0.1:x", "", 0, "not a number"},
      {"127.0.0.1:", "", 0, "not a number"},
      {"localhost:80", "", 0, "\"localhost\" is not an IP address"},
  };
  for (const auto& c : cases) {
    auto got = parseHostPort(c.text);
    if (c.host.empty()) {
      ASSERT_FALSE(got.ok()) << c.text;
      EXPECT_NE(got.message().find(c.error), std::string::npos) << c.text << ": " << got.message();
      EXPECT_NE(got.message().find("\"" + c.text + "\""), std::string::npos) << got.message();
    } else {
      ASSERT_TRUE(got.ok()) << c.text << ": " << got.message();
      EXPECT_EQ(got->first, c.host);
      EXPECT_EQ(got->second, c.port);
    }
  }
}

TEST(HttpListeners, ServesRoutesAndRefusesOtherMethods) {
  HttpListeners listeners;
  std::string seenPath;
  auto port = listeners.listen("a", "127.0.0.1", 0, [&](std::string_view, std::string_view path) {
    seenPath = std::string(path);
    HttpReply r;
    r.body = path == "/x" ? "hello\n" : "";
    r.status = path == "/x" ? 200 : 404;
    r.headers.emplace_back("X-Test", "1");
    return r;
  });
  ASSERT_TRUE(port.ok()) << port.message();
  ASSERT_NE(*port, 0);
  EXPECT_EQ(listeners.size(), 1u);

  auto ok = httpGet(*port, "/x?verbose=1");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "hello\n");
  EXPECT_EQ(seenPath, "/x");  // without the query
  EXPECT_NE(ok.head.find("Content-Length: 6\r\n"), std::string::npos) << ok.head;
  EXPECT_NE(ok.head.find("X-Test: 1"), std::string::npos);
  EXPECT_EQ(httpGet(*port, "/y").status, 404);
  auto head = httpGet(*port, "/x", "HEAD");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  EXPECT_NE(head.head.find("Content-Length: 6\r\n"), std::string::npos);
  auto post = httpGet(*port, "/x", "POST");
  EXPECT_EQ(post.status, 405);
  EXPECT_NE(post.head.find("Allow: GET, HEAD"), std::string::npos);
  EXPECT_EQ(httpRequest(*port, "garbage\r\n\r\n").status, 400);
  EXPECT_EQ(
      httpRequest(*port, "GET /x HTTP/1.1\r\nX: " + std::string(9000, 'a') + "\r\n\r\n").status,
      431);

  // A second listener on the same port fails with the address in the message.
  auto clash = listeners.listen("b", "127.0.0.1", *port,
                                [](std::string_view, std::string_view) { return HttpReply{}; });
  ASSERT_FALSE(clash.ok());
  EXPECT_NE(clash.message().find("127.0.0.1:" + std::to_string(*port)), std::string::npos)
      << clash.message();
  EXPECT_NE(clash.message().find("in use"), std::string::npos) << clash.message();

  // Closed: the port is free again when close() returns.
  listeners.close("a");
  EXPECT_EQ(listeners.size(), 0u);
  EXPECT_EQ(httpGet(*port, "/x").status, 0);
  auto again = listeners.listen("a", "127.0.0.1", *port, [](std::string_view, std::string_view) {
    return HttpReply{.status = 200, .body = "again"};
  });
  ASSERT_TRUE(again.ok()) << again.message();
  EXPECT_EQ(httpGet(*port, "/").body, "again");
  listeners.stop();
  EXPECT_EQ(httpGet(*port, "/").status, 0);
}

TEST(HttpListeners, AStalledClientDoesNotBlockOthers) {
  HttpListeners listeners;
  auto port = listeners.listen("a", "127.0.0.1", 0, [](std::string_view, std::string_view) {
    return HttpReply{.body = "ok"};
  });
  ASSERT_TRUE(port.ok());
  // A client that connects and sends half a request.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(*port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_GT(::send(fd, "GET / HT", 8, 0), 0);
  EXPECT_EQ(httpGet(*port, "/").body, "ok");
  ::close(fd);
}

}  // namespace
}  // namespace skiff::endpoints
