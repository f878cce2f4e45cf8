#pragma once

// A real store underneath, counting the watches opened on it per prefix: tests and benchmarks
// check how many store watches a component opens (one per resource when it shares the watch
// cache). Every other call, leases included, goes straight to the inner store.

#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "control/store/store.h"

namespace skiff::store::testing {

class WatchCountingStore : public store::Store {
 public:
  explicit WatchCountingStore(store::Store& inner) : inner_(inner) {}

  std::optional<store::KeyValue> get(std::string_view key) override { return inner_.get(key); }
  store::ListResult list(std::string_view prefix, const store::ListOptions& options) override {
    return inner_.list(prefix, options);
  }
  int64_t create(std::string_view key, std::string_view value) override {
    return inner_.create(key, value);
  }
  int64_t update(std::string_view key, std::string_view value, int64_t expected) override {
    return inner_.update(key, value, expected);
  }
  store::KeyValue remove(std::string_view key, int64_t expected) override {
    return inner_.remove(key, expected);
  }
  store::WatchPtr watch(std::string_view prefix, int64_t start_revision) override {
    {
      std::lock_guard lock(mu_);
      ++watches_[std::string(prefix)];
      ++total_;
    }
    return inner_.watch(prefix, start_revision);
  }
  void compact(int64_t revision) override { inner_.compact(revision); }
  int64_t currentRevision() override { return inner_.currentRevision(); }
  int64_t compactedRevision() override { return inner_.compactedRevision(); }
  int64_t grantLease(int64_t ttl_seconds) override { return inner_.grantLease(ttl_seconds); }
  void revokeLease(int64_t lease) override { inner_.revokeLease(lease); }
  int64_t keepAliveLease(int64_t lease) override { return inner_.keepAliveLease(lease); }
  store::LeaseStatus leaseTimeToLive(int64_t lease, bool with_keys) override {
    return inner_.leaseTimeToLive(lease, with_keys);
  }
  int64_t createWithLease(std::string_view key, std::string_view value, int64_t lease) override {
    return inner_.createWithLease(key, value, lease);
  }
  int64_t updateWithLease(std::string_view key, std::string_view value, int64_t expected,
                          int64_t lease) override {
    return inner_.updateWithLease(key, value, expected, lease);
  }

  // Watches opened on a resource's prefix (store::resourcePrefix(plural)).
  int watches(const std::string& plural) {
    std::lock_guard lock(mu_);
    return watches_[store::resourcePrefix(plural)];
  }
  // Watches opened on any prefix.
  int totalWatches() {
    std::lock_guard lock(mu_);
    return total_;
  }

 private:
  store::Store& inner_;
  std::mutex mu_;
  std::map<std::string, int> watches_;
  int total_ = 0;
};

}  // namespace skiff::store::testing
