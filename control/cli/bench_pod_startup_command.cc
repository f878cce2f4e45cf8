#include "control/cli/bench_pod_startup_command.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "control/api/json.h"
#include "control/cli/bench_report.h"
#include "control/cli/bench_store_command.h"
#include "control/cli/cli_context.h"
#include "control/cli/control_plane.h"
#include "control/cli/skiff_child.h"
#include "control/client/kubeconfig.h"
#include "control/client/rest_client.h"

namespace skiff::cli {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kImage = "skiff.local/busybox-httpd:1.35";

struct BenchPodStartupOptions {
  int pods = 100;
  double rate = 10;
  std::string kubeconfig;
  bool hollow = false;
  bool json = false;
};

bool readyCondition(const api::Value& object) {
  const api::Value* status = object.find("status");
  const api::Value* conditions = status ? status->find("conditions") : nullptr;
  if (conditions == nullptr || !conditions->isArray()) return false;
  for (const auto& c : conditions->items()) {
    if (c.find("type") && c.find("type")->isString() && c.find("type")->text() == "Ready") {
      const api::Value* value = c.find("status");
      return value && value->isString() && value->text() == "True";
    }
  }
  return false;
}

// "CreateContainerError: cannot run ..." while a container waits; empty otherwise.
std::string waitingReason(const api::Value& pod) {
  const api::Value* status = pod.find("status");
  const api::Value* containers = status ? status->find("containerStatuses") : nullptr;
  if (containers == nullptr || !containers->isArray()) return {};
  for (const auto& c : containers->items()) {
    const api::Value* state = c.find("state");
    const api::Value* waiting = state ? state->find("waiting") : nullptr;
    if (waiting == nullptr) continue;
    const api::Value* reason = waiting->find("reason");
    const api::Value* message = waiting->find("message");
    std::string why = reason && reason->isString() ? reason->text() : "waiting";
    if (message && message->isString()) why += ": " + message->text();
    return why;
  }
  return {};
}

// The cluster under test, and whatever this command started for it.
struct Cluster {
  std::string dir;  // a temporary directory, removed at the end; empty for --kubeconfig
  std::unique_ptr<ControlPlane> plane;
  std::unique_ptr<SkiffChild> child;
  std::string kubeconfig;
  std::string description;

