#include "control/cli/bench_socklb_command.h"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

#include "control/cli/bench_report.h"
#include "control/cli/bench_store_command.h"

#if SKIFF_WITH_EBPF
#include "ebpf/lb_bench.h"
#endif

namespace skiff::cli {
namespace {

struct BenchSocklbOptions {
  int connects = 3000;
  bool quick = false;
  bool json = false;
};

#if SKIFF_WITH_EBPF
int runBenchSocklb(BenchSocklbOptions options) {
  if (options.connects < 1) throw std::invalid_argument("--connects must be >= 1");
  if (options.quick) options.connects = std::min(options.connects, 300);
  auto figures = ebpf::bench::measureSocklb(static_cast<uint32_t>(options.connects));
  if (!figures.ok()) throw std::runtime_error(figures.message());
  const double ratio =
      figures->directConnectUs > 0 ? figures->socklbConnectUs / figures->directConnectUs : 0;
  const std::pair<const char*, double> metrics[] = {
      {"socklb_connect_us", figures->socklbConnectUs},
      {"direct_connect_us", figures->directConnectUs},
      {"socklb_to_direct_ratio", ratio},
  };
  if (options.json) {
    std::string line = R"({"suite":"socklb","params":{"connects":)" +
                       std::to_string(options.connects) +
                       R"(,"round":100,"per_connect":"connect+accept+close"},"metrics":{)";
    bool first = true;
    for (const auto& [key, value] : metrics) {
      line += std::string(first ? "" : ",") + "\"" + key + "\":" + benchNumber(value);
      first = false;
    }
    std::cout << line << "}}\n";
  } else {
    std::printf("socklb: %d connects through a ClusterIP and %d directly (connect+accept+close)\n",
                options.connects, options.connects);
    for (const auto& [key, value] : metrics)
      std::printf("  %-32s %12s\n", key, benchNumber(value).c_str());
  }
  return 0;
}
#else
int runBenchSocklb(const BenchSocklbOptions&) {
  throw std::runtime_error("this skiff was built without the eBPF data path (SKIFF_WITH_EBPF=OFF)");
}
#endif

}  // namespace

void addBenchSocklbCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<BenchSocklbOptions>();
  CLI::App* cmd = benchGroup(app).add_subcommand(
      "socklb", "connect() latency through the eBPF socket LB beside a direct connect() (root)");
  cmd->add_option("--connects", options->connects, "Connects each way")->capture_default_str();
  cmd->add_flag("--quick", options->quick, "At most 300 connects");
  cmd->add_flag("--json", options->json, "One JSON object on stdout");
  cmd->callback([options, &exit_code] {
    try {
      exit_code = runBenchSocklb(*options);
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      exit_code = 1;
    }
  });
}

}  // namespace skiff::cli
