// The node-port load balancer at tc (no XDP anywhere): three network namespaces made for the test
// (client, node, backends) joined by veth pairs, as in xdp_veth_test.cc. A wildcard NodePort
// (*:30080/TCP) with three backends; the node's client-facing veth has the tc entries only (TCX
// links, --lb-nodeport-mode tc): tc ingress DNATs what the client sends to the node's address, the
// kernel forwards it to the backend, and tc egress reverse-NATs the replies that leave toward the
// client. The client's and the backends' veths send with checksum offload on (CHECKSUM_PARTIAL
// skbs reach the node's tc hooks) and receive without it, and the node's veths compute checksums
// on send, so every checksum the program touched is finished by the node and verified by the
// receiving kernel; a second run has checksum offload off everywhere.
//
// Then a scale-down: one backend turns terminating (its established connections keep answering,
// new connections avoid it), then leaves the service (the ring changes; the other backends'
// established connections keep their backend). Last, auto mode on an interface without native
// XDP (a bridge) falls back to tc, and xdp mode there is a clear error. The host's interfaces,
// routes and sysctls are never touched. The data path is pinned in a bpffs of the node process's
// own mount namespace, and `skiff lb status` and `skiff lb cleanup` run on it at the end.

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "control/cli/lb_command.h"
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
using netns::waitExit;
using netns::writeFile;

constexpr int kFirst = 30;   // connections before the scale-down (each backend gets some)
constexpr int kSecond = 12;  // new connections while backend 'c' is terminating
constexpr const char* kBackends[3] = {"10.0.2.2", "10.0.2.3", "10.0.2.4"};

// Checksum offload on send (`tx`) and receive (`rx`) of `ifname` in the current namespace.
bool setOffload(const char* ifname, bool tx, bool rx) {
  return setEthtool(ifname, {{ETHTOOL_STXCSUM, tx}, {ETHTOOL_SRXCSUM, rx}});
}

// The backends: a listener on each of the three addresses; every byte a connection sends is
// answered with the backend's letter ('a', 'b', 'c'). Runs until killed.
[[noreturn]] void backends(const std::string& netns, bool partial, int ready) {
  ::alarm(60);
  if (!enterNetns(netns) || !setOffload("vbep", partial, false)) _exit(10);
  std::vector<pollfd> fds;
  std::vector<char> letter;
  for (int i = 0; i < 3; ++i) {
    sockaddr_in a = addr4(kBackends[i], 8080);
    const int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(l, 64) != 0) {
      _exit(11);
    }
    fds.push_back({l, POLLIN, 0});
    letter.push_back(static_cast<char>('a' + i));
  }
  if (::write(ready, "r", 1) != 1) _exit(12);
  for (;;) {
    if (::poll(fds.data(), fds.size(), -1) < 0) _exit(13);
    const size_t n = fds.size();
    for (size_t i = 0; i < n; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      if (i < 3) {
        const int c = ::accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) _exit(14);
        fds.push_back({c, POLLIN, 0});
        letter.push_back(letter[i]);
        continue;
      }
      char buf[64];
      const ssize_t got = ::read(fds[i].fd, buf, sizeof(buf));
      if (got <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;  // poll ignores it
        continue;
      }
      std::string answer(static_cast<size_t>(got), letter[i]);
      if (::write(fds[i].fd, answer.data(), answer.size()) != got) _exit(15);
    }
  }
}

// Sends one byte on `c` and returns the backend letter it got back, 0 on failure.
char ask(int c) {
  if (::write(c, "?", 1) != 1) return 0;
  char r = 0;
  return ::read(c, &r, 1) == 1 ? r : 0;
}

int connectNodePort() {
  sockaddr_in np = addr4("198.51.100.1", 30080);
  const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{5, 0};
  ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (::connect(c, reinterpret_cast<sockaddr*>(&np), sizeof(np)) != 0) {
    ::close(c);
    return -1;
  }
  return c;
}

