#include "endpoints/endpointslice_reconciler.h"

#include <algorithm>
#include <map>
#include <utility>

#include <google/protobuf/util/message_differencer.h>

#include "endpoints/trigger_time.h"

namespace skiff::endpoints {
namespace {

using google::protobuf::util::MessageDifferencer;

// The endpointHashObj of Kubernetes: addresses (sorted), hostname and the target's namespace and
// name. Two endpoints with the same identity are the same endpoint, possibly in a newer state.
std::string endpointIdentity(const discovery::Endpoint& endpoint) {
  std::vector<std::string> addresses(endpoint.addresses().begin(), endpoint.addresses().end());
  std::sort(addresses.begin(), addresses.end());
  std::string key;
  for (const auto& address : addresses) {
    key += address;
    key += ',';
  }
  key += '|';
  key += endpoint.hostname();
  key += '|';
  key += endpoint.target_ref().namespace_();
  key += '/';
  key += endpoint.target_ref().name();
  return key;
}

// NewPortMapKey: the set of ports, whatever their order.
std::string portMapKey(const google::protobuf::RepeatedPtrField<discovery::EndpointPort>& ports) {
  std::vector<std::string> parts;
  parts.reserve(ports.size());
  for (const auto& port : ports) {
    parts.push_back(port.name() + '\x1f' + port.protocol() + '\x1f' + std::to_string(port.port()) +
                    '\x1f' + (port.has_app_protocol() ? "1" + port.app_protocol() : "0"));
  }
  std::sort(parts.begin(), parts.end());
  std::string key;
  for (const auto& part : parts) {
    key += part;
    key += '\x1e';
  }
  return key;
}

std::string portMapKey(const std::vector<discovery::EndpointPort>& ports) {
  google::protobuf::RepeatedPtrField<discovery::EndpointPort> field(ports.begin(), ports.end());
  return portMapKey(field);
}

bool isIPv6(std::string_view address) {
  return address.find(':') != std::string_view::npos;
}

bool isServiceIPSet(const core::Service& service) {
  const std::string& ip = service.spec().cluster_ip();
  return !ip.empty() && ip != "None";
}

bool isReservedLabel(std::string_view key) {
  return key == kLabelServiceName || key == kLabelManagedBy || key == kLabelHeadless;
}

std::string protocolOf(const std::string& protocol) {
  return protocol.empty() ? "TCP" : protocol;
}

// An ordered set of desired endpoints by identity; pops the smallest first (Kubernetes pops any).
using EndpointSet = std::map<std::string, discovery::Endpoint>;

struct PortGroup {
  std::vector<discovery::EndpointPort> ports;
  EndpointSet endpoints;
};

discovery::EndpointSlice newSlice(const core::Service& service,
                                  const std::vector<discovery::EndpointPort>& ports,
                                  std::string_view addressType, const ReconcilerOptions& options) {
  discovery::EndpointSlice slice;
  auto* meta = slice.mutable_metadata();
  // getEndpointSlicePrefix: "<name>-", or the bare name when that would be too long a prefix.
  std::string prefix = service.metadata().name() + "-";
  meta->set_generate_name(prefix.size() <= 253 ? prefix : service.metadata().name());
  meta->set_namespace_(service.metadata().namespace_());
  auto* owner = meta->add_owner_references();
  owner->set_api_version("v1");
  owner->set_kind("Service");
  owner->set_name(service.metadata().name());
  owner->set_uid(service.metadata().uid());
  owner->set_controller(true);
  owner->set_block_owner_deletion(true);
  for (const auto& [key, value] : sliceLabels(service, options.controllerName))
    (*meta->mutable_labels())[key] = value;
  slice.set_address_type(std::string(addressType));
  for (const auto& port : ports)
    *slice.add_ports() = port;
  return slice;
}

bool labelsEqual(const google::protobuf::Map<std::string, std::string>& have,
                 const std::map<std::string, std::string>& want) {
  if (static_cast<size_t>(have.size()) != want.size()) return false;
  for (const auto& [key, value] : want) {
    auto it = have.find(key);
    if (it == have.end() || it->second != value) return false;
  }
  return true;
}

void setLabels(discovery::EndpointSlice& slice, const std::map<std::string, std::string>& labels) {
  auto* out = slice.mutable_metadata()->mutable_labels();
  out->clear();
  for (const auto& [key, value] : labels)
    (*out)[key] = value;
}

// placeholderSliceCompare: namespace, labels, address type, ports and endpoints.
bool samePlaceholder(const discovery::EndpointSlice& existing,
                     const discovery::EndpointSlice& placeholder) {
  if (existing.metadata().namespace_() != placeholder.metadata().namespace_()) return false;
  const auto& a = existing.metadata().labels();
  const auto& b = placeholder.metadata().labels();
  if (a.size() != b.size()) return false;
  for (const auto& [key, value] : a) {
    auto it = b.find(key);
    if (it == b.end() || it->second != value) return false;
  }
  return existing.address_type() == placeholder.address_type() && existing.ports_size() == 0 &&
         placeholder.ports_size() == 0 && existing.endpoints_size() == 0 &&
         placeholder.endpoints_size() == 0;
}

size_t freeRoom(const discovery::EndpointSlice& slice, int max) {
  return slice.endpoints_size() >= max ? 0 : static_cast<size_t>(max - slice.endpoints_size());
}

void fill(discovery::EndpointSlice& slice, EndpointSet& desired, int max) {
  while (!desired.empty() && slice.endpoints_size() < max) {
    auto node = desired.extract(desired.begin());
    *slice.add_endpoints() = std::move(node.mapped());
  }
}

struct Changes {
  std::vector<discovery::EndpointSlice> create;
  std::vector<discovery::EndpointSlice> update;
  std::vector<discovery::EndpointSlice> remove;
};

// reconcileByPortMapping: the slices of one port set against its desired endpoints.
Changes reconcilePortGroup(const core::Service& service,
                           const std::vector<const discovery::EndpointSlice*>& existing,
                           PortGroup& desired, std::string_view addressType,
                           const ReconcilerOptions& options) {
  const int max = options.maxEndpointsPerSlice;
  const auto labels = sliceLabels(service, options.controllerName);
  std::map<std::string, discovery::EndpointSlice> toUpdate;  // by name
  std::map<std::string, const discovery::EndpointSlice*> unchanged;
  Changes out;

  // 1. Keep the endpoints still desired (in their newest state), drop the others.
  for (const auto* slice : existing) {
    std::vector<discovery::Endpoint> kept;
    bool changed = false;
    for (const auto& endpoint : slice->endpoints()) {
      auto it = desired.endpoints.find(endpointIdentity(endpoint));
      if (it == desired.endpoints.end()) continue;
      if (!MessageDifferencer::Equals(it->second, endpoint)) changed = true;
      kept.push_back(std::move(it->second));
      desired.endpoints.erase(it);
    }
    const bool labelsChanged = !labelsEqual(slice->metadata().labels(), labels);
    if (changed || kept.size() != static_cast<size_t>(slice->endpoints_size())) {
      if (kept.empty()) {
        out.remove.push_back(*slice);
      } else {
        discovery::EndpointSlice copy = *slice;
        copy.clear_endpoints();
        for (auto& endpoint : kept)
          *copy.add_endpoints() = std::move(endpoint);
        setLabels(copy, labels);
        toUpdate.emplace(copy.metadata().name(), std::move(copy));
      }
    } else if (labelsChanged) {
      discovery::EndpointSlice copy = *slice;
      setLabels(copy, labels);
      toUpdate.emplace(copy.metadata().name(), std::move(copy));
    } else {
      unchanged.emplace(slice->metadata().name(), slice);
    }
  }

  // 2. New endpoints first go into the slices written anyway, fullest first.
  if (!desired.endpoints.empty() && !toUpdate.empty()) {
    std::vector<discovery::EndpointSlice*> order;
    for (auto& [name, slice] : toUpdate)
      order.push_back(&slice);
    std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
      return a->endpoints_size() > b->endpoints_size();
    });
    for (auto* slice : order)
      fill(*slice, desired.endpoints, max);
  }

