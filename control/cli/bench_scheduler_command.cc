#include "control/cli/bench_scheduler_command.h"

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "control/api/json.h"
#include "control/cli/bench_report.h"
#include "control/cli/bench_store_command.h"
#include "control/cli/cli_context.h"
#include "control/cli/control_plane.h"
#include "control/client/kubeconfig.h"
#include "control/client/rest_client.h"

namespace skiff::cli {
namespace {

using Clock = std::chrono::steady_clock;

// kube-scheduler's scheduler_perf shapes: SchedulingBasic (small pods, no constraints) and
// TopologySpreading (the same pods, spread over zones with maxSkew 1).
struct BenchSchedulerOptions {
  int nodes = 5000;
  int pods = 10000;
  bool quick = false;
  std::vector<std::string> workloads = {"basic", "spread"};
  bool json = false;
};

struct WorkloadResult {
  double pods_per_second = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  double seconds = 0;
  double creates_per_second = 0;
};

constexpr const char* kNamespace = "skiff-bench-scheduler";
constexpr int kCreateWorkers = 8;

// A node as a kubelet would register it: Ready, room for many small pods, spread over 3 zones.
api::Value hollowNode(int i) {
  char json[1024];
  std::snprintf(json, sizeof(json),
                R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"hollow-%d","labels":{)"
                R"("kubernetes.io/hostname":"hollow-%d","topology.kubernetes.io/zone":"zone-%d"}},)"
                R"("status":{"capacity":{"cpu":"4","memory":"32Gi","pods":"110"},)"
                R"("allocatable":{"cpu":"4","memory":"32Gi","pods":"110"},)"
                R"("conditions":[{"type":"Ready","status":"True","reason":"KubeletReady"}]}})",
                i, i, i % 3);
  return api::parseJson(json);
}

api::Value pendingPod(int i, bool spread) {
  char json[1024];
  std::snprintf(json, sizeof(json),
                R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"pod-%d","labels":)"
                R"({"app":"bench"}},"spec":{"containers":[{"name":"c","image":"pause",)"
                R"("resources":{"requests":{"cpu":"10m","memory":"50Mi"}}}]%s}})",
                i,
                spread ? R"(,"topologySpreadConstraints":[{"maxSkew":1,)"
                         R"("topologyKey":"topology.kubernetes.io/zone",)"
                         R"("whenUnsatisfiable":"DoNotSchedule",)"
                         R"("labelSelector":{"matchLabels":{"app":"bench"}}}])"
                       : "");
  return api::parseJson(json);
}

// One workload on a cluster of its own: nodes registered (not measured), then pods created
// while the scheduler binds them, as scheduler_perf does. Throws on failure.
WorkloadResult runWorkload(const BenchSchedulerOptions& options, bool spread) {
  std::string dir = "/tmp/skiff-bench-scheduler-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  struct RemoveDir {
    std::string path;
    ~RemoveDir() {
      std::error_code error;
      std::filesystem::remove_all(path, error);
    }
  } remove_dir{dir};
  std::ostream& progress = std::cerr;

  ControlPlaneOptions plane_options;
  plane_options.apiserver.data_dir = dir;
  plane_options.apiserver.bind_address = "127.0.0.1";
  plane_options.apiserver.port = 0;
  plane_options.disabled = {"controllers", "endpointslice"};
  ControlPlane plane(plane_options);
  progress << "skiff bench scheduler (" << (spread ? "TopologySpreading" : "SchedulingBasic")
           << "): apiserver and scheduler at " << plane.url() << ", store in " << dir << "\n";
  client::LoadOptions load;
  load.kubeconfig = plane.adminKubeconfig();
  client::ClientPtr client = client::makeRestClient(client::loadClientConfig(load));
  const auto& nodes_type = resolveType("nodes");
  const auto& pods_type = resolveType("pods");
  const auto& namespaces_type = resolveType("namespaces");

