#include "control/api/selector.h"

#include <algorithm>
#include <charconv>
#include <utility>

#include "skiff/api/meta_v1.pb.h"

namespace skiff::api {
namespace labels {
namespace {

// The texts of k8s.io/apimachinery/pkg/util/validation, so that users see the messages they know.
constexpr std::string_view kQualifiedNameFmt = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
constexpr std::string_view kQualifiedNameErrMsg =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character";
constexpr std::string_view kLabelValueFmt = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
constexpr std::string_view kLabelValueErrMsg =
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character";
constexpr std::string_view kDns1123SubdomainFmt =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
constexpr std::string_view kDns1123SubdomainErrMsg =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character";
constexpr std::string_view kDns1123LabelFmt = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
constexpr std::string_view kDns1123LabelErrMsg =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character";
constexpr std::string_view kDns1035LabelFmt = "[a-z]([-a-z0-9]*[a-z0-9])?";
constexpr std::string_view kDns1035LabelErrMsg =
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character";
constexpr size_t kDns1123LabelMaxLength = 63;
constexpr size_t kQualifiedNameMaxLength = 63;
constexpr size_t kLabelValueMaxLength = 63;
constexpr size_t kDns1123SubdomainMaxLength = 253;

// validation.RegexError, double spaces included.
std::string regexError(std::string_view msg, std::string_view fmt,
                       std::initializer_list<std::string_view> examples) {
  std::string out(msg);
  out += " (e.g. ";
  bool first = true;
  for (std::string_view example : examples) {
    if (!first) out += " or ";
    first = false;
    out += "'";
    out += example;
    out += "', ";
  }
  out += "regex used for validation is '";
  out += fmt;
  out += "')";
  return out;
}

std::string maxLenError(size_t length) {
  return "must be no more than " + std::to_string(length) + " characters";
}

bool isAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// ^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$
bool isQualifiedNamePart(std::string_view s) {
  if (s.empty() || !isAlnum(s.front()) || !isAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return isAlnum(c) || c == '-' || c == '_' || c == '.'; });
}

// ^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$
bool isDns1123Subdomain(std::string_view s) {
  auto lowerAlnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    std::string_view label = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    if (label.empty() || !lowerAlnum(label.front()) || !lowerAlnum(label.back())) return false;
    for (char c : label) {
      if (!lowerAlnum(c) && c != '-') return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

std::string qualifiedNameRegexError() {
  return regexError(kQualifiedNameErrMsg, kQualifiedNameFmt, {"MyName", "my.name", "123-abc"});
}

std::string joinMessages(const std::vector<std::string>& messages) {
  std::string out;
  for (const std::string& m : messages) {
    if (!out.empty()) out += "; ";
    out += m;
  }
  return out;
}

// Go's %q for the strings that can appear here (keys and values as typed by users).
std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
  out += '"';
  return out;
}

std::string quoteList(const std::vector<std::string>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ", ";
    out += quote(values[i]);
  }
  out += "]";
  return out;
}

// strconv.ParseInt(s, 10, 64).
std::optional<int64_t> parseInt64(std::string_view s) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty() || s.front() == '+') return std::nullopt;
  int64_t v = 0;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, v);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return v;
}

bool isSetOperator(Operator op) {
  return op == Operator::kIn || op == Operator::kNotIn;
}

std::vector<std::string> sortedUnique(std::vector<std::string> values) {
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  return values;
}

void sortByKey(std::vector<Requirement>& requirements) {
  std::stable_sort(requirements.begin(), requirements.end(),
                   [](const Requirement& a, const Requirement& b) { return a.key() < b.key(); });
}

