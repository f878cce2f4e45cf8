#include "control/cli/scheduler_command.h"

#include <pthread.h>

#include <csignal>
#include <iostream>
#include <thread>

#include "control/cli/stop_signals.h"
#include "control/client/kubeconfig.h"
#include "control/client/rest_client.h"
#include "scheduler/runner.h"

namespace skiff::cli {

void addSchedulerCommand(CLI::App& app, int& exit_code) {
  struct Flags {
    std::string kubeconfig;
    std::string context;
    bool leader_elect = false;
    std::string lease_namespace = "kube-system";
    std::string lease_name = "skiff-scheduler";
    std::string scheduler_name = "default-scheduler";
    int32_t percentage = 0;
    int parallelism = 2;
  };
  auto flags = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("scheduler", "Run the scheduler: assign pending pods to nodes");
  cmd->add_option("--kubeconfig", flags->kubeconfig, "kubeconfig of the apiserver to use");
  cmd->add_option("--context", flags->context, "kubeconfig context (default: current-context)");
  cmd->add_flag("--leader-elect", flags->leader_elect,
                "Only schedule while holding the Lease (for several schedulers)");
  cmd->add_option("--leader-elect-resource-namespace", flags->lease_namespace, "Lease namespace")
      ->capture_default_str();
  cmd->add_option("--leader-elect-resource-name", flags->lease_name, "Lease name")
      ->capture_default_str();
  cmd->add_option("--scheduler-name", flags->scheduler_name,
                  "Schedule pods whose spec.schedulerName is this")
      ->capture_default_str();
  cmd->add_option("--percentage-of-nodes-to-score", flags->percentage,
                  "Stop filtering once this share of nodes fits (0: adaptive, as kube-scheduler)")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  cmd->add_option("--parallelism", flags->parallelism, "Threads that filter and score nodes")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->callback([flags, &exit_code] {
    sigset_t signals = blockStopSignals();
    try {
      client::ClientPtr client = client::makeRestClient(
          client::loadClientConfig({.kubeconfig = flags->kubeconfig, .context = flags->context}));
      scheduler::RunnerOptions options;
      options.scheduler.scheduler_name = flags->scheduler_name;
      options.scheduler.framework.percentage_of_nodes_to_score = flags->percentage;
      options.scheduler.framework.parallelism = flags->parallelism;
      options.scheduler.framework.profile_name = flags->scheduler_name;
      options.leader_elect = flags->leader_elect;
      options.election.lease_namespace = flags->lease_namespace;
      options.election.lease_name = flags->lease_name;
      std::stop_source stop;
      std::thread waiter([&] {
        int sig = waitForStopSignal(signals);
        std::cerr << "skiff scheduler: " << stopSignalName(sig) << ", shutting down" << std::endl;
        stop.request_stop();
      });
      bool ok = false;
      try {
        ok = scheduler::runScheduler(*client, options, stop.get_token());
      } catch (...) {
        pthread_kill(waiter.native_handle(), SIGTERM);
        waiter.join();
        throw;
      }
      if (!stop.stop_requested()) pthread_kill(waiter.native_handle(), SIGTERM);
      waiter.join();
      if (!ok) {
        std::cerr << "error: leadership lost" << std::endl;
        exit_code = 1;
      }
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      exit_code = 1;
    }
  });
}

}  // namespace skiff::cli
