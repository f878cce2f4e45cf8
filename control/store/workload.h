#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "control/store/store.h"

// The store's measurements, shared by the Google Benchmark binary (bench/control/store/) and
// `skiff bench store`: acknowledged writes with N concurrent writers, and watch events delivered
// to many watchers of one prefix. Works on any Store backend.
namespace skiff::store::workload {

struct WriteLoad {
  int writers = 1;
  int writes_per_writer = 1000;
  int keys_per_writer = 4;  // each writer updates its own keys in turn: no conflicts
  size_t value_bytes = 1024;
  std::string prefix = "/registry/configmaps/bench/";
};

struct WriteFigures {
  int64_t writes = 0;
  double seconds = 0;
  double writes_per_second = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double cpu_seconds = 0;  // of the whole process (the store's threads included)
  std::vector<double> latencies_ms;
};

// Creates every writer's keys (once per store and load; not measured).
void prepareWrites(Store& store, const WriteLoad& load);
// One run: every writer updates its keys writes_per_writer times, as fast as the store
// acknowledges; the writers start together. Throws what the store throws.
WriteFigures measureWrites(Store& store, const WriteLoad& load);
// `history` unmeasured updates, spread over the writers' keys (ages the database).
void writeHistory(Store& store, const WriteLoad& load, int history);

struct WatchLoad {
  int watchers = 1000;
  int events = 2000;  // updates written; each watcher receives all of them
  int writers = 8;    // threads writing them
  int consumers = 2;  // threads draining the watchers
  bool live = false;  // false: write first, then time only the delivery
  size_t value_bytes = 256;
  std::string prefix = "/registry/pods/";
  int keys = 100;  // updates cycle over this many keys
};

struct WatchFigures {
  double setup_seconds = 0;  // opening every watcher (not part of `seconds`)
  int64_t delivered = 0;
  double seconds = 0;
  double events_per_second = 0;
};

// Creates the keys the watch load updates (once per store).
void prepareWatch(Store& store, const WatchLoad& load);
// One run: opens the watchers, writes the events, and measures until every watcher had them all.
// Throws std::runtime_error when a watch ends early.
WatchFigures measureWatchFanout(Store& store, const WatchLoad& load);

double percentile(std::vector<double> values, double p);
double median(std::vector<double> values);
// CPU time of the whole process (every thread), in seconds.
double processCpuSeconds();

}  // namespace skiff::store::workload
