#pragma once

#include "control/client/client.h"
#include "kubelet/volumes/volume_source.h"

// VolumeSourceFetcher on the apiserver: a GET per call (the agent puts the TTL cache of
// caching_volume_source.h in front, so resyncs do not GET every object every second); tokens by
// a POST to serviceaccounts/NAME/token, which the TokenManager caches.

namespace skiff::kubelet::volumes {

class ClientVolumeSourceFetcher final : public VolumeSourceFetcher {
 public:
  explicit ClientVolumeSourceFetcher(client::Client& client) : client_(client) {}

  std::optional<api::core::v1::ConfigMap> getConfigMap(const std::string& ns,
                                                       const std::string& name) override;
  std::optional<api::core::v1::Secret> getSecret(const std::string& ns,
                                                 const std::string& name) override;
  api::authentication::v1::TokenRequest requestServiceAccountToken(
      const std::string& ns, const std::string& name,
      const api::authentication::v1::TokenRequest& request) override;
  std::optional<api::core::v1::PersistentVolumeClaim> getPersistentVolumeClaim(
      const std::string& ns, const std::string& name) override;
  std::optional<api::core::v1::PersistentVolume> getPersistentVolume(
      const std::string& name) override;

 private:
  client::Client& client_;
};

}  // namespace skiff::kubelet::volumes
