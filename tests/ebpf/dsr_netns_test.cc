// DSR with IPIP (`--lb-mode dsr`) end to end: four network namespaces made for the test, the
// entry node's (this test's child after unshare), the client's and the backend node's, joined by
// veth pairs:
//
//   client 198.51.100.7 (vclp) ---- (vcl) 198.51.100.1  entry node  10.0.2.1 (vbe)
//          192.0.2.7 (vcd)                                              |
//            |                                          backend node 10.0.2.2 (vbep)
//            +---------------- (vcdp) 192.0.2.2 ------------ pod address 10.244.1.10 (lo)
//
// A wildcard NodePort (*:30080/TCP) whose one backend, 10.244.1.10:8080, is on the backend node.
// The entry node's data path (tc on vcl, DSR, the outer source from the FIB) sends the client's
// packets on to 10.244.1.10 inside IPIP (FIB redirect out vbe, or the kernel's forwarding in PASS
// mode); the backend node's (tc on vbep and vcdp, DSR) takes the outer header off, DNATs to the
// pod address and records the reply entry; the server answers from 10.244.1.10:8080, the backend
// node's tc egress on vcdp gives the reply the NodePort's address and port, and it goes straight
// to the client over the direct link, never through the entry node. The server tells each client
// the peer address it saw: the client's own (the point of DSR). 20 connections, 64 KiB echoed on
// one (full-size segments plus the outer header: the entry-to-backend link has an MTU of 1600).
// Checksum offload is off everywhere, so the receiving kernels verify every checksum; the
// backend node's vbep has GRO on (XDP_REDIRECT into it needs its NAPI), so the tc ingress there
// decapsulates aggregated IPIP skbs too. The entry node runs tc or XDP, with FIB redirect or
// kernel forwarding. The host's
// interfaces, routes and sysctls are never touched.

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "ebpf/ebpf_dataplane.h"
#include "ebpf/loader.h"
#include "ebpf/map_writer.h"
#include "tests/ebpf/netns_util.h"

