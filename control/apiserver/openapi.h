#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace skiff::apiserver {

// OpenAPI documents generated from the API descriptors, as kube-apiserver serves them.
// - v3: GET /openapi/v3 lists one document per group version ("api/v1", "apis/apps/v1") and each
//   document holds the paths of its resources (with the x-kubernetes-group-version-kind and
//   x-kubernetes-action extensions and the query parameters kubectl looks for, fieldValidation
//   among them) and the schemas of every type they use.
// - v2: GET /openapi/v2, one Swagger 2.0 document of every path and definition, in JSON or in the
//   protobuf form client-go asks for first (kubectl falls back to it when a kind has no PATCH path
//   in its v3 group-version document, as autoscaling/v1 Scale has not).
// Built once; immutable afterwards.
class OpenApi {
 public:
  static const OpenApi& instance();

  // The body of GET /openapi/v3.
  const std::string& index() const { return index_; }
  // The document of one group version, by its path ("api/v1", "apis/apps/v1").
  std::optional<std::string> document(std::string_view group_version_path) const;

  const std::string& v2Json() const { return v2_json_; }
  // gnostic's openapi.v2.Document (application/com.github.proto-openapi.spec.v2.v1.0+protobuf).
  const std::string& v2Protobuf() const { return v2_protobuf_; }
  // Names both forms of the v2 document, for If-None-Match.
  const std::string& v2ETag() const { return v2_etag_; }

 private:
  OpenApi();
  std::string index_;
  std::vector<std::pair<std::string, std::string>> documents_;
  std::string v2_json_;
  std::string v2_protobuf_;
  std::string v2_etag_;
};

}  // namespace skiff::apiserver
