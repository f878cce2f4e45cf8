#include "control/api/quantity.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <ostream>

namespace skiff::api {
namespace {

__extension__ typedef __int128 I128;
__extension__ typedef unsigned __int128 U128;

using Format = Quantity::Format;

// Most significant digits a mantissa holds: every |mantissa| < 10^38 fits an __int128.
constexpr int kMaxDigits = 38;
// Parsing rounds to nano; nothing finer is ever stored.
constexpr int64_t kMinScale = -9;
// Kubernetes' Scale is an int32.
constexpr int64_t kMaxScale = std::numeric_limits<int32_t>::max();
// Exponents beyond this magnitude all mean the same thing (rounded to 1n, or out of range), so
// they are clamped before any arithmetic on them can overflow.
constexpr int64_t kExponentClamp = int64_t{1} << 62;
// Parsing caps a binary SI value at this magnitude, as Kubernetes does.
constexpr uint64_t kMaxInt64 = std::numeric_limits<int64_t>::max();

constexpr std::array<U128, kMaxDigits + 1> makePowersOf10() {
  std::array<U128, kMaxDigits + 1> powers{};
  powers[0] = 1;
  for (size_t i = 1; i < powers.size(); ++i)
    powers[i] = powers[i - 1] * 10;
  return powers;
}
constexpr std::array<U128, kMaxDigits + 1> kPow10 = makePowersOf10();

constexpr std::string_view kFormatWrong =
    "quantities must match the regular expression "
    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
constexpr std::string_view kSuffixWrong = "unable to parse quantity's suffix";

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

// The input as it appears in error messages: quoted, control and non-ASCII bytes escaped, and cut
// short when long.
std::string quoted(std::string_view text) {
  constexpr size_t kShown = 64;
  std::string out = "\"";
  for (size_t i = 0; i < text.size() && i < kShown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      std::array<char, 5> buf{};
      std::snprintf(buf.data(), buf.size(), "\\x%02x", c);
      out += buf.data();
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > kShown) out += "...";
  out += '"';
  return out;
}

U128 magnitude(I128 m) {
  return m < 0 ? U128{0} - static_cast<U128>(m) : static_cast<U128>(m);
}

// The number of decimal digits of v > 0 (39 for v >= 10^38).
int64_t digitCount(U128 v) {
  int64_t n = 1;
  while (n <= kMaxDigits && v >= kPow10[static_cast<size_t>(n)])
    ++n;
  return n;
}

std::string toDecimal(U128 v) {
  std::array<char, 40> buf{};
  size_t pos = buf.size();
  do {
    buf[--pos] = static_cast<char>('0' + static_cast<int>(v % 10));
    v /= 10;
  } while (v != 0);
  return std::string(buf.data() + pos, buf.size() - pos);
}

// v * 10^n, or false when that does not fit a U128.
bool mulPow10(U128& v, int64_t n) {
  if (v == 0 || n == 0) return true;
  if (n > kMaxDigits) return false;
  return !__builtin_mul_overflow(v, kPow10[static_cast<size_t>(n)], &v);
}

// A normalized value: mantissa without trailing zeros, |mantissa| < 10^38, scale within range.
struct Normalized {
  I128 mantissa = 0;
  int32_t scale = 0;
};

// Normalizes +-magnitude * 10^scale; nullopt (with `why`) when it does not fit.
std::optional<Normalized> normalize(bool negative, U128 magnitude, int64_t scale,
                                    std::string* why) {
  if (magnitude == 0) return Normalized{};
  // Strip trailing zeros, 19 at a time where possible so large values take few divisions.
  constexpr uint64_t kPow10_19 = 10'000'000'000'000'000'000u;
  while (magnitude % kPow10_19 == 0) {
    magnitude /= kPow10_19;
    scale += 19;
  }
  while (magnitude % 10 == 0) {
    magnitude /= 10;
    ++scale;
  }
  if (magnitude >= kPow10[kMaxDigits]) {
    if (why != nullptr) *why = "more than 38 significant digits";
    return std::nullopt;
  }
  if (scale > kMaxScale) {
    if (why != nullptr) *why = "exponent out of range (the largest is 10^2147483647)";
    return std::nullopt;
  }
  const auto m = static_cast<I128>(magnitude);
  return Normalized{negative ? -m : m, static_cast<int32_t>(scale)};
}

// +-magnitude * 10^shift rounded away from zero to an integer, or nullopt when it does not fit
// an int64.
std::optional<int64_t> roundedInt64(bool negative, U128 magnitude, int64_t shift) {
  if (magnitude == 0) return 0;
  if (shift >= 0) {
    if (!mulPow10(magnitude, shift)) return std::nullopt;
  } else if (-shift > kMaxDigits) {
    magnitude = 1;  // |mantissa| < 10^38 <= 10^-shift: below one unit, rounded up to one
  } else {
    const U128 divisor = kPow10[static_cast<size_t>(-shift)];
    const bool inexact = magnitude % divisor != 0;
    magnitude = magnitude / divisor + (inexact ? 1 : 0);
  }
  const U128 limit = U128{kMaxInt64} + (negative ? 1 : 0);
  if (magnitude > limit) return std::nullopt;
  const auto low = static_cast<uint64_t>(magnitude);
  return negative ? static_cast<int64_t>(uint64_t{0} - low) : static_cast<int64_t>(low);
}

// --- decimal digit strings, for parsing inputs of any length ---

// digits *= factor (factor <= 10^8).
void mulSmall(std::string& digits, uint32_t factor) {
  uint64_t carry = 0;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    const uint64_t v = static_cast<uint64_t>(*it - '0') * factor + carry;
    *it = static_cast<char>('0' + v % 10);
    carry = v / 10;
  }
  std::string head;
  for (; carry != 0; carry /= 10)
    head.insert(head.begin(), static_cast<char>('0' + carry % 10));
  digits.insert(0, head);
}

// digits += 1.
void increment(std::string& digits) {
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    if (*it != '9') {
      ++*it;
      return;
    }
    *it = '0';
  }
  digits.insert(digits.begin(), '1');
}

