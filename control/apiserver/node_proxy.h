#pragma once

#include <functional>
#include <string>

#include "control/apiserver/http_server.h"
#include "skiff/api/core_v1.pb.h"

namespace skiff::apiserver {

// How the apiserver reaches kubelets (Node InternalIP : daemonEndpoints.kubeletEndpoint.Port).
struct NodeProxyOptions {
  // Presented as `Authorization: Bearer` to the kubelet, which accepts only its configured token.
  std::string kubelet_token;
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

}  // namespace skiff::apiserver
