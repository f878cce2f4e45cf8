#pragma once

#include <functional>
#include <string>

#include "control/apiserver/http_server.h"
#include "skiff/api/core_v1.pb.h"

namespace skiff::apiserver {

// How the apiserver reaches kubelets (Node InternalIP : daemonEndpoints.kubeletEndpoint.Port).
struct NodeProxyOptions {
  // The client certificate and key (PEM files) presented to kubelets over TLS, which they
  // authenticate against their client CA and authorize with a SubjectAccessReview
  // (kube-apiserver's --kubelet-client-certificate/--kubelet-client-key; the server's
  // DIR/pki/kubelet-client.{crt,key}). Empty: none (the kubelet answers 401).
  std::string kubelet_client_cert_file;
  std::string kubelet_client_key_file;
  // HTTPS to the kubelet, verified against this CA (the cluster CA that signs the kubelet's
  // serving certificate); false: plain HTTP, which kubelets allow only on loopback (tests).
  bool kubelet_tls = true;
  std::string kubelet_ca_file;
  int connect_timeout_seconds = 10;
};

// GET pods/{name}/log: checks the pod has a node and names a container as Kubernetes does, then
// streams the kubelet's /containerLogs answer to the client (chunked), passing follow, tailLines,
// timestamps, previous, sinceSeconds and limitBytes. `getNode` returns the named Node (or throws
// the store's 404). Errors are thrown as ApiError.
void proxyPodLog(const api::core::v1::Pod& pod,
                 const std::function<api::core::v1::Node(const std::string&)>& getNode,
                 const HttpRequest& request,
                 const std::function<ResponseStream&(const HttpResponse&)>& start_stream,
                 const NodeProxyOptions& options);

// GET or POST pods/{name}/exec (kubectl exec): checks the pod has a node, is not finished and
// names a container, then opens the node's kubelet /exec/{ns}/{pod}/{container} with the
// client's WebSocket upgrade headers and the command, stdin, stdout, stderr and tty parameters.
// On the kubelet's 101 it fills `response` with that 101 and an upgrade function that copies bytes
// both ways until either side ends; any other answer is thrown as ApiError with the kubelet's
// status and text.
void proxyPodExec(const api::core::v1::Pod& pod,
                  const std::function<api::core::v1::Node(const std::string&)>& getNode,
                  const HttpRequest& request, HttpResponse& response,
                  const NodeProxyOptions& options);

}  // namespace skiff::apiserver