  // 3. What is left: into the unchanged slice it fits best, else into new slices.
  while (!desired.endpoints.empty()) {
    const discovery::EndpointSlice* best = nullptr;
    if (desired.endpoints.size() < static_cast<size_t>(max) && !unchanged.empty()) {
      // getSliceToFill: the closest fit that takes all of them.
      size_t closest = static_cast<size_t>(max);
      for (const auto& [name, slice] : unchanged) {
        size_t room = freeRoom(*slice, max);
        if (room < desired.endpoints.size()) continue;
        size_t diff = room - desired.endpoints.size();
        if (diff < closest) {
          closest = diff;
          best = slice;
          if (diff == 0) break;
        }
      }
    }
    if (best == nullptr) {
      discovery::EndpointSlice slice = newSlice(service, desired.ports, addressType, options);
      fill(slice, desired.endpoints, max);
      out.create.push_back(std::move(slice));
    } else {
      discovery::EndpointSlice copy = *best;
      unchanged.erase(copy.metadata().name());
      fill(copy, desired.endpoints, max);
      toUpdate.emplace(copy.metadata().name(), std::move(copy));
    }
  }

  for (auto& [name, slice] : toUpdate)
    out.update.push_back(std::move(slice));
  return out;
}

void setTriggerTime(discovery::EndpointSlice& slice, const std::optional<api::Timestamp>& when) {
  auto* annotations = slice.mutable_metadata()->mutable_annotations();
  if (when) {
    (*annotations)[std::string(kAnnotationLastChangeTriggerTime)] = formatRfc3339Nano(*when);
  } else {
    annotations->erase(std::string(kAnnotationLastChangeTriggerTime));
  }
}

