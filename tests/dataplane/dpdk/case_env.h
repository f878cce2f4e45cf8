#pragma once

// The shared packet-case table's environment for the DPDK pipeline: programs services through
// the TableBuilder (as the control thread does), runs frames through a Pipeline with a fake clock,
// and reads the lcore counters by the builder's ids.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/dpdk/pipeline.h"
#include "dataplane/dpdk/tables.h"
#include "tests/dataplane/packet_cases.h"

namespace skiff::dataplane::dpdk {

inline PipelineConfig caseConfig(const testing::EnvOptions& options) {
  PipelineConfig c;
  c.forward = ForwardMode::kSwapMacs;
  c.conntrackCapacity = options.conntrack;
  c.conntrackLru = options.conntrackLru;
  c.affinityCapacity = 64;
  c.capacities = {64, 256};
  return c;
}

class DpdkCaseEnv : public testing::CaseEnv {
 public:
  explicit DpdkCaseEnv(const testing::EnvOptions& options)
      : builder_(caseConfig(options).capacities), pipeline_(caseConfig(options)) {
    tables_ = builder_.build();
  }

  void program(const testing::CaseService& def) override {
    recordProgram(def);
    ServiceDelta delta;
    delta.upserted.push_back(testing::toService(def));
    const Status s = builder_.apply(delta);
    ASSERT_TRUE(s.ok()) << s.message();
    tables_ = builder_.build();
    modelIds_[def.svcId] = delta.upserted[0].id;
    for (const testing::CaseBackend& b : def.backends)
      backends_[b.id] = {delta.upserted[0].id, BackendKey{b.address, b.port}};
  }

  testing::RunResult run(const testing::Bytes& frame) override { return runBurst({frame})[0]; }

  std::vector<testing::RunResult> runBurst(const std::vector<testing::Bytes>& frames) {
    std::vector<testing::Bytes> buffers;
    std::vector<PacketRef> refs;
    for (const testing::Bytes& f : frames) {
      buffers.emplace_back(f.size() + 512, 0);
      std::copy(f.begin(), f.end(), buffers.back().begin());
    }
    for (size_t i = 0; i < frames.size(); ++i) {
      refs.push_back({buffers[i].data(), static_cast<uint32_t>(frames[i].size()),
                      static_cast<uint32_t>(buffers[i].size())});
    }
    std::vector<Verdict> verdicts(frames.size());
    now_ += 1000;
    pipeline_.processBurst(*tables_, refs.data(), verdicts.data(), refs.size(), now_);
    std::vector<testing::RunResult> out;
    for (size_t i = 0; i < frames.size(); ++i) {
      testing::RunResult r;
      r.ok = true;
      r.verdict = verdicts[i] == Verdict::kTx     ? testing::Verdict::kTx
                  : verdicts[i] == Verdict::kDrop ? testing::Verdict::kDrop
                                                  : testing::Verdict::kPass;
      r.out.assign(buffers[i].begin(), buffers[i].begin() + refs[i].len);
      out.push_back(std::move(r));
    }
    return out;
  }

  testing::CaseServiceStats serviceStats(uint32_t svcId) override {
    testing::CaseServiceStats out;
    const uint32_t id = builder_.services().at(modelIds_.at(svcId)).svcId;
    const ServiceCounters& c = pipeline_.counters().services[id];
    out.packets = c.packets.get();
    out.newFlows = c.newFlows.get();
    for (size_t i = 0; i < kDropReasonCount; ++i)
      out.drops[i] = c.drops[i].get();
    return out;
  }

  testing::CaseBackendStats backendStats(uint32_t backendId) override {
    const auto& [model, key] = backends_.at(backendId);
    const uint32_t id = builder_.services().at(model).backendIds.at(key);
    const BackendCounters& c = pipeline_.counters().backends[id];
    return {c.packets.get(), c.newFlows.get()};
  }

  uint64_t event(testing::CaseEvent e) override {
    Event d = Event::kCtInsertFailed;
    switch (e) {
      case testing::CaseEvent::kCtInsertFailed:
        d = Event::kCtInsertFailed;
        break;
      case testing::CaseEvent::kFragmentPassed:
        d = Event::kFragmentPassed;
        break;
      case testing::CaseEvent::kIcmpTranslated:
        d = Event::kIcmpTranslated;
        break;
      case testing::CaseEvent::kReplyTranslated:
        d = Event::kReplyTranslated;
        break;
      case testing::CaseEvent::kCtReselected:
        d = Event::kCtReselected;
        break;
    }
    return pipeline_.counters().events[static_cast<size_t>(d)].get();
  }

  uint64_t unattributedDrops(DropReason r) override {
    return pipeline_.counters().unattributed[static_cast<size_t>(r)].get();
  }

  Pipeline& pipeline() { return pipeline_; }

 private:
  TableBuilder builder_;
  Pipeline pipeline_;
  std::unique_ptr<Tables> tables_;
  uint64_t now_ = 1000000000ULL;
  std::map<uint32_t, std::string> modelIds_;
  std::map<uint32_t, std::pair<std::string, BackendKey>> backends_;
};

}  // namespace skiff::dataplane::dpdk
