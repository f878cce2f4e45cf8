#include "control/api/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace skiff::api {

std::string Diagnostic::toString() const {
  std::string out;
  if (!source.empty()) {
    out += source;
    out += ':';
  }
  if (mark.known()) {
    out += std::to_string(mark.line);
    out += ':';
    out += std::to_string(mark.column);
    out += ':';
  }
  if (!out.empty()) out += ' ';
  if (!path.empty()) {
    out += path;
    out += ": ";
  }
  out += message;
  return out;
}

namespace {

std::string joinDiagnostics(const std::vector<Diagnostic>& diagnostics) {
  std::string out;
  for (const auto& d : diagnostics) {
    if (!out.empty()) out += '\n';
    out += d.toString();
  }
  return out;
}

// Parses a JSON number literal; sets is_int when it has no fraction or exponent and fits int64.
void resolveNumber(std::string_view text, bool& is_int, int64_t& i, double& d) {
  is_int = false;
  bool integral = text.find_first_of(".eE") == std::string_view::npos;
  if (integral) {
    std::string_view digits = text;
    if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), i);
    if (ec == std::errc() && ptr == digits.data() + digits.size()) {
      is_int = true;
      d = static_cast<double>(i);
      return;
    }
  }
  d = std::strtod(std::string(text).c_str(), nullptr);
  i = 0;
}

bool equalsAny(std::string_view s, std::initializer_list<std::string_view> options) {
  return std::find(options.begin(), options.end(), s) != options.end();
}

// YAML 1.1 integer forms that Kubernetes' YAML reader (go-yaml v2) resolves: decimal with an
// optional sign and underscores, 0x hex, 0o/leading-0 octal, 0b binary.
bool parseYamlInt(std::string_view s, int64_t& out) {
  std::string clean;
  clean.reserve(s.size());
  for (char c : s) {
    if (c != '_') clean += c;
  }
  if (clean.empty()) return false;
  bool negative = false;
  std::string_view body = clean;
  if (body.front() == '+' || body.front() == '-') {
    negative = body.front() == '-';
    body.remove_prefix(1);
  }
  if (body.empty()) return false;
  int base = 10;
  if (body.size() > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X')) {
    base = 16;
    body.remove_prefix(2);
  } else if (body.size() > 2 && body[0] == '0' && (body[1] == 'o' || body[1] == 'O')) {
    base = 8;
    body.remove_prefix(2);
  } else if (body.size() > 2 && body[0] == '0' && (body[1] == 'b' || body[1] == 'B')) {
    base = 2;
    body.remove_prefix(2);
  } else if (body.size() > 1 && body[0] == '0') {
    base = 8;
    body.remove_prefix(1);
  }
  uint64_t magnitude = 0;
  auto [ptr, ec] = std::from_chars(body.data(), body.data() + body.size(), magnitude, base);
  if (ec != std::errc() || ptr != body.data() + body.size()) return false;
  if (negative) {
    if (magnitude > static_cast<uint64_t>(INT64_MAX) + 1) return false;
    out = magnitude == static_cast<uint64_t>(INT64_MAX) + 1 ? INT64_MIN
                                                            : -static_cast<int64_t>(magnitude);
  } else {
    if (magnitude > static_cast<uint64_t>(INT64_MAX)) return false;
    out = static_cast<int64_t>(magnitude);
  }
  return true;
}

bool parseYamlFloat(std::string_view s, double& out) {
  if (equalsAny(s, {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"})) {
    out = HUGE_VAL;
    return true;
  }
  if (equalsAny(s, {"-.inf", "-.Inf", "-.INF"})) {
    out = -HUGE_VAL;
    return true;
  }
  if (equalsAny(s, {".nan", ".NaN", ".NAN"})) {
    out = NAN;
    return true;
  }
  // [-+]?([0-9][0-9_]*)?\.?[0-9_]*([eE][-+]?[0-9]+)? with at least one digit before the exponent.
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  size_t digits = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '_')) {
    digits += s[i] != '_';
    ++i;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '_')) {
      digits += s[i] != '_';
      ++i;
    }
  }
  if (digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    size_t exp_digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      ++exp_digits;
      ++i;
    }
    if (exp_digits == 0) return false;
  }
  if (i != s.size()) return false;
  std::string clean;
  for (char c : s) {
    if (c != '_') clean += c;
  }
  out = std::strtod(clean.c_str(), nullptr);
  return true;
}

}  // namespace

DecodeError::DecodeError(std::vector<Diagnostic> diagnostics)
    : std::runtime_error(joinDiagnostics(diagnostics)), diagnostics_(std::move(diagnostics)) {}

DecodeError::DecodeError(Diagnostic diagnostic)
    : DecodeError(std::vector<Diagnostic>{std::move(diagnostic)}) {}

Value Value::null(Mark mark) {
  Value v;
  v.mark_ = mark;
  return v;
}

Value Value::boolean(bool b, Mark mark) {
  Value v;
  v.kind_ = Kind::kBool;
  v.bool_ = b;
  v.mark_ = mark;
  return v;
}

Value Value::integer(int64_t i, Mark mark) {
  Value v;
  v.kind_ = Kind::kNumber;
  v.is_int_ = true;
  v.int_ = i;
  v.double_ = static_cast<double>(i);
  v.text_ = std::to_string(i);
  v.mark_ = mark;
  return v;
}

