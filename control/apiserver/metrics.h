#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "control/store/store.h"

namespace skiff::apiserver {

// A Prometheus histogram with fixed upper bounds (seconds); the +Inf bucket is implied.
class Histogram {
 public:
  explicit Histogram(const std::vector<double>& bounds)
      : bounds_(&bounds), counts_(bounds.size()) {}
  void observe(double value);
  // Appends the _bucket, _sum and _count lines; `labels` is `a="x",b="y"` or empty.
  void render(std::string& out, std::string_view name, std::string_view labels) const;

 private:
  const std::vector<double>* bounds_;
  std::vector<uint64_t> counts_;  // per bound, not cumulative
  uint64_t count_ = 0;
  double sum_ = 0;
};

// The apiserver's metrics in Prometheus' text exposition format (version 0.0.4), under the names
// kube-apiserver uses: requests by verb, resource and code with latency histograms, registered
// watchers, store latency per operation, events the watch cache received.
//
// Thread-safe.
class Metrics {
 public:
  // kube-apiserver's buckets for apiserver_request_duration_seconds.
  static const std::vector<double>& requestBuckets();
  // etcd_request_duration_seconds' buckets.
  static const std::vector<double>& storeBuckets();

  void observeRequest(std::string_view verb, std::string_view resource, int code, double seconds);
  void observeStore(std::string_view operation, std::string_view type, double seconds);
  void addWatchers(std::string_view resource, int64_t delta);
  void countCacheEvents(std::string_view resource, uint64_t n);
  std::string render() const;

 private:
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t, std::less<>> requests_;
  std::map<std::pair<std::string, std::string>, Histogram, std::less<>> durations_;
  std::map<std::pair<std::string, std::string>, Histogram, std::less<>> store_;
  std::map<std::string, int64_t, std::less<>> watchers_;
  std::map<std::string, uint64_t, std::less<>> cache_events_;
};

// A Store that times every call into `metrics` (etcd_request_duration_seconds{operation,type},
// type being the resource named by the key) and forwards it to `inner`.
class InstrumentedStore : public store::Store {
 public:
  InstrumentedStore(store::Store& inner, Metrics& metrics) : inner_(inner), metrics_(metrics) {}

  std::optional<store::KeyValue> get(std::string_view key) override;
  store::ListResult list(std::string_view prefix, const store::ListOptions& options) override;
  int64_t create(std::string_view key, std::string_view value) override;
  int64_t update(std::string_view key, std::string_view value,
                 int64_t expected_mod_revision) override;
  store::KeyValue remove(std::string_view key, int64_t expected_mod_revision) override;
  store::WatchPtr watch(std::string_view prefix, int64_t start_revision) override;
  void compact(int64_t revision) override;
  int64_t currentRevision() override;
  int64_t compactedRevision() override;
  // Leases pass through too (the Event TTL store under the apiserver attaches Events to them);
  // lease calls are timed under type "leases", as they name no key.
  int64_t grantLease(int64_t ttl_seconds) override;
  void revokeLease(int64_t lease) override;
  int64_t keepAliveLease(int64_t lease) override;
  store::LeaseStatus leaseTimeToLive(int64_t lease, bool with_keys) override;
  int64_t createWithLease(std::string_view key, std::string_view value, int64_t lease) override;
  int64_t updateWithLease(std::string_view key, std::string_view value,
                          int64_t expected_mod_revision, int64_t lease) override;

 private:
  template <typename F>
  auto timed(std::string_view operation, std::string_view key, F&& f);

  store::Store& inner_;
  Metrics& metrics_;
};

}  // namespace skiff::apiserver
