#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "control/apiserver/http_server.h"

namespace skiff::kubelet {

struct KubeletServerOptions {
  std::string bind_address = "0.0.0.0";
  uint16_t port = 10250;  // 0: any free port (see KubeletServer::port())
  std::string log_dir = "/var/log/pods";
  // PEM serving certificate and key; both empty means plain HTTP, allowed only on loopback.
  std::string cert_file;
  std::string key_file;
  // Requests must carry `Authorization: Bearer <token>`: the agent's kubeconfig token, which the
  // apiserver presents when it proxies pods/log. Empty refuses to start: the API is never open.
  std::string bearer_token;
};

// The kubelet's HTTPS API (the part `kubectl logs` needs):
//   GET /containerLogs/{ns}/{pod}/{container}?follow=&tailLines=&timestamps=&previous=
//       &sinceSeconds=&limitBytes=
//   GET /healthz
class KubeletServer {
 public:
  explicit KubeletServer(KubeletServerOptions options);
  ~KubeletServer();
  KubeletServer(const KubeletServer&) = delete;
  KubeletServer& operator=(const KubeletServer&) = delete;

  // Binds and serves; throws std::runtime_error naming the address or the missing token.
  void start();
  void stop();
  uint16_t port() const;

  // The handler alone, for tests without sockets.
  void handle(const apiserver::HttpRequest& request, apiserver::HttpResponse& response,
              const std::function<apiserver::ResponseStream&(const apiserver::HttpResponse&)>&
                  start_stream) const;

 private:
  KubeletServerOptions options_;
  std::unique_ptr<apiserver::HttpServer> server_;
};

}  // namespace skiff::kubelet
