#include "control/apiserver/pod_admission.h"

namespace skiff::apiserver {

void addDefaultTolerationSeconds(api::core::v1::Pod& pod, int64_t seconds) {
  constexpr const char* kNotReady = "node.kubernetes.io/not-ready";
  constexpr const char* kUnreachable = "node.kubernetes.io/unreachable";
  bool not_ready = false;
  bool unreachable = false;
  // An empty key tolerates every taint, an empty effect every effect (Kubernetes' check).
  for (const auto& t : pod.spec().tolerations()) {
    bool effect = t.effect().empty() || t.effect() == "NoExecute";
    if (effect && (t.key().empty() || t.key() == kNotReady)) not_ready = true;
    if (effect && (t.key().empty() || t.key() == kUnreachable)) unreachable = true;
  }
  auto add = [&](const char* key) {
    auto* t = pod.mutable_spec()->add_tolerations();
    t->set_key(key);
    t->set_operator_("Exists");
    t->set_effect("NoExecute");
    t->set_toleration_seconds(seconds);
  };
  if (!not_ready) add(kNotReady);
  if (!unreachable) add(kUnreachable);
}

void markScheduled(api::core::v1::Pod& pod, const api::core::v1::Binding& binding,
                   int64_t now_seconds) {
  auto& annotations = *pod.mutable_metadata()->mutable_annotations();
  for (const auto& [k, v] : binding.metadata().annotations())
    annotations[k] = v;
  api::core::v1::PodCondition* scheduled = nullptr;
  for (auto& c : *pod.mutable_status()->mutable_conditions()) {
    if (c.type() == "PodScheduled") scheduled = &c;
  }
  if (scheduled == nullptr) {
    scheduled = pod.mutable_status()->add_conditions();
    scheduled->set_type("PodScheduled");
  }
  // podutil.UpdatePodCondition: the transition time moves only when the status changes.
  if (scheduled->status() != "True" || !scheduled->has_last_transition_time()) {
    scheduled->mutable_last_transition_time()->set_seconds(now_seconds);
  }
  scheduled->set_status("True");
  scheduled->clear_reason();
  scheduled->clear_message();
}

}  // namespace skiff::apiserver
