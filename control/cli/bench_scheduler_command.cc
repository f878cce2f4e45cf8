#include "control/cli/bench_scheduler_command.h"

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>
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

struct BenchSchedulerOptions {
  int nodes = 1000;
  int pods = 3000;
  bool json = false;
};

constexpr const char* kNamespace = "skiff-bench-scheduler";

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

api::Value pendingPod(int i) {
  char json[1024];
  std::snprintf(json, sizeof(json),
                R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"pod-%d","labels":)"
                R"({"app":"bench"}},"spec":{"containers":[{"name":"c","image":"pause",)"
                R"("resources":{"requests":{"cpu":"10m","memory":"50Mi"}}}]}})",
                i);
  return api::parseJson(json);
}

int runBenchScheduler(const BenchSchedulerOptions& options) {
  if (options.nodes < 1 || options.pods < 1) {
    std::cerr << "error: --nodes and --pods: want 1 or more\n";
    return 1;
  }
  if (options.pods > options.nodes * 110) {
    std::cerr << "error: --pods " << options.pods << " do not fit on " << options.nodes
              << " nodes of 110 pods\n";
    return 1;
  }
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
  progress << "skiff bench scheduler: apiserver and scheduler at " << plane.url() << ", store in "
           << dir << "\n";
  client::LoadOptions load;
  load.kubeconfig = plane.adminKubeconfig();
  client::ClientPtr client = client::makeRestClient(client::loadClientConfig(load));
  const auto& nodes_type = resolveType("nodes");
  const auto& pods_type = resolveType("pods");
  const auto& namespaces_type = resolveType("namespaces");

  // Setup, not measured: the nodes (status written apart, as a kubelet does) and the namespace.
  const unsigned workers = 8;
  auto parallel = [&](int count, const std::function<void(int)>& each) {
    std::atomic<int> next{0};
    std::vector<std::thread> threads;
    std::exception_ptr failure;
    std::mutex failure_mu;
    for (unsigned t = 0; t < workers; ++t) {
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
      client->create(pods_type, kNamespace, pendingPod(i));
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
  if (!failure.empty()) {
    std::cerr << "error: " << failure << "\n";
    return 1;
  }
  Clock::time_point last = t0;
  std::vector<double> latencies;
  for (size_t i = 0; i < bound_at.size(); ++i) {
    last = std::max(last, bound_at[i]);
    latencies.push_back(
        std::chrono::duration<double, std::milli>(bound_at[i] - created_at[i]).count());
  }
  const double seconds = std::chrono::duration<double>(last - t0).count();
  const double pods_per_second = options.pods / seconds;
  const double p50 = percentileMs(latencies, 0.50);
  const double p99 = percentileMs(latencies, 0.99);
  const double max = percentileMs(latencies, 1.0);
  plane.stop();

  if (options.json) {
    std::ostringstream out;
    out << "{\"suite\":\"scheduler\",\"params\":{\"nodes\":" << options.nodes
        << ",\"pods\":" << options.pods << ",\"create_workers\":" << workers
        << ",\"store\":\"sqlite\"},\"metrics\":{\"pods_per_second\":"
        << benchNumber(pods_per_second) << ",\"bind_p50_ms\":" << benchNumber(p50)
        << ",\"bind_p99_ms\":" << benchNumber(p99) << ",\"bind_max_ms\":" << benchNumber(max)
        << ",\"seconds\":" << benchNumber(seconds)
        << ",\"creates_per_second\":" << benchNumber(options.pods / create_seconds) << "}}";
    std::cout << out.str() << std::endl;
    return 0;
  }
  std::printf(
      "scheduler benchmark: %d pods onto %d hollow nodes through the apiserver "
      "(embedded SQLite), %u creating threads\n",
      options.pods, options.nodes, workers);
  std::printf("%14s %12s %12s %12s %10s\n", "pods/s", "bind p50 ms", "bind p99 ms", "bind max ms",
              "seconds");
  std::printf("%14.0f %12.1f %12.1f %12.1f %10.2f\n", pods_per_second, p50, p99, max, seconds);
  std::printf("(the %d creates took %.2f s: %.0f creates/s)\n", options.pods, create_seconds,
              options.pods / create_seconds);
  return 0;
}

}  // namespace

void addBenchSchedulerCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<BenchSchedulerOptions>();
  CLI::App* cmd = benchGroup(app).add_subcommand(
      "scheduler",
      "Pods bound per second and creation-to-bound latency, onto hollow Nodes through the "
      "apiserver");
  cmd->add_option("--nodes", options->nodes, "Hollow Node objects to register")
      ->capture_default_str();
  cmd->add_option("--pods", options->pods, "Pending pods to create")->capture_default_str();
  cmd->add_flag("--json", options->json, "One JSON object on stdout");
  cmd->callback([options, &exit_code] {
    try {
      exit_code = runBenchScheduler(*options);
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      exit_code = 1;
    }
  });
}

}  // namespace skiff::cli