// labels.NewRequirement's checks; the first problem as "path: message".
std::optional<std::string> requirementError(const std::string& key, Operator op,
                                            const std::vector<std::string>& values) {
  if (auto errs = qualifiedNameErrors(key); !errs.empty()) {
    return "key: Invalid value: " + quote(key) + ": " + joinMessages(errs);
  }
  switch (op) {
    case Operator::kIn:
    case Operator::kNotIn:
      if (values.empty()) {
        return "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty";
      }
      break;
    case Operator::kEquals:
    case Operator::kDoubleEquals:
    case Operator::kNotEquals:
      if (values.size() != 1) {
        return "values: Invalid value: " + quoteList(values) +
               ": exact-match compatibility requires one single value";
      }
      break;
    case Operator::kExists:
    case Operator::kDoesNotExist:
      if (!values.empty()) {
        return "values: Invalid value: " + quoteList(values) +
               ": values set must be empty for exists and does not exist";
      }
      break;
    case Operator::kGreaterThan:
    case Operator::kLessThan:
      if (values.size() != 1) {
        return "values: Invalid value: " + quoteList(values) +
               ": for 'Gt', 'Lt' operators, exactly one value is required";
      }
      for (size_t i = 0; i < values.size(); ++i) {
        if (!parseInt64(values[i])) {
          return "values[" + std::to_string(i) + "]: Invalid value: " + quote(values[i]) +
                 ": for 'Gt', 'Lt' operators, the value must be an integer";
        }
      }
      break;
    default:
      return "operator: Unsupported value: " +
             std::to_string(static_cast<int>(op));  // only reachable through a bad cast
  }
  for (size_t i = 0; i < values.size(); ++i) {
    if (auto errs = labelValueErrors(values[i]); !errs.empty()) {
      return "values[" + std::to_string(i) + "][" + key + "]: Invalid value: " + quote(values[i]) +
             ": " + joinMessages(errs);
    }
  }
  return std::nullopt;
}

// ---- The parser of labels.Parse
// ------------------------------------------------------------------

enum class Tok : uint8_t {
  kEnd,
  kClosePar,
  kComma,
  kNot,
  kDoubleEquals,
  kEquals,
  kGreater,
  kIdentifier,
  kIn,
  kLess,
  kNotEquals,
  kNotIn,
  kOpenPar,
};

struct Item {
  Tok tok;
  std::string_view literal;
  size_t pos;
};

bool isWhitespace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

bool isSpecial(char c) {
  switch (c) {
    case '=':
    case '!':
    case '(':
    case ')':
    case ',':
    case '>':
    case '<':
      return true;
    default:
      return false;
  }
}

std::optional<Tok> symbolToken(std::string_view s) {
  if (s == ")") return Tok::kClosePar;
  if (s == ",") return Tok::kComma;
  if (s == "!") return Tok::kNot;
  if (s == "==") return Tok::kDoubleEquals;
  if (s == "=") return Tok::kEquals;
  if (s == ">") return Tok::kGreater;
  if (s == "<") return Tok::kLess;
  if (s == "!=") return Tok::kNotEquals;
  if (s == "(") return Tok::kOpenPar;
  return std::nullopt;
}

// The Lexer: the longest symbol token, or a run of characters that are neither symbols nor
// whitespace (an identifier, or the keywords "in" and "notin").
std::vector<Item> scan(std::string_view s) {
  std::vector<Item> items;
  size_t i = 0;
  while (true) {
    while (i < s.size() && isWhitespace(s[i]))
      ++i;
    if (i == s.size()) {
      items.push_back({Tok::kEnd, {}, i});
      return items;
    }
    const size_t start = i;
    if (isSpecial(s[i])) {
      // Every special character is a token by itself; "==" and "!=" are the two-character ones.
      Tok tok = *symbolToken(s.substr(i, 1));
      size_t length = 1;
      if (i + 1 < s.size()) {
        if (auto two = symbolToken(s.substr(i, 2))) {
          tok = *two;
          length = 2;
        }
      }
      i += length;
      items.push_back({tok, s.substr(start, length), start});
    } else {
      while (i < s.size() && !isSpecial(s[i]) && !isWhitespace(s[i]))
        ++i;
      std::string_view literal = s.substr(start, i - start);
      Tok tok = literal == "in" ? Tok::kIn : literal == "notin" ? Tok::kNotIn : Tok::kIdentifier;
      items.push_back({tok, literal, start});
    }
  }
}

// Where "in" and "notin" may be values ("x in (in)"), they are identifiers.
enum class Context : uint8_t { kKeyAndOperator, kValues };

struct PositionedValue {
  std::string value;
  size_t pos;
};

class Parser {
 public:
  explicit Parser(std::string_view input) : items_(scan(input)) {}

  bool parse(std::vector<Requirement>& out) {
    while (true) {
      const Item item = peek(Context::kValues);
      switch (item.tok) {
        case Tok::kIdentifier:
        case Tok::kNot: {
          if (!parseRequirement(out)) return false;
          const Item next = take(Context::kValues);
          if (next.tok == Tok::kEnd) return true;
          if (next.tok != Tok::kComma) {
            return fail(next.pos, "found " + describe(next) + ", expected: ',' or end of string");
          }
          const Item after = peek(Context::kValues);
          if (after.tok != Tok::kIdentifier && after.tok != Tok::kNot) {
            return fail(after.pos, "found " + describe(after) + ", expected: identifier after ','");
          }
          break;
        }
        case Tok::kEnd:
          return true;
        default:
          return fail(item.pos,
                      "found " + describe(item) + ", expected: !, identifier, or end of string");
      }
    }
  }

