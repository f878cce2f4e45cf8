#include "control/cli/server_command.h"

#include <csignal>
#include <iostream>

#include "control/apiserver/server.h"
#include "control/store/etcd_store.h"

namespace skiff::cli {
namespace {

// Blocks until SIGINT or SIGTERM; the signals are blocked in every thread started after this.
int waitForSignal(sigset_t& signals) {
  int sig = 0;
  sigwait(&signals, &sig);
  return sig;
}

}  // namespace

void addApiserverCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<apiserver::ApiServerOptions>();
  options->data_dir = "/var/lib/skiff/server";
  auto* cmd = app.add_subcommand("apiserver", "Run the Kubernetes-compatible apiserver");
  cmd->add_option("--data-dir", options->data_dir, "Where the store lives")->capture_default_str();
  cmd->add_option("--bind-address", options->bind_address, "Address to listen on")
      ->capture_default_str();
  cmd->add_option("--secure-port", options->port, "Port to listen on")->capture_default_str();
  cmd->add_option("--tls-cert-file", options->cert_file, "Serving certificate (PEM)");
  cmd->add_option("--tls-private-key-file", options->key_file, "Serving key (PEM)");
  cmd->add_option("--service-cluster-ip-range", options->service_cidr,
                  "Service CIDR (IPv4) ClusterIPs come from")
      ->capture_default_str();
  cmd->add_option("--tls-san", options->extra_sans,
                  "Extra names and IPs for the generated serving certificate");
  auto etcd_endpoints = std::make_shared<std::string>();
  cmd->add_option("--etcd-endpoints", *etcd_endpoints,
                  "Store the cluster in etcd (comma-separated client URLs, http://HOST:PORT) "
                  "instead of the embedded SQLite store");
  cmd->add_flag("--plain-http", options->plain_http,
                "Serve plain HTTP without authentication (loopback addresses only; for tests)");
  cmd->footer(
      "On first start the apiserver makes a CA, a serving certificate and an admin token under "
      "DATA_DIR/pki and writes DATA_DIR/admin.kubeconfig, which kubectl and skiff use as-is.");
  cmd->callback([options, etcd_endpoints, &exit_code] {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    try {
      if (!etcd_endpoints->empty()) {
        options->etcd_endpoints = store::parseEtcdEndpoints(*etcd_endpoints);
      }
      apiserver::ApiServer server(*options);
      server.start();
      std::cout << "skiff apiserver: serving " << server.url() << " (data in "
                << (options->etcd_endpoints.empty() ? options->data_dir
                                                    : "etcd at " + *etcd_endpoints)
                << ")" << std::endl;
      if (!server.adminKubeconfig().empty()) {
        std::cout << "skiff apiserver: admin kubeconfig " << server.adminKubeconfig() << std::endl;
      }
      int sig = waitForSignal(signals);
      std::cout << "skiff apiserver: " << (sig == SIGINT ? "SIGINT" : "SIGTERM")
                << ", shutting down" << std::endl;
      server.stop();
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      exit_code = 1;
    }
  });
}

}  // namespace skiff::cli
