#include "control/cli/bench_soak_command.h"

#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "control/api/json.h"
#include "control/cli/bench_report.h"
#include "control/cli/bench_store_command.h"
#include "control/cli/cli_context.h"
#include "control/cli/skiff_child.h"
#include "control/client/kubeconfig.h"
#include "control/client/rest_client.h"

namespace skiff::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchSoakOptions {
  double duration_s = 600;
  double api_rate = 200;
  int replicas = 10;
  double churn_period_s = 15;
  double sample_period_s = 5;
  bool hollow = false;
  bool check = false;
  bool json = false;
  // Driver mode: drive a server already running (say under heaptrack) instead of starting one.
  std::string kubeconfig;
  int server_pid = -1;
};

struct Sample {
  double rss_mb = 0;
  int fds = 0;
};

std::optional<Sample> sampleProcess(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  if (!status) return std::nullopt;
  Sample s;
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) s.rss_mb = std::atof(line.c_str() + 6) / 1024.0;
  }
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++s.fds;
  }
  return s;
}

// The `skiff agent` that `skiff up` (pid `parent`) runs as its child.
pid_t findAgent(pid_t parent) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string text((std::istreambuf_iterator<char>(stat)), {});
    // pid (comm) state ppid ...: comm may hold spaces, so read after its closing parenthesis.
    const size_t close = text.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(text.substr(close + 2));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid != parent) continue;
    std::ifstream cmdline(entry.path() / "cmdline");
    std::string args((std::istreambuf_iterator<char>(cmdline)), {});
    std::replace(args.begin(), args.end(), '\0', ' ');
    if (args.find(" agent ") != std::string::npos) return std::stoi(name);
  }
  return -1;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Growth over the run after its warm-up: the median of the last `k` samples minus the median of
// the first `k` (k = a quarter of them, at least 1), so one GC-like spike does not decide it.
double growth(const std::vector<double>& values) {
  if (values.size() < 2) return 0;
  const size_t k = std::max<size_t>(1, values.size() / 4);
  std::vector<double> first(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k));
  std::vector<double> last(values.end() - static_cast<std::ptrdiff_t>(k), values.end());
  return median(last) - median(first);
}

std::string configMap(const std::string& name, int generation) {
  return R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":")" + name +
         R"("},"data":{"generation":")" + std::to_string(generation) + R"(","payload":")" +
         std::string(512, 'x') + R"("}})";
}

std::string deployment(const std::string& image, int replicas) {
  return R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"soak"},"spec":{)"
         R"("replicas":)" +
         std::to_string(replicas) +
         R"(,"selector":{"matchLabels":{"app":"soak"}},"template":{"metadata":{"labels":)"
         R"({"app":"soak"}},"spec":{"terminationGracePeriodSeconds":1,"containers":[{"name":"web",)"
         R"("image":")" +
         image +
         R"(","imagePullPolicy":"IfNotPresent","command":["httpd","-f","-p","8080"],)"
         R"("ports":[{"containerPort":8080}]}]}}}})";
}

constexpr const char* kService =
    R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"soak"},"spec":{"selector":)"
    R"({"app":"soak"},"ports":[{"port":80,"targetPort":8080}]}})";

struct Counters {
  std::atomic<long> requests{0};
  std::atomic<long> errors{0};
  std::atomic<long> scale_changes{0};
  std::mutex mu;
  std::string first_error;

  void fail(const std::string& what) {
    ++errors;
    std::lock_guard lock(mu);
    if (first_error.empty()) first_error = what;
  }
};