  size_t errorPos() const { return error_pos_; }
  const std::string& errorDetail() const { return error_; }

 private:
  static std::string describe(const Item& item) {
    if (item.tok == Tok::kEnd) return "end of string";
    return "'" + std::string(item.literal) + "'";
  }

  Item peek(Context context) const { return inContext(items_[position_], context); }
  Item take(Context context) {
    Item item = inContext(items_[position_], context);
    if (position_ + 1 < items_.size()) ++position_;  // the end token repeats
    return item;
  }
  static Item inContext(Item item, Context context) {
    if (context == Context::kValues && (item.tok == Tok::kIn || item.tok == Tok::kNotIn)) {
      item.tok = Tok::kIdentifier;
    }
    return item;
  }

  bool fail(size_t pos, std::string detail) {
    error_pos_ = pos;
    error_ = std::move(detail);
    return false;
  }

  bool parseRequirement(std::vector<Requirement>& out) {
    // parseKeyAndInferOperator
    Item key = take(Context::kValues);
    bool negated = false;
    if (key.tok == Tok::kNot) {
      negated = true;
      key = take(Context::kValues);
    }
    if (key.tok != Tok::kIdentifier) {
      return fail(key.pos, "found " + describe(key) + ", expected: identifier");
    }
    if (auto errs = qualifiedNameErrors(key.literal); !errs.empty()) {
      return fail(key.pos, "invalid key " + quote(key.literal) + ": " + joinMessages(errs));
    }
    const Tok next = peek(Context::kValues).tok;
    if (negated || next == Tok::kEnd || next == Tok::kComma) {
      // "!x" is complete here; whatever follows it is for parse() to reject.
      return emit(key, negated ? Operator::kDoesNotExist : Operator::kExists, {}, out);
    }

    Operator op{};
    if (!parseOperator(op)) return false;
    std::vector<PositionedValue> values;
    if (isSetOperator(op) ? !parseValues(values) : !parseExactValue(values)) return false;

    if (op == Operator::kGreaterThan || op == Operator::kLessThan) {
      for (const PositionedValue& v : values) {
        if (!parseInt64(v.value)) {
          return fail(v.pos, "invalid value " + quote(v.value) + " for key " + quote(key.literal) +
                                 ": for 'Gt', 'Lt' operators, the value must be an integer");
        }
      }
    }
    std::vector<std::string> plain;
    plain.reserve(values.size());
    for (PositionedValue& v : values) {
      if (auto errs = labelValueErrors(v.value); !errs.empty()) {
        return fail(v.pos, "invalid value " + quote(v.value) + " for key " + quote(key.literal) +
                               ": " + joinMessages(errs));
      }
      plain.push_back(std::move(v.value));
    }
    return emit(key, op, std::move(plain), out);
  }

  bool emit(const Item& key, Operator op, std::vector<std::string> values,
            std::vector<Requirement>& out) {
    std::string error;
    auto r = Requirement::tryMake(std::string(key.literal), op, std::move(values), &error);
    if (!r) return fail(key.pos, error);  // not reached: everything was checked above
    out.push_back(std::move(*r));
    return true;
  }

  bool parseOperator(Operator& op) {
    const Item item = take(Context::kKeyAndOperator);
    switch (item.tok) {
      case Tok::kIn:
        op = Operator::kIn;
        return true;
      case Tok::kNotIn:
        op = Operator::kNotIn;
        return true;
      case Tok::kEquals:
        op = Operator::kEquals;
        return true;
      case Tok::kDoubleEquals:
        op = Operator::kDoubleEquals;
        return true;
      case Tok::kNotEquals:
        op = Operator::kNotEquals;
        return true;
      case Tok::kGreater:
        op = Operator::kGreaterThan;
        return true;
      case Tok::kLess:
        op = Operator::kLessThan;
        return true;
      default:
        return fail(item.pos, "found " + describe(item) + ", expected: in, notin, =, ==, !=, >, <");
    }
  }

