#include "control/cli/bench_apiserver_command.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "control/api/json.h"
#include "control/apiserver/server.h"
#include "control/cli/bench_report.h"
#include "control/cli/bench_store_command.h"
#include "control/cli/bench_watch_fanout.h"
#include "control/cli/cli_context.h"
#include "control/client/kubeconfig.h"
#include "control/client/rest_client.h"

namespace skiff::cli {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kNamespace = "skiff-bench-apiserver";
// The fan-out phase's pods, apart from the verb phases' so that its watchers see only its writes.
constexpr const char* kFanoutNamespace = "skiff-bench-fanout";
constexpr const char* kFanoutPrefix = "fanout-";

// Kubernetes' API call latency SLOs (sig-scalability, api_call_latency.md): thresholds of their
// definition for the 99th percentile per cluster-day, not figures measured here. The namespace
// LIST threshold is the 5 s Kubernetes first set; the current text allows 30 s.
constexpr double kSloMutatingP99Ms = 1000;
constexpr double kSloSingleObjectP99Ms = 1000;
constexpr double kSloListNamespaceP99Ms = 5000;

struct BenchApiserverOptions {
  bool quick = false;
  bool json = false;
  std::string clients = "1,4,16,64";
  double seconds = 3;
  int objects = 1000;
  int watchers = 16;
  // The issue's headline figures: pod creates with these numbers of clients, and a watch fan-out.
  std::string create_clients = "1,64";
  int fanout_watchers = 1000;
  double fanout_rate = 1000;  // pods/s written while the watchers watch
  double fanout_seconds = 3;
};

// The verbs measured, in the order of their phases.
enum Verb { kGet, kList, kListRv0, kCreate, kUpdate, kDelete, kVerbs };
constexpr const char* kVerbNames[kVerbs] = {"get",    "list",   "list_rv0",
                                            "create", "update", "delete"};
constexpr const char* kVerbTitles[kVerbs] = {
    "GET pod",          "LIST pods, rv=\"\"", "LIST pods, rv=\"0\"",
    "CREATE configmap", "PUT configmap",      "DELETE configmap"};

struct VerbFigures {
  size_t requests = 0;
  double seconds = 0;  // the phase's wall time, from its start to its last answer
  double p50_ms = 0;
  double p99_ms = 0;
  double requestsPerSecond() const { return seconds > 0 ? requests / seconds : 0; }
};

// Pod creates at one load level.
struct CreateFigures {
  int clients = 0;
  VerbFigures creates;
};

// The fan-out phase: pods written at a steady rate to many watchers of their collection.
struct FanoutFigures {
  int watchers = 0;
  double target_rate = 0;
  double written_rate = 0;     // pods created per second, as achieved
  size_t expected = 0;         // writes x watchers
  size_t delivered = 0;        // of them, events that arrived
  double delivery_p50_ms = 0;  // from the write's answer to the event at a watcher (0 if before)
  double delivery_p99_ms = 0;
  double delivery_max_ms = 0;
  double events_per_second = 0;  // deliveries over the time from the first write to the last event
};

struct LevelFigures {
  int clients = 0;
  VerbFigures verbs[kVerbs];
  size_t watch_deliveries = 0;  // events that reached a watcher and matched a write
  size_t watch_expected = 0;    // writes x watchers
  // From the writer's answer to the event at a watcher; 0 when the event came first.
  double watch_p50_ms = 0;
  double watch_p99_ms = 0;
  // From the write's request to the event at a watcher.
  double watch_from_request_p50_ms = 0;
  double watch_from_request_p99_ms = 0;
  double watch_before_answer_fraction = 0;  // of the events that reached a watcher first
  double watch_events_per_second = 0;       // deliveries over the write phases' time
  double requestsPerSecond() const {
    size_t requests = 0;
    double seconds = 0;
    for (const auto& v : verbs) {
      requests += v.requests;
      seconds += v.seconds;
    }
    return seconds > 0 ? requests / seconds : 0;
  }
};

// One acknowledged write, under the key its watch event gives (Watcher below).
struct Write {
  std::string key;
  Clock::time_point sent;
  Clock::time_point answered;
};

double msSince(Clock::time_point start, Clock::time_point end) {
  return std::chrono::duration<double, std::milli>(end - start).count();
}

std::string text(const api::Value& object, std::initializer_list<std::string_view> keys) {
  const api::Value* at = &object;
  for (auto key : keys) {
    at = at->find(key);
    if (at == nullptr) return "";
  }
  return at->isString() ? at->text() : std::string();
}

std::string loadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

std::vector<int> parseClients(const std::string& list) {
  std::vector<int> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    size_t used = 0;
    int n = 0;
    try {
      n = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || item.empty() || n < 1 || n > 1024) {
      throw std::invalid_argument("--clients " + list + ": \"" + item +
                                  "\" is not a number of clients from 1 to 1024");
    }
    out.push_back(n);
  }
  if (out.empty()) throw std::invalid_argument("--clients: want at least one load level");
  return out;
}

