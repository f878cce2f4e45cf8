#include "control/api/json.h"

#include <cstring>

namespace skiff::api {
namespace {

class JsonParser {
 public:
  JsonParser(std::string_view text, const JsonParseOptions& options)
      : p_(text.data()),
        end_(text.data() + text.size()),
        line_start_(text.data()),
        options_(options) {}

  Value parseDocument() {
    skipSpace();
    if (p_ == end_) fail("unexpected end of input, expected a JSON value");
    Value v = parseValue(0);
    skipSpace();
    if (p_ != end_) fail("unexpected data after the JSON value");
    return v;
  }

 private:
  Mark mark() const { return Mark{line_, static_cast<uint32_t>(p_ - line_start_) + 1}; }

  [[noreturn]] void fail(std::string message) const {
    throw DecodeError(Diagnostic{std::string(options_.source), mark(), "", std::move(message)});
  }

  void skipSpace() {
    while (p_ != end_) {
      char c = *p_;
      if (c == '\n') {
        ++line_;
        line_start_ = ++p_;
      } else if (c == ' ' || c == '\t' || c == '\r') {
        ++p_;
      } else {
        break;
      }
    }
  }

  static std::string describe(char c) {
    if (c >= 0x20 && c < 0x7f) return std::string("'") + c + "'";
    char buf[8];
    std::snprintf(buf, sizeof(buf), "0x%02x", static_cast<unsigned char>(c));
    return buf;
  }

  Value parseValue(size_t depth) {
    if (depth > options_.max_depth)
      fail("nesting deeper than " + std::to_string(options_.max_depth));
    Mark m = mark();
    switch (*p_) {
      case '{':
        return parseObject(depth, m);
      case '[':
        return parseArray(depth, m);
      case '"':
        return Value::string(parseString(), m);
      case 't':
        expectWord("true");
        return Value::boolean(true, m);
      case 'f':
        expectWord("false");
        return Value::boolean(false, m);
      case 'n':
        expectWord("null");
        return Value::null(m);
      default:
        if (*p_ == '-' || (*p_ >= '0' && *p_ <= '9')) return parseNumber(m);
        fail("unexpected character " + describe(*p_) + ", expected a JSON value");
    }
  }

  void expectWord(const char* word) {
    size_t n = std::strlen(word);
    if (static_cast<size_t>(end_ - p_) < n || std::memcmp(p_, word, n) != 0) {
      fail(std::string("invalid literal, expected ") + word);
    }
    p_ += n;
  }

  Value parseNumber(Mark m) {
    const char* start = p_;
    if (*p_ == '-') ++p_;
    if (p_ == end_) fail("invalid number: no digits");
    if (*p_ == '0') {
      ++p_;
    } else if (*p_ >= '1' && *p_ <= '9') {
      while (p_ != end_ && *p_ >= '0' && *p_ <= '9')
        ++p_;
    } else {
      fail("invalid number: expected a digit");
    }
    if (p_ != end_ && *p_ == '.') {
      ++p_;
      if (p_ == end_ || *p_ < '0' || *p_ > '9') fail("invalid number: expected a digit after '.'");
      while (p_ != end_ && *p_ >= '0' && *p_ <= '9')
        ++p_;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || *p_ < '0' || *p_ > '9') fail("invalid number: expected exponent digits");
      while (p_ != end_ && *p_ >= '0' && *p_ <= '9')
        ++p_;
    }
    return Value::numberLiteral(std::string(start, p_), m);
  }

