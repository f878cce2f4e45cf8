#pragma once

// The DPDK data path as a whole, inside one process that has initialised EAL: ports, one worker
// per worker lcore (RSS spreads each port's traffic over one RX queue per worker; each worker has
// its own TX queue on every port), the control side (TableBuilder + RCU publishing) and the
// statistics. `skiff dataplane` runs one; the privileged tests run one on net_ring ports.

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/dataplane.h"
#include "dataplane/dpdk/pipeline.h"
#include "dataplane/dpdk/port.h"
#include "dataplane/dpdk/rcu.h"
#include "dataplane/dpdk/tables.h"
#include "dataplane/dpdk/worker.h"
#include "skiff/dpdk/control.pb.h"

namespace skiff::dataplane::dpdk {

namespace v1 = ::skiff::dpdk::v1;

struct RuntimeOptions {
  // Ports to load-balance on; empty: every port EAL found except the exception port.
  std::vector<uint16_t> ports;
  // Where PASS verdicts go (a TAP port: the kernel's exception path); kNoPort frees them.
  uint16_t exceptionPort = kNoPort;
  PipelineConfig pipeline;
  uint32_t mbufsPerSocket = 16383;
  PortConfig port;  // queue counts are set per worker count
};

class Runtime {
 public:
  // Starts ports and workers on every worker lcore. EAL must be initialised; there must be at
  // least one worker lcore. Errors say which port or lcore and why.
  static Result<std::unique_ptr<Runtime>> start(const RuntimeOptions& options);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Dataplane::apply: checks, builds a snapshot and publishes it (returns once no worker sees the
  // previous one). Not concurrent with itself.
  Status apply(const ServiceDelta& delta);
  // Per service, port and lcore.
  v1::Stats stats() const;
  // One control-socket request: apply (errors name the field or service) or stats.
  v1::Response handle(const v1::Request& request);
  DataplaneStats dataplaneStats() const;

  // Stops the workers (waits for them) and the ports.
  void stop();

  const std::vector<uint16_t>& ports() const { return ports_; }
  size_t workerCount() const { return workers_.size(); }

 private:
  struct Worker {
    unsigned lcore = 0;
    std::unique_ptr<Pipeline> pipeline;
    std::unique_ptr<WorkerContext> ctx;
  };

  Runtime() = default;
  uint64_t serviceSum(uint32_t id, int field) const;
  uint64_t backendSum(uint32_t id, int field) const;

  RuntimeOptions options_;
  std::vector<uint16_t> ports_;
  std::vector<Worker> workers_;
  TableBuilder builder_;
  std::unique_ptr<TablePublisher> publisher_;
  std::atomic<bool> stop_{false};
  bool running_ = false;
  uint64_t failedUpdates_ = 0;
  // Counter values when an id was handed out: stats count from then on.
  std::vector<std::array<uint64_t, 3 + kDropReasonCount>> serviceBase_;
  std::vector<std::array<uint64_t, 3>> backendBase_;
};

}  // namespace skiff::dataplane::dpdk
