#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "scheduler/framework.h"

// The scheduler's record of nominated pods (kube-scheduler's nominator in its scheduling queue):
// a pod is nominated to a node when preemption evicts pods there for it, and stays nominated
// until it is bound, deleted, nominated elsewhere, or assumed on some node. Nominations come from
// this scheduler's own preemptions at once, and from pods' status.nominatedNodeName (another
// scheduler instance, or a restart) through the informer. Thread-safe.

namespace skiff::scheduler {

class Nominator : public PodNominator {
 public:
  // This scheduler nominated `pod` to `node` (its status write follows).
  void nominate(PodInfoPtr pod, const std::string& node);
  // The informer saw a pending pod: status.nominatedNodeName, when set, replaces what is known; a
  // pod without one keeps a nomination this scheduler made (its status write may still be on its
  // way) but loses one that came from an earlier status.
  void onPendingPod(const PodPtr& pod);
  // Bound, deleted or assumed: not nominated any more.
  void remove(std::string_view key);

  NominatedPods nominatedPods() const override;
  size_t size() const;

 private:
  struct Entry {
    PodInfoPtr pod;
    std::string node;
    bool local = false;  // from this scheduler's preemption, not yet seen in the pod's status
  };
  void removeLocked(std::string_view key);

  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> by_pod_;
  NominatedPods by_node_;
};

}  // namespace skiff::scheduler
