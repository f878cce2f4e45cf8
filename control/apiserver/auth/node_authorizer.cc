#include "control/apiserver/auth/node_authorizer.h"

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>

#include "control/apiserver/errors.h"
#include "control/apiserver/object_meta.h"
#include "skiff/api/coordination_v1.pb.h"

namespace skiff::apiserver::auth {
namespace {

namespace core = api::core::v1;

constexpr std::string_view kNodeUserPrefix = "system:node:";
constexpr std::string_view kNodesGroup = "system:nodes";
constexpr std::string_view kNodeLeaseNamespace = "kube-node-lease";

using Result = NodeAuthorizer::Result;
using Verdict = NodeAuthorizer::Verdict;

Result allow() {
  return {Verdict::kAllow, ""};
}
Result deny(std::string reason) {
  return {Verdict::kDeny, std::move(reason)};
}
Result noOpinion() {
  return {};
}

bool isWrite(std::string_view verb) {
  return verb == "create" || verb == "update" || verb == "patch" || verb == "delete" ||
         verb == "deletecollection";
}

void addName(std::vector<std::string>& out, const std::string& name) {
  if (!name.empty() && std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
}

std::string podServiceAccount(const core::Pod& pod) {
  if (!pod.spec().service_account_name().empty()) return pod.spec().service_account_name();
  if (!pod.spec().service_account().empty()) return pod.spec().service_account();
  return "default";
}

}  // namespace

NodeAuthorizer::NodeAuthorizer(PodsOnNode pods_on_node, FindPod find_pod, FindClaim find_claim,
                               FindVolume find_volume)
    : pods_on_node_(std::move(pods_on_node)),
      find_pod_(std::move(find_pod)),
      find_claim_(std::move(find_claim)),
      find_volume_(std::move(find_volume)) {}

namespace {

// A skiff.io/local-path volume made for `node`.
bool localPathVolumeOf(const core::PersistentVolume& pv, const std::string& node) {
  const auto& a = pv.metadata().annotations();
  auto by = a.find("pv.kubernetes.io/provisioned-by");
  auto on = a.find("local.path.provisioner/selected-node");
  return by != a.end() && by->second == "skiff.io/local-path" && on != a.end() &&
         on->second == node;
}

}  // namespace

NodeAuthorizer::Result NodeAuthorizer::readVolume(const std::string& node,
                                                  const Attributes& a) const {
  if (a.name.empty()) return deny("no persistentvolume name given");
  if (find_volume_ != nullptr && (a.verb == "get" || a.verb == "update") && a.subresource.empty()) {
    ObjectPtr object = find_volume_(a.name);
    const auto* pv = dynamic_cast<const core::PersistentVolume*>(object.get());
    if (pv != nullptr && localPathVolumeOf(*pv, node)) return allow();
  }
  if (a.verb != "get") return deny("a node can only get individual persistentvolumes");
  if (find_claim_ != nullptr) {
    for (const auto& object : pods_on_node_(node)) {
      const auto* pod = dynamic_cast<const core::Pod*>(object.get());
      if (pod == nullptr) continue;
      for (const auto& claim_name : references(*pod, "persistentvolumeclaims")) {
        ObjectPtr claim = find_claim_(pod->metadata().namespace_(), claim_name);
        const auto* pvc = dynamic_cast<const core::PersistentVolumeClaim*>(claim.get());
        if (pvc != nullptr && pvc->spec().volume_name() == a.name) return allow();
      }
    }
  }
  return deny("no relationship found between node '" + node + "' and this object");
}

std::optional<std::string> NodeAuthorizer::nodeName(const UserInfo& user) {
  if (!user.name.starts_with(kNodeUserPrefix) || !user.inGroup(std::string(kNodesGroup))) {
    return std::nullopt;
  }
  std::string name = user.name.substr(kNodeUserPrefix.size());
  if (name.empty()) return std::nullopt;
  return name;
}

std::vector<std::string> NodeAuthorizer::references(const core::Pod& pod,
                                                    std::string_view resource) {
  std::vector<std::string> out;
  const auto& spec = pod.spec();
  if (resource == "serviceaccounts") {
    out.push_back(podServiceAccount(pod));
    return out;
  }
  const bool secrets = resource == "secrets";
  const bool config_maps = resource == "configmaps";
  if (resource == "persistentvolumeclaims") {
    for (const auto& v : spec.volumes()) {
      if (v.has_persistent_volume_claim()) addName(out, v.persistent_volume_claim().claim_name());
    }
    return out;
  }
  if (!secrets && !config_maps) return out;
  if (secrets) {
    for (const auto& ref : spec.image_pull_secrets())
      addName(out, ref.name());
  }
  for (const auto* containers : {&spec.init_containers(), &spec.containers()}) {
    for (const auto& c : *containers) {
      for (const auto& from : c.env_from()) {
        if (secrets && from.has_secret_ref()) addName(out, from.secret_ref().name());
        if (config_maps && from.has_config_map_ref()) addName(out, from.config_map_ref().name());
      }
      for (const auto& env : c.env()) {
        if (!env.has_value_from()) continue;
        const auto& source = env.value_from();
        if (secrets && source.has_secret_key_ref()) addName(out, source.secret_key_ref().name());
        if (config_maps && source.has_config_map_key_ref()) {
          addName(out, source.config_map_key_ref().name());
        }
      }
    }
  }
  for (const auto& v : spec.volumes()) {
    if (secrets && v.has_secret()) addName(out, v.secret().secret_name());
    if (config_maps && v.has_config_map()) addName(out, v.config_map().name());
    if (v.has_projected()) {
      for (const auto& source : v.projected().sources()) {
        if (secrets && source.has_secret()) addName(out, source.secret().name());
        if (config_maps && source.has_config_map()) addName(out, source.config_map().name());
      }
    }
  }
  return out;
}

bool NodeAuthorizer::referenced(const std::string& node, std::string_view resource,
                                std::string_view ns, std::string_view name) const {
  for (const auto& object : pods_on_node_(node)) {
    const auto* pod = dynamic_cast<const core::Pod*>(object.get());
    if (pod == nullptr || pod->metadata().namespace_() != ns) continue;
    if (pod->spec().node_name() != node) continue;  // the index is the cache's; be exact
    auto names = references(*pod, resource);
    if (std::find(names.begin(), names.end(), name) != names.end()) return true;
  }
  return false;
}

Result NodeAuthorizer::readReferenced(const std::string& node, const Attributes& a,
                                      std::string_view what) const {
  const bool get = a.verb == "get";
  const bool one = (a.verb == "list" || a.verb == "watch") && !a.name.empty();
  if (!get && !one) {
    if (a.verb == "list" || a.verb == "watch") {
      return deny("a node can only read individual " + std::string(what) +
                  " referenced by its pods, not list or watch them");
    }
    return deny("a node can only read " + std::string(what) + ", not " + a.verb + " them");
  }
  if (!a.subresource.empty()) return deny("a node cannot read subresources of " + a.resource);
  if (a.namespace_.empty()) return deny("a node can only read namespaced " + a.resource);
  if (a.name.empty()) return deny("no object name given");
  if (!referenced(node, a.resource, a.namespace_, a.name)) {
    return deny("no relationship found between node '" + node + "' and this object");
  }
  return allow();
}

Result NodeAuthorizer::podWrite(const std::string& node, const Attributes& a) const {
  if (a.verb == "create") {
    // pods/eviction and pods/binding are not a kubelet's; a mirror pod's node is admit()'s.
    if (a.subresource.empty()) return noOpinion();
    return deny("a node may not create pods/" + a.subresource);
  }
  if (a.subresource.empty() && (a.verb == "update" || a.verb == "patch")) {
    return deny("node '" + node + "' can only update pod status");
  }
  if (!a.subresource.empty() && a.subresource != "status") {
    return deny("a node may not " + a.verb + " pods/" + a.subresource);
  }
  if (a.verb == "deletecollection") return deny("a node may not delete collections of pods");
  if (a.name.empty()) return deny("no pod name given");
  ObjectPtr object = find_pod_(a.namespace_, a.name);
  // A pod that is gone is the store's 404 to answer (a kubelet's late delete), not a 403.
  if (object == nullptr) return noOpinion();
  const auto* pod = dynamic_cast<const core::Pod*>(object.get());
  if (pod == nullptr || pod->spec().node_name() != node) {
    return deny("node '" + node + "' can only " + a.verb + " pods bound to it");
  }
  return allow();
}

Result NodeAuthorizer::authorize(const Attributes& a) const {
  std::optional<std::string> node = nodeName(a.user);
  if (!node || !a.resource_request) return noOpinion();
  const std::string& group = a.api_group;
  const std::string& resource = a.resource;
  if (group.empty() && (resource == "secrets" || resource == "configmaps")) {
    return readReferenced(*node, a, resource);
  }
  if (group.empty() && resource == "persistentvolumeclaims") {
    if (a.verb != "get") {
      return deny("a node can only get individual persistentvolumeclaims its pods mount");
    }
    return readReferenced(*node, a, resource);
  }
  if (group.empty() && resource == "persistentvolumes") return readVolume(*node, a);
  if (group.empty() && resource == "serviceaccounts" && a.subresource == "token") {
    if (a.verb != "create") return deny("a node can only create service account tokens");
    if (a.namespace_.empty() || a.name.empty()) return deny("no service account given");
    if (!referenced(*node, "serviceaccounts", a.namespace_, a.name)) {
      return deny("no relationship found between node '" + *node + "' and this object");
    }
    return allow();
  }
  if (group.empty() && resource == "nodes") {
    if (!isWrite(a.verb)) return noOpinion();
    if (a.verb == "deletecollection") return deny("a node may not delete collections of nodes");
    if (a.verb == "create") return noOpinion();  // the body's name is admit()'s
    if (a.name != *node) return deny("node '" + *node + "' can only modify its own Node object");
    return noOpinion();  // RBAC's system:node role holds the verbs
  }
  if (group.empty() && resource == "pods") {
    if (!isWrite(a.verb)) return noOpinion();
    return podWrite(*node, a);
  }
  if (group == "coordination.k8s.io" && resource == "leases") {
    if (a.namespace_ != kNodeLeaseNamespace) {
      return deny("a node can only access leases in the " + std::string(kNodeLeaseNamespace) +
                  " namespace");
    }
    if (a.verb != "create" && a.name != *node) {
      return deny("node '" + *node + "' can only access its own Lease");
    }
    return noOpinion();
  }
  return noOpinion();
}

bool NodeAuthorizer::admits(const google::protobuf::Message& object) {
  return dynamic_cast<const core::Node*>(&object) != nullptr ||
         dynamic_cast<const core::Pod*>(&object) != nullptr ||
         dynamic_cast<const core::PersistentVolume*>(&object) != nullptr ||
         dynamic_cast<const api::coordination::v1::Lease*>(&object) != nullptr;
}

void NodeAuthorizer::admit(const UserInfo& user, std::string_view ns,
                           const google::protobuf::Message& object,
                           const google::protobuf::Message* current) const {
  std::optional<std::string> node = nodeName(user);
  if (!node) return;
  if (const auto* n = dynamic_cast<const core::Node*>(&object)) {
    if (n->metadata().name() != *node) {
      throw forbidden({"", "nodes"}, n->metadata().name(),
                      "node '" + *node + "' cannot modify node '" + n->metadata().name() + "'");
    }
  } else if (const auto* p = dynamic_cast<const core::Pod*>(&object)) {
    const auto* before = dynamic_cast<const core::Pod*>(current);
    if (p->spec().node_name() != *node ||
        (before != nullptr && before->spec().node_name() != *node)) {
      throw forbidden({"", "pods"}, p->metadata().name(),
                      "node '" + *node + "' can only create or modify pods bound to it");
    }
  } else if (const auto* pv = dynamic_cast<const core::PersistentVolume*>(&object)) {
    // A node changes only the finalizers of its local-path volumes.
    const auto* before = dynamic_cast<const core::PersistentVolume*>(current);
    bool only_finalizers = before != nullptr && localPathVolumeOf(*before, *node);
    if (only_finalizers) {
      core::PersistentVolume a = *pv;
      core::PersistentVolume b = *before;
      for (auto* m : {a.mutable_metadata(), b.mutable_metadata()}) {
        m->clear_finalizers();
        m->clear_resource_version();
        m->clear_managed_fields();
        m->clear_generation();
      }
      a.clear_status();
      b.clear_status();
      // Compared as messages: map fields (annotations, labels) serialize in no fixed order.
      only_finalizers = google::protobuf::util::MessageDifferencer::Equals(a, b);
    }
    if (!only_finalizers) {
      throw forbidden(
          {"", "persistentvolumes"}, pv->metadata().name(),
          "node '" + *node + "' can only remove finalizers of the local-path volumes made for it");
    }
  } else if (const auto* l = dynamic_cast<const api::coordination::v1::Lease*>(&object)) {
    if (ns != kNodeLeaseNamespace || l->metadata().name() != *node) {
      throw forbidden({"coordination.k8s.io", "leases"}, l->metadata().name(),
                      "node '" + *node + "' can only access its own Lease in " +
                          std::string(kNodeLeaseNamespace));
    }
  }
}

}  // namespace skiff::apiserver::auth
