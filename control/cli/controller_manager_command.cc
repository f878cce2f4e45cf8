#include "control/cli/controller_manager_command.h"

#include <cmath>
#include <csignal>
#include <iostream>
#include <memory>
#include <thread>

#include "control/cli/resident_code.h"
#include "control/cli/stop_signals.h"
#include "control/client/failover_client.h"
#include "control/client/kubeconfig.h"
#include "control/client/rest_client.h"
#include "control/controllers/controller_manager.h"

namespace skiff::cli {

void addControllerManagerCommand(CLI::App& app, int& exit_code) {
  struct Flags {
    std::string kubeconfig;
    std::string server;
    std::string controllers = "*";
    controllers::ControllerManagerOptions options;
    double lease_duration_s = 15;
    double renew_deadline_s = 10;
    double retry_period_s = 2;
    int node_monitor_grace_period_s = 40;
    int node_startup_grace_period_s = 60;
    int node_monitor_period_s = 5;
  };
  auto flags = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand(
      "controller-manager",
      "Run the controllers (deployment, replicaset, garbage collector, job, daemonset, "
      "statefulset, namespace, serviceaccount, node lifecycle, root-ca-cert-publisher, "
      "clusterrole-aggregation)");
  cmd->add_option("--kubeconfig", flags->kubeconfig, "The apiserver to reach (a kubeconfig file)")
      ->required();
  cmd->add_option("--server", flags->server,
                  "Apiservers to use instead of the kubeconfig's server, comma-separated: a call "
                  "moves to the next one when its server is unreachable or answers 5xx");
  cmd->add_option("--controllers", flags->controllers,
                  "Controllers to run: '*' for all, 'name' to enable, '-name' to disable "
                  "(comma-separated)")
      ->capture_default_str();
  cmd->add_flag("--leader-elect", flags->options.leader_elect,
                "Run only while holding the Lease kube-system/skiff-controller-manager");
  cmd->add_option("--leader-elect-lease-duration", flags->lease_duration_s, "Seconds")
      ->capture_default_str();
  cmd->add_option("--leader-elect-renew-deadline", flags->renew_deadline_s, "Seconds")
      ->capture_default_str();
  cmd->add_option("--leader-elect-retry-period", flags->retry_period_s, "Seconds")
      ->capture_default_str();
  cmd->add_option("--cluster-signing-cert-file", flags->options.cluster_signing_cert_file,
                  "The CA certificate (PEM) csrsigning signs approved CSRs with");
  cmd->add_option("--cluster-signing-key-file", flags->options.cluster_signing_key_file,
                  "The CA's private key (PEM)");
  cmd->add_option("--workers", flags->options.workers, "Worker threads per controller")
      ->capture_default_str();
  cmd->add_option("--node-monitor-grace-period", flags->node_monitor_grace_period_s,
                  "Seconds a node may go without renewing its Lease before it is Ready=Unknown")
      ->capture_default_str();
  cmd->add_option("--node-startup-grace-period", flags->node_startup_grace_period_s,
                  "Seconds a new node may go without posting Ready")
      ->capture_default_str();
  cmd->add_option("--node-monitor-period", flags->node_monitor_period_s,
                  "Seconds between looks at each node")
      ->capture_default_str();
  cmd->add_option("--node-eviction-rate", flags->options.node_eviction_rate,
                  "Nodes a second that may newly get a NoExecute taint (0: no limit)")
      ->capture_default_str();
  cmd->callback([flags, &exit_code] {
    sigset_t signals = blockStopSignals();
    try {
      auto& o = flags->options;
      o.controllers = {flags->controllers};
      controllers::enabledControllers(o.controllers);  // reject unknown names before connecting
      auto ms = [](double s) { return std::chrono::milliseconds(std::llround(s * 1000)); };
      o.lease_duration = ms(flags->lease_duration_s);
      o.renew_deadline = ms(flags->renew_deadline_s);
      o.retry_period = ms(flags->retry_period_s);
      o.node_monitor_grace_period = std::chrono::seconds(flags->node_monitor_grace_period_s);
      o.node_startup_grace_period = std::chrono::seconds(flags->node_startup_grace_period_s);
      o.node_monitor_period = std::chrono::seconds(flags->node_monitor_period_s);
      client::ClientConfig config = client::Kubeconfig::loadFile(flags->kubeconfig).resolve();
      if (o.root_ca_pem.empty()) o.root_ca_pem = config.ca_pem;  // no --root-ca-file (yet)
      client::ClientPtr client = client::makeClientForServers(config, flags->server);
      controllers::ControllerManager manager(*client, o);
      manager.start();
      std::cout << "skiff controller-manager: running against "
                << (flags->server.empty() ? config.server : flags->server)
                << (o.leader_elect ? " (leader election on kube-system/" + o.lease_name + ")"
                                   : std::string())
                << std::endl;
      int sig = waitForStopSignalReleasingStartupCode(signals);
      std::cout << "skiff controller-manager: " << stopSignalName(sig) << ", shutting down"
                << std::endl;
      manager.stop();
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      exit_code = 1;
    }
  });
}

}  // namespace skiff::cli
