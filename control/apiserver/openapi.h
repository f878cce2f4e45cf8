#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace skiff::apiserver {

// OpenAPI v3 documents generated from the API descriptors, as kube-apiserver serves them:
// GET /openapi/v3 lists one document per group version ("api/v1", "apis/apps/v1") and each
// document holds the paths of its resources (with the x-kubernetes-group-version-kind and
// x-kubernetes-action extensions and the query parameters kubectl looks for, fieldValidation among
// them) and the schemas of every type they use. Built once; immutable afterwards.
class OpenApi {
 public:
  static const OpenApi& instance();

  // The body of GET /openapi/v3.
  const std::string& index() const { return index_; }
  // The document of one group version, by its path ("api/v1", "apis/apps/v1").
  std::optional<std::string> document(std::string_view group_version_path) const;

 private:
  OpenApi();
  std::string index_;
  std::vector<std::pair<std::string, std::string>> documents_;
};

}  // namespace skiff::apiserver