// The client, driven step by step by the node (`go`: one byte per step; `done`: one byte back
// when a step held). Exit code 0 when every step held, else the step that failed.
[[noreturn]] void client(const std::string& netns, bool partial, int go, int done) {
  ::alarm(60);
  if (!enterNetns(netns) || !setOffload("vclp", partial, false)) _exit(20);
  char step = 0;
  // 1: connections through the NodePort, to every backend, a large write answered in full.
  std::vector<int> conns;
  std::vector<char> first;
  if (::read(go, &step, 1) != 1) _exit(21);
  int seen[3] = {};
  for (int i = 0; i < kFirst; ++i) {
    const int c = connectNodePort();
    if (c < 0) _exit(22);
    const char b = ask(c);
    if (b < 'a' || b > 'c') _exit(23);
    ++seen[b - 'a'];
    conns.push_back(c);
    first.push_back(b);
  }
  if (seen[0] == 0 || seen[1] == 0 || seen[2] == 0) _exit(24);
  // Full-size segments both ways (with offload on, TSO sends skbs of many segments with paged
  // data through the tc hooks), answered byte for byte.
  const std::string chunk(16384, '?');
  for (int round = 0; round < 8; ++round) {
    if (::write(conns[0], chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size())) {
      _exit(25);
    }
    size_t got = 0;
    char buf[4096];
    while (got < chunk.size()) {
      const ssize_t n = ::read(conns[0], buf, sizeof(buf));
      if (n <= 0) _exit(26);
      for (ssize_t k = 0; k < n; ++k)
        if (buf[k] != first[0]) _exit(27);
      got += static_cast<size_t>(n);
    }
  }
  if (::write(done, "1", 1) != 1) _exit(28);

  // 2: backend 'c' is terminating: every established connection keeps its backend, 'c'
  // included; new connections avoid it.
  if (::read(go, &step, 1) != 1) _exit(31);
  for (size_t i = 0; i < conns.size(); ++i) {
    if (ask(conns[i]) != first[i]) _exit(32);
  }
  for (int i = 0; i < kSecond; ++i) {
    const int c = connectNodePort();
    if (c < 0) _exit(33);
    const char b = ask(c);
    if (b != 'a' && b != 'b') _exit(34);
    ::close(c);
  }
  if (::write(done, "2", 1) != 1) _exit(35);

  // 3: 'c' left the service (its ring changed): the connections on 'a' and 'b' keep theirs.
  if (::read(go, &step, 1) != 1) _exit(41);
  for (size_t i = 0; i < conns.size(); ++i) {
    if (first[i] != 'c' && ask(conns[i]) != first[i]) _exit(42);
  }
  if (::write(done, "3", 1) != 1) _exit(43);
  // 4 (after the node read its counters): close. The FINs of 'c''s connections are reselected
  // to 'a' or 'b' (new flows there, answered with RSTs).
  if (::read(go, &step, 1) != 1) _exit(44);
  for (int c : conns)
    ::close(c);
  _exit(0);
}

dataplane::Service nodePortService(int backendCount, bool lastTerminating) {
  dataplane::Service s;
  s.id = "default/np:http";
  s.frontends = {
      {{ip("0.0.0.0"), 30080, dataplane::L4Protocol::kTcp}, dataplane::FrontendKind::kNodePort}};
  for (int i = 0; i < backendCount; ++i) {
    dataplane::Backend b{.address = ip(kBackends[i]), .port = 8080};
    if (lastTerminating && i == backendCount - 1) {
      b.ready = false;
      b.serving = true;
      b.terminating = true;
    }
    s.backends.push_back(b);
  }
  return s;
}

EbpfDataplaneOptions smallOptions() {
  EbpfDataplaneOptions options;
  // Buckets of 4 slots hold two flows each (forward and reply entries share one): 2^16 slots
  // keep a third flow of one client in a bucket, which would evict the oldest (re-picked by
  // Maglev, which after a ring change may name another backend), unlikely (~1e-4 a run).
  options.load.conntrack = 65536;
  options.load.frontends = 16;
  options.load.services = 16;
  options.load.backends = 16;
  options.load.rings = 16;
  options.load.withSocketLb = false;
  return options;
}

// The programs TCX runs on `ifindex` for `attachType`.
uint32_t tcxCount(int ifindex, int attachType) {
  uint32_t ids[8];
  uint32_t count = 8;
  if (bpf_prog_query(ifindex, static_cast<bpf_attach_type>(attachType), 0, nullptr, ids, &count) !=
      0) {
    return 0;
  }
  return count;
}

