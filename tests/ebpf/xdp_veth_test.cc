// The XDP program on real interfaces: three network namespaces made for the test (client,
// load balancer, backend) joined by veth pairs. The client connects, over IPv4 and over IPv6, to
// LoadBalancer addresses that exist nowhere; XDP on the load balancer's client-facing veth DNATs
// the SYN to the backend, the kernel forwards it, and XDP on the backend-facing veth reverse-NATs
// the replies. Checksum offload is off on the veths, so the client's and the backend's kernels
// verify every checksum the program rewrote. The host's interfaces, routes and sysctls are never
// touched.

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

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "ebpf/ebpf_dataplane.h"
#include "ebpf/map_writer.h"
#include "tests/ebpf/netns_util.h"

namespace skiff::ebpf {
namespace {

using dataplane::IpAddress;
using netns::enterNetns;
using netns::ip;
using netns::setEthtool;
using netns::sh;
using netns::waitExit;
using netns::writeFile;

constexpr int kConnections = 4;

// Turns checksum offload off on `ifname` (in the current namespace), so the kernel computes
// checksums on send and verifies them on receive.
// GRO on gives the veth a NAPI context, which XDP_REDIRECT into its peer needs.
bool noChecksumOffload(const char* ifname) {
  return setEthtool(ifname,
                    {{ETHTOOL_STXCSUM, false}, {ETHTOOL_SRXCSUM, false}, {ETHTOOL_SGRO, true}});
}

// An IPv4 or IPv6 socket address.
struct Addr {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_INET;
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
};

Addr addr(const char* address, uint16_t port) {
  Addr a;
  if (std::strchr(address, ':') == nullptr) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    inet_pton(AF_INET, address, &in.sin_addr);
    std::memcpy(&a.storage, &in, sizeof(in));
    a.length = sizeof(in);
  } else {
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    inet_pton(AF_INET6, address, &in6.sin6_addr);
    std::memcpy(&a.storage, &in6, sizeof(in6));
    a.length = sizeof(in6);
    a.family = AF_INET6;
  }
  return a;
}

// The backend: answers each connection, IPv4 then IPv6, with "hello". Exit code 0 when all
// were served.
[[noreturn]] void backend(const std::string& netns, int ready) {
  ::alarm(30);
  if (!enterNetns(netns) || !noChecksumOffload("vbep")) _exit(10);
  int listeners[2];
  const char* addresses[2] = {"10.0.2.2", "fd00:2::2"};
  for (int f = 0; f < 2; ++f) {
    Addr a = addr(addresses[f], 8080);
    listeners[f] = ::socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(listeners[f], SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(listeners[f], a.get(), a.length) != 0 || ::listen(listeners[f], 8) != 0) {
      _exit(11);
    }
  }
  if (::write(ready, "r", 1) != 1) _exit(12);
  for (int f = 0; f < 2; ++f) {
    for (int i = 0; i < kConnections; ++i) {
      const int c = ::accept4(listeners[f], nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) _exit(13);
      if (::write(c, "hello", 5) != 5) _exit(14);
      ::close(c);
    }
  }
  _exit(0);
}

// The client: connects to the LoadBalancer address and reads "hello". Exit code 0 on success.
[[noreturn]] void client(const std::string& netns) {
  ::alarm(30);
  if (!enterNetns(netns) || !noChecksumOffload("vclp")) _exit(20);
  for (int i = 0; i < 2 * kConnections; ++i) {
    Addr vip = addr(i < kConnections ? "203.0.113.10" : "fd00:ff::10", 80);
    const int c = ::socket(vip.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{5, 0};
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (::connect(c, vip.get(), vip.length) != 0) _exit(i < kConnections ? 21 : 23);
    char buf[8] = {};
    size_t got = 0;
    for (ssize_t n; got < 5 && (n = ::read(c, buf + got, 5 - got)) > 0;)
      got += static_cast<size_t>(n);
    if (got != 5 || std::memcmp(buf, "hello", 5) != 0) _exit(22);
    ::close(c);
  }
  _exit(0);
}

// The load balancer's namespace (this process after unshare): the topology, the data path, the
// two peers. Exit code 0 when everything held; otherwise the step that failed.
[[noreturn]] void loadBalancer(const std::string& cl, const std::string& be, uint32_t mode) {
  ::alarm(60);
  if (::unshare(CLONE_NEWNET) != 0) _exit(30);
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
      "ip -n " + be + " link set vbep up",
      "ip -n " + be + " route add default via 10.0.2.1",
      "ip addr add fd00:1::1/64 dev vcl nodad",
      "ip addr add fd00:2::1/64 dev vbe nodad",
      "ip -n " + cl + " addr add fd00:1::7/64 dev vclp nodad",
      "ip -n " + cl + " -6 route add default via fd00:1::1",
      "ip -n " + be + " addr add fd00:2::2/64 dev vbep nodad",
      "ip -n " + be + " -6 route add default via fd00:2::1",
  };
  for (size_t i = 0; i < setup.size(); ++i) {
    if (!sh(setup[i])) _exit(static_cast<int>(40 + i));
  }
  if (!writeFile("/proc/sys/net/ipv4/ip_forward", "1") ||
      !writeFile("/proc/sys/net/ipv4/conf/all/rp_filter", "0") ||
      !writeFile("/proc/sys/net/ipv4/conf/vbe/rp_filter", "0") ||
      !writeFile("/proc/sys/net/ipv4/conf/vcl/rp_filter", "0") ||
      !writeFile("/proc/sys/net/ipv6/conf/all/forwarding", "1")) {
    _exit(31);
  }

  EbpfDataplaneOptions options;
  options.load.fwdMode = mode;
  options.load.conntrack = 1024;
  options.load.frontends = 16;
  options.load.services = 16;
  options.load.backends = 16;
  options.load.rings = 16;
  options.load.withSocketLb = false;
  options.xdpIfindexes = {static_cast<int>(if_nametoindex("vcl")),
                          static_cast<int>(if_nametoindex("vbe"))};
  options.xdpNative = true;
  auto dp = EbpfDataplane::create(options);
  if (!dp.ok()) _exit(32);
  dataplane::Service s;
  s.id = "default/lb:http";
  s.frontends = {{{ip("203.0.113.10"), 80, dataplane::L4Protocol::kTcp},
                  dataplane::FrontendKind::kLoadBalancer}};
  s.backends = {dataplane::Backend{.address = ip("10.0.2.2"), .port = 8080}};
  dataplane::Service s6;
  s6.id = "default/lb6:http";
  s6.frontends = {{{ip("fd00:ff::10"), 80, dataplane::L4Protocol::kTcp},
                   dataplane::FrontendKind::kLoadBalancer}};
  s6.backends = {dataplane::Backend{.address = ip("fd00:2::2"), .port = 8080}};
  dataplane::ServiceDelta delta;
  delta.upserted = {s, s6};
  if (!(*dp)->apply(delta).ok()) _exit(33);

  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) _exit(34);
  const pid_t server = ::fork();
  if (server == 0) backend(be, ready[1]);
  char r = 0;
  if (::read(ready[0], &r, 1) != 1) _exit(35);
  const pid_t cli = ::fork();
  if (cli == 0) client(cl);
  const int clientExit = waitExit(cli);
  if (clientExit != 0) {
    ::kill(server, SIGKILL);
    waitExit(server);
    _exit(clientExit);
  }
  const int serverExit = waitExit(server);
  if (serverExit != 0) _exit(serverExit);

