#include "dataplane/service.h"

#include <algorithm>
#include <array>
#include <set>

#include "dataplane/hash.h"
#include "dataplane/maglev.h"

namespace skiff::dataplane {
namespace {

std::string hostPort(const IpAddress& address, uint16_t port) {
  std::string out;
  if (address.isV6()) {
    out = "[" + address.toString() + "]";
  } else {
    out = address.toString();
  }
  out += ":" + std::to_string(port);
  return out;
}

Status fail(const Service& service, const std::string& what) {
  return Status::failure("service \"" + service.id + "\": " + what);
}

Status validateFrontends(const Service& s) {
  if (s.frontends.empty()) return fail(s, "has no frontends");
  std::set<FrontendKey> seen;
  for (const Frontend& f : s.frontends) {
    const std::string name = std::string(toString(f.kind)) + " frontend " + f.key.toString();
    if (f.key.protocol != s.frontends.front().key.protocol) {
      return fail(s, name + " does not have the service's protocol " +
                         std::string(toString(s.frontends.front().key.protocol)));
    }
    if (f.key.port == 0) return fail(s, name + " has port 0");
    if (f.key.address.isUnspecified() && f.kind != FrontendKind::kNodePort) {
      return fail(s, name + " has an unspecified address");
    }
    if (!seen.insert(f.key).second) return fail(s, name + " is listed twice");
  }
  return {};
}

Status validateBackends(const Service& s) {
  std::set<BackendKey> seen;
  for (const Backend& b : s.backends) {
    const std::string name = "backend " + b.key().toString();
    if (b.port == 0) return fail(s, name + " has port 0");
    if (b.address.isUnspecified()) return fail(s, name + " has an unspecified address");
    if (!seen.insert(b.key()).second) return fail(s, name + " is listed twice");
  }
  return {};
}

}  // namespace

std::string_view toString(L4Protocol protocol) {
  switch (protocol) {
    case L4Protocol::kTcp:
      return "TCP";
    case L4Protocol::kUdp:
      return "UDP";
    case L4Protocol::kSctp:
      return "SCTP";
  }
  return "?";
}

std::optional<L4Protocol> parseL4Protocol(std::string_view text) {
  for (L4Protocol p : {L4Protocol::kTcp, L4Protocol::kUdp, L4Protocol::kSctp}) {
    if (text == toString(p)) return p;
  }
  return std::nullopt;
}

std::string_view toString(FrontendKind kind) {
  switch (kind) {
    case FrontendKind::kClusterIP:
      return "ClusterIP";
    case FrontendKind::kNodePort:
      return "NodePort";
    case FrontendKind::kExternalIP:
      return "ExternalIP";
    case FrontendKind::kLoadBalancer:
      return "LoadBalancer";
  }
  return "?";
}

std::string_view toString(TrafficPolicy policy) {
  return policy == TrafficPolicy::kLocal ? "Local" : "Cluster";
}

std::string_view toString(SessionAffinity affinity) {
  return affinity == SessionAffinity::kClientIP ? "ClientIP" : "None";
}

std::string FrontendKey::toString() const {
  return hostPort(address, port) + "/" + std::string(dataplane::toString(protocol));
}

std::string BackendKey::toString() const {
  return hostPort(address, port);
}

Status validate(const Service& service) {
  if (service.id.empty()) return Status::failure("service with an empty id");
  if (Status s = validateFrontends(service); !s.ok()) return s;
  if (Status s = validateBackends(service); !s.ok()) return s;
  if (service.affinity == SessionAffinity::kClientIP &&
      (service.affinityTimeoutSeconds == 0 ||
       service.affinityTimeoutSeconds > kMaxAffinityTimeoutSeconds)) {
    return fail(service, "ClientIP affinity timeout " +
                             std::to_string(service.affinityTimeoutSeconds) + "s is not in 1.." +
                             std::to_string(kMaxAffinityTimeoutSeconds));
  }
  if (service.maglevTableSize != 0) {
    const uint32_t m = service.maglevTableSize;
    if (m > kMaglevMaxTableSize || !isPrime(m)) {
      return fail(service, "Maglev table size " + std::to_string(m) + " is not a prime up to " +
                               std::to_string(kMaglevMaxTableSize));
    }
    if (m < service.backends.size()) {
      return fail(service, "Maglev table size " + std::to_string(m) + " is below the " +
                               std::to_string(service.backends.size()) + " backends");
    }
  }
  return {};
}

uint32_t effectiveMaglevTableSize(const Service& service) {
  return service.maglevTableSize != 0 ? service.maglevTableSize
                                      : maglevTableSizeFor(service.backends.size());
}

}  // namespace skiff::dataplane

size_t std::hash<skiff::dataplane::FrontendKey>::operator()(
    const skiff::dataplane::FrontendKey& k) const {
  const uint64_t words[2] = {skiff::dataplane::hashAddress(k.address),
                             static_cast<uint64_t>(k.protocol) << 16 | k.port};
  return static_cast<size_t>(skiff::dataplane::hashWords(words, 1));
}

size_t std::hash<skiff::dataplane::BackendKey>::operator()(
    const skiff::dataplane::BackendKey& k) const {
  const uint64_t words[2] = {skiff::dataplane::hashAddress(k.address), k.port};
  return static_cast<size_t>(skiff::dataplane::hashWords(words, 2));
}
