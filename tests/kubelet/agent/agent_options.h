#pragma once

// The AgentOptions the agent's tests start from: node-1 on 10.244.0.0/24 with a fixed machine (2
// CPUs, 4 GiB, 10 GiB of disk, 192.0.2.10) and no pressure, so that nothing the test does not set
// depends on the machine it runs on.
#include <chrono>
#include <string>

#include "kubelet/agent/agent.h"

namespace skiff::kubelet::testing {

inline AgentOptions agentOptions(std::string runtime_version,
                                 std::chrono::milliseconds sync_frequency) {
  AgentOptions o;
  o.node_name = "node-1";
  o.pod_cidr = "10.244.0.0/24";
  o.container_runtime_version = std::move(runtime_version);
  o.pod_workers = 2;
  o.sync_frequency = sync_frequency;
  o.machine = [] {
    MachineInfo m;
    m.cpus = 2;
    m.memory_bytes = 4LL << 30;
    m.ephemeral_bytes = 10LL << 30;
    m.hostname = "node-1";
    m.internal_ip = "192.0.2.10";
    return m;
  };
  o.pressure = [] {
    return PressureSample{.memory_available_bytes = 1LL << 30,
                          .disk_available_bytes = 5LL << 30,
                          .disk_total_bytes = 10LL << 30,
                          .pids_used = 10,
                          .pids_max = 1000};
  };
  return o;
}

}  // namespace skiff::kubelet::testing
