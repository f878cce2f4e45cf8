// The embedded store's figures: acknowledged writes per second and their latency with 1, 16 and
// 256 concurrent writers (fsync on: every acknowledged write is on disk), and watch events
// delivered per second to 1,000 watchers of one prefix.
#include <benchmark/benchmark.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "control/store/sqlite_store.h"

namespace skiff::store {
namespace {

using Clock = std::chrono::steady_clock;

class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/skiff-store-bench-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) std::abort();
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code error;
    std::filesystem::remove_all(path_, error);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// CPU time of the whole process (every thread), in seconds.
double processCpuSeconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

double percentile(std::vector<double>& values, double p) {
  if (values.empty()) return 0;
  const size_t index = std::min(values.size() - 1, static_cast<size_t>(p * values.size()));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index),
                   values.end());
  return values[index];
}

std::string keyOf(int writer, int slot) {
  return "/registry/configmaps/bench/w" + std::to_string(writer) + "-" + std::to_string(slot);
}

// Runs `body(writer)` on `writers` threads at once.
template <typename Body>
void onThreads(int writers, Body&& body) {
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w)
    threads.emplace_back([&, w] { body(w); });
  for (auto& thread : threads)
    thread.join();
}

// Every writer updates its own keys (no conflicts) with 1 KiB values, as fast as the store
// acknowledges. Argument "history": updates written before measuring, so that the database, its
// index and its write-ahead log are past their first, fast growth (checkpoints included).
void BM_AckedWrites(benchmark::State& state) {
  const int writers = static_cast<int>(state.range(0));
  const int history = static_cast<int>(state.range(1));
  const int writes_per_writer = std::max(25, (writers == 1 ? 1000 : 8000) / writers);
  constexpr int kKeysPerWriter = 4;
  TempDir dir;
  SqliteOptions options;
  options.path = dir.file("store.db");
  options.fsync = true;
  auto store = SqliteStore::open(options);
  const std::string value(1024, 'v');
  onThreads(writers, [&](int w) {
    for (int k = 0; k < kKeysPerWriter; ++k)
      store->create(keyOf(w, k), value);
  });
  const int history_writers = std::min(writers, 64);
  onThreads(history_writers, [&](int w) {
    for (int i = w; i < history; i += history_writers) {
      store->update(keyOf(i % writers, i % kKeysPerWriter), value, 0);
    }
  });

  const SqliteStats before = store->stats();
  std::vector<double> latencies_ms;
  int64_t total_writes = 0;
  double total_seconds = 0;
  double total_cpu_seconds = 0;
  for (auto _ : state) {
    std::vector<std::vector<double>> per_writer(static_cast<size_t>(writers));
    // Writers start together, blocked on a condition variable (not spinning) until then.
    std::mutex gate_mu;
    std::condition_variable gate;
    std::condition_variable arrived;
    int waiting = 0;
    bool go = false;
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w) {
      threads.emplace_back([&, w] {
        auto& mine = per_writer[static_cast<size_t>(w)];
        mine.reserve(static_cast<size_t>(writes_per_writer));
        {
          std::unique_lock lock(gate_mu);
          ++waiting;
          arrived.notify_one();
          gate.wait(lock, [&] { return go; });
        }
        for (int i = 0; i < writes_per_writer; ++i) {
          const auto start = Clock::now();
          store->update(keyOf(w, i % kKeysPerWriter), value, 0);
          mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
        }
      });
    }
    {
      std::unique_lock lock(gate_mu);
      arrived.wait(lock, [&] { return waiting == writers; });
      go = true;
    }
    const auto start = Clock::now();
    const double cpu_start = processCpuSeconds();
    gate.notify_all();
    for (auto& thread : threads) {
      thread.join();
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    total_cpu_seconds += processCpuSeconds() - cpu_start;
    state.SetIterationTime(seconds);
    total_seconds += seconds;
    total_writes += static_cast<int64_t>(writers) * writes_per_writer;
    for (auto& mine : per_writer) {
      latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
    }
  }
  const SqliteStats after = store->stats();
  auto per = [](uint64_t part, uint64_t whole) {
    return static_cast<double>(part) / static_cast<double>(std::max<uint64_t>(whole, 1));
  };
  state.counters["writes_per_s"] = static_cast<double>(total_writes) / total_seconds;
  state.counters["p50_ms"] = percentile(latencies_ms, 0.50);
  state.counters["p99_ms"] = percentile(latencies_ms, 0.99);
  // CPU the process spent per write, all threads together: steadier than the rate on a shared
  // machine.
  state.counters["cpu_us_per_write"] = total_cpu_seconds * 1e6 / static_cast<double>(total_writes);
  state.counters["writes_per_commit"] =
      per(after.writes - before.writes, after.commits - before.commits);
  state.counters["writes_per_fsync"] =
      per(after.writes - before.writes, after.syncs - before.syncs);
  state.SetLabel("fsync on, 1 KiB values");
}
BENCHMARK(BM_AckedWrites)
    ->ArgNames({"writers", "history"})
    ->Args({1, 0})
    ->Args({16, 0})
    ->Args({256, 0})
    ->Args({256, 40000})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

