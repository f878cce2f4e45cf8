#include "control/api/time.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace skiff::api {
namespace {

bool digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
int64_t daysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool isLeap(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int daysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && isLeap(y) ? 29 : kDays[m - 1];
}

std::optional<Timestamp> failTime(std::string* error, std::string_view text, const char* why) {
  if (error != nullptr) {
    *error = "invalid time \"" + std::string(text) + "\": " + why +
             " (expected RFC 3339, e.g. 2006-01-02T15:04:05Z)";
  }
  return std::nullopt;
}

}  // namespace

std::optional<Timestamp> parseRfc3339(std::string_view s, std::string* error) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!digits(s, 0, 4, year) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, month) ||
      s[7] != '-' || !digits(s, 8, 2, day) || (s[10] != 'T' && s[10] != 't') ||
      !digits(s, 11, 2, hour) || s[13] != ':' || !digits(s, 14, 2, minute) || s[16] != ':' ||
      !digits(s, 17, 2, second)) {
    return failTime(error, s, "malformed date or time");
  }
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 ||
      minute > 59 || second > 59) {
    return failTime(error, s, "field out of range");
  }
  size_t pos = 19;
  int32_t nanos = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    size_t start = pos;
    int64_t frac = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (pos - start < 9) frac = frac * 10 + (s[pos] - '0');
      ++pos;
    }
    if (pos == start) return failTime(error, s, "no digits after '.'");
    for (size_t n = pos - start; n < 9; ++n)
      frac *= 10;
    nanos = static_cast<int32_t>(frac);
  }
  int offset = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh = 0, om = 0;
    if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !digits(s, pos + 4, 2, om) || oh > 23 || om > 59) {
      return failTime(error, s, "malformed time zone offset");
    }
    offset = (oh * 60 + om) * 60 * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return failTime(error, s, "missing time zone (Z or +hh:mm)");
  }
  if (pos != s.size()) return failTime(error, s, "unexpected characters after the time zone");
  int64_t days = daysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  return Timestamp{days * 86400 + hour * 3600 + minute * 60 + second - offset, nanos};
}

std::string formatRfc3339(const Timestamp& t, bool micros) {
  time_t secs = static_cast<time_t>(t.seconds);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  if (micros) {
    std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, t.nanos / 1000);
  } else {
    std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  }
  return buf;
}

std::optional<int64_t> parseGoDuration(std::string_view s, std::string* error) {
  auto fail = [&](const char* why) -> std::optional<int64_t> {
    if (error != nullptr) *error = "invalid duration \"" + std::string(s) + "\": " + why;
    return std::nullopt;
  };
  std::string_view rest = s;
  bool negative = false;
  if (!rest.empty() && (rest.front() == '-' || rest.front() == '+')) {
    negative = rest.front() == '-';
    rest.remove_prefix(1);
  }
  if (rest == "0") return 0;
  if (rest.empty()) return fail("empty");
  long double total = 0;
  while (!rest.empty()) {
    size_t i = 0;
    long double value = 0;
    bool any = false;
    while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') {
      value = value * 10 + (rest[i] - '0');
      ++i;
      any = true;
    }
    if (i < rest.size() && rest[i] == '.') {
      ++i;
      long double scale = 0.1L;
      while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') {
        value += (rest[i] - '0') * scale;
        scale /= 10;
        ++i;
        any = true;
      }
    }
    if (!any) return fail("expected a number");
    size_t unit_start = i;
    while (i < rest.size() && !(rest[i] >= '0' && rest[i] <= '9') && rest[i] != '.')
      ++i;
    std::string_view unit = rest.substr(unit_start, i - unit_start);
    long double mult = 0;
    if (unit == "ns") {
      mult = 1;
    } else if (unit == "us" || unit == "\xc2\xb5s" || unit == "\xce\xbcs") {
      mult = 1e3L;
    } else if (unit == "ms") {
      mult = 1e6L;
    } else if (unit == "s") {
      mult = 1e9L;
    } else if (unit == "m") {
      mult = 60e9L;
    } else if (unit == "h") {
      mult = 3600e9L;
    } else if (unit.empty()) {
      return fail("missing unit");
    } else {
      return fail("unknown unit");
    }
    total += value * mult;
    if (total > 9.2233720368547758e18L) return fail("overflows 64-bit nanoseconds");
    rest.remove_prefix(i);
  }
  auto n = static_cast<int64_t>(total + 0.5L);
  return negative ? -n : n;
}

std::string formatGoDuration(int64_t nanos) {
  if (nanos == 0) return "0s";
  bool negative = nanos < 0;
  uint64_t u = negative ? 0 - static_cast<uint64_t>(nanos) : static_cast<uint64_t>(nanos);
  std::string out;
  auto fraction = [](uint64_t v, int prec) {
    // v has `prec` digits of fraction; trailing zeros (and a bare point) are dropped.
    std::string digits_str;
    bool print = false;
    for (int i = 0; i < prec; ++i) {
      int digit = static_cast<int>(v % 10);
      print = print || digit != 0;
      if (print) digits_str.insert(digits_str.begin(), static_cast<char>('0' + digit));
      v /= 10;
    }
    if (print) digits_str.insert(digits_str.begin(), '.');
    return std::make_pair(v, digits_str);
  };
  if (u < 1'000'000'000ULL) {
    // Below a second: ns, µs or ms with a fraction.
    int prec = 0;
    const char* unit = "ns";
    if (u < 1000ULL) {
      out = std::to_string(u) + "ns";
    } else {
      if (u < 1'000'000ULL) {
        prec = 3;
        unit = "\xc2\xb5s";
      } else {
        prec = 6;
        unit = "ms";
      }
      auto [whole, frac] = fraction(u, prec);
      out = std::to_string(whole) + frac + unit;
    }
  } else {
    auto [secs, frac] = fraction(u, 9);
    out = std::to_string(secs % 60) + frac + "s";
    uint64_t mins = secs / 60;
    if (mins > 0) {
      out = std::to_string(mins % 60) + "m" + out;
      uint64_t hours = mins / 60;
      if (hours > 0) out = std::to_string(hours) + "h" + out;
    }
  }
  return negative ? "-" + out : out;
}

Timestamp now() {
  auto d = std::chrono::system_clock::now().time_since_epoch();
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(d);
  auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(d - secs);
  return Timestamp{secs.count(), static_cast<int32_t>(nanos.count())};
}

}  // namespace skiff::api
