// Scheduling throughput of the pure framework (no apiserver): hollow nodes in the cache, pods
// scheduled one after another with the default plugins, each assumed on its node as the
// scheduler does. Counter pods_per_second. BM_SchedulingTopologySpread/N/1 adds a zone topology
// spread constraint; /N/2 spreads on zone and on hostname, both maxSkew 1 and DoNotSchedule
// (kube-scheduler's scheduler_perf SchedulingBasic / TopologySpreading shapes).
#include <benchmark/benchmark.h>

#include "control/api/quantity.h"
#include "scheduler/cache.h"
#include "scheduler/framework.h"
#include "scheduler/plugins/plugins.h"

namespace skiff::scheduler {
namespace {

api::runtime::Quantity q(const char* text) {
  return api::Quantity::mustParse(text).toProto();
}

NodePtr hollowNode(int i) {
  auto node = std::make_shared<Node>();
  node->mutable_metadata()->set_name("node-" + std::to_string(i));
  auto& labels = *node->mutable_metadata()->mutable_labels();
  labels["kubernetes.io/hostname"] = node->metadata().name();
  labels["topology.kubernetes.io/zone"] = "zone-" + std::to_string(i % 3);
  for (auto* m : {node->mutable_status()->mutable_capacity(),
                  node->mutable_status()->mutable_allocatable()}) {
    (*m)["cpu"] = q("4");
    (*m)["memory"] = q("32Gi");
    (*m)["pods"] = q("110");
  }
  return node;
}

// spread: 0 none, 1 zone, 2 zone and hostname.
PodPtr pod(int i, int spread) {
  auto p = std::make_shared<Pod>();
  p->mutable_metadata()->set_name("pod-" + std::to_string(i));
  p->mutable_metadata()->set_namespace_("default");
  (*p->mutable_metadata()->mutable_labels())["app"] = "bench";
  auto* c = p->mutable_spec()->add_containers();
  c->set_name("c");
  (*c->mutable_resources()->mutable_requests())["cpu"] = q("10m");
  (*c->mutable_resources()->mutable_requests())["memory"] = q("50Mi");
  for (int k = 0; k < spread; ++k) {
    auto* s = p->mutable_spec()->add_topology_spread_constraints();
    s->set_max_skew(1);
    s->set_topology_key(k == 0 ? "topology.kubernetes.io/zone" : "kubernetes.io/hostname");
    s->set_when_unsatisfiable("DoNotSchedule");
    (*s->mutable_label_selector()->mutable_match_labels())["app"] = "bench";
  }
  return p;
}

void scheduleLoop(benchmark::State& state, int spread) {
  const int nodes = static_cast<int>(state.range(0));
  Cache cache;
  for (int i = 0; i < nodes; ++i)
    cache.addNode(hollowNode(i));
  Framework framework(FrameworkOptions{});
  plugins::registerDefaultPlugins(framework);
  Snapshot snapshot;
  int n = 0;
  for (auto _ : state) {
    PodInfoPtr info = PodInfo::make(pod(n++, spread));
    cache.updateSnapshot(snapshot);
    CycleState cycle;
    ScheduleResult r = framework.schedulePod(cycle, *info, snapshot);
    if (!r.status.ok()) {
      state.SkipWithError(r.status.message().c_str());
      break;
    }
    auto assumed = std::make_shared<Pod>(*info->pod);
    assumed->mutable_spec()->set_node_name(r.node);
    cache.assumePod(assumed);
    // Keep nodes from filling up over long runs: forget what was placed long ago.
    if (n % 20000 == 0) {
      state.PauseTiming();
      for (int k = n - 20000; k < n; ++k)
        cache.forgetPod("default/pod-" + std::to_string(k));
      state.ResumeTiming();
    }
  }
  state.counters["pods_per_second"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_SchedulingBasic(benchmark::State& state) {
  scheduleLoop(state, 0);
}
void BM_SchedulingTopologySpread(benchmark::State& state) {
  scheduleLoop(state, static_cast<int>(state.range(1)));
}

BENCHMARK(BM_SchedulingBasic)->Arg(1000)->Arg(5000)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_SchedulingTopologySpread)
    ->Args({1000, 1})
    ->Args({5000, 1})
    ->Args({5000, 2})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace
}  // namespace skiff::scheduler

BENCHMARK_MAIN();
