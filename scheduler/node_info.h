#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "control/api/selector.h"
#include "skiff/api/core_v1.pb.h"

// What the scheduler knows about one node: the Node object and the pods that count on it (bound
// or assumed), with their summed requests and used host ports (kube-scheduler's
// framework.NodeInfo). Pure data: no locking here; the cache hands out immutable snapshots.

namespace skiff::scheduler {

using Pod = api::core::v1::Pod;
using Node = api::core::v1::Node;
using PodPtr = std::shared_ptr<const Pod>;
using NodePtr = std::shared_ptr<const Node>;

// Kubernetes' resource names the scheduler understands natively.
inline constexpr std::string_view kResourceCpu = "cpu";
inline constexpr std::string_view kResourceMemory = "memory";
inline constexpr std::string_view kResourceEphemeralStorage = "ephemeral-storage";
inline constexpr std::string_view kResourcePods = "pods";

// What a pod counts for scoring when it requests no cpu / memory (kube-scheduler's
// DefaultMilliCPURequest and DefaultMemoryRequest).
inline constexpr int64_t kDefaultMilliCpuRequest = 100;
inline constexpr int64_t kDefaultMemoryRequest = 200 * 1024 * 1024;

// An amount of every resource: cpu in millicores, memory and ephemeral storage in bytes, pods as a
// count, and extended resources (nvidia.com/gpu, hugepages-2Mi, ...) in their integer units.
struct Resource {
  int64_t milli_cpu = 0;
  int64_t memory = 0;
  int64_t ephemeral_storage = 0;
  int64_t allowed_pods = 0;
  std::map<std::string, int64_t, std::less<>> scalar;

  // From a requests/allocatable map. Throws api::QuantityError on a malformed quantity.
  static Resource fromMap(const google::protobuf::Map<std::string, api::runtime::Quantity>& map);

  void add(const Resource& other);
  void sub(const Resource& other);
  // Each resource set to the larger of the two (the init-container rule).
  void setMax(const Resource& other);
  int64_t get(std::string_view name) const;

  friend bool operator==(const Resource&, const Resource&) = default;
};

// The pod's effective requests as kube-scheduler computes them (resource.PodRequests): the larger
// of the sum over containers and each init container's requests (sidecar init containers with
// restartPolicy Always keep running, so they add to everything after them), plus spec.overhead.
// `allowed_pods` is 0 (a pod counts as one pod, see NodeInfo).
Resource podRequests(const Pod& pod);
// The same with kDefaultMilliCpuRequest / kDefaultMemoryRequest for containers that request no
// cpu / memory (used for scoring only, as Kubernetes' NonZeroRequested).
Resource podNonZeroRequests(const Pod& pod);

// "namespace/name".
std::string podKey(const Pod& pod);
int32_t podPriority(const Pod& pod);

// A host port a pod uses on its node: (ip, protocol, port). An empty ip is 0.0.0.0.
struct HostPort {
  std::string ip;
  std::string protocol;
  int32_t port = 0;
  friend auto operator<=>(const HostPort&, const HostPort&) = default;
};
std::vector<HostPort> podHostPorts(const Pod& pod);

// One parsed term of pod (anti-)affinity: the selector, the namespaces it applies to and the
// topology key.
struct AffinityTerm {
  api::labels::Selector selector;
  std::set<std::string, std::less<>> namespaces;  // empty with all_namespaces false: none
  bool all_namespaces = false;
  std::string topology_key;
  int32_t weight = 0;  // for preferred terms

  bool matches(const Pod& pod) const;
};

// A pod with what the plugins need from it, computed once.
struct PodInfo {
  PodPtr pod;
  std::string key;
  Resource requests;
  Resource non_zero_requests;
  std::vector<HostPort> host_ports;
  std::vector<AffinityTerm> required_affinity;
  std::vector<AffinityTerm> required_anti_affinity;
  std::vector<AffinityTerm> preferred_affinity;
  std::vector<AffinityTerm> preferred_anti_affinity;
  // A selector in the pod's (anti-)affinity that does not parse; the pod then fails to schedule
  // with this message instead of matching something unintended.
  std::string parse_error;

  static std::shared_ptr<const PodInfo> make(PodPtr pod);
};
using PodInfoPtr = std::shared_ptr<const PodInfo>;

class NodeInfo {
 public:
  NodeInfo() = default;
  explicit NodeInfo(NodePtr node) { setNode(std::move(node)); }

