#include "control/api/yaml.h"

#include <yaml-cpp/yaml.h>

#include <sstream>

#include "control/api/json.h"

namespace skiff::api {
namespace {

Mark markOf(const YAML::Mark& m) {
  if (m.is_null()) return {};
  return Mark{static_cast<uint32_t>(m.line + 1), static_cast<uint32_t>(m.column + 1)};
}

class YamlConverter {
 public:
  explicit YamlConverter(const YamlParseOptions& options) : options_(options) {}

  Value convert(const YAML::Node& node, size_t depth) {
    Mark mark = markOf(node.Mark());
    if (++nodes_ > options_.max_nodes) {
      fail(mark, "document expands to more than " + std::to_string(options_.max_nodes) +
                     " nodes (alias expansion?)");
    }
    if (depth > options_.max_depth) {
      fail(mark, "nesting deeper than " + std::to_string(options_.max_depth));
    }
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        return Value::null(mark);
      case YAML::NodeType::Scalar: {
        // yaml-cpp tags plain scalars "?" and quoted or block scalars "!".
        const std::string& tag = node.Tag();
        if (tag == "?") return Value::plainScalar(node.Scalar(), mark);
        if (tag == "!" || tag == "tag:yaml.org,2002:str" || tag == "!!str") {
          return Value::string(node.Scalar(), mark);
        }
        return resolveTagged(tag, node.Scalar(), mark);
      }
      case YAML::NodeType::Sequence: {
        Value v = Value::array(mark);
        v.items().reserve(node.size());
        for (const auto& item : node)
          v.items().push_back(convert(item, depth + 1));
        return v;
      }
      case YAML::NodeType::Map: {
        Value v = Value::object(mark);
        for (const auto& kv : node) {
          const YAML::Node& key = kv.first;
          if (!key.IsScalar()) {
            fail(markOf(key.Mark()), std::string("mapping keys must be strings, got ") +
                                         (key.IsMap()        ? "a mapping"
                                          : key.IsSequence() ? "a sequence"
                                                             : "null"));
          }
          v.members().push_back(
              Value::Member{key.Scalar(), markOf(key.Mark()), convert(kv.second, depth + 1)});
        }
        return v;
      }
    }
    return Value::null(mark);
  }

 private:
  [[noreturn]] void fail(Mark mark, std::string message) const {
    throw DecodeError(Diagnostic{std::string(options_.source), mark, "", std::move(message)});
  }

  Value resolveTagged(const std::string& tag, const std::string& text, Mark mark) const {
    Value plain = Value::plainScalar(text, mark);
    auto is = [&](std::string_view name) {
      return tag == std::string("tag:yaml.org,2002:") + std::string(name) ||
             tag == std::string("!!") + std::string(name);
    };
    if (is("int") && plain.isInteger()) return Value::integer(plain.asInt(), mark);
    if (is("float") && plain.isNumber()) return Value::number(plain.asDouble(), mark);
    if (is("bool") && plain.isBool()) return Value::boolean(plain.asBool(), mark);
    if (is("null") && plain.isNull()) return Value::null(mark);
    fail(mark, "unsupported or mismatched YAML tag " + tag + " for value \"" + text + "\"");
  }

  const YamlParseOptions& options_;
  size_t nodes_ = 0;
};

// --------------------------------------------------------------------------- writer

bool needsQuotes(std::string_view s) {
  if (s.empty()) return true;
  // Anything a plain scalar would resolve to a non-string must stay a string.
  if (!Value::plainScalar(std::string(s)).isString()) return true;
  unsigned char first = static_cast<unsigned char>(s.front());
  if (std::string_view("-?:,[]{}#&*!|>'\"%@`").find(static_cast<char>(first)) !=
          std::string_view::npos ||
      first == ' ' || s.back() == ' ') {
    // "-" followed by a non-space is fine in YAML, but quoting is simpler and always safe.
    return true;
  }
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) return true;
    if (c == ':' && (i + 1 == s.size() || s[i + 1] == ' ')) return true;
    if (c == '#' && i > 0 && s[i - 1] == ' ') return true;
  }
  return false;
}

// A multi-line string that a literal block (|) keeps exactly.
bool fitsLiteralBlock(std::string_view s) {
  if (s.find('\n') == std::string_view::npos) return false;
  if (s.front() == ' ' || s.front() == '\n') return false;
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if ((c < 0x20 && c != '\n') || c == 0x7f) return false;
    if (c == '\n' && i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t')) return false;
  }
  return s.back() != ' ' && s.back() != '\t';
}

