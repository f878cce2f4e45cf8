#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/message.h>

#include "control/api/json.h"
#include "control/api/registry.h"
#include "control/api/value.h"

namespace skiff::api {

// What to do with a field the type does not have (the apiserver's `fieldValidation`).
enum class UnknownFields { kStrict, kWarn, kIgnore };

struct DecodeOptions {
  UnknownFields unknown_fields = UnknownFields::kStrict;
  std::string_view source;                      // a file name for error messages
  std::vector<Diagnostic>* warnings = nullptr;  // receives unknown/duplicate fields under kWarn
};

struct EncodeOptions {
  // Write apiVersion and kind on a top-level object of a registered kind.
  bool type_meta = true;
};

// The one descriptor-driven codec between Kubernetes' JSON shape and the API messages. It reads the
// JSON names, the `(skiff.api.json_form)` of special types (IntOrString, Quantity, Time, ...), and
// Kubernetes' rules: int64 as JSON numbers, empty values left out, unknown and duplicate fields
// reported with their path under Strict / Warn / Ignore.
//
// decode() throws DecodeError listing every problem with its path and, when the Value came from
// text, its line and column. On error `out` may be partly filled: callers decode into a fresh
// message and use it only when decode() returned.
void decode(const Value& value, google::protobuf::Message& out, const DecodeOptions& options = {});
Value encode(const google::protobuf::Message& message, const EncodeOptions& options = {});

// Text forms of the above.
void decodeJson(std::string_view json, google::protobuf::Message& out,
                const DecodeOptions& options = {});
void decodeYaml(std::string_view yaml, google::protobuf::Message& out,
                const DecodeOptions& options = {});
std::string encodeJson(const google::protobuf::Message& message,
                       JsonStyle style = JsonStyle::kCompact, const EncodeOptions& options = {});
std::string encodeYaml(const google::protobuf::Message& message, const EncodeOptions& options = {});

// An object read from a manifest, typed by its apiVersion and kind.
struct DecodedObject {
  const ResourceType* type = nullptr;
  std::unique_ptr<google::protobuf::Message> message;
  Mark mark;  // where the object starts
};

// Decodes one object whose type comes from its own apiVersion and kind.
DecodedObject decodeObject(const Value& value, const DecodeOptions& options = {});

// Reads a manifest file: JSON, or YAML with one or more documents; `kind: List` (and any *List) is
// expanded into its items. Every document is checked before anything is returned, so a bad
// document fails the whole file with all its errors.
std::vector<DecodedObject> decodeManifests(std::string_view text,
                                           const DecodeOptions& options = {});

// Parses JSON or YAML text (told apart by the first non-space character) into values.
std::vector<Value> parseDocuments(std::string_view text, std::string_view source = {});

}  // namespace skiff::api
