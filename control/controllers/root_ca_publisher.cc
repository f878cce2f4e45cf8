#include "control/controllers/root_ca_publisher.h"

#include "control/client/typed.h"

namespace skiff::controllers {

using api::core::v1::ConfigMap;
using api::core::v1::Namespace;

namespace {

// Kubernetes' text, word for word.
constexpr const char* kDescription =
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters.";

}  // namespace

std::optional<RootCaAction> rootCaConfigMapAction(const Namespace& ns, const ConfigMap* existing,
                                                  const std::string& ca_pem) {
  // Creates in a terminating namespace are refused (NamespaceTerminating); nothing to do there.
  if (ns.metadata().has_deletion_timestamp() || ns.status().phase() == "Terminating") {
    return std::nullopt;
  }
  RootCaAction action;
  if (existing == nullptr) {
    action.create = true;
    auto* meta = action.config_map.mutable_metadata();
    meta->set_name(kRootCaConfigMapName);
    meta->set_namespace_(ns.metadata().name());
    (*meta->mutable_annotations())[kRootCaDescriptionAnnotation] = kDescription;
    (*action.config_map.mutable_data())["ca.crt"] = ca_pem;
    return action;
  }
  // The data must be exactly {ca.crt}, and the description there (any text).
  const auto& data = existing->data();
  const auto ca = data.find("ca.crt");
  const auto description = existing->metadata().annotations().find(kRootCaDescriptionAnnotation);
  if (data.size() == 1 && ca != data.end() && ca->second == ca_pem &&
      existing->binary_data().empty() && description != existing->metadata().annotations().end() &&
      !description->second.empty()) {
    return std::nullopt;
  }
  action.config_map = *existing;
  action.config_map.clear_data();
  action.config_map.clear_binary_data();
  (*action.config_map.mutable_data())["ca.crt"] = ca_pem;
  (*action.config_map.mutable_metadata()->mutable_annotations())[kRootCaDescriptionAnnotation] =
      kDescription;
  return action;
}

RootCaPublisher::RootCaPublisher(client::Client& client, client::SharedInformer& namespaces,
                                 client::SharedInformer& config_maps, std::string ca_pem)
    : QueueController("root-ca-cert-publisher"),
      client_(client),
      namespaces_(namespaces),
      config_maps_(config_maps),
      ca_pem_(std::move(ca_pem)) {
  namespaces_.addEventHandler({
      .on_add = [this](const client::ObjectPtr& o) { enqueue(client::objectKey(*o)); },
      .on_update = [this](const client::ObjectPtr&,
                          const client::ObjectPtr& o) { enqueue(client::objectKey(*o)); },
      .on_delete = nullptr,
  });
  auto config_map_changed = [this](const client::ObjectPtr& o) {
    const auto& meta = client::as<ConfigMap>(o).metadata();
    if (meta.name() == kRootCaConfigMapName) enqueue(meta.namespace_());
  };
  config_maps_.addEventHandler({
      .on_add = nullptr,
      .on_update = [config_map_changed](const client::ObjectPtr&,
                                        const client::ObjectPtr& o) { config_map_changed(o); },
      .on_delete = config_map_changed,
  });
}

RootCaPublisher::~RootCaPublisher() {
  stop();
}

std::optional<std::chrono::milliseconds> RootCaPublisher::sync(const std::string& key) {
  auto obj = namespaces_.cache().get(key);
  if (!obj) return std::nullopt;
  auto existing = config_maps_.cache().get(key, kRootCaConfigMapName);
  auto action = rootCaConfigMapAction(
      client::as<Namespace>(obj), existing ? &client::as<ConfigMap>(existing) : nullptr, ca_pem_);
  if (!action) return std::nullopt;
  try {
    if (action->create) {
      client::create(client_, action->config_map);
    } else {
      client::update(client_, action->config_map);
    }
  } catch (const client::ApiError& e) {
    // Terminating or gone: nothing to publish. A create the cache has not seen yet, or an
    // update that lost a race: the informer brings the change and the key comes back.
    if (e.code() == 403 || e.isNotFound()) return std::nullopt;
    if (e.isAlreadyExists() || e.isConflict()) return std::chrono::milliseconds(200);
    throw;
  }
  return std::nullopt;
}

}  // namespace skiff::controllers