namespace skiff::ebpf {
namespace {

using dataplane::IpAddress;
using netns::addr4;
using netns::enterNetns;
using netns::ip;
using netns::setEthtool;
using netns::sh;
using netns::text;
using netns::waitExit;
using netns::writeFile;

constexpr int kConnections = 20;
constexpr size_t kBulk = 65536;

// Packets `ifname` of the current network namespace sent (/proc/net/dev follows the reader's
// namespace; /sys/class/net is the one sysfs was mounted in).
uint64_t txPackets(const std::string& ifname) {
  std::ifstream f("/proc/net/dev");
  std::string line;
  while (std::getline(f, line)) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const size_t start = line.find_first_not_of(' ');
    if (line.substr(start, colon - start) != ifname) continue;
    std::istringstream fields(line.substr(colon + 1));
    uint64_t v = 0;
    for (int i = 0; i < 10; ++i)  // 8 receive fields, then tx bytes, tx packets
      fields >> v;
    return v;
  }
  return ~uint64_t{0};
}

bool offloadOff(const char* ifname) {
  return setEthtool(ifname, {{ETHTOOL_STXCSUM, false}, {ETHTOOL_SRXCSUM, false}});
}

// Turns GRO on for `ifname`: a veth then receives through NAPI, which XDP_REDIRECT into its peer
// needs when it runs no XDP program of its own.
bool groOn(const char* ifname) {
  return setEthtool(ifname, {{ETHTOOL_SGRO, true}});
}

// Checksum offload (and with it TSO) on send for `ifname`.
bool setTxOffload(const char* ifname) {
  return setEthtool(ifname, {{ETHTOOL_STXCSUM, true}, {ETHTOOL_STSO, true}});
}

bool readFull(int fd, char* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(fd, buf + got, n - got);
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

// The server on the pod address: each connection first gets the peer address it has, as
// "a.b.c.d:port" in 32 bytes, then every byte it sends is echoed. Runs until killed.
[[noreturn]] void server(const std::string& netns, int ready) {
  ::alarm(60);
  if (!enterNetns(netns)) _exit(10);
  sockaddr_in a = addr4("10.244.1.10", 8080);
  const int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(l, 64) != 0) {
    _exit(11);
  }
  if (::write(ready, "r", 1) != 1) _exit(12);
  std::vector<pollfd> fds = {{l, POLLIN, 0}};
  for (;;) {
    if (::poll(fds.data(), fds.size(), -1) < 0) _exit(13);
    const size_t n = fds.size();
    for (size_t i = 0; i < n; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      if (i == 0) {
        sockaddr_in peer{};
        socklen_t len = sizeof(peer);
        const int c = ::accept4(l, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
        if (c < 0) _exit(14);
        char line[32] = {};
        std::snprintf(line, sizeof(line), "%s", text(peer).c_str());
        if (::write(c, line, sizeof(line)) != sizeof(line)) _exit(15);
        fds.push_back({c, POLLIN, 0});
        continue;
      }
      char buf[16384];
      const ssize_t got = ::read(fds[i].fd, buf, sizeof(buf));
      if (got <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        continue;
      }
      if (::write(fds[i].fd, buf, static_cast<size_t>(got)) != got) _exit(16);
    }
  }
}

// The client: kConnections connections to the NodePort; each must be told its own address by
// the server; then kBulk bytes echoed on the first. Exit code 0 when all held.
[[noreturn]] void client(const std::string& netns) {
  ::alarm(60);
  if (!enterNetns(netns)) _exit(20);
  std::vector<int> conns;
  for (int i = 0; i < kConnections; ++i) {
    sockaddr_in np = addr4("198.51.100.1", 30080);
    const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{5, 0};
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (::connect(c, reinterpret_cast<sockaddr*>(&np), sizeof(np)) != 0) _exit(21);
    sockaddr_in self{};
    socklen_t len = sizeof(self);
    if (::getsockname(c, reinterpret_cast<sockaddr*>(&self), &len) != 0) _exit(22);
    char line[32] = {};
    if (!readFull(c, line, sizeof(line))) _exit(23);
    if (std::string(line) != text(self)) {
      std::fprintf(stderr, "server saw %s, client is %s\n", line, text(self).c_str());
      _exit(24);
    }
    conns.push_back(c);
  }
  std::string bulk(kBulk, 0);
  for (size_t i = 0; i < kBulk; ++i)
    bulk[i] = static_cast<char>('a' + i % 26);
  size_t sent = 0;
  std::string back(kBulk, 0);
  size_t got = 0;
  while (got < kBulk) {
    if (sent < kBulk) {
      const ssize_t w =
          ::write(conns[0], bulk.data() + sent, std::min<size_t>(16384, kBulk - sent));
      if (w <= 0) _exit(25);
      sent += static_cast<size_t>(w);
    }
    while (got < sent) {
      const ssize_t r = ::read(conns[0], back.data() + got, sent - got);
      if (r <= 0) _exit(26);
      got += static_cast<size_t>(r);
    }
  }
  if (back != bulk) _exit(27);
  for (int c : conns)
    ::close(c);
  _exit(0);
}

dataplane::Service nodePortService(bool local) {
  dataplane::Service s;
  s.id = "default/np:http";
  s.frontends = {
      {{ip("0.0.0.0"), 30080, dataplane::L4Protocol::kTcp}, dataplane::FrontendKind::kNodePort}};
  s.backends = {{.address = ip("10.244.1.10"), .port = 8080, .local = local}};
  return s;
}

// How the entry node runs: its hook and what it does with an encapsulated packet.
struct EntryMode {
  NodePortMode hook = NodePortMode::kTc;
  uint32_t fwdMode = SKIFF_FWD_FIB;
  // The client sends with checksum offload and TSO: the entry node's tc encapsulates
  // CHECKSUM_PARTIAL GSO skbs (the inner headers set, so they are segmented as IPIP).
  bool clientOffload = false;
};

EbpfDataplaneOptions dsrOptions(uint32_t fwdMode, std::vector<int> ifindexes,
                                NodePortMode hook = NodePortMode::kTc) {
  EbpfDataplaneOptions options;
  options.load.conntrack = 4096;
  options.load.frontends = 16;
  options.load.services = 16;
  options.load.backends = 16;
  options.load.rings = 16;
  options.load.withSocketLb = false;
  options.load.withXdp = hook == NodePortMode::kXdp;
  options.load.lbMode = SKIFF_LB_DSR;
  options.load.fwdMode = fwdMode;
  options.xdpIfindexes = std::move(ifindexes);
  options.nodePortMode = hook;
  options.mountBpffs = false;
  return options;
}

// The entry node (this process after unshare). Exit code 0 when everything held; otherwise the
// step that failed (5x-8x here, 1xx topology).
[[noreturn]] void entryNode(const std::string& cl, const std::string& bn, EntryMode mode) {
  ::alarm(90);
  if (::unshare(CLONE_NEWNET) != 0) _exit(50);
  const int home = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0) _exit(50);
  const std::string c = "ip -n " + cl + " ";
  const std::string b = "ip -n " + bn + " ";
  const std::vector<std::string> setup = {
      "ip netns add " + cl,
      "ip netns add " + bn,
      "ip link add vcl type veth peer name vclp netns " + cl,
      "ip link add vbe mtu 1600 type veth peer name vbep mtu 1600 netns " + bn,
      "ip link add vcd netns " + cl + " type veth peer name vcdp netns " + bn,
      "ip link set lo up",
      "ip addr add 198.51.100.1/24 dev vcl",
      "ip link set vcl up",
      "ip addr add 10.0.2.1/24 dev vbe",
      "ip link set vbe up",
      "ip route add 10.244.1.0/24 via 10.0.2.2",
      c + "link set lo up",
      c + "addr add 198.51.100.7/24 dev vclp",
      c + "link set vclp up",
      c + "addr add 192.0.2.7/24 dev vcd",
      c + "link set vcd up",
      b + "link set lo up",
      b + "addr add 10.244.1.10/32 dev lo",
      b + "addr add 10.0.2.2/24 dev vbep",
      b + "link set vbep up",
      b + "addr add 192.0.2.2/24 dev vcdp",
      b + "link set vcdp up",
      // The backend node answers clients over the direct link, not through the entry node.
      b + "route add 198.51.100.0/24 via 192.0.2.7",
  };
  for (size_t i = 0; i < setup.size(); ++i) {
    if (!sh(setup[i])) _exit(static_cast<int>(100 + i));
  }
  // The entry node forwards; in PASS mode the kernel takes the encapsulated packet, whose source
  // is the node's own address, from vcl (accept_local). The client gets replies on vcd from an
  // address it reaches over vclp, the backend node packets on vbep from a client it answers over
  // vcdp: no reverse-path filter anywhere.
  if (!writeFile("/proc/sys/net/ipv4/ip_forward", "1") ||
      !writeFile("/proc/sys/net/ipv4/conf/all/rp_filter", "0") ||
      !writeFile("/proc/sys/net/ipv4/conf/vcl/rp_filter", "0") ||
      !writeFile("/proc/sys/net/ipv4/conf/vbe/rp_filter", "0") ||
      !writeFile("/proc/sys/net/ipv4/conf/vcl/accept_local", "1") ||
      !writeFile("/proc/sys/net/ipv6/conf/vcl/disable_ipv6", "1") || !offloadOff("vcl") ||
      !offloadOff("vbe")) {
    _exit(51);
  }
  for (const auto& [ns, ifs] : std::vector<std::pair<std::string, std::vector<const char*>>>{
           {cl, {"vclp", "vcd"}}, {bn, {"vbep", "vcdp"}}}) {
    if (!enterNetns(ns)) _exit(52);
    bool ok =
        writeFile("/proc/sys/net/ipv4/conf/all/rp_filter", "0") && (ns == cl || groOn("vbep"));
    for (const char* ifname : ifs) {
      ok = ok && writeFile(std::string("/proc/sys/net/ipv4/conf/") + ifname + "/rp_filter", "0") &&
           (mode.clientOffload && std::string(ifname) == "vclp" ? setTxOffload(ifname)
                                                                : offloadOff(ifname));
    }
    if (!ok || ::setns(home, CLONE_NEWNET) != 0) _exit(52);
  }

  auto apply = [](EbpfDataplane& dp, const dataplane::Service& s) {
    dataplane::ServiceDelta delta;
    delta.upserted = {s};
    return dp.apply(delta).ok();
  };
  // The entry node: XDP (native) or tc on the client-facing veth; the outer source is left to
  // the FIB (10.0.2.1).
  auto entry = EbpfDataplane::create(
      dsrOptions(mode.fwdMode, {static_cast<int>(if_nametoindex("vcl"))}, mode.hook));
  if (!entry.ok()) {
    std::fprintf(stderr, "entry node: %s\n", entry.message().c_str());
    _exit(53);
  }
  if (!apply(**entry, nodePortService(false))) _exit(54);
  // The backend node's data path, attached from inside its namespace (the links stay when this
  // process goes back to its own).
  if (!enterNetns(bn)) _exit(55);
  auto backend =
      EbpfDataplane::create(dsrOptions(SKIFF_FWD_PASS, {static_cast<int>(if_nametoindex("vbep")),
                                                        static_cast<int>(if_nametoindex("vcdp"))}));
  if (::setns(home, CLONE_NEWNET) != 0) _exit(55);
  if (!backend.ok()) {
    std::fprintf(stderr, "backend node: %s\n", backend.message().c_str());
    _exit(56);
  }
  if (!apply(**backend, nodePortService(true))) _exit(57);
  const uint64_t vclTxBefore = txPackets("vcl");
  if (vclTxBefore == ~uint64_t{0}) _exit(58);

  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) _exit(58);
  const pid_t srv = ::fork();
  if (srv == 0) server(bn, ready[1]);
  ::close(ready[1]);
  char r = 0;
  if (::read(ready[0], &r, 1) != 1) _exit(59);
  const pid_t cli = ::fork();
  if (cli == 0) client(cl);
  const int clientExit = waitExit(cli);
  ::usleep(200 * 1000);  // the last FINs and ACKs, before the server's sockets go
  ::kill(srv, SIGKILL);
  waitExit(srv);
  if (clientExit != 0) _exit(clientExit);