// The node's namespaces (this process after unshare: network, and mounts for a bpffs of its own
// at `bpffs`): the topology, the data path (pinned there, as the agent does), the two peers.
// Exit code 0 when everything held; otherwise the step that failed.
[[noreturn]] void node(const std::string& cl, const std::string& be, bool partial,
                       const std::string& bpffs) {
  ::alarm(90);
  if (::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) _exit(50);
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      ::mount("bpffs", bpffs.c_str(), "bpf", 0, "mode=0700") != 0) {
    _exit(49);
  }
  const std::vector<std::string> setup = {
      "ip netns add " + cl,
      "ip netns add " + be,
      "ip link add vcl type veth peer name vclp netns " + cl,
      "ip link add vbe type veth peer name vbep netns " + be,
      "ip link set lo up",
      "ip addr add 198.51.100.1/24 dev vcl",
      "ip link set vcl up",
      "ip addr add 10.0.2.1/24 dev vbe",
      "ip link set vbe up",
      "ip -n " + cl + " link set lo up",
      "ip -n " + cl + " addr add 198.51.100.7/24 dev vclp",
      "ip -n " + cl + " link set vclp up",
      "ip -n " + cl + " route add default via 198.51.100.1",
      "ip -n " + be + " link set lo up",
      "ip -n " + be + " addr add 10.0.2.2/24 dev vbep",
      "ip -n " + be + " addr add 10.0.2.3/24 dev vbep",
      "ip -n " + be + " addr add 10.0.2.4/24 dev vbep",
      "ip -n " + be + " link set vbep up",
      "ip -n " + be + " route add default via 10.0.2.1",
  };
  for (size_t i = 0; i < setup.size(); ++i) {
    if (!sh(setup[i])) _exit(static_cast<int>(100 + i));
  }
  if (!writeFile("/proc/sys/net/ipv4/ip_forward", "1") ||
      !writeFile("/proc/sys/net/ipv4/conf/all/rp_filter", "0") ||
      !writeFile("/proc/sys/net/ipv4/conf/vbe/rp_filter", "0") ||
      !writeFile("/proc/sys/net/ipv4/conf/vcl/rp_filter", "0") ||
      !setOffload("vcl", false, false) || !setOffload("vbe", false, false)) {
    _exit(51);
  }

  EbpfDataplaneOptions options = smallOptions();
  const int vcl = static_cast<int>(if_nametoindex("vcl"));
  options.xdpIfindexes = {vcl};
  options.nodePortMode = NodePortMode::kTc;
  options.pinDir = bpffs + "/skiff";
  options.mountBpffs = false;
  auto dp = EbpfDataplane::create(options);
  if (!dp.ok()) {
    std::fprintf(stderr, "create: %s\n", dp.message().c_str());
    _exit(52);
  }
  const auto& got = (*dp)->nodePortAttachments();
  if (got.size() != 1 || got[0].first != vcl || got[0].second != NodePortMode::kTc) _exit(53);
  uint32_t xdpId = 1;
  if (bpf_xdp_query_id(vcl, 0, &xdpId) != 0 || xdpId != 0) _exit(54);  // no XDP attached

  auto apply = [&](const dataplane::Service& s) {
    dataplane::ServiceDelta delta;
    delta.upserted = {s};
    return (*dp)->apply(delta).ok();
  };
  if (!apply(nodePortService(3, false))) _exit(55);

  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) _exit(56);
  const pid_t server = ::fork();
  if (server == 0) backends(be, partial, ready[1]);
  ::close(ready[1]);
  char r = 0;
  if (::read(ready[0], &r, 1) != 1) _exit(57);
  // Made after the backends' fork, so that the client's end is the only writer of `done`.
  int go[2], done[2];
  if (::pipe2(go, O_CLOEXEC) != 0 || ::pipe2(done, O_CLOEXEC) != 0) _exit(56);
  const pid_t cli = ::fork();
  if (cli == 0) client(cl, partial, go[0], done[1]);
  ::close(done[1]);
  // One step of the client; false once it failed (it exits, so `done` reads end of file).
  auto step = [&] { return ::write(go[1], "s", 1) == 1 && ::read(done[0], &r, 1) == 1; };
  int failed = 0;
  if (!step()) {
    failed = 80;
  } else if (!apply(nodePortService(3, true))) {
    failed = 58;
  } else if (!step()) {
    failed = 81;
  } else if (!apply(nodePortService(2, false))) {
    failed = 59;
  } else if (!step()) {
    failed = 82;
  }
  // Every new flow went through tc ingress, every reply through tc egress (read before the
  // client closes its connections).
  auto stats = (*dp)->stats();
  auto replies = readGlobal((*dp)->maps().global, SKIFF_GLOBAL_REPLY_TRANSLATED);
  if (failed == 0 && ::write(go[1], "s", 1) != 1) failed = 83;
  ::close(go[1]);
  const int clientExit = waitExit(cli);
  ::kill(server, SIGKILL);
  waitExit(server);
  if (clientExit != 0) _exit(clientExit);
  if (failed != 0) _exit(failed);
  if (!stats.ok() || stats->services.size() != 1) _exit(71);
  if (stats->services[0].newFlows != static_cast<uint64_t>(kFirst + kSecond)) {
    std::fprintf(stderr, "new flows: %llu\n",
                 static_cast<unsigned long long>(stats->services[0].newFlows));
    _exit(72);
  }
  if (!replies.ok() || *replies < static_cast<uint64_t>(2 * (kFirst + kSecond))) _exit(73);

  // skiff lb status says where tc is attached; skiff lb cleanup detaches it.
  cli::LbOptions lb;
  lb.pinDir = options.pinDir;
  std::ostringstream status, err;
  if (cli::runLbStatus(lb, status, err) != 0) _exit(84);
  const std::string want = "vcl (" + std::to_string(vcl) + "): tc ingress, tc egress;";
  if (status.str().find(want) == std::string::npos ||
      status.str().find("0 XDP interfaces, 1 tc interfaces") == std::string::npos) {
    std::fprintf(stderr, "skiff lb status:\n%s", status.str().c_str());
    _exit(85);
  }
  if (tcxCount(vcl, kTcxIngress) != 1 || tcxCount(vcl, kTcxEgress) != 1) _exit(86);
  std::ostringstream cleaned;
  if (cli::runLbCleanup(lb, cleaned, err) != 0) _exit(87);
  if (tcxCount(vcl, kTcxIngress) != 0 || tcxCount(vcl, kTcxEgress) != 0) _exit(88);

  // auto on an interface without native XDP (a bridge): tc; xdp there: a clear error.
  if (!sh("ip link add npbr0 type bridge") || !sh("ip link set npbr0 up")) _exit(74);
  EbpfDataplaneOptions fallback = smallOptions();
  fallback.xdpIfindexes = {static_cast<int>(if_nametoindex("npbr0"))};
  fallback.nodePortMode = NodePortMode::kAuto;
  {
    auto a = EbpfDataplane::create(fallback);
    if (!a.ok() || (*a)->nodePortAttachments().size() != 1 ||
        (*a)->nodePortAttachments()[0].second != NodePortMode::kTc) {
      _exit(75);
    }
  }
  fallback.nodePortMode = NodePortMode::kXdp;
  auto x = EbpfDataplane::create(fallback);
  if (x.ok() || x.message().find("XDP") == std::string::npos) _exit(76);
  _exit(0);
}

