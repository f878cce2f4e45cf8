#pragma once

#include <stop_token>
#include <string>

#include "control/client/client.h"
#include "control/client/leader_election.h"
#include "scheduler/scheduler.h"

// Runs a whole scheduler process part: shared informers for Nodes and Pods, the Scheduler, and
// optionally leader election on a coordination.k8s.io/v1 Lease (kube-system/skiff-scheduler), so
// that of several schedulers exactly one schedules. `skiff scheduler` runs it on its own;
// `skiff server` embeds it in-process.

namespace skiff::scheduler {

struct RunnerOptions {
  SchedulerOptions scheduler;
  bool leader_elect = false;
  client::LeaderElectionConfig election;  // lease_name defaults to "skiff-scheduler"
  std::chrono::milliseconds cache_sync_timeout{60000};
};

// Blocks until `stop` is requested (returns true) or, with leader election, until leadership is
// lost after it was held (returns false: the caller should exit, as kube-scheduler does). Throws
// std::runtime_error when the informers cannot sync.
bool runScheduler(client::Client& client, RunnerOptions options, std::stop_token stop);

}  // namespace skiff::scheduler
