#include "dataplane/dpdk/pipeline.h"

#include <bit>
#include <cstring>
#include <span>

#include "dataplane/flow_hash.h"
#include "dataplane/selection.h"

namespace skiff::dataplane::dpdk {
namespace {

constexpr uint32_t kEthLen = 14;
constexpr uint16_t kEthIpv4 = 0x0800;
constexpr uint16_t kEthIpv6 = 0x86dd;
constexpr uint16_t kEth8021Q = 0x8100;
constexpr uint16_t kEth8021AD = 0x88a8;
constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoIcmp6 = 58;
constexpr uint8_t kNextHdrFragment = 44;
constexpr uint8_t kTcpFin = 0x01;
constexpr uint8_t kTcpSyn = 0x02;
constexpr uint8_t kTcpRst = 0x04;
constexpr uint8_t kTcpAck = 0x10;
constexpr uint32_t kReject6Quote = 40 + 8;

uint16_t be16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}

void putBe16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

// 16-bit words as they sit in memory (the one's complement sum does not depend on byte order as
// long as the checksum field is read the same way): the eBPF path's csum.h, word for word.
uint16_t load16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

void store16(uint8_t* p, uint16_t v) {
  std::memcpy(p, &v, 2);
}

// The in-memory value of a 16-bit field holding `host` in network order.
uint16_t wire16(uint16_t host) {
  const uint8_t b[2] = {static_cast<uint8_t>(host >> 8), static_cast<uint8_t>(host)};
  return load16(b);
}

// 64 -> 32 bits, then three 16-bit folds: straight-line code (GCC kept the loop of four 16-bit
// folds this replaces as a loop, a counter and a branch per fold; ~10% of finish()'s samples).
// Any complete fold of the same sum gives the same value, so results are unchanged.
[[gnu::always_inline]] inline uint16_t csumFold(uint64_t sum) {
  sum = (sum & 0xffffffffULL) + (sum >> 32);  // < 2^33
  sum = (sum & 0xffff) + (sum >> 16);         // < 2^17 + 2^16
  sum = (sum & 0xffff) + (sum >> 16);         // <= 0x10001
  sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

[[gnu::always_inline]] inline uint64_t csumDiffWords(const uint8_t* from, const uint8_t* to,
                                                     int n) {
  uint64_t sum = 0;
  for (int i = 0; i < n; ++i) {
    sum += static_cast<uint16_t>(~load16(from + 2 * i));
    sum += load16(to + 2 * i);
  }
  return sum;
}

uint64_t csumSum(const uint8_t* p, uint32_t words) {
  uint64_t sum = 0;
  for (uint32_t i = 0; i < words; ++i)
    sum += load16(p + 2 * i);
  return sum;
}

uint16_t csumApply(uint16_t check, uint64_t diff) {
  return static_cast<uint16_t>(~csumFold(static_cast<uint16_t>(~check) + diff));
}

bool addrEq(const uint8_t* a, const uint8_t* b, size_t n) {
  return std::memcmp(a, b, n) == 0;
}

struct Nat {
  uint8_t addr[16];
  uint16_t port;  // network order, as in memory
  bool rewriteSrc;
};

// dataplane::flowHash of a forward key (dir 0): on a little-endian host the flow hash's five
// words are the key's bytes as loaded (its last word without dir and pad). flowHash assembles
// them byte by byte (it is constexpr and host-independent); this loads them, the same value.
uint64_t keyFlowHash(const CtKey& k) {
  static_assert(std::endian::native == std::endian::little);
  uint64_t w[5];
  std::memcpy(w, &k, sizeof(w));
  w[4] &= 0x0000ffffffffffffULL;
  return hashWords(std::span<const uint64_t>(w, 5), kFlowHashSeed);
}

// The reply entry's key of a flow `key` DNATed to `be`: backend -> client.
void reverseKey(const CtKey& key, const BackendEntry& be, CtKey& rev) {
  std::memcpy(rev.saddr, be.addr, 16);
  std::memcpy(rev.daddr, key.saddr, 16);
  rev.sport = be.port;
  rev.dport = key.sport;
  rev.proto = key.proto;
  rev.family = key.family;
  rev.dir = kCtReply;
  rev.pad = 0;
}

}  // namespace

std::string_view toString(Event event) {
  switch (event) {
    case Event::kCtInsertFailed:
      return "ct_insert_failed";
    case Event::kFragmentPassed:
      return "fragment_passed";
    case Event::kIcmpTranslated:
      return "icmp_translated";
    case Event::kReplyTranslated:
      return "reply_translated";
    case Event::kCtReselected:
      return "ct_reselected";
    case Event::kRejectSent:
      return "reject_sent";
    case Event::kCount:
      break;
  }
  return "?";
}

// What parsing found out about a packet, and what the burst's stages looked up for it.
// Trivial, so that a burst's array of them costs nothing to declare; each stage sets what the
// next one uses.
struct Pipeline::Parsed {
  enum Step : uint8_t { kDone, kDecide, kIcmp4, kIcmp6 };
  Step step;
  uint8_t tcpFlags;
  int8_t way;  // first conntrack way whose signature matched (-1: none)
  uint32_t l3;
  uint32_t l4;
  uint32_t maglevBackend;  // kNoId, or the Maglev pick for a new flow (this snapshot's ring)
  uint32_t feWord;         // port | family << 16 | proto << 24 of the frontend key
  uint64_t hash;           // frontend key hash, then conntrack key hash
  uint64_t ctHash;         // the forward (dir 0) conntrack key's hash, from parse()
  uint64_t revHash;        // hash of the reply key for maglevBackend
  const FrontendEntry* fe;
  CtEntry* ct;  // the bulk conntrack result
  CtKey key;
};

namespace {

// A packet's conntrack key (dir 0), its hash and its frontend key's hash, from 64-bit words
// held in registers. The key is written with one 8-byte store per word: building 16-byte
// vectors from two registers makes GCC go through the stack (two narrow stores, then a wide
// load: a store-forwarding stall, ~25 cycles a packet measured). Addresses: 16 bytes in network
// order (IPv4 in the first 4); `ports`: the 4 bytes of the L4 header's ports as loaded.
inline void storeWord(uint8_t* p, uint64_t w) {
  std::memcpy(p, &w, 8);
}

template <class P>
[[gnu::always_inline]] inline void setKey(P& s, uint64_t sa0, uint64_t sa1, uint64_t da0,
                                          uint64_t da1, uint32_t ports, uint8_t proto,
                                          uint8_t family) {
  const uint64_t w4 = uint64_t{ports} | uint64_t{proto} << 32 | uint64_t{family} << 40;
  auto* k = reinterpret_cast<uint8_t*>(&s.key);
  storeWord(k, sa0);
  __asm__ volatile("" ::: "memory");  // keeps the word stores apart (see above)
  storeWord(k + 8, sa1);
  __asm__ volatile("" ::: "memory");
  storeWord(k + 16, da0);
  __asm__ volatile("" ::: "memory");
  storeWord(k + 24, da1);
  __asm__ volatile("" ::: "memory");
  storeWord(k + 32, w4);
  s.feWord = (ports >> 16) | uint32_t{family} << 16 | uint32_t{proto} << 24;
  s.hash = hashFrontendWords(da0, da1, s.feWord);
  // The forward entry's hash (dir 0), what most packets look up: computed now so that its
  // signature line is on its way while the burst's frontends are looked up.
  const uint64_t w[5] = {sa0, sa1, da0, da1, w4};
  s.ctHash = Conntrack::hashOfWords(w);
  s.step = P::kDecide;
}

}  // namespace

Pipeline::Pipeline(const PipelineConfig& config)
    : config_(config),
      ct_(config.conntrackCapacity, config.conntrackLru),
      affinity_(config.affinityCapacity, true),
      counters_(config.capacities) {}

Verdict Pipeline::drop(uint32_t svcId, DropReason reason) {
  const auto i = static_cast<size_t>(reason);
  if (svcId == kNoId || svcId >= counters_.serviceCount) {
    counters_.unattributed[i].add();
  } else {
    counters_.services[svcId].drops[i].add();
  }
  return Verdict::kDrop;
}

// Inlined into the burst loop (called once a packet; a call, its spills and reloads cost more
// than its body).
[[gnu::always_inline]] inline void Pipeline::countForward(uint32_t svcId, uint32_t backendId,
                                                          uint64_t bytes, bool newFlow) {
  if (svcId < counters_.serviceCount) {
    ServiceCounters& s = counters_.services[svcId];
    s.packets.add();
    s.bytes.add(bytes);
    if (newFlow) s.newFlows.add();
  }
  if (backendId < counters_.backendCount) {
    BackendCounters& b = counters_.backends[backendId];
    b.packets.add();
    b.bytes.add(bytes);
    if (newFlow) b.newFlows.add();
  }
}

// Inlined into the burst loop (called once a packet; a call, its spills and reloads cost more
// than its body).
[[gnu::always_inline]] inline bool Pipeline::alive(const CtEntry& e, uint8_t proto,
                                                   uint64_t now) const {
  uint64_t life = proto == kProtoTcp ? config_.ctTcpNs : config_.ctOtherNs;
  if (e.flags & kCtClosing) life = config_.ctClosingNs;
  return now - e.lastUsedNs < life;
}

// Inlined into the burst loop (called once a packet; a call, its spills and reloads cost more
// than its body).
[[gnu::always_inline]] inline Verdict Pipeline::parse(PacketRef& pkt, Parsed& s) {
  const uint8_t* p = pkt.data;
  const uint32_t len = pkt.len;
  s.step = Parsed::kDone;
  s.tcpFlags = 0;
  s.fe = nullptr;
  if (len < kEthLen) return Verdict::kPass;
  uint32_t off = kEthLen;
  uint16_t proto = be16(p + 12);
  for (int i = 0; i < 2; ++i) {
    if (proto != kEth8021Q && proto != kEth8021AD) break;
    if (off + 4 > len) return Verdict::kPass;
    proto = be16(p + off + 2);
    off += 4;
  }
  s.l3 = off;
  if (proto == kEthIpv4) {
    if (off + 20 > len) return drop(kNoId, DropReason::kMalformedPacket);
    const uint32_t hlen = (p[off] & 0xfu) * 4u;
    const uint32_t totLen = be16(p + off + 2);
    if ((p[off] >> 4) != 4 || hlen < 20 || totLen < hlen || off + totLen > len)
      return drop(kNoId, DropReason::kMalformedPacket);
    if (be16(p + off + 6) & 0x3fff) {
      event(Event::kFragmentPassed);
      return Verdict::kPass;
    }
    s.l4 = off + hlen;
    const uint8_t l4proto = p[off + 9];
    if (l4proto == kProtoIcmp) {
      s.step = Parsed::kIcmp4;
      return Verdict::kPass;
    }
    const uint8_t* l4 = p + s.l4;
    if (l4proto == kProtoTcp) {
      if (s.l4 + 20 > len || (l4[12] >> 4) < 5 || (l4[12] >> 4) * 4u > totLen - hlen)
        return drop(kNoId, DropReason::kMalformedPacket);
      s.tcpFlags = l4[13];
    } else if (l4proto == kProtoUdp) {
      if (s.l4 + 8 > len || be16(l4 + 4) < 8 || be16(l4 + 4) > totLen - hlen)
        return drop(kNoId, DropReason::kMalformedPacket);
    } else {
      return Verdict::kPass;
    }
    uint32_t sa, da, ports;
    std::memcpy(&sa, p + off + 12, 4);
    std::memcpy(&da, p + off + 16, 4);
    std::memcpy(&ports, l4, 4);
    setKey(s, sa, 0, da, 0, ports, l4proto, 4);
    return Verdict::kPass;
  }
  if (proto == kEthIpv6) {
    if (off + 40 > len) return drop(kNoId, DropReason::kMalformedPacket);
    const uint32_t payload = be16(p + off + 4);
    if ((p[off] >> 4) != 6 || off + 40 + payload > len)
      return drop(kNoId, DropReason::kMalformedPacket);
    s.l4 = off + 40;
    const uint8_t next = p[off + 6];
    if (next == kNextHdrFragment) {
      event(Event::kFragmentPassed);
      return Verdict::kPass;
    }
    const uint8_t* l4 = p + s.l4;
    if (next == kProtoTcp) {
      if (s.l4 + 20 > len || (l4[12] >> 4) < 5 || (l4[12] >> 4) * 4u > payload)
        return drop(kNoId, DropReason::kMalformedPacket);
      s.tcpFlags = l4[13];
    } else if (next == kProtoUdp) {
      if (s.l4 + 8 > len || be16(l4 + 4) < 8 || be16(l4 + 4) > payload)
        return drop(kNoId, DropReason::kMalformedPacket);
    } else if (next == kProtoIcmp6) {
      s.step = Parsed::kIcmp6;
      return Verdict::kPass;
    } else {
      return Verdict::kPass;  // extension headers and other protocols: the kernel's
    }
    uint64_t a[4];
    uint32_t ports;
    std::memcpy(a, p + off + 8, 32);
    std::memcpy(&ports, l4, 4);
    setKey(s, a[0], a[1], a[2], a[3], ports, next, 6);
    return Verdict::kPass;
  }
  return Verdict::kPass;
}

// Inlined into the burst loop (called once a packet; a call, its spills and reloads cost more
// than its body).
[[gnu::always_inline]] inline Verdict Pipeline::forward(PacketRef& pkt) {
  if (config_.forward == ForwardMode::kSwapMacs) {
    uint8_t tmp[6];
    std::memcpy(tmp, pkt.data, 6);
    std::memcpy(pkt.data, pkt.data + 6, 6);
    std::memcpy(pkt.data + 6, tmp, 6);
  }
  return Verdict::kTx;
}

// A new flow, or an entry that cannot be kept: the backend by affinity or Maglev, both
// conntrack entries, the affinity entry. Out of line: an established packet's finish() is
// inlined into the burst loop without this body's registers and branches. Null, with `v` set,
// when the packet is dropped or answered instead.
[[gnu::noinline]] const BackendEntry* Pipeline::newFlow(const Tables& t, PacketRef& pkt, Parsed& s,
                                                        uint64_t now, uint32_t& backendId,
                                                        Verdict& v) {
  CtKey& key = s.key;
  const FrontendEntry* fe = s.fe;
  const uint32_t svcId = fe->svcId;
  if (fe->selection == static_cast<uint8_t>(Selection::kNoLocalBackends)) {
    v = drop(svcId, DropReason::kNoLocalBackend);
    return nullptr;
  }
  if (fe->selection == static_cast<uint8_t>(Selection::kNoBackends) || fe->backendCount == 0 ||
      fe->ringSize == 0 || fe->ring == nullptr) {
    v = drop(svcId, DropReason::kNoBackend);
    if (config_.rejectWithoutBackends) {
      v = key.family == 4 ? reject4(pkt, s) : reject6(pkt, s);
      if (v == Verdict::kTx) event(Event::kRejectSent);
    }
    return nullptr;
  }
  AffinityKey akey{};
  const bool affinity = fe->flags & kFrontendAffinity;
  if (affinity) {
    akey.svcId = svcId;
    akey.family = key.family;
    std::memcpy(akey.client, key.saddr, 16);
    if (const AffinityEntry* a = affinity_.lookup(akey);
        a && now - a->lastUsedNs < fe->affinityTimeoutNs) {
      const BackendEntry* ab = t.listedBackend(a->backendId, svcId, key.family);
      const uint8_t bit =
          fe->flags & kFrontendLocal ? kBackendEligibleLocal : kBackendEligibleCluster;
      if (ab && (ab->flags & bit)) backendId = a->backendId;
    }
  }
  if (backendId == kNoId) {
    if (s.maglevBackend != kNoId) {
      backendId = s.maglevBackend;  // the same ring entry, picked ahead
    } else {
      const uint64_t h = keyFlowHash(key);
      backendId = fe->ring[h % fe->ringSize];
    }
  }
  const BackendEntry* be = t.listedBackend(backendId, svcId, key.family);
  if (!be) {
    v = drop(svcId, DropReason::kNoBackend);
    return nullptr;
  }
  // Conntrack, both directions.
  CtEntry e{};
  e.backendId = backendId;
  e.svcId = svcId;
  e.frontendPort = key.dport;
  e.pad[0] = key.proto;
  e.lastUsedNs = now;
  std::memcpy(e.frontendAddr, key.daddr, 16);
  CtKey rev;
  reverseKey(key, *be, rev);
  const uint64_t revHash = backendId == s.maglevBackend ? s.revHash : Conntrack::hash(rev);
  auto expired = [&](const CtEntry& old) { return !alive(old, old.pad[0], now); };
  if (!ct_.insertHashed(key, s.hash, e, expired) || !ct_.insertHashed(rev, revHash, e, expired))
    event(Event::kCtInsertFailed);
  insertedInBurst_ = true;
  if (affinity) {
    AffinityEntry a{backendId, 0, now};
    affinity_.insert(akey, a, [&](const AffinityEntry& old) {
      return now - old.lastUsedNs >= uint64_t{kMaxAffinityTimeoutSeconds} * 1000000000ULL;
    });
  }
  return be;
}

// Inlined into the burst loop (called once a packet); new flows go out of line (newFlow).
[[gnu::always_inline]] inline Verdict Pipeline::finish(const Tables& t, PacketRef& pkt, Parsed& s,
                                                       uint64_t now) {
  CtKey& key = s.key;
  // The bulk result, unless a packet before this one in the burst inserted (and maybe evicted):
  // then look again (the bucket's lines are in cache by now).
  CtEntry* ct = insertedInBurst_ ? ct_.lookupHashed(key, s.hash) : s.ct;
  const FrontendEntry* fe = s.fe;
  const uint64_t bytes = pkt.len;
  Nat nat{};
  if (!fe) {
    // A reply from a backend to a client of a tracked flow?
    if (!ct || !alive(*ct, key.proto, now)) return Verdict::kPass;
    ct->flags |= kCtSeenReply;
    if (key.proto == kProtoTcp && (s.tcpFlags & (kTcpFin | kTcpRst))) ct->flags |= kCtClosing;
    ct->lastUsedNs = now;
    std::memcpy(nat.addr, ct->frontendAddr, 16);
    nat.port = ct->frontendPort;
    nat.rewriteSrc = true;
    countForward(ct->svcId, ct->backendId, bytes, false);
    event(Event::kReplyTranslated);
  } else {
    const uint32_t svcId = fe->svcId;
    if ((fe->flags & kFrontendSourceRanges) && !t.sourceAllowed(*fe, key.saddr, key.family))
      return drop(svcId, DropReason::kSourceRangeDenied);
    const BackendEntry* be = nullptr;
    uint32_t backendId = kNoId;
    bool created = false;
    if (ct && ct->svcId == svcId && alive(*ct, key.proto, now) &&
        !(key.proto == kProtoTcp && (ct->flags & kCtClosing) &&
          (s.tcpFlags & (kTcpSyn | kTcpAck)) == kTcpSyn)) {
      // Established: keep the backend while it is listed; UDP leaves one that stopped serving.
      be = t.listedBackend(ct->backendId, svcId, key.family);
      if (be && key.proto == kProtoUdp && !(be->flags & (kBackendReady | kBackendServing)))
        be = nullptr;
      if (be) {
        backendId = ct->backendId;
        if (key.proto == kProtoTcp && (s.tcpFlags & (kTcpFin | kTcpRst))) ct->flags |= kCtClosing;
        ct->lastUsedNs = now;
      } else {
        event(Event::kCtReselected);
      }
    }
    if (!be) {
      Verdict v;
      be = newFlow(t, pkt, s, now, backendId, v);
      if (!be) return v;
      created = true;
    }
    std::memcpy(nat.addr, be->addr, 16);
    nat.port = be->port;
    nat.rewriteSrc = false;
    countForward(svcId, backendId, bytes, created);
  }

  // Rewrite: address, port, checksums (RFC 1624 incremental updates).
  uint8_t* p = pkt.data;
  uint8_t* l4 = p + s.l4;
  uint8_t* portp = l4 + (nat.rewriteSrc ? 0 : 2);
  uint8_t* addrp = key.family == 4 ? p + s.l3 + (nat.rewriteSrc ? 12 : 16)
                                   : p + s.l3 + (nat.rewriteSrc ? 8 : 24);
  // Word counts and sizes constant in each branch: unrolled sums and inline copies (a length
  // chosen at run time made both a loop and a call to memmove).
  uint64_t addrDiff;
  if (key.family == 4) {
    addrDiff = csumDiffWords(addrp, nat.addr, 2);
    store16(p + s.l3 + 10, csumApply(load16(p + s.l3 + 10), addrDiff));
  } else {
    addrDiff = csumDiffWords(addrp, nat.addr, 8);
  }
  const uint64_t diff =
      addrDiff + csumDiffWords(portp, reinterpret_cast<const uint8_t*>(&nat.port), 1);
  if (key.proto == kProtoTcp) {
    store16(l4 + 16, csumApply(load16(l4 + 16), diff));
  } else {
    const uint16_t check = load16(l4 + 6);
    if (check != 0 || key.family == 6) {
      const uint16_t c = csumApply(check, diff);
      store16(l4 + 6, c ? c : 0xffff);
    }
  }
  std::memcpy(portp, &nat.port, 2);
  if (key.family == 4) {
    std::memcpy(addrp, nat.addr, 4);
  } else {
    std::memcpy(addrp, nat.addr, 16);
  }
  return forward(pkt);
}

Verdict Pipeline::icmp4(PacketRef& pkt, Parsed& s) {
  uint8_t* p = pkt.data;
  const uint32_t len = pkt.len;
  uint8_t* outer = p + s.l3;
  uint8_t* icmp = p + s.l4;
  if (s.l4 + 8 > len) return Verdict::kPass;
  if (icmp[0] != 3 && icmp[0] != 11 && icmp[0] != 12) return Verdict::kPass;
  uint8_t* inner = icmp + 8;
  uint8_t* ports = inner + 20;
  if (s.l4 + 8 + 20 + 4 > len) return Verdict::kPass;
  if ((inner[0] & 0xf) != 5 || (inner[9] != kProtoTcp && inner[9] != kProtoUdp))
    return Verdict::kPass;
  CtKey key{};
  key.family = 4;
  key.proto = inner[9];
  std::memcpy(key.saddr, inner + 16, 4);
  std::memcpy(key.daddr, inner + 12, 4);
  std::memcpy(&key.sport, ports + 2, 2);
  std::memcpy(&key.dport, ports, 2);
  key.dir = kCtReply;
  Nat nat{};
  uint8_t *inAddr, *inPort, *outAddr;
  if (const CtEntry* ct = ct_.lookup(key)) {
    std::memcpy(nat.addr, ct->frontendAddr, 16);
    nat.port = ct->frontendPort;
    inAddr = inner + 16;
    inPort = ports + 2;
    outAddr = outer + 12;
  } else {
    key.dir = kCtForward;
    ct = ct_.lookup(key);
    if (!ct) return Verdict::kPass;
    const BackendEntry* be = tables_->listedBackend(ct->backendId, ct->svcId, 4);
    if (!be) return Verdict::kPass;
    std::memcpy(nat.addr, be->addr, 16);
    nat.port = be->port;
    inAddr = inner + 12;
    inPort = ports;
    outAddr = outer + 16;
  }
  if (addrEq(outAddr, inAddr, 4)) {
    store16(outer + 10, csumApply(load16(outer + 10), csumDiffWords(outAddr, nat.addr, 2)));
    std::memcpy(outAddr, nat.addr, 4);
  }
  const uint64_t inDiff = csumDiffWords(inAddr, nat.addr, 2);
  uint8_t oldCheck[2], newCheck[2];
  std::memcpy(oldCheck, inner + 10, 2);
  store16(inner + 10, csumApply(load16(inner + 10), inDiff));
  std::memcpy(newCheck, inner + 10, 2);
  const uint64_t icmpDiff = inDiff +
                            csumDiffWords(inPort, reinterpret_cast<const uint8_t*>(&nat.port), 1) +
                            csumDiffWords(oldCheck, newCheck, 1);
  store16(icmp + 2, csumApply(load16(icmp + 2), icmpDiff));
  std::memcpy(inAddr, nat.addr, 4);
  std::memcpy(inPort, &nat.port, 2);
  event(Event::kIcmpTranslated);
  return forward(pkt);
}

Verdict Pipeline::icmp6(PacketRef& pkt, Parsed& s) {
  uint8_t* p = pkt.data;
  const uint32_t len = pkt.len;
  uint8_t* outer = p + s.l3;
  uint8_t* icmp = p + s.l4;
  if (s.l4 + 8 > len) return Verdict::kPass;
  if (icmp[0] < 1 || icmp[0] > 4) return Verdict::kPass;
  uint8_t* inner = icmp + 8;
  uint8_t* ports = inner + 40;
  if (s.l4 + 8 + 40 + 4 > len) return Verdict::kPass;
  if (inner[6] != kProtoTcp && inner[6] != kProtoUdp) return Verdict::kPass;
  CtKey key{};
  key.family = 6;
  key.proto = inner[6];
  std::memcpy(key.saddr, inner + 24, 16);
  std::memcpy(key.daddr, inner + 8, 16);
  std::memcpy(&key.sport, ports + 2, 2);
  std::memcpy(&key.dport, ports, 2);
  key.dir = kCtReply;
  Nat nat{};
  uint8_t *inAddr, *inPort, *outAddr;
  if (const CtEntry* ct = ct_.lookup(key)) {
    std::memcpy(nat.addr, ct->frontendAddr, 16);
    nat.port = ct->frontendPort;
    inAddr = inner + 24;
    inPort = ports + 2;
    outAddr = outer + 8;
  } else {
    key.dir = kCtForward;
    ct = ct_.lookup(key);
    if (!ct) return Verdict::kPass;
    const BackendEntry* be = tables_->listedBackend(ct->backendId, ct->svcId, 6);
    if (!be) return Verdict::kPass;
    std::memcpy(nat.addr, be->addr, 16);
    nat.port = be->port;
    inAddr = inner + 8;
    inPort = ports;
    outAddr = outer + 24;
  }
  uint64_t diff = 0;
  if (addrEq(outAddr, inAddr, 16)) {
    diff += csumDiffWords(outAddr, nat.addr, 8);
    std::memcpy(outAddr, nat.addr, 16);
  }
  diff += csumDiffWords(inAddr, nat.addr, 8) +
          csumDiffWords(inPort, reinterpret_cast<const uint8_t*>(&nat.port), 1);
  store16(icmp + 2, csumApply(load16(icmp + 2), diff));
  std::memcpy(inAddr, nat.addr, 16);
  std::memcpy(inPort, &nat.port, 2);
  event(Event::kIcmpTranslated);
  return forward(pkt);
}

Verdict Pipeline::reject4(PacketRef& pkt, const Parsed& s) {
  uint8_t* p = pkt.data;
  if (s.l3 != kEthLen) return Verdict::kDrop;
  const uint32_t quote = (p[kEthLen] & 0xfu) * 4u + 8;
  if (quote > 68 || pkt.len < kEthLen + quote || pkt.capacity < kEthLen + 28 + quote)
    return Verdict::kDrop;
  uint8_t smac[6], dmac[6], saddr[4], daddr[4], id[2];
  std::memcpy(dmac, p, 6);
  std::memcpy(smac, p + 6, 6);
  std::memcpy(saddr, p + kEthLen + 12, 4);
  std::memcpy(daddr, p + kEthLen + 16, 4);
  std::memcpy(id, p + kEthLen + 4, 2);
  std::memmove(p + kEthLen + 28, p + kEthLen, quote);
  std::memcpy(p, smac, 6);
  std::memcpy(p + 6, dmac, 6);
  putBe16(p + 12, kEthIpv4);
  uint8_t* ip = p + kEthLen;
  ip[0] = 0x45;
  ip[1] = 0;
  putBe16(ip + 2, static_cast<uint16_t>(28 + quote));
  std::memcpy(ip + 4, id, 2);
  putBe16(ip + 6, 0);
  ip[8] = 64;
  ip[9] = kProtoIcmp;
  putBe16(ip + 10, 0);
  std::memcpy(ip + 12, daddr, 4);
  std::memcpy(ip + 16, saddr, 4);
  store16(ip + 10, static_cast<uint16_t>(~csumFold(csumSum(ip, 10))));
  uint8_t* icmp = ip + 20;
  icmp[0] = 3;
  icmp[1] = 3;  // port unreachable
  std::memset(icmp + 2, 0, 6);
  store16(icmp + 2, static_cast<uint16_t>(~csumFold(csumSum(icmp, (8 + quote) / 2))));
  pkt.len = kEthLen + 28 + quote;
  return Verdict::kTx;
}

Verdict Pipeline::reject6(PacketRef& pkt, const Parsed& s) {
  uint8_t* p = pkt.data;
  if (s.l3 != kEthLen) return Verdict::kDrop;
  if (pkt.len < kEthLen + kReject6Quote || pkt.capacity < kEthLen + 48 + kReject6Quote)
    return Verdict::kDrop;
  uint8_t smac[6], dmac[6], saddr[16], daddr[16];
  std::memcpy(dmac, p, 6);
  std::memcpy(smac, p + 6, 6);
  std::memcpy(saddr, p + kEthLen + 8, 16);
  std::memcpy(daddr, p + kEthLen + 24, 16);
  std::memmove(p + kEthLen + 48, p + kEthLen, kReject6Quote);
  std::memcpy(p, smac, 6);
  std::memcpy(p + 6, dmac, 6);
  putBe16(p + 12, kEthIpv6);
  uint8_t* ip = p + kEthLen;
  std::memset(ip, 0, 4);
  ip[0] = 0x60;
  putBe16(ip + 4, static_cast<uint16_t>(8 + kReject6Quote));
  ip[6] = kProtoIcmp6;
  ip[7] = 64;
  std::memcpy(ip + 8, daddr, 16);
  std::memcpy(ip + 24, saddr, 16);
  uint8_t* icmp = ip + 40;
  icmp[0] = 1;
  icmp[1] = 4;  // port unreachable
  std::memset(icmp + 2, 0, 6);
  const uint64_t sum = csumSum(ip + 8, 16) + wire16(static_cast<uint16_t>(8 + kReject6Quote)) +
                       wire16(kProtoIcmp6) + csumSum(icmp, (8 + kReject6Quote) / 2);
  store16(icmp + 2, static_cast<uint16_t>(~csumFold(sum)));
  pkt.len = kEthLen + 48 + kReject6Quote;
  return Verdict::kTx;
}

Verdict Pipeline::process(const Tables& tables, PacketRef& packet, uint64_t nowNs) {
  Verdict v;
  processBurst(tables, &packet, &v, 1, nowNs);
  return v;
}

void Pipeline::processBurst(const Tables& tables, PacketRef* packets, Verdict* verdicts, size_t n,
                            uint64_t nowNs) {
  constexpr size_t kMax = 32;
  Parsed parsed[kMax];
  size_t decide[kMax];  // indices of the packets that need a decision (Parsed::kDecide)
  tables_ = &tables;
  for (size_t base = 0; base < n; base += kMax) {
    const size_t m = n - base < kMax ? n - base : kMax;
    PacketRef* pkts = packets + base;
    Verdict* out = verdicts + base;
    // Stage 0: every header of the burst on its way into the cache.
    for (size_t i = 0; i < m; ++i) {
      prefetch(pkts[i].data);
      prefetch(pkts[i].data + 64);
    }
    // Stage 1: parse; hash each frontend key and prefetch its slot.
    uint64_t rxBytes = 0;
    size_t nd = 0;
    for (size_t i = 0; i < m; ++i) {
      rxBytes += pkts[i].len;
      Parsed& s = parsed[i];
      out[i] = parse(pkts[i], s);
      if (s.step != Parsed::kDecide) continue;
      decide[nd++] = i;
      tables.prefetchFrontend(s.hash);  // parse() hashed the frontend key
      ct_.prefetchBucket(s.ctHash);     // and the forward conntrack key
    }
    counters_.rxPackets.add(m);
    counters_.rxBytes.add(rxBytes);
    // Stage 2: frontends; for packets to no frontend (replies) the reply key's hash and its
    // signature line.
    for (size_t j = 0; j < nd; ++j) {
      Parsed& s = parsed[decide[j]];
      uint64_t w[5];
      std::memcpy(w, &s.key, sizeof(w));
      s.fe = tables.lookupHashedWords(w[2], w[3], s.feWord, s.hash, config_.wildcardNodePorts);
      if (s.fe) {
        s.hash = s.ctHash;
        if (s.fe->svcId < counters_.serviceCount) prefetchWrite(&counters_.services[s.fe->svcId]);
      } else {
        // The direction set in a register, then stored: loading what was just stored would wait
        // for store forwarding.
        w[4] |= uint64_t{kCtReply} << 48;
        s.key.dir = kCtReply;
        s.hash = Conntrack::hashOfWords(w);
        ct_.prefetchBucket(s.hash);
      }
    }
    // Stage 3: signatures; the matching slot's lines.
    for (size_t j = 0; j < nd; ++j) {
      Parsed& s = parsed[decide[j]];
      // A forward entry's lookup reads the key and the value's head; a reply's also the
      // frontend address.
      s.way = static_cast<int8_t>(ct_.prefetchSlot(s.hash, s.fe == nullptr));
    }
    // Stage 4: keys. Established: prefetch the backend and its counters. New flows to a
    // frontend with a ring: the Maglev ring entry.
    size_t fresh = 0;
    for (size_t j = 0; j < nd; ++j) {
      Parsed& s = parsed[decide[j]];
      s.ct = ct_.finishLookup(s.key, s.hash, s.way);
      s.maglevBackend = kNoId;
      if (s.ct) {
        if (const BackendEntry* b = tables.backendSlot(s.ct->backendId)) prefetch(b);
        if (s.ct->backendId < counters_.backendCount)
          prefetchWrite(&counters_.backends[s.ct->backendId]);
      } else if (s.fe && s.fe->ring != nullptr && s.fe->ringSize != 0) {
        const uint64_t h = keyFlowHash(s.key);
        s.revHash = h % s.fe->ringSize;  // the ring position, until stage 5
        prefetch(&s.fe->ring[s.revHash]);
        ++fresh;
      }
    }
    // Stages 5 and 6, new flows only: the Maglev pick and its backend entry; the reply key's
    // hash and signature line, and the free slot each insert will write.
    if (fresh != 0) {
      for (size_t j = 0; j < nd; ++j) {
        Parsed& s = parsed[decide[j]];
        if (s.ct || !s.fe || s.fe->ring == nullptr || s.fe->ringSize == 0) continue;
        s.maglevBackend = s.fe->ring[s.revHash];
        if (const BackendEntry* b = tables.backendSlot(s.maglevBackend)) prefetch(b);
        if (s.maglevBackend < counters_.backendCount)
          prefetchWrite(&counters_.backends[s.maglevBackend]);
      }
      for (size_t j = 0; j < nd; ++j) {
        Parsed& s = parsed[decide[j]];
        if (s.maglevBackend == kNoId) continue;
        const BackendEntry* be = tables.listedBackend(s.maglevBackend, s.fe->svcId, s.key.family);
        if (!be) {
          s.maglevBackend = kNoId;
          continue;
        }
        CtKey rev;
        reverseKey(s.key, *be, rev);
        s.revHash = Conntrack::hash(rev);
        ct_.prefetchBucket(s.revHash);
        ct_.prefetchInsert(s.hash);
      }
      for (size_t j = 0; j < nd; ++j) {
        const Parsed& s = parsed[decide[j]];
        if (s.maglevBackend != kNoId) ct_.prefetchInsert(s.revHash);
      }
    }
    // Decide and rewrite, in order. Once a packet of this burst created a flow, later packets
    // look up again: the bulk results predate that insert (and an eviction it made).
    insertedInBurst_ = false;
    uint64_t tx = 0, pass = 0, dropped = 0;
    for (size_t i = 0; i < m; ++i) {
      PacketRef& pkt = pkts[i];
      Parsed& s = parsed[i];
      Verdict v = out[i];
      switch (s.step) {
        case Parsed::kDone:
          break;
        case Parsed::kDecide:
          v = finish(tables, pkt, s, nowNs);
          break;
        case Parsed::kIcmp4:
          v = icmp4(pkt, s);
          break;
        case Parsed::kIcmp6:
          v = icmp6(pkt, s);
          break;
      }
      out[i] = v;
      tx += v == Verdict::kTx;
      pass += v == Verdict::kPass;
      dropped += v == Verdict::kDrop;
    }
    if (tx) counters_.txPackets.add(tx);
    if (pass) counters_.passPackets.add(pass);
    if (dropped) counters_.dropPackets.add(dropped);
  }
}

}  // namespace skiff::dataplane::dpdk
