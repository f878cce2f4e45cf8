// The wiring of a SharedInformerFactory's Node and Pod informers to the scheduler's handlers, and
// of its Service, ReplicaSet and StatefulSet caches to the default spread constraints.
#include "control/client/informer.h"
#include "scheduler/scheduler.h"
#include "skiff/api/apps_v1.pb.h"

namespace skiff::scheduler {

void Scheduler::attach(client::SharedInformerFactory& factory) {
  auto node_ptr = [](const client::ObjectPtr& o) {
    return std::static_pointer_cast<const Node>(o);
  };
  auto pod_ptr = [](const client::ObjectPtr& o) { return std::static_pointer_cast<const Pod>(o); };
  factory.informerFor<Node>().addEventHandler({
      .on_add = [this, node_ptr](const client::ObjectPtr& o) { onNodeAdd(node_ptr(o)); },
      .on_update = [this, node_ptr](
                       const client::ObjectPtr& a,
                       const client::ObjectPtr& b) { onNodeUpdate(node_ptr(a), node_ptr(b)); },
      .on_delete = [this, node_ptr](const client::ObjectPtr& o) { onNodeDelete(node_ptr(o)); },
  });
  factory.informerFor<Pod>().addEventHandler({
      .on_add = [this, pod_ptr](const client::ObjectPtr& o) { onPodAdd(pod_ptr(o)); },
      .on_update = [this, pod_ptr](
                       const client::ObjectPtr& a,
                       const client::ObjectPtr& b) { onPodUpdate(pod_ptr(a), pod_ptr(b)); },
      .on_delete = [this, pod_ptr](const client::ObjectPtr& o) { onPodDelete(pod_ptr(o)); },
  });
  if (options_.default_spread_constraints) {
    spread_selector_->setCaches(&factory.informerFor<api::core::v1::Service>().cache(),
                                &factory.informerFor<api::apps::v1::ReplicaSet>().cache(),
                                &factory.informerFor<api::apps::v1::StatefulSet>().cache());
  }
}

}  // namespace skiff::scheduler
