#pragma once

// Kubernetes' BoundedFrequencyRunner (pkg/util/async): runs a function on its own thread when
// asked, but never more often than a token bucket allows (a burst, then one run per minimum
// interval), and at least once per maximum interval even when nobody asks. A failed run asks for
// a retry after a delay.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace skiff::endpoints {

struct SyncRunnerOptions {
  // At most one run per minInterval once the burst is spent. 0: no limit.
  std::chrono::milliseconds minInterval{0};
  // A run at least this long after the previous one, asked for or not.
  std::chrono::milliseconds maxInterval{std::chrono::hours(1)};
  // Runs allowed back to back before minInterval applies.
  int burst = 2;
};

class BoundedFrequencyRunner {
 public:
  BoundedFrequencyRunner(std::function<void()> fn, SyncRunnerOptions options);
  // Stops.
  ~BoundedFrequencyRunner();
  BoundedFrequencyRunner(const BoundedFrequencyRunner&) = delete;
  BoundedFrequencyRunner& operator=(const BoundedFrequencyRunner&) = delete;

  // Starts the thread; the first run happens when asked (or after maxInterval).
  void start();
  // Joins the thread; a run in progress finishes first.
  void stop();

  // Asks for a run as soon as the rate limit allows. Calls while one is pending coalesce.
  void run();
  // Asks for a run no later than `delay` from now (still rate limited): for a failed run. May be
  // called from inside the function.
  void retryAfter(std::chrono::milliseconds delay);

  uint64_t runs() const;

 private:
  using Clock = std::chrono::steady_clock;
  void loop();
  // Whether a token is available at `now` (refilling the bucket); if not, when one will be.
  bool takeToken(Clock::time_point now, Clock::time_point& nextToken);

  std::function<void()> fn_;
  const SyncRunnerOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool pending_ = false;
  std::optional<Clock::time_point> retryAt_;
  Clock::time_point lastRun_;
  double tokens_;
  Clock::time_point lastRefill_;
  uint64_t runs_ = 0;
  uint64_t signals_ = 0;
  std::thread thread_;
};

}  // namespace skiff::endpoints
