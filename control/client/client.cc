#include "control/client/client.h"

namespace skiff::client {
namespace {

void appendEscapedSegment(std::string& out, std::string_view segment) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : segment) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '.' || c == '_' || c == '~' || c == ':' || c == '@';
    if (plain) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
}

}  // namespace

ApiError::ApiError(int code, std::string reason, const std::string& message, api::Value status)
    : std::runtime_error(message),
      code_(code),
      reason_(std::move(reason)),
      status_(std::move(status)) {}

std::vector<StatusCause> ApiError::causes() const {
  std::vector<StatusCause> out;
  if (!status_.isObject()) return out;
  const api::Value* details = status_.find("details");
  const api::Value* causes = details != nullptr ? details->find("causes") : nullptr;
  if (causes == nullptr || !causes->isArray()) return out;
  for (const auto& cause : causes->items()) {
    StatusCause c;
    auto text = [&](std::string_view key) {
      const api::Value* v = cause.find(key);
      return v != nullptr && v->isString() ? v->text() : std::string();
    };
    c.type = text("reason");
    c.message = text("message");
    c.field = text("field");
    out.push_back(std::move(c));
  }
  return out;
}

std::string resourcePath(const api::ResourceType& type, std::string_view ns, std::string_view name,
                         std::string_view subresource) {
  std::string path =
      type.group.empty() ? "/api/" + type.version : "/apis/" + type.group + "/" + type.version;
  if (type.namespaced && !ns.empty()) {
    path += "/namespaces/";
    appendEscapedSegment(path, ns);
  }
  path += '/';
  path += type.plural;
  if (!name.empty()) {
    path += '/';
    appendEscapedSegment(path, name);
    if (!subresource.empty()) {
      path += '/';
      appendEscapedSegment(path, subresource);
    }
  }
  return path;
}

}  // namespace skiff::client