  // "(" values ")"; "()" is the one empty value.
  bool parseValues(std::vector<PositionedValue>& values) {
    const Item open = take(Context::kValues);
    if (open.tok != Tok::kOpenPar) {
      return fail(open.pos, "found " + describe(open) + ", expected: '('");
    }
    const Item first = peek(Context::kValues);
    switch (first.tok) {
      case Tok::kIdentifier:
      case Tok::kComma: {
        if (!parseIdentifiersList(values)) return false;
        const Item close = take(Context::kValues);
        if (close.tok != Tok::kClosePar) {
          return fail(close.pos, "found " + describe(close) + ", expected: ')'");
        }
        return true;
      }
      case Tok::kClosePar:
        take(Context::kValues);
        values.push_back({"", first.pos});
        return true;
      default:
        return fail(first.pos, "found " + describe(first) + ", expected: ',', ')' or identifier");
    }
  }

  // A list of possibly empty, comma-separated values, up to (not including) ")". Mirrors
  // parseIdentifiersList, including what it refuses ("(a,,)").
  bool parseIdentifiersList(std::vector<PositionedValue>& values) {
    while (true) {
      const Item item = take(Context::kValues);
      switch (item.tok) {
        case Tok::kIdentifier: {
          values.push_back({std::string(item.literal), item.pos});
          const Item next = peek(Context::kValues);
          if (next.tok == Tok::kComma) continue;
          if (next.tok == Tok::kClosePar) return true;
          return fail(next.pos, "found " + describe(next) + ", expected: ',' or ')'");
        }
        case Tok::kComma: {
          if (values.empty()) values.push_back({"", item.pos});  // "(,"
          const Item next = peek(Context::kValues);
          if (next.tok == Tok::kClosePar) {
            values.push_back({"", item.pos});  // ",)"
            return true;
          }
          if (next.tok == Tok::kComma) {
            take(Context::kValues);
            values.push_back({"", next.pos});  // ",,"
          }
          break;
        }
        default:
          return fail(item.pos, "found " + describe(item) + ", expected: ',', or identifier");
      }
    }
  }

  bool parseExactValue(std::vector<PositionedValue>& values) {
    const Item next = peek(Context::kValues);
    if (next.tok == Tok::kEnd || next.tok == Tok::kComma) {
      values.push_back({"", next.pos});
      return true;
    }
    const Item item = take(Context::kValues);
    if (item.tok != Tok::kIdentifier) {
      return fail(item.pos, "found " + describe(item) + ", expected: identifier");
    }
    values.push_back({std::string(item.literal), item.pos});
    return true;
  }

  std::vector<Item> items_;
  size_t position_ = 0;
  size_t error_pos_ = 0;
  std::string error_;
};

std::string fieldPath(std::string_view prefix, std::string_view child) {
  if (prefix.empty()) return std::string(child);
  std::string out(prefix);
  out += '.';
  out += child;
  return out;
}

// ValidateLabelSelector (and LabelSelectorAsSelector) on the proto; the first problem.
std::optional<std::string> labelSelectorError(const meta::v1::LabelSelector& selector,
                                              std::string_view path) {
  const std::string labels_path = fieldPath(path, "matchLabels");
  std::vector<std::string> keys;
  keys.reserve(selector.match_labels().size());
  for (const auto& [key, value] : selector.match_labels())
    keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  for (const std::string& key : keys) {
    if (auto errs = qualifiedNameErrors(key); !errs.empty()) {
      return labels_path + ": Invalid value: " + quote(key) + ": " + joinMessages(errs);
    }
    const std::string& value = selector.match_labels().at(key);
    if (auto errs = labelValueErrors(value); !errs.empty()) {
      return labels_path + ": Invalid value: " + quote(value) + ": " + joinMessages(errs);
    }
  }
  const std::string expressions_path = fieldPath(path, "matchExpressions");
  for (int i = 0; i < selector.match_expressions_size(); ++i) {
    const auto& expr = selector.match_expressions(i);
    const std::string base = expressions_path + "[" + std::to_string(i) + "]";
    const std::string& op = expr.operator_();
    if (op == "In" || op == "NotIn") {
      if (expr.values_size() == 0) {
        return base +
               ".values: Required value: must be specified when `operator` is 'In' or 'NotIn'";
      }
    } else if (op == "Exists" || op == "DoesNotExist") {
      if (expr.values_size() > 0) {
        return base +
               ".values: Forbidden: may not be specified when `operator` is 'Exists' or "
               "'DoesNotExist'";
      }
    } else {
      return base + ".operator: Unsupported value: " + quote(op) +
             R"(: supported values: "In", "NotIn", "Exists", "DoesNotExist")";
    }
    if (auto errs = qualifiedNameErrors(expr.key()); !errs.empty()) {
      return base + ".key: Invalid value: " + quote(expr.key()) + ": " + joinMessages(errs);
    }
    for (int j = 0; j < expr.values_size(); ++j) {
      if (auto errs = labelValueErrors(expr.values(j)); !errs.empty()) {
        return base + ".values[" + std::to_string(j) +
               "]: Invalid value: " + quote(expr.values(j)) + ": " + joinMessages(errs);
      }
    }
  }
  return std::nullopt;
}

}  // namespace