Value Value::number(double d, Mark mark) {
  Value v;
  v.kind_ = Kind::kNumber;
  v.double_ = d;
  char buf[32];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), d);
  v.text_.assign(buf, ec == std::errc() ? ptr : buf);
  // A double that is a whole number still prints as one (1e+20 stays a float literal).
  v.mark_ = mark;
  return v;
}

Value Value::numberLiteral(std::string text, Mark mark) {
  Value v;
  v.kind_ = Kind::kNumber;
  resolveNumber(text, v.is_int_, v.int_, v.double_);
  v.text_ = std::move(text);
  v.mark_ = mark;
  return v;
}

Value Value::string(std::string s, Mark mark) {
  Value v;
  v.kind_ = Kind::kString;
  v.text_ = std::move(s);
  v.mark_ = mark;
  return v;
}

Value Value::array(Mark mark) {
  Value v;
  v.kind_ = Kind::kArray;
  v.mark_ = mark;
  return v;
}

Value Value::object(Mark mark) {
  Value v;
  v.kind_ = Kind::kObject;
  v.mark_ = mark;
  return v;
}

Value Value::plainScalar(std::string text, Mark mark) {
  Value v;
  v.plain_ = true;
  v.mark_ = mark;
  std::string_view s = text;
  int64_t i = 0;
  double d = 0;
  if (s.empty() || equalsAny(s, {"~", "null", "Null", "NULL"})) {
    v.kind_ = Kind::kNull;
  } else if (equalsAny(s,
                       {"true", "True", "TRUE", "yes", "Yes", "YES", "y", "Y", "on", "On", "ON"})) {
    v.kind_ = Kind::kBool;
    v.bool_ = true;
  } else if (equalsAny(
                 s, {"false", "False", "FALSE", "no", "No", "NO", "n", "N", "off", "Off", "OFF"})) {
    v.kind_ = Kind::kBool;
    v.bool_ = false;
  } else if (parseYamlInt(s, i)) {
    v.kind_ = Kind::kNumber;
    v.is_int_ = true;
    v.int_ = i;
    v.double_ = static_cast<double>(i);
  } else if (parseYamlFloat(s, d)) {
    v.kind_ = Kind::kNumber;
    v.double_ = d;
  } else {
    v.kind_ = Kind::kString;
  }
  v.text_ = std::move(text);
  return v;
}

const Value* Value::find(std::string_view key) const {
  for (const auto& m : members_) {
    if (m.key == key) return &m.value;
  }
  return nullptr;
}

Value* Value::find(std::string_view key) {
  for (auto& m : members_) {
    if (m.key == key) return &m.value;
  }
  return nullptr;
}

Value& Value::set(std::string key, Value value, Mark key_mark) {
  if (Value* existing = find(key)) {
    *existing = std::move(value);
    return *existing;
  }
  return append(std::move(key), std::move(value), key_mark);
}

Value& Value::append(std::string key, Value value, Mark key_mark) {
  kind_ = Kind::kObject;
  members_.push_back(Member{std::move(key), key_mark, std::move(value)});
  return members_.back().value;
}

bool Value::erase(std::string_view key) {
  auto it =
      std::find_if(members_.begin(), members_.end(), [&](const Member& m) { return m.key == key; });
  if (it == members_.end()) return false;
  members_.erase(it);
  return true;
}

Value& Value::push(Value value) {
  kind_ = Kind::kArray;
  items_.push_back(std::move(value));
  return items_.back();
}

std::string_view Value::typeName() const {
  switch (kind_) {
    case Kind::kNull:
      return "null";
    case Kind::kBool:
      return "boolean";
    case Kind::kNumber:
      return "number";
    case Kind::kString:
      return "string";
    case Kind::kArray:
      return "array";
    case Kind::kObject:
      return "object";
  }
  return "value";
}

bool operator==(const Value& a, const Value& b) {
  if (a.kind_ != b.kind_) return false;
  switch (a.kind_) {
    case Value::Kind::kNull:
      return true;
    case Value::Kind::kBool:
      return a.bool_ == b.bool_;
    case Value::Kind::kNumber:
      if (a.is_int_ && b.is_int_) return a.int_ == b.int_;
      return a.double_ == b.double_;
    case Value::Kind::kString:
      return a.text_ == b.text_;
    case Value::Kind::kArray:
      return a.items_ == b.items_;
    case Value::Kind::kObject: {
      if (a.members_.size() != b.members_.size()) return false;
      for (const auto& m : a.members_) {
        const Value* other = b.find(m.key);
        if (other == nullptr || !(m.value == *other)) return false;
      }
      return true;
    }
  }
  return false;
}

void FieldPath::pushField(std::string_view name) {
  marks_.push_back(path_.size());
  if (!path_.empty()) path_ += '.';
  path_ += name;
}

void FieldPath::pushIndex(size_t index) {
  marks_.push_back(path_.size());
  path_ += '[';
  path_ += std::to_string(index);
  path_ += ']';
}

void FieldPath::pushKey(std::string_view key) {
  marks_.push_back(path_.size());
  path_ += '[';
  path_ += key;
  path_ += ']';
}

void FieldPath::pop() {
  path_.resize(marks_.back());
  marks_.pop_back();
}

}  // namespace skiff::api
