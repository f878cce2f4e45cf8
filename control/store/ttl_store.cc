#include "control/store/ttl_store.h"

#include <algorithm>
#include <utility>

namespace skiff::store {

TtlStore::TtlStore(Store& inner, std::string prefix, std::chrono::seconds ttl)
    : inner_(inner), prefix_(std::move(prefix)), ttl_seconds_(std::max<int64_t>(ttl.count(), 1)) {}

int64_t TtlStore::leaseForWrite() {
  std::lock_guard lock(mu_);
  const auto now = Clock::now();
  const int64_t reuse = std::min<int64_t>(ttl_seconds_ * 5 / 100, kMaxReuseSeconds);
  // Reused while it outlives the TTL from now, and was granted at most `reuse` seconds ago.
  const bool valid = now + std::chrono::seconds(ttl_seconds_) < lease_expiry_;
  const bool sufficient = now + std::chrono::seconds(ttl_seconds_ + reuse) > lease_expiry_;
  ++attached_;
  if (lease_ != 0 && valid && sufficient && attached_ <= kMaxKeysPerLease) return lease_;
  // Granted under the lock: concurrent writers wait for the one lease instead of each making one.
  const int64_t lease = inner_.grantLease(ttl_seconds_ + reuse);
  lease_ = lease;
  lease_expiry_ = now + std::chrono::seconds(ttl_seconds_ + reuse);
  attached_ = 1;
  ++granted_;
  return lease;
}

void TtlStore::forget(int64_t lease) {
  std::lock_guard lock(mu_);
  if (lease_ == lease) lease_ = 0;
}

int64_t TtlStore::leasesGranted() const {
  std::lock_guard lock(mu_);
  return granted_;
}

int64_t TtlStore::currentLease() const {
  std::lock_guard lock(mu_);
  return lease_;
}

template <typename Write>
int64_t TtlStore::withLease(Write&& write) {
  int64_t lease = leaseForWrite();
  try {
    return write(lease);
  } catch (const StoreError& e) {
    if (e.code() != ErrorCode::kLeaseNotFound) throw;
  }
  // The shared lease was revoked, or expired earlier than we reckoned: once more with a new one.
  forget(lease);
  return write(leaseForWrite());
}

int64_t TtlStore::create(std::string_view key, std::string_view value) {
  return createWithLease(key, value, 0);
}

int64_t TtlStore::update(std::string_view key, std::string_view value,
                         int64_t expected_mod_revision) {
  return updateWithLease(key, value, expected_mod_revision, 0);
}

int64_t TtlStore::createWithLease(std::string_view key, std::string_view value, int64_t lease) {
  if (lease != 0 || !covers(key)) return inner_.createWithLease(key, value, lease);
  return withLease([&](int64_t shared) { return inner_.createWithLease(key, value, shared); });
}

int64_t TtlStore::updateWithLease(std::string_view key, std::string_view value,
                                  int64_t expected_mod_revision, int64_t lease) {
  if (lease != 0 || !covers(key)) {
    return inner_.updateWithLease(key, value, expected_mod_revision, lease);
  }
  return withLease([&](int64_t shared) {
    return inner_.updateWithLease(key, value, expected_mod_revision, shared);
  });
}

}  // namespace skiff::store
