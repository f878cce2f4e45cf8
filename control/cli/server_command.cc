#include "control/cli/server_command.h"

#include <chrono>
#include <csignal>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "control/cli/control_plane.h"
#include "control/cli/resident_code.h"
#include "control/cli/stop_signals.h"

namespace skiff::cli {
namespace {

// The apiserver's flags, shared by `skiff apiserver` and `skiff server`.
struct ApiserverFlags {
  apiserver::ApiServerOptions options;
  std::string etcd_endpoints;
  std::string event_ttl = "1h";
  // skiff server's node lifecycle controller (seconds), as kube-controller-manager's flags.
  int node_monitor_grace_period_s = 40;
  int node_monitor_period_s = 5;
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
  cmd.add_option("--advertise-address", options.advertise_address,
                 "IPv4 address pods reach this apiserver at: the default/kubernetes Service's "
                 "endpoint, also in the serving certificate (default: --bind-address, or with "
                 "0.0.0.0 the address of the default route's interface)");
  cmd.add_option("--tls-san", options.extra_sans,
                 "Extra names and IPs for the generated serving certificate");
  cmd.add_option("--etcd-endpoints", flags.etcd_endpoints,
                 "Store the cluster in etcd (comma-separated client URLs, http(s)://HOST:PORT) "
                 "instead of the embedded SQLite store");
  cmd.add_option("--etcd-cafile", options.etcd_ca_file,
                 "CA (PEM) of the etcd members' serving certificates (https:// endpoints)");
  cmd.add_option("--etcd-certfile", options.etcd_cert_file,
                 "Client certificate (PEM) for etcd's --client-cert-auth");
  cmd.add_option("--etcd-keyfile", options.etcd_key_file, "Key (PEM) of --etcd-certfile");
  cmd.add_option("--event-ttl", flags.event_ttl,
                 "How long Events are kept after their last write (0: until deleted)")
      ->check(checkEventTtl, "DURATION")
      ->capture_default_str();
  cmd.add_option("--encryption-provider-config", options.encryption_provider_config,
                 "EncryptionConfiguration file (apiserver.config.k8s.io/v1): the resources it "
                 "names (secrets, ...) are stored encrypted with aescbc or aesgcm")
      ->check(CLI::ExistingFile);
  cmd.add_flag("--encryption-provider-config-automatic-reload",
               options.encryption_provider_config_automatic_reload,
               "Read --encryption-provider-config again every minute and take a changed, valid "
               "configuration without a restart (a bad one is logged and the one in use kept)");
  cmd.add_flag("--plain-http", options.plain_http,
               "Serve plain HTTP without authentication (loopback addresses only; for tests)");
  // kube-apiserver's plugin on by default; the flag as kube-apiserver's, for the one plugin.
  options.service_account_admission = true;
  cmd.add_option_function<std::vector<std::string>>(
         "--disable-admission-plugins",
         [&options](const std::vector<std::string>& plugins) {
           for (const auto& p : plugins) {
             if (p == "ServiceAccount") options.service_account_admission = false;
           }
         },
         "Admission plugins to turn off: ServiceAccount (the default ServiceAccount, a 403 for "
         "a missing one, the token volume)")
      ->delimiter(',')
      ->check(CLI::IsMember({"ServiceAccount"}));
  cmd.footer(
      "On first start the apiserver makes a CA, a serving certificate and an admin token under "
      "DATA_DIR/pki and writes DATA_DIR/admin.kubeconfig, which kubectl and skiff use as-is.");
}

void printServing(const ControlPlane& plane, const ApiserverFlags& flags, std::string_view who) {
  std::cout << who << ": serving " << plane.url() << " (data in "
            << (flags.etcd_endpoints.empty() ? flags.options.data_dir
                                             : "etcd at " + flags.etcd_endpoints)
            << ")" << std::endl;
  if (!plane.adminKubeconfig().empty()) {
    std::cout << who << ": admin kubeconfig " << plane.adminKubeconfig() << std::endl;
  }
}

ControlPlaneOptions planeOptions(const ApiserverFlags& flags, std::set<std::string> disabled) {
  ControlPlaneOptions o{.apiserver = flags.options,
                        .etcd_endpoints = flags.etcd_endpoints,
                        .disabled = std::move(disabled)};
  o.apiserver.event_ttl = parseEventTtl(flags.event_ttl);
  o.controllers.node_monitor_grace_period = std::chrono::seconds(flags.node_monitor_grace_period_s);
  o.controllers.node_monitor_period = std::chrono::seconds(flags.node_monitor_period_s);
  return o;
}

}  // namespace

void addApiserverCommand(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<ApiserverFlags>();
  flags->options.data_dir = "/var/lib/skiff/server";
  auto* cmd = app.add_subcommand("apiserver", "Run the Kubernetes-compatible apiserver");
  addApiserverFlags(*cmd, *flags);
  cmd->callback([flags, &exit_code] {
    sigset_t signals = blockStopSignals();
    try {
      ControlPlane plane(planeOptions(*flags, {"controllers", "scheduler", "endpointslice"}));
      printServing(plane, *flags, "skiff apiserver");
      int sig = waitForStopSignalReleasingStartupCode(signals);
      std::cout << "skiff apiserver: " << stopSignalName(sig) << ", shutting down" << std::endl;
      plane.stop();
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
  cmd->add_option("--node-monitor-grace-period", flags->node_monitor_grace_period_s,
                  "Seconds without a node heartbeat before the node is Ready=Unknown and tainted")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  cmd->add_option("--node-monitor-period", flags->node_monitor_period_s,
                  "Seconds between the node lifecycle controller's checks")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  cmd->callback([flags, disable, &exit_code] {
    sigset_t signals = blockStopSignals();
    try {
      if (flags->options.plain_http) {
        throw std::invalid_argument(
            "--plain-http: skiff server's control loops authenticate with the admin kubeconfig; "
            "use skiff apiserver --plain-http for an unauthenticated test server");
      }
      ControlPlane plane(
          planeOptions(*flags, std::set<std::string>(disable->begin(), disable->end())));
      printServing(plane, *flags, "skiff server");
      std::cout << "skiff server: control loops running" << std::endl;
      int sig = waitForStopSignalReleasingStartupCode(signals);
      std::cout << "skiff server: " << stopSignalName(sig) << ", shutting down" << std::endl;
      plane.stop();
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      exit_code = 1;
    }
  });
}

}  // namespace skiff::cli
