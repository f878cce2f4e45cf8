#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/message.h>

#include "control/apiserver/auth/authorizer.h"
#include "control/apiserver/resource_storage.h"
#include "skiff/api/core_v1.pb.h"

// Kubernetes' Node authorizer and the NodeRestriction admission, for a kubelet with an identity
// of its own (user system:node:NAME in group system:nodes):
//
//   secrets, configmaps: get (and list/watch of one object by metadata.name) only when a pod
//     bound to the node references it (volumes, projected sources, envFrom, env valueFrom,
//     imagePullSecrets); no list or watch across a namespace or the cluster; no writes.
//   persistentvolumeclaims: get only when a pod bound to the node mounts it.
//   persistentvolumes: get only of the volume such a claim is bound to (spec.volumeName), and
//     get and update of a skiff.io/local-path volume made for the node (its annotation
//     local.path.provisioner/selected-node), whose finalizers are all an update may change (the
//     kubelet removes skiff.io/local-path-data once the data is gone).
//   serviceaccounts/token: create only for a service account a pod bound to the node runs as
//     (ApiAuth's TokenRequest then requires the token be bound to such a pod).
//   nodes, nodes/status: writes only to its own Node (create: the name in the body, admit()).
//   pods: status writes and deletes only of pods bound to it; no spec updates; creates only of
//     pods bound to it (mirror pods, admit()).
//   leases (coordination.k8s.io): only its own, kube-node-lease/NAME.
// Everything else has no opinion here (RBAC's system:node role decides). A denial is final: RBAC
// cannot widen what a node may read or write of these kinds.
//
// The pod -> referenced-object relation is read per request from the pods watch cache's
// spec.nodeName index (the node's own pods only, never a scan of every pod), so it is exactly as
// fresh as the watch that feeds the kubelet its pods. Thread-safe (const, over thread-safe
// lookups).

namespace skiff::apiserver::auth {

class NodeAuthorizer {
 public:
  enum class Verdict { kNoOpinion, kAllow, kDeny };
  struct Result {
    Verdict verdict = Verdict::kNoOpinion;
    std::string reason;
  };
  // The pods bound to `node` (every namespace).
  using PodsOnNode = std::function<std::vector<ObjectPtr>(std::string_view node)>;
  // One pod, or nullptr.
  using FindPod = std::function<ObjectPtr(std::string_view ns, std::string_view name)>;

  // One PersistentVolumeClaim, or nullptr.
  using FindClaim = std::function<ObjectPtr(std::string_view ns, std::string_view name)>;

  // One PersistentVolume, or nullptr.
  using FindVolume = std::function<ObjectPtr(std::string_view name)>;
  // Without `find_claim` (`find_volume`), nodes get no PersistentVolumes through claims (through
  // their local-path volumes).
  NodeAuthorizer(PodsOnNode pods_on_node, FindPod find_pod, FindClaim find_claim = nullptr,
                 FindVolume find_volume = nullptr);

  // NAME of a node identity (user system:node:NAME in group system:nodes), else nullopt.
  static std::optional<std::string> nodeName(const UserInfo& user);

  Result authorize(const Attributes& attributes) const;
  // NodeRestriction's checks of what a node creates or replaces, where the name is in the body:
  // its own Node and Lease, pods bound to it. ApiError 403 otherwise; other users and kinds pass.
  void admit(const UserInfo& user, std::string_view ns, const google::protobuf::Message& object,
             const google::protobuf::Message* current) const;
  // Whether admit() checks objects of this kind (Node, Pod, Lease, PersistentVolume).
  static bool admits(const google::protobuf::Message& object);

  // What a pod references, by kind: "secrets", "configmaps", "persistentvolumeclaims",
  // "serviceaccounts" (for tests and the authorizer).
  static std::vector<std::string> references(const api::core::v1::Pod& pod,
                                             std::string_view resource);

 private:
  // Whether a pod bound to `node` in `ns` references `resource` `name`.
  bool referenced(const std::string& node, std::string_view resource, std::string_view ns,
                  std::string_view name) const;
  Result readReferenced(const std::string& node, const Attributes& a, std::string_view what) const;
  Result podWrite(const std::string& node, const Attributes& a) const;

  Result readVolume(const std::string& node, const Attributes& a) const;

  PodsOnNode pods_on_node_;
  FindPod find_pod_;
  FindClaim find_claim_;
  FindVolume find_volume_;
};

}  // namespace skiff::apiserver::auth
