#pragma once

#include <atomic>

#include "control/client/informer.h"
#include "scheduler/plugins/plugins.h"

// The DefaultSpreadSelector of a running scheduler: kube-scheduler's helper.DefaultSelector over
// informer caches of Services, ReplicaSets and StatefulSets. A pod's default spread constraints
// select the pods its Services select (their selectors merged) and those of its controlling
// ReplicaSet or StatefulSet.

namespace skiff::scheduler {

class ClusterSpreadSelector : public plugins::DefaultSpreadSelector {
 public:
  // Set once, before scheduling starts (Scheduler::attach); until then every pod gets an empty
  // selector, so no default constraint applies. Any may be null.
  void setCaches(const client::Cache* services, const client::Cache* replica_sets,
                 const client::Cache* stateful_sets);

  api::labels::Selector selectorFor(const Pod& pod) const override;

 private:
  std::atomic<const client::Cache*> services_{nullptr};
  std::atomic<const client::Cache*> replica_sets_{nullptr};
  std::atomic<const client::Cache*> stateful_sets_{nullptr};
};

}  // namespace skiff::scheduler
