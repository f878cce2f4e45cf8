#pragma once

#include "control/controllers/daemonset.h"
#include "control/controllers/pod_owner_controller.h"

namespace skiff::controllers {

// The DaemonSet controller: reconcileDaemonSet on DaemonSet, Node, Pod and ControllerRevision
// informers. A Node that
// appears, goes, or changes labels, taints or readiness re-syncs every DaemonSet.
class DaemonSetController : public PodOwnerController {
 public:
  DaemonSetController(client::Client& client, client::SharedInformer& daemon_sets,
                      client::SharedInformer& nodes, client::SharedInformer& pods,
                      client::SharedInformer& revisions, client::EventRecorder* events = nullptr,
                      int burst_pods = 500);
  ~DaemonSetController() override;

 protected:
  PodOwnerResult reconcile(const google::protobuf::Message& owner,
                           const std::vector<const api::core::v1::Pod*>& pods,
                           bool expectations_satisfied) override;

 private:
  client::SharedInformer& nodes_;
  client::SharedInformer& revisions_;
  int burst_;
};

}  // namespace skiff::controllers
