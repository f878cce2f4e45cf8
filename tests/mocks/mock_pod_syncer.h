#pragma once

#include <gmock/gmock.h>

#include "kubelet/pods/pod_syncer.h"

// A gmock PodSyncer for unit tests of the agent's pod workers (kubelet/agent/).
namespace skiff::kubelet::testing {

class MockPodSyncer : public PodSyncer {
 public:
  MOCK_METHOD(PodSyncResult, sync, (const api::core::v1::Pod& pod), (override));
  MOCK_METHOD(PodSyncResult, terminate,
              (const api::core::v1::Pod& pod, std::chrono::milliseconds grace), (override));
  MOCK_METHOD(std::vector<std::string>, knownPodUids, (), (override));
  MOCK_METHOD(void, cleanupOrphan, (const std::string& pod_uid), (override));
};

}  // namespace skiff::kubelet::testing
