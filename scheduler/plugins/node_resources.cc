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
  // The common case (fits) reads only NodeInfo::amounts(); reasons are built on a rejection.
  const NodeInfo::Amounts& a = node.amounts();
  const Resource& want = pod.requests;
  const bool too_many = static_cast<int64_t>(node.pods().size()) + 1 > a.allocatable_pods;
  const bool cpu =
      want.milli_cpu > 0 && want.milli_cpu > a.allocatable_milli_cpu - a.requested_milli_cpu;
  const bool memory = want.memory > 0 && want.memory > a.allocatable_memory - a.requested_memory;
  const bool storage =
      want.ephemeral_storage > 0 &&
      want.ephemeral_storage > a.allocatable_ephemeral_storage - a.requested_ephemeral_storage;
  if (!too_many && !cpu && !memory && !storage && want.scalar.empty()) return {};
  std::vector<std::string> reasons;
  if (too_many) reasons.emplace_back("Too many pods");
  if (cpu) reasons.emplace_back("Insufficient cpu");
  if (memory) reasons.emplace_back("Insufficient memory");
  if (storage) reasons.emplace_back("Insufficient ephemeral-storage");
  const Resource& alloc = node.allocatable();
  const Resource& used = node.requested();
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
  const NodeInfo::Amounts& a = node.amounts();
  const int64_t cpu = a.non_zero_milli_cpu + pod.non_zero_requests.milli_cpu;
  const int64_t mem = a.non_zero_memory + pod.non_zero_requests.memory;
  score = (leastRequestedScore(cpu, a.allocatable_milli_cpu) +
           leastRequestedScore(mem, a.allocatable_memory)) /
          2;
  return {};
}

Status NodeResourcesBalancedAllocation::score(const CycleState&, const PodInfo& pod,
                                              const NodeInfo& node, int64_t& score) const {
  const NodeInfo::Amounts& a = node.amounts();
  auto fraction = [](int64_t requested, int64_t capacity) {
    if (capacity <= 0) return 1.0;
    return std::min(1.0, static_cast<double>(requested) / static_cast<double>(capacity));
  };
  const double cpu =
      fraction(a.requested_milli_cpu + pod.requests.milli_cpu, a.allocatable_milli_cpu);
  const double mem = fraction(a.requested_memory + pod.requests.memory, a.allocatable_memory);
  // The standard deviation of the two fractions.
  const double std_dev = std::abs(cpu - mem) / 2;
  score = static_cast<int64_t>((1 - std_dev) * static_cast<double>(kMaxNodeScore));
  return {};
}

}  // namespace skiff::scheduler::plugins
