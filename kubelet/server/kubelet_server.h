#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "control/apiserver/http_server.h"
#include "kubelet/runtime/runtime.h"
#include "kubelet/server/kubelet_auth.h"

namespace skiff::kubelet {

struct KubeletServerOptions {
  std::string bind_address = "0.0.0.0";
  uint16_t port = 10250;  // 0: any free port (see KubeletServer::port())
  std::string log_dir = "/var/log/pods";
  // PEM serving certificate and key; both empty means plain HTTP, allowed only on loopback.
  std::string cert_file;
  std::string key_file;
  // Authentication and authorization (kubelet_auth.h): client certificates that chain to this CA
  // bundle (PEM file; the kubelet's --client-ca-file, needs TLS), bearer tokens through the
  // reviewer's TokenReview, then a SubjectAccessReview for nodes/<subresource> named `node_name`.
  // No reviewer refuses to start: the API is never open. Only /healthz answers anyone.
  std::string client_ca_file;
  std::string node_name;
  std::shared_ptr<AuthReviewer> reviewer;
  // TTLs of the authentication and authorization caches (node_name and client_ca_pem are filled
  // from the fields above).
  KubeletAuthOptions auth;
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
//   GET /healthz (without credentials: the kubelet's healthz port's answer)
class KubeletServer {
 public:
  explicit KubeletServer(KubeletServerOptions options);
  ~KubeletServer();
  KubeletServer(const KubeletServer&) = delete;
  KubeletServer& operator=(const KubeletServer&) = delete;

  // Binds and serves; throws std::runtime_error naming the address, an unreadable client CA or
  // the missing reviewer.
  void start();
  void stop();
  uint16_t port() const;
  // With TLS: new connections present this serving certificate and key (PEM) from now on (the
  // kubelet's certificate from a kubernetes.io/kubelet-serving CSR). Throws std::runtime_error.
  void setServingCertificate(const std::string& cert_pem, const std::string& key_pem);

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
  std::unique_ptr<KubeletAuth> auth_;
  std::unique_ptr<apiserver::HttpServer> server_;
};

}  // namespace skiff::kubelet
