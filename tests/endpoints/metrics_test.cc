#include "endpoints/metrics.h"

#include <gtest/gtest.h>

namespace skiff::endpoints {
namespace {

TEST(Histogram, CumulativeBucketsAndQuantiles) {
  Histogram h({0.01, 0.1, 1});
  for (double v : {0.005, 0.005, 0.05, 0.5, 5.0})
    h.observe(v);
  EXPECT_EQ(h.count(), 5u);
  EXPECT_DOUBLE_EQ(h.sum(), 5.56);
  EXPECT_EQ(h.prometheusText("x_seconds", "help"),
            "# HELP x_seconds help\n# TYPE x_seconds histogram\n"
            "x_seconds_bucket{le=\"0.01\"} 2\nx_seconds_bucket{le=\"0.1\"} 3\n"
            "x_seconds_bucket{le=\"1\"} 4\nx_seconds_bucket{le=\"+Inf\"} 5\n"
            "x_seconds_sum 5.56\nx_seconds_count 5\n");
  EXPECT_DOUBLE_EQ(h.quantile(0.4), 0.01);     // rank 2: the top of the first bucket
  EXPECT_NEAR(h.quantile(0.5), 0.055, 1e-12);  // rank 2.5: half way into (0.01, 0.1]
  EXPECT_DOUBLE_EQ(h.quantile(1.0), 1);        // +Inf: the highest finite bound
  EXPECT_DOUBLE_EQ(Histogram({1}).quantile(0.5), 0);
}

TEST(Metrics, CounterAndGauge) {
  EXPECT_EQ(prometheusCounter("a_total", "h", 3),
            "# HELP a_total h\n# TYPE a_total counter\na_total 3\n");
  EXPECT_EQ(prometheusGauge("g", "h", 1.5), "# HELP g h\n# TYPE g gauge\ng 1.5\n");
  // A timestamp keeps its seconds and its fraction (no exponent that drops digits).
  EXPECT_EQ(prometheusGauge("t", "h", 1700000011.25),
            "# HELP t h\n# TYPE t gauge\nt 1700000011.25\n");
  EXPECT_EQ(prometheusGauge("z", "h", 0.1), "# HELP z h\n# TYPE z gauge\nz 0.1\n");
}

}  // namespace
}  // namespace skiff::endpoints