// The temporary data dir of the apiserver, removed at the end (after the server that uses it).
struct TempDir {
  std::string path = "/tmp/skiff-bench-apiserver-XXXXXX";
  TempDir() {
    if (::mkdtemp(path.data()) == nullptr) throw std::runtime_error("mkdtemp " + path + " failed");
  }
  ~TempDir() {
    std::error_code error;
    std::filesystem::remove_all(path, error);
  }
};

// Runs `count` threads, which start together and each call `op(thread)` until it returns false or
// `seconds` have passed since the start (0: until it returns false). Every call that returned true
// is one timed request. The first exception ends every thread and is rethrown.
VerbFigures runPhase(int count, double seconds, const std::function<bool(int)>& op) {
  std::vector<std::vector<double>> samples(static_cast<size_t>(count));
  std::vector<Clock::time_point> last(static_cast<size_t>(count));
  std::mutex mu;
  std::condition_variable cv;
  bool go = false;
  std::atomic<bool> stop{false};
  std::exception_ptr failure;
  Clock::time_point start;
  Clock::time_point deadline;
  std::vector<std::thread> threads;
  for (int t = 0; t < count; ++t) {
    threads.emplace_back([&, t] {
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return go; });
      }
      auto& mine = samples[static_cast<size_t>(t)];
      last[static_cast<size_t>(t)] = start;
      try {
        while (!stop.load(std::memory_order_relaxed)) {
          const auto before = Clock::now();
          if (seconds > 0 && before >= deadline) break;
          if (!op(t)) break;
          const auto after = Clock::now();
          mine.push_back(msSince(before, after));
          last[static_cast<size_t>(t)] = after;
        }
      } catch (...) {
        std::lock_guard lock(mu);
        if (!failure) failure = std::current_exception();
        stop = true;
      }
    });
  }
  {
    std::lock_guard lock(mu);
    start = Clock::now();
    deadline =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    go = true;
  }
  cv.notify_all();
  for (auto& thread : threads)
    thread.join();
  if (failure) std::rethrow_exception(failure);
  VerbFigures figures;
  std::vector<double> all;
  Clock::time_point end = start;
  for (size_t t = 0; t < samples.size(); ++t) {
    all.insert(all.end(), samples[t].begin(), samples[t].end());
    end = std::max(end, last[t]);
  }
  figures.requests = all.size();
  figures.seconds = msSince(start, end) / 1000;
  figures.p50_ms = percentileMs(all, 0.50);
  figures.p99_ms = percentileMs(all, 0.99);
  return figures;
}

// One watch of the namespace's ConfigMaps, read by a thread of its own, that notes when each
// event arrived under the key a write's answer also gives: "A/name", "M/resourceVersion",
// "D/name".
class Watcher {
 public:
  Watcher(client::Client& client, const std::string& resource_version) {
    client::WatchOptions options;
    options.resource_version = resource_version;
    options.timeout_seconds = 3600;
    watch_ = client.watch(resolveType("configmaps"), kNamespace, options);
    thread_ = std::thread([this] { run(); });
  }
  ~Watcher() {
    watch_->cancel();
    thread_.join();
  }
  size_t seen() {
    std::lock_guard lock(mu_);
    return arrivals_.size();
  }
  std::string failure() {
    std::lock_guard lock(mu_);
    return failure_;
  }
  // Called once the thread is done adding (after seen() reached what was expected, or a timeout).
  std::vector<std::pair<std::string, Clock::time_point>> arrivals() {
    std::lock_guard lock(mu_);
    return arrivals_;
  }

 private:
  void run() {
    client::WatchEvent event;
    while (true) {
      if (!watch_->next(event, std::chrono::milliseconds(200))) {
        if (!watch_->ended()) continue;
        std::lock_guard lock(mu_);
        if (watch_->error() && failure_.empty())
          failure_ = std::string("a ConfigMap watch ended: ") + watch_->error()->what();
        return;
      }
      const auto now = Clock::now();
      std::string key;
      switch (event.type) {
        case client::WatchEvent::Type::kAdded:
          key = "A/" + text(event.object, {"metadata", "name"});
          break;
        case client::WatchEvent::Type::kModified:
          key = "M/" + text(event.object, {"metadata", "resourceVersion"});
          break;
        case client::WatchEvent::Type::kDeleted:
          key = "D/" + text(event.object, {"metadata", "name"});
          break;
        case client::WatchEvent::Type::kBookmark:
          continue;
        case client::WatchEvent::Type::kError: {
          std::lock_guard lock(mu_);
          failure_ = "a ConfigMap watch failed: " + api::writeJson(event.object);
          return;
        }
      }
      std::lock_guard lock(mu_);
      arrivals_.emplace_back(std::move(key), now);
    }
  }