  static void appendUtf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  uint32_t parseHex4() {
    if (end_ - p_ < 4) fail("invalid \\u escape: expected 4 hex digits");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = *p_++;
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        --p_;
        fail("invalid \\u escape: expected a hex digit");
      }
    }
    return v;
  }

  // Checks one UTF-8 sequence starting at p_ and copies it; rejects overlong forms and surrogates.
  void copyUtf8(std::string& out) {
    auto lead = static_cast<unsigned char>(*p_);
    size_t n = 0;
    uint32_t cp = 0;
    if (lead >= 0xc2 && lead <= 0xdf) {
      n = 2;
      cp = lead & 0x1f;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      n = 3;
      cp = lead & 0x0f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      n = 4;
      cp = lead & 0x07;
    } else {
      fail("invalid UTF-8 in string");
    }
    if (static_cast<size_t>(end_ - p_) < n) fail("invalid UTF-8 in string");
    for (size_t i = 1; i < n; ++i) {
      auto c = static_cast<unsigned char>(p_[i]);
      if ((c & 0xc0) != 0x80) fail("invalid UTF-8 in string");
      cp = (cp << 6) | (c & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
      fail("invalid UTF-8 in string");
    }
    out.append(p_, n);
    p_ += n;
  }

  std::string parseString() {
    ++p_;  // opening quote
    std::string out;
    while (true) {
      const char* run = p_;
      while (p_ != end_ && *p_ != '"' && *p_ != '\\' && static_cast<unsigned char>(*p_) >= 0x20 &&
             static_cast<unsigned char>(*p_) < 0x80) {
        ++p_;
      }
      out.append(run, p_);
      if (p_ == end_) fail("unterminated string");
      char c = *p_;
      if (c == '"') {
        ++p_;
        return out;
      }
      if (static_cast<unsigned char>(c) >= 0x80) {
        copyUtf8(out);
        continue;
      }
      if (c != '\\') fail("control character " + describe(c) + " in string must be escaped");
      ++p_;
      if (p_ == end_) fail("unterminated string");
      char e = *p_++;
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          uint32_t cp = parseHex4();
          if (cp >= 0xd800 && cp <= 0xdbff) {
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') {
              fail("invalid \\u escape: unpaired surrogate");
            }
            p_ += 2;
            uint32_t low = parseHex4();
            if (low < 0xdc00 || low > 0xdfff) fail("invalid \\u escape: unpaired surrogate");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            fail("invalid \\u escape: unpaired surrogate");
          }
          appendUtf8(out, cp);
          break;
        }
        default:
          --p_;
          fail("invalid escape \\" + std::string(1, e) + " in string");
      }
    }
  }

  Value parseArray(size_t depth, Mark m) {
    ++p_;
    Value v = Value::array(m);
    skipSpace();
    if (p_ != end_ && *p_ == ']') {
      ++p_;
      return v;
    }
    while (true) {
      skipSpace();
      if (p_ == end_) fail("unexpected end of input in array");
      v.items().push_back(parseValue(depth + 1));
      skipSpace();
      if (p_ == end_) fail("unexpected end of input in array, expected ',' or ']'");
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ == ']') {
        ++p_;
        return v;
      }
      fail("unexpected character " + describe(*p_) + " in array, expected ',' or ']'");
    }
  }

  Value parseObject(size_t depth, Mark m) {
    ++p_;
    Value v = Value::object(m);
    skipSpace();
    if (p_ != end_ && *p_ == '}') {
      ++p_;
      return v;
    }
    while (true) {
      skipSpace();
      if (p_ == end_) fail("unexpected end of input in object");
      if (*p_ != '"') fail("unexpected character " + describe(*p_) + ", expected a quoted key");
      Mark key_mark = mark();
      std::string key = parseString();
      skipSpace();
      if (p_ == end_ || *p_ != ':') fail("expected ':' after object key \"" + key + "\"");
      ++p_;
      skipSpace();
      if (p_ == end_) fail("unexpected end of input, expected a value for \"" + key + "\"");
      // Duplicate keys are kept: the codec reports them with their field path.
      v.members().push_back(Value::Member{std::move(key), key_mark, parseValue(depth + 1)});
      skipSpace();
      if (p_ == end_) fail("unexpected end of input in object, expected ',' or '}'");
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ == '}') {
        ++p_;
        return v;
      }
      fail("unexpected character " + describe(*p_) + " in object, expected ',' or '}'");
    }
  }

  const char* p_;
  const char* end_;
  const char* line_start_;
  uint32_t line_ = 1;
  const JsonParseOptions& options_;
};

void appendIndent(std::string& out, size_t depth) {
  out += '\n';
  out.append(depth * 2, ' ');
}

void appendValue(std::string& out, const Value& v, JsonStyle style, size_t depth) {
  bool pretty = style == JsonStyle::kPretty;
  switch (v.kind()) {
    case Value::Kind::kNull:
      out += "null";
      return;
    case Value::Kind::kBool:
      out += v.asBool() ? "true" : "false";
      return;
    case Value::Kind::kNumber:
      if (v.isPlain()) {
        // A YAML number: write its value, since YAML forms (0x1f, 1_000, .inf) are not JSON.
        if (v.isInteger()) {
          out += std::to_string(v.asInt());
        } else {
          out += Value::number(v.asDouble()).text();
        }
      } else {
        out += v.text();
      }
      return;
    case Value::Kind::kString:
      appendJsonString(out, v.text());
      return;
    case Value::Kind::kArray: {
      if (v.items().empty()) {
        out += "[]";
        return;
      }
      out += '[';
      bool first = true;
      for (const auto& item : v.items()) {
        if (!first) out += ',';
        first = false;
        if (pretty) appendIndent(out, depth + 1);
        appendValue(out, item, style, depth + 1);
      }
      if (pretty) appendIndent(out, depth);
      out += ']';
      return;
    }
    case Value::Kind::kObject: {
      if (v.members().empty()) {
        out += "{}";
        return;
      }
      out += '{';
      bool first = true;
      for (const auto& m : v.members()) {
        if (!first) out += ',';
        first = false;
        if (pretty) appendIndent(out, depth + 1);
        appendJsonString(out, m.key);
        out += pretty ? ": " : ":";
        appendValue(out, m.value, style, depth + 1);
      }
      if (pretty) appendIndent(out, depth);
      out += '}';
      return;
    }
  }
}

}  // namespace

Value parseJson(std::string_view text, const JsonParseOptions& options) {
  return JsonParser(text, options).parseDocument();
}

void appendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
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
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xf];
    }
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

void appendJson(std::string& out, const Value& value, JsonStyle style) {
  appendValue(out, value, style, 0);
}

std::string writeJson(const Value& value, JsonStyle style) {
  std::string out;
  appendJson(out, value, style);
  return out;
}

}  // namespace skiff::api
