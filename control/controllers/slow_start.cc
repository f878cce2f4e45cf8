#include "control/controllers/slow_start.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

namespace skiff::controllers {

ParallelResult runParallel(int count, int max_parallel, const std::function<void(int)>& fn) {
  ParallelResult result;
  if (count <= 0) return result;
  std::atomic<int> next{0};
  std::mutex mu;
  auto work = [&] {
    for (int i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
      try {
        fn(i);
      } catch (...) {
        std::lock_guard lock(mu);
        ++result.failures;
        if (!result.first_error) result.first_error = std::current_exception();
      }
    }
  };
  const int threads = std::clamp(max_parallel, 1, count);
  std::vector<std::thread> helpers;
  helpers.reserve(static_cast<size_t>(threads - 1));
  for (int t = 1; t < threads; ++t)
    helpers.emplace_back(work);
  work();
  for (auto& h : helpers)
    h.join();
  return result;
}

int slowStartBatch(int index) {
  int batch = 0;
  for (int size = 1; index >= size; size *= 2) {
    index -= size;
    ++batch;
  }
  return batch;
}

}  // namespace skiff::controllers