class YamlWriter {
 public:
  std::string write(const Value& v) {
    if (v.isObject() && !v.members().empty()) {
      writeObject(v, 0);
    } else if (v.isArray() && !v.items().empty()) {
      writeArray(v, 0);
    } else {
      writeScalar(v, 0);
      out_ += '\n';
    }
    return std::move(out_);
  }

 private:
  void indent(size_t n) { out_.append(n, ' '); }

  static bool isBlock(const Value& v) {
    return (v.isObject() && !v.members().empty()) || (v.isArray() && !v.items().empty());
  }

  void writeString(std::string_view s, size_t depth) {
    if (fitsLiteralBlock(s)) {
      size_t trailing = 0;
      while (trailing < s.size() && s[s.size() - 1 - trailing] == '\n')
        ++trailing;
      out_ += trailing == 0 ? "|-" : trailing == 1 ? "|" : "|+";
      size_t start = 0;
      std::string_view body = s;
      if (trailing == 1) body.remove_suffix(1);
      // Each line is written after a line break; a body that ends in a break has no line after it.
      while (start < body.size() || (start == 0 && body.empty())) {
        size_t nl = body.find('\n', start);
        std::string_view line =
            body.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
        out_ += '\n';
        if (!line.empty()) {
          indent(depth);
          out_ += line;
        }
        if (nl == std::string_view::npos) break;
        start = nl + 1;
      }
      return;
    }
    if (needsQuotes(s)) {
      appendJsonString(out_, s);  // a JSON string is a valid YAML double-quoted scalar
    } else {
      out_ += s;
    }
  }

  void writeScalar(const Value& v, size_t depth) {
    switch (v.kind()) {
      case Value::Kind::kString:
        writeString(v.text(), depth);
        return;
      case Value::Kind::kObject:
        out_ += "{}";
        return;
      case Value::Kind::kArray:
        out_ += "[]";
        return;
      default:
        appendJson(out_, v);
    }
  }

  void writeKey(std::string_view key) {
    if (needsQuotes(key)) {
      appendJsonString(out_, key);
    } else {
      out_ += key;
    }
    out_ += ':';
  }

  // Writes members at `depth`; the first line's indentation was already written by the caller
  // when `first_inline` is set (a mapping that starts a sequence item).
  void writeObject(const Value& v, size_t depth, bool first_inline = false) {
    bool first = true;
    for (const auto& m : v.members()) {
      if (!(first && first_inline)) indent(depth);
      first = false;
      writeKey(m.key);
      writeMemberValue(m.value, depth);
    }
  }

  void writeMemberValue(const Value& v, size_t depth) {
    if (v.isObject() && !v.members().empty()) {
      out_ += '\n';
      writeObject(v, depth + 2);
    } else if (v.isArray() && !v.items().empty()) {
      out_ += '\n';
      writeArray(v, depth);  // kubectl style: "- " at the key's indentation
    } else {
      out_ += ' ';
      writeScalar(v, depth + 2);
      out_ += '\n';
    }
  }

  void writeArray(const Value& v, size_t depth) {
    for (const auto& item : v.items()) {
      indent(depth);
      out_ += "- ";
      if (item.isObject() && !item.members().empty()) {
        writeObject(item, depth + 2, /*first_inline=*/true);
      } else if (item.isArray() && !item.items().empty()) {
        out_ += '\n';
        writeArray(item, depth + 2);
      } else {
        writeScalar(item, depth + 2);
        out_ += '\n';
      }
    }
  }

  std::string out_;
};

}  // namespace

std::vector<Value> parseYamlDocuments(std::string_view text, const YamlParseOptions& options) {
  std::vector<YAML::Node> nodes;
  try {
    std::stringstream in{std::string(text)};
    nodes = YAML::LoadAll(in);
  } catch (const YAML::Exception& e) {
    throw DecodeError(Diagnostic{std::string(options.source), markOf(e.mark), "", e.msg});
  }
  std::vector<Value> docs;
  docs.reserve(nodes.size());
  for (const auto& node : nodes) {
    YamlConverter converter(options);
    Value v = converter.convert(node, 0);
    if (!v.isNull()) docs.push_back(std::move(v));
  }
  return docs;
}

Value parseYaml(std::string_view text, const YamlParseOptions& options) {
  auto docs = parseYamlDocuments(text, options);
  if (docs.size() > 1) {
    throw DecodeError(
        Diagnostic{std::string(options.source), docs[1].mark(), "",
                   "expected one YAML document, found " + std::to_string(docs.size())});
  }
  if (docs.empty()) return Value::null();
  return std::move(docs.front());
}

std::string writeYaml(const Value& value) {
  return YamlWriter().write(value);
}

}  // namespace skiff::api
