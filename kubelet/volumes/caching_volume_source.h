#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "kubelet/volumes/volume_source.h"

// A VolumeSourceFetcher in front of another that keeps each ConfigMap and Secret it fetched for a
// TTL, Kubernetes' cache-based manager (pkg/kubelet/util/manager/cache_based_manager.go, the
// kubelet's configMapAndSecretChangeDetectionStrategy: Cache): the kubelet resyncs every pod's
// volumes and env every second, and without it each pass would GET each referenced object again
// (kube-root-ca.crt once per pod per second). Objects are shared by the pods that reference them;
// a pod the kubelet has not seen before invalidates the objects it references (registerPod), so a
// new pod always starts with fresh data, and changes reach running pods within the TTL. Not-found
// answers are cached as well; errors are not (the next call asks again).
//
// Only GETs of named objects: a node authorizer that lets a node get the objects its pods
// reference (and nothing else) serves it. Tokens pass through (the TokenManager caches them).
// Thread-safe; concurrent misses of one object make a single request.

namespace skiff::kubelet::volumes {

struct CachingVolumeSourceOptions {
  std::chrono::milliseconds ttl{60000};  // Kubernetes' defaultTTL (the node's ttl annotation)
  // For tests: the clock.
  std::function<std::chrono::steady_clock::time_point()> now;
};

class CachingVolumeSourceFetcher final : public VolumeSourceFetcher {
 public:
  CachingVolumeSourceFetcher(VolumeSourceFetcher& inner, CachingVolumeSourceOptions options = {});

  std::optional<api::core::v1::ConfigMap> getConfigMap(const std::string& ns,
                                                       const std::string& name) override;
  std::optional<api::core::v1::Secret> getSecret(const std::string& ns,
                                                 const std::string& name) override;
  api::authentication::v1::TokenRequest requestServiceAccountToken(
      const std::string& ns, const std::string& name,
      const api::authentication::v1::TokenRequest& request) override;
  // Not cached: a claim's binding is read until the VolumeManager has resolved it.
  std::optional<api::core::v1::PersistentVolumeClaim> getPersistentVolumeClaim(
      const std::string& ns, const std::string& name) override {
    return inner_.getPersistentVolumeClaim(ns, name);
  }
  std::optional<api::core::v1::PersistentVolume> getPersistentVolume(
      const std::string& name) override {
    return inner_.getPersistentVolume(name);
  }
  void registerPod(const api::core::v1::Pod& pod) override;
  void unregisterPod(const std::string& uid) override;

  size_t size() const;  // objects cached

 private:
  struct Entry {
    std::mutex fetch_mu;  // held while this object is fetched
    std::chrono::steady_clock::time_point fetched{};
    bool valid = false;
    std::optional<api::core::v1::ConfigMap> config_map;
    std::optional<api::core::v1::Secret> secret;
  };
  std::shared_ptr<Entry> entry(const std::string& key);
  void invalidate(const std::string& key);
  std::chrono::steady_clock::time_point now() const;

  VolumeSourceFetcher& inner_;
  CachingVolumeSourceOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Entry>> entries_;  // "configmap/ns/name", "secret/ns/name"
  // The keys each registered pod references (by uid), so that entries no pod references go.
  std::map<std::string, std::vector<std::string>> pods_;
};

}  // namespace skiff::kubelet::volumes
