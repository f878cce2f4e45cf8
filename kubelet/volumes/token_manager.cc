#include "kubelet/volumes/token_manager.h"

#include <chrono>
#include <optional>
#include <random>
#include <stdexcept>

namespace skiff::kubelet::volumes {
namespace authn = api::authentication::v1;
namespace {

constexpr int64_t kMaxTtlSeconds = 24 * 3600;
constexpr int64_t kMaxJitterSeconds = 10;

// keyFunc: name, namespace, audiences, expiration and the bound object.
std::string keyOf(const std::string& ns, const std::string& name, const authn::TokenRequest& r) {
  std::string key = ns + "/" + name + "|";
  for (const auto& a : r.spec().audiences())
    key += a + ",";
  key += "|" + std::to_string(r.spec().expiration_seconds()) + "|";
  const auto& ref = r.spec().bound_object_ref();
  key += ref.kind() + "/" + ref.name() + "/" + ref.uid();
  return key;
}

int64_t expiresAt(const authn::TokenRequest& r) {
  return r.status().expiration_timestamp().seconds();
}

}  // namespace

TokenManager::TokenManager(std::function<int64_t()> now, std::function<int64_t()> jitter)
    : now_(std::move(now)), jitter_(std::move(jitter)) {
  if (!now_) {
    now_ = [] {
      return std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
  if (!jitter_) {
    jitter_ = [] {
      thread_local std::mt19937 rng{std::random_device{}()};
      return std::uniform_int_distribution<int64_t>(0, kMaxJitterSeconds - 1)(rng);
    };
  }
}

bool TokenManager::requiresRefresh(const authn::TokenRequest& cached, int64_t now) const {
  const int64_t ttl = cached.spec().expiration_seconds();
  if (ttl <= 0) return false;  // Kubernetes logs this and keeps the token
  const int64_t exp = expiresAt(cached);
  const int64_t iat = exp - ttl;
  const int64_t jitter = jitter_();
  if (now > iat + kMaxTtlSeconds - jitter) return true;
  // Within 20% of the lifetime (plus the jitter) of the expiration.
  return now > exp - ttl * 20 / 100 - jitter;
}

authn::TokenRequest TokenManager::token(VolumeSourceFetcher& source, const std::string& ns,
                                        const std::string& name,
                                        const authn::TokenRequest& request) {
  const std::string key = keyOf(ns, name, request);
  std::optional<authn::TokenRequest> cached;
  {
    std::lock_guard lock(mu_);
    const int64_t now = now_();
    // cleanup(): other expired tokens go (this one is needed for a refresh failure's message).
    for (auto it = tokens_.begin(); it != tokens_.end();) {
      it = it->first != key && expiresAt(it->second) < now ? tokens_.erase(it) : std::next(it);
    }
    auto it = tokens_.find(key);
    if (it != tokens_.end()) {
      if (!requiresRefresh(it->second, now)) return it->second;
      cached = it->second;
    }
  }
  authn::TokenRequest fresh;
  try {
    // The request goes out without the lock: other pods' workers need not wait for it.
    fresh = source.requestServiceAccountToken(ns, name, request);
  } catch (const std::exception& e) {
    if (!cached) throw std::runtime_error(std::string("failed to fetch token: ") + e.what());
    if (expiresAt(*cached) < now_()) {
      throw std::runtime_error("token " + ns + "/" + name +
                               " expired and refresh failed: " + e.what());
    }
    return *cached;  // Kubernetes logs "Couldn't update token" and keeps using it
  }
  // Refreshes and forgetPod() go by the spec the token was issued for.
  if (!fresh.spec().has_expiration_seconds()) {
    fresh.mutable_spec()->set_expiration_seconds(request.spec().expiration_seconds());
  }
  if (!fresh.spec().has_bound_object_ref()) {
    *fresh.mutable_spec()->mutable_bound_object_ref() = request.spec().bound_object_ref();
  }
  if (fresh.status().token().empty()) {
    throw std::runtime_error("the TokenRequest for " + ns + "/" + name + " returned no token");
  }
  std::lock_guard lock(mu_);
  tokens_[key] = fresh;
  return fresh;
}

void TokenManager::forgetPod(const std::string& uid) {
  std::lock_guard lock(mu_);
  for (auto it = tokens_.begin(); it != tokens_.end();) {
    it = it->second.spec().bound_object_ref().uid() == uid ? tokens_.erase(it) : std::next(it);
  }
}

size_t TokenManager::size() const {
  std::lock_guard lock(mu_);
  return tokens_.size();
}

}  // namespace skiff::kubelet::volumes
