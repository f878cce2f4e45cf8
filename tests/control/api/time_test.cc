#include "control/api/time.h"

#include <gtest/gtest.h>

namespace skiff::api {
namespace {

TEST(Time, ParsesRfc3339) {
  EXPECT_EQ(parseRfc3339("1970-01-01T00:00:00Z"), (Timestamp{0, 0}));
  EXPECT_EQ(parseRfc3339("2026-11-20T10:00:00Z")->seconds, 1795168800);
  EXPECT_EQ(parseRfc3339("2026-11-20T12:00:00+02:00")->seconds, 1795168800);
  EXPECT_EQ(parseRfc3339("2026-11-20T09:30:00-00:30")->seconds, 1795168800);
  EXPECT_EQ(parseRfc3339("2024-02-29T00:00:00.5Z"), (Timestamp{1709164800, 500000000}));
  EXPECT_EQ(parseRfc3339("2024-02-29T00:00:00.123456789123Z")->nanos, 123456789);
  EXPECT_EQ(parseRfc3339("1960-01-01T00:00:00Z")->seconds, -315619200);
}

TEST(Time, RejectsMalformedTimes) {
  std::string error;
  for (const char* bad :
       {"", "2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "2024-01-01 00:00:00Z",
        "2024-01-01T24:00:00Z", "2024-01-01T00:00:00", "2024-01-01T00:00:00.Z",
        "2024-01-01T00:00:00+0100", "2024-01-01T00:00:00Zjunk", "yesterday"}) {
    EXPECT_FALSE(parseRfc3339(bad, &error)) << bad;
    EXPECT_NE(error.find(bad), std::string::npos) << error;
  }
}

TEST(Time, Formats) {
  EXPECT_EQ(formatRfc3339({1795168800, 987654321}), "2026-11-20T10:00:00Z");
  EXPECT_EQ(formatRfc3339({1795168800, 987654321}, true), "2026-11-20T10:00:00.987654Z");
  EXPECT_EQ(formatRfc3339({-315619200, 0}), "1960-01-01T00:00:00Z");
}

TEST(Duration, ParsesAndFormatsAsGo) {
  EXPECT_EQ(parseGoDuration("1h2m3.5s"), 3723500000000);
  EXPECT_EQ(parseGoDuration("300ms"), 300000000);
  EXPECT_EQ(parseGoDuration("-1.5h"), -5400000000000);
  EXPECT_EQ(parseGoDuration("0"), 0);
  EXPECT_EQ(parseGoDuration("1us"), 1000);
  EXPECT_FALSE(parseGoDuration("5"));
  EXPECT_FALSE(parseGoDuration("5d"));
  EXPECT_FALSE(parseGoDuration(""));
  EXPECT_EQ(formatGoDuration(3723500000000), "1h2m3.5s");
  EXPECT_EQ(formatGoDuration(3600000000000), "1h0m0s");
  EXPECT_EQ(formatGoDuration(300000000), "300ms");
  EXPECT_EQ(formatGoDuration(1500), "1.5\xc2\xb5s");
  EXPECT_EQ(formatGoDuration(0), "0s");
  EXPECT_EQ(formatGoDuration(-90000000000), "-1m30s");
  for (int64_t n : {int64_t{1}, int64_t{999}, int64_t{1234567}, int64_t{86400000000000}}) {
    EXPECT_EQ(parseGoDuration(formatGoDuration(n)), n);
  }
}

}  // namespace
}  // namespace skiff::api
