#include "control/apiserver/pod_admission.h"

#include <algorithm>
#include <random>
#include <thread>

#include "control/apiserver/errors.h"
#include "control/apiserver/object_meta.h"

namespace skiff::apiserver {
namespace {

namespace core = api::core::v1;

constexpr const char* kDefaultServiceAccount = "default";
constexpr const char* kVolumePrefix = "kube-api-access-";
constexpr const char* kMirrorPodAnnotation = "kubernetes.io/config.mirror";
// serviceaccount.WarnOnlyBoundTokenExpirationSeconds: one hour and seven seconds, so a token's
// age tells an admission-made volume from a hand-written one.
constexpr int64_t kTokenExpirationSeconds = 3607;
constexpr int32_t kProjectedDefaultMode = 0644;

// The pod's preference wins, then the ServiceAccount's; true when neither says.
bool shouldAutomount(const core::ServiceAccount& sa, const core::Pod& pod) {
  if (pod.spec().has_automount_service_account_token()) {
    return pod.spec().automount_service_account_token();
  }
  if (sa.has_automount_service_account_token()) return sa.automount_service_account_token();
  return true;
}

// One wait between lookups, drawn once per pod as Kubernetes does: min + [0, min).
std::chrono::milliseconds retryInterval(std::chrono::milliseconds min) {
  if (min.count() <= 0) return min;
  thread_local std::mt19937 rng{std::random_device{}()};
  return min +
         std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(0, min.count() - 1)(rng));
}

void mountServiceAccountToken(core::Pod& pod, const ServiceAccountAdmissionOptions& options) {
  auto* spec = pod.mutable_spec();
  std::string volume_name;
  for (const auto& v : spec->volumes()) {
    if (v.name().starts_with(kVolumePrefix)) {
      volume_name = v.name();
      break;
    }
  }
  const bool has_volume = !volume_name.empty();
  if (!has_volume) {
    volume_name = kVolumePrefix + (options.suffix ? options.suffix() : randomSuffix(5));
  }
  bool needs_volume = false;
  for (auto* list : {spec->mutable_init_containers(), spec->mutable_containers()}) {
    for (auto& c : *list) {
      bool mounted = false;
      for (const auto& m : c.volume_mounts()) {
        // Something already at the path keeps the token out of this container.
        if (m.mount_path() == kServiceAccountTokenMountPath) mounted = true;
      }
      if (mounted) continue;
      auto* m = c.add_volume_mounts();
      m->set_name(volume_name);
      m->set_read_only(true);
      m->set_mount_path(kServiceAccountTokenMountPath);
      needs_volume = true;
    }
  }
  if (!has_volume && needs_volume) {
    auto* v = spec->add_volumes();
    v->set_name(volume_name);
    *v->mutable_projected() = serviceAccountTokenVolumeSource();
  }
}

}  // namespace

core::ProjectedVolumeSource serviceAccountTokenVolumeSource() {
  core::ProjectedVolumeSource source;
  source.set_default_mode(kProjectedDefaultMode);
  auto* token = source.add_sources()->mutable_service_account_token();
  token->set_expiration_seconds(kTokenExpirationSeconds);
  token->set_path("token");
  auto* ca = source.add_sources()->mutable_config_map();
  ca->set_name("kube-root-ca.crt");
  auto* item = ca->add_items();
  item->set_key("ca.crt");
  item->set_path("ca.crt");
  auto* file = source.add_sources()->mutable_downward_api()->add_items();
  file->set_path("namespace");
  file->mutable_field_ref()->set_api_version("v1");
  file->mutable_field_ref()->set_field_path("metadata.namespace");
  return source;
}

void admitServiceAccount(core::Pod& pod, const std::string& ns,
                         const ServiceAccountAdmissionOptions& options) {
  if (pod.metadata().annotations().contains(kMirrorPodAnnotation)) return;
  auto* spec = pod.mutable_spec();
  if (spec->service_account_name().empty()) {
    spec->set_service_account_name(spec->service_account().empty() ? kDefaultServiceAccount
                                                                   : spec->service_account());
  }
  spec->set_service_account(spec->service_account_name());  // the v1 conversion mirrors it
  const std::string& name = spec->service_account_name();
  // The cache may lag behind a create; "default" may still be on its way from the controller.
  std::optional<core::ServiceAccount> sa;
  const int attempts = name == kDefaultServiceAccount ? std::max(1, options.default_attempts) : 1;
  const std::chrono::milliseconds interval = retryInterval(options.retry_min);
  for (int i = 0; i < attempts && !sa; ++i) {
    if (i != 0) std::this_thread::sleep_for(interval);
    sa = options.lookup(ns, name);
  }
  if (!sa) {
    const auto& meta = pod.metadata();
    throw forbidden({"", "pods"}, meta.name().empty() ? meta.generate_name() : meta.name(),
                    "error looking up service account " + ns + "/" + name + ": serviceaccount \"" +
                        name + "\" not found");
  }
  if (shouldAutomount(*sa, pod)) mountServiceAccountToken(pod, options);
  if (spec->image_pull_secrets().empty()) {
    for (const auto& secret : sa->image_pull_secrets())
      *spec->add_image_pull_secrets() = secret;
  }
}

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