  // The entry node encapsulated every packet of the client and translated no reply (none came
  // through it: its client-facing veth sent next to nothing, neighbour discovery at most); the
  // backend node decapsulated and translated the replies.
  auto encap = readGlobal((*entry)->maps().global, SKIFF_GLOBAL_DSR_ENCAP);
  auto entryReplies = readGlobal((*entry)->maps().global, SKIFF_GLOBAL_REPLY_TRANSLATED);
  auto decap = readGlobal((*backend)->maps().global, SKIFF_GLOBAL_DSR_DECAP);
  auto replies = readGlobal((*backend)->maps().global, SKIFF_GLOBAL_REPLY_TRANSLATED);
  const uint64_t vclTx = txPackets("vcl") - vclTxBefore;
  std::fprintf(stderr, "encap %llu, decap %llu, replies %llu, entry replies %llu, vcl tx %llu\n",
               static_cast<unsigned long long>(encap.ok() ? *encap : 0),
               static_cast<unsigned long long>(decap.ok() ? *decap : 0),
               static_cast<unsigned long long>(replies.ok() ? *replies : 0),
               static_cast<unsigned long long>(entryReplies.ok() ? *entryReplies : 0),
               static_cast<unsigned long long>(vclTx));
  // Each connection: SYN, ACK, the server's line acknowledged, FIN, ACK at least.
  if (!encap.ok() || *encap < 4u * kConnections) _exit(60);
  // vbep has GRO on: consecutive segments of a flow reach the backend node's tc ingress as one
  // IPIP skb (GSO), decapsulated once.
  if (!decap.ok() || *decap > *encap || *decap < 2u * kConnections) _exit(61);
  if (!replies.ok() || *replies < 2u * kConnections) _exit(62);
  if (!entryReplies.ok() || *entryReplies != 0) _exit(63);
  if (vclTx >= static_cast<uint64_t>(kConnections)) _exit(64);
  auto stats = (*entry)->stats();
  if (!stats.ok() || stats->services.size() != 1 ||
      stats->services[0].newFlows != static_cast<uint64_t>(kConnections)) {
    _exit(65);
  }
  _exit(0);
}

