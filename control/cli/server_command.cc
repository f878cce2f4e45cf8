#include "control/cli/server_command.h"

#include <csignal>
#include <iostream>
#include <memory>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "control/apiserver/server.h"
#include "control/client/informer.h"
#include "control/client/kubeconfig.h"
#include "control/client/rest_client.h"
#include "control/controllers/controller_manager.h"
#include "control/store/etcd_store.h"
#include "endpoints/endpointslice_controller.h"
#include "scheduler/runner.h"

namespace skiff::cli {
namespace {

// Blocks until SIGINT or SIGTERM; the signals are blocked in every thread started after this.
int waitForSignal(sigset_t& signals) {
  int sig = 0;
  sigwait(&signals, &sig);
  return sig;
}

}  // namespace

namespace {

// The apiserver's flags, shared by `skiff apiserver` and `skiff server`.
struct ApiserverFlags {
  apiserver::ApiServerOptions options;
  std::string etcd_endpoints;
};

void addApiserverFlags(CLI::App& cmd, ApiserverFlags& flags) {
  auto& options = flags.options;
  cmd.add_option("--data-dir", options.data_dir, "Where the store lives")->capture_default_str();
  cmd.add_option("--bind-address", options.bind_address, "Address to listen on")
      ->capture_default_str();
  cmd.add_option("--secure-port", options.port, "Port to listen on")->capture_default_str();
  cmd.add_option("--tls-cert-file", options.cert_file, "Serving certificate (PEM)");
  cmd.add_option("--tls-private-key-file", options.key_file, "Serving key (PEM)");
  cmd.add_option("--service-cluster-ip-range", options.service_cidr,
                 "Service CIDR (IPv4) ClusterIPs come from")
      ->capture_default_str();
  cmd.add_option("--tls-san", options.extra_sans,
                 "Extra names and IPs for the generated serving certificate");
  cmd.add_option("--etcd-endpoints", flags.etcd_endpoints,
                 "Store the cluster in etcd (comma-separated client URLs, http://HOST:PORT) "
                 "instead of the embedded SQLite store");
  cmd.add_flag("--plain-http", options.plain_http,
               "Serve plain HTTP without authentication (loopback addresses only; for tests)");
  cmd.footer(
      "On first start the apiserver makes a CA, a serving certificate and an admin token under "
      "DATA_DIR/pki and writes DATA_DIR/admin.kubeconfig, which kubectl and skiff use as-is.");
}

sigset_t blockStopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

std::unique_ptr<apiserver::ApiServer> startApiserver(ApiserverFlags& flags, std::string_view who) {
  auto& options = flags.options;
  if (!flags.etcd_endpoints.empty()) {
    options.etcd_endpoints = store::parseEtcdEndpoints(flags.etcd_endpoints);
  }
  auto server = std::make_unique<apiserver::ApiServer>(options);
  server->start();
  std::cout << who << ": serving " << server->url() << " (data in "
            << (options.etcd_endpoints.empty() ? options.data_dir
                                               : "etcd at " + flags.etcd_endpoints)
            << ")" << std::endl;
  if (!server->adminKubeconfig().empty()) {
    std::cout << who << ": admin kubeconfig " << server->adminKubeconfig() << std::endl;
  }
  return server;
}

// The control loops `skiff server` runs beside its apiserver, each reaching the cluster through
// the REST client like any other component (never the store): the controller manager, the
// scheduler and the EndpointSlice controller.
class ControlLoops {
 public:
  ControlLoops(client::ClientPtr client, const std::set<std::string>& disabled)
      : client_(std::move(client)) {
    if (!disabled.contains("controllers")) {
      controllers::ControllerManagerOptions options;
      manager_ = std::make_unique<controllers::ControllerManager>(*client_, options);
      manager_->start();
    }
    if (!disabled.contains("scheduler")) {
      scheduler_ = std::jthread([this](std::stop_token stop) {
        try {
          scheduler::runScheduler(*client_, scheduler::RunnerOptions{}, stop);
        } catch (const std::exception& e) {
          std::cerr << "skiff server: scheduler stopped: " << e.what() << std::endl;
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

  ~ControlLoops() {
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

}  // namespace

void addApiserverCommand(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<ApiserverFlags>();
  flags->options.data_dir = "/var/lib/skiff/server";
  auto* cmd = app.add_subcommand("apiserver", "Run the Kubernetes-compatible apiserver");
  addApiserverFlags(*cmd, *flags);
  cmd->callback([flags, &exit_code] {
    sigset_t signals = blockStopSignals();
    try {
      auto server = startApiserver(*flags, "skiff apiserver");
      int sig = waitForSignal(signals);
      std::cout << "skiff apiserver: " << (sig == SIGINT ? "SIGINT" : "SIGTERM")
                << ", shutting down" << std::endl;
      server->stop();
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      exit_code = 1;
    }
  });
}

void addServerCommand(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<ApiserverFlags>();
  flags->options.data_dir = "/var/lib/skiff/server";
  auto disable = std::make_shared<std::vector<std::string>>();
  auto* cmd = app.add_subcommand(
      "server",
      "Run the control plane: apiserver, controller manager, scheduler and EndpointSlice "
      "controller");
  addApiserverFlags(*cmd, *flags);
  cmd->add_option("--disable", *disable,
                  "Control loops not to run: controllers, scheduler, endpointslice")
      ->delimiter(',')
      ->check(CLI::IsMember({"controllers", "scheduler", "endpointslice"}));
  cmd->callback([flags, disable, &exit_code] {
    sigset_t signals = blockStopSignals();
    try {
      if (flags->options.plain_http) {
        throw std::invalid_argument(
            "--plain-http: skiff server's control loops authenticate with the admin kubeconfig; "
            "use skiff apiserver --plain-http for an unauthenticated test server");
      }
      auto server = startApiserver(*flags, "skiff server");
      client::LoadOptions load;
      load.kubeconfig = server->adminKubeconfig();
      auto loops =
          std::make_unique<ControlLoops>(client::makeRestClient(client::loadClientConfig(load)),
                                         std::set<std::string>(disable->begin(), disable->end()));
      std::cout << "skiff server: control loops running" << std::endl;
      int sig = waitForSignal(signals);
      std::cout << "skiff server: " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ", shutting down"
                << std::endl;
      loops.reset();
      server->stop();
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      exit_code = 1;
    }
  });
}

}  // namespace skiff::cli
