// connect() through the socket LB beside a direct connect(), with the measuring code `skiff bench
// socklb` uses (ebpf/lb_bench.h): a child process in a cgroup and a network namespace of its own
// (the hooks are attached to that cgroup, never to the root cgroup) connects to a ClusterIP whose
// backend is a loopback listener, and to the listener directly, in interleaved rounds; each
// connect is connect + accept + close of both ends, so the difference between the two figures is
// what the connect4 hook and the reverse-NAT entry cost. Without root the benchmark skips.

#include <benchmark/benchmark.h>
#include <unistd.h>

#include "ebpf/lb_bench.h"

namespace {

void BM_SocklbConnect(benchmark::State& state) {
  if (geteuid() != 0) {
    state.SkipWithError("needs root (BPF, cgroups, network namespaces)");
    return;
  }
  double viaLb = 0;
  double direct = 0;
  for (auto _ : state) {
    auto figures = skiff::ebpf::bench::measureSocklb(static_cast<uint32_t>(state.range(0)));
    if (!figures.ok()) {
      state.SkipWithError(figures.message().c_str());
      return;
    }
    viaLb = figures->socklbConnectUs;
    direct = figures->directConnectUs;
  }
  // Microseconds per connect + accept + close (medians of rounds of 100).
  state.counters["socklb_connect_us"] = viaLb;
  state.counters["direct_connect_us"] = direct;
}
BENCHMARK(BM_SocklbConnect)->Arg(1000)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
