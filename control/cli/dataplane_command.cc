#include "control/cli/dataplane_command.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#if SKIFF_WITH_DPDK
#include <rte_eal.h>
#include <rte_errno.h>

#include "dataplane/dpdk/benchmark.h"
#include "dataplane/dpdk/control_codec.h"
#include "dataplane/dpdk/control_server.h"
#include "dataplane/dpdk/dpdk_dataplane.h"
#include "dataplane/dpdk/runtime.h"
#endif

namespace skiff::cli {
namespace {

CLI::App& benchGroup(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    if (sub->get_name() == "bench") return *sub;
  }
  CLI::App* bench = app.add_subcommand("bench", "Run a system benchmark and print its figures");
  bench->require_subcommand(1);
  return *bench;
}

#if SKIFF_WITH_DPDK
namespace dp = skiff::dataplane::dpdk;

std::atomic<bool> stopRequested{false};

void onSignal(int) {
  stopRequested.store(true);
}

struct ServeOptions {
  std::string socket = std::string(dp::kDefaultControlSocket);
  std::string metricsAddress = "127.0.0.1";
  int metricsPort = 9469;
  uint32_t conntrack = 1u << 20;
  int exceptionPort = -1;
  std::vector<uint16_t> ports;
  std::vector<std::string> eal;
};

// EAL wants argv with a program name first.
bool initEal(std::vector<std::string> args, std::string& error) {
  args.insert(args.begin(), "skiff-dataplane");
  std::vector<char*> argv;
  for (std::string& a : args)
    argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
    error = std::string("EAL: ") + rte_strerror(rte_errno) +
            " (hugepages? try -- --no-huge -m 512; ports? --vdev=net_null0 or --no-pci)";
    return false;
  }
  return true;
}

int serve(const ServeOptions& o) {
  std::string error;
  if (!initEal(o.eal, error)) {
    std::cerr << "skiff dataplane: " << error << "\n";
    return 1;
  }
  dp::RuntimeOptions ro;
  ro.ports = o.ports;
  ro.exceptionPort = o.exceptionPort < 0 ? dp::kNoPort : static_cast<uint16_t>(o.exceptionPort);
  ro.pipeline.conntrackCapacity = o.conntrack;
  ro.pipeline.forward = dp::ForwardMode::kSwapMacs;
  auto rt = dp::Runtime::start(ro);
  if (!rt.ok()) {
    std::cerr << "skiff dataplane: " << rt.message() << "\n";
    rte_eal_cleanup();
    return 1;
  }
  dp::Runtime& runtime = **rt;
  dp::ControlHandlers handlers;
  handlers.request = [&](const dp::v1::Request& r) { return runtime.handle(r); };
  handlers.metrics = [&] { return dp::prometheusText(runtime.stats()); };
  auto server = dp::ControlServer::listen(o.socket, o.metricsAddress, o.metricsPort, handlers);
  if (!server.ok()) {
    std::cerr << "skiff dataplane: " << server.message() << "\n";
    runtime.stop();
    rte_eal_cleanup();
    return 1;
  }
  std::signal(SIGINT, onSignal);
  std::signal(SIGTERM, onSignal);
  std::cerr << "skiff dataplane: " << runtime.workerCount() << " worker lcores, "
            << runtime.ports().size() << " ports; control socket " << o.socket;
  if ((*server)->metricsPort() >= 0)
    std::cerr << ", metrics http://" << o.metricsAddress << ":" << (*server)->metricsPort()
              << "/metrics";
  std::cerr << std::endl;
  (*server)->run(stopRequested);
  server->reset();
  runtime.stop();
  rt->reset();
  rte_eal_cleanup();
  return 0;
}

int printStats(const std::string& socket, bool prometheus) {
  dp::DpdkDataplane client(socket);
  auto s = client.fullStats();
  if (!s.ok()) {
    std::cerr << "skiff dataplane stats: " << s.message() << "\n";
    return 1;
  }
  if (prometheus) {
    std::cout << dp::prometheusText(*s);
    return 0;
  }
  std::printf("%-8s %-24s %14s %14s %12s %12s\n", "PORT", "NAME", "RX", "TX", "MISSED", "ERRORS");
  for (const auto& p : s->ports())
    std::printf("%-8u %-24s %14lu %14lu %12lu %12lu\n", p.port(), p.name().c_str(),
                static_cast<unsigned long>(p.rx_packets()),
                static_cast<unsigned long>(p.tx_packets()),
                static_cast<unsigned long>(p.rx_missed()),
                static_cast<unsigned long>(p.rx_errors() + p.tx_errors()));
  std::printf("\n%-8s %14s %14s %14s %14s %12s\n", "LCORE", "RX", "TX", "PASS", "DROP",
              "CONNTRACK");
  for (const auto& l : s->lcores())
    std::printf(
        "%-8u %14lu %14lu %14lu %14lu %12lu\n", l.lcore(),
        static_cast<unsigned long>(l.rx_packets()), static_cast<unsigned long>(l.tx_packets()),
        static_cast<unsigned long>(l.pass_packets()), static_cast<unsigned long>(l.drop_packets()),
        static_cast<unsigned long>(l.conntrack_entries()));
  std::printf("\n%-40s %12s %14s %14s %12s\n", "SERVICE", "NEW FLOWS", "PACKETS", "BYTES", "DROPS");
  for (const auto& sv : s->services()) {
    uint64_t drops = 0;
    for (uint64_t d : sv.drops())
      drops += d;
    std::printf("%-40s %12lu %14lu %14lu %12lu\n", sv.id().c_str(),
                static_cast<unsigned long>(sv.new_flows()),
                static_cast<unsigned long>(sv.packets()), static_cast<unsigned long>(sv.bytes()),
                static_cast<unsigned long>(drops));
  }
  return 0;
}

