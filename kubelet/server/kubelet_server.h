#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "control/apiserver/http_server.h"
#include "kubelet/runtime/runtime.h"

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
  // Runs exec's commands; the pod's containers are found by their ids ("<uid>_<name>_<n>", the
  // uid from the pod's log directory). Null: exec answers 501.
  ContainerRuntime* runtime = nullptr;
};

// The kubelet's HTTPS API (the part `kubectl logs` and `kubectl exec` need):
//   GET /containerLogs/{ns}/{pod}/{container}?follow=&tailLines=&timestamps=&previous=
//       &sinceSeconds=&limitBytes=
//   GET|POST /exec/{ns}/{pod}/{container}?command=...&stdin=&stdout=&stderr=&tty=
//       (a WebSocket upgrade, subprotocol v5.channel.k8s.io or v4.channel.k8s.io; see
//       exec_session.h)
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
  void handleExec(const apiserver::HttpRequest& request, const std::vector<std::string>& parts,
                  apiserver::HttpResponse& response) const;
  // The id of the running container `container` of pod ns/pod; "" with `why` set when none.
  std::string runningContainer(const std::string& ns, const std::string& pod,
                               const std::string& container, std::string& why) const;

  KubeletServerOptions options_;
  std::unique_ptr<apiserver::HttpServer> server_;
};

}  // namespace skiff::kubelet
