#include "control/apiserver/service_admission.h"

#include "control/apiserver/resource_storage.h"

#include <arpa/inet.h>
#include <openssl/rand.h>

#include <set>

namespace skiff::apiserver {
namespace {

constexpr std::string_view kIpPrefix = "/registry/ranges/serviceips/";
constexpr std::string_view kPortPrefix = "/registry/ranges/servicenodeports/";

uint32_t randomNumber() {
  uint32_t v = 0;
  RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof(v));
  return v;
}

std::string ipText(uint32_t host_order) {
  in_addr a{htonl(host_order)};
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof(buf));
  return buf;
}

bool needsNodePorts(const api::core::v1::Service& s) {
  return s.spec().type() == "NodePort" ||
         (s.spec().type() == "LoadBalancer" && (!s.spec().has_allocate_load_balancer_node_ports() ||
                                                s.spec().allocate_load_balancer_node_ports()));
}

// Kubernetes' NeedsHealthCheck: a LoadBalancer Service with externalTrafficPolicy Local gets a
// spec.healthCheckNodePort, on which every node's proxier says whether it has local endpoints.
bool needsHealthCheck(const api::core::v1::Service& s) {
  return s.spec().type() == "LoadBalancer" && s.spec().external_traffic_policy() == "Local";
}

}  // namespace

ServiceAdmission::ServiceAdmission(store::Store& store, ServiceAdmissionOptions options)
    : store_(store), options_(std::move(options)) {
  auto slash = options_.service_cidr.find('/');
  in_addr a{};
  int bits = slash == std::string::npos ? -1 : std::stoi(options_.service_cidr.substr(slash + 1));
  if (slash == std::string::npos ||
      inet_pton(AF_INET, options_.service_cidr.substr(0, slash).c_str(), &a) != 1 || bits < 8 ||
      bits > 30) {
    throw std::invalid_argument("invalid service CIDR \"" + options_.service_cidr +
                                "\": expected an IPv4 prefix from /8 to /30");
  }
  size_ = 1u << (32 - bits);
  base_ = ntohl(a.s_addr) & ~(size_ - 1);
}

void ServiceAdmission::defaults(api::core::v1::Service& s) const {
  auto* spec = s.mutable_spec();
  if (spec->type().empty()) spec->set_type("ClusterIP");
  if (spec->session_affinity().empty()) spec->set_session_affinity("None");
  if (spec->session_affinity() == "ClientIP" &&
      !spec->session_affinity_config().client_ip().has_timeout_seconds()) {
    spec->mutable_session_affinity_config()->mutable_client_ip()->set_timeout_seconds(10800);
  }
  if (spec->type() != "ExternalName") {
    if (spec->ip_families_size() == 0) spec->add_ip_families("IPv4");
    if (spec->ip_family_policy().empty()) spec->set_ip_family_policy("SingleStack");
    if (spec->internal_traffic_policy().empty()) spec->set_internal_traffic_policy("Cluster");
  }
  if ((spec->type() == "NodePort" || spec->type() == "LoadBalancer") &&
      spec->external_traffic_policy().empty()) {
    spec->set_external_traffic_policy("Cluster");
  }
  for (auto& p : *spec->mutable_ports()) {
    if (p.protocol().empty()) p.set_protocol("TCP");
    if (!p.has_target_port()) {
      p.mutable_target_port()->set_type(api::runtime::IntOrString::INT);
      p.mutable_target_port()->set_int_val(p.port());
    }
  }
}

