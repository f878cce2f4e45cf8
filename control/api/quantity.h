#pragma once

#include <compare>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "skiff/api/runtime.pb.h"

namespace skiff::api {

// Thrown by Quantity::mustParse() and fromProto() on malformed text, and by arithmetic and integer
// conversions whose exact result Quantity cannot hold.
class QuantityError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Kubernetes' resource.Quantity (k8s.io/apimachinery/pkg/api/resource): an exact decimal number
// with the format of the suffix it was written with.
//
// Text: a signed decimal number ("1", "-1.5", ".5", "5.") followed by one suffix: binary SI
// (Ki Mi Gi Ti Pi Ei), decimal SI (n u m "" k M G T P E) or a decimal exponent (e3, E-3, e+21).
// As in Kubernetes, parsing keeps the value down to 1n, rounding a finer non-zero value away from
// zero ("0.1n" -> 1n, "-0.1n" -> -1n), caps a binary SI value at 2^63-1 in magnitude ("8Ei" ->
// 9223372036854775807), and gives a binary SI value below 1 in magnitude the DecimalSI format.
//
// The value is mantissa * 10^scale with an exact 128-bit mantissa: up to 38 significant digits,
// any scale from -9 (nano) up to 2^31-1. Parsing, arithmetic and the integer conversions throw or
// fail with QuantityError where an exact result would need more; nothing rounds or wraps silently.
//
// Comparison is by value ("1Gi" == "1073741824", "1000m" == "1"); the format only decides how
// toString() writes the value. A value class: cheap to copy, no shared state.
class Quantity {
 public:
  // How toString() writes the value; parsing takes it from the suffix ("" is DecimalSI).
  enum class Format {
    kDecimalExponent,  // 12e6
    kBinarySI,         // 12Mi (12 * 2^20)
    kDecimalSI,        // 12M (12 * 10^6)
  };

  // Zero, DecimalSI.
  Quantity() = default;

  // Parses Kubernetes quantity text; no whitespace is allowed anywhere. On failure returns nullopt
  // and sets `error` (when given) to a message naming the input.
  static std::optional<Quantity> parse(std::string_view text, std::string* error = nullptr);
  // parse() that throws QuantityError instead.
  static Quantity mustParse(std::string_view text);

  // `value` units, and `milli` thousandths of a unit (Kubernetes' NewQuantity, NewMilliQuantity).
  static Quantity fromInt(int64_t value, Format format = Format::kDecimalSI);
  static Quantity fromMilli(int64_t milli, Format format = Format::kDecimalSI);

  // The wire form is the canonical text. fromProto() throws QuantityError on text that does not
  // parse; a message without the field is zero, as Kubernetes' protobuf decoder leaves it.
  static Quantity fromProto(const runtime::Quantity& proto);
  runtime::Quantity toProto() const;

  // The canonical text, as Kubernetes' Quantity.String() writes it for a value it did not parse:
  // no fractional digits, the largest suffix or exponent (a multiple of 3) that loses nothing.
  // "1.5Gi" -> "1536Mi", "0.5" -> "500m", "1000m" -> "1", "1.5Ki" -> "1536", "2e3" -> "2e3".
  std::string toString() const;

  Format format() const { return format_; }
  void setFormat(Format format) { format_ = format; }

  bool isZero() const { return mantissa_ == 0; }
  // -1, 0 or 1.
  int sign() const { return mantissa_ < 0 ? -1 : (mantissa_ > 0 ? 1 : 0); }

  // -1, 0 or 1 as *this is less than, equal to or greater than `other`, by value.
  int cmp(const Quantity& other) const;
  friend bool operator==(const Quantity& a, const Quantity& b) { return a.cmp(b) == 0; }
  friend std::weak_ordering operator<=>(const Quantity& a, const Quantity& b) {
    return a.cmp(b) <=> 0;
  }

  // In place, exactly, as Kubernetes' Add, Sub, Neg and Mul. The result keeps this quantity's
  // format, or takes `y`'s when this one is zero. Throw QuantityError when the exact result does
  // not fit (more than 38 significant digits, or beyond 10^(2^31-1)); *this is then unchanged.
  void add(const Quantity& y);
  void sub(const Quantity& y);
  void neg() { mantissa_ = -mantissa_; }
  void mul(int64_t factor);

  Quantity& operator+=(const Quantity& y) {
    add(y);
    return *this;
  }
  Quantity& operator-=(const Quantity& y) {
    sub(y);
    return *this;
  }
  friend Quantity operator+(Quantity a, const Quantity& b) { return a += b; }
  friend Quantity operator-(Quantity a, const Quantity& b) { return a -= b; }
  friend Quantity operator-(Quantity a) {
    a.neg();
    return a;
  }

  // The value rounded up, away from zero, to a whole number of units (Value()), of thousandths
  // (MilliValue()), or of 10^scale (ScaledValue(scale)): "1.1" -> 2, "-1.1" -> -2, "1n" -> 1
  // milli. Throw QuantityError when the result does not fit an int64.
  int64_t value() const { return scaledValue(0); }
  int64_t milliValue() const { return scaledValue(-3); }
  int64_t scaledValue(int32_t scale) const;
  // The value when it is a whole number that fits an int64 (AsInt64()), else nullopt.
  std::optional<int64_t> asInt64() const;
  // The nearest double, roughly; +-infinity beyond its range (AsApproximateFloat64()).
  double approximate() const;

 private:
  __extension__ typedef __int128 Int128;

  Quantity(Int128 mantissa, int32_t scale, Format format)
      : mantissa_(mantissa), scale_(scale), format_(format) {}

  // value = mantissa_ * 10^scale_. mantissa_ has no trailing zero digit, |mantissa_| < 10^38,
  // and scale_ >= -9; zero is mantissa_ 0 with scale_ 0.
  Int128 mantissa_ = 0;
  int32_t scale_ = 0;
  Format format_ = Format::kDecimalSI;
};

// "DecimalExponent", "BinarySI" or "DecimalSI", Kubernetes' names.
std::string_view formatName(Quantity::Format format);

// Writes toString().
std::ostream& operator<<(std::ostream& out, const Quantity& q);

}  // namespace skiff::api
