#include "control/api/registry.h"

#include <algorithm>
#include <cctype>

#include "skiff/api/apps_v1.pb.h"
#include "skiff/api/authentication_v1.pb.h"
#include "skiff/api/authorization_v1.pb.h"
#include "skiff/api/autoscaling_v1.pb.h"
#include "skiff/api/batch_v1.pb.h"
#include "skiff/api/certificates_v1.pb.h"
#include "skiff/api/coordination_v1.pb.h"
#include "skiff/api/core_v1.pb.h"
#include "skiff/api/discovery_v1.pb.h"
#include "skiff/api/meta_v1.pb.h"
#include "skiff/api/options.pb.h"
#include "skiff/api/rbac_v1.pb.h"
#include "skiff/api/storage_v1.pb.h"

namespace skiff::api {
namespace {

// Naming a message of each file links that file's descriptors into every binary.
std::vector<const google::protobuf::FileDescriptor*> apiFiles() {
  return {
      meta::v1::ObjectMeta::descriptor()->file(),
      core::v1::Pod::descriptor()->file(),
      apps::v1::Deployment::descriptor()->file(),
      batch::v1::Job::descriptor()->file(),
      discovery::v1::EndpointSlice::descriptor()->file(),
      coordination::v1::Lease::descriptor()->file(),
      autoscaling::v1::Scale::descriptor()->file(),
      rbac::v1::Role::descriptor()->file(),
      authorization::v1::SubjectAccessReview::descriptor()->file(),
      authentication::v1::TokenRequest::descriptor()->file(),
      certificates::v1::CertificateSigningRequest::descriptor()->file(),
      storage::v1::StorageClass::descriptor()->file(),
  };
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

std::pair<std::string_view, std::string_view> splitApiVersion(std::string_view api_version) {
  size_t slash = api_version.find('/');
  if (slash == std::string_view::npos) return {"", api_version};
  return {api_version.substr(0, slash), api_version.substr(slash + 1)};
}

std::string ResourceType::apiVersion() const {
  return group.empty() ? version : group + "/" + version;
}

std::unique_ptr<google::protobuf::Message> ResourceType::newMessage() const {
  const auto* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(descriptor);
  return std::unique_ptr<google::protobuf::Message>(prototype->New());
}

Registry::Registry() {
  for (const auto* file : apiFiles()) {
    for (int i = 0; i < file->message_type_count(); ++i) {
      const auto* d = file->message_type(i);
      if (!d->options().HasExtension(skiff::api::resource)) continue;
      const auto& info = d->options().GetExtension(skiff::api::resource);
      ResourceType t;
      t.group = info.group();
      t.version = info.version();
      t.kind = info.kind();
      t.plural = info.plural();
      t.singular = info.singular().empty() ? lower(info.kind()) : info.singular();
      t.namespaced = info.namespaced();
      t.short_names.assign(info.short_names().begin(), info.short_names().end());
      t.categories.assign(info.categories().begin(), info.categories().end());
      t.subresources.assign(info.subresources().begin(), info.subresources().end());
      t.descriptor = d;
      types_.push_back(std::move(t));
    }
  }
}

const Registry& Registry::builtin() {
  static const Registry registry;
  return registry;
}

const ResourceType* Registry::byKind(std::string_view api_version, std::string_view kind) const {
  auto [group, version] = splitApiVersion(api_version);
  for (const auto& t : types_) {
    if (t.kind == kind && t.group == group && t.version == version) return &t;
  }
  return nullptr;
}

const ResourceType* Registry::byResource(std::string_view group, std::string_view version,
                                         std::string_view plural) const {
  for (const auto& t : types_) {
    if (t.plural == plural && t.group == group && t.version == version) return &t;
  }
  return nullptr;
}

const ResourceType* Registry::byDescriptor(const google::protobuf::Descriptor* descriptor) const {
  for (const auto& t : types_) {
    if (t.descriptor == descriptor) return &t;
  }
  return nullptr;
}

const ResourceType* Registry::resolve(std::string_view name) const {
  std::string wanted = lower(name);
  std::string group;
  if (size_t dot = wanted.find('.'); dot != std::string::npos) {
    group = wanted.substr(dot + 1);
    wanted.resize(dot);
  }
  for (const auto& t : types_) {
    if (!t.served()) continue;
    if (!group.empty() && t.group != group && !t.group.starts_with(group + ".")) continue;
    bool match =
        t.plural == wanted || t.singular == wanted || lower(t.kind) == wanted ||
        std::find(t.short_names.begin(), t.short_names.end(), wanted) != t.short_names.end();
    if (match) return &t;
  }
  return nullptr;
}

}  // namespace skiff::api
