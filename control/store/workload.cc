#include "control/store/workload.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace skiff::store::workload {
namespace {

using Clock = std::chrono::steady_clock;

std::string keyOf(const WriteLoad& load, int writer, int slot) {
  return load.prefix + "w" + std::to_string(writer) + "-" + std::to_string(slot);
}

std::string watchKey(const WatchLoad& load, int i) {
  return load.prefix + "default/pod-" + std::to_string(i % load.keys);
}

// Runs `body(thread)` on `count` threads at once; rethrows the first exception.
template <typename Body>
void onThreads(int count, Body&& body) {
  std::mutex mu;
  std::exception_ptr failure;
  std::vector<std::thread> threads;
  for (int t = 0; t < count; ++t) {
    threads.emplace_back([&, t] {
      try {
        body(t);
      } catch (...) {
        std::lock_guard lock(mu);
        if (!failure) failure = std::current_exception();
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace

double processCpuSeconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  const size_t index = std::min(values.size() - 1, static_cast<size_t>(p * values.size()));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index),
                   values.end());
  return values[index];
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

void prepareWrites(Store& store, const WriteLoad& load) {
  const std::string value(load.value_bytes, 'v');
  onThreads(std::min(load.writers, 64), [&](int t) {
    for (int w = t; w < load.writers; w += std::min(load.writers, 64)) {
      for (int k = 0; k < load.keys_per_writer; ++k) {
        if (!store.get(keyOf(load, w, k))) store.create(keyOf(load, w, k), value);
      }
    }
  });
}

void writeHistory(Store& store, const WriteLoad& load, int history) {
  const std::string value(load.value_bytes, 'v');
  const int threads = std::min(load.writers, 64);
  onThreads(threads, [&](int t) {
    for (int i = t; i < history; i += threads) {
      store.update(keyOf(load, i % load.writers, i % load.keys_per_writer), value, 0);
    }
  });
}

WriteFigures measureWrites(Store& store, const WriteLoad& load) {
  const std::string value(load.value_bytes, 'v');
  std::vector<std::vector<double>> per_writer(static_cast<size_t>(load.writers));
  // Writers start together, blocked on a condition variable (not spinning) until then.
  std::mutex gate_mu;
  std::condition_variable gate;
  std::condition_variable arrived;
  int waiting = 0;
  bool go = false;
  Clock::time_point start;
  double cpu_start = 0;
  std::mutex failure_mu;
  std::exception_ptr failure;
  std::vector<std::thread> threads;
  for (int w = 0; w < load.writers; ++w) {
    threads.emplace_back([&, w] {
      auto& mine = per_writer[static_cast<size_t>(w)];
      mine.reserve(static_cast<size_t>(load.writes_per_writer));
      {
        std::unique_lock lock(gate_mu);
        ++waiting;
        arrived.notify_one();
        gate.wait(lock, [&] { return go; });
      }
      try {
        for (int i = 0; i < load.writes_per_writer; ++i) {
          const auto begin = Clock::now();
          store.update(keyOf(load, w, i % load.keys_per_writer), value, 0);
          mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - begin).count());
        }
      } catch (...) {
        std::lock_guard lock(failure_mu);
        if (!failure) failure = std::current_exception();
      }
    });
  }
  {
    std::unique_lock lock(gate_mu);
    arrived.wait(lock, [&] { return waiting == load.writers; });
    go = true;
    start = Clock::now();
    cpu_start = processCpuSeconds();
  }
  gate.notify_all();
  for (auto& thread : threads) {
    thread.join();
  }
  if (failure) std::rethrow_exception(failure);
  WriteFigures figures;
  figures.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  figures.cpu_seconds = processCpuSeconds() - cpu_start;
  figures.writes = static_cast<int64_t>(load.writers) * load.writes_per_writer;
  figures.writes_per_second = static_cast<double>(figures.writes) / figures.seconds;
  for (auto& mine : per_writer) {
    figures.latencies_ms.insert(figures.latencies_ms.end(), mine.begin(), mine.end());
  }
  figures.p50_ms = percentile(figures.latencies_ms, 0.50);
  figures.p99_ms = percentile(figures.latencies_ms, 0.99);
  return figures;
}

void prepareWatch(Store& store, const WatchLoad& load) {
  for (int i = 0; i < load.keys; ++i) {
    if (!store.get(watchKey(load, i))) store.create(watchKey(load, i), "initial");
  }
}

namespace {

// Consumer threads drain their share of the watchers, polling each without blocking, until every
// watcher has `events` events.
void drain(std::vector<WatchPtr>& watches, const WatchLoad& load) {
  onThreads(load.consumers, [&](int c) {
    std::vector<Event> out;
    std::vector<int64_t> received(watches.size(), 0);
    size_t unfinished = 0;
    for (size_t w = static_cast<size_t>(c); w < watches.size(); w += load.consumers) {
      ++unfinished;
    }
    const auto deadline = Clock::now() + std::chrono::minutes(5);
    while (unfinished > 0) {
      bool any = false;
      for (size_t w = static_cast<size_t>(c); w < watches.size(); w += load.consumers) {
        if (received[w] >= load.events) continue;
        out.clear();
        if (!watches[w]->next(out, std::chrono::milliseconds(0))) {
          throw std::runtime_error(
              "watch " + std::to_string(w) + " ended after " + std::to_string(received[w]) +
              " events: " + (watches[w]->error() ? watches[w]->error()->what() : "cancelled"));
        }
        received[w] += static_cast<int64_t>(out.size());
        any = any || !out.empty();
        if (received[w] >= load.events) --unfinished;
      }
      if (!any) {
        // Nothing anywhere: leave the CPU to the store (and its server) for a moment.
        if (Clock::now() > deadline) throw std::runtime_error("watch events stopped coming");
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
  });
}

void writeEvents(Store& store, const WatchLoad& load) {
  const std::string value(load.value_bytes, 'p');
  onThreads(load.writers, [&](int w) {
    for (int i = w; i < load.events; i += load.writers) {
      store.update(watchKey(load, i), value, 0);
    }
  });
}

}  // namespace

WatchFigures measureWatchFanout(Store& store, const WatchLoad& load) {
  std::vector<WatchPtr> watches;
  watches.reserve(static_cast<size_t>(load.watchers));
  const auto setup_start = Clock::now();
  for (int w = 0; w < load.watchers; ++w) {
    watches.push_back(store.watch(load.prefix, 0));
  }
  const double setup_seconds = std::chrono::duration<double>(Clock::now() - setup_start).count();
  Clock::time_point start;
  if (load.live) {
    start = Clock::now();
    std::exception_ptr failure;
    std::thread writer([&] {
      try {
        writeEvents(store, load);
      } catch (...) {
        failure = std::current_exception();
      }
    });
    try {
      drain(watches, load);
    } catch (...) {
      writer.join();
      throw;
    }
    writer.join();
    if (failure) std::rethrow_exception(failure);
  } else {
    writeEvents(store, load);
    start = Clock::now();
    drain(watches, load);
  }
  WatchFigures figures;
  figures.setup_seconds = setup_seconds;
  figures.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  figures.delivered = static_cast<int64_t>(load.watchers) * load.events;
  figures.events_per_second = static_cast<double>(figures.delivered) / figures.seconds;
  return figures;
}

}  // namespace skiff::store::workload
