#pragma once

#include <functional>
#include <string>
#include <vector>

#include "control/controllers/controller.h"

// The serviceaccount controller (pkg/controller/serviceaccount): a "default" ServiceAccount in
// every active namespace, made again when it is deleted. Tokens (the token controller, projected
// tokens) are not part of Skiff.

namespace skiff::controllers {

// The ServiceAccounts `ns` lacks of `wanted` (none while it is terminating).
// `existing(name)` says whether the cache has ServiceAccount ns/name.
std::vector<api::core::v1::ServiceAccount> serviceAccountsToCreate(
    const api::core::v1::Namespace& ns, const std::vector<std::string>& wanted,
    const std::function<bool(const std::string& name)>& existing);

class ServiceAccountController : public QueueController {
 public:
  ServiceAccountController(client::Client& client, client::SharedInformer& namespaces,
                           client::SharedInformer& service_accounts,
                           std::vector<std::string> wanted = {"default"});
  ~ServiceAccountController() override;

 protected:
  std::optional<std::chrono::milliseconds> sync(const std::string& key) override;

 private:
  client::Client& client_;
  client::SharedInformer& namespaces_;
  client::SharedInformer& service_accounts_;
  std::vector<std::string> wanted_;
};

}  // namespace skiff::controllers