class DsrNetnsTest : public ::testing::TestWithParam<EntryMode> {};

TEST_P(DsrNetnsTest, ClientReachesARemoteBackendWhichSeesTheClientAndAnswersDirectly) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF, netns)";
  if (!sh("ip -V")) GTEST_SKIP() << "needs iproute2";
  const std::string pid = std::to_string(::getpid());
  const std::string cl = "skiff-dsr-cl-" + pid;
  const std::string bn = "skiff-dsr-bn-" + pid;
  const pid_t n = ::fork();
  ASSERT_GE(n, 0);
  if (n == 0) entryNode(cl, bn, GetParam());
  const int code = waitExit(n);
  sh("ip netns del " + cl);
  sh("ip netns del " + bn);
  // Codes: 1x server, 2x client, 5x-6x entry node, 1xx topology (see entryNode()).
  EXPECT_EQ(code, 0);
}

INSTANTIATE_TEST_SUITE_P(EntryModes, DsrNetnsTest,
                         ::testing::Values(EntryMode{NodePortMode::kTc, SKIFF_FWD_FIB},
                                           EntryMode{NodePortMode::kTc, SKIFF_FWD_PASS},
                                           EntryMode{NodePortMode::kXdp, SKIFF_FWD_FIB},
                                           EntryMode{NodePortMode::kXdp, SKIFF_FWD_PASS},
                                           EntryMode{NodePortMode::kTc, SKIFF_FWD_FIB, true}),
                         [](const ::testing::TestParamInfo<EntryMode>& param) {
                           return std::string(param.param.hook == NodePortMode::kXdp ? "Xdp"
                                                                                     : "Tc") +
                                  (param.param.fwdMode == SKIFF_FWD_FIB ? "FibRedirect"
                                                                        : "KernelForwarding") +
                                  (param.param.clientOffload ? "OffloadedClient" : "");
                         });

}  // namespace
}  // namespace skiff::ebpf
