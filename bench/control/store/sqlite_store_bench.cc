// The embedded store's figures: acknowledged writes per second and their latency with 1, 16 and
// 256 concurrent writers (fsync on: every acknowledged write is on disk), and watch events
// delivered per second to 1,000 watchers of one prefix.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "control/store/sqlite_store.h"
#include "control/store/workload.h"

namespace skiff::store {
namespace {

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

// Every writer updates its own keys (no conflicts) with 1 KiB values, as fast as the store
// acknowledges. Argument "history": updates written before measuring, so that the database, its
// index and its write-ahead log are past their first, fast growth (checkpoints included).
void BM_AckedWrites(benchmark::State& state) {
  const int writers = static_cast<int>(state.range(0));
  const int history = static_cast<int>(state.range(1));
  const int writes_per_writer = std::max(25, (writers == 1 ? 1000 : 8000) / writers);
  TempDir dir;
  SqliteOptions options;
  options.path = dir.file("store.db");
  options.fsync = true;
  auto store = SqliteStore::open(options);
  const workload::WriteLoad load{.writers = writers, .writes_per_writer = writes_per_writer};
  workload::prepareWrites(*store, load);
  workload::writeHistory(*store, load, history);

  const SqliteStats before = store->stats();
  std::vector<double> latencies_ms;
  int64_t total_writes = 0;
  double total_seconds = 0;
  double total_cpu_seconds = 0;
  for (auto _ : state) {
    workload::WriteFigures run = workload::measureWrites(*store, load);
    state.SetIterationTime(run.seconds);
    total_seconds += run.seconds;
    total_cpu_seconds += run.cpu_seconds;
    total_writes += run.writes;
    latencies_ms.insert(latencies_ms.end(), run.latencies_ms.begin(), run.latencies_ms.end());
  }
  const SqliteStats after = store->stats();
  auto per = [](uint64_t part, uint64_t whole) {
    return static_cast<double>(part) / static_cast<double>(std::max<uint64_t>(whole, 1));
  };
  state.counters["writes_per_s"] = static_cast<double>(total_writes) / total_seconds;
  state.counters["p50_ms"] = workload::percentile(latencies_ms, 0.50);
  state.counters["p99_ms"] = workload::percentile(latencies_ms, 0.99);
  // CPU the process spent per write, all threads together: steadier than the rate on a shared
  // machine.
  state.counters["cpu_us_per_write"] = total_cpu_seconds * 1e6 / static_cast<double>(total_writes);
  state.counters["writes_per_commit"] =
      per(after.writes - before.writes, after.commits - before.commits);
  state.counters["writes_per_fsync"] =
      per(after.writes - before.writes, after.syncs - before.syncs);
  // Pages written to the log per write (each is written again by a checkpoint).
  state.counters["wal_pages_per_write"] =
      per(after.wal_frames - before.wal_frames, after.writes - before.writes);
  // The writer's catch-up checkpoints (the log starting over) and the ms it spent on them
  // applying no write, per second of the run.
  state.counters["catch_ups"] = static_cast<double>(after.catch_ups - before.catch_ups);
  state.counters["catch_up_ms_per_s"] =
      static_cast<double>(after.catch_up_us - before.catch_up_us) / 1e3 / total_seconds;
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
  const workload::WatchLoad load{.live = live};
  workload::prepareWatch(*store, load);
  int64_t delivered = 0;
  double seconds = 0;
  for (auto _ : state) {
    workload::WatchFigures run = workload::measureWatchFanout(*store, load);
    state.SetIterationTime(run.seconds);
    seconds += run.seconds;
    delivered += run.delivered;
  }
  state.counters["events_per_s"] = static_cast<double>(delivered) / seconds;
  state.SetLabel(std::string(live ? "live" : "backlog") + ", " + std::to_string(load.watchers) +
                 " watchers, " + std::to_string(load.consumers) + " consumer threads");
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