std::string_view toString(Operator op) {
  switch (op) {
    case Operator::kEquals:
      return "=";
    case Operator::kDoubleEquals:
      return "==";
    case Operator::kNotEquals:
      return "!=";
    case Operator::kIn:
      return "in";
    case Operator::kNotIn:
      return "notin";
    case Operator::kExists:
      return "exists";
    case Operator::kDoesNotExist:
      return "!";
    case Operator::kGreaterThan:
      return "gt";
    case Operator::kLessThan:
      return "lt";
  }
  return "?";
}

std::vector<std::string> qualifiedNameErrors(std::string_view key) {
  std::vector<std::string> errs;
  std::string_view name = key;
  const size_t slash = key.find('/');
  if (slash != std::string_view::npos) {
    if (key.find('/', slash + 1) != std::string_view::npos) {
      errs.push_back("a qualified name " + qualifiedNameRegexError() +
                     " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')");
      return errs;
    }
    const std::string_view prefix = key.substr(0, slash);
    name = key.substr(slash + 1);
    if (prefix.empty()) {
      errs.emplace_back("prefix part must be non-empty");
    } else {
      if (prefix.size() > kDns1123SubdomainMaxLength) {
        errs.push_back("prefix part " + maxLenError(kDns1123SubdomainMaxLength));
      }
      if (!isDns1123Subdomain(prefix)) {
        errs.push_back("prefix part " +
                       regexError(kDns1123SubdomainErrMsg, kDns1123SubdomainFmt, {"example.com"}));
      }
    }
  }
  if (name.empty()) {
    errs.emplace_back("name part must be non-empty");
  } else if (name.size() > kQualifiedNameMaxLength) {
    errs.push_back("name part " + maxLenError(kQualifiedNameMaxLength));
  }
  if (!isQualifiedNamePart(name)) errs.push_back("name part " + qualifiedNameRegexError());
  return errs;
}

std::vector<std::string> labelValueErrors(std::string_view value) {
  std::vector<std::string> errs;
  if (value.size() > kLabelValueMaxLength) errs.push_back(maxLenError(kLabelValueMaxLength));
  if (!value.empty() && !isQualifiedNamePart(value)) {
    errs.push_back(regexError(kLabelValueErrMsg, kLabelValueFmt, {"MyValue", "my_value", "12345"}));
  }
  return errs;
}

// ---- Requirement
// ---------------------------------------------------------------------------------

Requirement::Requirement(std::string key, Operator op, std::vector<std::string> values)
    : key_(std::move(key)), op_(op), values_(sortedUnique(std::move(values))) {}

Requirement Requirement::make(std::string key, Operator op, std::vector<std::string> values) {
  std::string error;
  auto r = tryMake(std::move(key), op, std::move(values), &error);
  if (!r) throw SelectorError("invalid label selector requirement: " + error);
  return std::move(*r);
}

std::optional<Requirement> Requirement::tryMake(std::string key, Operator op,
                                                std::vector<std::string> values,
                                                std::string* error) {
  if (auto problem = requirementError(key, op, values)) {
    if (error != nullptr) *error = std::move(*problem);
    return std::nullopt;
  }
  return Requirement(std::move(key), op, std::move(values));
}

bool Requirement::hasValue(std::string_view value) const {
  return std::binary_search(values_.begin(), values_.end(), value, std::less<>());
}