bool byName(const discovery::EndpointSlice& a, const discovery::EndpointSlice& b) {
  return a.metadata().name() < b.metadata().name();
}

}  // namespace

bool isPodReady(const core::Pod& pod) {
  for (const auto& condition : pod.status().conditions()) {
    if (condition.type() == "Ready") return condition.status() == "True";
  }
  return false;
}

bool shouldPodBeInEndpoints(const core::Pod& pod) {
  const std::string& phase = pod.status().phase();
  if (phase == "Succeeded" || phase == "Failed") return false;
  return !pod.status().pod_ip().empty() || pod.status().pod_ips_size() > 0;
}

std::set<std::string> addressTypesForService(const core::Service& service) {
  std::set<std::string> types;
  for (const auto& family : service.spec().ip_families()) {
    if (family == "IPv4") types.insert(std::string(kAddressTypeIPv4));
    if (family == "IPv6") types.insert(std::string(kAddressTypeIPv6));
  }
  if (!types.empty()) return types;
  if (isServiceIPSet(service)) {
    types.insert(
        std::string(isIPv6(service.spec().cluster_ip()) ? kAddressTypeIPv6 : kAddressTypeIPv4));
    return types;
  }
  // Headless without families: both, until the apiserver defaults them.
  types.insert(std::string(kAddressTypeIPv4));
  types.insert(std::string(kAddressTypeIPv6));
  return types;
}

std::vector<discovery::EndpointPort> endpointPorts(const core::Service& service,
                                                   const core::Pod& pod) {
  std::vector<discovery::EndpointPort> out;
  for (const auto& servicePort : service.spec().ports()) {
    const std::string protocol = protocolOf(servicePort.protocol());
    int32_t number = 0;
    const auto& target = servicePort.target_port();
    if (servicePort.has_target_port() && target.type() == api::runtime::IntOrString::STRING) {
      // podutil.FindPort: a container port of that name and protocol.
      for (const auto& container : pod.spec().containers()) {
        for (const auto& port : container.ports()) {
          if (port.name() == target.str_val() && protocolOf(port.protocol()) == protocol) {
            number = port.container_port();
            break;
          }
        }
        if (number != 0) break;
      }
      if (number == 0) continue;  // does not resolve on this pod
    } else {
      number = servicePort.has_target_port() && target.int_val() != 0 ? target.int_val()
                                                                      : servicePort.port();
    }
    discovery::EndpointPort port;
    port.set_name(servicePort.name());
    port.set_port(number);
    port.set_protocol(protocol);
    if (servicePort.has_app_protocol()) port.set_app_protocol(servicePort.app_protocol());
    out.push_back(std::move(port));
  }
  return out;
}

