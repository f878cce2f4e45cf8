#pragma once

// What the Job, DaemonSet and StatefulSet reconciler tables look at in a PodOwnerResult (the
// Split points into the result: keep the result alive).

#include <string>
#include <vector>

#include "control/controllers/pod_owner_controller.h"

namespace skiff::controllers::testing {

struct Split {
  std::vector<const api::core::v1::Pod*> creates;
  std::vector<std::string> deletes;  // names
  const google::protobuf::Message* status = nullptr;
  std::vector<std::string> event_reasons;
  std::vector<std::string> other_deletes;  // kind/name of non-pod deletes
  std::vector<std::string> other_creates;  // kind/name of non-pod creates
  std::vector<const google::protobuf::Message*> updates;
};

inline Split split(const PodOwnerResult& r) {
  Split s;
  for (const auto& a : r.actions) {
    if (a.verb == Action::Verb::kCreate) {
      if (a.type->kind == "Pod") {
        s.creates.push_back(static_cast<const api::core::v1::Pod*>(a.object.get()));
      } else {
        s.other_creates.push_back(a.type->kind + "/" + a.name);
      }
    } else if (a.verb == Action::Verb::kUpdate) {
      s.updates.push_back(a.object.get());
    } else if (a.verb == Action::Verb::kDelete) {
      if (a.type->kind == "Pod") {
        s.deletes.push_back(a.name);
      } else {
        s.other_deletes.push_back(a.type->kind + "/" + a.name);
      }
    } else if (a.verb == Action::Verb::kUpdateStatus) {
      s.status = a.object.get();
    }
  }
  for (const auto& e : r.events)
    s.event_reasons.push_back(std::get<1>(e));
  return s;
}

}  // namespace skiff::controllers::testing
