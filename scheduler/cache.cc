#include "scheduler/cache.h"

#include <algorithm>

namespace skiff::scheduler {

const NodeInfo* Snapshot::get(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : it->second.get();
}

Snapshot Snapshot::fromNodes(std::vector<NodeInfoPtr> nodes) {
  Snapshot s;
  for (auto& n : nodes)
    s.by_name_[n->name()] = std::move(n);
  s.rebuildLists();
  return s;
}

void Snapshot::rebuildLists() {
  nodes_.clear();
  index_.clear();
  for (const auto& [name, info] : by_name_)
    nodes_.push_back(info);
  std::sort(nodes_.begin(), nodes_.end(),
            [](const NodeInfoPtr& a, const NodeInfoPtr& b) { return a->name() < b->name(); });
  with_affinity_.clear();
  with_required_anti_affinity_.clear();
  generations_.resize(nodes_.size());
  for (size_t i = 0; i < nodes_.size(); ++i) {
    generations_[i] = nodes_[i]->generation();
    index_[nodes_[i]->name()] = i;
    if (!nodes_[i]->podsWithAffinity().empty()) with_affinity_.push_back(nodes_[i]);
    if (!nodes_[i]->podsWithRequiredAntiAffinity().empty()) {
      with_required_anti_affinity_.push_back(nodes_[i]);
    }
  }
}

Cache::Cache(std::chrono::milliseconds assumed_ttl, ClockFn clock)
    : ttl_(assumed_ttl), clock_(clock ? std::move(clock) : ClockFn([] { return Clock::now(); })) {}

NodeInfo& Cache::mutableNode(const std::string& name) {
  auto it = nodes_.find(name);
  if (it == nodes_.end()) {
    recent_.push_front(name);
    it = nodes_.emplace(name, Entry{std::make_shared<NodeInfo>(), recent_.begin()}).first;
  } else {
    if (it->second.info.use_count() > 1) {
      it->second.info = std::make_shared<NodeInfo>(*it->second.info);
    }
    recent_.splice(recent_.begin(), recent_, it->second.recent);
  }
  it->second.info->setGeneration(++generation_);
  return *it->second.info;
}

void Cache::dropEntryIfEmpty(const std::string& name) {
  auto it = nodes_.find(name);
  if (it == nodes_.end() || it->second.info->node() || !it->second.info->pods().empty()) return;
  recent_.erase(it->second.recent);
  nodes_.erase(it);
}

void Cache::addNode(NodePtr node) {
  std::lock_guard lock(mu_);
  const std::string name = node->metadata().name();
  auto it = nodes_.find(name);
  const bool had_node = it != nodes_.end() && it->second.info->node() != nullptr;
  NodeInfo& info = mutableNode(name);
  info.setNode(std::move(node));
  info.setGeneration(generation_);
  if (!had_node) {
    ++node_objects_;
    membership_generation_ = generation_;
  }
}

void Cache::removeNode(std::string_view name_view) {
  std::lock_guard lock(mu_);
  const std::string name(name_view);
  auto it = nodes_.find(name);
  if (it == nodes_.end() || !it->second.info->node()) return;
  // Pods stay (the informer deletes them); the entry remains as a placeholder until they go.
  mutableNode(name).clearNode();
  --node_objects_;
  membership_generation_ = generation_;
  dropEntryIfEmpty(name);
}

void Cache::addPodLocked(PodInfoPtr info, const std::string& node) {
  mutableNode(node).addPod(std::move(info));
  nodes_[node].info->setGeneration(generation_);
}

void Cache::removePodLocked(const std::string& key) {
  auto it = pods_.find(key);
  if (it == pods_.end()) return;
  const std::string node = it->second.node;
  pods_.erase(it);
  if (nodes_.contains(node)) {
    NodeInfo& info = mutableNode(node);
    info.removePod(key);
    info.setGeneration(generation_);
    if (!info.node() && info.pods().empty()) {
      membership_generation_ = generation_;
      dropEntryIfEmpty(node);
    }
  }
}

void Cache::addPod(PodPtr pod) {
  if (pod->spec().node_name().empty()) return;
  PodInfoPtr info = PodInfo::make(std::move(pod));
  std::lock_guard lock(mu_);
  const std::string node = info->pod->spec().node_name();
  auto it = pods_.find(info->key);
  if (it != pods_.end()) removePodLocked(info->key);
  const bool placeholder = !nodes_.contains(node);
  PodState state{info, node};
  pods_[info->key] = std::move(state);
  addPodLocked(std::move(info), node);
  if (placeholder) membership_generation_ = generation_;
}

void Cache::removePod(std::string_view key) {
  std::lock_guard lock(mu_);
  removePodLocked(std::string(key));
}

void Cache::assumePod(PodPtr pod) {
  if (pod->spec().node_name().empty()) {
    throw CacheError("cannot assume pod " + podKey(*pod) + ": it has no spec.nodeName");
  }
  PodInfoPtr info = PodInfo::make(std::move(pod));
  std::lock_guard lock(mu_);
  if (pods_.contains(info->key)) {
    throw CacheError("cannot assume pod " + info->key + ": it is already in the cache");
  }
  const std::string node = info->pod->spec().node_name();
  const bool placeholder = !nodes_.contains(node);
  pods_[info->key] = PodState{info, node, true};
  addPodLocked(std::move(info), node);
  if (placeholder) membership_generation_ = generation_;
}

void Cache::finishBinding(std::string_view key) {
  std::lock_guard lock(mu_);
  auto it = pods_.find(std::string(key));
  if (it == pods_.end() || !it->second.assumed) return;
  it->second.binding_finished = true;
  it->second.deadline = clock_() + ttl_;
}

void Cache::forgetPod(std::string_view key_view) {
  std::lock_guard lock(mu_);
  const std::string key(key_view);
  auto it = pods_.find(key);
  if (it == pods_.end() || !it->second.assumed) {
    throw CacheError("cannot forget pod " + key + ": it is not assumed");
  }
  removePodLocked(key);
}

bool Cache::isAssumed(std::string_view key) const {
  std::lock_guard lock(mu_);
  auto it = pods_.find(std::string(key));
  return it != pods_.end() && it->second.assumed;
}

std::optional<std::string> Cache::nodeOf(std::string_view key) const {
  std::lock_guard lock(mu_);
  auto it = pods_.find(std::string(key));
  if (it == pods_.end()) return std::nullopt;
  return it->second.node;
}

std::vector<std::string> Cache::cleanupExpired() {
  std::lock_guard lock(mu_);
  const auto now = clock_();
  std::vector<std::string> expired;
  for (const auto& [key, state] : pods_) {
    if (state.assumed && state.binding_finished && now >= state.deadline) expired.push_back(key);
  }
  for (const std::string& key : expired)
    removePodLocked(key);
  return expired;
}

void Cache::updateSnapshot(Snapshot& snapshot) {
  std::lock_guard lock(mu_);
  if (snapshot.generation_ >= generation_) return;
  if (membership_generation_ > snapshot.generation_) {
    snapshot.by_name_.clear();
    for (const auto& [name, entry] : nodes_) {
      if (entry.info->node()) snapshot.by_name_[name] = entry.info;
    }
    snapshot.rebuildLists();
    snapshot.generation_ = generation_;
    return;
  }
  bool lists_changed = false;
  for (const std::string& name : recent_) {
    const Entry& entry = nodes_.at(name);
    if (entry.info->generation() <= snapshot.generation_) break;
    if (!entry.info->node()) continue;
    auto pos = snapshot.index_.find(name);
    if (pos == snapshot.index_.end()) continue;
    NodeInfoPtr& slot = snapshot.nodes_[pos->second];
    const bool had = !slot->podsWithAffinity().empty();
    const bool had_anti = !slot->podsWithRequiredAntiAffinity().empty();
    slot = entry.info;
    snapshot.generations_[pos->second] = entry.info->generation();
    snapshot.by_name_[name] = entry.info;
    if (had || had_anti || !entry.info->podsWithAffinity().empty()) lists_changed = true;
  }
  if (lists_changed) {
    snapshot.with_affinity_.clear();
    snapshot.with_required_anti_affinity_.clear();
    for (const auto& n : snapshot.nodes_) {
      if (!n->podsWithAffinity().empty()) snapshot.with_affinity_.push_back(n);
      if (!n->podsWithRequiredAntiAffinity().empty()) {
        snapshot.with_required_anti_affinity_.push_back(n);
      }
    }
  }
  snapshot.generation_ = generation_;
}

size_t Cache::nodeCount() const {
  std::lock_guard lock(mu_);
  return node_objects_;
}

size_t Cache::podCount() const {
  std::lock_guard lock(mu_);
  return pods_.size();
}

}  // namespace skiff::scheduler