struct BenchOptions {
  bool quick = false;
  bool json = false;
  uint32_t services = 0;  // 0: 1 and 10,000 (quick: 1 and 1,000)
  uint32_t flows = 0;     // 0: 1,000,000 (quick: 10,000)
};

int bench(const BenchOptions& o) {
  const unsigned cpu = static_cast<unsigned>(sched_getcpu() < 0 ? 0 : sched_getcpu());
  std::string error;
  if (!initEal({"-l", std::to_string(cpu), "--no-huge", "-m", "512", "--no-pci", "--vdev=net_null0",
                "--vdev=net_null1", "--no-telemetry", "--file-prefix",
                "skiff-bench-dpdk-" + std::to_string(getpid()), "--log-level", "lib.eal:error"},
               error)) {
    std::cerr << "skiff bench dpdk: " << error << "\n";
    return 1;
  }
  std::vector<uint32_t> serviceCounts;
  if (o.services != 0) {
    serviceCounts = {o.services};
  } else {
    serviceCounts = {1, o.quick ? 1000u : 10000u};
  }
  dp::BenchmarkOptions bo;
  bo.flows = o.flows != 0 ? o.flows : (o.quick ? 10000 : 1000000);
  bo.packetsPerRun = o.quick ? 1000000 : 10000000;
  bo.repetitions = o.quick ? 3 : 5;
  std::vector<dp::BenchmarkResult> results;
  for (uint32_t n : serviceCounts) {
    bo.services = n;
    auto r = dp::runBenchmark(bo);
    if (!r.ok()) {
      std::cerr << "skiff bench dpdk: " << r.message() << "\n";
      rte_eal_cleanup();
      return 1;
    }
    results.push_back(*r);
  }
  rte_eal_cleanup();
  const dp::BenchmarkResult& head = results.front();
  const dp::BenchmarkResult& last = results.back();
  const double flat = last.establishedCycles / head.establishedCycles;
  // The largest share of any run's cycles left out because the thread was not running.
  double descheduled = 0;
  for (const auto& r : results)
    descheduled = std::max(descheduled, r.descheduledShare);
  if (o.json) {
    std::printf(
        "{\"suite\": \"dpdk\", \"params\": {\"services\": [%u%s], \"flows\": %u, "
        "\"packets_per_run\": %u, \"repetitions\": %d, \"packet_bytes\": 64, "
        "\"maglev_table_size\": %u, \"tsc_hz\": %.0f, \"ports\": \"net_null0 -> net_null1\", "
        "\"floor\": \"io forwarding loop, same ports, same run\"}, \"metrics\": {"
        "\"established_cycles_per_packet\": %.1f, \"new_flow_cycles_per_packet\": %.1f, "
        "\"established_mpps_per_core\": %.2f, \"io_floor_mpps\": %.2f, \"ratio_to_floor\": %.3f, "
        "\"floor_cycles_per_packet\": %.1f, \"established_cycles_per_packet_at_max_services\": "
        "%.1f, \"new_flow_cycles_per_packet_at_max_services\": %.1f, "
        "\"established_max_services_to_one_ratio\": %.3f, \"lost_packets\": %lu, "
        "\"io_only_cycles_per_packet\": %.1f, \"generator_cycles_per_packet\": %.1f, "
        "\"established_pipeline_cycles_per_packet\": %.1f, "
        "\"new_flow_pipeline_cycles_per_packet\": %.1f, "
        "\"established_pipeline_cycles_per_packet_at_max_services\": %.1f, "
        "\"new_flow_pipeline_cycles_per_packet_at_max_services\": %.1f, "
        "\"established_pipeline_max_services_to_one_ratio\": %.3f, \"descheduled_share\": %.3f}}\n",
        serviceCounts.front(),
        serviceCounts.size() > 1 ? (", " + std::to_string(serviceCounts.back())).c_str() : "",
        bo.flows, bo.packetsPerRun, bo.repetitions, bo.maglevTableSize, head.tscHz,
        head.establishedCycles, head.newFlowCycles, head.establishedMpps, head.floorMpps,
        head.ratioToFloor, head.floorCycles, last.establishedCycles, last.newFlowCycles, flat,
        static_cast<unsigned long>(head.lostPackets + last.lostPackets), head.ioOnlyCycles,
        head.generatorCycles, head.establishedPipelineCycles, head.newFlowPipelineCycles,
        last.establishedPipelineCycles, last.newFlowPipelineCycles,
        last.establishedPipelineCycles / head.establishedPipelineCycles, descheduled);
    return 0;
  }
  std::printf(
      "DPDK pipeline on net_null (64-byte TCP/UDP, %u flows, median of %d runs, "
      "TSC %.2f GHz)\n",
      bo.flows, bo.repetitions, head.tscHz / 1e9);
  std::printf("%-10s %14s %14s %14s %12s %12s %10s %10s %8s %8s\n", "SERVICES", "EST CYC/PKT",
              "NEW CYC/PKT", "FLOOR CYC/PKT", "EST MPPS", "RATIO", "EST PIPE", "NEW PIPE", "GEN",
              "IO");
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    std::printf("%-10u %14.1f %14.1f %14.1f %12.2f %12.3f %10.1f %10.1f %8.1f %8.1f\n",
                serviceCounts[i], r.establishedCycles, r.newFlowCycles, r.floorCycles,
                r.establishedMpps, r.ratioToFloor, r.establishedPipelineCycles,
                r.newFlowPipelineCycles, r.generatorCycles, r.ioOnlyCycles);
  }
  std::printf(
      "(PIPE: cycles in processBurst alone, net of generator and I/O; FLOOR: RX, generator "
      "and TX; GEN, IO: its parts)\n");
  std::printf(
      "(at most %.1f%% of a run's cycles left out as descheduled: loop iterations over 4x the "
      "median)\n",
      100 * descheduled);
  return 0;
}
#endif

}  // namespace

