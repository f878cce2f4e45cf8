#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

namespace skiff::api {

// One API kind Skiff knows, read from the `(skiff.api.resource)` option of its message.
struct ResourceType {
  std::string group;    // "" for core
  std::string version;  // "v1"
  std::string kind;     // "Deployment"
  std::string plural;   // "deployments"; empty for kinds that are not served as resources
  std::string singular;
  bool namespaced = false;
  std::vector<std::string> short_names;
  std::vector<std::string> categories;
  std::vector<std::string> subresources;
  const google::protobuf::Descriptor* descriptor = nullptr;

  // "apps/v1", or "v1" for the core group.
  std::string apiVersion() const;
  bool served() const { return !plural.empty(); }
  std::unique_ptr<google::protobuf::Message> newMessage() const;
};

// The table of built-in kinds, built once from the generated descriptors. Immutable, so it is safe
// to read from any thread.
class Registry {
 public:
  static const Registry& builtin();

  std::span<const ResourceType> types() const { return types_; }
  const ResourceType* byKind(std::string_view api_version, std::string_view kind) const;
  const ResourceType* byResource(std::string_view group, std::string_view version,
                                 std::string_view plural) const;
  const ResourceType* byDescriptor(const google::protobuf::Descriptor* descriptor) const;
  // Resolves what a user types on a command line: plural, singular, short name or kind, in any
  // case, optionally qualified by group ("deployments.apps"). Returns nullptr when unknown.
  const ResourceType* resolve(std::string_view name) const;

 private:
  Registry();
  std::vector<ResourceType> types_;
};

// "apps/v1" -> {"apps", "v1"}; "v1" -> {"", "v1"}.
std::pair<std::string_view, std::string_view> splitApiVersion(std::string_view api_version);

}  // namespace skiff::api