bool Requirement::matchesValue(std::optional<std::string_view> value) const {
  switch (op_) {
    case Operator::kIn:
    case Operator::kEquals:
    case Operator::kDoubleEquals:
      return value && hasValue(*value);
    case Operator::kNotIn:
    case Operator::kNotEquals:
      return !value || !hasValue(*value);
    case Operator::kExists:
      return value.has_value();
    case Operator::kDoesNotExist:
      return !value.has_value();
    case Operator::kGreaterThan:
    case Operator::kLessThan: {
      if (!value || values_.size() != 1) return false;
      const auto actual = parseInt64(*value);
      const auto bound = parseInt64(values_.front());
      if (!actual || !bound) return false;
      return op_ == Operator::kGreaterThan ? *actual > *bound : *actual < *bound;
    }
  }
  return false;
}

std::string Requirement::toString() const {
  std::string out;
  if (op_ == Operator::kDoesNotExist) out += '!';
  out += key_;
  switch (op_) {
    case Operator::kEquals:
      out += '=';
      break;
    case Operator::kDoubleEquals:
      out += "==";
      break;
    case Operator::kNotEquals:
      out += "!=";
      break;
    case Operator::kIn:
      out += " in ";
      break;
    case Operator::kNotIn:
      out += " notin ";
      break;
    case Operator::kGreaterThan:
      out += '>';
      break;
    case Operator::kLessThan:
      out += '<';
      break;
    case Operator::kExists:
    case Operator::kDoesNotExist:
      return out;
  }
  const bool set = isSetOperator(op_);
  if (set) out += '(';
  for (size_t i = 0; i < values_.size(); ++i) {
    if (i > 0) out += ',';
    out += values_[i];
  }
  if (set) out += ')';
  return out;
}

// ---- Selector
// ------------------------------------------------------------------------------------

Selector Selector::nothing() {
  Selector s;
  s.nothing_ = true;
  return s;
}

std::optional<Selector> Selector::tryParse(std::string_view text, std::string* error) {
  Parser parser(text);
  Selector s;
  if (!parser.parse(s.requirements_)) {
    if (error != nullptr) {
      *error = "invalid label selector " + quote(text) + ": at position " +
               std::to_string(parser.errorPos()) + ": " + parser.errorDetail();
    }
    return std::nullopt;
  }
  sortByKey(s.requirements_);
  return s;
}

Selector Selector::parse(std::string_view text) {
  std::string error;
  auto s = tryParse(text, &error);
  if (!s) throw SelectorError(error);
  return std::move(*s);
}

std::optional<Selector> Selector::tryFromProto(const meta::v1::LabelSelector* selector,
                                               std::string* error, std::string_view path) {
  if (selector == nullptr) return nothing();
  if (auto problem = labelSelectorError(*selector, path)) {
    if (error != nullptr) *error = std::move(*problem);
    return std::nullopt;
  }
  Selector s;
  s.requirements_.reserve(selector->match_labels().size() +
                          static_cast<size_t>(selector->match_expressions_size()));
  for (const auto& [key, value] : selector->match_labels()) {
    s.requirements_.push_back(Requirement(key, Operator::kEquals, {value}));
  }
  // Map order is unspecified: sort the labels first so that the result is deterministic.
  std::sort(s.requirements_.begin(), s.requirements_.end(),
            [](const Requirement& a, const Requirement& b) { return a.key() < b.key(); });
  for (const auto& expr : selector->match_expressions()) {
    const std::string& op = expr.operator_();
    const Operator converted = op == "In"       ? Operator::kIn
                               : op == "NotIn"  ? Operator::kNotIn
                               : op == "Exists" ? Operator::kExists
                                                : Operator::kDoesNotExist;
    s.requirements_.push_back(
        Requirement(expr.key(), converted,
                    std::vector<std::string>(expr.values().begin(), expr.values().end())));
  }
  sortByKey(s.requirements_);
  return s;
}

Selector Selector::fromProto(const meta::v1::LabelSelector* selector, std::string_view path) {
  std::string error;
  auto s = tryFromProto(selector, &error, path);
  if (!s) throw SelectorError(error);
  return std::move(*s);
}

Selector Selector::fromSet(const std::map<std::string, std::string>& set) {
  Selector s;
  s.requirements_.reserve(set.size());
  for (const auto& [key, value] : set) {
    s.requirements_.push_back(Requirement(key, Operator::kEquals, {value}));
  }
  return s;  // std::map iterates in key order
}

Selector Selector::fromSet(const Labels& set) {
  Selector s;
  s.requirements_.reserve(set.size());
  for (const auto& [key, value] : set) {
    s.requirements_.push_back(Requirement(key, Operator::kEquals, {value}));
  }
  sortByKey(s.requirements_);
  return s;
}