void addDataplaneCommand(CLI::App& app, int& exit_code) {
  CLI::App* cmd = app.add_subcommand(
      "dataplane", "Run the DPDK data path (EAL arguments after --); `stats` reads its counters");
#if SKIFF_WITH_DPDK
  auto serveOptions = std::make_shared<ServeOptions>();
  cmd->add_option("--socket", serveOptions->socket, "Control socket path")->capture_default_str();
  cmd->add_option("--metrics-address", serveOptions->metricsAddress,
                  "Address of the Prometheus /metrics endpoint")
      ->capture_default_str();
  cmd->add_option("--metrics-port", serveOptions->metricsPort,
                  "Port of /metrics (0: any free port, -1: none)")
      ->capture_default_str();
  cmd->add_option("--conntrack", serveOptions->conntrack,
                  "Conntrack entries per worker lcore (two per flow)")
      ->capture_default_str();
  cmd->add_option("--ports", serveOptions->ports, "Port ids to balance on (default: all)");
  cmd->add_option("--exception-port", serveOptions->exceptionPort,
                  "Port (a net_tap) that non-service traffic goes to (default: dropped)");
  cmd->add_option("eal", serveOptions->eal, "EAL arguments, after --");
  CLI::App* stats = cmd->add_subcommand("stats", "Print the data path's statistics");
  auto statsSocket = std::make_shared<std::string>(dp::kDefaultControlSocket);
  auto prometheus = std::make_shared<bool>(false);
  stats->add_option("--socket", *statsSocket, "Control socket path")->capture_default_str();
  stats->add_flag("--prometheus", *prometheus, "Print the Prometheus text");
  stats->callback([=, &exit_code] { exit_code = printStats(*statsSocket, *prometheus); });
  cmd->callback([serveOptions, cmd, &exit_code] {
    if (cmd->got_subcommand("stats")) return;
    exit_code = serve(*serveOptions);
  });

  auto benchOptions = std::make_shared<BenchOptions>();
  CLI::App* b = benchGroup(app).add_subcommand(
      "dpdk", "Packet rate of the DPDK pipeline on net_null beside io forwarding");
  b->add_flag("--quick", benchOptions->quick, "Fewer flows, packets and runs (smoke)");
  b->add_flag("--json", benchOptions->json, "One JSON object on stdout");
  b->add_option("--services", benchOptions->services, "Services (default: 1 and 10000)");
  b->add_option("--flows", benchOptions->flows, "Established flows (default: 1000000)");
  b->callback([benchOptions, &exit_code] { exit_code = bench(*benchOptions); });
#else
  cmd->callback([&exit_code] {
    std::cerr << "skiff dataplane: this skiff was built without DPDK (SKIFF_WITH_DPDK=OFF)\n";
    exit_code = 1;
  });
  (void)benchGroup;
#endif
}

}  // namespace skiff::cli
