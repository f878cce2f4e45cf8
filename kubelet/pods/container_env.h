#pragma once

#include <string>
#include <utility>
#include <vector>

#include "kubelet/volumes/volume_source.h"
#include "skiff/api/core_v1.pb.h"

// envFrom and env[].valueFrom as the kubelet resolves them just before it creates a container:
// configMapKeyRef and secretKeyRef through the VolumeSourceFetcher, fieldRef from the pod (the
// downward API: metadata.name/namespace/uid/labels['k']/annotations['k'], spec.nodeName,
// spec.serviceAccountName, status.podIP(s), status.hostIP(s)).

namespace skiff::kubelet {

struct ResolvedEnv {
  // The container with every env entry a literal value (valueFrom replaced).
  api::core::v1::Container container;
  // envFrom's variables in order (prefix applied); they come before the container's own env.
  std::vector<std::pair<std::string, std::string>> env_from;
};

struct PodAddresses {
  std::string pod_ip;
  std::string host_ip;
};

// Throws std::invalid_argument naming the field ("spec.containers[0].env[2].valueFrom:
// configmap \"web\" not found") unless the source is optional.
ResolvedEnv resolveContainerEnv(const api::core::v1::Pod& pod,
                                const api::core::v1::Container& container,
                                volumes::VolumeSourceFetcher* fetcher,
                                const PodAddresses& addresses, const std::string& field);

}  // namespace skiff::kubelet
