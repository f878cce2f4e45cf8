#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "scheduler/node_info.h"

// The scheduler's view of the cluster (kube-scheduler's internal/cache): nodes and the pods that
// count on them. A pod counts on its node from the moment the scheduler assumes it (before its
// binding lands); the informer's bound pod confirms the assumption; a failed binding forgets it;
// an assumption whose binding finished but that the informer never confirmed expires after a TTL.
//
// Thread-safe. Scheduling cycles read immutable snapshots, refreshed incrementally: only nodes
// changed since the snapshot's generation are copied.

namespace skiff::scheduler {

class CacheError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// The nodes of one scheduling cycle. Not thread-safe to update; read from any number of threads.
class Snapshot {
 public:
  // Nodes with a Node object, in a stable order (by name).
  const std::vector<NodeInfoPtr>& nodes() const { return nodes_; }
  // Nodes with at least one pod that has (anti-)affinity terms / required anti-affinity.
  const std::vector<NodeInfoPtr>& nodesWithAffinity() const { return with_affinity_; }
  const std::vector<NodeInfoPtr>& nodesWithRequiredAntiAffinity() const {
    return with_required_anti_affinity_;
  }
  // nullptr when the node is not in the snapshot.
  const NodeInfo* get(std::string_view name) const;
  size_t size() const { return nodes_.size(); }
  // nodes()[i]->generation(), from a dense array: plugins that keep per-node results across
  // cycles check them against it without touching every NodeInfo.
  uint64_t generationAt(size_t i) const { return generations_[i]; }
  uint64_t generation() const { return generation_; }

  // A snapshot of exactly these nodes (tests and benchmarks).
  static Snapshot fromNodes(std::vector<NodeInfoPtr> nodes);

 private:
  friend class Cache;
  void rebuildLists();

  uint64_t generation_ = 0;
  std::unordered_map<std::string, NodeInfoPtr> by_name_;
  std::vector<NodeInfoPtr> nodes_;
  std::vector<uint64_t> generations_;  // of nodes_[i]
  std::unordered_map<std::string, size_t> index_;
  std::vector<NodeInfoPtr> with_affinity_;
  std::vector<NodeInfoPtr> with_required_anti_affinity_;
};

class Cache {
 public:
  using Clock = std::chrono::steady_clock;
  using ClockFn = std::function<Clock::time_point()>;

  explicit Cache(std::chrono::milliseconds assumed_ttl = std::chrono::seconds(30),
                 ClockFn clock = nullptr);

  void addNode(NodePtr node);
  void updateNode(NodePtr node) { addNode(std::move(node)); }
  void removeNode(std::string_view name);

  // A pod the informer reports bound to a node (spec.nodeName set). Confirms an assumption for the
  // same pod (moving it if it landed on another node). Pods without a node are ignored.
  void addPod(PodPtr pod);
  void updatePod(PodPtr pod) { addPod(std::move(pod)); }
  void removePod(std::string_view key);

  // Counts `pod` (spec.nodeName set to the chosen node) on its node now. Throws CacheError when
  // the pod is already in the cache or has no node.
  void assumePod(PodPtr pod);
  // The binding call returned: the assumption now expires after the TTL unless confirmed.
  void finishBinding(std::string_view key);
  // The binding failed: the pod stops counting. Throws CacheError when it is not assumed.
  void forgetPod(std::string_view key);
  bool isAssumed(std::string_view key) const;
  // The node a pod counts on, if it is in the cache.
  std::optional<std::string> nodeOf(std::string_view key) const;

  // Drops expired assumptions; returns their keys.
  std::vector<std::string> cleanupExpired();

  // Brings `snapshot` up to date with the cache.
  void updateSnapshot(Snapshot& snapshot);

  size_t nodeCount() const;
  size_t podCount() const;

 private:
  struct Entry {
    std::shared_ptr<NodeInfo> info;
    std::list<std::string>::iterator recent;
  };
  struct PodState {
    PodInfoPtr info;
    std::string node;
    bool assumed = false;
    bool binding_finished = false;
    Clock::time_point deadline{};
  };

  // The entry's NodeInfo, copied first if a snapshot shares it; marks it changed.
  NodeInfo& mutableNode(const std::string& name);
  void addPodLocked(PodInfoPtr info, const std::string& node);
  void removePodLocked(const std::string& key);
  void dropEntryIfEmpty(const std::string& name);

  const std::chrono::milliseconds ttl_;
  const ClockFn clock_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> nodes_;
  std::list<std::string> recent_;  // most recently changed first
  std::unordered_map<std::string, PodState> pods_;
  uint64_t generation_ = 0;
  uint64_t membership_generation_ = 0;  // the last change to which nodes exist
  size_t node_objects_ = 0;
};

}  // namespace skiff::scheduler
