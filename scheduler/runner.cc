#include "scheduler/runner.h"

#include <unistd.h>

#include <condition_variable>
#include <iostream>
#include <mutex>
#include <random>
#include <stdexcept>

#include "control/client/informer.h"
#include "scheduler/plugins/volume_binding.h"

namespace skiff::scheduler {
namespace {

std::string defaultIdentity() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  std::random_device rd;
  std::uniform_int_distribution<uint32_t> dist;
  char suffix[16];
  std::snprintf(suffix, sizeof(suffix), "%08x", dist(rd));
  return std::string(host[0] ? host : "skiff") + "_" + suffix;
}

// Lists, watches and schedules until `stop`.
void runLeading(client::Client& client, const RunnerOptions& options, std::stop_token stop) {
  client::SharedInformerFactory factory(client);
  Scheduler scheduler(client, options.scheduler);
  scheduler.attach(factory);
  plugins::attachVolumeBinding(scheduler, factory);
  factory.start();
  if (!factory.waitForCacheSync(options.cache_sync_timeout)) {
    if (stop.stop_requested()) return;
    throw std::runtime_error("scheduler: the informers did not sync within " +
                             std::to_string(options.cache_sync_timeout.count()) + " ms");
  }
  std::cerr << "skiff scheduler: caches synced, " << scheduler.cache().nodeCount()
            << " nodes; scheduling" << std::endl;
  scheduler.run(stop);
  factory.stop();
}

}  // namespace

bool runScheduler(client::Client& client, RunnerOptions options, std::stop_token stop) {
  if (!options.leader_elect) {
    runLeading(client, options, stop);
    return true;
  }
  if (options.election.lease_name.empty()) options.election.lease_name = "skiff-scheduler";
  if (options.election.identity.empty()) options.election.identity = defaultIdentity();
  std::mutex mu;
  std::condition_variable_any cv;
  bool lost = false;
  std::string error;
  options.election.on_started_leading = [&](std::stop_token lead) {
    std::cerr << "skiff scheduler: leading as " << options.election.identity << std::endl;
    std::stop_source both;
    std::stop_callback a(stop, [&] { both.request_stop(); });
    std::stop_callback b(lead, [&] { both.request_stop(); });
    try {
      runLeading(client, options, both.get_token());
    } catch (const std::exception& e) {
      std::lock_guard lock(mu);
      error = e.what();
    }
  };
  options.election.on_stopped_leading = [&] {
    std::lock_guard lock(mu);
    lost = true;
    cv.notify_all();
  };
  client::LeaderElector elector(client, options.election);
  elector.start();
  {
    std::unique_lock lock(mu);
    cv.wait(lock, stop, [&] { return lost || !error.empty(); });
  }
  elector.stop();
  if (!error.empty()) throw std::runtime_error(error);
  return !lost || stop.stop_requested();
}

}  // namespace skiff::scheduler
