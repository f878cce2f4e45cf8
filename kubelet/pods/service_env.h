#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "skiff/api/core_v1.pb.h"

// The Service environment variables the kubelet gives every container, as Kubernetes'
// (pkg/kubelet/kubelet_pods.go getServiceEnvVarMap, pkg/kubelet/envvars FromServices): for the
// `kubernetes` Service of the default namespace always, and, unless the pod says
// enableServiceLinks: false, for every Service of the pod's namespace with a ClusterIP:
//
//   {SVC}_SERVICE_HOST=10.96.0.1   {SVC}_SERVICE_PORT=443 (first port)
//   {SVC}_SERVICE_PORT_{PORTNAME}=443 (each named port)
//   {SVC}_PORT=tcp://10.96.0.1:443 (first port)
//   {SVC}_PORT_443_TCP=tcp://10.96.0.1:443  _PROTO=tcp  _PORT=443  _ADDR=10.96.0.1 (each port)
//
// SVC is the Service's name upper-cased with '-' as '_'. A Service of the pod's namespace named
// like one of the default namespace's master services wins over it, as in Kubernetes.

namespace skiff::kubelet {

// The Services of namespace `ns` and of "default" (only those are needed); nullopt while the
// Services are not yet known (the informer has not listed them).
using ServiceLister =
    std::function<std::optional<std::vector<api::core::v1::Service>>(const std::string& ns)>;

// The variables for `pod`, sorted by name. Services without a ClusterIP (headless, ExternalName)
// give none.
std::vector<std::pair<std::string, std::string>> serviceEnvVars(
    const api::core::v1::Pod& pod, const std::vector<api::core::v1::Service>& services);

}  // namespace skiff::kubelet
