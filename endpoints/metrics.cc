#include "endpoints/metrics.h"

#include <algorithm>
#include <cstdio>

namespace skiff::endpoints {
namespace {

std::string number(double v) {
  char buf[64];
  // 15 significant digits: timestamps keep their fraction, 0.1 stays "0.1".
  std::snprintf(buf, sizeof(buf), "%.15g", v);
  return buf;
}

std::string header(std::string_view name, std::string_view help, std::string_view type) {
  return "# HELP " + std::string(name) + " " + std::string(help) + "\n# TYPE " + std::string(name) +
         " " + std::string(type) + "\n";
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  std::lock_guard lock(mutex_);
  size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) -
                                 bounds_.begin());
  ++counts_[i];
  ++count_;
  sum_ += value;
}

uint64_t Histogram::count() const {
  std::lock_guard lock(mutex_);
  return count_;
}

double Histogram::sum() const {
  std::lock_guard lock(mutex_);
  return sum_;
}

double Histogram::quantile(double q) const {
  std::lock_guard lock(mutex_);
  if (count_ == 0) return 0;
  const double rank = q * static_cast<double>(count_);
  uint64_t below = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    if (static_cast<double>(below + counts_[i]) >= rank && counts_[i] > 0) {
      if (i == bounds_.size()) return bounds_.empty() ? 0 : bounds_.back();  // +Inf bucket
      const double lower = i == 0 ? 0 : bounds_[i - 1];
      const double upper = bounds_[i];
      const double within = (rank - static_cast<double>(below)) / static_cast<double>(counts_[i]);
      return lower + (upper - lower) * std::clamp(within, 0.0, 1.0);
    }
    below += counts_[i];
  }
  return bounds_.empty() ? 0 : bounds_.back();
}

std::string Histogram::prometheusText(std::string_view name, std::string_view help) const {
  std::lock_guard lock(mutex_);
  std::string out = header(name, help, "histogram");
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += std::string(name) + "_bucket{le=\"" + number(bounds_[i]) + "\"} " +
           std::to_string(cumulative) + "\n";
  }
  out += std::string(name) + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  out += std::string(name) + "_sum " + number(sum_) + "\n";
  out += std::string(name) + "_count " + std::to_string(count_) + "\n";
  return out;
}

std::vector<double> latencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
}

std::string prometheusCounter(std::string_view name, std::string_view help, double value) {
  return header(name, help, "counter") + std::string(name) + " " + number(value) + "\n";
}

std::string prometheusGauge(std::string_view name, std::string_view help, double value) {
  return header(name, help, "gauge") + std::string(name) + " " + number(value) + "\n";
}

}  // namespace skiff::endpoints