class TcNetnsTest : public ::testing::TestWithParam<bool> {};

TEST_P(TcNetnsTest, NodePortThroughTcWithScaleDown) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF, netns)";
  if (!sh("ip -V")) GTEST_SKIP() << "needs iproute2";
  const std::string pid = std::to_string(::getpid());
  const std::string cl = "skiff-tc-cl-" + pid;
  const std::string be = "skiff-tc-be-" + pid;
  const std::string bpffs = "/tmp/skiff-tc-bpffs-" + pid;
  ASSERT_EQ(::mkdir(bpffs.c_str(), 0700), 0) << std::strerror(errno);
  const pid_t n = ::fork();
  ASSERT_GE(n, 0);
  if (n == 0) node(cl, be, GetParam(), bpffs);
  const int code = waitExit(n);
  // The node's namespaces went with its process (and the bpffs with its mount namespace); the
  // two named network namespaces are ours to delete.
  sh("ip netns del " + cl);
  sh("ip netns del " + be);
  EXPECT_EQ(::rmdir(bpffs.c_str()), 0);
  // Codes: 1x backends, 2x-4x client steps, 5x-8x node, 1xx topology (see node()).
  EXPECT_EQ(code, 0);
}

INSTANTIATE_TEST_SUITE_P(Checksums, TcNetnsTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& param) {
                           return std::string(param.param ? "OffloadedSenders" : "NoOffload");
                         });

}  // namespace
}  // namespace skiff::ebpf