  client::WatchStreamPtr watch_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::pair<std::string, Clock::time_point>> arrivals_;
  std::string failure_;
};

// A pod as a Deployment's template would make it (one container, a port, requests).
api::Value pod(const std::string& name, const char* ns, int shard, const char* phase) {
  char json[1024];
  std::snprintf(
      json, sizeof(json),
      R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s","namespace":"%s",)"
      R"("labels":{"app":"bench","shard":"s%d","phase":"%s"}},)"
      R"("spec":{"terminationGracePeriodSeconds":0,)"
      R"("containers":[{"name":"c","image":"registry.example/bench:1.0","ports":)"
      R"([{"containerPort":8080}],"resources":{"requests":{"cpu":"10m","memory":"50Mi"}}}]}})",
      name.c_str(), ns, shard % 10, phase);
  return api::parseJson(json);
}

api::Value pod(int i) {
  return pod("pod-" + std::to_string(i), kNamespace, i, "preload");
}

api::Value configMap(const std::string& name, int version) {
  api::Value object = api::Value::object();
  object.set("apiVersion", api::Value::string("v1"));
  object.set("kind", api::Value::string("ConfigMap"));
  api::Value meta = api::Value::object();
  meta.set("name", api::Value::string(name));
  meta.set("namespace", api::Value::string(kNamespace));
  object.set("metadata", std::move(meta));
  api::Value data = api::Value::object();
  data.set("key", api::Value::string("value-" + std::to_string(version)));
  data.set("settings", api::Value::string("mode=bench\nlevel=3\n"));
  object.set("data", std::move(data));
  return object;
}