// digits /= divisor, returning the remainder; the quotient keeps no leading zeros ("0" for 0).
uint32_t divSmall(std::string& digits, uint32_t divisor) {
  std::string quotient;
  quotient.reserve(digits.size());
  uint64_t rest = 0;
  for (char c : digits) {
    rest = rest * 10 + static_cast<uint64_t>(c - '0');
    const auto q = static_cast<char>('0' + rest / divisor);
    if (!quotient.empty() || q != '0') quotient += q;
    rest %= divisor;
  }
  digits = quotient.empty() ? "0" : std::move(quotient);
  return static_cast<uint32_t>(rest);
}

U128 digitsValue(std::string_view digits) {  // at most 38 digits
  U128 v = 0;
  for (char c : digits)
    v = v * 10 + static_cast<U128>(c - '0');
  return v;
}

// --- suffixes ---

struct Suffix {
  int64_t exponent = 0;  // of 10, or of 2 for binary SI
  Format format = Format::kDecimalSI;
};

// [eEinumkKMGTP]*[-+]?[0-9]*: what Kubernetes' scanner lets through before looking the suffix up.
bool suffixShapeOk(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && std::string_view("eEinumkKMGTP").find(s[i]) != std::string_view::npos) {
    ++i;
  }
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  while (i < s.size() && isDigit(s[i]))
    ++i;
  return i == s.size();
}

// A signed decimal integer as Go's strconv.ParseInt(s, 10, 64) reads it.
std::optional<int64_t> parseInt64(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (!isDigit(c)) return std::nullopt;
    if (__builtin_mul_overflow(v, uint64_t{10}, &v) ||
        __builtin_add_overflow(v, static_cast<uint64_t>(c - '0'), &v)) {
      return std::nullopt;
    }
  }
  if (v > kMaxInt64 + (negative ? 1 : 0)) return std::nullopt;
  return negative ? static_cast<int64_t>(uint64_t{0} - v) : static_cast<int64_t>(v);
}

std::optional<Suffix> interpretSuffix(std::string_view s) {
  if (s.empty()) return Suffix{0, Format::kDecimalSI};
  if (s.size() == 1) {
    switch (s[0]) {
      case 'n':
        return Suffix{-9, Format::kDecimalSI};
      case 'u':
        return Suffix{-6, Format::kDecimalSI};
      case 'm':
        return Suffix{-3, Format::kDecimalSI};
      case 'k':
        return Suffix{3, Format::kDecimalSI};
      case 'M':
        return Suffix{6, Format::kDecimalSI};
      case 'G':
        return Suffix{9, Format::kDecimalSI};
      case 'T':
        return Suffix{12, Format::kDecimalSI};
      case 'P':
        return Suffix{15, Format::kDecimalSI};
      case 'E':
        return Suffix{18, Format::kDecimalSI};
      default:
        return std::nullopt;
    }
  }
  if (s.size() == 2 && s[1] == 'i') {
    switch (s[0]) {
      case 'K':
        return Suffix{10, Format::kBinarySI};
      case 'M':
        return Suffix{20, Format::kBinarySI};
      case 'G':
        return Suffix{30, Format::kBinarySI};
      case 'T':
        return Suffix{40, Format::kBinarySI};
      case 'P':
        return Suffix{50, Format::kBinarySI};
      case 'E':
        return Suffix{60, Format::kBinarySI};
      default:
        return std::nullopt;
    }
  }
  if (s[0] == 'e' || s[0] == 'E') {
    auto exponent = parseInt64(s.substr(1));
    if (!exponent) return std::nullopt;
    return Suffix{*exponent, Format::kDecimalExponent};
  }
  return std::nullopt;
}