Selector Selector::validatedFromSet(const std::map<std::string, std::string>& set) {
  Selector s;
  s.requirements_.reserve(set.size());
  for (const auto& [key, value] : set) {
    s.requirements_.push_back(Requirement::make(key, Operator::kEquals, {value}));
  }
  return s;
}

Selector Selector::fromRequirements(std::vector<Requirement> requirements) {
  Selector s;
  s.requirements_ = std::move(requirements);
  sortByKey(s.requirements_);
  return s;
}

Selector Selector::add(Requirement requirement) const {
  if (nothing_) return *this;
  Selector s = *this;
  s.requirements_.push_back(std::move(requirement));
  sortByKey(s.requirements_);
  return s;
}

bool Selector::matches(const Labels& labels) const {
  return matches([&labels](std::string_view key) -> const std::string* {
    auto it = labels.find(key);
    return it == labels.end() ? nullptr : &it->second;
  });
}

bool Selector::matches(const std::map<std::string, std::string>& labels) const {
  return matches([&labels](std::string_view key) -> const std::string* {
    auto it = labels.find(std::string(key));
    return it == labels.end() ? nullptr : &it->second;
  });
}

std::optional<std::string> Selector::requiresExactMatch(std::string_view key) const {
  for (const Requirement& r : requirements_) {
    if (r.key() != key || r.values().size() != 1) continue;
    if (r.op() == Operator::kEquals || r.op() == Operator::kDoubleEquals ||
        r.op() == Operator::kIn) {
      return r.values().front();
    }
  }
  return std::nullopt;
}

std::string Selector::toString() const {
  std::string out;
  for (const Requirement& r : requirements_) {
    if (!out.empty()) out += ',';
    out += r.toString();
  }
  return out;
}

}  // namespace labels

namespace fields {
namespace {

struct UnescapeResult {
  std::string value;
  std::string error;  // empty on success
};

UnescapeResult unescape(std::string_view s) {
  UnescapeResult result;
  if (s.find_first_of("\\,=") == std::string_view::npos) {
    result.value = std::string(s);
    return result;
  }
  result.value.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\\') {
      if (i + 1 == s.size()) {
        result.error = "invalid field selector: invalid escape sequence: \\";
        return result;
      }
      const char next = s[++i];
      if (next != '\\' && next != ',' && next != '=') {
        // The whole (possibly multi-byte) character after the backslash.
        size_t end = i + 1;
        while (end < s.size() && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80)
          ++end;
        result.error = "invalid field selector: invalid escape sequence: \\" +
                       std::string(s.substr(i, end - i));
        return result;
      }
      result.value += next;
    } else if (c == ',' || c == '=') {
      result.error = std::string("invalid field selector: unescaped character in value: ") + c;
      return result;
    } else {
      result.value += c;
    }
  }
  return result;
}

// splitTerms: split at commas not preceded by an escaping backslash; the backslashes stay.
std::vector<std::string_view> splitTerms(std::string_view s) {
  std::vector<std::string_view> terms;
  if (s.empty()) return terms;
  size_t start = 0;
  bool escaped = false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (escaped) {
      escaped = false;
    } else if (s[i] == '\\') {
      escaped = true;
    } else if (s[i] == ',') {
      terms.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  terms.push_back(s.substr(start));
  return terms;
}

std::string_view opText(Operator op) {
  return op == Operator::kEquals ? "=" : "!=";
}

}  // namespace

std::string escapeValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\' || c == ',' || c == '=') out += '\\';
    out += c;
  }
  return out;
}

std::string unescapeValue(std::string_view escaped) {
  UnescapeResult result = unescape(escaped);
  if (!result.error.empty()) throw SelectorError(result.error);
  return std::move(result.value);
}

std::optional<Selector> Selector::tryParse(std::string_view text, std::string* error) {
  auto fail = [&](std::string message) -> std::optional<Selector> {
    if (error != nullptr) *error = std::move(message);
    return std::nullopt;
  };
  std::vector<std::string_view> terms = splitTerms(text);
  std::sort(terms.begin(), terms.end());
  Selector s;
  for (std::string_view term : terms) {
    if (term.empty()) continue;
    // splitTerm: the first "!=", "==" or "=", in that order of preference at each position.
    size_t at = std::string_view::npos;
    std::string_view op_text;
    for (size_t i = 0; i < term.size() && at == std::string_view::npos; ++i) {
      for (std::string_view candidate : {"!=", "==", "="}) {
        if (term.substr(i).starts_with(candidate)) {
          at = i;
          op_text = candidate;
          break;
        }
      }
    }
    if (at == std::string_view::npos) {
      return fail("invalid field selector '" + std::string(text) + "': can't understand '" +
                  std::string(term) + "'; expected field=value, field==value or field!=value");
    }
    UnescapeResult value = unescape(term.substr(at + op_text.size()));
    if (!value.error.empty()) {
      return fail(value.error + " (in '" + std::string(term) + "')");
    }
    s.requirements_.push_back({std::string(term.substr(0, at)),
                               op_text == "!=" ? Operator::kNotEquals : Operator::kEquals,
                               std::move(value.value)});
  }
  return s;
}

