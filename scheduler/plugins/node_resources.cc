// NodeResourcesFit (with LeastAllocated scoring) and NodeResourcesBalancedAllocation.
#include <cmath>

#include "scheduler/plugins/plugins.h"

namespace skiff::scheduler::plugins {
namespace {

int64_t leastRequestedScore(int64_t requested, int64_t capacity) {
  if (capacity == 0 || requested > capacity) return 0;
  return (capacity - requested) * kMaxNodeScore / capacity;
}

}  // namespace

Status NodeResourcesFit::preFilter(CycleState&, const PodInfo&, const Snapshot&) {
  // The requests were computed once into PodInfo; nothing else to precompute.
  return {};
}

Status NodeResourcesFit::filter(const CycleState&, const PodInfo& pod, const NodeInfo& node) const {
  std::vector<std::string> reasons;
  const Resource& alloc = node.allocatable();
  const Resource& used = node.requested();
  const Resource& want = pod.requests;
  if (static_cast<int64_t>(node.pods().size()) + 1 > alloc.allowed_pods) {
    reasons.emplace_back("Too many pods");
  }
  if (want.milli_cpu > 0 && want.milli_cpu > alloc.milli_cpu - used.milli_cpu) {
    reasons.emplace_back("Insufficient cpu");
  }
  if (want.memory > 0 && want.memory > alloc.memory - used.memory) {
    reasons.emplace_back("Insufficient memory");
  }
  if (want.ephemeral_storage > 0 &&
      want.ephemeral_storage > alloc.ephemeral_storage - used.ephemeral_storage) {
    reasons.emplace_back("Insufficient ephemeral-storage");
  }
  for (const auto& [name, amount] : want.scalar) {
    if (amount > 0 && amount > alloc.get(name) - used.get(name)) {
      reasons.push_back("Insufficient " + name);
    }
  }
  if (reasons.empty()) return {};
  return Status(Code::kUnschedulable, std::move(reasons));
}

Status NodeResourcesFit::score(const CycleState&, const PodInfo& pod, const NodeInfo& node,
                               int64_t& score) const {
  const Resource& alloc = node.allocatable();
  const int64_t cpu = node.nonZeroRequested().milli_cpu + pod.non_zero_requests.milli_cpu;
  const int64_t mem = node.nonZeroRequested().memory + pod.non_zero_requests.memory;
  score = (leastRequestedScore(cpu, alloc.milli_cpu) + leastRequestedScore(mem, alloc.memory)) / 2;
  return {};
}

Status NodeResourcesBalancedAllocation::score(const CycleState&, const PodInfo& pod,
                                              const NodeInfo& node, int64_t& score) const {
  const Resource& alloc = node.allocatable();
  auto fraction = [](int64_t requested, int64_t capacity) {
    if (capacity <= 0) return 1.0;
    return std::min(1.0, static_cast<double>(requested) / static_cast<double>(capacity));
  };
  const double cpu = fraction(node.requested().milli_cpu + pod.requests.milli_cpu, alloc.milli_cpu);
  const double mem = fraction(node.requested().memory + pod.requests.memory, alloc.memory);
  // The standard deviation of the two fractions.
  const double std_dev = std::abs(cpu - mem) / 2;
  score = static_cast<int64_t>((1 - std_dev) * static_cast<double>(kMaxNodeScore));
  return {};
}

}  // namespace skiff::scheduler::plugins