// One API worker: ConfigMap create, get, update, list and delete at `rate` requests a second, and
// every 10 s a watch opened, read for a moment and closed.
void apiWorker(client::Client& client, const std::string& ns, int worker, double rate,
               Clock::time_point end, Counters& counters) {
  const auto& configmaps = resolveType("configmaps");
  const auto start = Clock::now();
  long n = 0;
  auto next_watch = start + std::chrono::seconds(10);
  auto call = [&](const char* what, auto&& f) {
    ++counters.requests;
    try {
      f();
    } catch (const std::exception& e) {
      counters.fail(std::string(what) + ": " + e.what());
    }
    ++n;
    std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(n / rate)));
  };
  for (int i = 0; Clock::now() < end; ++i) {
    const std::string name = "soak-" + std::to_string(worker) + "-" + std::to_string(i % 50);
    call("create", [&] { client.create(configmaps, ns, api::parseJson(configMap(name, 0))); });
    call("get", [&] { client.get(configmaps, ns, name); });
    call("update", [&] { client.update(configmaps, ns, api::parseJson(configMap(name, 1))); });
    call("list", [&] {
      client::ListOptions o;
      o.limit = 50;
      client.list(configmaps, ns, o);
    });
    call("delete", [&] { client.remove(configmaps, ns, name); });
    if (Clock::now() >= next_watch) {
      next_watch += std::chrono::seconds(10);
      call("watch", [&] {
        client::WatchOptions o;
        o.timeout_seconds = 5;
        auto watch = client.watch(configmaps, ns, o);
        client::WatchEvent event;
        const auto stop = Clock::now() + std::chrono::milliseconds(500);
        while (Clock::now() < stop && watch->next(event, std::chrono::milliseconds(100))) {
        }
        watch->cancel();
      });
    }
  }
}

// Scales the Deployment through 0 and `replicas` and, every third cycle, rolls its template.
void churnWorker(client::Client& client, const std::string& ns, const BenchSoakOptions& options,
                 Clock::time_point end, Counters& counters) {
  const auto& deployments = resolveType("deployments");
  const int steps[] = {options.replicas, options.replicas / 2, 0};
  for (int cycle = 0; Clock::now() < end; ++cycle) {
    const int replicas = steps[cycle % 3];
    ++counters.requests;
    try {
      std::string body = R"({"spec":{"replicas":)" + std::to_string(replicas) + "}}";
      if (cycle % 9 == 8) {
        body = R"({"spec":{"replicas":)" + std::to_string(replicas) +
               R"(,"template":{"metadata":{"annotations":{"skiff.dev/soak-cycle":")" +
               std::to_string(cycle) + R"("}}}}})";
      }
      client.patch(deployments, ns, "soak", client::PatchType::kMerge, body);
      ++counters.scale_changes;
    } catch (const std::exception& e) {
      counters.fail(std::string("scale: ") + e.what());
    }
    const auto wake = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                         std::chrono::duration<double>(options.churn_period_s));
    while (Clock::now() < std::min(wake, end))
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

struct Series {
  std::vector<double> rss;
  std::vector<double> fds;
};