Selector Selector::parse(std::string_view text) {
  std::string error;
  auto s = tryParse(text, &error);
  if (!s) throw SelectorError(error);
  return std::move(*s);
}

Selector Selector::fromSet(const std::map<std::string, std::string>& set) {
  Selector s;
  for (const auto& [field, value] : set)
    s.requirements_.push_back({field, Operator::kEquals, value});
  return s;
}

Selector Selector::oneTermEqual(std::string field, std::string value) {
  Selector s;
  s.requirements_.push_back({std::move(field), Operator::kEquals, std::move(value)});
  return s;
}

bool Selector::matches(const std::map<std::string, std::string>& fields) const {
  return matches([&fields](std::string_view field) -> const std::string* {
    auto it = fields.find(std::string(field));
    return it == fields.end() ? nullptr : &it->second;
  });
}

std::optional<std::string> Selector::requiresExactMatch(std::string_view field) const {
  for (const Requirement& r : requirements_) {
    if (r.field == field && r.op == Operator::kEquals) return r.value;
  }
  return std::nullopt;
}

std::optional<std::string> Selector::checkFields(std::span<const std::string_view> allowed) const {
  for (const Requirement& r : requirements_) {
    if (std::find(allowed.begin(), allowed.end(), r.field) == allowed.end()) {
      return "field label not supported: " + r.field;
    }
  }
  return std::nullopt;
}

void Selector::validateFields(std::span<const std::string_view> allowed) const {
  if (auto error = checkFields(allowed)) throw SelectorError(*error);
}

std::string Selector::toString() const {
  std::string out;
  for (size_t i = 0; i < requirements_.size(); ++i) {
    if (i > 0) out += ',';
    out += requirements_[i].field;
    out += opText(requirements_[i].op);
    out += escapeValue(requirements_[i].value);
  }
  return out;
}

}  // namespace fields
}  // namespace skiff::api

namespace skiff::api::labels {
namespace {

bool isLowerAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$, or with a letter first for DNS-1035.
bool isDnsLabel(std::string_view s, bool letter_first) {
  if (s.empty() || !isLowerAlnum(s.front()) || !isLowerAlnum(s.back())) return false;
  if (letter_first && !(s.front() >= 'a' && s.front() <= 'z')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return isLowerAlnum(c) || c == '-'; });
}

// IsDNS1123Label, or IsDNS1035Label with `letter_first`.
std::vector<std::string> dnsLabelErrors(std::string_view value, bool letter_first) {
  std::vector<std::string> errs;
  if (value.size() > kDns1123LabelMaxLength) errs.push_back(maxLenError(kDns1123LabelMaxLength));
  if (!isDnsLabel(value, letter_first)) {
    errs.push_back(letter_first
                       ? regexError(kDns1035LabelErrMsg, kDns1035LabelFmt, {"my-name", "abc-123"})
                       : regexError(kDns1123LabelErrMsg, kDns1123LabelFmt, {"my-name", "123-abc"}));
  }
  return errs;
}

}  // namespace

std::vector<std::string> dns1123SubdomainErrors(std::string_view value) {
  std::vector<std::string> errs;
  if (value.size() > kDns1123SubdomainMaxLength) {
    errs.push_back(maxLenError(kDns1123SubdomainMaxLength));
  }
  if (!isDns1123Subdomain(value)) {
    errs.push_back(regexError(kDns1123SubdomainErrMsg, kDns1123SubdomainFmt, {"example.com"}));
  }
  return errs;
}

std::vector<std::string> dns1123LabelErrors(std::string_view value) {
  return dnsLabelErrors(value, false);
}

std::vector<std::string> dns1035LabelErrors(std::string_view value) {
  return dnsLabelErrors(value, true);
}

}  // namespace skiff::api::labels