  // Replaces the Node object and recomputes allocatable and the image table.
  void setNode(NodePtr node);
  void clearNode() {
    node_.reset();
    has_taints_ = false;
    topology_values_ = {};
    topology_present_ = 0;
  }
  const Node* node() const { return node_.get(); }
  const NodePtr& nodePtr() const { return node_; }
  const std::string& name() const { return name_; }
  // spec.unschedulable, kept beside the name: Filter asks on every node it looks at, and the
  // Node object is a cache miss away.
  bool unschedulable() const { return unschedulable_; }
  // Whether spec.taints is not empty (TaintToleration skips the Node object when it is).
  bool hasTaints() const { return has_taints_; }

  void addPod(PodInfoPtr pod);
  // False when the pod (by key) is not on this node.
  bool removePod(std::string_view key);
  bool hasPod(std::string_view key) const;

  const std::vector<PodInfoPtr>& pods() const { return pods_; }
  const std::vector<PodInfoPtr>& podsWithAffinity() const { return pods_with_affinity_; }
  const std::vector<PodInfoPtr>& podsWithRequiredAntiAffinity() const {
    return pods_with_required_anti_affinity_;
  }
  // The amounts Filter and Score read on every node, packed beside the node pointer (the
  // Resources, with their maps, span three more cache lines): the same values as
  // allocatable(), requested() and nonZeroRequested().
  struct Amounts {
    int64_t allocatable_milli_cpu = 0;
    int64_t allocatable_memory = 0;
    int64_t allocatable_ephemeral_storage = 0;
    int64_t allocatable_pods = 0;
    int64_t requested_milli_cpu = 0;
    int64_t requested_memory = 0;
    int64_t requested_ephemeral_storage = 0;
    int64_t non_zero_milli_cpu = 0;
    int64_t non_zero_memory = 0;
  };
  const Amounts& amounts() const { return amounts_; }
  const Resource& allocatable() const { return allocatable_; }
  const Resource& requested() const { return requested_; }
  const Resource& nonZeroRequested() const { return non_zero_requested_; }
  // (ip, protocol, port) -> how many pods use it.
  const std::map<HostPort, int>& usedPorts() const { return used_ports_; }
  // Whether `port` conflicts with a used one (same protocol and port, and the same ip or either
  // being 0.0.0.0).
  bool portConflicts(const HostPort& port) const;
  // Image name -> size in bytes, from status.images.
  const std::unordered_map<std::string, int64_t>& imageSizes() const { return image_sizes_; }
  // Label value, or nullptr.
  const std::string* label(std::string_view key) const;
  // The well-known topology labels, copied once per Node object (PodTopologySpread asks for
  // them on every node of every cycle).
  enum class TopologyLabel : uint8_t { kHostname, kZone, kRegion };
  static std::optional<TopologyLabel> topologyLabelOf(std::string_view key);
  // The value of `which`, or nullptr: the same as label() of its key.
  const std::string* topologyLabel(TopologyLabel which) const {
    const auto i = static_cast<size_t>(which);
    return (topology_present_ >> i) & 1 ? &topology_values_[i] : nullptr;
  }

  // Bumped on every change; the cache uses it to refresh snapshots incrementally.
  uint64_t generation() const { return generation_; }
  void setGeneration(uint64_t generation) { generation_ = generation; }

 private:
  void refreshAmounts();

  // What Filter and Score read on every node comes first (the first cache lines of the
  // object, which the framework prefetches): the node, its flags, the pods and resources.
  NodePtr node_;
  bool unschedulable_ = false;
  bool has_taints_ = false;
  std::vector<PodInfoPtr> pods_;
  Amounts amounts_;
  // Copies of the well-known topology labels' values (PodTopologySpread's Filter reads one on
  // every node; in the Node object's label map it was a cache miss each); bit i: present.
  uint8_t topology_present_ = 0;
  std::array<std::string, 3> topology_values_;
  Resource allocatable_;
  Resource requested_;
  Resource non_zero_requested_;
  std::string name_;
  std::vector<PodInfoPtr> pods_with_affinity_;
  std::vector<PodInfoPtr> pods_with_required_anti_affinity_;
  std::map<HostPort, int> used_ports_;
  std::unordered_map<std::string, int64_t> image_sizes_;
  uint64_t generation_ = 0;
};
using NodeInfoPtr = std::shared_ptr<const NodeInfo>;

}  // namespace skiff::scheduler
