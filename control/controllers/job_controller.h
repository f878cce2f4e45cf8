#pragma once

#include "control/controllers/job.h"
#include "control/controllers/pod_owner_controller.h"

namespace skiff::controllers {

// The Job controller: reconcileJob on Job and Pod informers, with expectations.
class JobController : public PodOwnerController {
 public:
  JobController(client::Client& client, client::SharedInformer& jobs, client::SharedInformer& pods,
                client::EventRecorder* events = nullptr, int burst_pods = 500);
  ~JobController() override;

 protected:
  PodOwnerResult reconcile(const google::protobuf::Message& owner,
                           const std::vector<const api::core::v1::Pod*>& pods,
                           bool expectations_satisfied) override;

 private:
  int burst_;
};

}  // namespace skiff::controllers
