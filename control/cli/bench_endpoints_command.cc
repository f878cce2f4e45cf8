#include "control/cli/bench_endpoints_command.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "control/api/time.h"
#include "control/cli/bench_store_command.h"
#include "dataplane/dataplane.h"
#include "endpoints/endpointslice_reconciler.h"
#include "endpoints/node_proxier.h"
#include "endpoints/proxier.h"
#include "endpoints/sync_runner.h"
#include "endpoints/trigger_time.h"

#if SKIFF_WITH_EBPF
#include "ebpf/ebpf_dataplane.h"
#endif

namespace skiff::cli {
namespace {

namespace core = api::core::v1;
namespace discovery = api::discovery::v1;
using Clock = std::chrono::steady_clock;

struct BenchEndpointsOptions {
  int services = 10000;
  int endpointsPerService = 10;
  int changesPerSecond = 100;
  int seconds = 10;
  bool quick = false;
  std::string dataplane = "auto";
  bool json = false;
};

// The data path for `--dataplane fake`: takes every delta and counts what it holds.
class CountingDataplane final : public dataplane::Dataplane {
 public:
  std::string_view name() const override { return "fake"; }
  dataplane::Status apply(const dataplane::ServiceDelta& delta) override {
    upserted_ += delta.upserted.size();
    return {};
  }
  dataplane::Result<dataplane::DataplaneStats> stats() const override {
    return dataplane::DataplaneStats{};
  }