std::optional<std::string_view> decimalSuffix(int64_t exponent) {
  switch (exponent) {
    case -9:
      return "n";
    case -6:
      return "u";
    case -3:
      return "m";
    case 0:
      return "";
    case 3:
      return "k";
    case 6:
      return "M";
    case 9:
      return "G";
    case 12:
      return "T";
    case 15:
      return "P";
    case 18:
      return "E";
    default:
      return std::nullopt;
  }
}

constexpr std::array<std::string_view, 7> kBinarySuffixes = {"",   "Ki", "Mi", "Gi",
                                                             "Ti", "Pi", "Ei"};

}  // namespace

std::optional<Quantity> Quantity::parse(std::string_view text, std::string* error) {
  auto fail = [&](std::string_view why) -> std::optional<Quantity> {
    if (error != nullptr) *error = "invalid quantity " + quoted(text) + ": " + std::string(why);
    return std::nullopt;
  };

  // <sign>? <digits>? ( "." <digits>? )? <suffix>, with at least one digit in the number.
  size_t pos = 0;
  bool negative = false;
  if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    negative = text[pos] == '-';
    ++pos;
  }
  const size_t wholeStart = pos;
  while (pos < text.size() && isDigit(text[pos]))
    ++pos;
  const std::string_view whole = text.substr(wholeStart, pos - wholeStart);
  std::string_view fraction;
  if (pos < text.size() && text[pos] == '.') {
    const size_t fractionStart = ++pos;
    while (pos < text.size() && isDigit(text[pos]))
      ++pos;
    fraction = text.substr(fractionStart, pos - fractionStart);
  }
  const std::string_view suffixText = text.substr(pos);
  if ((whole.empty() && fraction.empty()) || !suffixShapeOk(suffixText)) return fail(kFormatWrong);
  const std::optional<Suffix> suffix = interpretSuffix(suffixText);
  if (!suffix) return fail(kSuffixWrong);
  Format format = suffix->format;
  const bool binary = format == Format::kBinarySI;

  // The value is digits * 10^exponent (times 2^suffix for binary SI, applied below).
  std::string digits;
  digits.reserve(whole.size() + fraction.size() + 20);
  digits.append(whole).append(fraction);
  const size_t first = digits.find_first_not_of('0');
  if (first == std::string::npos) return Quantity(0, 0, format);  // zero keeps its suffix's format
  digits.erase(0, first);
  int64_t exponent = binary ? 0 : std::clamp(suffix->exponent, -kExponentClamp, kExponentClamp);
  exponent -= static_cast<int64_t>(fraction.size());
  if (binary) {
    for (int64_t i = 0; i < suffix->exponent / 10; ++i)
      mulSmall(digits, 1024);
  }

  // Keep the value down to 1n, rounding what is finer away from zero.
  if (exponent < kMinScale) {
    const auto cut = static_cast<uint64_t>(kMinScale - exponent);
    if (cut >= digits.size()) {
      digits = "1";  // all of it is below 1n, and it is not zero
    } else {
      const size_t keep = digits.size() - static_cast<size_t>(cut);
      const bool inexact = digits.find_first_not_of('0', keep) != std::string::npos;
      digits.resize(keep);
      if (inexact) increment(digits);
    }
    exponent = kMinScale;
  }
  const size_t last = digits.find_last_not_of('0');
  exponent += static_cast<int64_t>(digits.size() - 1 - last);
  digits.resize(last + 1);

  if (binary) {
    // 10^(top-1) <= value < 10^top. Cap at 2^63-1; below 1 the format is DecimalSI.
    const int64_t top = static_cast<int64_t>(digits.size()) + exponent;
    bool capped = top > 19;
    if (!capped) {  // at most 28 digits here, as exponent >= -9
      U128 value = digitsValue(digits);
      U128 limit = kMaxInt64;
      mulPow10(value, std::max<int64_t>(exponent, 0));
      mulPow10(limit, std::max<int64_t>(-exponent, 0));
      capped = value > limit;
    }
    if (capped) {
      digits = std::to_string(kMaxInt64);
      exponent = 0;
    } else if (top <= 0) {
      format = Format::kDecimalSI;
    }
  }

  if (exponent > kMaxScale) return fail("exponent out of range (the largest is 10^2147483647)");
  if (digits.size() > static_cast<size_t>(kMaxDigits)) {
    return fail("more than 38 significant digits");
  }
  const auto m = static_cast<I128>(digitsValue(digits));
  return Quantity(negative ? -m : m, static_cast<int32_t>(exponent), format);
}