discovery::Endpoint podToEndpoint(const core::Pod& pod, const core::Node* node,
                                  const core::Service& service, std::string_view addressType) {
  discovery::Endpoint endpoint;
  const bool v6 = addressType == kAddressTypeIPv6;
  if (pod.status().pod_ips_size() > 0) {
    for (const auto& ip : pod.status().pod_ips()) {
      if (isIPv6(ip.ip()) == v6) endpoint.add_addresses(ip.ip());
    }
  } else if (!pod.status().pod_ip().empty() && isIPv6(pod.status().pod_ip()) == v6) {
    endpoint.add_addresses(pod.status().pod_ip());
  }
  const bool serving = isPodReady(pod);
  const bool terminating = pod.metadata().has_deletion_timestamp();
  // "ready" is never true while terminating, unless the service publishes not-ready addresses.
  const bool ready = service.spec().publish_not_ready_addresses() || (serving && !terminating);
  auto* conditions = endpoint.mutable_conditions();
  conditions->set_ready(ready);
  conditions->set_serving(serving);
  conditions->set_terminating(terminating);
  auto* ref = endpoint.mutable_target_ref();
  ref->set_kind("Pod");
  ref->set_namespace_(pod.metadata().namespace_());
  ref->set_name(pod.metadata().name());
  ref->set_uid(pod.metadata().uid());
  if (!pod.spec().node_name().empty()) endpoint.set_node_name(pod.spec().node_name());
  if (node != nullptr) {
    auto it = node->metadata().labels().find(std::string(kLabelTopologyZone));
    if (it != node->metadata().labels().end() && !it->second.empty()) endpoint.set_zone(it->second);
  }
  // ShouldSetHostname: a hostname, and the pod's subdomain is this service.
  if (!pod.spec().hostname().empty() && pod.spec().subdomain() == service.metadata().name() &&
      pod.metadata().namespace_() == service.metadata().namespace_()) {
    endpoint.set_hostname(pod.spec().hostname());
  }
  return endpoint;
}

std::map<std::string, std::string> sliceLabels(const core::Service& service,
                                               std::string_view controllerName) {
  std::map<std::string, std::string> labels;
  for (const auto& [key, value] : service.metadata().labels()) {
    if (!isReservedLabel(key)) labels[key] = value;
  }
  if (!isServiceIPSet(service)) labels[std::string(kLabelHeadless)] = "";
  labels[std::string(kLabelServiceName)] = service.metadata().name();
  labels[std::string(kLabelManagedBy)] = std::string(controllerName);
  return labels;
}

bool ownedBy(const discovery::EndpointSlice& slice, const core::Service& service) {
  for (const auto& ref : slice.metadata().owner_references()) {
    if (ref.kind() == "Service" && ref.api_version() == "v1" && ref.controller() &&
        ref.uid() == service.metadata().uid()) {
      return true;
    }
  }
  return false;
}

