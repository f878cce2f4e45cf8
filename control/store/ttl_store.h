#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "control/store/store.h"

namespace skiff::store {

// A Store that gives every key created or updated under one prefix a time to live, through the
// inner store's leases: kube-apiserver's --event-ttl (Events live an hour after their last write
// by default). As kube-apiserver's lease manager, writes share one lease while it lives long
// enough: a lease of ttl + r seconds (r = 5% of ttl, at most 60 s) is used for the writes of the
// next r seconds and at most 1,000 of them, so each key lives between ttl and ttl + r seconds
// after its last write, and thousands of Events make a handful of leases. Everything else is
// forwarded unchanged. Thread-safe as the inner store.
class TtlStore final : public Store {
 public:
  TtlStore(Store& inner, std::string prefix, std::chrono::seconds ttl);

  std::optional<KeyValue> get(std::string_view key) override { return inner_.get(key); }
  ListResult list(std::string_view prefix, const ListOptions& options) override {
    return inner_.list(prefix, options);
  }
  int64_t create(std::string_view key, std::string_view value) override;
  int64_t update(std::string_view key, std::string_view value,
                 int64_t expected_mod_revision) override;
  KeyValue remove(std::string_view key, int64_t expected_mod_revision) override {
    return inner_.remove(key, expected_mod_revision);
  }
  WatchPtr watch(std::string_view prefix, int64_t start_revision) override {
    return inner_.watch(prefix, start_revision);
  }
  void compact(int64_t revision) override { inner_.compact(revision); }
  int64_t currentRevision() override { return inner_.currentRevision(); }
  int64_t compactedRevision() override { return inner_.compactedRevision(); }

  int64_t grantLease(int64_t ttl_seconds) override { return inner_.grantLease(ttl_seconds); }
  void revokeLease(int64_t lease) override { inner_.revokeLease(lease); }
  int64_t keepAliveLease(int64_t lease) override { return inner_.keepAliveLease(lease); }
  LeaseStatus leaseTimeToLive(int64_t lease, bool with_keys) override {
    return inner_.leaseTimeToLive(lease, with_keys);
  }
  // With lease 0, a key under the prefix gets the shared lease; another lease is kept.
  int64_t createWithLease(std::string_view key, std::string_view value, int64_t lease) override;
  int64_t updateWithLease(std::string_view key, std::string_view value,
                          int64_t expected_mod_revision, int64_t lease) override;

  // Leases granted so far, and the one writes attach to now (0 = none yet); for tests.
  int64_t leasesGranted() const;
  int64_t currentLease() const;

 private:
  using Clock = std::chrono::steady_clock;

  bool covers(std::string_view key) const { return key.starts_with(prefix_); }
  // The lease for a write now (kube-apiserver's leaseManager.GetLease).
  int64_t leaseForWrite();
  // The lease `write` used vanished (revoked, or expired early): forget it.
  void forget(int64_t lease);
  template <typename Write>
  int64_t withLease(Write&& write);

  static constexpr int64_t kMaxKeysPerLease = 1000;
  static constexpr int64_t kMaxReuseSeconds = 60;

  Store& inner_;
  const std::string prefix_;
  const int64_t ttl_seconds_;
  mutable std::mutex mu_;
  int64_t lease_ = 0;
  Clock::time_point lease_expiry_;
  int64_t attached_ = 0;
  int64_t granted_ = 0;
};

}  // namespace skiff::store
