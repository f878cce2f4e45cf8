#include "control/controllers/serviceaccount_controller.h"

#include <algorithm>

#include "control/client/typed.h"

namespace skiff::controllers {

using api::core::v1::Namespace;
using api::core::v1::ServiceAccount;

std::vector<ServiceAccount> serviceAccountsToCreate(
    const Namespace& ns, const std::vector<std::string>& wanted,
    const std::function<bool(const std::string& name)>& existing) {
  std::vector<ServiceAccount> out;
  // Creates in a terminating namespace are refused; Kubernetes skips it the same way.
  if (ns.metadata().has_deletion_timestamp() || ns.status().phase() == "Terminating") return out;
  for (const auto& name : wanted) {
    if (existing(name)) continue;
    ServiceAccount sa;
    sa.mutable_metadata()->set_name(name);
    sa.mutable_metadata()->set_namespace_(ns.metadata().name());
    out.push_back(std::move(sa));
  }
  return out;
}

ServiceAccountController::ServiceAccountController(client::Client& client,
                                                   client::SharedInformer& namespaces,
                                                   client::SharedInformer& service_accounts,
                                                   std::vector<std::string> wanted)
    : QueueController("serviceaccount"),
      client_(client),
      namespaces_(namespaces),
      service_accounts_(service_accounts),
      wanted_(std::move(wanted)) {
  namespaces_.addEventHandler({
      .on_add = [this](const client::ObjectPtr& o) { enqueue(client::objectKey(*o)); },
      .on_update = [this](const client::ObjectPtr&,
                          const client::ObjectPtr& o) { enqueue(client::objectKey(*o)); },
      .on_delete = nullptr,
  });
  service_accounts_.addEventHandler({
      .on_add = nullptr,
      .on_update = nullptr,
      .on_delete =
          [this](const client::ObjectPtr& o) {
            const auto& meta = client::as<ServiceAccount>(o).metadata();
            if (std::find(wanted_.begin(), wanted_.end(), meta.name()) != wanted_.end()) {
              enqueue(meta.namespace_());
            }
          },
  });
}

ServiceAccountController::~ServiceAccountController() {
  stop();
}

std::optional<std::chrono::milliseconds> ServiceAccountController::sync(const std::string& key) {
  auto obj = namespaces_.cache().get(key);
  if (!obj) return std::nullopt;
  const auto& ns = client::as<Namespace>(obj);
  auto missing = serviceAccountsToCreate(ns, wanted_, [&](const std::string& name) {
    return service_accounts_.cache().get(key, name) != nullptr;
  });
  for (const auto& sa : missing) {
    try {
      client::create(client_, sa);
    } catch (const client::ApiError& e) {
      if (e.isAlreadyExists()) continue;                           // the cache lags behind
      if (e.code() == 403 || e.isNotFound()) return std::nullopt;  // terminating or gone
      throw;
    }
  }
  return std::nullopt;
}

}  // namespace skiff::controllers
