#pragma once

// A small HTTP/1.1 server (Boost.Asio) for what the node proxier serves, as kube-proxy serves it:
// /metrics, /healthz and /livez, and one health-check node port per Service with
// externalTrafficPolicy Local. Plain HTTP on any address (load balancers probe the node's
// addresses), GET and HEAD only, one request per connection, a few KiB of headers at most, and a
// client that stalls is cut off after 5 s.
//
// One thread serves every listener; handlers run on it and must not block. listen() and close()
// may be called from any other thread.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dataplane/status.h"

namespace skiff::endpoints {

struct HttpReply {
  int status = 200;
  std::string contentType = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// Called with the method ("GET" or "HEAD") and the path (without the query).
using HttpRoute = std::function<HttpReply(std::string_view method, std::string_view path)>;

// "127.0.0.1:10249", "[::1]:10249", "0.0.0.0:0" -> host and port. The error names the input.
dataplane::Result<std::pair<std::string, uint16_t>> parseHostPort(std::string_view text);

class HttpListeners {
 public:
  HttpListeners();
  // stop().
  ~HttpListeners();
  HttpListeners(const HttpListeners&) = delete;
  HttpListeners& operator=(const HttpListeners&) = delete;

  // Listens on `address`:`port` (0: any free port) under `name` (replacing a listener of that
  // name) and returns the bound port, or why it could not bind ("127.0.0.1:80: Permission
  // denied").
  dataplane::Result<uint16_t> listen(const std::string& name, const std::string& address,
                                     uint16_t port, HttpRoute route);
  // Stops listening under `name` (the port is free again when this returns); no-op if unknown.
  void close(const std::string& name);
  size_t size() const;
  // Closes every listener and connection and joins the thread.
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace skiff::endpoints
