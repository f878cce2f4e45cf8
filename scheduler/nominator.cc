#include "scheduler/nominator.h"

#include <algorithm>

namespace skiff::scheduler {

void Nominator::nominate(PodInfoPtr pod, const std::string& node) {
  std::lock_guard lock(mu_);
  removeLocked(pod->key);
  by_node_[node].push_back(pod);
  const std::string key = pod->key;
  by_pod_[key] = Entry{std::move(pod), node, true};
}

void Nominator::onPendingPod(const PodPtr& pod) {
  const std::string& node = pod->status().nominated_node_name();
  const std::string key = podKey(*pod);
  if (node.empty()) {
    std::lock_guard lock(mu_);
    auto it = by_pod_.find(key);
    if (it != by_pod_.end() && !it->second.local) removeLocked(key);
    return;
  }
  PodInfoPtr info = PodInfo::make(pod);  // outside the lock: it parses the pod's terms
  std::lock_guard lock(mu_);
  removeLocked(key);
  by_node_[node].push_back(info);
  by_pod_[key] = Entry{std::move(info), node, false};
}

void Nominator::remove(std::string_view key) {
  std::lock_guard lock(mu_);
  removeLocked(key);
}

void Nominator::removeLocked(std::string_view key) {
  auto it = by_pod_.find(std::string(key));
  if (it == by_pod_.end()) return;
  auto node = by_node_.find(it->second.node);
  if (node != by_node_.end()) {
    auto& pods = node->second;
    pods.erase(std::remove_if(pods.begin(), pods.end(),
                              [&](const PodInfoPtr& p) { return p->key == key; }),
               pods.end());
    if (pods.empty()) by_node_.erase(node);
  }
  by_pod_.erase(it);
}

NominatedPods Nominator::nominatedPods() const {
  std::lock_guard lock(mu_);
  return by_node_;
}

size_t Nominator::size() const {
  std::lock_guard lock(mu_);
  return by_pod_.size();
}

}  // namespace skiff::scheduler
