#include "control/apiserver/errors.h"

namespace skiff::apiserver {
namespace {

ApiError withDetails(ApiError e, const GroupResource& gr, std::string_view name) {
  e.details().set_name(std::string(name));
  e.details().set_group(gr.group);
  e.details().set_kind(gr.resource);
  return e;
}

}  // namespace

ApiError::ApiError(int code, std::string reason, const std::string& message)
    : std::runtime_error(message), code_(code), reason_(std::move(reason)) {}

api::meta::v1::Status ApiError::toStatus() const {
  api::meta::v1::Status status;
  status.mutable_metadata();
  status.set_status("Failure");
  status.set_message(what());
  status.set_reason(reason_);
  if (details_.ByteSizeLong() > 0) *status.mutable_details() = details_;
  status.set_code(code_);
  return status;
}

ApiError badRequest(const std::string& message) {
  return {400, "BadRequest", message};
}

ApiError unauthorized(const std::string& message) {
  return {401, "Unauthorized", message};
}

ApiError forbidden(const GroupResource& gr, std::string_view name, const std::string& why) {
  std::string subject = name.empty() ? gr.str() : gr.str() + " \"" + std::string(name) + "\"";
  return withDetails({403, "Forbidden", subject + " is forbidden: " + why}, gr, name);
}

ApiError notFound(const GroupResource& gr, std::string_view name) {
  return withDetails({404, "NotFound", gr.str() + " \"" + std::string(name) + "\" not found"}, gr,
                     name);
}

ApiError methodNotAllowed() {
  return {405, "MethodNotAllowed",
          "the server does not allow this method on the requested resource"};
}

ApiError notAcceptable(const std::string& message) {
  return {406, "NotAcceptable", message};
}

ApiError alreadyExists(const GroupResource& gr, std::string_view name) {
  return withDetails(
      {409, "AlreadyExists", gr.str() + " \"" + std::string(name) + "\" already exists"}, gr, name);
}

ApiError conflict(const GroupResource& gr, std::string_view name, const std::string& why) {
  return withDetails(
      {409, "Conflict",
       "Operation cannot be fulfilled on " + gr.str() + " \"" + std::string(name) + "\": " + why},
      gr, name);
}

ApiError staleUpdate(const GroupResource& gr, std::string_view name) {
  return conflict(gr, name,
                  "the object has been modified; please apply your changes to the latest version "
                  "and try again");
}

ApiError gone(const std::string& message) {
  return {410, "Expired", message};
}

ApiError tooLarge(size_t limit) {
  return {413, "RequestEntityTooLarge",
          "Request entity too large: limit is " + std::to_string(limit)};
}

ApiError unsupportedMediaType(std::string_view content_type) {
  return {415, "UnsupportedMediaType",
          "the body of the request was in an unknown format (" + std::string(content_type) +
              ") - accepted media types include: application/json, application/yaml"};
}

ApiError invalid(std::string_view kind, std::string_view group, std::string_view name,
                 const std::vector<FieldCause>& causes) {
  std::string qualified =
      group.empty() ? std::string(kind) : std::string(kind) + "." + std::string(group);
  std::string list;
  for (const auto& c : causes) {
    if (!list.empty()) list += ", ";
    list += c.field.empty() ? c.detail : c.field + ": " + c.detail;
  }
  if (causes.size() > 1) list = "[" + list + "]";
  ApiError e(422, "Invalid", qualified + " \"" + std::string(name) + "\" is invalid: " + list);
  e.details().set_name(std::string(name));
  e.details().set_group(std::string(group));
  e.details().set_kind(std::string(kind));
  for (const auto& c : causes) {
    auto* cause = e.details().add_causes();
    cause->set_reason(c.type);
    cause->set_message(c.detail);
    cause->set_field(c.field);
  }
  return e;
}

ApiError tooManyRequests(const std::string& message, int retry_after_seconds) {
  ApiError e(429, "TooManyRequests", message);
  e.details().set_retry_after_seconds(retry_after_seconds);
  return e;
}

ApiError internalError(const std::string& message) {
  return {500, "InternalError", "Internal error occurred: " + message};
}

ApiError serverTimeout(const std::string& message) {
  return {504, "Timeout", message};
}

}  // namespace skiff::apiserver
