#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/message.h>

#include "control/api/registry.h"
#include "control/api/time.h"
#include "skiff/api/apps_v1.pb.h"
#include "skiff/api/core_v1.pb.h"
#include "skiff/api/meta_v1.pb.h"
#include "skiff/api/runtime.pb.h"

// What every controller shares: the actions a pure reconciler returns, and the helpers of
// Kubernetes' pkg/controller (controller refs, pod readiness and availability, the pod-template
// hash, IntOrString scaling).

namespace skiff::controllers {

// One write a reconciler asks for. The controller shell turns it into a Client call.
struct Action {
  enum class Verb { kCreate, kUpdate, kUpdateStatus, kDelete };
  Verb verb = Verb::kCreate;
  const api::ResourceType* type = nullptr;
  // kCreate/kUpdate/kUpdateStatus: the whole object to send (its metadata.resourceVersion makes
  // the update compare-and-swap). kDelete: null.
  std::shared_ptr<google::protobuf::Message> object;
  std::string ns;
  std::string name;                // kDelete (and, for the others, the object's name if known)
  std::string propagation_policy;  // kDelete: "", "Background", "Foreground", "Orphan"
  std::string precondition_uid;    // kDelete: only this incarnation
  // kCreate: the slow-start batch (0, 1, 2, ... of sizes 1, 2, 4, ...); the shell runs batch by
  // batch and stops at the first batch with a failure.
  int batch = 0;
  // The Event to record once the write succeeded ("" = none), e.g. "SuccessfulCreate".
  std::string event_reason;
  std::string event_message;
};

struct ReconcileResult {
  std::vector<Action> actions;
  // Reconcile again after this long (minReadySeconds, progress deadlines); nullopt = no need.
  std::optional<std::chrono::milliseconds> requeue_after;
  // A problem with the object itself (an invalid selector): reported, not retried by backoff.
  std::string warning_reason;
  std::string warning;

  void requeueAfter(std::chrono::milliseconds delay) {
    if (delay < std::chrono::milliseconds(1)) delay = std::chrono::milliseconds(1);
    if (!requeue_after || delay < *requeue_after) requeue_after = delay;
  }
};

const char* toString(Action::Verb verb);

// meta/v1 Time <-> Timestamp.
api::Timestamp toTimestamp(const api::meta::v1::Time& time);
void setTime(api::meta::v1::Time& time, const api::Timestamp& t);
// b - a in milliseconds.
int64_t millisBetween(const api::Timestamp& a, const api::Timestamp& b);
api::Timestamp addSeconds(api::Timestamp t, int64_t seconds);
// Kubernetes' creationTimestamp order, ties broken by name.
bool olderThan(const api::meta::v1::ObjectMeta& a, const api::meta::v1::ObjectMeta& b);

// The ownerReference with controller=true, or null (metav1.GetControllerOf).
const api::meta::v1::OwnerReference* controllerOf(const api::meta::v1::ObjectMeta& meta);
// An ownerReference to `owner` with controller=true and blockOwnerDeletion=true
// (metav1.NewControllerRef).
api::meta::v1::OwnerReference makeControllerRef(const api::meta::v1::ObjectMeta& owner,
                                                const api::ResourceType& owner_type);

// The ResourceType of a message type.
template <class T>
const api::ResourceType& typeOf() {
  return *api::Registry::builtin().byDescriptor(T::descriptor());
}

// Pods (pkg/api/v1/pod and pkg/controller).
bool isPodActive(const api::core::v1::Pod& pod);  // not Succeeded/Failed, not being deleted
bool isPodTerminal(const api::core::v1::Pod& pod);
const api::core::v1::PodCondition* podCondition(const api::core::v1::Pod& pod,
                                                std::string_view type);
bool isPodReady(const api::core::v1::Pod& pod);
// Ready for at least min_ready_seconds at `now` (podutil.IsPodAvailable).
bool isPodAvailable(const api::core::v1::Pod& pod, int32_t min_ready_seconds,
                    const api::Timestamp& now);

// v1.Toleration.ToleratesTaint (the DaemonSet's placement and the node lifecycle's NoExecute
// eviction): effect and key match when set, Exists tolerates any value, Equal (or no operator)
// the same value; an empty key goes only with Exists (Kubernetes' validation refuses it
// otherwise).
bool toleratesTaint(const api::core::v1::Toleration& toleration, const api::core::v1::Taint& taint);

// v1.NodeSelectorTerm against a Node (labels for matchExpressions, metadata.name for matchFields;
// a term without requirements matches nothing), and a NodeSelector (any of its terms).
bool nodeSelectorTermMatches(const api::core::v1::NodeSelectorTerm& term,
                             const api::core::v1::Node& node);
bool nodeMatchesNodeSelector(const api::core::v1::NodeSelector& selector,
                             const api::core::v1::Node& node);

// The pod-template hash of a Deployment's ReplicaSets (controller.ComputeHash): FNV-32a over the
// template's deterministic serialization, then the collision count as 4 little-endian bytes when
// set, rendered with rand.SafeEncodeString of the decimal value (Kubernetes' alphabet
// "bcdfghjklmnpqrstvwxz2456789", so names look like kubectl shows them: "web-7d4b9c8f6d").
// Kubernetes hashes Go's spew dump of the struct instead of protobuf bytes, so the values differ
// from a real kube-controller-manager's; the form and the properties are the same.
std::string computeTemplateHash(const api::core::v1::PodTemplateSpec& tmpl,
                                std::optional<int32_t> collision_count);
uint32_t fnv32a(std::string_view bytes, uint32_t hash = 2166136261u);
std::string safeEncodeString(std::string_view s);

// intstr.GetScaledValueFromIntOrPercent: an int as is, "25%" of `total` rounded up or down.
// Throws std::invalid_argument for a string that is not a percentage.
int32_t scaledValueFromIntOrPercent(const api::runtime::IntOrString& value, int32_t total,
                                    bool round_up);

// Two pod templates equal once the pod-template-hash label is ignored
// (deploymentutil.EqualIgnoreHash).
bool equalIgnoreHash(const api::core::v1::PodTemplateSpec& a,
                     const api::core::v1::PodTemplateSpec& b);

inline constexpr std::string_view kPodTemplateHashLabel = "pod-template-hash";

}  // namespace skiff::controllers
