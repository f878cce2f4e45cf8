#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "control/api/value.h"
#include "control/controllers/controller_utils.h"

// The namespace controller's pure parts (pkg/controller/namespace/deletion): which resources a
// terminating namespace must be emptied of (from discovery), and, once a pass over them is done,
// the namespace's status (phase Terminating, the five deletion conditions) and whether the
// "kubernetes" finalizer may go.

namespace skiff::controllers {

inline constexpr std::string_view kNamespaceFinalizer = "kubernetes";

// One namespaced resource the apiserver serves, as discovery lists it.
struct NamespacedResource {
  api::ResourceType type;  // group, version, kind, plural; namespaced = true; no descriptor
  bool delete_collection = false;
  bool list = false;
  bool remove = false;                       // the "delete" verb
  std::string groupVersionResource() const;  // "apps/v1, Resource=deployments"
};

// The namespaced resources of one APIResourceList (GET /api/v1 or /apis/{group}/{version}) that
// can be deleted and listed (kube's DiscoveryClient + the "delete" filter of the deleter);
// subresources are skipped. Throws std::invalid_argument naming what is wrong for an answer that
// is not an APIResourceList.
std::vector<NamespacedResource> namespacedResourcesOf(const api::Value& resource_list);
// The preferred groupVersions of an APIGroupList (GET /apis): "apps/v1", ...
std::vector<std::string> preferredGroupVersions(const api::Value& group_list);

// What one pass of deletion found, per resource ("pods", "deployments.apps").
struct NamespaceContent {
  std::map<std::string, int> remaining;  // resource -> objects still there after the pass
  // finalizer -> objects still held by it ("foregroundDeletion" -> 2).
  std::map<std::string, int> finalizers_remaining;
  std::vector<std::string> discovery_failures;  // "apps/v1: connection refused"
  std::vector<std::string> deletion_failures;   // "pods: forbidden ..."
  // The longest grace period of a remaining object (a pod terminating), in seconds.
  int64_t estimate_seconds = 0;
};

struct NamespaceDeletionResult {
  // The namespace with phase Terminating and the conditions of this pass, when its status must
  // be written (nullopt: unchanged).
  std::optional<api::core::v1::Namespace> status_update;
  // The namespace without the "kubernetes" finalizer, to PUT to namespaces/{name}/finalize, once
  // nothing is left (nullopt: not yet).
  std::optional<api::core::v1::Namespace> finalize;
  // Look again after this long (content still going away).
  std::optional<std::chrono::milliseconds> requeue_after;
};

// True when the namespace still carries the "kubernetes" finalizer (it waits for this controller).
bool namespaceNeedsFinalize(const api::core::v1::Namespace& ns);

// The namespace's status after a pass: phase Terminating, and the conditions
// NamespaceDeletionDiscoveryFailure, NamespaceDeletionGroupVersionParsingFailure,
// NamespaceDeletionContentFailure, NamespaceContentRemaining and NamespaceFinalizersRemaining with
// Kubernetes' reasons and messages (a condition keeps its lastTransitionTime while its status
// stays). Finalizes when discovery and deletion all worked and nothing remains.
NamespaceDeletionResult reconcileNamespaceDeletion(const api::core::v1::Namespace& ns,
                                                   const NamespaceContent& content,
                                                   const api::Timestamp& now);

}  // namespace skiff::controllers
