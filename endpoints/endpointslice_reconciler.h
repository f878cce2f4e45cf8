#pragma once

// The EndpointSlice reconciler as a pure function, after Kubernetes'
// pkg/controller/endpointslice/reconciler.go: the desired endpoints of a Service (from the Pods its
// selector picked) against the slices that exist, turned into creates, updates and deletes with
// as little churn as possible. The controller (endpointslice_controller.h) feeds it from its
// informer caches and writes the result through the Client.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "control/api/time.h"
#include "skiff/api/core_v1.pb.h"
#include "skiff/api/discovery_v1.pb.h"

namespace skiff::endpoints {

namespace core = api::core::v1;
namespace discovery = api::discovery::v1;

// Well-known labels and annotations (k8s.io/api/discovery/v1, k8s.io/api/core/v1).
inline constexpr std::string_view kLabelServiceName = "kubernetes.io/service-name";
inline constexpr std::string_view kLabelManagedBy = "endpointslice.kubernetes.io/managed-by";
inline constexpr std::string_view kLabelHeadless = "service.kubernetes.io/headless";
inline constexpr std::string_view kLabelTopologyZone = "topology.kubernetes.io/zone";
inline constexpr std::string_view kAnnotationLastChangeTriggerTime =
    "endpoints.kubernetes.io/last-change-trigger-time";
// The managed-by value of Kubernetes' own controller: Skiff's controller uses it too, so that
// kubectl and other tools treat its slices as the standard ones.
inline constexpr std::string_view kControllerName = "endpointslice-controller.k8s.io";
inline constexpr std::string_view kAddressTypeIPv4 = "IPv4";
inline constexpr std::string_view kAddressTypeIPv6 = "IPv6";

struct ReconcilerOptions {
  // Kubernetes' --max-endpoints-per-slice: default 100, at most 1000.
  int maxEndpointsPerSlice = 100;
  std::string controllerName = std::string(kControllerName);
};

// The Node named by a pod's spec.nodeName, or nullptr when the cache has none.
using NodeLookup = std::function<const core::Node*(std::string_view name)>;

struct SliceChanges {
  // New slices: metadata.generateName ("<service>-"), no name.
  std::vector<discovery::EndpointSlice> create;
  // Whole slices to PUT: copies of existing ones (name, resourceVersion) with new contents, or a
  // new slice that takes the name of one that would otherwise be deleted (no resourceVersion).
  std::vector<discovery::EndpointSlice> update;
  // Existing slices to delete, as they were given.
  std::vector<discovery::EndpointSlice> remove;
  // Pods left out because their Node is unknown ("skipping Pod web-1 for Service default/web:
  // Node node-9 not found"): the controller retries the service later.
  std::vector<std::string> errors;

  bool empty() const { return create.empty() && update.empty() && remove.empty(); }
};

// Reconciles one Service that has a selector. `pods` are the pods the selector picked in the
// service's namespace (any state: the rules below leave out those that do not belong);
// `existing` are the slices labelled with the service's name and this controller's managed-by
// value. `triggerTime` goes into the last-change-trigger-time annotation of every slice created
// or updated (removed when nullopt).
//
// As Kubernetes does it: one group of slices per address type the service has (spec.ipFamilies,
// else its ClusterIP's family, else both for a headless service) and per distinct set of ports
// (named targetPorts resolve per pod, so pods can differ); slices of an address type the service
// no longer has, or owned by another object, go; endpoints that changed are updated in place;
// new ones first fill the slices being updated anyway (fullest first), then the unchanged slice
// they fit best, then new slices of at most maxEndpointsPerSlice; a slice left empty is deleted,
// unless a create can take its name; with no endpoints at all, one placeholder slice without
// ports stays. A service being deleted gets no new slices. The output is deterministic (sorted
// by endpoint identity and slice name), so tables can test it.
SliceChanges reconcile(const core::Service& service, const std::vector<const core::Pod*>& pods,
                       const std::vector<const discovery::EndpointSlice*>& existing,
                       const NodeLookup& nodes, const ReconcilerOptions& options = {},
                       std::optional<api::Timestamp> triggerTime = std::nullopt);

// The pieces, for the controller and the tests.

// Not Succeeded or Failed, and has an IP (terminating pods stay: they drain).
bool shouldPodBeInEndpoints(const core::Pod& pod);
// The Ready condition is True.
bool isPodReady(const core::Pod& pod);
// "IPv4", "IPv6" (kAddressType*).
std::set<std::string> addressTypesForService(const core::Service& service);
// The service's ports as this pod serves them: a named targetPort resolves to the container port
// of that name and protocol (ports that do not resolve are left out), a number is taken as it is,
// and an unset one is the service port. A headless service without ports has none.
std::vector<discovery::EndpointPort> endpointPorts(const core::Service& service,
                                                   const core::Pod& pod);
// The endpoint of `pod` for slices of `addressType`; `node` may be null (no zone).
discovery::Endpoint podToEndpoint(const core::Pod& pod, const core::Node* node,
                                  const core::Service& service, std::string_view addressType);
// The labels a slice of `service` carries: the service's own (minus the reserved keys), the
// service-name and managed-by labels, and the headless label when the service has no ClusterIP.
std::map<std::string, std::string> sliceLabels(const core::Service& service,
                                               std::string_view controllerName);
// A controller ownerReference from the slice to the service with the service's uid.
bool ownedBy(const discovery::EndpointSlice& slice, const core::Service& service);

}  // namespace skiff::endpoints