void ServiceAdmission::validate(const api::core::v1::Service& s) const {
  std::vector<FieldCause> causes;
  const auto& spec = s.spec();
  const std::string& type = spec.type();
  if (type != "ClusterIP" && type != "NodePort" && type != "LoadBalancer" &&
      type != "ExternalName") {
    causes.push_back({"FieldValueNotSupported", "spec.type",
                      "Unsupported value: \"" + type +
                          "\": supported values: \"ClusterIP\", "
                          "\"ExternalName\", \"LoadBalancer\", \"NodePort\""});
  }
  if (type == "ExternalName" && spec.external_name().empty()) {
    causes.push_back({"FieldValueRequired", "spec.externalName", "Required value"});
  }
  if (type != "ExternalName" && spec.ports_size() == 0 && spec.cluster_ip() != "None") {
    causes.push_back({"FieldValueRequired", "spec.ports", "Required value"});
  }
  std::set<std::pair<int, std::string>> seen;
  for (int i = 0; i < spec.ports_size(); ++i) {
    const auto& p = spec.ports(i);
    std::string path = "spec.ports[" + std::to_string(i) + "]";
    if (p.port() < 1 || p.port() > 65535) {
      causes.push_back({"FieldValueInvalid", path + ".port",
                        "Invalid value: " + std::to_string(p.port()) +
                            ": must be between 1 and 65535, inclusive"});
    }
    if (p.protocol() != "TCP" && p.protocol() != "UDP" && p.protocol() != "SCTP") {
      causes.push_back({"FieldValueNotSupported", path + ".protocol",
                        "Unsupported value: \"" + p.protocol() +
                            "\": supported values: \"SCTP\", \"TCP\", \"UDP\""});
    }
    if (!seen.insert({p.port(), p.protocol()}).second) {
      causes.push_back({"FieldValueDuplicate", path,
                        "Duplicate value: port " + std::to_string(p.port()) + "/" + p.protocol()});
    }
    if (spec.ports_size() > 1 && p.name().empty()) {
      causes.push_back({"FieldValueRequired", path + ".name", "Required value"});
    }
    if (p.node_port() != 0) {
      if (type != "NodePort" && type != "LoadBalancer") {
        causes.push_back({"FieldValueForbidden", path + ".nodePort",
                          "Forbidden: may not be used when `type` is '" + type + "'"});
      } else if (p.node_port() < options_.node_port_min || p.node_port() > options_.node_port_max) {
        causes.push_back({"FieldValueInvalid", path + ".nodePort",
                          "Invalid value: " + std::to_string(p.node_port()) +
                              ": provided port is not in the valid range. The range of valid "
                              "ports is " +
                              std::to_string(options_.node_port_min) + "-" +
                              std::to_string(options_.node_port_max)});
      }
    }
  }
  if (const int hc = spec.health_check_node_port(); hc != 0) {
    if (!needsHealthCheck(s)) {
      causes.push_back({"FieldValueInvalid", "spec.healthCheckNodePort",
                        "Invalid value: " + std::to_string(hc) +
                            ": may only be set when `type` is 'LoadBalancer' and "
                            "`externalTrafficPolicy` is 'Local'"});
    } else if (hc < options_.node_port_min || hc > options_.node_port_max) {
      causes.push_back({"FieldValueInvalid", "spec.healthCheckNodePort",
                        "Invalid value: " + std::to_string(hc) +
                            ": provided port is not in the valid range. The range of valid "
                            "ports is " +
                            std::to_string(options_.node_port_min) + "-" +
                            std::to_string(options_.node_port_max)});
    }
  }
  if (!causes.empty()) throw invalid("Service", "", s.metadata().name(), causes);
}

void ServiceAdmission::reserveIp(const std::string& ip, const std::string& owner) {
  try {
    store_.create(std::string(kIpPrefix) + ip, owner);
  } catch (const store::StoreError& e) {
    if (e.code() == store::ErrorCode::kAlreadyExists) {
      throw invalid("Service", "", owner.substr(owner.find('/') + 1),
                    {{"FieldValueInvalid", "spec.clusterIPs",
                      "Invalid value: [\"" + ip + "\"]: failed to allocate IP " + ip +
                          ": provided IP is already allocated"}});
    }
    throwStoreError(e, {"", "services"}, owner);
  }
}

