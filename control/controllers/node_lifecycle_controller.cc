#include "control/controllers/node_lifecycle_controller.h"

#include <algorithm>

#include "control/client/typed.h"
#include "control/controllers/garbage_collector.h"

namespace skiff::controllers {

namespace {

using api::coordination::v1::Lease;
using api::core::v1::Node;
using api::core::v1::Pod;
using api::core::v1::Taint;

constexpr std::string_view kNodePrefix = "node/";
constexpr std::string_view kPodPrefix = "pod/";

bool hasNoExecuteTaint(const Node& node) {
  return std::any_of(node.spec().taints().begin(), node.spec().taints().end(),
                     [](const Taint& t) { return t.effect() == "NoExecute"; });
}

// True when `taints` has a NoExecute taint `node` does not have yet.
bool addsNoExecute(const Node& node, const std::vector<Taint>& taints) {
  return std::any_of(taints.begin(), taints.end(), [&](const Taint& t) {
    return t.effect() == "NoExecute" &&
           std::none_of(
               node.spec().taints().begin(), node.spec().taints().end(),
               [&](const Taint& o) { return o.effect() == "NoExecute" && o.key() == t.key(); });
  });
}

}  // namespace

NodeLifecycleController::NodeLifecycleController(
    client::Client& client, client::SharedInformer& nodes, client::SharedInformer& leases,
    client::SharedInformer& pods, client::EventRecorder* events, NodeLifecycleOptions options)
    : QueueController("nodelifecycle"),
      client_(client),
      nodes_(nodes),
      leases_(leases),
      pods_(pods),
      events_(events),
      options_(std::move(options)),
      limiter_(options_.eviction_rate) {
  auto node_key = [](const google::protobuf::Message& o) {
    return std::string(kNodePrefix) + metaOf(o).name();
  };
  nodes_.addEventHandler({
      .on_add = [this, node_key](const client::ObjectPtr& o) { enqueue(node_key(*o)); },
      .on_update =
          [this, node_key](const client::ObjectPtr& old_obj, const client::ObjectPtr& o) {
            enqueue(node_key(*o));
            // Taints changed: the pods on it decide again.
            const auto& a = client::as<Node>(old_obj).spec().taints();
            const auto& b = client::as<Node>(o).spec().taints();
            bool same =
                a.size() == b.size() &&
                std::equal(a.begin(), a.end(), b.begin(), [](const Taint& x, const Taint& y) {
                  return x.SerializeAsString() == y.SerializeAsString();
                });
            if (!same) {
              forgetTaintsGone(client::as<Node>(o));
              enqueuePodsOf(metaOf(*o).name());
            }
          },
      .on_delete =
          [this](const client::ObjectPtr& o) {
            Node none;
            none.mutable_metadata()->set_name(metaOf(*o).name());
            forgetTaintsGone(none);
            std::lock_guard lock(mu_);
            health_.erase(metaOf(*o).name());
          },
  });
  auto lease_changed = [this, node_key](const client::ObjectPtr& o) {
    if (metaOf(*o).namespace_() == kNodeLeaseNamespace) enqueue(node_key(*o));
  };
  leases_.addEventHandler({
      .on_add = lease_changed,
      .on_update = [lease_changed](const client::ObjectPtr&,
                                   const client::ObjectPtr& o) { lease_changed(o); },
      .on_delete = nullptr,
  });
  if (options_.evict_pods) {
    auto pod_changed = [this](const client::ObjectPtr& o) {
      const auto& pod = client::as<Pod>(o);
      if (pod.spec().node_name().empty() || pod.metadata().has_deletion_timestamp()) return;
      enqueue(std::string(kPodPrefix) + client::objectKey(pod));
    };
    pods_.addEventHandler({
        .on_add = pod_changed,
        .on_update = [pod_changed](const client::ObjectPtr&,
                                   const client::ObjectPtr& o) { pod_changed(o); },
        .on_delete =
            [this](const client::ObjectPtr& o) {
              std::lock_guard lock(mu_);
              evicted_.erase(metaOf(*o).uid());
            },
    });
  }
}

NodeLifecycleController::~NodeLifecycleController() {
  stop();
}

void NodeLifecycleController::enqueuePodsOf(const std::string& node_name) {
  if (!options_.evict_pods) return;
  for (const auto& p : pods_.cache().byIndex(client::kIndexNodeName, node_name)) {
    enqueue(std::string(kPodPrefix) + client::objectKey(*p));
  }
}

api::Timestamp NodeLifecycleController::taintSeen(const std::string& node, const std::string& key,
                                                  const api::Timestamp& now) {
  std::lock_guard lock(mu_);
  return taints_seen_.try_emplace(node + "|" + key, now).first->second;
}

void NodeLifecycleController::forgetTaintsGone(const Node& node) {
  const std::string prefix = node.metadata().name() + "|";
  std::lock_guard lock(mu_);
  for (auto it = taints_seen_.lower_bound(prefix);
       it != taints_seen_.end() && it->first.starts_with(prefix);) {
    std::string key = it->first.substr(prefix.size());
    bool present =
        std::any_of(node.spec().taints().begin(), node.spec().taints().end(),
                    [&](const Taint& t) { return t.effect() == "NoExecute" && t.key() == key; });
    it = present ? std::next(it) : taints_seen_.erase(it);
  }
}

std::optional<std::chrono::milliseconds> NodeLifecycleController::sync(const std::string& key) {
  if (key.starts_with(kNodePrefix)) return syncNode(key.substr(kNodePrefix.size()));
  if (key.starts_with(kPodPrefix)) return syncPod(key.substr(kPodPrefix.size()));
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> NodeLifecycleController::syncNode(
    const std::string& name) {
  auto obj = nodes_.cache().get(name);
  if (!obj) {
    std::lock_guard lock(mu_);
    health_.erase(name);
    return std::nullopt;
  }
  // Until the Leases are listed, a node without one would look like it never renewed.
  if (!leases_.hasSynced()) return std::chrono::milliseconds(100);
  Node node = client::as<Node>(obj);
  auto lease_obj = leases_.cache().get(kNodeLeaseNamespace, name);
  const Lease* lease = lease_obj ? &client::as<Lease>(lease_obj) : nullptr;
  api::Timestamp now = options_.clock();
  NodeHealth health;
  {
    std::lock_guard lock(mu_);
    auto it = health_.find(name);
    std::optional<NodeHealth> previous;
    if (it != health_.end()) previous = it->second;
    health = observeNodeHealth(previous, node, lease, now);
    health_[name] = health;
  }
  NodeStatusDecision status = evaluateNodeStatus(node, health, options_.timing, now);
  if (status.status_update) {
    try {
      node = client::updateStatus(client_, *status.status_update);
    } catch (const client::ApiError& e) {
      if (e.isNotFound()) return std::nullopt;
      if (e.isConflict()) return std::chrono::milliseconds(50);  // the cache will have news
      throw;
    }
    if (events_ != nullptr) {
      events_->record(typeOf<Node>(), node, "Normal", "NodeNotReady",
                      "Node " + name + " status is now: NodeNotReady");
    }
  }
  if (auto taints = desiredNodeTaints(node, status.ready, now)) {
    if (addsNoExecute(node, *taints)) {
      std::lock_guard lock(mu_);
      auto wait = limiter_.tryTake(now);
      if (wait.count() > 0) return wait;  // another node took this slot
    }
    Node next = node;
    next.mutable_spec()->clear_taints();
    for (auto& t : *taints)
      *next.mutable_spec()->add_taints() = std::move(t);
    try {
      node = client::update(client_, next);
    } catch (const client::ApiError& e) {
      if (e.isNotFound()) return std::nullopt;
      if (e.isConflict()) return std::chrono::milliseconds(50);
      throw;
    }
    enqueuePodsOf(name);
  }
  if (status.ready == "False" || status.ready == "Unknown") {
    // MarkPodsNotReady: what runs there can no longer be trusted to serve.
    for (const auto& p : pods_.cache().byIndex(client::kIndexNodeName, name)) {
      auto marked = podMarkedNotReady(client::as<Pod>(p), now);
      if (!marked) continue;
      try {
        client::updateStatus(client_, *marked);
      } catch (const client::ApiError& e) {
        if (!e.isNotFound() && !e.isConflict()) throw;
        // Gone or changed: the pod's next event brings this node up again.
      }
    }
  }
  auto again = options_.monitor_period;
  if (status.stale_in && *status.stale_in < again) again = *status.stale_in;
  return again;
}

std::optional<std::chrono::milliseconds> NodeLifecycleController::syncPod(const std::string& key) {
  auto obj = pods_.cache().get(key);
  if (!obj) return std::nullopt;
  const auto& pod = client::as<Pod>(obj);
  if (pod.metadata().has_deletion_timestamp() || pod.spec().node_name().empty()) {
    return std::nullopt;
  }
  auto node_obj = nodes_.cache().get(pod.spec().node_name());
  if (!node_obj) return std::nullopt;
  const auto& node = client::as<Node>(node_obj);
  if (!hasNoExecuteTaint(node)) return std::nullopt;
  api::Timestamp now = options_.clock();
  std::vector<Taint> taints(node.spec().taints().begin(), node.spec().taints().end());
  // tolerationSeconds count from when this controller first saw the taint, as Kubernetes' taint
  // manager counts: timeAdded has whole seconds only (it would evict up to a second early) and is
  // written by whoever added the taint.
  for (auto& t : taints) {
    if (t.effect() == "NoExecute") {
      setTime(*t.mutable_time_added(), taintSeen(node.metadata().name(), t.key(), now));
    }
  }
  EvictionDecision decision = podEviction(pod, taints, now, now);
  if (decision.kind == EvictionDecision::Kind::kNever) return std::nullopt;
  if (decision.kind == EvictionDecision::Kind::kLater) return decision.after;
  {
    // Asked already; the cache has not seen the deletionTimestamp yet.
    std::lock_guard lock(mu_);
    if (!evicted_.insert(pod.metadata().uid()).second) return std::nullopt;
  }
  client::DeleteOptions options;
  options.precondition_uid = pod.metadata().uid();  // only this incarnation
  try {
    client_.remove(typeOf<Pod>(), pod.metadata().namespace_(), pod.metadata().name(), options);
  } catch (const client::ApiError& e) {
    if (e.isNotFound() || e.isConflict()) return std::nullopt;
    std::lock_guard lock(mu_);
    evicted_.erase(pod.metadata().uid());  // try again
    throw;
  }
  ++evictions_;
  if (events_ != nullptr) {
    events_->record(typeOf<Pod>(), pod, "Normal", "TaintManagerEviction",
                    "Marking for deletion Pod " + key + " (taint " + decision.taint + ")");
  }
  return std::nullopt;
}

}  // namespace skiff::controllers
