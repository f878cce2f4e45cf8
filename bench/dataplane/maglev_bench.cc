// Maglev table construction: what the proxier pays per service it programs. The targets it feeds:
// one change programmed in <= 1 ms with 10,000 services present, all 10,000 (x 10 backends) in
// <= 1 s.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "dataplane/maglev.h"

namespace {

using skiff::dataplane::buildMaglevTable;
using skiff::dataplane::changedPositions;
using skiff::dataplane::IpAddress;
using skiff::dataplane::MaglevBackend;
using skiff::dataplane::MaglevTable;

std::vector<MaglevBackend> makeBackends(int64_t n) {
  std::vector<MaglevBackend> out;
  for (int64_t i = 0; i < n; ++i) {
    out.push_back({{IpAddress::v4(0x0a010001u + static_cast<uint32_t>(i)), 8080},
                   1,
                   static_cast<uint32_t>(i)});
  }
  return out;
}

// Counters: tables built per second, and the time per table and per entry (printed in seconds
// with an SI prefix: "128u" is 128 microseconds).
void setCounters(benchmark::State& state, uint32_t tableSize) {
  const auto tables = static_cast<double>(state.iterations());
  state.counters["tables_per_s"] = benchmark::Counter(tables, benchmark::Counter::kIsRate);
  state.counters["per_table"] =
      benchmark::Counter(tables, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["per_entry"] = benchmark::Counter(
      tables * tableSize, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// Args: table size M, backends N.
void BM_MaglevBuild(benchmark::State& state) {
  const auto m = static_cast<uint32_t>(state.range(0));
  const std::vector<MaglevBackend> backends = makeBackends(state.range(1));
  for (auto _ : state) {
    auto table = buildMaglevTable(backends, m);
    if (!table.ok()) {
      state.SkipWithError(table.message().c_str());
      break;
    }
    benchmark::DoNotOptimize(table->data());
  }
  setCounters(state, m);
}
BENCHMARK(BM_MaglevBuild)
    ->ArgNames({"M", "N"})
    ->Args({1021, 10})
    ->Args({16381, 10})
    ->Args({16381, 100})
    ->Args({16381, 1000})
    ->Args({65537, 1000})
    ->Unit(benchmark::kMicrosecond);

// Service after service, as a full sync builds them: each table from another backend set (256
// sets, round robin). BM_MaglevBuild rebuilds one set, whose branches the CPU learns after a few
// tables; this is the figure a sync of many services sees (about twice BM_MaglevBuild's here).
void BM_MaglevBuildDistinctSets(benchmark::State& state) {
  const auto m = static_cast<uint32_t>(state.range(0));
  const auto n = static_cast<uint32_t>(state.range(1));
  std::vector<std::vector<MaglevBackend>> sets(256);
  for (uint32_t s = 0; s < sets.size(); ++s) {
    for (uint32_t i = 0; i < n; ++i) {
      // 10.s.x.y: every set's backends differ.
      sets[s].push_back({{IpAddress::v4(0x0a000000u + (s << 16) + i + 1), 8080}, 1, i});
    }
  }
  size_t next = 0;
  for (auto _ : state) {
    auto table = buildMaglevTable(sets[next], m);
    next = next + 1 == sets.size() ? 0 : next + 1;
    if (!table.ok()) {
      state.SkipWithError(table.message().c_str());
      break;
    }
    benchmark::DoNotOptimize(table->data());
  }
  setCounters(state, m);
}
BENCHMARK(BM_MaglevBuildDistinctSets)
    ->ArgNames({"M", "N"})
    ->Args({1021, 10})  // the size maglevTableSizeFor(10) picks
    ->Args({16381, 10})
    ->Args({16381, 100})
    ->Args({65537, 1000})
    ->Unit(benchmark::kMicrosecond);

// Weighted backends (weights 1..4) take the credit path with uneven turns.
void BM_MaglevBuildWeighted(benchmark::State& state) {
  const auto m = static_cast<uint32_t>(state.range(0));
  std::vector<MaglevBackend> backends = makeBackends(state.range(1));
  for (size_t i = 0; i < backends.size(); ++i)
    backends[i].weight = 1 + i % 4;
  for (auto _ : state) {
    auto table = buildMaglevTable(backends, m);
    benchmark::DoNotOptimize(table->data());
  }
  setCounters(state, m);
}
BENCHMARK(BM_MaglevBuildWeighted)
    ->ArgNames({"M", "N"})
    ->Args({16381, 10})
    ->Args({16381, 100})
    ->Unit(benchmark::kMicrosecond);

// One backend of N leaves: rebuild and diff against the programmed table, the work of one
// endpoint change before the map writer runs.
void BM_MaglevRebuildAndDiff(benchmark::State& state) {
  const auto m = static_cast<uint32_t>(state.range(0));
  const std::vector<MaglevBackend> all = makeBackends(state.range(1));
  const MaglevTable before = *buildMaglevTable(all, m);
  const std::vector<MaglevBackend> rest(all.begin() + 1, all.end());
  size_t changed = 0;
  for (auto _ : state) {
    auto after = buildMaglevTable(rest, m);
    std::vector<uint32_t> positions = changedPositions(before, *after);
    changed = positions.size();
    benchmark::DoNotOptimize(positions.data());
  }
  setCounters(state, m);
  state.counters["changed_positions"] = static_cast<double>(changed);
}
BENCHMARK(BM_MaglevRebuildAndDiff)
    ->ArgNames({"M", "N"})
    ->Args({16381, 10})
    ->Args({65537, 1000})
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