Quantity Quantity::mustParse(std::string_view text) {
  std::string error;
  auto q = parse(text, &error);
  if (!q) throw QuantityError(error);
  return *q;
}

Quantity Quantity::fromInt(int64_t value, Format format) {
  const auto n = normalize(value < 0, magnitude(value), 0, nullptr);
  return Quantity(n->mantissa, n->scale, format);
}

Quantity Quantity::fromMilli(int64_t milli, Format format) {
  const auto n = normalize(milli < 0, magnitude(milli), -3, nullptr);
  return Quantity(n->mantissa, n->scale, format);
}

Quantity Quantity::fromProto(const runtime::Quantity& proto) {
  if (!proto.has_string()) return Quantity();
  return mustParse(proto.string());
}

runtime::Quantity Quantity::toProto() const {
  runtime::Quantity proto;
  proto.set_string(toString());
  return proto;
}

std::string Quantity::toString() const {
  if (mantissa_ == 0) return "0";
  std::string out = mantissa_ < 0 ? "-" : "";
  const U128 mag = magnitude(mantissa_);
  int64_t exponent = scale_;
  Format format = format_;

  if (format == Format::kBinarySI) {
    // A fraction, or below 1024, is written as DecimalSI. A whole number is written with the
    // largest binary suffix that divides it, or in DecimalExponent when 1024^7 divides it (there
    // is no suffix beyond Ei; 10^70 and above always are such multiples).
    U128 whole = mag;
    const bool fits = exponent >= 0 && mulPow10(whole, exponent);
    if (exponent < 0 || (fits && whole < 1024)) {
      format = Format::kDecimalSI;
    } else if (fits) {
      size_t k = 0;
      for (; k < kBinarySuffixes.size() && (whole & 1023) == 0; ++k)
        whole >>= 10;
      if (k < kBinarySuffixes.size())
        return out + toDecimal(whole) + std::string(kBinarySuffixes[k]);
      format = Format::kDecimalExponent;
    } else if (exponent < 70) {
      std::string digits = toDecimal(mag) + std::string(static_cast<size_t>(exponent), '0');
      size_t k = 0;
      for (; k < kBinarySuffixes.size(); ++k) {
        std::string quotient = digits;
        if (divSmall(quotient, 1024) != 0) break;
        digits = std::move(quotient);
      }
      if (k < kBinarySuffixes.size()) return out + digits + std::string(kBinarySuffixes[k]);
      format = Format::kDecimalExponent;
    } else {
      format = Format::kDecimalExponent;
    }
  }

  // No fraction digits, and an exponent that is a multiple of 3.
  std::string digits = toDecimal(mag);
  const int64_t pad = ((exponent % 3) + 3) % 3;
  digits.append(static_cast<size_t>(pad), '0');
  exponent -= pad;
  if (format == Format::kDecimalSI) {
    // Beyond E (10^18) there is no suffix: such values fall back to an exponent.
    if (auto suffix = decimalSuffix(exponent)) return out + digits + std::string(*suffix);
  }
  out += digits;
  if (exponent != 0) out += "e" + std::to_string(exponent);
  return out;
}

int Quantity::cmp(const Quantity& other) const {
  const int a = sign();
  const int b = other.sign();
  if (a != b) return a < b ? -1 : 1;
  if (a == 0) return 0;
  if (scale_ == other.scale_) {
    return mantissa_ < other.mantissa_ ? -1 : (mantissa_ > other.mantissa_ ? 1 : 0);
  }
  U128 x = magnitude(mantissa_);
  U128 y = magnitude(other.mantissa_);
  // 10^(top-1) <= |value| < 10^top.
  const int64_t xTop = digitCount(x) + scale_;
  const int64_t yTop = digitCount(y) + other.scale_;
  int byMagnitude = 0;
  if (xTop != yTop) {
    byMagnitude = xTop < yTop ? -1 : 1;
  } else {
    // Equal tops: the scales differ by less than 38, so both align below 10^38.
    const int64_t base = std::min(scale_, other.scale_);
    mulPow10(x, scale_ - base);
    mulPow10(y, other.scale_ - base);
    byMagnitude = x < y ? -1 : (x > y ? 1 : 0);
  }
  return a > 0 ? byMagnitude : -byMagnitude;
}

