#include "kubelet/volumes/caching_volume_source.h"

#include <set>

namespace skiff::kubelet::volumes {
namespace core = api::core::v1;
namespace {

std::string configMapKey(const std::string& ns, const std::string& name) {
  return "configmap/" + ns + "/" + name;
}

std::string secretKey(const std::string& ns, const std::string& name) {
  return "secret/" + ns + "/" + name;
}

// The ConfigMaps and Secrets `pod` reads: volumes (projected sources too), env and envFrom.
std::vector<std::string> referencedKeys(const core::Pod& pod) {
  const std::string& ns = pod.metadata().namespace_();
  std::set<std::string> keys;
  for (const auto& v : pod.spec().volumes()) {
    if (v.has_config_map()) keys.insert(configMapKey(ns, v.config_map().name()));
    if (v.has_secret()) keys.insert(secretKey(ns, v.secret().secret_name()));
    if (v.has_projected()) {
      for (const auto& p : v.projected().sources()) {
        if (p.has_config_map()) keys.insert(configMapKey(ns, p.config_map().name()));
        if (p.has_secret()) keys.insert(secretKey(ns, p.secret().name()));
      }
    }
  }
  auto containers = [&](const auto& list) {
    for (const core::Container& c : list) {
      for (const auto& from : c.env_from()) {
        if (from.has_config_map_ref()) keys.insert(configMapKey(ns, from.config_map_ref().name()));
        if (from.has_secret_ref()) keys.insert(secretKey(ns, from.secret_ref().name()));
      }
      for (const auto& e : c.env()) {
        if (!e.has_value_from()) continue;
        const auto& src = e.value_from();
        if (src.has_config_map_key_ref())
          keys.insert(configMapKey(ns, src.config_map_key_ref().name()));
        if (src.has_secret_key_ref()) keys.insert(secretKey(ns, src.secret_key_ref().name()));
      }
    }
  };
  containers(pod.spec().init_containers());
  containers(pod.spec().containers());
  return {keys.begin(), keys.end()};
}

}  // namespace

CachingVolumeSourceFetcher::CachingVolumeSourceFetcher(VolumeSourceFetcher& inner,
                                                       CachingVolumeSourceOptions options)
    : inner_(inner), options_(std::move(options)) {}

std::chrono::steady_clock::time_point CachingVolumeSourceFetcher::now() const {
  return options_.now ? options_.now() : std::chrono::steady_clock::now();
}

std::shared_ptr<CachingVolumeSourceFetcher::Entry> CachingVolumeSourceFetcher::entry(
    const std::string& key) {
  std::lock_guard lock(mu_);
  auto& e = entries_[key];
  if (!e) e = std::make_shared<Entry>();
  return e;
}

void CachingVolumeSourceFetcher::invalidate(const std::string& key) {
  std::lock_guard lock(mu_);
  if (auto it = entries_.find(key); it != entries_.end()) {
    // A fresh entry: a fetch in flight on the old one cannot make it valid again.
    it->second = std::make_shared<Entry>();
  }
}

std::optional<core::ConfigMap> CachingVolumeSourceFetcher::getConfigMap(const std::string& ns,
                                                                        const std::string& name) {
  auto e = entry(configMapKey(ns, name));
  std::lock_guard lock(e->fetch_mu);
  if (!e->valid || now() - e->fetched >= options_.ttl) {
    e->config_map = inner_.getConfigMap(ns, name);  // throws: nothing cached
    e->fetched = now();
    e->valid = true;
  }
  return e->config_map;
}

std::optional<core::Secret> CachingVolumeSourceFetcher::getSecret(const std::string& ns,
                                                                  const std::string& name) {
  auto e = entry(secretKey(ns, name));
  std::lock_guard lock(e->fetch_mu);
  if (!e->valid || now() - e->fetched >= options_.ttl) {
    e->secret = inner_.getSecret(ns, name);
    e->fetched = now();
    e->valid = true;
  }
  return e->secret;
}

api::authentication::v1::TokenRequest CachingVolumeSourceFetcher::requestServiceAccountToken(
    const std::string& ns, const std::string& name,
    const api::authentication::v1::TokenRequest& request) {
  return inner_.requestServiceAccountToken(ns, name, request);
}

void CachingVolumeSourceFetcher::registerPod(const core::Pod& pod) {
  std::vector<std::string> keys = referencedKeys(pod);
  bool fresh = false;
  {
    std::lock_guard lock(mu_);
    fresh = pods_.find(pod.metadata().uid()) == pods_.end();
    pods_[pod.metadata().uid()] = keys;
  }
  // Kubernetes' AddReference: a new pod's objects are fetched anew.
  if (fresh) {
    for (const auto& key : keys)
      invalidate(key);
  }
}

void CachingVolumeSourceFetcher::unregisterPod(const std::string& uid) {
  std::lock_guard lock(mu_);
  if (pods_.erase(uid) == 0) return;
  std::set<std::string> used;
  for (const auto& [_, keys] : pods_)
    used.insert(keys.begin(), keys.end());
  for (auto it = entries_.begin(); it != entries_.end();) {
    it = used.count(it->first) != 0 ? std::next(it) : entries_.erase(it);
  }
}

size_t CachingVolumeSourceFetcher::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace skiff::kubelet::volumes
