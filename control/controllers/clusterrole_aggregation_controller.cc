#include "control/controllers/clusterrole_aggregation_controller.h"

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>

#include "control/api/selector.h"
#include "control/client/typed.h"

namespace skiff::controllers {

using api::rbac::v1::ClusterRole;
using api::rbac::v1::PolicyRule;
using google::protobuf::util::MessageDifferencer;

std::vector<PolicyRule> aggregatedRules(const ClusterRole& role,
                                        const std::vector<const ClusterRole*>& all) {
  if (!role.has_aggregation_rule()) return {role.rules().begin(), role.rules().end()};
  std::vector<api::labels::Selector> selectors;
  for (const auto& s : role.aggregation_rule().cluster_role_selectors()) {
    // An invalid selector selects nothing, as Kubernetes' LabelSelectorAsSelector error skips it.
    if (auto selector = api::labels::Selector::tryFromProto(&s)) {
      selectors.push_back(std::move(*selector));
    }
  }
  std::vector<const ClusterRole*> sources;
  for (const ClusterRole* other : all) {
    if (other->metadata().name() == role.metadata().name()) continue;
    bool selected = std::any_of(selectors.begin(), selectors.end(), [&](const auto& selector) {
      return selector.matches(other->metadata().labels());
    });
    if (selected) sources.push_back(other);
  }
  std::sort(sources.begin(), sources.end(), [](const ClusterRole* a, const ClusterRole* b) {
    return a->metadata().name() < b->metadata().name();
  });
  std::vector<PolicyRule> rules;
  for (const ClusterRole* source : sources) {
    for (const auto& rule : source->rules()) {
      bool seen = std::any_of(rules.begin(), rules.end(), [&](const PolicyRule& r) {
        return MessageDifferencer::Equals(r, rule);
      });
      if (!seen) rules.push_back(rule);
    }
  }
  return rules;
}

ClusterRoleAggregationController::ClusterRoleAggregationController(
    client::Client& client, client::SharedInformer& cluster_roles)
    : QueueController("clusterrole-aggregation"), client_(client), cluster_roles_(cluster_roles) {
  cluster_roles_.addEventHandler({
      .on_add = [this](const client::ObjectPtr&) { enqueueAggregating(); },
      .on_update = [this](const client::ObjectPtr&,
                          const client::ObjectPtr&) { enqueueAggregating(); },
      .on_delete = [this](const client::ObjectPtr&) { enqueueAggregating(); },
  });
}

ClusterRoleAggregationController::~ClusterRoleAggregationController() {
  stop();
}

void ClusterRoleAggregationController::enqueueAggregating() {
  for (const auto& o : cluster_roles_.cache().list()) {
    const auto& role = client::as<ClusterRole>(o);
    if (role.has_aggregation_rule()) enqueue(role.metadata().name());
  }
}

std::optional<std::chrono::milliseconds> ClusterRoleAggregationController::sync(
    const std::string& key) {
  auto obj = cluster_roles_.cache().get(key);
  if (!obj) return std::nullopt;
  const auto& role = client::as<ClusterRole>(obj);
  if (!role.has_aggregation_rule()) return std::nullopt;
  auto listed = cluster_roles_.cache().list();
  std::vector<const ClusterRole*> all;
  all.reserve(listed.size());
  for (const auto& o : listed)
    all.push_back(&client::as<ClusterRole>(o));
  std::vector<PolicyRule> rules = aggregatedRules(role, all);
  bool same = static_cast<int>(rules.size()) == role.rules_size() &&
              std::equal(rules.begin(), rules.end(), role.rules().begin(),
                         [](const PolicyRule& a, const PolicyRule& b) {
                           return MessageDifferencer::Equals(a, b);
                         });
  if (same) return std::nullopt;
  ClusterRole next = role;
  next.clear_rules();
  for (auto& rule : rules)
    *next.add_rules() = std::move(rule);
  try {
    client::update(client_, next);
  } catch (const client::ApiError& e) {
    if (e.isNotFound()) return std::nullopt;
    throw;  // a conflict: the cache catches up, the retry computes again
  }
  return std::nullopt;
}

}  // namespace skiff::controllers