  auto stats = (*dp)->stats();
  if (!stats.ok() || stats->services.size() != 2) _exit(36);
  for (const auto& svc : stats->services) {
    if (svc.newFlows != kConnections) _exit(37);
  }
  auto replies = readGlobal((*dp)->maps().global, SKIFF_GLOBAL_REPLY_TRANSLATED);
  if (!replies.ok() || *replies < 2 * kConnections) _exit(38);
  auto redirected = readGlobal((*dp)->maps().global, SKIFF_GLOBAL_FIB_REDIRECTED);
  if (!redirected.ok()) _exit(39);
  // FIB mode: both directions of every connection were redirected, not handed to the kernel.
  if (mode == SKIFF_FWD_FIB && *redirected < 2 * kConnections) _exit(50);
  if (mode != SKIFF_FWD_FIB && *redirected != 0) _exit(51);
  _exit(0);
}

class XdpVethTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(XdpVethTest, TcpThroughDnatAndReverseNat) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF, netns)";
  if (!sh("ip -V")) GTEST_SKIP() << "needs iproute2";
  const std::string pid = std::to_string(::getpid());
  const std::string cl = "skiff-xdp-cl-" + pid;
  const std::string be = "skiff-xdp-be-" + pid;
  const pid_t lb = ::fork();
  ASSERT_GE(lb, 0);
  if (lb == 0) loadBalancer(cl, be, GetParam());
  const int code = waitExit(lb);
  // The load balancer's namespace went with its process; the two named ones are ours to delete.
  sh("ip netns del " + cl);
  sh("ip netns del " + be);
  // Codes: 1x backend, 2x client, 3x/5x load balancer, 4x topology (see loadBalancer()).
  EXPECT_EQ(code, 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, XdpVethTest, ::testing::Values(SKIFF_FWD_PASS, SKIFF_FWD_FIB),
                         [](const ::testing::TestParamInfo<uint32_t>& param) {
                           return std::string(param.param == SKIFF_FWD_PASS ? "KernelRoutes"
                                                                            : "FibRedirect");
                         });

}  // namespace
}  // namespace skiff::ebpf
