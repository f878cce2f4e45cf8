#include "control/cli/bench_xdp_command.h"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "control/cli/bench_report.h"
#include "control/cli/bench_store_command.h"

#if SKIFF_WITH_EBPF
#include "ebpf/lb_bench.h"
#endif

namespace skiff::cli {
namespace {

struct BenchXdpOptions {
  int services = 10000;
  int backends = 10;
  int runs = 3000;
  int changes = 100;
  bool quick = false;
  bool json = false;
};

#if SKIFF_WITH_EBPF
int runBenchXdp(BenchXdpOptions options) {
  if (options.services < 1 || options.services > 65000)
    throw std::invalid_argument("--services must be 1..65000");
  if (options.backends < 1 || options.backends > 15)
    throw std::invalid_argument("--backends must be 1..15");
  if (options.runs < 1 || options.changes < 1)
    throw std::invalid_argument("--runs and --changes must be >= 1");
  if (options.quick) {
    options.services = std::min(options.services, 200);
    options.runs = std::min(options.runs, 300);
    options.changes = std::min(options.changes, 10);
  }
  const auto services = static_cast<uint32_t>(options.services);
  const auto backends = static_cast<uint32_t>(options.backends);
  const auto runs = static_cast<uint32_t>(options.runs);

  // The one-service data path first: it is freed before the large one is made.
  double established1 = 0;
  {
    auto one = ebpf::bench::XdpRig::create(1, backends);
    if (!one.ok()) throw std::runtime_error(one.message());
    auto figures = ebpf::bench::measureXdpPackets(**one, runs);
    if (!figures.ok()) throw std::runtime_error(figures.message());
    established1 = figures->establishedNs;
  }
  auto rig = ebpf::bench::XdpRig::create(services, backends);
  if (!rig.ok()) throw std::runtime_error(rig.message());
  std::vector<double> changes;
  for (int c = 0; c < options.changes; ++c) {
    // Spread over the services: consecutive changes hit services far apart.
    const auto index = static_cast<uint32_t>((static_cast<uint64_t>(c) * 7919) % services);
    auto ms = (*rig)->programOneChange(index, static_cast<uint32_t>(c) + 1);
    if (!ms.ok()) throw std::runtime_error(ms.message());
    changes.push_back(*ms);
  }
  auto figures = ebpf::bench::measureXdpPackets(**rig, runs);
  if (!figures.ok()) throw std::runtime_error(figures.message());
  const double ratio = figures->floorNs > 0 ? figures->establishedNs / figures->floorNs : 0;
  const double flatness = established1 > 0 ? figures->establishedNs / established1 : 0;
  const double oneChange = percentileMs(changes, 0.5);
  const double oneChangeP99 = percentileMs(changes, 0.99);

  const std::pair<const char*, double> metrics[] = {
      {"established_ns", figures->establishedNs},
      {"new_flow_ns", figures->newFlowNs},
      {"floor_ns", figures->floorNs},
      {"established_to_floor_ratio", ratio},
      {"program_all_ms", (*rig)->programAllMs()},
      {"program_one_change_ms", oneChange},
      {"program_one_change_p99_ms", oneChangeP99},
      {"established_ns_1_service", established1},
      {"established_vs_1_service_ratio", flatness},
      // The same packets through the tc ingress entry (the fallback where XDP cannot attach).
      {"tc_ns_per_packet", figures->tcEstablishedNs},
      {"tc_new_flow_ns", figures->tcNewFlowNs},
  };
  if (options.json) {
    std::string line = R"({"suite":"xdp","params":{"services":)" +
                       std::to_string(options.services) +
                       ",\"backends_per_service\":" + std::to_string(options.backends) +
                       ",\"runs\":" + std::to_string(options.runs) +
                       ",\"changes\":" + std::to_string(options.changes) +
                       R"(,"method":"one packet per BPF_PROG_TEST_RUN call"},"metrics":{)";
    bool first = true;
    for (const auto& [key, value] : metrics) {
      line += std::string(first ? "" : ",") + "\"" + key + "\":" + benchNumber(value);
      first = false;
    }
    std::cout << line << "}}\n";
  } else {
    std::printf("xdp: %d services x %d backends, %d one-packet runs per figure, %d changes\n",
                options.services, options.backends, options.runs, options.changes);
    const char* targets[] = {"",
                             "(target <= 400)",
                             "",
                             "(target <= 2)",
                             "(target <= 1000)",
                             "(target <= 1)",
                             "",
                             "",
                             "(target within 1.1)",
                             "(established, tc ingress)",
                             ""};
    for (size_t i = 0; i < std::size(metrics); ++i) {
      std::printf("  %-32s %12s   %s\n", metrics[i].first, benchNumber(metrics[i].second).c_str(),
                  targets[i]);
    }
  }
  return 0;
}
#else
int runBenchXdp(const BenchXdpOptions&) {
  throw std::runtime_error("this skiff was built without the eBPF data path (SKIFF_WITH_EBPF=OFF)");
}
#endif

}  // namespace

void addBenchXdpCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<BenchXdpOptions>();
  CLI::App* cmd = benchGroup(app).add_subcommand(
      "xdp",
      "The XDP load balancer: ns per packet (established, new flow, XDP_TX floor) and the time to "
      "program N services and one change among them (root)");
  cmd->add_option("--services", options->services, "Services (one external IP each)")
      ->capture_default_str();
  cmd->add_option("--backends", options->backends, "Backends per service")->capture_default_str();
  cmd->add_option("--runs", options->runs, "One-packet runs per figure")->capture_default_str();
  cmd->add_option("--changes", options->changes, "One-service changes to time")
      ->capture_default_str();
  cmd->add_flag("--quick", options->quick, "At most 200 services, 300 runs, 10 changes");
  cmd->add_flag("--json", options->json, "One JSON object on stdout");
  cmd->callback([options, &exit_code] {
    try {
      exit_code = runBenchXdp(*options);
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      exit_code = 1;
    }
  });
}

}  // namespace skiff::cli
