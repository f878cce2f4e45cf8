#include "control/cli/control_plane.h"

#include <iostream>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <thread>

#include "control/api/time.h"
#include "control/client/informer.h"
#include "control/client/kubeconfig.h"
#include "control/apiserver/pki.h"
#include "control/client/rest_client.h"
#include "control/controllers/controller_manager.h"
#include "control/store/etcd_store.h"
#include "endpoints/endpointslice_controller.h"
#include "scheduler/runner.h"

namespace skiff::cli {

class ControlPlane::Loops {
 public:
  Loops(client::ClientPtr client, const ControlPlaneOptions& options) : client_(std::move(client)) {
    const auto& disabled = options.disabled;
    if (!disabled.contains("controllers")) {
      manager_ = std::make_unique<controllers::ControllerManager>(*client_, options.controllers);
      manager_->start();
    }
    if (!disabled.contains("scheduler")) {
      scheduler_ = std::jthread([this](std::stop_token stop) {
        try {
          scheduler::runScheduler(*client_, scheduler::RunnerOptions{}, stop);
        } catch (const std::exception& e) {
          std::cerr << "skiff: scheduler stopped: " << e.what() << std::endl;
        }
      });
    }
    if (!disabled.contains("endpointslice")) {
      informers_ = std::make_unique<client::SharedInformerFactory>(*client_);
      slices_ = std::make_unique<endpoints::EndpointSliceController>(*client_, *informers_);
      informers_->start();
      slices_->start();
    }
  }

  ~Loops() {
    if (slices_) slices_->stop();
    if (informers_) informers_->stop();
    if (scheduler_.joinable()) {
      scheduler_.request_stop();
      scheduler_.join();
    }
    if (manager_) manager_->stop();
  }

 private:
  client::ClientPtr client_;
  std::unique_ptr<controllers::ControllerManager> manager_;
  std::jthread scheduler_;
  std::unique_ptr<client::SharedInformerFactory> informers_;
  std::unique_ptr<endpoints::EndpointSliceController> slices_;
};

std::chrono::seconds parseEventTtl(std::string_view text) {
  std::string error;
  std::optional<int64_t> nanos = api::parseGoDuration(text, &error);
  if (!nanos || *nanos < 0) {
    throw std::invalid_argument("--event-ttl " + std::string(text) +
                                ": expected a duration such as 1h, 30m or 90s" +
                                (error.empty() ? "" : " (" + error + ")"));
  }
  return std::chrono::ceil<std::chrono::seconds>(std::chrono::nanoseconds(*nanos));
}

std::string checkEventTtl(const std::string& text) {
  try {
    parseEventTtl(text);
    return "";
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
}

ControlPlane::ControlPlane(ControlPlaneOptions options) {
  if (!options.etcd_endpoints.empty()) {
    options.apiserver.etcd_endpoints = store::parseEtcdEndpoints(options.etcd_endpoints);
  }
  server_ = std::make_unique<apiserver::ApiServer>(options.apiserver);
  server_->start();
  if (options.disabled.size() < 3) {
    if (server_->adminKubeconfig().empty()) {
      server_->stop();
      throw std::invalid_argument(
          "the control loops authenticate with the admin kubeconfig, which a plain-HTTP "
          "apiserver does not write; use skiff apiserver --plain-http for an unauthenticated "
          "test server");
    }
    client::LoadOptions load;
    load.kubeconfig = server_->adminKubeconfig();
    try {
      client::ClientConfig config = client::loadClientConfig(load);
      // kube-controller-manager publishes its kubeconfig's CA when --root-ca-file is not given.
      if (options.controllers.root_ca_pem.empty()) options.controllers.root_ca_pem = config.ca_pem;
      // csrsigning signs with the cluster CA of DATA_DIR/pki (kubelet TLS bootstrap).
      if (options.controllers.cluster_signing_cert_file.empty() &&
          !options.apiserver.plain_http && !options.apiserver.data_dir.empty()) {
        auto paths = apiserver::pkiPaths(options.apiserver.data_dir);
        options.controllers.cluster_signing_cert_file = paths.ca_cert;
        options.controllers.cluster_signing_key_file = paths.ca_key;
      }
      loops_ = std::make_unique<Loops>(client::makeRestClient(config), options);
    } catch (...) {
      server_->stop();
      throw;
    }
  }
}

ControlPlane::~ControlPlane() {
  stop();
}

std::string ControlPlane::url() const {
  return server_->url();
}

std::string ControlPlane::adminKubeconfig() const {
  return server_->adminKubeconfig();
}

void ControlPlane::stop() {
  loops_.reset();
  if (server_) server_->stop();
}

}  // namespace skiff::cli
