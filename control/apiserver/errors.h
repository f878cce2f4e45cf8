#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "skiff/api/meta_v1.pb.h"

namespace skiff::apiserver {

// A resource as errors name it: "pods", "deployments.apps".
struct GroupResource {
  std::string group;
  std::string resource;
  std::string str() const { return group.empty() ? resource : resource + "." + group; }
};

// A field-level problem of a 422 Invalid answer, as Kubernetes' field.Error.
struct FieldCause {
  std::string type;    // FieldValueRequired, FieldValueInvalid, FieldValueNotSupported, ...
  std::string field;   // spec.template.spec.containers[0].name
  std::string detail;  // "Required value", "Invalid value: -1: must be ..."
};

// An error the apiserver answers with a `kind: Status` body. Handlers throw it; the server turns it
// into the response, so every failure has Kubernetes' code, reason and message.
class ApiError : public std::runtime_error {
 public:
  ApiError(int code, std::string reason, const std::string& message);

  int code() const { return code_; }
  const std::string& reason() const { return reason_; }
  api::meta::v1::StatusDetails& details() { return details_; }
  const api::meta::v1::StatusDetails& details() const { return details_; }
  // The error as a meta/v1 Status object.
  api::meta::v1::Status toStatus() const;

 private:
  int code_;
  std::string reason_;
  api::meta::v1::StatusDetails details_;
};

ApiError badRequest(const std::string& message);
ApiError unauthorized(const std::string& message = "Unauthorized");
ApiError forbidden(const GroupResource& gr, std::string_view name, const std::string& why);
ApiError notFound(const GroupResource& gr, std::string_view name);
ApiError methodNotAllowed();
ApiError notAcceptable(const std::string& message);
ApiError alreadyExists(const GroupResource& gr, std::string_view name);
ApiError conflict(const GroupResource& gr, std::string_view name, const std::string& why);
// The resourceVersion a client sent no longer matches the object.
ApiError staleUpdate(const GroupResource& gr, std::string_view name);
ApiError gone(const std::string& message);  // 410 Expired: "too old resource version: 5 (9)"
ApiError tooLarge(size_t limit);
ApiError unsupportedMediaType(std::string_view content_type);
ApiError invalid(std::string_view kind, std::string_view group, std::string_view name,
                 const std::vector<FieldCause>& causes);
ApiError tooManyRequests(const std::string& message, int retry_after_seconds);
ApiError internalError(const std::string& message);
ApiError serverTimeout(const std::string& message);

}  // namespace skiff::apiserver