constexpr int kWatchers = 1000;
constexpr int kEvents = 2000;
constexpr int kConsumers = 2;
const char* const kPrefix = "/registry/pods/";

// Consumer threads drain their share of the watchers, polling each without blocking, until every
// watcher has `events` events.
void drain(std::vector<WatchPtr>& watches, int64_t events) {
  std::vector<std::thread> consumers;
  for (int c = 0; c < kConsumers; ++c) {
    consumers.emplace_back([&, c] {
      std::vector<Event> out;
      std::vector<int64_t> received(watches.size(), 0);
      size_t unfinished = 0;
      for (size_t w = static_cast<size_t>(c); w < watches.size(); w += kConsumers) {
        ++unfinished;
      }
      while (unfinished > 0) {
        for (size_t w = static_cast<size_t>(c); w < watches.size(); w += kConsumers) {
          if (received[w] >= events) continue;
          out.clear();
          if (!watches[w]->next(out, std::chrono::milliseconds(0))) std::abort();
          received[w] += static_cast<int64_t>(out.size());
          benchmark::DoNotOptimize(out.data());
          if (received[w] >= events) --unfinished;
        }
      }
    });
  }
  for (auto& consumer : consumers) {
    consumer.join();
  }
}

void writeEvents(SqliteStore& store, int count, int writers) {
  const std::string value(256, 'p');
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      for (int i = w; i < count; i += writers) {
        store.update(std::string(kPrefix) + "default/pod-" + std::to_string(i % 100), value, 0);
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
}

// Events to 1,000 watchers of one prefix (updates of 256-byte values, so each event carries its
// previous value too). Arg 0 "backlog": the events are written first and the clock measures only
// their delivery; arg 1 "live": writers and consumers run together, the clock runs from the first
// write to the last delivery.
void BM_WatchFanout(benchmark::State& state) {
  const bool live = state.range(0) == 1;
  TempDir dir;
  SqliteOptions options;
  options.path = dir.file("store.db");
  options.fsync = false;  // the writes are not what is measured here
  auto store = SqliteStore::open(options);
  for (int i = 0; i < 100; ++i) {
    store->create(std::string(kPrefix) + "default/pod-" + std::to_string(i), "initial");
  }
  int64_t delivered = 0;
  double seconds = 0;
  for (auto _ : state) {
    std::vector<WatchPtr> watches;
    watches.reserve(kWatchers);
    for (int w = 0; w < kWatchers; ++w) {
      watches.push_back(store->watch(kPrefix, 0));
    }
    Clock::time_point start;
    if (live) {
      start = Clock::now();
      std::thread writer([&] { writeEvents(*store, kEvents, 8); });
      drain(watches, kEvents);
      writer.join();
    } else {
      writeEvents(*store, kEvents, 8);
      start = Clock::now();
      drain(watches, kEvents);
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    state.SetIterationTime(elapsed);
    seconds += elapsed;
    delivered += static_cast<int64_t>(kWatchers) * kEvents;
  }
  state.counters["events_per_s"] = static_cast<double>(delivered) / seconds;
  state.SetLabel(std::string(live ? "live" : "backlog") + ", 1000 watchers, " +
                 std::to_string(kConsumers) + " consumer threads");
}
BENCHMARK(BM_WatchFanout)
    ->ArgName("live")
    ->Arg(0)
    ->Arg(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace skiff::store

BENCHMARK_MAIN();
