#include "control/cli/manifest_objects.h"

#include <stdexcept>

#include "control/api/codec.h"
#include "control/cli/manifest_files.h"

namespace skiff::cli {
namespace {

using api::Value;

std::string text(const Value* v) {
  return v != nullptr && v->isString() ? v->text() : std::string();
}

// A `kind: List` (or any *List with items) stands for its items.
void expand(const Value& document, std::vector<Value>& out) {
  const Value* kind = document.isObject() ? document.find("kind") : nullptr;
  const Value* items = document.isObject() ? document.find("items") : nullptr;
  if (kind != nullptr && kind->isString() && kind->text().ends_with("List") && items != nullptr &&
      items->isArray()) {
    for (const auto& item : items->items())
      expand(item, out);
    return;
  }
  out.push_back(document);
}

}  // namespace

std::string where(const ManifestObject& object) {
  std::string s = object.source;
  if (object.mark.known())
    s += ":" + std::to_string(object.mark.line) + ":" + std::to_string(object.mark.column);
  return s;
}

std::vector<ManifestObject> loadManifestObjects(const ManifestLoadOptions& given) {
  std::vector<ManifestFile> files = readManifestFiles(given.files, given.recursive);
  ManifestLoadOptions options = given;
  if (options.context_namespace) options.default_namespace = options.context_namespace();
  std::vector<ManifestObject> objects;
  std::vector<api::Diagnostic> problems;
  for (const auto& file : files) {
    std::vector<Value> documents;
    try {
      for (auto& d : api::parseDocuments(file.text, file.name))
        expand(d, documents);
    } catch (const api::DecodeError& e) {
      problems.insert(problems.end(), e.diagnostics().begin(), e.diagnostics().end());
      continue;
    }
    for (auto& document : documents) {
      if (document.isNull()) continue;
      try {
        api::DecodedObject decoded = api::decodeObject(
            document, {.unknown_fields = api::UnknownFields::kStrict, .source = file.name});
        ManifestObject object;
        object.source = file.name;
        object.mark = document.mark();
        object.type = decoded.type;
        const Value* metadata = document.find("metadata");
        object.name = text(metadata != nullptr ? metadata->find("name") : nullptr);
        if (object.name.empty()) {
          problems.push_back(
              {file.name, document.mark(), "metadata.name", "resource name may not be empty"});
          continue;
        }
        if (!object.type->served()) {
          problems.push_back(
              {file.name, document.mark(), "kind",
               "the server doesn't have a resource type \"" + object.type->kind + "\""});
          continue;
        }
        if (object.type->namespaced) {
          std::string ns = text(metadata->find("namespace"));
          if (ns.empty()) {
            ns = options.default_namespace;
            Value* md = document.find("metadata");
            md->set("namespace", Value::string(ns));
          } else if (options.namespace_given && ns != options.default_namespace) {
            problems.push_back(
                {file.name, document.mark(), "metadata.namespace",
                 "the namespace from the provided object \"" + ns +
                     "\" does not match the namespace \"" + options.default_namespace +
                     "\". You must pass '--namespace=" + ns + "' to perform this operation."});
            continue;
          }
          object.ns = ns;
        }
        object.value = std::move(document);
        objects.push_back(std::move(object));
      } catch (const api::DecodeError& e) {
        problems.insert(problems.end(), e.diagnostics().begin(), e.diagnostics().end());
      }
    }
  }
  if (!problems.empty()) throw api::DecodeError(std::move(problems));
  if (objects.empty()) {
    throw std::runtime_error("no objects passed to apply");
  }
  return objects;
}

}  // namespace skiff::cli