int runBenchSoak(const BenchSoakOptions& options) {
  if (!(options.duration_s >= 10)) {
    std::cerr << "error: --duration " << options.duration_s << ": want 10 seconds or more\n";
    return 1;
  }
  if (!options.kubeconfig.empty() && options.server_pid <= 0) {
    std::cerr << "error: --kubeconfig wants --server-pid (the server whose memory is sampled)\n";
    return 1;
  }
  if (!(options.api_rate > 0) || options.replicas < 0) {
    std::cerr << "error: --api-rate wants a positive rate and --replicas 0 or more\n";
    return 1;
  }
  std::string dir = "/tmp/skiff-bench-soak-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  struct RemoveDir {
    std::string dir;
    ~RemoveDir() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } remove_dir{dir};

  std::unique_ptr<SkiffChild> server;
  std::unique_ptr<SkiffChild> agent;  // --hollow only; skiff up runs its own
  std::string kubeconfig = dir + "/admin.kubeconfig";
  std::string image = "skiff.local/busybox-httpd:1.35";
  pid_t agent_pid = -1;
  const bool attached = !options.kubeconfig.empty();
  if (attached) {
    // The server is someone else's: only the hollow agent is ours.
    kubeconfig = options.kubeconfig;
    agent = std::make_unique<SkiffChild>(
        std::vector<std::string>{"skiff", "agent", "--hollow", "--kubeconfig", kubeconfig,
                                 "--data-dir", dir + "/agent"},
        false);
    agent_pid = agent->pid();
    image = "busybox:1";
  } else if (options.hollow) {
    server = std::make_unique<SkiffChild>(
        std::vector<std::string>{"skiff", "server", "--data-dir", dir, "--secure-port", "0"}, true);
    if (!server->waitForLine("control loops running")) {
      throw std::runtime_error("skiff server did not start (its output above)");
    }
    agent = std::make_unique<SkiffChild>(
        std::vector<std::string>{"skiff", "agent", "--hollow", "--kubeconfig", kubeconfig,
                                 "--data-dir", dir + "/agent"},
        false);
    agent_pid = agent->pid();
    image = "busybox:1";
  } else {
    server = std::make_unique<SkiffChild>(
        std::vector<std::string>{"skiff", "up", "--data-dir", dir, "--secure-port", "0"}, true);
    if (!server->waitForLine("cluster up in")) {
      throw std::runtime_error("skiff up did not bring its cluster up (its output above)");
    }
    agent_pid = findAgent(server->pid());
    if (agent_pid < 0) throw std::runtime_error("skiff up runs no skiff agent child");
  }
  const pid_t server_pid = attached ? options.server_pid : server->pid();

  client::LoadOptions load;
  load.kubeconfig = kubeconfig;
  auto config = client::loadClientConfig(load);
  client::ClientPtr client = client::makeRestClient(config);
  const std::string ns = "default";
  // The hollow node must be there before pods are placed; skiff up waited for its own.
  const auto node_deadline = Clock::now() + std::chrono::seconds(60);
  while (client->list(resolveType("nodes"), "").find("items")->items().empty()) {
    if (Clock::now() > node_deadline) throw std::runtime_error("no node registered within 60 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  client->create(resolveType("services"), ns, api::parseJson(kService));
  client->create(resolveType("deployments"), ns, api::parseJson(deployment(image, 0)));

  std::ostream& progress = std::cerr;
  progress << "skiff bench soak: "
           << (attached         ? "server pid " + std::to_string(server_pid) + " + hollow agent"
               : options.hollow ? std::string("skiff server + hollow agent")
                                : std::string("skiff up"))
           << " in " << dir << ", " << options.duration_s << " s, " << options.api_rate
           << " API requests/s, 0-" << options.replicas << " replicas\n";

  Counters counters;
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(options.duration_s));
  constexpr int kWorkers = 4;
  std::vector<std::thread> threads;
  std::vector<client::ClientPtr> clients;
  for (int w = 0; w < kWorkers; ++w)
    clients.push_back(client::makeRestClient(config));
  for (int w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&, w] {
      apiWorker(*clients[static_cast<size_t>(w)], ns, w, options.api_rate / kWorkers, end,
                counters);
    });
  }
  threads.emplace_back([&] { churnWorker(*client, ns, options, end, counters); });

  // Samples after the warm-up (a fifth of the run) count; the first ones show the start.
  const double warmup_s = options.duration_s / 5;
  Series server_series, agent_series;
  std::string died;
  for (int i = 1;; ++i) {
    std::this_thread::sleep_until(t0 +
                                  std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(i * options.sample_period_s)));
    if (Clock::now() > end) break;
    const double t = std::chrono::duration<double>(Clock::now() - t0).count();
    auto s = sampleProcess(server_pid);
    auto a = sampleProcess(agent_pid);
    if (!s || !a) {
      died = !s ? "the server exited" : "the agent exited";
      break;
    }
    progress << "  t=" << static_cast<int>(t) << "s server " << benchNumber(s->rss_mb) << " MB "
             << s->fds << " fds, agent " << benchNumber(a->rss_mb) << " MB " << a->fds
             << " fds, requests " << counters.requests << " errors " << counters.errors << "\n";
    if (t < warmup_s) continue;
    server_series.rss.push_back(s->rss_mb);
    server_series.fds.push_back(s->fds);
    agent_series.rss.push_back(a->rss_mb);
    agent_series.fds.push_back(a->fds);
  }
  for (auto& t : threads)
    t.join();
  if (!died.empty()) {
    std::cerr << "error: " << died << " during the soak\n";
    return 1;
  }
  if (server_series.rss.empty()) {
    std::cerr << "error: no samples after the warm-up; give a longer --duration\n";
    return 1;
  }

  const double server_rss = server_series.rss.back();
  const double agent_rss = agent_series.rss.back();
  const double server_growth = growth(server_series.rss);
  const double agent_growth = growth(agent_series.rss);
  const double server_fds_growth = growth(server_series.fds);
  const double agent_fds_growth = growth(agent_series.fds);
  auto flat_rss = [](const std::vector<double>& rss, double g) {
    return g <= std::max(8.0, 0.05 * rss.front());
  };
  const bool flat = flat_rss(server_series.rss, server_growth) &&
                    flat_rss(agent_series.rss, agent_growth) && server_fds_growth <= 8 &&
                    agent_fds_growth <= 8 && counters.errors == 0;

  if (options.json) {
    std::ostringstream out;
    out << "{\"suite\":\"soak\",\"params\":{\"duration_s\":" << benchNumber(options.duration_s)
        << ",\"api_rate\":" << benchNumber(options.api_rate) << ",\"replicas\":" << options.replicas
        << ",\"cluster\":\""
        << (attached         ? "attached"
            : options.hollow ? "hollow"
                             : "up")
        << "\"},\"metrics\":{\"server_rss_mb\":" << benchNumber(server_rss)
        << ",\"agent_rss_mb\":" << benchNumber(agent_rss)
        << ",\"server_rss_growth_mb\":" << benchNumber(server_growth)
        << ",\"agent_rss_growth_mb\":" << benchNumber(agent_growth)
        << ",\"server_fds\":" << server_series.fds.back()
        << ",\"agent_fds\":" << agent_series.fds.back()
        << ",\"server_fds_growth\":" << benchNumber(server_fds_growth)
        << ",\"agent_fds_growth\":" << benchNumber(agent_fds_growth)
        << ",\"api_requests\":" << counters.requests << ",\"api_errors\":" << counters.errors
        << ",\"scale_changes\":" << counters.scale_changes << ",\"flat\":" << (flat ? 1 : 0)
        << "}}";
    std::cout << out.str() << std::endl;
  } else {
    std::printf("soak: %g s on %s, %ld API requests (%ld failed), %ld scale changes\n",
                options.duration_s,
                attached || options.hollow ? "skiff server + hollow agent" : "skiff up",
                counters.requests.load(), counters.errors.load(), counters.scale_changes.load());
    std::printf("%-8s %10s %14s %6s %12s\n", "process", "RSS MB", "RSS growth MB", "fds",
                "fds growth");
    std::printf("%-8s %10.1f %14.1f %6.0f %12.0f\n", "server", server_rss, server_growth,
                server_series.fds.back(), server_fds_growth);
    std::printf("%-8s %10.1f %14.1f %6.0f %12.0f\n", "agent", agent_rss, agent_growth,
                agent_series.fds.back(), agent_fds_growth);
    std::printf(
        "%s (targets: server <= 150 MB, agent <= 50 MB; flat: growth <= max(8 MB, 5%%), "
        "<= 8 fds, no failed request)\n",
        flat ? "flat" : "NOT flat");
  }
  if (!counters.first_error.empty()) std::cerr << "first failure: " << counters.first_error << "\n";
  return options.check && !flat ? 1 : 0;
}

}  // namespace

void addBenchSoakCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<BenchSoakOptions>();
  CLI::App* cmd = benchGroup(app).add_subcommand(
      "soak", "Memory and file descriptors of the server and agent under API load and pod churn");
  cmd->add_option("--duration", options->duration_s, "Seconds to run")->capture_default_str();
  cmd->add_option("--api-rate", options->api_rate, "API requests a second")->capture_default_str();
  cmd->add_option("--replicas", options->replicas, "Most replicas of the churned Deployment")
      ->capture_default_str();
  cmd->add_flag("--hollow", options->hollow,
                "skiff server and a hollow agent instead of skiff up (no root, no containers)");
  cmd->add_option("--kubeconfig", options->kubeconfig,
                  "Drive the server this kubeconfig names (already running, say under heaptrack) "
                  "with a hollow agent, instead of starting one; needs --server-pid");
  cmd->add_option("--server-pid", options->server_pid,
                  "With --kubeconfig: the pid of that server, whose memory is sampled");
  cmd->add_flag("--check", options->check,
                "Exit 1 unless memory and descriptors stayed flat and no request failed");
  cmd->add_flag("--json", options->json, "One JSON object on stdout");
  cmd->callback([options, &exit_code] {
    try {
      exit_code = runBenchSoak(*options);
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      exit_code = 1;
    }
  });
}

}  // namespace skiff::cli