 private:
  size_t upserted_ = 0;
};

std::string ipv4(uint32_t v) {
  return std::to_string(v >> 24) + "." + std::to_string((v >> 16) & 255) + "." +
         std::to_string((v >> 8) & 255) + "." + std::to_string(v & 255);
}

std::string serviceName(int i) {
  return "svc-" + std::to_string(i);
}

endpoints::ServicePtr makeService(int i) {
  auto s = std::make_shared<core::Service>();
  s->mutable_metadata()->set_name(serviceName(i));
  s->mutable_metadata()->set_namespace_("default");
  s->mutable_spec()->set_cluster_ip(ipv4(0x0a600000u + static_cast<uint32_t>(i) + 1));  // 10.96/12
  auto* port = s->mutable_spec()->add_ports();
  port->set_name("http");
  port->set_port(80);
  port->set_protocol("TCP");
  return s;
}

// Service i's slice of `endpoints` ready endpoints in 10.0/10; `generation` > 0 moves its first
// endpoint to 11.x (a pod replaced), so every generation differs for the proxier.
std::shared_ptr<discovery::EndpointSlice> makeSlice(int i, int endpoints, uint32_t generation) {
  auto s = std::make_shared<discovery::EndpointSlice>();
  s->mutable_metadata()->set_name(serviceName(i) + "-bench");
  s->mutable_metadata()->set_namespace_("default");
  (*s->mutable_metadata()->mutable_labels())[std::string(endpoints::kLabelServiceName)] =
      serviceName(i);
  s->set_address_type("IPv4");
  auto* port = s->add_ports();
  port->set_name("http");
  port->set_port(8080);
  port->set_protocol("TCP");
  for (int e = 0; e < endpoints; ++e) {
    auto* ep = s->add_endpoints();
    uint32_t address = (e == 0 && generation > 0)
                           ? 0x0b000000u + generation
                           : 0x0a000000u + static_cast<uint32_t>(i) * 64 + static_cast<uint32_t>(e);
    ep->add_addresses(ipv4(address));
    ep->mutable_conditions()->set_ready(true);
    ep->set_node_name(e % 3 == 0 ? "bench-node" : "other-node");
  }
  return s;
}

void stampTriggerTime(discovery::EndpointSlice& slice) {
  (*slice.mutable_metadata()
        ->mutable_annotations())[std::string(endpoints::kAnnotationLastChangeTriggerTime)] =
      endpoints::formatRfc3339Nano(api::now());
}

// CPU time of the whole process (every thread), in ms: beside a wall-clock figure it tells
// whether the time went to work or to waiting for a core (a busy, shared machine).
double processCpuMs() {
  timespec t{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

double msSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

std::unique_ptr<dataplane::Dataplane> makeDataplane(const BenchEndpointsOptions& options,
                                                    std::string& chosen) {
  chosen = options.dataplane;
#if SKIFF_WITH_EBPF
  const bool ebpfPossible = ::geteuid() == 0;
#else
  const bool ebpfPossible = false;
#endif
  if (chosen == "auto") chosen = ebpfPossible ? "ebpf" : "fake";
  if (chosen == "fake") return std::make_unique<CountingDataplane>();
  if (chosen != "ebpf") {
    throw std::invalid_argument("--dataplane: '" + chosen + "' is not auto, ebpf or fake");
  }
#if SKIFF_WITH_EBPF
  if (::geteuid() != 0) {
    throw std::runtime_error("--dataplane ebpf needs root (or use --dataplane fake)");
  }
  // Only the maps: no cgroup and no XDP attachment, nothing pinned (all goes with the process).
  ebpf::EbpfDataplaneOptions dp;
  const uint32_t services = static_cast<uint32_t>(options.services);
  const uint32_t backends =
      static_cast<uint32_t>(options.services) * static_cast<uint32_t>(options.endpointsPerService);
  dp.load.services = std::max<uint32_t>(dp.load.services, services + 16);
  dp.load.ringEntries = (services + 16) * 16384u + SKIFF_RING_ALIGN;
  dp.load.frontends = std::max<uint32_t>(dp.load.frontends, services + 16);
  dp.load.rings = std::max<uint32_t>(dp.load.rings, 4 * (services + 16));
  // Room for each changed service's new backend before its old one is cleared.
  dp.load.backends = std::max<uint32_t>(dp.load.backends, backends + services + 1024);
  auto made = ebpf::EbpfDataplane::create(dp);
  if (!made.ok()) {
    throw std::runtime_error("the eBPF data path: " + made.message() +
                             " (or use --dataplane fake)");
  }
  return std::move(made).value();
#else
  throw std::runtime_error(
      "this skiff was built without the eBPF data path (SKIFF_WITH_EBPF=OFF); use --dataplane "
      "fake");
#endif
}

int runBenchEndpoints(BenchEndpointsOptions options) {
  if (options.services < 1 || options.endpointsPerService < 1 || options.endpointsPerService > 64)
    throw std::invalid_argument("--services must be >= 1, --endpoints-per-service 1..64");
  if (options.changesPerSecond < 1 || options.seconds < 1)
    throw std::invalid_argument("--changes-per-second and --seconds must be >= 1");
  if (options.quick) options.seconds = std::min(options.seconds, 2);

  std::string dataplaneName;
  std::unique_ptr<dataplane::Dataplane> dataplane = makeDataplane(options, dataplaneName);
  endpoints::NodeProxierOptions nodeOptions;  // the agent's pacing and full-sync period
  nodeOptions.proxier.nodeName = "bench-node";
  endpoints::Proxier proxier(*dataplane, nodeOptions.proxier);

  // Built beforehand: the measure is the proxier and the data path, not protobuf construction.
  std::vector<endpoints::ServicePtr> services;
  std::vector<endpoints::SlicePtr> slices;
  for (int i = 0; i < options.services; ++i) {
    services.push_back(makeService(i));
    slices.push_back(makeSlice(i, options.endpointsPerService, 0));
  }

  // Full sync: hand over everything as the informers' first lists would, then the first sync.
  const double cpuStart = processCpuMs();
  Clock::time_point start = Clock::now();
  for (int i = 0; i < options.services; ++i) {
    proxier.onServiceAdd(services[static_cast<size_t>(i)]);
    proxier.onSliceUpdate(slices[static_cast<size_t>(i)], false);
  }
  proxier.setServicesSynced();
  proxier.setEndpointSlicesSynced();
  endpoints::SyncResult first = proxier.sync();
  const double fullSyncMs = msSince(start);
  const double fullSyncCpuMs = processCpuMs() - cpuStart;
  if (!first.ok || !first.full || first.upserted != static_cast<size_t>(options.services)) {
    throw std::runtime_error("the first full sync programmed " + std::to_string(first.upserted) +
                             " of " + std::to_string(options.services) +
                             " services: " + first.error);
  }

  // A first sync that outlasts the full-sync period makes the next one full again (the proxier's
  // period counts from a sync's start): run it now, measured apart, so that the change phase
  // measures programming latency in the steady state.
  start = Clock::now();
  endpoints::SyncResult settle = proxier.sync();
  const double settleSyncMs = msSince(start);
  if (!settle.ok) throw std::runtime_error("the sync after the full sync failed: " + settle.error);

  // Changes: R per second, each handed over as an informer's update event would be, with the
  // agent's sync runner (rate limit and burst) programming them.
  std::atomic<uint64_t> failedSyncs{0};
  endpoints::BoundedFrequencyRunner* runnerPtr = nullptr;
  endpoints::BoundedFrequencyRunner runner(
      [&] {
        endpoints::SyncResult r = proxier.sync();
        if (!r.ok) {
          ++failedSyncs;
          runnerPtr->retryAfter(nodeOptions.retryInterval);
        }
      },
      endpoints::SyncRunnerOptions{.minInterval = nodeOptions.minSyncInterval,
                                   .maxInterval = nodeOptions.proxier.fullSyncPeriod});
  runnerPtr = &runner;
  runner.start();
  const uint64_t changes =
      static_cast<uint64_t>(options.changesPerSecond) * static_cast<uint64_t>(options.seconds);
  const auto interval = std::chrono::nanoseconds(1'000'000'000LL / options.changesPerSecond);
  // Spread over the services: consecutive changes hit services far apart.
  const uint64_t stride = static_cast<uint64_t>(options.services) > 7919 ? 7919 : 1;
  start = Clock::now();
  for (uint64_t c = 0; c < changes; ++c) {
    const int service = static_cast<int>((c * stride) % static_cast<uint64_t>(options.services));
    auto slice = makeSlice(service, options.endpointsPerService, static_cast<uint32_t>(c) + 1);
    std::this_thread::sleep_until(start + interval * static_cast<int64_t>(c));
    stampTriggerTime(*slice);
    proxier.onSliceUpdate(slice, false);
    runner.run();
  }
  const double changeSeconds = msSince(start) / 1000;
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (proxier.programmingLatency().count() < changes && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  runner.stop();
  const uint64_t programmed = proxier.programmingLatency().count();
  if (programmed < changes) {
    throw std::runtime_error("only " + std::to_string(programmed) + " of " +
                             std::to_string(changes) + " endpoint changes were programmed (" +
                             std::to_string(failedSyncs.load()) + " failed syncs)");
  }

  const double p50 = proxier.programmingLatency().quantile(0.5) * 1000;
  const double p99 = proxier.programmingLatency().quantile(0.99) * 1000;
  const double syncP99 = proxier.syncDuration().quantile(0.99) * 1000;
  const uint64_t syncs = proxier.syncs();

  char line[1024];
  if (options.json) {
    std::snprintf(line, sizeof(line),
                  R"({"suite":"endpoints","params":{"services":%d,"endpoints_per_service":%d,)"
                  R"("changes_per_second":%d,"seconds":%d,"dataplane":"%s"},)"
                  R"("metrics":{"full_sync_ms":%.3f,"full_sync_cpu_ms":%.3f,)"
                  R"("programming_latency_p50_ms":%.3f,)"
                  R"("programming_latency_p99_ms":%.3f,"changes_programmed":%llu,)"
                  R"("change_phase_seconds":%.3f,"syncs":%llu,"sync_duration_p99_ms":%.3f,)"
                  R"("failed_syncs":%llu,"settle_sync_ms":%.3f,"settle_sync_full":%d}})",
                  options.services, options.endpointsPerService, options.changesPerSecond,
                  options.seconds, dataplaneName.c_str(), fullSyncMs, fullSyncCpuMs, p50, p99,
                  static_cast<unsigned long long>(programmed), changeSeconds,
                  static_cast<unsigned long long>(syncs), syncP99,
                  static_cast<unsigned long long>(failedSyncs.load()), settleSyncMs,
                  settle.full ? 1 : 0);
    std::cout << line << "\n";
  } else {
    std::printf("endpoints: %d services x %d endpoints, %d changes/s for %d s, dataplane %s\n",
                options.services, options.endpointsPerService, options.changesPerSecond,
                options.seconds, dataplaneName.c_str());
    std::printf("  %-32s %10.3f   (target <= 1000)\n", "full_sync_ms", fullSyncMs);
    std::printf("  %-32s %10.3f   (CPU of all threads during the full sync)\n", "full_sync_cpu_ms",
                fullSyncCpuMs);
    std::printf("  %-32s %10.3f   (%s)\n", "settle_sync_ms", settleSyncMs,
                settle.full ? "full again: the first outlasted the full-sync period" : "no-op");
    std::printf("  %-32s %10.3f\n", "programming_latency_p50_ms", p50);
    std::printf("  %-32s %10.3f   (target <= 50)\n", "programming_latency_p99_ms", p99);
    std::printf("  %-32s %10llu\n", "changes_programmed",
                static_cast<unsigned long long>(programmed));
    std::printf("  %-32s %10llu\n", "syncs", static_cast<unsigned long long>(syncs));
    std::printf("  %-32s %10.3f\n", "sync_duration_p99_ms", syncP99);
    std::printf("  (latencies: the proxier's histogram, linear within its buckets)\n");
  }
  return failedSyncs.load() == 0 ? 0 : 1;
}

}  // namespace

void addBenchEndpointsCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<BenchEndpointsOptions>();
  CLI::App* cmd = benchGroup(app).add_subcommand(
      "endpoints",
      "The node proxier's first full sync and its network programming latency under endpoint "
      "churn, on the eBPF data path (root) or a counting fake");
  cmd->add_option("--services", options->services, "Services (one port each)")
      ->capture_default_str();
  cmd->add_option("--endpoints-per-service", options->endpointsPerService,
                  "Ready endpoints per service")
      ->capture_default_str();
  cmd->add_option("--changes-per-second", options->changesPerSecond,
                  "Endpoint changes per second after the full sync")
      ->capture_default_str();
  cmd->add_option("--seconds", options->seconds, "Seconds of endpoint changes")
      ->capture_default_str();
  cmd->add_flag("--quick", options->quick, "At most 2 seconds of changes");
  cmd->add_option("--dataplane", options->dataplane,
                  "ebpf (root), fake (counts deltas) or auto (ebpf when root)")
      ->capture_default_str();
  cmd->add_flag("--json", options->json, "One JSON object on stdout");
  cmd->callback([options, &exit_code] {
    try {
      exit_code = runBenchEndpoints(*options);
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      exit_code = 1;
    }
  });
}

}  // namespace skiff::cli
