#include "control/controllers/expectations.h"

namespace skiff::controllers {

bool Expectations::satisfied(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = records_.find(key);
  if (it == records_.end()) return true;
  const Record& r = it->second;
  if (r.adds <= 0 && r.deletes.empty()) return true;
  return Clock::now() - r.at > ttl_;
}

void Expectations::expectCreations(const std::string& key, int adds) {
  std::lock_guard lock(mu_);
  Record& r = records_[key];
  r.adds = adds;
  r.at = Clock::now();
}

void Expectations::expectDeletions(const std::string& key,
                                   const std::vector<std::string>& pod_keys) {
  std::lock_guard lock(mu_);
  Record& r = records_[key];
  r.deletes.insert(pod_keys.begin(), pod_keys.end());
  r.at = Clock::now();
}

void Expectations::creationObserved(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = records_.find(key);
  if (it != records_.end() && it->second.adds > 0) --it->second.adds;
}

void Expectations::deletionObserved(const std::string& key, const std::string& pod_key) {
  std::lock_guard lock(mu_);
  auto it = records_.find(key);
  if (it != records_.end()) it->second.deletes.erase(pod_key);
}

void Expectations::remove(const std::string& key) {
  std::lock_guard lock(mu_);
  records_.erase(key);
}

int Expectations::pendingCreations(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = records_.find(key);
  return it == records_.end() ? 0 : it->second.adds;
}

}  // namespace skiff::controllers
