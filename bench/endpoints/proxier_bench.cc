// The node proxier's sync cost: N services of 10 endpoints each (N = 100, 10,000), translated
// from Services and EndpointSlices and handed to a Dataplane that only takes the delta (so the
// figure is the proxier's own work: change tracking, translation, diff).
//   BM_FullSync:  the first sync of everything (replaceAll).
//   BM_OneChange: one endpoint changes in one service, then a sync (only that service goes out).

#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "dataplane/dataplane.h"
#include "endpoints/endpointslice_reconciler.h"
#include "endpoints/proxier.h"

namespace skiff::endpoints {
namespace {

namespace core = api::core::v1;
namespace discovery = api::discovery::v1;

class CountingDataplane : public dataplane::Dataplane {
 public:
  std::string_view name() const override { return "counting"; }
  dataplane::Status apply(const dataplane::ServiceDelta& delta) override {
    upserted += delta.upserted.size();
    return {};
  }
  dataplane::Result<dataplane::DataplaneStats> stats() const override {
    return dataplane::DataplaneStats{};
  }
  size_t upserted = 0;
};

std::string ip(uint32_t base, uint32_t i) {
  uint32_t v = base + i;
  return std::to_string(v >> 24) + "." + std::to_string((v >> 16) & 255) + "." +
         std::to_string((v >> 8) & 255) + "." + std::to_string(v & 255);
}

ServicePtr makeService(int i) {
  auto s = std::make_shared<core::Service>();
  s->mutable_metadata()->set_name("svc-" + std::to_string(i));
  s->mutable_metadata()->set_namespace_("default");
  s->mutable_spec()->set_cluster_ip(ip(0x0a600000, static_cast<uint32_t>(i) + 1));
  auto* port = s->mutable_spec()->add_ports();
  port->set_name("http");
  port->set_port(80);
  port->set_protocol("TCP");
  return s;
}

SlicePtr makeSlice(int i, int endpoints, int generation) {
  auto s = std::make_shared<discovery::EndpointSlice>();
  s->mutable_metadata()->set_name("svc-" + std::to_string(i) + "-abc");
  s->mutable_metadata()->set_namespace_("default");
  (*s->mutable_metadata()->mutable_labels())[std::string(kLabelServiceName)] =
      "svc-" + std::to_string(i);
  s->set_address_type("IPv4");
  auto* port = s->add_ports();
  port->set_name("http");
  port->set_port(8080);
  port->set_protocol("TCP");
  for (int e = 0; e < endpoints; ++e) {
    auto* ep = s->add_endpoints();
    ep->add_addresses(
        ip(0x0a000000, static_cast<uint32_t>(i * 16 + e + (e == 0 ? generation * 11 : 0))));
    ep->mutable_conditions()->set_ready(true);
    ep->set_node_name(e % 3 == 0 ? "node-1" : "node-2");
  }
  return s;
}

struct World {
  CountingDataplane dataplane;
  std::unique_ptr<Proxier> proxier;
  explicit World(int services) {
    proxier = std::make_unique<Proxier>(dataplane, ProxierOptions{.nodeName = "node-1"});
    for (int i = 0; i < services; ++i) {
      proxier->onServiceAdd(makeService(i));
      proxier->onSliceUpdate(makeSlice(i, 10, 0), false);
    }
    proxier->setServicesSynced();
    proxier->setEndpointSlicesSynced();
  }
};

void BM_FullSync(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  for (auto _ : state) {
    state.PauseTiming();
    World world(n);
    state.ResumeTiming();
    SyncResult r = world.proxier->sync();
    benchmark::DoNotOptimize(r);
    state.PauseTiming();
    if (!r.ok || !r.full || world.dataplane.upserted != static_cast<size_t>(n))
      state.SkipWithError("full sync did not program every service");
    state.ResumeTiming();
  }
  state.counters["services"] = n;
}
BENCHMARK(BM_FullSync)->Arg(100)->Arg(10000)->Unit(benchmark::kMillisecond);

void BM_OneChange(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  World world(n);
  if (!world.proxier->sync().ok) state.SkipWithError("first sync failed");
  int generation = 0;
  for (auto _ : state) {
    state.PauseTiming();
    world.dataplane.upserted = 0;
    world.proxier->onSliceUpdate(makeSlice(n / 2, 10, ++generation), false);
    state.ResumeTiming();
    SyncResult r = world.proxier->sync();
    benchmark::DoNotOptimize(r);
    state.PauseTiming();
    if (!r.ok || r.full || world.dataplane.upserted != 1)
      state.SkipWithError("one change did not program exactly one service");
    state.ResumeTiming();
  }
  state.counters["services"] = n;
}
BENCHMARK(BM_OneChange)->Arg(100)->Arg(10000)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace skiff::endpoints

BENCHMARK_MAIN();