  ~Cluster() {
    child.reset();  // the agent before the control plane it reports to
    plane.reset();
    if (!dir.empty()) {
      std::error_code error;
      std::filesystem::remove_all(dir, error);
    }
  }
};

void waitForReadyNode(client::Client& client, SkiffChild& agent) {
  const auto& nodes = resolveType("nodes");
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  std::string seen = "no nodes";
  while (Clock::now() < deadline) {
    if (agent.poll()) throw std::runtime_error("the hollow agent exited before its node was Ready");
    const api::Value list = client.list(nodes, "");
    for (const auto& node : list.find("items")->items()) {
      if (readyCondition(node)) return;
      seen = "node " + fieldText(node, "metadata.name") + " at resourceVersion " +
             fieldText(node, "metadata.resourceVersion") + " not Ready";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  throw std::runtime_error("no node became Ready within 60 s (" + seen + ")");
}

void openCluster(const BenchPodStartupOptions& options, Cluster& cluster) {
  if (!options.kubeconfig.empty()) {
    cluster.kubeconfig = options.kubeconfig;
    cluster.description = "the cluster of " + options.kubeconfig;
    return;
  }
  cluster.dir = "/tmp/skiff-bench-pod-startup-XXXXXX";
  if (::mkdtemp(cluster.dir.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  if (options.hollow) {
    ControlPlaneOptions plane_options;
    plane_options.apiserver.data_dir = cluster.dir;
    plane_options.apiserver.bind_address = "127.0.0.1";
    plane_options.apiserver.port = 0;
    cluster.plane = std::make_unique<ControlPlane>(plane_options);
    cluster.kubeconfig = cluster.plane->adminKubeconfig();
    cluster.child = std::make_unique<SkiffChild>(
        std::vector<std::string>{"skiff", "agent", "--hollow", "--kubeconfig", cluster.kubeconfig,
                                 "--data-dir", cluster.dir + "/agent"},
        false);
    client::LoadOptions load;
    load.kubeconfig = cluster.kubeconfig;
    waitForReadyNode(*client::makeRestClient(client::loadClientConfig(load)), *cluster.child);
    cluster.description = "a control plane here and one hollow node (no containers)";
    return;
  }
  cluster.child = std::make_unique<SkiffChild>(
      std::vector<std::string>{"skiff", "up", "--data-dir", cluster.dir, "--secure-port", "0"},
      true);
  if (!cluster.child->waitForLine("cluster up in")) {
    throw std::runtime_error("skiff up did not bring its cluster up (its output above)");
  }
  cluster.kubeconfig = cluster.dir + "/admin.kubeconfig";
  cluster.description = "skiff up (runc) in " + cluster.dir;
}

api::Value startupPod(int i) {
  char json[1024];
  std::snprintf(json, sizeof(json),
                R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"startup-%d","labels":)"
                R"({"app":"skiff-bench-pod-startup"}},"spec":{"terminationGracePeriodSeconds":0,)"
                R"("containers":[{"name":"c","image":"%s","imagePullPolicy":"IfNotPresent",)"
                R"("command":["sleep","3600"]}]}})",
                i, kImage);
  return api::parseJson(json);
}

int runBenchPodStartup(const BenchPodStartupOptions& options) {
  if (options.pods < 1) {
    std::cerr << "error: --pods " << options.pods << ": want 1 or more\n";
    return 1;
  }
  if (!(options.rate > 0)) {
    std::cerr << "error: --rate " << options.rate << ": want a positive number of pods a second\n";
    return 1;
  }
  if (options.hollow && !options.kubeconfig.empty()) {
    std::cerr << "error: --hollow starts a cluster of its own; it does not go with --kubeconfig\n";
    return 1;
  }
  std::ostream& progress = std::cerr;
  Cluster cluster;
  openCluster(options, cluster);
  progress << "skiff bench pod-startup: " << cluster.description << "\n";

  client::LoadOptions load;
  load.kubeconfig = cluster.kubeconfig;
  client::ClientPtr client = client::makeRestClient(client::loadClientConfig(load));
  const auto& pods_type = resolveType("pods");
  const auto& namespaces_type = resolveType("namespaces");
  const std::string ns = "skiff-bench-pod-startup-" + std::to_string(::getpid());
  client->create(namespaces_type, "",
                 api::parseJson(R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":")" +
                                ns + R"("}})"));
  struct DeleteNamespace {
    client::Client& client;
    const api::ResourceType& pods;
    const api::ResourceType& namespaces;
    std::string ns;
    ~DeleteNamespace() {
      try {
        client::DeleteOptions now;
        now.grace_period_seconds = 0;
        client.removeCollection(pods, ns, {}, now);
        client.remove(namespaces, "", ns);
      } catch (const std::exception& e) {
        std::cerr << "warning: cleaning up namespace " << ns << ": " << e.what() << "\n";
      }
    }
  } delete_namespace{*client, pods_type, namespaces_type, ns};

  const api::Value list = client->list(pods_type, ns);
  client::WatchOptions watch_options;
  watch_options.resource_version = fieldText(list, "metadata.resourceVersion");
  client::WatchStreamPtr watch = client->watch(pods_type, ns, watch_options);

  const size_t n = static_cast<size_t>(options.pods);
  std::vector<Clock::time_point> created_at(n);
  std::vector<std::optional<Clock::time_point>> running_at(n);
  std::vector<std::optional<Clock::time_point>> ready_at(n);
  std::vector<std::string> waiting(n);  // the last reason a container was waiting, for errors
  std::string create_error;
  const auto t0 = Clock::now();
  std::thread creator([&] {
    try {
      for (size_t i = 0; i < n; ++i) {
        std::this_thread::sleep_until(
            t0 + std::chrono::duration_cast<Clock::duration>(
                     std::chrono::duration<double>(static_cast<double>(i) / options.rate)));
        created_at[i] = Clock::now();
        client->create(pods_type, ns, startupPod(static_cast<int>(i)));
      }
    } catch (const std::exception& e) {
      create_error = e.what();
    }
  });
  const auto deadline = t0 +
                        std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(options.pods / options.rate)) +
                        std::chrono::seconds(120);
  size_t ready = 0;
  std::string failure;
  while (ready < n) {
    if (Clock::now() > deadline) {
      failure = std::to_string(ready) + " of " + std::to_string(n) + " pods Ready within 120 s";
      for (size_t i = 0; i < n; ++i) {
        if (!ready_at[i] && !waiting[i].empty()) {
          failure += "; startup-" + std::to_string(i) + " is waiting: " + waiting[i];
          // The image is local (never pulled): say how a fresh machine gets it.
          if (waiting[i].find("ImagePull") != std::string::npos) {
            failure += std::string(" (import ") + kImage +
                       " into the node's image store first: examples/images/make-httpd-image.sh "
                       "SKIFF_BINARY, as the README's first command does)";
          }
          break;
        }
      }
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
    const auto now = Clock::now();
    const std::string name = fieldText(event.object, "metadata.name");
    if (name.rfind("startup-", 0) != 0) continue;
    const long index = std::atol(name.c_str() + 8);
    if (index < 0 || static_cast<size_t>(index) >= n) continue;
    const size_t i = static_cast<size_t>(index);
    if (std::string why = waitingReason(event.object); !why.empty()) waiting[i] = why;
    if (!running_at[i] && fieldText(event.object, "status.phase") == "Running") running_at[i] = now;
    if (!ready_at[i] && readyCondition(event.object)) {
      ready_at[i] = now;
      if (!running_at[i]) running_at[i] = now;
      ++ready;
    }
  }
  creator.join();
  watch->cancel();
  if (!create_error.empty()) failure = "creating pods: " + create_error;
  if (!failure.empty()) {
    std::cerr << "error: " << failure << "\n";
    return 1;
  }
  std::vector<double> to_running;
  std::vector<double> to_ready;
  for (size_t i = 0; i < n; ++i) {
    to_running.push_back(
        std::chrono::duration<double, std::milli>(*running_at[i] - created_at[i]).count());
    to_ready.push_back(
        std::chrono::duration<double, std::milli>(*ready_at[i] - created_at[i]).count());
  }
  const double p50 = percentileMs(to_ready, 0.50);
  const double p99 = percentileMs(to_ready, 0.99);
  const double max = percentileMs(to_ready, 1.0);
  const double running_p50 = percentileMs(to_running, 0.50);
  const double running_p99 = percentileMs(to_running, 0.99);
  const char* mode = !options.kubeconfig.empty() ? "kubeconfig" : options.hollow ? "hollow" : "up";

  if (options.json) {
    std::ostringstream out;
    out << "{\"suite\":\"pod-startup\",\"params\":{\"pods\":" << options.pods
        << ",\"rate\":" << benchNumber(options.rate) << ",\"cluster\":\"" << mode
        << "\",\"image\":\"" << kImage << "\"},\"metrics\":{\"startup_p50_ms\":" << benchNumber(p50)
        << ",\"startup_p99_ms\":" << benchNumber(p99) << ",\"startup_max_ms\":" << benchNumber(max)
        << ",\"running_p50_ms\":" << benchNumber(running_p50)
        << ",\"running_p99_ms\":" << benchNumber(running_p99) << ",\"pods\":" << options.pods
        << "}}";
    std::cout << out.str() << std::endl;
    return 0;
  }
  std::printf("pod startup benchmark: %d pods of %s at %g/s on %s\n", options.pods, kImage,
              options.rate, cluster.description.c_str());
  std::printf("%-22s %10s %10s %10s\n", "creation to", "p50 ms", "p99 ms", "max ms");
  std::printf("%-22s %10.1f %10.1f %10.1f\n", "Running", running_p50, running_p99,
              percentileMs(to_running, 1.0));
  std::printf("%-22s %10.1f %10.1f %10.1f\n", "Ready", p50, p99, max);
  std::printf("(Kubernetes' SLO: p99 <= 5000 ms; Skiff's target: p99 <= 500 ms)\n");
  return 0;
}

}  // namespace

void addBenchPodStartupCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<BenchPodStartupOptions>();
  CLI::App* cmd = benchGroup(app).add_subcommand(
      "pod-startup", "Pod startup latency (creation to Running and Ready, seen by a watch)");
  cmd->add_option("--pods", options->pods, "Pods to create")->capture_default_str();
  cmd->add_option("--rate", options->rate, "Pods created a second")->capture_default_str();
  cmd->add_option("--kubeconfig", options->kubeconfig,
                  "Measure the cluster of this kubeconfig (default: start one with skiff up)");
  cmd->add_flag("--hollow", options->hollow,
                "Start a control plane and one hollow node instead (no root, no containers)");
  cmd->add_flag("--json", options->json, "One JSON object on stdout");
  cmd->callback([options, &exit_code] {
    try {
      exit_code = runBenchPodStartup(*options);
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      exit_code = 1;
    }
  });
}

}  // namespace skiff::cli