  // Setup, not measured: the nodes (status written apart, as a kubelet does) and the namespace.
  const int workers = kCreateWorkers;
  auto parallel = [&](int count, const std::function<void(int)>& each) {
    std::atomic<int> next{0};
    std::vector<std::thread> threads;
    std::exception_ptr failure;
    std::mutex failure_mu;
    for (int t = 0; t < workers; ++t) {
      threads.emplace_back([&] {
        try {
          for (int i = next++; i < count; i = next++)
            each(i);
        } catch (...) {
          std::lock_guard lock(failure_mu);
          failure = std::current_exception();
          next = count;
        }
      });
    }
    for (auto& thread : threads)
      thread.join();
    if (failure) std::rethrow_exception(failure);
  };
  parallel(options.nodes, [&](int i) {
    api::Value node = hollowNode(i);
    api::Value created = client->create(nodes_type, "", node);
    created.set("status", *node.find("status"));
    client->updateStatus(nodes_type, "", created);
  });
  client->create(namespaces_type, "",
                 api::parseJson(std::string(R"({"apiVersion":"v1","kind":"Namespace",)") +
                                R"("metadata":{"name":")" + kNamespace + R"("}})"));
  progress << "  " << options.nodes << " hollow nodes registered\n";

  const api::Value list = client->list(pods_type, kNamespace);
  client::WatchOptions watch_options;
  watch_options.resource_version = fieldText(list, "metadata.resourceVersion");
  client::WatchStreamPtr watch = client->watch(pods_type, kNamespace, watch_options);

  std::vector<Clock::time_point> created_at(static_cast<size_t>(options.pods));
  std::vector<Clock::time_point> bound_at(static_cast<size_t>(options.pods));
  const auto t0 = Clock::now();
  // When the last create was answered: pods_per_second cannot beat the creates per second.
  Clock::time_point created_done = t0;
  std::thread creator([&] {
    parallel(options.pods, [&](int i) {
      created_at[static_cast<size_t>(i)] = Clock::now();
      client->create(pods_type, kNamespace, pendingPod(i, spread));
    });
    created_done = Clock::now();
  });
  std::unordered_map<std::string, bool> bound;
  const auto deadline =
      t0 + std::chrono::seconds(60) + std::chrono::milliseconds(20) * options.pods;
  std::string failure;
  while (static_cast<int>(bound.size()) < options.pods) {
    if (Clock::now() > deadline) {
      failure = std::to_string(bound.size()) + " of " + std::to_string(options.pods) +
                " pods bound before the deadline";
      break;
    }
    client::WatchEvent event;
    if (!watch->next(event, std::chrono::milliseconds(500))) {
      if (watch->ended()) {
        failure = "the watch on pods ended" +
                  (watch->error() ? std::string(": ") + watch->error()->what() : std::string());
        break;
      }
      continue;
    }
    if (event.type != client::WatchEvent::Type::kAdded &&
        event.type != client::WatchEvent::Type::kModified) {
      continue;
    }
    if (fieldText(event.object, "spec.nodeName").empty()) continue;
    const std::string name = fieldText(event.object, "metadata.name");
    if (name.rfind("pod-", 0) != 0 || bound.count(name)) continue;
    const int index = std::atoi(name.c_str() + 4);
    if (index < 0 || index >= options.pods) continue;
    bound_at[static_cast<size_t>(index)] = Clock::now();
    bound[name] = true;
  }
  creator.join();
  const double create_seconds = std::chrono::duration<double>(created_done - t0).count();
  watch->cancel();
  if (!failure.empty()) throw std::runtime_error(failure);
  Clock::time_point last = t0;
  std::vector<double> latencies;
  for (size_t i = 0; i < bound_at.size(); ++i) {
    last = std::max(last, bound_at[i]);
    latencies.push_back(
        std::chrono::duration<double, std::milli>(bound_at[i] - created_at[i]).count());
  }
  WorkloadResult r;
  r.seconds = std::chrono::duration<double>(last - t0).count();
  r.pods_per_second = options.pods / r.seconds;
  r.p50_ms = percentileMs(latencies, 0.50);
  r.p99_ms = percentileMs(latencies, 0.99);
  r.max_ms = percentileMs(latencies, 1.0);
  r.creates_per_second = options.pods / create_seconds;
  plane.stop();
  return r;
}