// Setup (not measured): `count` calls of `each(i)` spread over 8 threads.
void parallel(int count, const std::function<void(int)>& each) {
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  std::exception_ptr failure;
  std::mutex failure_mu;
  for (int t = 0; t < 8; ++t) {
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
}

class Bench {
 public:
  Bench(const BenchApiserverOptions& options, const std::string& kubeconfig, int max_clients)
      : options_(options), pods_(resolveType("pods")), configmaps_(resolveType("configmaps")) {
    client::LoadOptions load;
    load.kubeconfig = kubeconfig;
    config_ = client::loadClientConfig(load);
    // One client per load client and per watcher, each on a keep-alive connection of its own.
    for (int i = 0; i < max_clients; ++i)
      clients_.push_back(client::makeRestClient(config_));
    for (int i = 0; i < options.watchers; ++i)
      watch_clients_.push_back(client::makeRestClient(config_));
  }

  void preload() {
    client::Client& client = *clients_.front();
    client.create(resolveType("namespaces"), "",
                  api::parseJson(std::string(R"({"apiVersion":"v1","kind":"Namespace",)") +
                                 R"("metadata":{"name":")" + kNamespace + R"("}})"));
    const int configmaps = std::max(1, options_.objects / 10);
    client.create(resolveType("namespaces"), "",
                  api::parseJson(std::string(R"({"apiVersion":"v1","kind":"Namespace",)") +
                                 R"("metadata":{"name":")" + kFanoutNamespace + R"("}})"));
    parallel(options_.objects + configmaps, [&](int i) {
      client::Client& c = *clients_[static_cast<size_t>(i) % clients_.size()];
      if (i < options_.objects) {
        c.create(pods_, kNamespace, pod(i));
      } else {
        c.create(configmaps_, kNamespace, configMap("preload-" + std::to_string(i), 0));
      }
    });
  }

  LevelFigures runLevel(int n) {
    LevelFigures level;
    level.clients = n;
    // Each client's first request opens its TLS connection: not measured.
    parallel(n, [&](int i) { clients_[static_cast<size_t>(i)]->get(pods_, kNamespace, "pod-0"); });
    const double s = options_.seconds;

    std::vector<std::mt19937> rngs;
    for (int i = 0; i < n; ++i)
      rngs.emplace_back(static_cast<unsigned>(1000 * n + i));
    level.verbs[kGet] = runPhase(n, s, [&](int t) {
      std::uniform_int_distribution<int> pick(0, options_.objects - 1);
      clients_[static_cast<size_t>(t)]->get(
          pods_, kNamespace, "pod-" + std::to_string(pick(rngs[static_cast<size_t>(t)])));
      return true;
    });
    for (Verb verb : {kList, kListRv0}) {
      client::ListOptions list_options;
      list_options.resource_version = verb == kList ? "" : "0";
      level.verbs[verb] = runPhase(n, s, [&](int t) {
        const api::Value list =
            clients_[static_cast<size_t>(t)]->list(pods_, kNamespace, list_options);
        const api::Value* items = list.find("items");
        if (items == nullptr || items->items().size() != static_cast<size_t>(options_.objects)) {
          throw std::runtime_error("a LIST of " + std::string(kNamespace) + " pods returned " +
                                   std::to_string(items ? items->items().size() : 0) +
                                   " items, expected " + std::to_string(options_.objects));
        }
        return true;
      });
    }

    // The watchers, from the revision the writes start after.
    const api::Value current = clients_.front()->list(configmaps_, kNamespace);
    const std::string from = text(current, {"metadata", "resourceVersion"});
    std::vector<std::unique_ptr<Watcher>> watchers;
    for (auto& c : watch_clients_)
      watchers.push_back(std::make_unique<Watcher>(*c, from));

    // Writes: each client owns the ConfigMaps it created; when each write was sent and answered.
    std::vector<std::vector<api::Value>> owned(static_cast<size_t>(n));
    std::vector<std::vector<Write>> answered(static_cast<size_t>(n));
    std::vector<size_t> cursor(static_cast<size_t>(n), 0);
    std::vector<int> serial(static_cast<size_t>(n), 0);
    level.verbs[kCreate] = runPhase(n, s, [&](int t) {
      const size_t i = static_cast<size_t>(t);
      const std::string name =
          "cm-" + std::to_string(n) + "-" + std::to_string(t) + "-" + std::to_string(serial[i]++);
      const auto sent = Clock::now();
      api::Value created = clients_[i]->create(configmaps_, kNamespace, configMap(name, 0));
      answered[i].push_back({"A/" + name, sent, Clock::now()});
      owned[i].push_back(std::move(created));
      return true;
    });
    level.verbs[kUpdate] = runPhase(n, s, [&](int t) {
      const size_t i = static_cast<size_t>(t);
      // A client that started after the create phase's deadline owns nothing to update.
      if (owned[i].empty()) return false;
      api::Value& object = owned[i][cursor[i]++ % owned[i].size()];
      api::Value* data = object.find("data");
      data->set("key", api::Value::string("value-" + std::to_string(cursor[i])));
      const auto sent = Clock::now();
      object = clients_[i]->update(configmaps_, kNamespace, object);
      answered[i].push_back(
          {"M/" + text(object, {"metadata", "resourceVersion"}), sent, Clock::now()});
      return true;
    });
    std::fill(cursor.begin(), cursor.end(), 0);
    // Every ConfigMap of the level goes, however long that takes: the next level starts as this
    // one did.
    level.verbs[kDelete] = runPhase(n, 0, [&](int t) {
      const size_t i = static_cast<size_t>(t);
      if (cursor[i] >= owned[i].size()) return false;
      const std::string name = text(owned[i][cursor[i]++], {"metadata", "name"});
      const auto sent = Clock::now();
      clients_[i]->remove(configmaps_, kNamespace, name);
      answered[i].push_back({"D/" + name, sent, Clock::now()});
      return true;
    });

    std::unordered_map<std::string, const Write*> writes;
    for (const auto& list : answered)
      for (const Write& write : list)
        writes.emplace(write.key, &write);
    level.watch_expected = writes.size() * watchers.size();
    // Every watcher gets every event, or 30 s pass.
    const auto wait_until = Clock::now() + std::chrono::seconds(30);
    for (auto& w : watchers) {
      while (w->seen() < writes.size() && w->failure().empty() && Clock::now() < wait_until)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      if (!w->failure().empty()) throw std::runtime_error(w->failure());
    }
    std::vector<double> latencies;  // from the writer's answer (0 when the event came first)
    std::vector<double> from_sent;  // from the write's request
    size_t before_answer = 0;
    for (auto& w : watchers) {
      for (const auto& [key, at] : w->arrivals()) {
        auto it = writes.find(key);
        if (it == writes.end()) continue;
        const double after_answer = msSince(it->second->answered, at);
        before_answer += after_answer < 0 ? 1 : 0;
        latencies.push_back(std::max(0.0, after_answer));
        from_sent.push_back(msSince(it->second->sent, at));
      }
    }
    watchers.clear();
    level.watch_deliveries = latencies.size();
    level.watch_p50_ms = percentileMs(latencies, 0.50);
    level.watch_p99_ms = percentileMs(latencies, 0.99);
    level.watch_from_request_p50_ms = percentileMs(from_sent, 0.50);
    level.watch_from_request_p99_ms = percentileMs(from_sent, 0.99);
    level.watch_before_answer_fraction =
        latencies.empty() ? 0 : static_cast<double>(before_answer) / latencies.size();
    const double write_seconds =
        level.verbs[kCreate].seconds + level.verbs[kUpdate].seconds + level.verbs[kDelete].seconds;
    level.watch_events_per_second = write_seconds > 0 ? latencies.size() / write_seconds : 0;
    return level;
  }

  // Pod creates by `n` clients for the phase time; the pods are deleted afterwards (not timed).
  CreateFigures podCreates(int n) {
    CreateFigures figures;
    figures.clients = n;
    parallel(n, [&](int i) { clients_[static_cast<size_t>(i)]->get(pods_, kNamespace, "pod-0"); });
    std::vector<int> serial(static_cast<size_t>(n), 0);
    // Parsed once: the load generator's own JSON parsing is not the apiserver's cost.
    const api::Value templ = pod("template", kNamespace, 0, "create");
    figures.creates = runPhase(n, options_.seconds, [&](int t) {
      const size_t i = static_cast<size_t>(t);
      api::Value object = templ;
      object.find("metadata")
          ->set("name", api::Value::string("create-" + std::to_string(n) + "-" + std::to_string(t) +
                                           "-" + std::to_string(serial[i]++)));
      clients_[i]->create(pods_, kNamespace, object);
      return true;
    });
    removePods(kNamespace, "phase=create");
    return figures;
  }

  // `fanout_watchers` watches of kFanoutNamespace's pods while pods are created there at
  // `fanout_rate` for `fanout_seconds` (open loop: each write has its time in a schedule, spread
  // over writer threads, so a slow answer does not slow the rate down).
  FanoutFigures fanout() {
    FanoutFigures figures;
    figures.watchers = options_.fanout_watchers;
    figures.target_rate = options_.fanout_rate;
    const size_t total =
        std::max<size_t>(1, static_cast<size_t>(options_.fanout_rate * options_.fanout_seconds));
    const api::Value current = clients_.front()->list(pods_, kFanoutNamespace);
    const std::string path =
        std::string("/api/v1/namespaces/") + kFanoutNamespace +
        "/pods?watch=true&resourceVersion=" + text(current, {"metadata", "resourceVersion"}) +
        "&timeoutSeconds=3600";
    FanoutWatchers watchers(config_, path, options_.fanout_watchers, kFanoutPrefix, total);
    watchers.start(std::chrono::seconds(60));

    const size_t writers = std::min<size_t>(clients_.size(), 16);
    std::vector<Clock::time_point> answered(total);
    std::vector<std::thread> threads;
    std::exception_ptr failure;
    std::mutex failure_mu;
    const auto start = Clock::now() + std::chrono::milliseconds(20);
    const auto every = std::chrono::duration<double>(1.0 / options_.fanout_rate);
    const api::Value templ = pod("template", kFanoutNamespace, 0, "fanout");
    for (size_t w = 0; w < writers; ++w) {
      threads.emplace_back([&, w] {
        try {
          for (size_t i = w; i < total; i += writers) {
            std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                                      every * static_cast<double>(i)));
            api::Value object = templ;
            object.find("metadata")
                ->set("name", api::Value::string(kFanoutPrefix + std::to_string(i)));
            clients_[w]->create(pods_, kFanoutNamespace, object);
            answered[i] = Clock::now();
          }
        } catch (...) {
          std::lock_guard lock(failure_mu);
          if (!failure) failure = std::current_exception();
        }
      });
    }
    for (auto& thread : threads)
      thread.join();
    if (failure) std::rethrow_exception(failure);
    const auto written = *std::max_element(answered.begin(), answered.end());
    figures.written_rate = total / std::max(1e-9, msSince(start, written) / 1000);
    figures.expected = total * static_cast<size_t>(options_.fanout_watchers);
    // Every watcher gets every event, or 30 s pass.
    const auto wait_until = Clock::now() + std::chrono::seconds(30);
    while (watchers.arrivals() < figures.expected && watchers.failure().empty() &&
           Clock::now() < wait_until)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    watchers.stop();
    if (!watchers.failure().empty()) throw std::runtime_error(watchers.failure());
    std::vector<double> latencies;
    latencies.reserve(figures.expected);
    Clock::time_point last = start;
    for (int w = 0; w < watchers.watchers(); ++w) {
      for (size_t i = 0; i < total; ++i) {
        const auto at = watchers.arrival(w, i);
        if (at == Clock::time_point{}) continue;
        latencies.push_back(std::max(0.0, msSince(answered[i], at)));
        last = std::max(last, at);
      }
    }
    figures.delivered = latencies.size();
    figures.delivery_p50_ms = percentileMs(latencies, 0.50);
    figures.delivery_p99_ms = percentileMs(latencies, 0.99);
    figures.delivery_max_ms =
        latencies.empty() ? 0 : *std::max_element(latencies.begin(), latencies.end());
    figures.events_per_second = latencies.size() / std::max(1e-9, msSince(start, last) / 1000);
    removePods(kFanoutNamespace, "phase=fanout");
    return figures;
  }

 private:
  void removePods(const char* ns, const std::string& selector) {
    client::ListOptions list;
    list.label_selector = selector;
    client::DeleteOptions remove;
    remove.grace_period_seconds = 0;
    clients_.front()->removeCollection(pods_, ns, list, remove);
  }

  const BenchApiserverOptions& options_;
  const api::ResourceType& pods_;
  const api::ResourceType& configmaps_;
  client::ClientConfig config_;
  std::vector<client::ClientPtr> clients_;
  std::vector<client::ClientPtr> watch_clients_;
};

