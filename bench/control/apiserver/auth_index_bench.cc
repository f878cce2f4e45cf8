// What the apiserver's auth indexes cost per pod change, side by side in one run:
//   cache only    the pods watch cache alone (the floor: store write, one store watch, one decode);
//   shared index  the auth pod index as a view of that cache (what the apiserver runs);
//   own index     the auth pod index with a store watch of its own beside the cache (the
//                 arrangement before: a second store watch, every pod change decoded twice).
// Each config writes E pods (realistic size: two containers, env, ports, probes, status) through
// the storage and waits until cache and index hold the last; reports CPU time of the whole
// process per pod change (getrusage: every thread, the store's included), the wall time, and the
// store watches opened on the pods prefix. Figures are medians of R rounds, configs interleaved.
//
//   auth_index_bench [--pods E] [--rounds R] [--only cache|shared|own] [--json]
//
// --only runs one config (for instruction counts under valgrind --tool=callgrind, which the
// machine's noise does not move).

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "control/api/codec.h"
#include "control/apiserver/auth/object_index.h"
#include "control/apiserver/resource_storage.h"
#include "control/apiserver/watch_cache.h"
#include "control/store/sqlite_store.h"
#include "skiff/api/core_v1.pb.h"
#include "tests/mocks/watch_counting_store.h"

namespace {

using namespace skiff;
using Clock = std::chrono::steady_clock;

double cpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

api::core::v1::Pod podTemplate() {
  api::core::v1::Pod pod;
  api::decodeJson(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"x","namespace":"default",
    "labels":{"app":"web","tier":"frontend","pod-template-hash":"5d4f8c7b9"},
    "annotations":{"kubernetes.io/config.seen":"2026-01-01T00:00:00Z"},
    "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-5d4f8c7b9",
      "uid":"7d0c8a52-1e2f-4b3a-9c8d-0e1f2a3b4c5d","controller":true,"blockOwnerDeletion":true}]},
    "spec":{"nodeName":"node-1","serviceAccountName":"default","containers":[
      {"name":"web","image":"registry.local/web:1.2.3","ports":[{"containerPort":8080,"name":"http"}],
       "env":[{"name":"MODE","value":"production"},{"name":"PORT","value":"8080"},
              {"name":"LOG_LEVEL","value":"info"}],
       "resources":{"requests":{"cpu":"100m","memory":"128Mi"},"limits":{"cpu":"1","memory":"512Mi"}},
       "readinessProbe":{"httpGet":{"path":"/ready","port":8080},"periodSeconds":5},
       "livenessProbe":{"httpGet":{"path":"/live","port":8080},"periodSeconds":10}},
      {"name":"sidecar","image":"registry.local/proxy:0.9","args":["--listen=:15001","--upstream=127.0.0.1:8080"]}],
     "tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}]},
    "status":{"phase":"Running","podIP":"10.244.1.17","hostIP":"192.168.1.10",
      "conditions":[{"type":"Ready","status":"True"},{"type":"ContainersReady","status":"True"}]}})",
                  pod);
  return pod;
}

enum class Config { kCacheOnly, kShared, kOwn };
const char* configName(Config c) {
  switch (c) {
    case Config::kCacheOnly:
      return "cache only";
    case Config::kShared:
      return "shared index";
    case Config::kOwn:
      return "own index";
  }
  return "";
}

struct Result {
  double cpu_us_per_change = 0;
  double wall_seconds = 0;
  int pod_watches = 0;
};

