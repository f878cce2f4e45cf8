#pragma once

// The DPDK data path's per-packet logic, free of EAL: it works on plain byte buffers, so unit
// tests and micro-benchmarks run it without hugepages or ports, and the lcore loop (worker.h)
// feeds it mbufs. It gives the same answer as the XDP program (ebpf/bpf/lib/nodeport.h) for the
// same packet: parse (Ethernet, up to two VLAN tags, IPv4, IPv6, TCP, UDP, ICMP errors), service
// lookup, source ranges, conntrack, ClientIP affinity, Maglev for new flows
// (dataplane::flowHash), DNAT and reverse NAT with incremental checksums, ICMP errors about
// tracked flows translated both ways, and an ICMP port unreachable for services without backends.
//
// Threading: one Pipeline per lcore, used by that lcore alone. Its conntrack, affinity table and
// counters are its own; the Tables snapshot it reads is shared and immutable. Counters are
// relaxed atomics written by the lcore and read by the stats reader at any time.
//
// Nothing here allocates, locks or throws after construction.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "dataplane/dataplane.h"
#include "dataplane/dpdk/flow_table.h"
#include "dataplane/dpdk/tables.h"

namespace skiff::dataplane::dpdk {

// What to do with a packet after process().
enum class Verdict : uint8_t {
  // Not for us, or not translated: hand to the kernel (the exception path) unchanged.
  kPass,
  // Counted drop.
  kDrop,
  // Send out: translated (MACs swapped in one-armed mode) or a reject answered to the sender.
  kTx,
};

// What happens to translated packets.
enum class ForwardMode : uint8_t {
  // Swap source and destination MAC and send back out the port it came in on (one-armed: the
  // router in front sends it on; also what the shared packet-case table expects).
  kSwapMacs,
  // Leave the Ethernet header as it is (the caller's TX stage rewrites it).
  kKeepMacs,
};

struct PipelineConfig {
  ForwardMode forward = ForwardMode::kSwapMacs;
  // Conntrack lifetimes after the last packet (the eBPF path's defaults).
  uint64_t ctTcpNs = 21600ULL * 1000000000ULL;
  uint64_t ctOtherNs = 60ULL * 1000000000ULL;
  uint64_t ctClosingNs = 10ULL * 1000000000ULL;
  // Entries per lcore: each flow takes two (forward and reply).
  size_t conntrackCapacity = 1 << 20;
  // Evict the least recently used entry of a full bucket (else an insert fails and the flow is
  // forwarded by Maglev alone, counted).
  bool conntrackLru = true;
  size_t affinityCapacity = 65536;
  // Answer a new flow to a service without backends with ICMP(v6) port unreachable.
  bool rejectWithoutBackends = true;
  // Match NodePorts on the port alone (frontends with an unspecified address).
  bool wildcardNodePorts = true;
  Capacities capacities;
};

// Events counted apart from drops (the eBPF path's skiff_global events).
enum class Event : uint8_t {
  kCtInsertFailed,   // a new flow forwarded by Maglev alone
  kFragmentPassed,   // IPv4/IPv6 fragments go to the kernel
  kIcmpTranslated,   // ICMP error about a tracked flow rewritten
  kReplyTranslated,  // backend reply reverse-NATed
  kCtReselected,     // stale conntrack entry (backend gone or UDP backend not serving)
  kRejectSent,       // ICMP port unreachable answered
  kCount,
};
inline constexpr size_t kEventCount = static_cast<size_t>(Event::kCount);
std::string_view toString(Event event);  // "ct_insert_failed", ...

// A counter one thread writes and any thread reads: relaxed loads and stores, no RMW.
class Counter {
 public:
  void add(uint64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }
  void reset() { v_.store(0, std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// 32-byte aligned: what every forwarded packet writes (packets, bytes, newFlows) sits in one cache
// line, the one the burst prefetches.
struct alignas(32) ServiceCounters {
  Counter packets, bytes, newFlows;
  Counter drops[kDropReasonCount];
};

struct alignas(32) BackendCounters {
  Counter packets, bytes, newFlows;
};

// One lcore's counters, indexed by the ids of tables.h (0 unused).
struct LcoreCounters {
  explicit LcoreCounters(const Capacities& c)
      : services(std::make_unique<ServiceCounters[]>(c.services + 1)),
        backends(std::make_unique<BackendCounters[]>(c.backends + 1)),
        serviceCount(c.services + 1),
        backendCount(c.backends + 1) {}

  std::unique_ptr<ServiceCounters[]> services;
  std::unique_ptr<BackendCounters[]> backends;
  size_t serviceCount;
  size_t backendCount;
  Counter unattributed[kDropReasonCount];
  Counter events[kEventCount];
  // Packets in, and out by verdict.
  Counter rxPackets, rxBytes, txPackets, passPackets, dropPackets;
};

// A packet in memory: `len` bytes at `data`, room for `capacity` (a reject may grow a frame).
struct PacketRef {
  uint8_t* data = nullptr;
  uint32_t len = 0;
  uint32_t capacity = 0;
};

// Conntrack key: the tuple as the packet carries it (the forward entry by client -> frontend,
// the reply entry by backend -> client). Same layout as the eBPF path's skiff_ct_key.
struct CtKey {
  uint8_t saddr[16];
  uint8_t daddr[16];
  uint16_t sport;  // network order
  uint16_t dport;
  uint8_t proto;
  uint8_t family;
  uint8_t dir;  // kCtForward / kCtReply
  uint8_t pad;
};
static_assert(sizeof(CtKey) == 40);
static_assert(offsetof(CtKey, sport) == 32 && offsetof(CtKey, dir) == 38);  // pipeline.cc's words
inline constexpr uint8_t kCtForward = 0;
inline constexpr uint8_t kCtReply = 1;
inline constexpr uint32_t kCtSeenReply = 1u << 0;
inline constexpr uint32_t kCtClosing = 1u << 1;

struct CtEntry {
  uint32_t backendId;
  uint32_t svcId;
  uint32_t flags;
  uint16_t frontendPort;  // network order
  uint8_t pad[2];
  uint64_t lastUsedNs;
  uint8_t frontendAddr[16];
};

struct AffinityKey {
  uint32_t svcId;
  uint8_t family;
  uint8_t pad[3];
  uint8_t client[16];
};
static_assert(sizeof(AffinityKey) == 24);

struct AffinityEntry {
  uint32_t backendId;
  uint32_t pad;
  uint64_t lastUsedNs;
};

// Slots a cache line apart: the key and the value up to frontendAddr fill the first line.
static_assert(offsetof(CtEntry, frontendAddr) + sizeof(CtKey) == 64);
using Conntrack = FlowTable<CtKey, CtEntry, 64>;
using AffinityTable = FlowTable<AffinityKey, AffinityEntry>;

class Pipeline {
 public:
  explicit Pipeline(const PipelineConfig& config);

  // Handles one packet.
  Verdict process(const Tables& tables, PacketRef& packet, uint64_t nowNs);
  // Handles a burst: parses all, looks their conntrack entries up in bulk, then decides and
  // rewrites each. verdicts[i] is packets[i]'s.
  void processBurst(const Tables& tables, PacketRef* packets, Verdict* verdicts, size_t n,
                    uint64_t nowNs);

  LcoreCounters& counters() { return counters_; }
  const LcoreCounters& counters() const { return counters_; }
  Conntrack& conntrack() { return ct_; }
  const PipelineConfig& config() const { return config_; }

  // Forgets conntrack and affinity state (tests, and a restart of the data path).
  void clearFlows() {
    ct_.clear();
    affinity_.clear();
  }

 private:
  struct Parsed;
  Verdict parse(PacketRef& p, Parsed& out);
  Verdict finish(const Tables& t, PacketRef& p, Parsed& s, uint64_t now);
  const BackendEntry* newFlow(const Tables& t, PacketRef& p, Parsed& s, uint64_t now,
                              uint32_t& backendId, Verdict& v);
  Verdict icmp4(PacketRef& p, Parsed& s);
  Verdict icmp6(PacketRef& p, Parsed& s);
  Verdict reject4(PacketRef& p, const Parsed& s);
  Verdict reject6(PacketRef& p, const Parsed& s);
  Verdict forward(PacketRef& p);
  Verdict drop(uint32_t svcId, DropReason reason);
  void countForward(uint32_t svcId, uint32_t backendId, uint64_t bytes, bool newFlow);
  void event(Event e) { counters_.events[static_cast<size_t>(e)].add(); }
  bool alive(const CtEntry& e, uint8_t proto, uint64_t now) const;

  PipelineConfig config_;
  // The snapshot of the burst being handled.
  const Tables* tables_ = nullptr;
  bool insertedInBurst_ = false;
  Conntrack ct_;
  AffinityTable affinity_;
  LcoreCounters counters_;
};

}  // namespace skiff::dataplane::dpdk
