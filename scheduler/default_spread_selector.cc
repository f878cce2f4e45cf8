#include "scheduler/default_spread_selector.h"

#include <map>

#include "skiff/api/apps_v1.pb.h"
#include "skiff/api/core_v1.pb.h"

namespace skiff::scheduler {
namespace {

using api::labels::Selector;

// The requirements of a workload's spec.selector added to `selector`; an invalid or nil
// selector adds nothing (kube-scheduler ignores the error).
Selector addWorkloadSelector(Selector selector, const api::meta::v1::LabelSelector* workload) {
  std::optional<Selector> other = Selector::tryFromProto(workload);
  if (!other || other->matchesNothing()) return selector;
  for (const auto& r : other->requirements())
    selector = selector.add(r);
  return selector;
}

}  // namespace

void ClusterSpreadSelector::setCaches(const client::Cache* services,
                                      const client::Cache* replica_sets,
                                      const client::Cache* stateful_sets) {
  services_.store(services);
  replica_sets_.store(replica_sets);
  stateful_sets_.store(stateful_sets);
}

Selector ClusterSpreadSelector::selectorFor(const Pod& pod) const {
  const std::string& ns = pod.metadata().namespace_();
  // Services that select the pod do not conflict on a label (each matches it), so merging their
  // selectors is safe. A Service without a selector selects nothing.
  std::map<std::string, std::string> merged;
  if (const client::Cache* services = services_.load()) {
    for (const client::ObjectPtr& o : services->list(ns, "")) {
      const auto& selector = client::as<api::core::v1::Service>(o).spec().selector();
      if (selector.empty()) continue;
      if (!Selector::fromSet(selector).matches(pod.metadata().labels())) continue;
      merged.insert(selector.begin(), selector.end());
    }
  }
  Selector out = Selector::fromSet(merged);
  const api::meta::v1::OwnerReference* owner = nullptr;
  for (const auto& ref : pod.metadata().owner_references()) {
    if (ref.controller()) {
      owner = &ref;
      break;
    }
  }
  if (!owner || owner->api_version() != "apps/v1") return out;
  if (owner->kind() == "ReplicaSet") {
    if (const client::Cache* sets = replica_sets_.load()) {
      if (client::ObjectPtr o = sets->get(ns, owner->name())) {
        const auto& rs = client::as<api::apps::v1::ReplicaSet>(o);
        out = addWorkloadSelector(std::move(out),
                                  rs.spec().has_selector() ? &rs.spec().selector() : nullptr);
      }
    }
  } else if (owner->kind() == "StatefulSet") {
    if (const client::Cache* sets = stateful_sets_.load()) {
      if (client::ObjectPtr o = sets->get(ns, owner->name())) {
        const auto& ss = client::as<api::apps::v1::StatefulSet>(o);
        out = addWorkloadSelector(std::move(out),
                                  ss.spec().has_selector() ? &ss.spec().selector() : nullptr);
      }
    }
  }
  return out;
}

}  // namespace skiff::scheduler