void Quantity::add(const Quantity& y) {
  if (y.isZero()) {
    if (isZero()) format_ = y.format_;
    return;
  }
  if (isZero()) {
    *this = y;
    return;
  }
  const int64_t base = std::min(scale_, y.scale_);
  U128 a = magnitude(mantissa_);
  U128 b = magnitude(y.mantissa_);
  const bool aNegative = mantissa_ < 0;
  const bool bNegative = y.mantissa_ < 0;
  std::string why = "more than 38 significant digits";
  std::optional<Normalized> sum;
  // An operand that does not align below 2^128 makes a sum of at least 10^38: it cannot fit.
  if (mulPow10(a, scale_ - base) && mulPow10(b, y.scale_ - base)) {
    U128 total = 0;
    if (aNegative == bNegative) {
      if (!__builtin_add_overflow(a, b, &total)) sum = normalize(aNegative, total, base, &why);
    } else {
      sum = a >= b ? normalize(aNegative, a - b, base, &why)
                   : normalize(bNegative, b - a, base, &why);
    }
  }
  if (!sum) {
    throw QuantityError("quantity overflow: " + toString() + " + " + y.toString() + ": " + why);
  }
  mantissa_ = sum->mantissa;
  scale_ = sum->scale;
}

void Quantity::sub(const Quantity& y) {
  add(-y);
}

void Quantity::mul(int64_t factor) {
  if (isZero()) return;
  if (factor == 0) {
    mantissa_ = 0;
    scale_ = 0;
    return;
  }
  const bool negative = (mantissa_ < 0) != (factor < 0);
  U128 a = magnitude(mantissa_);
  auto f = static_cast<uint64_t>(magnitude(factor));
  int64_t scale = scale_;
  // Take the factors of 10 out first, also those split between the two, so that the product
  // overflows only when the exact result does not fit.
  for (; f % 10 == 0; f /= 10)
    ++scale;
  for (; f % 5 == 0 && a % 2 == 0; f /= 5, a /= 2)
    ++scale;
  for (; f % 2 == 0 && a % 5 == 0; f /= 2, a /= 5)
    ++scale;
  std::string why = "more than 38 significant digits";
  std::optional<Normalized> product;
  U128 p = 0;
  if (!__builtin_mul_overflow(a, U128{f}, &p)) product = normalize(negative, p, scale, &why);
  if (!product) {
    throw QuantityError("quantity overflow: " + toString() + " * " + std::to_string(factor) + ": " +
                        why);
  }
  mantissa_ = product->mantissa;
  scale_ = product->scale;
}

int64_t Quantity::scaledValue(int32_t scale) const {
  auto v = roundedInt64(mantissa_ < 0, magnitude(mantissa_), int64_t{scale_} - scale);
  if (!v) {
    throw QuantityError("quantity " + toString() + " does not fit an int64 in units of 10^" +
                        std::to_string(scale));
  }
  return *v;
}

std::optional<int64_t> Quantity::asInt64() const {
  if (scale_ < 0) return std::nullopt;  // a fraction: the mantissa has no trailing zeros
  return roundedInt64(mantissa_ < 0, magnitude(mantissa_), scale_);
}

double Quantity::approximate() const {
  // Powers of ten up to 10^22 are exact doubles, so within that range one rounding happens.
  static constexpr std::array<double, 23> kExact = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                                    1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                                    1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  const auto m = static_cast<double>(mantissa_);
  if (scale_ >= 0 && scale_ < static_cast<int32_t>(kExact.size())) {
    return m * kExact[static_cast<size_t>(scale_)];
  }
  if (scale_ < 0) return m / kExact[static_cast<size_t>(-scale_)];  // scale_ >= -9
  return m * std::pow(10.0, scale_);  // +-infinity beyond the double range
}

std::string_view formatName(Quantity::Format format) {
  switch (format) {
    case Format::kDecimalExponent:
      return "DecimalExponent";
    case Format::kBinarySI:
      return "BinarySI";
    case Format::kDecimalSI:
      return "DecimalSI";
  }
  return "DecimalSI";
}

std::ostream& operator<<(std::ostream& out, const Quantity& q) {
  return out << q.toString();
}

}  // namespace skiff::api
