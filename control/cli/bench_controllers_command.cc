#include "control/cli/bench_controllers_command.h"

#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "control/api/json.h"
#include "control/cli/bench_report.h"
#include "control/cli/bench_store_command.h"
#include "control/cli/cli_context.h"
#include "control/cli/control_plane.h"
#include "control/client/kubeconfig.h"
#include "control/client/rest_client.h"
#include "kubelet/agent/agent.h"

namespace skiff::cli {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kNamespace = "skiff-bench-controllers";
constexpr const char* kDeployment = "bench";
constexpr const char* kRevisionAnnotation = "bench.skiff.io/revision";

struct BenchControllersOptions {
  int replicas = 10000;
  int nodes = 1000;
  bool quick = false;
  bool json = false;
  int timeout_seconds = 600;
};

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

const api::Value* path(const api::Value& object, std::initializer_list<std::string_view> keys) {
  const api::Value* at = &object;
  for (auto key : keys) {
    at = at->find(key);
    if (at == nullptr) return nullptr;
  }
  return at;
}

std::string text(const api::Value& object, std::initializer_list<std::string_view> keys) {
  const api::Value* v = path(object, keys);
  return v && v->isString() ? v->text() : std::string();
}

int64_t integer(const api::Value& object, std::initializer_list<std::string_view> keys) {
  const api::Value* v = path(object, keys);
  return v && v->isInteger() ? v->asInt() : 0;
}

bool readyCondition(const api::Value& object) {
  const api::Value* conditions = path(object, {"status", "conditions"});
  if (conditions == nullptr || !conditions->isArray()) return false;
  for (const auto& c : conditions->items()) {
    if (text(c, {"type"}) == "Ready") return text(c, {"status"}) == "True";
  }
  return false;
}

std::string loadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

// Every pod of the namespace as one watch sees it: how many were ever added (and when the n-th
// was), and the revision annotation of each pod still there.
class PodTracker {
 public:
  PodTracker(client::Client& client, const api::ResourceType& pods) {
    const api::Value list = client.list(pods, kNamespace);
    client::WatchOptions options;
    options.resource_version = text(list, {"metadata", "resourceVersion"});
    options.timeout_seconds = 3600;
    watch_ = client.watch(pods, kNamespace, options);
    thread_ = std::thread([this] { run(); });
  }
  ~PodTracker() {
    watch_->cancel();
    thread_.join();
  }

  // When the watch saw its n-th added pod (counting from construction).
  std::optional<Clock::time_point> addedAt(size_t n) {
    std::lock_guard lock(mu_);
    if (n == 0 || added_.size() < n) return std::nullopt;
    return added_[n - 1];
  }
  // Pods that are there, and how many of them carry `revision`.
  std::pair<size_t, size_t> live(const std::string& revision) {
    std::lock_guard lock(mu_);
    size_t matching = 0;
    for (const auto& [name, rev] : live_)
      matching += rev == revision ? 1 : 0;
    return {live_.size(), matching};
  }
  std::string failure() {
    std::lock_guard lock(mu_);
    return failure_;
  }

 private:
  void run() {
    client::WatchEvent event;
    while (true) {
      if (!watch_->next(event, std::chrono::milliseconds(500))) {
        if (!watch_->ended()) continue;
        std::lock_guard lock(mu_);
        if (watch_->error())
          failure_ = std::string("the pod watch ended: ") + watch_->error()->what();
        return;
      }
      const auto now = Clock::now();
      const std::string name = text(event.object, {"metadata", "name"});
      std::lock_guard lock(mu_);
      switch (event.type) {
        case client::WatchEvent::Type::kAdded:
          added_.push_back(now);
          [[fallthrough]];
        case client::WatchEvent::Type::kModified:
          live_[name] = text(event.object, {"metadata", "annotations", kRevisionAnnotation});
          break;
        case client::WatchEvent::Type::kDeleted:
          live_.erase(name);
          break;
        case client::WatchEvent::Type::kError:
          failure_ = "the pod watch failed: " + api::writeJson(event.object);
          return;
        case client::WatchEvent::Type::kBookmark:
          break;
      }
    }
  }

  client::WatchStreamPtr watch_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<Clock::time_point> added_;
  std::map<std::string, std::string> live_;
  std::string failure_;
};

api::Value deployment(int replicas) {
  char json[1536];
  std::snprintf(
      json, sizeof(json),
      R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"%s"},"spec":)"
      R"({"replicas":%d,"selector":{"matchLabels":{"app":"skiff-bench-controllers"}},)"
      R"("template":{"metadata":{"labels":{"app":"skiff-bench-controllers"},)"
      R"("annotations":{"%s":"1"}},"spec":{"terminationGracePeriodSeconds":0,)"
      R"("containers":[{"name":"c","image":"skiff.local/busybox-httpd:1.35","command":["sleep",)"
      R"("3600"]}]}}}})",
      kDeployment, replicas, kRevisionAnnotation);
  return api::parseJson(json);
}

