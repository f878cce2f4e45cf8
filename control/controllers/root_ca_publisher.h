#pragma once

#include <optional>
#include <string>

#include "control/controllers/controller.h"

// kube-controller-manager's root-ca-cert-publisher
// (pkg/controller/certificates/rootcacertpublisher): a ConfigMap kube-root-ca.crt in every
// namespace whose ca.crt is the cluster's CA bundle, so pods can check the apiserver's certificate
// (the kube-api-access-* projected volume mounts it as
// /var/run/secrets/kubernetes.io/serviceaccount/ca.crt). Made again when it is deleted and put
// back when it is edited.

namespace skiff::controllers {

inline constexpr const char* kRootCaConfigMapName = "kube-root-ca.crt";
inline constexpr const char* kRootCaDescriptionAnnotation = "kubernetes.io/description";

// What namespace `ns` needs: a ConfigMap to create (`create`), one to update (the existing one
// with the data and the description annotation put back), or nothing (nullopt: it is right, or
// the namespace is terminating).
struct RootCaAction {
  bool create = false;
  api::core::v1::ConfigMap config_map;
};
std::optional<RootCaAction> rootCaConfigMapAction(const api::core::v1::Namespace& ns,
                                                  const api::core::v1::ConfigMap* existing,
                                                  const std::string& ca_pem);

class RootCaPublisher : public QueueController {
 public:
  // `config_maps` may watch only kube-root-ca.crt (a field selector on metadata.name).
  RootCaPublisher(client::Client& client, client::SharedInformer& namespaces,
                  client::SharedInformer& config_maps, std::string ca_pem);
  ~RootCaPublisher() override;

 protected:
  std::optional<std::chrono::milliseconds> sync(const std::string& key) override;

 private:
  client::Client& client_;
  client::SharedInformer& namespaces_;
  client::SharedInformer& config_maps_;
  std::string ca_pem_;
};

}  // namespace skiff::controllers
