#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace skiff::api {

// Where a value stood in its source text. Lines and columns start at 1; 0 means unknown.
struct Mark {
  uint32_t line = 0;
  uint32_t column = 0;
  bool known() const { return line != 0; }
};

// One problem found while reading input: where it is (source file, line, column and the field
// path in Kubernetes' notation, `spec.containers[0].ports[0].containerPort`) and what is wrong.
struct Diagnostic {
  std::string source;
  Mark mark;
  std::string path;
  std::string message;

  // "web.yaml:12:7: spec.replicas: expected integer, got string" (parts that are unknown are left
  // out).
  std::string toString() const;
};

// Thrown when input cannot be read; carries every problem found, not only the first.
class DecodeError : public std::runtime_error {
 public:
  explicit DecodeError(std::vector<Diagnostic> diagnostics);
  explicit DecodeError(Diagnostic diagnostic);
  const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }

 private:
  std::vector<Diagnostic> diagnostics_;
};

// A JSON value that remembers where it came from. JSON and YAML both parse into it, the codec reads
// it into messages and writes messages into it, and it is the unstructured form of an object.
//
// YAML plain (unquoted) scalars are resolved the way Kubernetes' YAML reader does (null, bool,
// integer, float or string) but keep their source text, so that a field whose type is string takes
// `version: 1.10` as "1.10" and `enabled: yes` as "yes".
class Value {
 public:
  enum class Kind : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };
  struct Member;
  using Array = std::vector<Value>;
  using Object = std::vector<Member>;

  Value() = default;
  static Value null(Mark mark = {});
  static Value boolean(bool b, Mark mark = {});
  static Value integer(int64_t i, Mark mark = {});
  static Value number(double d, Mark mark = {});
  // A number as written in the source; `text` must be a JSON number literal.
  static Value numberLiteral(std::string text, Mark mark = {});
  static Value string(std::string s, Mark mark = {});
  static Value array(Mark mark = {});
  static Value object(Mark mark = {});
  // A YAML plain scalar, resolved by YAML 1.1 core rules; `text` is kept verbatim.
  static Value plainScalar(std::string text, Mark mark = {});

  Kind kind() const { return kind_; }
  bool isNull() const { return kind_ == Kind::kNull; }
  bool isBool() const { return kind_ == Kind::kBool; }
  bool isNumber() const { return kind_ == Kind::kNumber; }
  bool isString() const { return kind_ == Kind::kString; }
  bool isArray() const { return kind_ == Kind::kArray; }
  bool isObject() const { return kind_ == Kind::kObject; }
  // True for a YAML plain scalar (of any resolved kind).
  bool isPlain() const { return plain_; }
  // True for a number written without fraction or exponent that fits in int64.
  bool isInteger() const { return kind_ == Kind::kNumber && is_int_; }

  Mark mark() const { return mark_; }
  void setMark(Mark mark) { mark_ = mark; }

  bool asBool() const { return bool_; }
  int64_t asInt() const { return int_; }
  double asDouble() const { return double_; }
  // The string of a string; the literal of a number or plain scalar (as written).
  const std::string& text() const { return text_; }

  const Array& items() const { return items_; }
  Array& items() { return items_; }
  const Object& members() const { return members_; }
  Object& members() { return members_; }

  // Object access. find() returns the first member with the key, or nullptr.
  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  // Sets (replacing the first member with the key) or appends a member.
  Value& set(std::string key, Value value, Mark key_mark = {});
  // Appends a member without looking for an existing one (the caller knows it is new).
  Value& append(std::string key, Value value, Mark key_mark = {});
  bool erase(std::string_view key);
  Value& push(Value value);

  // "null", "boolean", "number", "string", "array", "object": for error messages.
  std::string_view typeName() const;

  // Equality by meaning: numbers by value, objects regardless of member order, marks ignored.
  friend bool operator==(const Value& a, const Value& b);

 private:
  Kind kind_ = Kind::kNull;
  bool plain_ = false;
  bool is_int_ = false;
  bool bool_ = false;
  Mark mark_;
  int64_t int_ = 0;
  double double_ = 0;
  std::string text_;
  Array items_;
  Object members_;
};

struct Value::Member {
  std::string key;
  Mark key_mark;
  Value value;
};

// Builds a field path in Kubernetes' notation while the codec walks a tree.
class FieldPath {
 public:
  void pushField(std::string_view name);
  void pushIndex(size_t index);
  void pushKey(std::string_view key);
  void pop();
  const std::string& str() const { return path_; }

 private:
  std::string path_;
  std::vector<size_t> marks_;
};

}  // namespace skiff::api
