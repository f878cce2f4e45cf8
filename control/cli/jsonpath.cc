#include "control/cli/jsonpath.h"

#include <algorithm>
#include <optional>
#include <stdexcept>

#include "control/cli/apply_patch.h"

namespace skiff::cli {

using api::Value;

namespace {

struct Step {
  enum class Kind { kField, kWildcard, kIndex, kSlice, kRecursive, kFilter };
  Kind kind = Kind::kField;
  std::string name;
  int64_t index = 0;
  std::optional<int64_t> start, end;
  int64_t stride = 1;
  // Filter: @<left> <op> <right>; op empty: the left side exists.
  std::vector<Step> left;
  std::string op;
  Value right;
  bool right_is_path = false;
  std::vector<Step> right_path;
};

struct Expr {
  bool from_root = false;
  std::vector<Step> steps;
};

[[noreturn]] void fail(std::string_view text, size_t pos, const std::string& why) {
  throw std::invalid_argument("error parsing jsonpath " + std::string(text) + ", " + why +
                              " at position " + std::to_string(pos));
}

size_t matching(std::string_view s, size_t open, char o, char c) {
  int depth = 0;
  char quote = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (quote != 0) {
      if (s[i] == '\\') {
        ++i;
      } else if (s[i] == quote) {
        quote = 0;
      }
      continue;
    }
    if (s[i] == '\'' || s[i] == '"') {
      quote = s[i];
    } else if (s[i] == o) {
      ++depth;
    } else if (s[i] == c && --depth == 0) {
      return i;
    }
  }
  return std::string_view::npos;
}

std::string unquote(std::string_view s) {
  std::string out;
  for (size_t i = 1; i + 1 < s.size(); ++i) {
    if (s[i] == '\\' && i + 2 < s.size()) {
      char n = s[++i];
      out += n == 'n' ? '\n' : n == 't' ? '\t' : n == 'r' ? '\r' : n;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string trim(std::string_view s) {
  size_t a = s.find_first_not_of(" \t");
  if (a == std::string_view::npos) return {};
  size_t b = s.find_last_not_of(" \t");
  return std::string(s.substr(a, b - a + 1));
}

std::vector<Step> parseSteps(std::string_view s, std::string_view whole);

Value parseLiteral(const std::string& t) {
  if (t.size() >= 2 && (t[0] == '"' || t[0] == '\'')) return Value::string(unquote(t));
  if (t == "true" || t == "false") return Value::boolean(t == "true");
  if (!t.empty() && (std::isdigit(static_cast<unsigned char>(t[0])) || t[0] == '-')) {
    return Value::numberLiteral(t);
  }
  return Value::string(t);
}

Step parseBracket(std::string_view inner, std::string_view whole, size_t pos) {
  Step step;
  std::string t = trim(inner);
  if (t == "*") {
    step.kind = Step::Kind::kWildcard;
    return step;
  }
  if (t.size() >= 2 && (t[0] == '\'' || t[0] == '"')) {
    step.kind = Step::Kind::kField;
    step.name = unquote(t);
    return step;
  }
  if (t.starts_with("?(") && t.ends_with(")")) {
    step.kind = Step::Kind::kFilter;
    std::string cond = trim(std::string_view(t).substr(2, t.size() - 3));
    static const char* kOps[] = {"==", "!=", "<=", ">=", "<", ">"};
    size_t op_pos = std::string::npos;
    std::string op;
    for (const char* o : kOps) {
      size_t p = cond.find(o);
      if (p != std::string::npos && p < op_pos) {
        op_pos = p;
        op = o;
      }
    }
    std::string left = trim(cond.substr(0, op_pos));
    if (!left.starts_with("@")) fail(whole, pos, "a filter must start with @");
    step.left = parseSteps(std::string_view(left).substr(1), whole);
    if (op_pos != std::string::npos) {
      step.op = op;
      std::string right = trim(cond.substr(op_pos + op.size()));
      if (right.starts_with("@")) {
        step.right_is_path = true;
        step.right_path = parseSteps(std::string_view(right).substr(1), whole);
      } else {
        step.right = parseLiteral(right);
      }
    }
    return step;
  }
  auto number = [&](const std::string& n) -> int64_t {
    try {
      size_t used = 0;
      int64_t v = std::stoll(n, &used);
      if (used != n.size()) throw std::invalid_argument(n);
      return v;
    } catch (const std::exception&) {
      fail(whole, pos, "unrecognized index \"" + n + "\"");
    }
  };
  if (size_t colon = t.find(':'); colon != std::string::npos) {
    step.kind = Step::Kind::kSlice;
    std::string a = trim(t.substr(0, colon));
    std::string rest = t.substr(colon + 1);
    std::string b = rest;
    if (size_t c2 = rest.find(':'); c2 != std::string::npos) {
      b = rest.substr(0, c2);
      std::string st = trim(rest.substr(c2 + 1));
      if (!st.empty()) step.stride = number(st);
    }
    b = trim(b);
    if (!a.empty()) step.start = number(a);
    if (!b.empty()) step.end = number(b);
    return step;
  }
  step.kind = Step::Kind::kIndex;
  step.index = number(t);
  return step;
}

std::vector<Step> parseSteps(std::string_view s, std::string_view whole) {
  std::vector<Step> steps;
  size_t i = 0;
  auto read_name = [&]() {
    std::string name;
    while (i < s.size() && s[i] != '.' && s[i] != '[') {
      if (s[i] == '\\' && i + 1 < s.size()) ++i;
      name += s[i++];
    }
    return name;
  };
  while (i < s.size()) {
    char c = s[i];
    if (c == ' ') {
      ++i;
    } else if (c == '.' && i + 1 < s.size() && s[i + 1] == '.') {
      i += 2;
      Step step;
      step.kind = Step::Kind::kRecursive;
      step.name = read_name();
      steps.push_back(std::move(step));
    } else if (c == '.') {
      ++i;
      std::string name = read_name();
      if (name.empty()) continue;
      Step step;
      step.kind = name == "*" ? Step::Kind::kWildcard : Step::Kind::kField;
      step.name = name;
      steps.push_back(std::move(step));
    } else if (c == '[') {
      size_t close = matching(s, i, '[', ']');
      if (close == std::string_view::npos) fail(whole, i, "unterminated array");
      steps.push_back(parseBracket(s.substr(i + 1, close - i - 1), whole, i));
      i = close + 1;
    } else {
      Step step;
      step.name = read_name();
      steps.push_back(std::move(step));
    }
  }
  return steps;
}

Expr parseExpr(std::string_view s, std::string_view whole) {
  Expr e;
  std::string t = trim(s);
  std::string_view v = t;
  if (v.starts_with("$")) {
    e.from_root = true;
    v.remove_prefix(1);
  }
  e.steps = parseSteps(v, whole);
  return e;
}

bool compare(const Value& a, const std::string& op, const Value& b) {
  if (a.isNumber() && b.isNumber()) {
    double x = a.asDouble();
    double y = b.asDouble();
    if (op == "==") return x == y;
    if (op == "!=") return x != y;
    if (op == "<") return x < y;
    if (op == "<=") return x <= y;
    if (op == ">") return x > y;
    return x >= y;
  }
  std::string x = a.isBool() ? (a.asBool() ? "true" : "false") : a.text();
  std::string y = b.isBool() ? (b.asBool() ? "true" : "false") : b.text();
  if (op == "==") return x == y && a.isObject() == b.isObject();
  if (op == "!=") return x != y;
  if (op == "<") return x < y;
  if (op == "<=") return x <= y;
  if (op == ">") return x > y;
  return x >= y;
}

void recurse(const Value& v, const std::string& name, std::vector<const Value*>& out) {
  if (v.isObject()) {
    if (name.empty() || name == "*") {
      for (const auto& m : v.members())
        out.push_back(&m.value);
    } else if (const Value* f = v.find(name)) {
      out.push_back(f);
    }
    for (const auto& m : v.members())
      recurse(m.value, name, out);
  } else if (v.isArray()) {
    for (const auto& item : v.items())
      recurse(item, name, out);
  }
}

std::vector<const Value*> evaluate(const std::vector<Step>& steps, const Value& start,
                                   bool allow_missing, std::string_view whole);

std::vector<const Value*> applyStep(const Step& step, const std::vector<const Value*>& in,
                                    bool allow_missing, std::string_view whole) {
  std::vector<const Value*> out;
  for (const Value* v : in) {
    switch (step.kind) {
      case Step::Kind::kField:
        if (v->isObject()) {
          if (const Value* f = v->find(step.name)) {
            out.push_back(f);
            continue;
          }
        }
        if (!allow_missing) throw std::runtime_error(step.name + " is not found");
        break;
      case Step::Kind::kWildcard:
        if (v->isObject()) {
          for (const auto& m : v->members())
            out.push_back(&m.value);
        } else if (v->isArray()) {
          for (const auto& item : v->items())
            out.push_back(&item);
        }
        break;
      case Step::Kind::kIndex: {
        if (!v->isArray()) break;
        auto size = static_cast<int64_t>(v->items().size());
        int64_t i = step.index < 0 ? size + step.index : step.index;
        if (i < 0 || i >= size) {
          if (!allow_missing) {
            throw std::runtime_error("array index out of bounds: index " +
                                     std::to_string(step.index) + ", length " +
                                     std::to_string(size));
          }
          break;
        }
        out.push_back(&v->items()[static_cast<size_t>(i)]);
        break;
      }
      case Step::Kind::kSlice: {
        if (!v->isArray()) break;
        auto size = static_cast<int64_t>(v->items().size());
        auto clamp = [&](int64_t x) {
          return std::max<int64_t>(0, std::min(size, x < 0 ? size + x : x));
        };
        int64_t a = step.start ? clamp(*step.start) : 0;
        int64_t b = step.end ? clamp(*step.end) : size;
        for (int64_t i = a; i < b; i += std::max<int64_t>(1, step.stride))
          out.push_back(&v->items()[static_cast<size_t>(i)]);
        break;
      }
      case Step::Kind::kRecursive:
        recurse(*v, step.name, out);
        break;
      case Step::Kind::kFilter: {
        std::vector<const Value*> candidates;
        if (v->isArray()) {
          for (const auto& item : v->items())
            candidates.push_back(&item);
        } else {
          candidates.push_back(v);
        }
        for (const Value* item : candidates) {
          auto left = evaluate(step.left, *item, true, whole);
          if (step.op.empty()) {
            if (!left.empty()) out.push_back(item);
            continue;
          }
          if (left.empty()) continue;
          Value right = step.right;
          if (step.right_is_path) {
            auto r = evaluate(step.right_path, *item, true, whole);
            if (r.empty()) continue;
            right = *r[0];
          }
          if (compare(*left[0], step.op, right)) out.push_back(item);
        }
        break;
      }
    }
  }
  return out;
}

std::vector<const Value*> evaluate(const std::vector<Step>& steps, const Value& start,
                                   bool allow_missing, std::string_view whole) {
  std::vector<const Value*> current{&start};
  for (const auto& step : steps)
    current = applyStep(step, current, allow_missing, whole);
  return current;
}

std::string print(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kNull:
      return "";
    case Value::Kind::kBool:
      return v.asBool() ? "true" : "false";
    case Value::Kind::kNumber:
    case Value::Kind::kString:
      return v.text();
    default:
      return goJson(v);
  }
}

}  // namespace

struct JsonPath::Node {
  enum class Kind { kText, kExpr, kRange };
  Kind kind = Kind::kText;
  std::string text;
  Expr expr;
  std::vector<std::unique_ptr<Node>> children;
};

namespace {

using NodeList = std::vector<std::unique_ptr<JsonPath::Node>>;

void run(const NodeList& nodes, const Value& root, const Value& current, bool allow_missing,
         std::string_view whole, std::string& out) {
  for (const auto& node : nodes) {
    switch (node->kind) {
      case JsonPath::Node::Kind::kText:
        out += node->text;
        break;
      case JsonPath::Node::Kind::kExpr: {
        auto values =
            evaluate(node->expr.steps, node->expr.from_root ? root : current, allow_missing, whole);
        bool first = true;
        for (const Value* v : values) {
          if (!first) out += ' ';
          first = false;
          out += print(*v);
        }
        break;
      }
      case JsonPath::Node::Kind::kRange: {
        auto values =
            evaluate(node->expr.steps, node->expr.from_root ? root : current, allow_missing, whole);
        for (const Value* v : values)
          run(node->children, root, *v, allow_missing, whole, out);
        break;
      }
    }
  }
}

}  // namespace

JsonPath::JsonPath() = default;
JsonPath::~JsonPath() = default;
JsonPath::JsonPath(JsonPath&&) noexcept = default;
JsonPath& JsonPath::operator=(JsonPath&&) noexcept = default;

JsonPath JsonPath::parse(std::string_view text) {
  JsonPath path;
  std::vector<NodeList*> stack{&path.nodes_};
  size_t i = 0;
  while (i < text.size()) {
    size_t open = text.find('{', i);
    if (open != i) {
      auto node = std::make_unique<Node>();
      node->text = std::string(text.substr(i, open == std::string_view::npos ? open : open - i));
      stack.back()->push_back(std::move(node));
      if (open == std::string_view::npos) break;
    }
    size_t close = matching(text, open, '{', '}');
    if (close == std::string_view::npos) fail(text, open, "unclosed action");
    std::string inner = trim(text.substr(open + 1, close - open - 1));
    i = close + 1;
    auto node = std::make_unique<Node>();
    if (inner == "end") {
      if (stack.size() == 1) fail(text, open, "not in range, nothing to end");
      stack.pop_back();
      continue;
    }
    if (inner.starts_with("range ") || inner.starts_with("range\t")) {
      node->kind = Node::Kind::kRange;
      node->expr = parseExpr(std::string_view(inner).substr(6), text);
      NodeList* children = &node->children;
      stack.back()->push_back(std::move(node));
      stack.push_back(children);
      continue;
    }
    if (inner.size() >= 2 && (inner[0] == '"' || inner[0] == '\'') && inner.back() == inner[0]) {
      node->text = unquote(inner);
      stack.back()->push_back(std::move(node));
      continue;
    }
    node->kind = Node::Kind::kExpr;
    node->expr = parseExpr(inner, text);
    stack.back()->push_back(std::move(node));
  }
  if (stack.size() != 1) fail(text, text.size(), "range without end");
  return path;
}

std::string JsonPath::execute(const Value& root, bool allow_missing) const {
  std::string out;
  run(nodes_, root, root, allow_missing, "", out);
  return out;
}

}  // namespace skiff::cli
