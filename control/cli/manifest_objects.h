#pragma once

#include <functional>
#include <string>
#include <vector>

#include "control/api/registry.h"
#include "control/api/value.h"

// The objects of the manifests `-f` names, both as written (for client-side apply, which sends
// what the file says) and checked against their types (every document of every file decoded with
// unknown fields refused before anything is sent).

namespace skiff::cli {

struct ManifestObject {
  std::string source;  // the file
  api::Mark mark;      // where the object starts
  const api::ResourceType* type = nullptr;
  api::Value value;  // as written, with metadata.namespace filled in for namespaced kinds
  std::string name;
  std::string ns;  // empty for cluster-scoped kinds
};

struct ManifestLoadOptions {
  std::vector<std::string> files;
  bool recursive = false;
  std::string default_namespace = "default";
  // When set, asked for the default namespace once the files were read, so that a missing file is
  // reported before a missing kubeconfig (the context's namespace comes from the kubeconfig).
  std::function<std::string()> context_namespace;
  // -n given on the command line: an object naming another namespace is an error, as in kubectl.
  bool namespace_given = false;
};

// Reads, parses and decodes (strictly) every object. Throws api::DecodeError with every problem
// of every file (`web.yaml:12:7: spec.replicas: expected integer, got string "3"`), or
// std::runtime_error for files that cannot be read or hold no objects.
std::vector<ManifestObject> loadManifestObjects(const ManifestLoadOptions& options);

// "web.yaml:3:1" for messages about a whole object.
std::string where(const ManifestObject& object);

}  // namespace skiff::cli
