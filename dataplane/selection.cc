#include "dataplane/selection.h"

#include <algorithm>

namespace skiff::dataplane {
namespace {

bool isServingTerminating(const Backend& b) {
  return b.serving && b.terminating;
}

template <class Pred>
std::vector<uint32_t> select(const Service& service, Pred pred) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < service.backends.size(); ++i) {
    if (pred(service.backends[i])) out.push_back(static_cast<uint32_t>(i));
  }
  return out;
}

}  // namespace

BackendScope backendScope(const Service& service, FrontendKind kind, TrafficOrigin origin) {
  if (!isExternal(kind)) {
    return service.internalTrafficPolicy == TrafficPolicy::kLocal ? BackendScope::kNodeLocal
                                                                  : BackendScope::kCluster;
  }
  if (service.externalTrafficPolicy == TrafficPolicy::kLocal &&
      origin == TrafficOrigin::kExternal) {
    return BackendScope::kNodeLocal;
  }
  return BackendScope::kCluster;
}

std::string_view toString(Selection selection) {
  switch (selection) {
    case Selection::kReady:
      return "Ready";
    case Selection::kServingTerminating:
      return "ServingTerminating";
    case Selection::kNoBackends:
      return "NoBackends";
    case Selection::kNoLocalBackends:
      return "NoLocalBackends";
  }
  return "?";
}

EligibleBackends eligibleBackends(const Service& service, AddressFamily family,
                                  BackendScope scope) {
  const bool localOnly = scope == BackendScope::kNodeLocal;
  auto inScope = [&](const Backend& b) {
    return b.address.family() == family && b.weight > 0 && (!localOnly || b.local);
  };

  EligibleBackends out;
  out.indices = select(service, [&](const Backend& b) { return inScope(b) && b.ready; });
  if (!out.indices.empty()) {
    out.selection = Selection::kReady;
    return out;
  }
  out.indices =
      select(service, [&](const Backend& b) { return inScope(b) && isServingTerminating(b); });
  if (!out.indices.empty()) {
    out.selection = Selection::kServingTerminating;
    return out;
  }

  // Nothing here: reject when the cluster has nothing either, drop when only this node lacks.
  const bool usableElsewhere =
      localOnly &&
      std::any_of(service.backends.begin(), service.backends.end(), [&](const Backend& b) {
        return b.address.family() == family && b.weight > 0 && (b.ready || isServingTerminating(b));
      });
  out.selection = usableElsewhere ? Selection::kNoLocalBackends : Selection::kNoBackends;
  return out;
}

bool sourceAllowed(const Service& service, FrontendKind kind, const IpAddress& source) {
  if (kind != FrontendKind::kLoadBalancer || service.loadBalancerSourceRanges.empty()) return true;
  return std::any_of(service.loadBalancerSourceRanges.begin(),
                     service.loadBalancerSourceRanges.end(),
                     [&](const IpPrefix& range) { return range.contains(source); });
}

EstablishedFlow establishedFlow(const Service& service, L4Protocol protocol,
                                const BackendKey& backend) {
  auto it = std::find_if(service.backends.begin(), service.backends.end(),
                         [&](const Backend& b) { return b.key() == backend; });
  if (it == service.backends.end()) return EstablishedFlow::kReselect;
  if (protocol == L4Protocol::kUdp && !it->ready && !it->serving) return EstablishedFlow::kReselect;
  return EstablishedFlow::kKeep;
}

bool affinityHolds(const Service& service, const EligibleBackends& eligible,
                   const BackendKey& backend, uint64_t idleSeconds) {
  if (service.affinity != SessionAffinity::kClientIP) return false;
  if (idleSeconds >= service.affinityTimeoutSeconds) return false;
  return std::any_of(eligible.indices.begin(), eligible.indices.end(), [&](uint32_t i) {
    return i < service.backends.size() && service.backends[i].key() == backend;
  });
}

}  // namespace skiff::dataplane