api::Value levelJson(const LevelFigures& level) {
  api::Value out = api::Value::object();
  out.set("clients", api::Value::integer(level.clients));
  for (int v = 0; v < kVerbs; ++v) {
    const std::string name = kVerbNames[v];
    out.set(name + "_p50_ms", api::Value::number(level.verbs[v].p50_ms));
    out.set(name + "_p99_ms", api::Value::number(level.verbs[v].p99_ms));
    out.set(name + "_requests_per_second", api::Value::number(level.verbs[v].requestsPerSecond()));
  }
  out.set("watch_p50_ms", api::Value::number(level.watch_p50_ms));
  out.set("watch_p99_ms", api::Value::number(level.watch_p99_ms));
  out.set("watch_from_request_p50_ms", api::Value::number(level.watch_from_request_p50_ms));
  out.set("watch_from_request_p99_ms", api::Value::number(level.watch_from_request_p99_ms));
  out.set("watch_before_answer_fraction", api::Value::number(level.watch_before_answer_fraction));
  out.set("watch_events_per_second", api::Value::number(level.watch_events_per_second));
  out.set("requests_per_second", api::Value::number(level.requestsPerSecond()));
  return out;
}

// Rounded to six significant digits, as every bench prints its figures.
api::Value rounded(const api::Value& value) {
  if (value.isNumber() && !value.isInteger())
    return api::Value::numberLiteral(benchNumber(value.asDouble()));
  if (value.isObject()) {
    api::Value out = api::Value::object();
    for (const auto& member : value.members())
      out.set(member.key, rounded(member.value));
    return out;
  }
  if (value.isArray()) {
    api::Value out = api::Value::array();
    for (const auto& item : value.items())
      out.push(rounded(item));
    return out;
  }
  return value;
}

