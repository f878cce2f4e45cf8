#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "kubelet/volumes/volume_source.h"
#include "skiff/api/authentication_v1.pb.h"

// The kubelet's token manager (pkg/kubelet/token): the ServiceAccount tokens of projected
// serviceAccountToken sources, requested through the TokenRequest API and cached per
// (service account, audiences, expiration, bound pod). A cached token is used until 80% of its
// lifetime has passed or it is 24 h old (each less a jitter of up to 10 s), then requested again;
// when that request fails, the cached token is kept while it has not expired. Thread-safe: pod
// workers ask for different pods at once.

namespace skiff::kubelet::volumes {

class TokenManager {
 public:
  // `now` gives unix seconds; default: the system clock. `jitter` gives 0..10 s; default: random.
  explicit TokenManager(std::function<int64_t()> now = {}, std::function<int64_t()> jitter = {});

  // The token for `request` (spec filled in) on ServiceAccount ns/name. Throws what the source
  // throws when there is no usable cached token.
  api::authentication::v1::TokenRequest token(VolumeSourceFetcher& source, const std::string& ns,
                                              const std::string& name,
                                              const api::authentication::v1::TokenRequest& request);
  // Drops the tokens bound to pod `uid` (it is gone from the node).
  void forgetPod(const std::string& uid);
  size_t size() const;

 private:
  bool requiresRefresh(const api::authentication::v1::TokenRequest& cached, int64_t now) const;

  std::function<int64_t()> now_;
  std::function<int64_t()> jitter_;
  mutable std::mutex mu_;
  std::map<std::string, api::authentication::v1::TokenRequest> tokens_;
};

}  // namespace skiff::kubelet::volumes
