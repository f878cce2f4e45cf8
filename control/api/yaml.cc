#include "control/api/yaml.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <map>

#include <sstream>

#include "control/api/json.h"

namespace skiff::api {
namespace {

Mark markOf(const YAML::Mark& m) {
  if (m.is_null()) return {};
  return Mark{static_cast<uint32_t>(m.line + 1), static_cast<uint32_t>(m.column + 1)};
}

// Resolves an explicitly tagged scalar (!!int, !!str, ...).
Value resolveTagged(const std::string& tag, const std::string& text, Mark mark,
                    std::string_view source) {
  if (tag == "?") return Value::plainScalar(text, mark);
  if (tag == "!" || tag == "tag:yaml.org,2002:str" || tag == "!!str") {
    return Value::string(text, mark);
  }
  Value plain = Value::plainScalar(text, mark);
  auto is = [&](std::string_view name) {
    return tag == std::string("tag:yaml.org,2002:") + std::string(name) ||
           tag == std::string("!!") + std::string(name);
  };
  if (is("int") && plain.isInteger()) return Value::integer(plain.asInt(), mark);
  if (is("float") && plain.isNumber()) return Value::number(plain.asDouble(), mark);
  if (is("bool") && plain.isBool()) return Value::boolean(plain.asBool(), mark);
  if (is("null") && plain.isNull()) return Value::null(mark);
  throw DecodeError(
      Diagnostic{std::string(source), mark, "",
                 "unsupported or mismatched YAML tag " + tag + " for value \"" + text + "\""});
}

// Builds Values straight from yaml-cpp's parser events. yaml-cpp's own node tree is not used: it
// can be driven into unbounded work by hostile input (found by fuzzing), while here every event
// counts against the node budget and the depth limit, including alias expansions.
class ValueBuilder : public YAML::EventHandler {
 public:
  explicit ValueBuilder(const YamlParseOptions& options) : options_(options) {}

  std::vector<Value> take() { return std::move(docs_); }

  void OnDocumentStart(const YAML::Mark& mark) override {
    // yaml-cpp can be driven into starting documents forever without consuming input (found by
    // fuzzing); a real manifest stream has far fewer.
    if (++documents_ > options_.max_documents) {
      fail(markOf(mark), "more than " + std::to_string(options_.max_documents) + " YAML documents");
    }
    frames_.clear();
    anchors_.clear();
    root_ = Value::null();
    has_root_ = false;
    nodes_ = 0;
  }
  void OnDocumentEnd() override {
    // Empty documents are dropped, as kubectl drops them.
    if (has_root_ && !root_.isNull()) docs_.push_back(std::move(root_));
  }
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    add(Value::null(markOf(mark)), anchor, 1);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) fail(markOf(mark), "alias of an anchor that is not complete");
    count(it->second.second, markOf(mark));
    add(it->second.first, 0, 0);
  }
  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    add(resolveTagged(tag, value, markOf(mark), options_.source), anchor, 1);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string& /*tag*/, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value /*style*/) override {
    open(Value::array(markOf(mark)), anchor);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string& /*tag*/, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value /*style*/) override {
    open(Value::object(markOf(mark)), anchor);
  }
  void OnMapEnd() override { close(); }

 private:
  struct Frame {
    Value value;
    YAML::anchor_t anchor = 0;
    size_t nodes_at_open = 0;
    bool have_key = false;
    std::string key;
    Mark key_mark;
  };

  [[noreturn]] void fail(Mark mark, std::string message) const {
    throw DecodeError(Diagnostic{std::string(options_.source), mark, "", std::move(message)});
  }

  void count(size_t n, Mark mark) {
    nodes_ += n;
    if (nodes_ > options_.max_nodes) {
      fail(mark, "document expands to more than " + std::to_string(options_.max_nodes) +
                     " nodes (alias expansion?)");
    }
  }

  void add(Value v, YAML::anchor_t anchor, size_t nodes) {
    count(nodes, v.mark());
    if (anchor != 0) anchors_[anchor] = {v, 1};
    attach(std::move(v));
  }

  void open(Value v, YAML::anchor_t anchor) {
    count(1, v.mark());
    if (frames_.size() >= options_.max_depth) {
      fail(v.mark(), "nesting deeper than " + std::to_string(options_.max_depth));
    }
    // A collection used as a mapping key is refused when it is opened.
    if (!frames_.empty() && frames_.back().value.isObject() && !frames_.back().have_key) {
      fail(v.mark(), std::string("mapping keys must be strings, got ") +
                         (v.isObject() ? "a mapping" : "a sequence"));
    }
    frames_.push_back(Frame{std::move(v), anchor, nodes_, false, {}, {}});
  }

  void close() {
    Frame frame = std::move(frames_.back());
    frames_.pop_back();
    if (frame.anchor != 0) anchors_[frame.anchor] = {frame.value, nodes_ - frame.nodes_at_open + 1};
    attach(std::move(frame.value));
  }

  void attach(Value v) {
    if (frames_.empty()) {
      root_ = std::move(v);
      has_root_ = true;
      return;
    }
    Frame& top = frames_.back();
    if (top.value.isArray()) {
      top.value.items().push_back(std::move(v));
      return;
    }
    if (!top.have_key) {
      if (v.isNull() && !v.isPlain()) fail(v.mark(), "mapping keys must be strings, got null");
      if (v.isObject() || v.isArray()) fail(v.mark(), "mapping keys must be strings");
      top.key = v.text();
      top.key_mark = v.mark();
      top.have_key = true;
      return;
    }
    top.value.members().push_back(Value::Member{std::move(top.key), top.key_mark, std::move(v)});
    top.key.clear();
    top.have_key = false;
  }

  const YamlParseOptions& options_;
  std::vector<Value> docs_;
  std::vector<Frame> frames_;
  std::map<YAML::anchor_t, std::pair<Value, size_t>> anchors_;  // value and its node count
  Value root_;
  bool has_root_ = false;
  size_t nodes_ = 0;
  size_t documents_ = 0;
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
  ValueBuilder builder(options);
  try {
    std::stringstream in{std::string(text)};
    YAML::Parser parser(in);
    while (parser.HandleNextDocument(builder)) {
    }
  } catch (const YAML::Exception& e) {
    throw DecodeError(Diagnostic{std::string(options.source), markOf(e.mark), "", e.msg});
  }
  return builder.take();
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
