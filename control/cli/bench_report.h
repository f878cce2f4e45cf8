#pragma once

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

// Small pieces every `skiff bench` command reports with.

namespace skiff::cli {

// The nearest-rank percentile (fraction in [0, 1]) of `values`; 0 when there are none.
inline double percentileMs(std::vector<double> values, double fraction) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t index = static_cast<size_t>(fraction * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

// A figure as JSON and the tables print it: six significant digits.
inline std::string benchNumber(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.6g", value);
  return buffer;
}

}  // namespace skiff::cli
