#include "control/cli/scheduler_command.h"

#include <pthread.h>

#include <cmath>
#include <csignal>
#include <iostream>
#include <thread>

#include "control/cli/resident_code.h"
#include "control/cli/stop_signals.h"
#include "control/client/failover_client.h"
#include "control/client/kubeconfig.h"
#include "control/client/rest_client.h"
#include "scheduler/runner.h"

namespace skiff::cli {

void addSchedulerCommand(CLI::App& app, int& exit_code) {
  struct Flags {
    std::string kubeconfig;
    std::string context;
    std::string server;
    double lease_duration_s = 15;
    double renew_deadline_s = 10;
    double retry_period_s = 2;
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
  cmd->add_option("--server", flags->server,
                  "Apiservers to use instead of the kubeconfig's server, comma-separated: a call "
                  "moves to the next one when its server is unreachable or answers 5xx");
  cmd->add_flag("--leader-elect", flags->leader_elect,
                "Only schedule while holding the Lease (for several schedulers)");
  cmd->add_option("--leader-elect-lease-duration", flags->lease_duration_s,
                  "Seconds a lease lasts unrenewed before another candidate takes it")
      ->capture_default_str();
  cmd->add_option("--leader-elect-renew-deadline", flags->renew_deadline_s,
                  "Seconds the leader keeps trying to renew before it gives up leading")
      ->capture_default_str();
  cmd->add_option("--leader-elect-retry-period", flags->retry_period_s,
                  "Seconds between attempts to acquire or renew")
      ->capture_default_str();
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
      client::ClientPtr client = client::makeClientForServers(
          client::loadClientConfig({.kubeconfig = flags->kubeconfig, .context = flags->context}),
          flags->server);
      scheduler::RunnerOptions options;
      options.scheduler.scheduler_name = flags->scheduler_name;
      options.scheduler.framework.percentage_of_nodes_to_score = flags->percentage;
      options.scheduler.framework.parallelism = flags->parallelism;
      options.scheduler.framework.profile_name = flags->scheduler_name;
      options.leader_elect = flags->leader_elect;
      options.election.lease_namespace = flags->lease_namespace;
      options.election.lease_name = flags->lease_name;
      auto ms = [](double s) { return std::chrono::milliseconds(std::llround(s * 1000)); };
      options.election.lease_duration = ms(flags->lease_duration_s);
      options.election.renew_deadline = ms(flags->renew_deadline_s);
      options.election.retry_period = ms(flags->retry_period_s);
      std::stop_source stop;
      std::thread waiter([&] {
        int sig = waitForStopSignalReleasingStartupCode(signals);
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
