#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "control/api/value.h"

// kubectl's JSONPath templates (`-o jsonpath='{.items[*].metadata.name}'`): text outside braces is
// copied; inside, `.field`, `['field']`, `field\.with\.dots`, `[n]`, `[-n]`, `[a:b]`, `[*]`,
// `..field` (recursive descent), filters `[?(@.type=="Ready")]` (==, !=, <, <=, >, >=, or
// existence),
// `{range EXPR}...{end}` and string literals `{"\n"}`. Several results are joined by a space;
// strings print bare, objects and lists as JSON.

namespace skiff::cli {

class JsonPath {
 public:
  // Throws std::invalid_argument naming the problem and where in the template it is.
  static JsonPath parse(std::string_view text);
  ~JsonPath();
  JsonPath(JsonPath&&) noexcept;
  JsonPath& operator=(JsonPath&&) noexcept;

  // Throws std::runtime_error for a field that does not exist (kubectl's
  // "error executing jsonpath ...: ... is not found"), unless allow_missing.
  std::string execute(const api::Value& root, bool allow_missing = false) const;

  struct Node;

 private:
  JsonPath();
  std::vector<std::unique_ptr<Node>> nodes_;
};

}  // namespace skiff::cli
