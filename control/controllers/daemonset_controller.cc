#include "control/controllers/daemonset_controller.h"

#include <google/protobuf/util/message_differencer.h>

namespace skiff::controllers {

using api::core::v1::Node;

namespace {

// Whether a Node update can change where daemon pods run (not heartbeats).
bool placementChanged(const Node& a, const Node& b) {
  using google::protobuf::util::MessageDifferencer;
  if (!MessageDifferencer::Equals(a.spec(), b.spec())) return true;
  if (a.metadata().labels().size() != b.metadata().labels().size()) return true;
  for (const auto& [k, v] : a.metadata().labels()) {
    auto it = b.metadata().labels().find(k);
    if (it == b.metadata().labels().end() || it->second != v) return true;
  }
  return false;
}

}  // namespace

DaemonSetController::DaemonSetController(client::Client& client,
                                         client::SharedInformer& daemon_sets,
                                         client::SharedInformer& nodes,
                                         client::SharedInformer& pods,
                                         client::SharedInformer& revisions,
                                         client::EventRecorder* events, int burst_pods)
    : PodOwnerController("daemonset", typeOf<api::apps::v1::DaemonSet>(), client, daemon_sets, pods,
                         events),
      nodes_(nodes),
      revisions_(revisions),
      burst_(burst_pods) {
  watchOwned(revisions_);
  nodes_.addEventHandler({
      .on_add = [this](const client::ObjectPtr&) { enqueueAll(); },
      .on_update =
          [this](const client::ObjectPtr& a, const client::ObjectPtr& b) {
            if (placementChanged(client::as<Node>(a), client::as<Node>(b))) enqueueAll();
          },
      .on_delete = [this](const client::ObjectPtr&) { enqueueAll(); },
  });
}

DaemonSetController::~DaemonSetController() {
  stop();
}

PodOwnerResult DaemonSetController::reconcile(const google::protobuf::Message& owner,
                                              const std::vector<const api::core::v1::Pod*>& pods,
                                              bool expectations_satisfied) {
  auto node_objs = nodes_.cache().list();
  DaemonSetInput in;
  in.ds = &static_cast<const api::apps::v1::DaemonSet&>(owner);
  in.nodes.reserve(node_objs.size());
  for (const auto& n : node_objs)
    in.nodes.push_back(&client::as<Node>(n));
  in.pods = pods;
  auto revision_objs =
      revisions_.cache().byIndex(client::kIndexNamespace, in.ds->metadata().namespace_());
  for (const auto& r : revision_objs)
    in.revisions.push_back(&client::as<api::apps::v1::ControllerRevision>(r));
  in.now = api::now();
  in.expectations_satisfied = expectations_satisfied;
  in.burst_pods = burst_;
  return reconcileDaemonSet(in);  // node_objs keeps the nodes alive until here
}

}  // namespace skiff::controllers
