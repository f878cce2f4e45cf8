#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "control/api/value.h"

namespace skiff::api {

struct YamlParseOptions {
  std::string_view source;  // a file name for error messages
  size_t max_depth = 512;
  // A document may expand (through aliases) to at most this many nodes: stops "billion laughs".
  size_t max_nodes = 1'000'000;
  size_t max_documents = 10'000;
};

// Parses a YAML stream of one or more documents ("---" separated). Empty documents are dropped,
// as kubectl drops them. Each value is marked with its line and column in the stream.
// Throws DecodeError naming source:line:column on malformed input.
std::vector<Value> parseYamlDocuments(std::string_view text, const YamlParseOptions& options = {});

// Parses a stream that must hold exactly one document.
Value parseYaml(std::string_view text, const YamlParseOptions& options = {});

// Writes a Value as a block-style YAML document in kubectl's layout (sequences under a key are not
// indented). Strings that YAML would read as something else are quoted.
std::string writeYaml(const Value& value);

}  // namespace skiff::api
