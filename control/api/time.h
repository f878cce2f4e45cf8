#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace skiff::api {

// A point in time as seconds and nanoseconds since the Unix epoch (UTC).
struct Timestamp {
  int64_t seconds = 0;
  int32_t nanos = 0;
  friend bool operator==(const Timestamp&, const Timestamp&) = default;
};

// Parses RFC 3339 ("2024-01-02T03:04:05Z", "2024-01-02T03:04:05.123+02:00"), as Go's time.RFC3339
// accepts it. Returns nullopt and sets `error` on malformed input.
std::optional<Timestamp> parseRfc3339(std::string_view text, std::string* error = nullptr);

// Formats in UTC as meta/v1.Time does ("2024-01-02T03:04:05Z", seconds precision) or, with
// `micros`, as meta/v1.MicroTime does ("2024-01-02T03:04:05.000000Z").
std::string formatRfc3339(const Timestamp& t, bool micros = false);

// Parses a Go duration ("1h2m3.5s", "300ms", "-1.5h"); returns nanoseconds.
std::optional<int64_t> parseGoDuration(std::string_view text, std::string* error = nullptr);
// Formats nanoseconds as Go's time.Duration.String() does ("1h2m3.5s", "300ms", "0s").
std::string formatGoDuration(int64_t nanos);

// The current wall-clock time.
Timestamp now();

}  // namespace skiff::api
