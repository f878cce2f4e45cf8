#pragma once

#include <optional>
#include <string>

#include "skiff/api/authentication_v1.pb.h"
#include "skiff/api/core_v1.pb.h"

// Where configMap, secret and projected volumes get their objects and ServiceAccount tokens. The
// agent implements it on its client (client_volume_source.h does, on skiff::client::Client); unit
// tests fake it. Called from pod workers, for different pods at once.

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
  // POST serviceaccounts/NAME/token in `ns` (the TokenRequest API): the answer, with
  // status.token and status.expirationTimestamp. Throws std::runtime_error with the apiserver's
  // reason. The default has no API to ask.
  virtual api::authentication::v1::TokenRequest requestServiceAccountToken(
      const std::string& ns, const std::string& name,
      const api::authentication::v1::TokenRequest& request);
  // persistentVolumeClaim volumes: the claim, and the PersistentVolume it is bound to (nullopt
  // when missing; throws std::runtime_error when it cannot be known). The defaults have no API.
  virtual std::optional<api::core::v1::PersistentVolumeClaim> getPersistentVolumeClaim(
      const std::string& ns, const std::string& name);
  virtual std::optional<api::core::v1::PersistentVolume> getPersistentVolume(
      const std::string& name);
  // The VolumeManager says which pods it sets up (on every setUp) and tears down, for fetchers
  // that cache per referenced object (caching_volume_source.h); the default ignores both.
  virtual void registerPod(const api::core::v1::Pod& pod) { (void)pod; }
  virtual void unregisterPod(const std::string& uid) { (void)uid; }
};

}  // namespace skiff::kubelet::volumes
