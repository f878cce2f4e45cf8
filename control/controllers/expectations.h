#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

// client-go's (UID-tracking) ControllerExpectations: after a controller asks for N creates and the
// deletion of some pods, it waits until its informer has seen them (or they failed, or five
// minutes passed) before it trusts its cache again, so it never creates twice.
//
// Thread-safe: informer handlers observe, workers expect and check.

namespace skiff::controllers {

class Expectations {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Expectations(std::chrono::milliseconds ttl = std::chrono::minutes(5)) : ttl_(ttl) {}

  // True when nothing is pending for `key`, or the record expired.
  bool satisfied(const std::string& key) const;
  void expectCreations(const std::string& key, int adds);
  void expectDeletions(const std::string& key, const std::vector<std::string>& pod_keys);
  // An informer saw one of the creates (or a create failed: it will not be seen).
  void creationObserved(const std::string& key);
  // An informer saw the pod go (or its delete failed).
  void deletionObserved(const std::string& key, const std::string& pod_key);
  // The controller's object is gone.
  void remove(const std::string& key);
  int pendingCreations(const std::string& key) const;

 private:
  struct Record {
    int adds = 0;
    std::set<std::string> deletes;
    Clock::time_point at;
  };
  std::chrono::milliseconds ttl_;
  mutable std::mutex mu_;
  std::map<std::string, Record> records_;
};

}  // namespace skiff::controllers
