#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "control/apiserver/api_handler.h"
#include "control/apiserver/http_server.h"
#include "control/store/store.h"

namespace skiff::apiserver {

struct ApiServerOptions {
  std::string data_dir;  // the store (and, with TLS, pki/) live here
  std::string bind_address = "127.0.0.1";
  uint16_t port = 6443;
  // PEM files for HTTPS; empty serves plain HTTP, which is allowed on loopback only.
  std::string cert_file;
  std::string key_file;
  bool fsync = true;  // off only for tests
};

// The apiserver as a process runs it: the embedded store in data_dir, the REST handler, and the
// HTTP(S) server in front of them.
class ApiServer {
 public:
  explicit ApiServer(ApiServerOptions options);
  ~ApiServer();

  // Opens the store, makes the system namespaces and starts serving. Throws with a clear message
  // (a busy port, an unreadable data directory, a corrupt database).
  void start();
  void stop();
  uint16_t port() const;
  std::string url() const;

 private:
  ApiServerOptions options_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<ApiHandler> handler_;
  std::unique_ptr<HttpServer> http_;
};

}  // namespace skiff::apiserver
