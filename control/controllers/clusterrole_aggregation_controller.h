#pragma once

#include <vector>

#include "control/controllers/controller.h"
#include "skiff/api/rbac_v1.pb.h"

// The ClusterRole aggregation controller (pkg/controller/clusterroleaggregation): a ClusterRole
// with an aggregationRule gets, as its rules, the rules of every other ClusterRole one of its
// clusterRoleSelectors matches, in name order, each rule once. Any ClusterRole change looks at
// every aggregating ClusterRole again, so chains (view into edit into admin) settle. The rules of
// an aggregated role are the controller's: what a user writes there is replaced.

namespace skiff::controllers {

// The rules `role` aggregates from `all` (itself left out); `role` without an aggregationRule
// keeps its own.
std::vector<api::rbac::v1::PolicyRule> aggregatedRules(
    const api::rbac::v1::ClusterRole& role,
    const std::vector<const api::rbac::v1::ClusterRole*>& all);

class ClusterRoleAggregationController : public QueueController {
 public:
  ClusterRoleAggregationController(client::Client& client, client::SharedInformer& cluster_roles);
  ~ClusterRoleAggregationController() override;

 protected:
  std::optional<std::chrono::milliseconds> sync(const std::string& key) override;

 private:
  void enqueueAggregating();

  client::Client& client_;
  client::SharedInformer& cluster_roles_;
};

}  // namespace skiff::controllers