std::string ServiceAdmission::allocateIp(const std::string& owner) {
  // Random probing, as Kubernetes' allocator does, skipping the network, the first address (the
  // kubernetes Service's) and the broadcast address.
  uint32_t usable = size_ - 3;
  uint32_t start = randomNumber() % usable;
  for (uint32_t i = 0; i < usable; ++i) {
    std::string ip = ipText(base_ + 2 + (start + i) % usable);
    try {
      store_.create(std::string(kIpPrefix) + ip, owner);
      return ip;
    } catch (const store::StoreError& e) {
      if (e.code() != store::ErrorCode::kAlreadyExists) throwStoreError(e, {"", "services"}, owner);
    }
  }
  throw internalError("failed to allocate a service IP: range " + options_.service_cidr +
                      " is full");
}

void ServiceAdmission::reserveNodePort(int port, const std::string& owner) {
  try {
    store_.create(std::string(kPortPrefix) + std::to_string(port), owner);
  } catch (const store::StoreError& e) {
    if (e.code() == store::ErrorCode::kAlreadyExists) {
      throw invalid(
          "Service", "", owner.substr(owner.find('/') + 1),
          {{"FieldValueInvalid", "spec.ports[].nodePort",
            "Invalid value: " + std::to_string(port) + ": provided port is already allocated"}});
    }
    throwStoreError(e, {"", "services"}, owner);
  }
}

int ServiceAdmission::allocateNodePort(const std::string& owner) {
  int span = options_.node_port_max - options_.node_port_min + 1;
  int start = static_cast<int>(randomNumber() % static_cast<uint32_t>(span));
  for (int i = 0; i < span; ++i) {
    int port = options_.node_port_min + (start + i) % span;
    try {
      store_.create(std::string(kPortPrefix) + std::to_string(port), owner);
      return port;
    } catch (const store::StoreError& e) {
      if (e.code() != store::ErrorCode::kAlreadyExists) throwStoreError(e, {"", "services"}, owner);
    }
  }
  throw internalError("failed to allocate a node port: the range is full");
}

void ServiceAdmission::releaseKey(const std::string& key) {
  try {
    store_.remove(key, 0);
  } catch (const store::StoreError&) {
    // Already free: a repeated release is harmless.
  }
}

void ServiceAdmission::admitCreate(api::core::v1::Service& s, bool dry_run) {
  defaults(s);
  validate(s);
  if (dry_run) return;
  std::string owner = s.metadata().namespace_() + "/" + s.metadata().name();
  std::vector<std::string> taken;  // released again if anything later fails
  try {
    auto* spec = s.mutable_spec();
    if (spec->type() != "ExternalName" && spec->cluster_ip() != "None") {
      if (spec->cluster_ip().empty()) {
        spec->set_cluster_ip(allocateIp(owner));
      } else {
        reserveIp(spec->cluster_ip(), owner);
      }
      taken.push_back(std::string(kIpPrefix) + spec->cluster_ip());
      spec->clear_cluster_ips();
      spec->add_cluster_ips(spec->cluster_ip());
    } else if (spec->cluster_ip() == "None") {
      spec->clear_cluster_ips();
      spec->add_cluster_ips("None");
    }
    if (needsNodePorts(s)) {
      for (auto& p : *spec->mutable_ports()) {
        if (p.node_port() == 0) {
          p.set_node_port(allocateNodePort(owner));
        } else {
          reserveNodePort(p.node_port(), owner);
        }
        taken.push_back(std::string(kPortPrefix) + std::to_string(p.node_port()));
      }
    }
    if (needsHealthCheck(s)) {
      // From the node port range, as Kubernetes allocates it.
      if (spec->health_check_node_port() == 0) {
        spec->set_health_check_node_port(allocateNodePort(owner));
      } else {
        reserveNodePort(spec->health_check_node_port(), owner);
      }
      taken.push_back(std::string(kPortPrefix) + std::to_string(spec->health_check_node_port()));
    }
  } catch (...) {
    for (const auto& key : taken)
      releaseKey(key);
    throw;
  }
}

