#pragma once

// Prometheus histograms and counters in the text exposition format (Debian 12 has no
// prometheus-cpp): what the proxier exports on the agent's /metrics.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace skiff::endpoints {

class Histogram {
 public:
  // `bounds`: ascending upper bounds of the buckets (an implicit +Inf follows).
  explicit Histogram(std::vector<double> bounds);

  void observe(double value);

  uint64_t count() const;
  double sum() const;
  // The q-quantile (0..1) as Prometheus' histogram_quantile estimates it: linear within the
  // bucket it falls in. 0 with no observations.
  double quantile(double q) const;
  // "# HELP name help\n# TYPE name histogram\nname_bucket{le=\"0.001\"} 3\n...", cumulative.
  std::string prometheusText(std::string_view name, std::string_view help) const;

 private:
  const std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; the last is +Inf
  uint64_t count_ = 0;
  double sum_ = 0;
};

// Network programming latency buckets, in seconds: 1 ms to 5 min (Kubernetes' own start at
// 250 ms, too coarse for a data path programmed in milliseconds).
std::vector<double> latencyBuckets();

// "# HELP ...\n# TYPE name counter\nname value\n".
std::string prometheusCounter(std::string_view name, std::string_view help, double value);
std::string prometheusGauge(std::string_view name, std::string_view help, double value);

}  // namespace skiff::endpoints
