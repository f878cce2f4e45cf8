#pragma once

#include <optional>
#include <string>

#include "skiff/api/core_v1.pb.h"

// Where configMap and secret volumes get their objects. The agent implements it on its client
// (client_volume_source.h does, on skiff::client::Client); unit tests fake it. Called from pod
// workers, for different pods at once.

namespace skiff::kubelet::volumes {

class VolumeSourceFetcher {
 public:
  virtual ~VolumeSourceFetcher() = default;
  // nullopt when there is no such object; throws std::runtime_error when it cannot be known
  // (the apiserver is unreachable).
  virtual std::optional<api::core::v1::ConfigMap> getConfigMap(const std::string& ns,
                                                               const std::string& name) = 0;
  virtual std::optional<api::core::v1::Secret> getSecret(const std::string& ns,
                                                         const std::string& name) = 0;
};

}  // namespace skiff::kubelet::volumes