Result run(Config config, int pods, const std::filesystem::path& dir) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto sqlite = store::SqliteStore::open({.path = (dir / "db").string(), .fsync = false});
  skiff::store::testing::WatchCountingStore counting(*sqlite);
  const api::ResourceType& type = *api::Registry::builtin().byResource("", "v1", "pods");
  apiserver::ResourceStorage storage(counting, type);
  auto cache = std::make_unique<apiserver::WatchCache>(counting, storage);
  std::unique_ptr<apiserver::auth::ObjectIndex> index;
  if (config == Config::kShared) index = std::make_unique<apiserver::auth::ObjectIndex>(*cache);
  if (config == Config::kOwn) {
    index = std::make_unique<apiserver::auth::ObjectIndex>(counting, type);
  }
  if (index) {
    index->start();
    index->waitSynced(std::chrono::seconds(10));
  }
  api::core::v1::Pod pod = podTemplate();
  std::string last = "p" + std::to_string(pods - 1);
  double cpu0 = cpuSeconds();
  auto t0 = Clock::now();
  for (int i = 0; i < pods; ++i) {
    auto p = std::make_unique<api::core::v1::Pod>(pod);
    p->mutable_metadata()->set_name("p" + std::to_string(i));
    storage.create("default", std::move(p), false);
  }
  auto deadline = Clock::now() + std::chrono::seconds(120);
  while (Clock::now() < deadline) {
    bool cached = cache->objectCount() == static_cast<size_t>(pods);
    bool indexed = !index || index->get("default", last) != nullptr;
    if (cached && indexed) break;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  Result r;
  r.wall_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  r.cpu_us_per_change = (cpuSeconds() - cpu0) * 1e6 / pods;
  r.pod_watches = counting.watches("pods");
  if (cache->objectCount() != static_cast<size_t>(pods) ||
      (index && index->get("default", last) == nullptr)) {
    std::fprintf(stderr, "%s: not every pod arrived\n", configName(config));
    std::exit(1);
  }
  index.reset();
  cache.reset();
  sqlite.reset();
  std::filesystem::remove_all(dir);
  return r;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int pods = 2000;
  int rounds = 5;
  bool json = false;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--pods" && i + 1 < argc) {
      pods = std::atoi(argv[++i]);
    } else if (a == "--rounds" && i + 1 < argc) {
      rounds = std::atoi(argv[++i]);
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else if (a == "--json") {
      json = true;
    } else {
      std::fprintf(stderr, "usage: %s [--pods E] [--rounds R] [--only cache|shared|own] [--json]\n",
                   argv[0]);
      return 2;
    }
  }
  if (pods <= 0 || rounds <= 0) {
    std::fprintf(stderr, "--pods and --rounds must be positive\n");
    return 2;
  }
  auto dir = std::filesystem::temp_directory_path() /
             ("skiff-auth-index-bench-" + std::to_string(::getpid()));
  const Config configs[] = {Config::kCacheOnly, Config::kShared, Config::kOwn};
  if (!only.empty()) {
    Config c = only == "own"      ? Config::kOwn
               : only == "shared" ? Config::kShared
                                  : Config::kCacheOnly;
    Result r = run(c, pods, dir);
    std::printf("%s: %.2f CPU us/change, %d pod store watches\n", configName(c),
                r.cpu_us_per_change, r.pod_watches);
    return 0;
  }
  std::vector<double> cpu[3], wall[3];
  int watches[3] = {0, 0, 0};
  for (int round = 0; round < rounds; ++round) {
    for (int c = 0; c < 3; ++c) {
      Result r = run(configs[c], pods, dir);
      cpu[c].push_back(r.cpu_us_per_change);
      wall[c].push_back(r.wall_seconds);
      watches[c] = r.pod_watches;
    }
  }
  double m[3], w[3];
  for (int c = 0; c < 3; ++c) {
    m[c] = median(cpu[c]);
    w[c] = median(wall[c]);
  }
  if (json) {
    std::printf(R"({"suite":"auth_index","params":{"pods":%d,"rounds":%d},"metrics":{)"
                R"("cpu_us_per_change_cache_only":%.2f,"cpu_us_per_change_shared":%.2f,)"
                R"("cpu_us_per_change_own":%.2f,"index_overhead_us_shared":%.2f,)"
                R"("index_overhead_us_own":%.2f,"pod_store_watches_shared":%d,)"
                R"("pod_store_watches_own":%d}})"
                "\n",
                pods, rounds, m[0], m[1], m[2], m[1] - m[0], m[2] - m[0], watches[1], watches[2]);
  } else {
    std::printf("%d pod creates, median of %d rounds\n", pods, rounds);
    std::printf("%-14s %18s %18s %12s %14s\n", "config", "CPU us/change", "index overhead",
                "wall s", "pod watches");
    for (int c = 0; c < 3; ++c) {
      std::printf("%-14s %18.2f %18.2f %12.3f %14d\n", configName(configs[c]), m[c], m[c] - m[0],
                  w[c], watches[c]);
    }
  }
  return 0;
}
