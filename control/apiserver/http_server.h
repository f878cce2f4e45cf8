#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "control/apiserver/request_info.h"
#include "control/apiserver/upgraded_stream.h"

namespace skiff::apiserver {

struct HttpRequest {
  std::string method;
  std::string target;  // as sent: path and query
  std::string path;    // decoded by parseRequestInfo, raw here
  QueryParams query;
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
  std::string body;
  std::string remote_address;
  // The client's certificate (PEM) when it presented one that chains to the client CA.
  std::string client_certificate;

  // The first header with this (lower-case) name, or "".
  std::string_view header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // With status 101: the server sends the head (no body), then hands the connection to this
  // function, and closes it when the function returns (exec's WebSocket streams).
  std::function<void(ByteStream&)> upgrade;
};

// A response sent as it is produced (chunked), for watches and log follows.
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  // Sends one chunk; false once the client has gone (the handler should stop).
  virtual bool write(std::string_view chunk) = 0;
  // False once the client has closed the connection or the server is stopping: a handler that
  // waits between writes checks it, so idle streams do not outlive their clients.
  virtual bool alive() = 0;
};

// Handles one request. It either fills `response`, or calls `startStream` once (with the status
// and headers) and writes chunks to the returned stream until it is done; the connection closes
// when a streamed response ends. Called on the connection's own thread: it may block.
using HttpHandler =
    std::function<void(const HttpRequest& request, HttpResponse& response,
                       const std::function<ResponseStream&(const HttpResponse&)>& startStream)>;

struct HttpServerOptions {
  std::string bind_address = "127.0.0.1";
  uint16_t port = 0;  // 0: any free port (see HttpServer::port())
  // PEM files; both empty means plain HTTP, which the server allows only on loopback addresses.
  std::string cert_file;
  std::string key_file;
  // With TLS: clients may present a certificate, which must chain to this CA (PEM file). It stays
  // optional, so bearer-token clients are served too. Empty: no client certificates asked for.
  std::string client_ca_file;
  size_t max_body_bytes = 3 * 1024 * 1024;  // larger bodies get 413, as kube-apiserver
  size_t max_connections = 4096;
  int idle_timeout_seconds = 120;  // an idle keep-alive connection is closed after this
  // Bind even when bind_address is on no interface yet (IP_FREEBIND): connections arrive once an
  // interface gets it (skiff up's apiserver on the pod bridge the agent makes later).
  bool free_bind = false;
};

// An HTTP/1.1 server with keep-alive and TLS, one thread per connection (the store's calls block,
// and group commit needs concurrent writers), bounded by max_connections.
class HttpServer {
 public:
  HttpServer(HttpServerOptions options, HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts accepting; throws std::runtime_error with the address on failure.
  void start();
  // Stops accepting, closes every connection and waits for their threads.
  void stop();
  uint16_t port() const { return port_; }
  bool tls() const;
  // With TLS: connections from now on present this certificate (PEM, chain after the leaf) and key
  // instead of cert_file's (the kubelet's rotated serving certificate); open ones keep theirs.
  // Throws std::runtime_error when they do not parse or do not match; the old pair stays then.
  void setCertificate(const std::string& cert_pem, const std::string& key_pem);
  size_t openConnections() const { return open_connections_.load(); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
  std::atomic<size_t> open_connections_{0};
};

}  // namespace skiff::apiserver
