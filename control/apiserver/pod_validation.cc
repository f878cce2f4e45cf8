#include "control/apiserver/pod_validation.h"

#include <google/protobuf/util/message_differencer.h>

namespace skiff::apiserver {

namespace {

using google::protobuf::util::MessageDifferencer;

constexpr const char* kForbidden =
    "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set "
    "to 1 if it was previously negative)";

bool containsAll(const api::core::v1::PodSpec& next, const api::core::v1::PodSpec& old) {
  for (const auto& t : old.tolerations()) {
    bool found = false;
    for (const auto& n : next.tolerations())
      found = found || MessageDifferencer::Equals(t, n);
    if (!found) return false;
  }
  return true;
}

}  // namespace

std::vector<FieldCause> podUpdateCauses(const api::core::v1::Pod& old,
                                        const api::core::v1::Pod& next) {
  std::vector<FieldCause> causes;
  const auto& o = old.spec();
  const auto& n = next.spec();
  if (n.has_active_deadline_seconds() && n.active_deadline_seconds() <= 0) {
    causes.push_back({"FieldValueInvalid", "spec.activeDeadlineSeconds",
                      "Invalid value: " + std::to_string(n.active_deadline_seconds()) +
                          ": must be between 1 and 2147483647, inclusive"});
  }
  if (o.has_active_deadline_seconds()) {
    if (!n.has_active_deadline_seconds()) {
      causes.push_back({"FieldValueInvalid", "spec.activeDeadlineSeconds",
                        "Invalid value: \"null\": must not update from a positive integer to nil "
                        "value"});
    } else if (n.active_deadline_seconds() > o.active_deadline_seconds()) {
      causes.push_back({"FieldValueInvalid", "spec.activeDeadlineSeconds",
                        "Invalid value: " + std::to_string(n.active_deadline_seconds()) +
                            ": must be less than or equal to previous value"});
    }
  }
  api::core::v1::PodSpec munged = n;
  for (int i = 0; i < munged.containers_size() && i < o.containers_size(); ++i)
    munged.mutable_containers(i)->set_image(o.containers(i).image());
  for (int i = 0; i < munged.init_containers_size() && i < o.init_containers_size(); ++i)
    munged.mutable_init_containers(i)->set_image(o.init_containers(i).image());
  if (o.has_active_deadline_seconds()) {
    munged.set_active_deadline_seconds(o.active_deadline_seconds());
  } else {
    munged.clear_active_deadline_seconds();
  }
  if (containsAll(n, o)) *munged.mutable_tolerations() = o.tolerations();
  if (o.has_termination_grace_period_seconds() && o.termination_grace_period_seconds() < 0 &&
      n.termination_grace_period_seconds() == 1) {
    munged.set_termination_grace_period_seconds(o.termination_grace_period_seconds());
  }
  if (!MessageDifferencer::Equals(munged, o))
    causes.push_back({"FieldValueForbidden", "spec", kForbidden});
  return causes;
}

void validatePodUpdate(const api::core::v1::Pod& old, const api::core::v1::Pod& next) {
  auto causes = podUpdateCauses(old, next);
  if (!causes.empty()) throw invalid("Pod", "", next.metadata().name(), causes);
}

}  // namespace skiff::apiserver
