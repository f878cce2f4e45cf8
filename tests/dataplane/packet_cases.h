#pragma once

// The one table of packet cases both data paths must pass (ARCHITECTURE decision 4): each case
// programs services, sends frames, and checks the verdict, the output bytes (built from scratch by
// packet_builder.h, so incremental checksum updates are compared with full ones) and counters.
// tests/ebpf/xdp_test.cc runs it through BPF_PROG_TEST_RUN, tests/dataplane/dpdk/ through the
// DPDK pipeline; each implements CaseEnv.
//
// Translated frames leave with their MACs swapped (the XDP program's SKIFF_FWD_TX, the DPDK
// pipeline's ForwardMode::kSwapMacs). Maglev tables have kCaseRingSize entries, built from the
// same backend keys, so both paths pick the same backend for the same flow.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "dataplane/dataplane.h"
#include "dataplane/maglev.h"
#include "dataplane/selection.h"
#include "dataplane/service.h"
#include "tests/dataplane/packet_builder.h"

namespace skiff::dataplane::testing {

inline constexpr uint32_t kCaseRingSize = 1021;

IpAddress ip(const char* text);

extern const IpAddress kClient;
extern const IpAddress kVip;
extern const IpAddress kClient6;
extern const IpAddress kVip6;

// EndpointSlice conditions, as the cases need them.
enum class BackendState : uint8_t {
  kReady,        // ready, serving, on this node
  kTerminating,  // serving and terminating
  kGone,         // terminating, neither ready nor serving
  kRemote,       // ready and serving, on another node
};

struct CaseBackend {
  // The case's name for it (what maglevPick returns); a data path maps it to its own id.
  uint32_t id = 0;
  IpAddress address;
  uint16_t port = 8080;
  BackendState state = BackendState::kReady;
};

std::vector<CaseBackend> fourBackends();
std::vector<CaseBackend> threeBackends();
std::vector<CaseBackend> v6Backends();

// One service with one frontend.
struct CaseService {
  uint32_t svcId = 1;
  FrontendKey frontend{kVip, 80, L4Protocol::kTcp};
  FrontendKind kind = FrontendKind::kLoadBalancer;
  std::vector<CaseBackend> backends = threeBackends();
  SessionAffinity affinity = SessionAffinity::kNone;
  uint32_t affinityTimeout = kDefaultAffinityTimeoutSeconds;
  TrafficPolicy externalPolicy = TrafficPolicy::kCluster;
  std::vector<IpPrefix> sourceRanges;
};

// The model of a case service (id "cases/svc<svcId>:", Maglev size kCaseRingSize).
Service toService(const CaseService& def);
// The backends new flows to the case's frontend may use (external origin).
EligibleBackends caseEligible(const CaseService& def);

enum class Verdict : uint8_t { kPass, kDrop, kTx };
std::string_view toString(Verdict v);

// Events both data paths count (skiff_global in eBPF, dpdk::Event).
enum class CaseEvent : uint8_t {
  kCtInsertFailed,
  kFragmentPassed,
  kIcmpTranslated,
  kReplyTranslated,
  kCtReselected,
};

struct CaseServiceStats {
  uint64_t packets = 0;
  uint64_t newFlows = 0;
  DropCounters drops{};
  uint64_t drop(DropReason r) const { return drops[static_cast<size_t>(r)]; }
};

struct CaseBackendStats {
  uint64_t packets = 0;
  uint64_t newFlows = 0;
};

struct EnvOptions {
  // Conntrack entries (a flow takes two); `conntrackLru` false: a full table fails inserts.
  uint32_t conntrack = 4096;
  bool conntrackLru = true;
};

struct RunResult {
  bool ok = false;  // the run itself worked (BPF_PROG_TEST_RUN returned 0)
  Verdict verdict = Verdict::kPass;
  Bytes out;
};

// A data path under test, freshly set up for one case.
class CaseEnv {
 public:
  virtual ~CaseEnv() = default;

  // Programs one service (replacing what it had; backends it no longer lists leave it).
  virtual void program(const CaseService& def) = 0;
  virtual RunResult run(const Bytes& frame) = 0;
  virtual CaseServiceStats serviceStats(uint32_t svcId) = 0;
  virtual CaseBackendStats backendStats(uint32_t backendId) = 0;
  virtual uint64_t event(CaseEvent e) = 0;
  virtual uint64_t unattributedDrops(DropReason r) = 0;

  // Runs a frame that must be translated (the steps before the packet under test).
  void mustForward(const Bytes& frame);
  // The backend Maglev gives a new flow of `spec` in service `svcId` as last programmed.
  uint32_t maglevPick(uint32_t svcId, const PacketSpec& spec) const;
  static uint32_t pickIn(const MaglevTable& table, const PacketSpec& spec);

  // Scratch space for a case's steps.
  uint16_t port = 40000;
  uint32_t backend = 0;

 protected:
  // Implementations call this from program().
  void recordProgram(const CaseService& def);

 private:
  std::map<uint32_t, MaglevTable> tables_;
};

struct Expected {
  Verdict verdict = Verdict::kPass;
  // The output frame; nullopt: the input unchanged.
  std::optional<Bytes> output;
};

struct PacketCase {
  std::string name;
  std::string description;
  std::function<EnvOptions()> options;
  std::function<void(CaseEnv&)> setup;
  std::function<Bytes(CaseEnv&)> input;
  std::function<Expected(CaseEnv&)> expected;
  std::function<void(CaseEnv&)> after;
  int vlanTags = 0;
};

inline void PrintTo(const PacketCase& c, std::ostream* os) {
  *os << c.name;
}

std::vector<PacketCase> packetCases();

// Runs one case against `env` with gtest assertions (the body of both parameterized tests).
void runCase(const PacketCase& c, CaseEnv& env);

// Helpers the data-path specific tests share.
PacketSpec syn(uint16_t sport, const IpAddress& client = kClient, const IpAddress& vip = kVip,
               uint16_t dport = 80);
CaseBackend backendById(const std::vector<CaseBackend>& list, uint32_t id);
Bytes swapMacs(Bytes frame);
// The frame a DNAT of `spec` to backend `b` gives (MACs swapped).
Bytes dnatTo(PacketSpec spec, const CaseBackend& b);

}  // namespace skiff::dataplane::testing