int runBenchScheduler(BenchSchedulerOptions options, bool nodes_given, bool pods_given) {
  if (options.quick) {
    if (!nodes_given) options.nodes = 500;
    if (!pods_given) options.pods = 1000;
  }
  if (options.nodes < 1 || options.pods < 1) {
    std::cerr << "error: --nodes and --pods: want 1 or more\n";
    return 1;
  }
  if (options.pods > options.nodes * 110) {
    std::cerr << "error: --pods " << options.pods << " do not fit on " << options.nodes
              << " nodes of 110 pods\n";
    return 1;
  }
  bool basic = false, spread = false;
  for (const std::string& w : options.workloads) {
    if (w == "basic") {
      basic = true;
    } else if (w == "spread") {
      spread = true;
    } else {
      std::cerr << "error: --workloads: unknown workload \"" << w
                << "\" (want basic, spread or basic,spread)\n";
      return 1;
    }
  }
  std::optional<WorkloadResult> basic_result, spread_result;
  try {
    if (basic) basic_result = runWorkload(options, false);
    if (spread) spread_result = runWorkload(options, true);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  if (options.json) {
    std::ostringstream out;
    out << "{\"suite\":\"scheduler\",\"params\":{\"nodes\":" << options.nodes
        << ",\"pods\":" << options.pods << ",\"create_workers\":" << kCreateWorkers
        << ",\"store\":\"sqlite\"},\"metrics\":{";
    const char* sep = "";
    auto metrics = [&](const std::string& prefix, const WorkloadResult& r) {
      out << sep << "\"" << prefix << "pods_per_second\":" << benchNumber(r.pods_per_second)
          << ",\"" << prefix << "p99_latency_ms\":" << benchNumber(r.p99_ms) << ",\"" << prefix
          << "bind_p50_ms\":" << benchNumber(r.p50_ms) << ",\"" << prefix
          << "bind_p99_ms\":" << benchNumber(r.p99_ms) << ",\"" << prefix
          << "bind_max_ms\":" << benchNumber(r.max_ms) << ",\"" << prefix
          << "seconds\":" << benchNumber(r.seconds) << ",\"" << prefix
          << "creates_per_second\":" << benchNumber(r.creates_per_second);
      sep = ",";
    };
    if (basic_result) metrics("", *basic_result);
    if (spread_result) metrics("spread_", *spread_result);
    out << "}}";
    std::cout << out.str() << std::endl;
    return 0;
  }
  std::printf(
      "scheduler benchmark: %d pods onto %d hollow nodes through the apiserver "
      "(embedded SQLite), %d creating threads; latency is creation to bound\n",
      options.pods, options.nodes, kCreateWorkers);
  std::printf("%-18s %10s %12s %12s %12s %10s %11s\n", "workload", "pods/s", "p50 ms", "p99 ms",
              "max ms", "seconds", "creates/s");
  auto row = [](const char* name, const WorkloadResult& r) {
    std::printf("%-18s %10.0f %12.1f %12.1f %12.1f %10.2f %11.0f\n", name, r.pods_per_second,
                r.p50_ms, r.p99_ms, r.max_ms, r.seconds, r.creates_per_second);
  };
  if (basic_result) row("SchedulingBasic", *basic_result);
  if (spread_result) row("TopologySpreading", *spread_result);
  std::printf("(pods/s cannot beat creates/s: the pods are created while they are scheduled)\n");
  return 0;
}

}  // namespace

void addBenchSchedulerCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<BenchSchedulerOptions>();
  CLI::App* cmd = benchGroup(app).add_subcommand(
      "scheduler",
      "Pods bound per second and creation-to-bound latency, onto hollow Nodes through the "
      "apiserver (scheduler_perf's SchedulingBasic and TopologySpreading)");
  CLI::Option* nodes = cmd->add_option("--nodes", options->nodes, "Hollow Node objects to register")
                           ->capture_default_str();
  CLI::Option* pods =
      cmd->add_option("--pods", options->pods, "Pending pods to create")->capture_default_str();
  cmd->add_flag("--quick", options->quick,
                "A small run (500 nodes, 1000 pods unless --nodes/--pods are given)");
  cmd->add_option("--workloads", options->workloads,
                  "basic (SchedulingBasic), spread (TopologySpreading: maxSkew 1 over zones)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_flag("--json", options->json, "One JSON object on stdout");
  cmd->callback([options, nodes, pods, &exit_code] {
    try {
      exit_code = runBenchScheduler(*options, nodes->count() > 0, pods->count() > 0);
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      exit_code = 1;
    }
  });
}

}  // namespace skiff::cli
