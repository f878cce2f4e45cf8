#include "control/controllers/job_controller.h"

namespace skiff::controllers {

JobController::JobController(client::Client& client, client::SharedInformer& jobs,
                             client::SharedInformer& pods, client::EventRecorder* events,
                             int burst_pods)
    : PodOwnerController("job", typeOf<api::batch::v1::Job>(), client, jobs, pods, events),
      burst_(burst_pods) {}

JobController::~JobController() {
  stop();
}

PodOwnerResult JobController::reconcile(const google::protobuf::Message& owner,
                                        const std::vector<const api::core::v1::Pod*>& pods,
                                        bool expectations_satisfied) {
  JobInput in;
  in.job = &static_cast<const api::batch::v1::Job&>(owner);
  in.pods = pods;
  in.now = api::now();
  in.expectations_satisfied = expectations_satisfied;
  in.burst_pods = burst_;
  return reconcileJob(in);
}

}  // namespace skiff::controllers