// Waits until the Deployment's status shows the rollout of its current generation done and the
// pod watch sees exactly `replicas` pods, all of `revision`. Throws on timeout.
void waitForRollout(client::Client& client, const api::ResourceType& deployments, PodTracker& pods,
                    int replicas, const std::string& revision, Clock::time_point deadline,
                    const char* phase) {
  std::string last;
  while (true) {
    const std::string failure = pods.failure();
    if (!failure.empty()) throw std::runtime_error(failure);
    const api::Value d = client.get(deployments, kNamespace, kDeployment);
    const int64_t generation = integer(d, {"metadata", "generation"});
    const int64_t observed = integer(d, {"status", "observedGeneration"});
    const int64_t status_replicas = integer(d, {"status", "replicas"});
    const int64_t updated = integer(d, {"status", "updatedReplicas"});
    const int64_t available = integer(d, {"status", "availableReplicas"});
    const auto [live, matching] = pods.live(revision);
    if (observed >= generation && status_replicas == replicas && updated == replicas &&
        available == replicas && live == static_cast<size_t>(replicas) && matching == live) {
      return;
    }
    std::ostringstream state;
    state << "generation " << generation << " observed " << observed << ", replicas "
          << status_replicas << " updated " << updated << " available " << available << ", pods "
          << live << " (" << matching << " of revision " << revision << ")";
    if (state.str() != last) last = state.str();
    if (Clock::now() > deadline) {
      throw std::runtime_error(std::string(phase) + " did not finish in time: " + last);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void waitForReadyNodes(client::Client& client, int count, Clock::time_point deadline) {
  const auto& nodes = resolveType("nodes");
  while (true) {
    int ready = 0;
    std::string not_ready;  // the status of one node that is not Ready, to say why
    // Held here: a range-for over a temporary's member would dangle.
    const api::Value list = client.list(nodes, "");
    for (const auto& node : list.find("items")->items()) {
      if (readyCondition(node)) {
        ++ready;
      } else if (not_ready.empty()) {
        const api::Value* status = node.find("status");
        not_ready = text(node, {"metadata", "name"}) + ": " +
                    (status ? api::writeJson(*status) : std::string("no status"));
      }
    }
    if (ready >= count) return;
    if (Clock::now() > deadline) {
      throw std::runtime_error(std::to_string(ready) + " of " + std::to_string(count) +
                               " hollow nodes Ready in time; " + not_ready);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// The temporary data dir, removed at the end (after the control plane that uses it).
struct TempDir {
  std::string path = "/tmp/skiff-bench-controllers-XXXXXX";
  TempDir() {
    if (::mkdtemp(path.data()) == nullptr) throw std::runtime_error("mkdtemp " + path + " failed");
  }
  ~TempDir() {
    std::error_code error;
    std::filesystem::remove_all(path, error);
  }
};

// One process holds the control plane and every hollow node: about eight descriptors per
// connection (a socket and an io_context's epoll, eventfd and timerfd on each side), and 1,000
// nodes keep a few thousand connections open. 20,000 (this machine's default) ran out in the
// full run ("eventfd_select_interrupter: Too many open files"), so the limit goes as high as
// the kernel lets (root may raise the hard limit up to fs.nr_open).
void raiseOpenFileLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  rlim_t want = 1 << 20;
  if (std::ifstream nr_open("/proc/sys/fs/nr_open"); nr_open) {
    unsigned long long n = 0;
    if (nr_open >> n && n > 0) want = static_cast<rlim_t>(n);
  }
  rlimit raised = limit;
  raised.rlim_cur = std::max(limit.rlim_cur, want);
  raised.rlim_max = std::max(limit.rlim_max, want);
  if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) return;
  raised.rlim_cur = limit.rlim_max;  // not privileged: the soft limit up to the hard one
  raised.rlim_max = limit.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &raised);
}

int runBenchControllers(BenchControllersOptions options) {
  raiseOpenFileLimit();
  if (options.quick) {
    options.replicas = 300;
    options.nodes = 30;
  }
  if (options.replicas < 1 || options.nodes < 1) {
    std::cerr << "error: --replicas " << options.replicas << " --nodes " << options.nodes
              << ": want 1 or more of each\n";
    return 1;
  }
  std::ostream& progress = std::cerr;
  const auto deadline = Clock::now() + std::chrono::seconds(options.timeout_seconds);
  TempDir dir;
  ControlPlaneOptions plane_options;
  plane_options.apiserver.data_dir = dir.path;
  plane_options.apiserver.bind_address = "127.0.0.1";
  plane_options.apiserver.port = 0;
  auto plane = std::make_unique<ControlPlane>(plane_options);
  client::LoadOptions load;
  load.kubeconfig = plane->adminKubeconfig();
  client::ClientPtr client = client::makeRestClient(client::loadClientConfig(load));
  // The hollow nodes stand in for 1,000 kubelets, each with a pool of its own: with the default
  // pool their 2,000 pod workers closed most connections they had used and opened new ones (a
  // TLS handshake each, 11% of the process's CPU in the full run).
  client::RestClientOptions node_client_options;
  node_client_options.max_idle_connections = 2 * static_cast<size_t>(options.nodes);
  client::ClientPtr node_client =
      client::makeRestClient(client::loadClientConfig(load), node_client_options);

  kubelet::HollowNodesOptions hollow;
  // 1,000 nodes need more than the 256 /24s of a /16.
  hollow.pod_cidr_range = options.nodes > 256 ? "10.0.0.0/8" : "10.244.0.0/16";
  hollow.agent.data_dir = dir.path;
  hollow.agent.pod_workers = 2;
  hollow.agent.node_status_update_frequency = std::chrono::seconds(30);
  hollow.agent.node_status_report_frequency = std::chrono::seconds(60);
  hollow.agent.lease_renew_interval = std::chrono::seconds(10);
  const auto nodes_start = Clock::now();
  std::unique_ptr<kubelet::HollowNodes> nodes =
      kubelet::makeHollowNodes(*node_client, options.nodes, hollow);
  struct StopNodes {
    std::unique_ptr<kubelet::HollowNodes>& nodes;
    ~StopNodes() {
      if (nodes) nodes->stop();
      nodes.reset();
    }
  } stop_nodes{nodes};
  if (!nodes->start()) throw std::runtime_error("the hollow nodes stopped while starting");
  waitForReadyNodes(*client, options.nodes, deadline);
  progress << "skiff bench controllers: " << options.nodes << " hollow nodes Ready in "
           << benchNumber(seconds(Clock::now() - nodes_start)) << " s\n";

  const auto& deployments = resolveType("deployments");
  const auto& pods_type = resolveType("pods");
  client->create(resolveType("namespaces"), "",
                 api::parseJson(std::string(R"({"apiVersion":"v1","kind":"Namespace",)") +
                                R"("metadata":{"name":")" + kNamespace + R"("}})"));
  PodTracker pods(*client, pods_type);

  const auto created = Clock::now();
  client->create(deployments, kNamespace, deployment(options.replicas));
  waitForRollout(*client, deployments, pods, options.replicas, "1", deadline, "the first rollout");
  const auto available = Clock::now();
  const auto all_added = pods.addedAt(static_cast<size_t>(options.replicas));
  if (!all_added) throw std::runtime_error("the watch missed pods of the first rollout");
  const double seconds_to_available = seconds(available - created);
  const double pods_per_second = options.replicas / seconds(*all_added - created);
  progress << "skiff bench controllers: " << options.replicas << " replicas available in "
           << benchNumber(seconds_to_available) << " s\n";

  const auto update = Clock::now();
  const std::string patch = std::string(R"({"spec":{"template":{"metadata":{"annotations":{")") +
                            kRevisionAnnotation + R"(":"2"}}}}})";
  client->patch(deployments, kNamespace, kDeployment, client::PatchType::kStrategicMerge, patch);
  waitForRollout(*client, deployments, pods, options.replicas, "2", deadline, "the rolling update");
  const double rolling_update_seconds = seconds(Clock::now() - update);
  const std::string load_average = loadAverage();
  progress << "skiff bench controllers: rolling update done in "
           << benchNumber(rolling_update_seconds) << " s\n";

  if (options.json) {
    std::cout << "{\"suite\":\"controllers\",\"params\":{\"replicas\":" << options.replicas
              << ",\"nodes\":" << options.nodes
              << ",\"quick\":" << (options.quick ? "true" : "false") << ",\"load_average\":\""
              << load_average
              << "\"},\"metrics\":{\"seconds_to_available\":" << benchNumber(seconds_to_available)
              << ",\"pods_created_per_second\":" << benchNumber(pods_per_second)
              << ",\"rolling_update_seconds\":" << benchNumber(rolling_update_seconds) << "}}"
              << std::endl;
    return 0;
  }
  std::printf("controllers benchmark: a Deployment of %d replicas on %d hollow nodes\n",
              options.replicas, options.nodes);
  std::printf("%-34s %12s\n", "metric", "value");
  std::printf("%-34s %12.2f\n", "seconds to available", seconds_to_available);
  std::printf("%-34s %12.0f\n", "pods created per second", pods_per_second);
  std::printf("%-34s %12.2f\n", "rolling update seconds", rolling_update_seconds);
  std::printf("(load average %s; target: >= 2,000 pods created per second)\n",
              load_average.c_str());
  return 0;
}

}  // namespace

void addBenchControllersCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<BenchControllersOptions>();
  CLI::App* cmd = benchGroup(app).add_subcommand(
      "controllers", "A Deployment on hollow nodes: time to available, pods/s, a rolling update");
  cmd->add_option("--replicas", options->replicas, "Replicas of the Deployment")
      ->capture_default_str();
  cmd->add_option("--nodes", options->nodes, "Hollow nodes")->capture_default_str();
  cmd->add_option("--timeout", options->timeout_seconds, "Give up after this many seconds")
      ->capture_default_str();
  cmd->add_flag("--quick", options->quick, "A CI smoke run: 300 replicas on 30 nodes");
  cmd->add_flag("--json", options->json, "One JSON object on stdout");
  cmd->callback([options, &exit_code] {
    try {
      exit_code = runBenchControllers(*options);
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      exit_code = 1;
    }
  });
}

}  // namespace skiff::cli