int runBenchApiserver(BenchApiserverOptions options, const std::vector<int>& clients,
                      const std::vector<int>& create_clients) {
  if (options.fanout_watchers < 1 || options.fanout_watchers > 10000 || options.fanout_rate <= 0 ||
      options.fanout_seconds <= 0) {
    std::cerr << "error: --fanout-watchers " << options.fanout_watchers << " --fanout-rate "
              << options.fanout_rate << " --fanout-seconds " << options.fanout_seconds
              << ": want 1 to 10000 watchers, a positive rate and a positive time\n";
    return 1;
  }
  if (options.objects < 1 || options.seconds <= 0 || options.watchers < 1) {
    std::cerr << "error: --objects " << options.objects << " --seconds " << options.seconds
              << " --watchers " << options.watchers << ": want 1 or more objects and watchers "
              << "and a positive time\n";
    return 1;
  }
  std::ostream& progress = std::cerr;
  TempDir dir;
  apiserver::ApiServerOptions server_options;
  server_options.data_dir = dir.path;
  server_options.bind_address = "127.0.0.1";
  server_options.port = 0;
  apiserver::ApiServer server(server_options);
  server.start();  // stopped by its destructor, before the directory goes
  progress << "skiff bench apiserver: apiserver at " << server.url()
           << " (TLS, embedded SQLite with fsync in " << dir.path << ")\n";

  const int max_clients = std::max(*std::max_element(clients.begin(), clients.end()),
                                   *std::max_element(create_clients.begin(), create_clients.end()));
  std::vector<LevelFigures> levels;
  std::vector<CreateFigures> creates;
  FanoutFigures fanout;
  {
    Bench bench(options, server.adminKubeconfig(), max_clients);
    const auto preload_start = Clock::now();
    bench.preload();
    progress << "  preloaded " << options.objects << " pods and "
             << std::max(1, options.objects / 10) << " ConfigMaps in "
             << benchNumber(msSince(preload_start, Clock::now()) / 1000) << " s\n";
    for (int n : clients) {
      levels.push_back(bench.runLevel(n));
      const LevelFigures& l = levels.back();
      progress << "  " << n << (n == 1 ? " client:" : " clients:");
      for (int v = 0; v < kVerbs; ++v)
        progress << " " << kVerbNames[v] << " p99 " << benchNumber(l.verbs[v].p99_ms) << " ms";
      progress << "; watch p99 " << benchNumber(l.watch_p99_ms) << " ms (" << l.watch_deliveries
               << "/" << l.watch_expected << " events); " << benchNumber(l.requestsPerSecond())
               << " req/s\n";
    }
    for (int n : create_clients) {
      creates.push_back(bench.podCreates(n));
      const VerbFigures& c = creates.back().creates;
      progress << "  pod creates, " << n << (n == 1 ? " client: " : " clients: ")
               << benchNumber(c.requestsPerSecond()) << "/s, p99 " << benchNumber(c.p99_ms)
               << " ms\n";
    }
    fanout = bench.fanout();
    progress << "  watch fan-out: " << fanout.watchers << " watchers, "
             << benchNumber(fanout.written_rate) << " pods/s written: delivery p99 "
             << benchNumber(fanout.delivery_p99_ms) << " ms (" << fanout.delivered << "/"
             << fanout.expected << " events)\n";
  }
  const std::string load_average = loadAverage();
  const auto highest = std::max_element(
      levels.begin(), levels.end(),
      [](const LevelFigures& a, const LevelFigures& b) { return a.clients < b.clients; });

  if (options.json) {
    api::Value doc = api::Value::object();
    doc.set("suite", api::Value::string("apiserver"));
    api::Value params = api::Value::object();
    auto intArray = [](const std::vector<int>& values) {
      api::Value out = api::Value::array();
      for (int n : values)
        out.push(api::Value::integer(n));
      return out;
    };
    params.set("clients", intArray(clients));
    params.set("seconds_per_phase", api::Value::number(options.seconds));
    params.set("pods", api::Value::integer(options.objects));
    params.set("configmaps", api::Value::integer(std::max(1, options.objects / 10)));
    params.set("watchers", api::Value::integer(options.watchers));
    params.set("store", api::Value::string("sqlite, fsync"));
    params.set("quick", api::Value::boolean(options.quick));
    params.set("cpus", api::Value::integer(::sysconf(_SC_NPROCESSORS_ONLN)));
    params.set("load_average", api::Value::string(load_average));
    params.set("create_clients", intArray(create_clients));
    params.set("fanout_watchers", api::Value::integer(options.fanout_watchers));
    params.set("fanout_rate", api::Value::number(options.fanout_rate));
    params.set("fanout_seconds", api::Value::number(options.fanout_seconds));
    doc.set("params", std::move(params));
    api::Value metrics = levelJson(*highest);
    // The issue's headline keys: pod creates by N clients, and the fan-out's delivery latency.
    for (const auto& c : creates) {
      const std::string n = std::to_string(c.clients);
      metrics.set("creates_per_second_" + n, api::Value::number(c.creates.requestsPerSecond()));
      metrics.set("create_p50_ms_" + n, api::Value::number(c.creates.p50_ms));
      metrics.set("create_p99_ms_" + n, api::Value::number(c.creates.p99_ms));
    }
    metrics.set("watch_delivery_p50_ms", api::Value::number(fanout.delivery_p50_ms));
    metrics.set("watch_delivery_p99_ms", api::Value::number(fanout.delivery_p99_ms));
    metrics.set("watch_delivery_max_ms", api::Value::number(fanout.delivery_max_ms));
    metrics.set("watch_fanout_written_per_second", api::Value::number(fanout.written_rate));
    metrics.set("watch_fanout_events_per_second", api::Value::number(fanout.events_per_second));
    metrics.set("watch_fanout_delivered",
                api::Value::integer(static_cast<int64_t>(fanout.delivered)));
    metrics.set("watch_fanout_expected",
                api::Value::integer(static_cast<int64_t>(fanout.expected)));
    doc.set("metrics", std::move(metrics));
    api::Value all = api::Value::array();
    for (const auto& l : levels)
      all.push(levelJson(l));
    doc.set("levels", std::move(all));
    api::Value slo = api::Value::object();
    slo.set("source",
            api::Value::string("Kubernetes' API call latency SLO definitions (sig-scalability), "
                               "not measurements"));
    slo.set("mutating_p99_ms", api::Value::number(kSloMutatingP99Ms));
    slo.set("single_object_read_p99_ms", api::Value::number(kSloSingleObjectP99Ms));
    slo.set("namespace_list_p99_ms", api::Value::number(kSloListNamespaceP99Ms));
    doc.set("slo", std::move(slo));
    std::cout << api::writeJson(rounded(doc)) << std::endl;
    return 0;
  }
  std::printf(
      "apiserver benchmark: %d pods and %d ConfigMaps in one namespace, %s s per verb phase, %d "
      "watchers, TLS keep-alive clients, SQLite with fsync (load average %s)\n",
      options.objects, std::max(1, options.objects / 10), benchNumber(options.seconds).c_str(),
      options.watchers, load_average.c_str());
  std::printf("%-20s %7s %10s %10s %10s %s\n", "verb", "clients", "p50 ms", "p99 ms", "req/s",
              "Kubernetes SLO for p99 (a definition, not measured here)");
  for (int v = 0; v < kVerbs; ++v) {
    const double slo = v == kGet                     ? kSloSingleObjectP99Ms
                       : v == kList || v == kListRv0 ? kSloListNamespaceP99Ms
                                                     : kSloMutatingP99Ms;
    for (const auto& l : levels) {
      const VerbFigures& f = l.verbs[v];
      std::printf("%-20s %7d %10.3g %10.3g %10.0f <= %.0f ms: %s\n", kVerbTitles[v], l.clients,
                  f.p50_ms, f.p99_ms, f.requestsPerSecond(), slo,
                  f.p99_ms <= slo ? "within" : "above");
    }
  }
  for (const auto& l : levels) {
    std::printf("%-20s %7d %10.3g %10.3g %10.0f (events/s to %d watchers; %zu of %zu arrived)\n",
                "watch, after answer", l.clients, l.watch_p50_ms, l.watch_p99_ms,
                l.watch_events_per_second, options.watchers, l.watch_deliveries, l.watch_expected);
  }
  for (const auto& l : levels) {
    std::printf("%-20s %7d %10.3g %10.3g %10s (%.0f%% of events came before the answer)\n",
                "watch, from request", l.clients, l.watch_from_request_p50_ms,
                l.watch_from_request_p99_ms, "", 100 * l.watch_before_answer_fraction);
  }
  for (const auto& c : creates) {
    std::printf("%-20s %7d %10.3g %10.3g %10.0f <= %.0f ms: %s\n", "CREATE pod", c.clients,
                c.creates.p50_ms, c.creates.p99_ms, c.creates.requestsPerSecond(),
                kSloMutatingP99Ms, c.creates.p99_ms <= kSloMutatingP99Ms ? "within" : "above");
  }
  std::printf(
      "watch fan-out: %d watchers of pods, %.0f pods/s written (asked %.0f): delivery p50 %.3g ms, "
      "p99 %.3g ms, max %.3g ms after the write's answer; %zu of %zu events, %.0f events/s\n",
      fanout.watchers, fanout.written_rate, fanout.target_rate, fanout.delivery_p50_ms,
      fanout.delivery_p99_ms, fanout.delivery_max_ms, fanout.delivered, fanout.expected,
      fanout.events_per_second);
  std::printf(
      "All verbs at %d clients: %.0f requests/s. Latency is the client's: from the call to "
      "the decoded answer, TLS and JSON included.\n",
      highest->clients, highest->requestsPerSecond());
  return 0;
}

}  // namespace

void addBenchApiserverCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<BenchApiserverOptions>();
  CLI::App* cmd = benchGroup(app).add_subcommand(
      "apiserver", "The apiserver's GET/LIST/CREATE/UPDATE/DELETE and watch latency against load");
  cmd->add_option("--clients", options->clients, "Load levels: concurrent clients, comma-separated")
      ->capture_default_str();
  cmd->add_option("--seconds", options->seconds, "Seconds of each verb's phase per load level")
      ->capture_default_str();
  cmd->add_option("--objects", options->objects,
                  "Pods preloaded in the namespace (and a tenth as many ConfigMaps)")
      ->capture_default_str();
  cmd->add_option("--watchers", options->watchers, "ConfigMap watchers for the watch latency")
      ->capture_default_str();
  cmd->add_option("--create-clients", options->create_clients,
                  "Pod-create load levels (the headline creates_per_second_N figures)")
      ->capture_default_str();
  cmd->add_option("--fanout-watchers", options->fanout_watchers,
                  "Watchers of pods in the fan-out phase, each on its own TLS connection")
      ->capture_default_str();
  cmd->add_option("--fanout-rate", options->fanout_rate,
                  "Pods created per second while the fan-out watchers watch")
      ->capture_default_str();
  cmd->add_option("--fanout-seconds", options->fanout_seconds, "Length of the fan-out phase")
      ->capture_default_str();
  cmd->add_flag("--quick", options->quick,
                "A CI smoke run: 1, 4 and 16 clients, 0.3 s per phase, 200 pods, 4 watchers; pod "
                "creates by 1 and 64 clients; fan-out of 50 watchers at 200 pods/s for 1 s");
  cmd->add_flag("--json", options->json, "One JSON object on stdout");
  cmd->callback([options, cmd, &exit_code] {
    try {
      BenchApiserverOptions run = *options;
      if (run.quick) {
        if (cmd->count("--clients") == 0) run.clients = "1,4,16";
        if (cmd->count("--seconds") == 0) run.seconds = 0.3;
        if (cmd->count("--objects") == 0) run.objects = 200;
        if (cmd->count("--watchers") == 0) run.watchers = 4;
        if (cmd->count("--fanout-watchers") == 0) run.fanout_watchers = 50;
        if (cmd->count("--fanout-rate") == 0) run.fanout_rate = 200;
        if (cmd->count("--fanout-seconds") == 0) run.fanout_seconds = 1;
      }
      exit_code =
          runBenchApiserver(run, parseClients(run.clients), parseClients(run.create_clients));
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      exit_code = 1;
    }
  });
}

}  // namespace skiff::cli
