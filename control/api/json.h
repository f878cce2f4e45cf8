#pragma once

#include <string>
#include <string_view>

#include "control/api/value.h"

namespace skiff::api {

struct JsonParseOptions {
  std::string_view source;  // a file name for error messages
  size_t max_depth = 512;   // deeper nesting is an error, not a stack overflow
};

// Parses one JSON text (RFC 8259, UTF-8) into a Value with line and column marks.
// Throws DecodeError naming source:line:column on malformed input.
Value parseJson(std::string_view text, const JsonParseOptions& options = {});

enum class JsonStyle { kCompact, kPretty };

// Writes a Value as JSON. Strings are escaped as RFC 8259 requires; numbers are written as parsed.
std::string writeJson(const Value& value, JsonStyle style = JsonStyle::kCompact);
void appendJson(std::string& out, const Value& value, JsonStyle style = JsonStyle::kCompact);
// Appends `s` as a quoted JSON string.
void appendJsonString(std::string& out, std::string_view s);

}  // namespace skiff::api
