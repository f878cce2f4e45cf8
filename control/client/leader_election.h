#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>

#include "control/client/client.h"

// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection package: the
// holder renews spec.renewTime every retry_period; a candidate takes the lease over once it has not
// been renewed for lease_duration (judged by the candidate's own clock since it last saw the record
// change, never by comparing clocks across machines); updates are compare-and-swap on the
// resourceVersion, so two candidates never both win.

namespace skiff::client {

struct LeaderElectionConfig {
  std::string lease_namespace = "kube-system";
  std::string lease_name;  // "skiff-scheduler", "skiff-controller-manager"
  std::string identity;    // unique per candidate: hostname + "_" + a random suffix
  std::chrono::milliseconds lease_duration{15000};
  std::chrono::milliseconds renew_deadline{10000};
  std::chrono::milliseconds retry_period{2000};
  // Give the lease up (holderIdentity cleared) when stopping, so another candidate takes over at
  // once.
  bool release_on_cancel = true;

  // Called on a new thread once this candidate leads; `stop` is requested when leadership is lost
  // or the elector stops. The elector waits for it to return before it runs again.
  std::function<void(std::stop_token stop)> on_started_leading;
  std::function<void()> on_stopped_leading;
  // Every time the observed leader changes (including to this candidate).
  std::function<void(const std::string& identity)> on_new_leader;
};

class LeaderElector {
 public:
  LeaderElector(Client& client, LeaderElectionConfig config);
  ~LeaderElector();
  LeaderElector(const LeaderElector&) = delete;
  LeaderElector& operator=(const LeaderElector&) = delete;

  // Starts campaigning on a background thread.
  void start();
  // Stops campaigning, ends leadership (on_started_leading's stop token) and releases the lease.
  void stop();
  bool isLeader() const;
  std::string leader() const;  // the holder last observed ("" when none)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::client
