#include "scheduler/node_info.h"

#include <algorithm>

#include "control/api/quantity.h"

namespace skiff::scheduler {
namespace {

// In the order of NodeInfo::TopologyLabel.
constexpr std::array<std::string_view, 3> kTopologyLabelKeys = {
    "kubernetes.io/hostname", "topology.kubernetes.io/zone", "topology.kubernetes.io/region"};

using QuantityMap = google::protobuf::Map<std::string, api::runtime::Quantity>;

void addEntry(Resource& r, std::string_view name, const api::runtime::Quantity& proto) {
  const api::Quantity q = api::Quantity::fromProto(proto);
  if (name == kResourceCpu) {
    r.milli_cpu += q.milliValue();
  } else if (name == kResourceMemory) {
    r.memory += q.value();
  } else if (name == kResourceEphemeralStorage) {
    r.ephemeral_storage += q.value();
  } else if (name == kResourcePods) {
    r.allowed_pods += q.value();
  } else {
    r.scalar[std::string(name)] += q.value();
  }
}

Resource containerRequests(const api::core::v1::Container& c, bool non_zero) {
  Resource r = Resource::fromMap(c.resources().requests());
  if (non_zero) {
    if (!c.resources().requests().contains(std::string(kResourceCpu))) {
      r.milli_cpu = kDefaultMilliCpuRequest;
    }
    if (!c.resources().requests().contains(std::string(kResourceMemory))) {
      r.memory = kDefaultMemoryRequest;
    }
  }
  return r;
}

Resource computeRequests(const Pod& pod, bool non_zero) {
  Resource total;
  for (const auto& c : pod.spec().containers())
    total.add(containerRequests(c, non_zero));
  Resource sidecars;
  Resource init_max;
  for (const auto& c : pod.spec().init_containers()) {
    Resource r = containerRequests(c, non_zero);
    if (c.restart_policy() == "Always") {
      total.add(r);
      sidecars.add(r);
      r = sidecars;
    } else {
      r.add(sidecars);
    }
    init_max.setMax(r);
  }
  total.setMax(init_max);
  total.add(Resource::fromMap(pod.spec().overhead()));
  total.allowed_pods = 0;
  return total;
}

// The namespaces a term applies to (Kubernetes' GetNamespacesFromPodAffinityTerm): its list, or
// the pod's own namespace when it names none and has no namespaceSelector; an empty
// namespaceSelector ({}) selects every namespace.
AffinityTerm parseTerm(const Pod& pod, const api::core::v1::PodAffinityTerm& term, int32_t weight) {
  AffinityTerm out;
  out.selector = api::labels::Selector::fromProto(
      term.has_label_selector() ? &term.label_selector() : nullptr, "labelSelector");
  // matchLabelKeys / mismatchLabelKeys: the incoming pod's values join the selector.
  for (const std::string& key : term.match_label_keys()) {
    auto it = pod.metadata().labels().find(key);
    if (it == pod.metadata().labels().end()) continue;
    out.selector = out.selector.add(
        api::labels::Requirement::make(key, api::labels::Operator::kIn, {it->second}));
  }
  for (const std::string& key : term.mismatch_label_keys()) {
    auto it = pod.metadata().labels().find(key);
    if (it == pod.metadata().labels().end()) continue;
    out.selector = out.selector.add(
        api::labels::Requirement::make(key, api::labels::Operator::kNotIn, {it->second}));
  }
  for (const std::string& ns : term.namespaces())
    out.namespaces.insert(ns);
  if (term.has_namespace_selector()) {
    const auto& ns_selector = term.namespace_selector();
    if (ns_selector.match_labels().empty() && ns_selector.match_expressions().empty()) {
      out.all_namespaces = true;
    }
  } else if (out.namespaces.empty()) {
    out.namespaces.insert(pod.metadata().namespace_());
  }
  out.topology_key = term.topology_key();
  out.weight = weight;
  return out;
}

}  // namespace

Resource Resource::fromMap(const QuantityMap& map) {
  Resource r;
  for (const auto& [name, q] : map)
    addEntry(r, name, q);
  return r;
}

void Resource::add(const Resource& o) {
  milli_cpu += o.milli_cpu;
  memory += o.memory;
  ephemeral_storage += o.ephemeral_storage;
  allowed_pods += o.allowed_pods;
  for (const auto& [name, v] : o.scalar)
    scalar[name] += v;
}

void Resource::sub(const Resource& o) {
  milli_cpu -= o.milli_cpu;
  memory -= o.memory;
  ephemeral_storage -= o.ephemeral_storage;
  allowed_pods -= o.allowed_pods;
  for (const auto& [name, v] : o.scalar) {
    auto it = scalar.find(name);
    if (it == scalar.end()) {
      scalar[name] = -v;
    } else if ((it->second -= v) == 0) {
      scalar.erase(it);
    }
  }
}

void Resource::setMax(const Resource& o) {
  milli_cpu = std::max(milli_cpu, o.milli_cpu);
  memory = std::max(memory, o.memory);
  ephemeral_storage = std::max(ephemeral_storage, o.ephemeral_storage);
  allowed_pods = std::max(allowed_pods, o.allowed_pods);
  for (const auto& [name, v] : o.scalar) {
    auto& mine = scalar[name];
    mine = std::max(mine, v);
  }
}

int64_t Resource::get(std::string_view name) const {
  if (name == kResourceCpu) return milli_cpu;
  if (name == kResourceMemory) return memory;
  if (name == kResourceEphemeralStorage) return ephemeral_storage;
  if (name == kResourcePods) return allowed_pods;
  auto it = scalar.find(name);
  return it == scalar.end() ? 0 : it->second;
}

Resource podRequests(const Pod& pod) {
  return computeRequests(pod, false);
}
Resource podNonZeroRequests(const Pod& pod) {
  return computeRequests(pod, true);
}

std::string podKey(const Pod& pod) {
  return pod.metadata().namespace_() + "/" + pod.metadata().name();
}

int32_t podPriority(const Pod& pod) {
  return pod.spec().priority();
}

std::vector<HostPort> podHostPorts(const Pod& pod) {
  std::vector<HostPort> out;
  auto collect = [&](const auto& containers) {
    for (const auto& c : containers) {
      for (const auto& p : c.ports()) {
        if (p.host_port() <= 0) continue;
        HostPort hp{p.host_ip(), p.protocol().empty() ? "TCP" : p.protocol(), p.host_port()};
        if (hp.ip.empty()) hp.ip = "0.0.0.0";
        out.push_back(std::move(hp));
      }
    }
  };
  collect(pod.spec().init_containers());
  collect(pod.spec().containers());
  return out;
}

bool AffinityTerm::matches(const Pod& pod) const {
  if (!all_namespaces && !namespaces.contains(pod.metadata().namespace_())) return false;
  return selector.matches(pod.metadata().labels());
}

std::shared_ptr<const PodInfo> PodInfo::make(PodPtr pod) {
  auto info = std::make_shared<PodInfo>();
  const Pod& p = *pod;
  info->key = podKey(p);
  info->requests = podRequests(p);
  info->non_zero_requests = podNonZeroRequests(p);
  info->host_ports = podHostPorts(p);
  if (p.spec().has_affinity()) {
    const auto& affinity = p.spec().affinity();
    try {
      for (const auto& t :
           affinity.pod_affinity().required_during_scheduling_ignored_during_execution()) {
        info->required_affinity.push_back(parseTerm(p, t, 0));
      }
      for (const auto& t :
           affinity.pod_affinity().preferred_during_scheduling_ignored_during_execution()) {
        info->preferred_affinity.push_back(parseTerm(p, t.pod_affinity_term(), t.weight()));
      }
      for (const auto& t :
           affinity.pod_anti_affinity().required_during_scheduling_ignored_during_execution()) {
        info->required_anti_affinity.push_back(parseTerm(p, t, 0));
      }
      for (const auto& t :
           affinity.pod_anti_affinity().preferred_during_scheduling_ignored_during_execution()) {
        info->preferred_anti_affinity.push_back(parseTerm(p, t.pod_affinity_term(), t.weight()));
      }
    } catch (const api::SelectorError& e) {
      info->parse_error = std::string("invalid pod affinity: ") + e.what();
      info->required_affinity.clear();
      info->required_anti_affinity.clear();
      info->preferred_affinity.clear();
      info->preferred_anti_affinity.clear();
    }
  }
  info->pod = std::move(pod);
  return info;
}

void NodeInfo::setNode(NodePtr node) {
  node_ = std::move(node);
  name_ = node_->metadata().name();
  unschedulable_ = node_->spec().unschedulable();
  has_taints_ = !node_->spec().taints().empty();
  topology_present_ = 0;
  for (size_t i = 0; i < kTopologyLabelKeys.size(); ++i) {
    const std::string* v = label(kTopologyLabelKeys[i]);
    topology_values_[i] = v ? *v : std::string();
    if (v) topology_present_ |= static_cast<uint8_t>(1u << i);
  }
  allocatable_ = Resource::fromMap(node_->status().allocatable());
  refreshAmounts();
  image_sizes_.clear();
  for (const auto& image : node_->status().images()) {
    for (const std::string& name : image.names())
      image_sizes_[name] = image.size_bytes();
  }
  ++generation_;
}

void NodeInfo::addPod(PodInfoPtr pod) {
  requested_.add(pod->requests);
  non_zero_requested_.add(pod->non_zero_requests);
  for (const HostPort& hp : pod->host_ports)
    ++used_ports_[hp];
  if (!pod->required_affinity.empty() || !pod->required_anti_affinity.empty() ||
      !pod->preferred_affinity.empty() || !pod->preferred_anti_affinity.empty()) {
    pods_with_affinity_.push_back(pod);
  }
  if (!pod->required_anti_affinity.empty()) pods_with_required_anti_affinity_.push_back(pod);
  pods_.push_back(std::move(pod));
  refreshAmounts();
  ++generation_;
}

void NodeInfo::refreshAmounts() {
  amounts_ = Amounts{
      allocatable_.milli_cpu,       allocatable_.memory,           allocatable_.ephemeral_storage,
      allocatable_.allowed_pods,    requested_.milli_cpu,          requested_.memory,
      requested_.ephemeral_storage, non_zero_requested_.milli_cpu, non_zero_requested_.memory};
}

bool NodeInfo::removePod(std::string_view key) {
  auto it = std::find_if(pods_.begin(), pods_.end(), [&](const auto& p) { return p->key == key; });
  if (it == pods_.end()) return false;
  PodInfoPtr pod = *it;
  pods_.erase(it);
  auto drop = [&](std::vector<PodInfoPtr>& v) {
    std::erase_if(v, [&](const auto& p) { return p->key == key; });
  };
  drop(pods_with_affinity_);
  drop(pods_with_required_anti_affinity_);
  requested_.sub(pod->requests);
  non_zero_requested_.sub(pod->non_zero_requests);
  for (const HostPort& hp : pod->host_ports) {
    auto pit = used_ports_.find(hp);
    if (pit != used_ports_.end() && --pit->second <= 0) used_ports_.erase(pit);
  }
  refreshAmounts();
  ++generation_;
  return true;
}

bool NodeInfo::hasPod(std::string_view key) const {
  return std::any_of(pods_.begin(), pods_.end(), [&](const auto& p) { return p->key == key; });
}

bool NodeInfo::portConflicts(const HostPort& port) const {
  for (const auto& [used, count] : used_ports_) {
    if (used.port != port.port || used.protocol != port.protocol) continue;
    if (used.ip == port.ip || used.ip == "0.0.0.0" || port.ip == "0.0.0.0") return true;
  }
  return false;
}

std::optional<NodeInfo::TopologyLabel> NodeInfo::topologyLabelOf(std::string_view key) {
  for (size_t i = 0; i < kTopologyLabelKeys.size(); ++i) {
    if (kTopologyLabelKeys[i] == key) return static_cast<TopologyLabel>(i);
  }
  return std::nullopt;
}

const std::string* NodeInfo::label(std::string_view key) const {
  if (!node_) return nullptr;
  const auto& labels = node_->metadata().labels();
  // Protobuf's Map looks a std::string key up by string_view without building one (a key such as
  // topology.kubernetes.io/zone is past the small-string size: one allocation per lookup).
  auto it = labels.find(key);
  return it == labels.end() ? nullptr : &it->second;
}

}  // namespace skiff::scheduler