SliceChanges reconcile(const core::Service& service, const std::vector<const core::Pod*>& pods,
                       const std::vector<const discovery::EndpointSlice*>& existing,
                       const NodeLookup& nodes, const ReconcilerOptions& options,
                       std::optional<api::Timestamp> triggerTime) {
  SliceChanges result;
  const auto addressTypes = addressTypesForService(service);
  const bool serviceDeleting = service.metadata().has_deletion_timestamp();

  // Slices of an address type the service no longer has go (never renamed into creates).
  std::map<std::string, std::vector<const discovery::EndpointSlice*>> byType;
  std::vector<discovery::EndpointSlice> wrongType;
  for (const auto* slice : existing) {
    if (addressTypes.count(slice->address_type()) == 0) {
      wrongType.push_back(*slice);
    } else {
      byType[slice->address_type()].push_back(slice);
    }
  }
  std::set<std::string> podErrors;

  for (const auto& addressType : addressTypes) {
    const auto& slices = byType[addressType];
    Changes changes;

    std::map<std::string, std::vector<const discovery::EndpointSlice*>> existingByPorts;
    for (const auto* slice : slices) {
      if (ownedBy(*slice, service)) {
        existingByPorts[portMapKey(slice->ports())].push_back(slice);
      } else {
        changes.remove.push_back(*slice);
      }
    }

    std::map<std::string, PortGroup> desired;
    for (const auto* pod : pods) {
      if (!shouldPodBeInEndpoints(*pod)) continue;
      auto ports = endpointPorts(service, *pod);
      std::string key = portMapKey(ports);
      auto [group, inserted] = desired.try_emplace(key);
      if (inserted) group->second.ports = std::move(ports);
      const core::Node* node = nodes ? nodes(pod->spec().node_name()) : nullptr;
      if (node == nullptr && !service.spec().publish_not_ready_addresses()) {
        // Left out until its Node shows up; the service is retried.
        podErrors.insert("skipping Pod " + pod->metadata().name() + " for Service " +
                         service.metadata().namespace_() + "/" + service.metadata().name() +
                         ": Node " + pod->spec().node_name() + " not found");
        continue;
      }
      discovery::Endpoint endpoint = podToEndpoint(*pod, node, service, addressType);
      if (endpoint.addresses_size() > 0)
        group->second.endpoints.emplace(endpointIdentity(endpoint), std::move(endpoint));
    }

    static const std::vector<const discovery::EndpointSlice*> kNone;
    for (auto& [key, group] : desired) {
      auto it = existingByPorts.find(key);
      Changes part = reconcilePortGroup(service, it == existingByPorts.end() ? kNone : it->second,
                                        group, addressType, options);
      for (auto& s : part.create)
        changes.create.push_back(std::move(s));
      for (auto& s : part.update)
        changes.update.push_back(std::move(s));
      for (auto& s : part.remove)
        changes.remove.push_back(std::move(s));
    }
    for (const auto& [key, group] : existingByPorts) {
      if (desired.count(key) == 0) {
        for (const auto* slice : group)
          changes.remove.push_back(*slice);
      }
    }

    // No endpoints at all: one placeholder slice without ports.
    if (slices.size() == changes.remove.size() && changes.create.empty()) {
      discovery::EndpointSlice placeholder = newSlice(service, {}, addressType, options);
      if (changes.remove.size() == 1 && samePlaceholder(changes.remove[0], placeholder)) {
        changes.remove.clear();
      } else {
        changes.create.push_back(std::move(placeholder));
      }
    }

    // finalize: a create takes the name of a slice that would be deleted (one write, not two).
    std::sort(changes.remove.begin(), changes.remove.end(), byName);
    for (size_t i = 0; i < changes.remove.size() && !changes.create.empty();) {
      const auto& doomed = changes.remove[i];
      if (doomed.address_type() == changes.create.back().address_type() &&
          ownedBy(doomed, service)) {
        discovery::EndpointSlice slice = std::move(changes.create.back());
        changes.create.pop_back();
        slice.mutable_metadata()->set_name(doomed.metadata().name());
        slice.mutable_metadata()->clear_generate_name();
        changes.update.push_back(std::move(slice));
        changes.remove.erase(changes.remove.begin() + static_cast<ptrdiff_t>(i));
      } else {
        ++i;
      }
    }

    for (auto& s : changes.create) {
      if (serviceDeleting) break;
      setTriggerTime(s, triggerTime);
      result.create.push_back(std::move(s));
    }
    for (auto& s : changes.update) {
      setTriggerTime(s, triggerTime);
      result.update.push_back(std::move(s));
    }
    for (auto& s : changes.remove)
      result.remove.push_back(std::move(s));
  }
  for (auto& s : wrongType)
    result.remove.push_back(std::move(s));
  std::sort(result.update.begin(), result.update.end(), byName);
  std::sort(result.remove.begin(), result.remove.end(), byName);
  result.errors.assign(podErrors.begin(), podErrors.end());
  return result;
}

}  // namespace skiff::endpoints