void ServiceAdmission::admitUpdate(const api::core::v1::Service& old, api::core::v1::Service& s,
                                   bool dry_run) {
  defaults(s);
  auto* spec = s.mutable_spec();
  // clusterIP is immutable; an update that leaves it out keeps it.
  if (spec->cluster_ip().empty()) {
    spec->set_cluster_ip(old.spec().cluster_ip());
    *spec->mutable_cluster_ips() = old.spec().cluster_ips();
  } else if (spec->cluster_ip() != old.spec().cluster_ip() &&
             old.spec().type() == s.spec().type()) {
    throw invalid("Service", "", s.metadata().name(),
                  {{"FieldValueInvalid", "spec.clusterIPs[0]",
                    "Invalid value: [\"" + spec->cluster_ip() + "\"]: may not change once set"}});
  }
  // healthCheckNodePort: kept while the Service needs one (kubectl apply does not send it);
  // dropped with the need when the user left the old value in (Kubernetes'
  // dropTypeDependentFields).
  if (needsHealthCheck(s) && needsHealthCheck(old) && spec->health_check_node_port() == 0) {
    spec->set_health_check_node_port(old.spec().health_check_node_port());
  } else if (!needsHealthCheck(s) &&
             spec->health_check_node_port() == old.spec().health_check_node_port()) {
    spec->clear_health_check_node_port();
  }
  validate(s);
  if (dry_run) return;
  std::set<int> old_ports;
  for (const auto& p : old.spec().ports()) {
    if (p.node_port() != 0) old_ports.insert(p.node_port());
  }
  if (old.spec().health_check_node_port() != 0)
    old_ports.insert(old.spec().health_check_node_port());
  std::string owner = s.metadata().namespace_() + "/" + s.metadata().name();
  std::set<int> kept;
  if (needsNodePorts(s)) {
    for (auto& p : *spec->mutable_ports()) {
      if (p.node_port() == 0) {
        // A port that had one keeps it (kubectl apply does not send allocated node ports).
        for (const auto& q : old.spec().ports()) {
          if (q.port() == p.port() && q.protocol() == p.protocol() && q.node_port() != 0) {
            p.set_node_port(q.node_port());
          }
        }
      }
      if (p.node_port() == 0) {
        p.set_node_port(allocateNodePort(owner));
      } else if (!old_ports.count(p.node_port())) {
        reserveNodePort(p.node_port(), owner);
      }
      kept.insert(p.node_port());
    }
  } else {
    for (auto& p : *spec->mutable_ports())
      p.clear_node_port();
  }
  if (needsHealthCheck(s)) {
    if (spec->health_check_node_port() == 0) {
      spec->set_health_check_node_port(allocateNodePort(owner));
    } else if (!old_ports.count(spec->health_check_node_port())) {
      reserveNodePort(spec->health_check_node_port(), owner);
    }
    kept.insert(spec->health_check_node_port());
  }
  for (int port : old_ports) {
    if (!kept.count(port)) releaseKey(std::string(kPortPrefix) + std::to_string(port));
  }
}

void ServiceAdmission::release(const api::core::v1::Service& s) {
  if (!s.spec().cluster_ip().empty() && s.spec().cluster_ip() != "None") {
    releaseKey(std::string(kIpPrefix) + s.spec().cluster_ip());
  }
  for (const auto& p : s.spec().ports()) {
    if (p.node_port() != 0) releaseKey(std::string(kPortPrefix) + std::to_string(p.node_port()));
  }
  if (s.spec().health_check_node_port() != 0) {
    releaseKey(std::string(kPortPrefix) + std::to_string(s.spec().health_check_node_port()));
  }
}

void ServiceAdmission::releaseNewNodePorts(const api::core::v1::Service& old,
                                           const api::core::v1::Service& attempted) {
  std::set<int> old_ports;
  for (const auto& p : old.spec().ports())
    old_ports.insert(p.node_port());
  old_ports.insert(old.spec().health_check_node_port());
  std::vector<int> attempted_ports;
  for (const auto& p : attempted.spec().ports())
    attempted_ports.push_back(p.node_port());
  attempted_ports.push_back(attempted.spec().health_check_node_port());
  for (int port : attempted_ports) {
    if (port != 0 && !old_ports.count(port))
      releaseKey(std::string(kPortPrefix) + std::to_string(port));
  }
}

}  // namespace skiff::apiserver
