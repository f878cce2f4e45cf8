// The socket LB end to end: the EbpfDataplane attaches the cgroup hooks to a cgroup v2
// directory made for the test; a child process joins it, makes its own network namespace with
// only loopback up, runs the backends there and connects to service addresses. The connections
// reach the backends Maglev predicts from the socket cookie, and getpeername/recvfrom show the
// service address. Nothing touches the host's interfaces, routes or root cgroup.

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "dataplane/maglev.h"
#include "ebpf/abi.h"
#include "ebpf/ebpf_dataplane.h"

namespace skiff::ebpf {
namespace {

using dataplane::Backend;
using dataplane::IpAddress;
using dataplane::L4Protocol;
using dataplane::Service;

constexpr const char* kCgroupRoot = "/sys/fs/cgroup/unified";

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}

const IpAddress kVip = ip("10.96.0.10");
const IpAddress kVipNoBackends = ip("10.96.0.11");
const IpAddress kVip6 = ip("fd00:96::10");

Service tcpService() {
  Service s;
  s.id = "default/web:http";
  s.frontends = {{{kVip, 80, L4Protocol::kTcp}, dataplane::FrontendKind::kClusterIP}};
  s.backends = {Backend{.address = ip("127.0.0.2"), .port = 8080},
                Backend{.address = ip("127.0.0.3"), .port = 8080}};
  return s;
}

Service stickyService() {
  Service s = tcpService();
  s.id = "default/sticky:http";
  s.frontends = {{{ip("10.96.0.12"), 80, L4Protocol::kTcp}, dataplane::FrontendKind::kClusterIP}};
  s.affinity = dataplane::SessionAffinity::kClientIP;
  return s;
}

Service drainingService() {
  Service s = tcpService();
  s.id = "default/drain:http";
  s.frontends = {{{ip("10.96.0.13"), 80, L4Protocol::kTcp}, dataplane::FrontendKind::kClusterIP}};
  s.backends[1].ready = false;
  s.backends[1].terminating = true;  // still serving: keeps its flows, gets no new ones
  return s;
}

Service udpService() {
  Service s;
  s.id = "default/dns:dns";
  s.frontends = {{{kVip, 53, L4Protocol::kUdp}, dataplane::FrontendKind::kClusterIP}};
  s.backends = {Backend{.address = ip("127.0.0.2"), .port = 5353},
                Backend{.address = ip("127.0.0.3"), .port = 5353}};
  return s;
}

Service v6Service() {
  Service s;
  s.id = "default/web6:http";
  s.frontends = {{{kVip6, 80, L4Protocol::kTcp}, dataplane::FrontendKind::kClusterIP}};
  s.backends = {Backend{.address = ip("::1"), .port = 8081}};
  return s;
}

Service emptyService() {
  Service s;
  s.id = "default/down:http";
  s.frontends = {{{kVipNoBackends, 80, L4Protocol::kTcp}, dataplane::FrontendKind::kClusterIP}};
  s.backends = {
      Backend{.address = ip("127.0.0.2"), .port = 8080, .ready = false, .serving = false}};
  return s;
}

// A sockaddr for an address and port.
struct SockAddr {
  sockaddr_storage storage{};
  socklen_t length = 0;

  SockAddr() = default;
  SockAddr(const IpAddress& a, uint16_t port) {
    if (a.isV4()) {
      sockaddr_in in{};
      in.sin_family = AF_INET;
      in.sin_port = htons(port);
      std::memcpy(&in.sin_addr, a.octets().data(), 4);
      std::memcpy(&storage, &in, sizeof(in));
      length = sizeof(in);
    } else {
      sockaddr_in6 in6{};
      in6.sin6_family = AF_INET6;
      in6.sin6_port = htons(port);
      std::memcpy(&in6.sin6_addr, a.octets().data(), 16);
      std::memcpy(&storage, &in6, sizeof(in6));
      length = sizeof(in6);
    }
  }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }

  std::string toString() const {
    char text[INET6_ADDRSTRLEN] = {};
    uint16_t port = 0;
    if (storage.ss_family == AF_INET) {
      sockaddr_in in{};
      std::memcpy(&in, &storage, sizeof(in));
      inet_ntop(AF_INET, &in.sin_addr, text, sizeof(text));
      port = ntohs(in.sin_port);
    } else if (storage.ss_family == AF_INET6) {
      sockaddr_in6 in6{};
      std::memcpy(&in6, &storage, sizeof(in6));
      inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof(text));
      port = ntohs(in6.sin6_port);
    }
    return std::string(text) + ":" + std::to_string(port);
  }
};

// What the child found; empty means every check held.
class Findings {
 public:
  void add(const std::string& what) { text_ += what + "\n"; }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

int listener(const IpAddress& a, uint16_t port, int type) {
  const int fd = ::socket(a.isV4() ? AF_INET : AF_INET6, type | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  SockAddr sa(a, port);
  if (::bind(fd, sa.get(), sa.length) != 0) return -1;
  if (type == SOCK_STREAM && ::listen(fd, 16) != 0) return -1;
  return fd;
}

// Index of the first of `fds` that becomes readable within 2 s, or -1.
int waitReadable(const std::vector<int>& fds) {
  std::vector<pollfd> p;
  for (int fd : fds)
    p.push_back({fd, POLLIN, 0});
  if (::poll(p.data(), p.size(), 2000) <= 0) return -1;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i].revents & POLLIN) return static_cast<int>(i);
  }
  return -1;
}

uint64_t cookieOf(int fd) {
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  ::getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len);
  return cookie;
}

// The backend (index into service.backends) the socket LB picks for a socket: the Maglev table
// the EbpfDataplane builds, at sockHash(cookie) % size.
size_t predictedBackend(const EbpfDataplane& dp, const Service& service, uint64_t cookie) {
  std::vector<dataplane::MaglevBackend> members;
  for (const Backend& b : service.backends)
    members.push_back({b.key(), b.weight, dp.backendId(service.id, b.key())});
  const uint32_t size = dataplane::effectiveMaglevTableSize(service);
  const auto table = *dataplane::buildMaglevTable(members, size);
  const uint32_t id = table[sockHash(cookie, frontendKey(service.frontends[0].key)) % size];
  for (size_t i = 0; i < service.backends.size(); ++i) {
    if (dp.backendId(service.id, service.backends[i].key()) == id) return i;
  }
  return service.backends.size();
}

bool bringLoopbackUp() {
  Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(s.get(), SIOCGIFFLAGS, &ifr) != 0) return false;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  return ::ioctl(s.get(), SIOCSIFFLAGS, &ifr) == 0;
}

void checkTcp(const EbpfDataplane& dp, Findings& f) {
  const Service svc = tcpService();
  Fd l0(listener(svc.backends[0].address, 8080, SOCK_STREAM));
  Fd l1(listener(svc.backends[1].address, 8080, SOCK_STREAM));
  if (l0.get() < 0 || l1.get() < 0) return f.add("TCP listeners: " + std::string(strerror(errno)));
  int reached[2] = {0, 0};
  for (int i = 0; i < 16; ++i) {
    Fd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const size_t want = predictedBackend(dp, svc, cookieOf(c.get()));
    SockAddr vip(kVip, 80);
    if (::connect(c.get(), vip.get(), vip.length) != 0) {
      return f.add("connect to the TCP VIP: " + std::string(strerror(errno)));
    }
    SockAddr peer;
    peer.length = sizeof(peer.storage);
    ::getpeername(c.get(), peer.get(), &peer.length);
    if (peer.toString() != "10.96.0.10:80") f.add("getpeername gave " + peer.toString());
    const int which = waitReadable({l0.get(), l1.get()});
    if (which < 0) return f.add("no backend saw the TCP connection");
    Fd a(::accept4(which == 0 ? l0.get() : l1.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (static_cast<size_t>(which) != want) {
      f.add("TCP connection reached backend " + std::to_string(which) + ", Maglev says " +
            std::to_string(want));
    }
    const char id = static_cast<char>('0' + which);
    if (::write(a.get(), &id, 1) != 1) f.add("server write failed");
    char got = 0;
    if (::read(c.get(), &got, 1) != 1 || got != id) f.add("client did not read its backend");
    ++reached[which];
  }
  if (reached[0] == 0 || reached[1] == 0) {
    f.add("16 connections all went to one backend: " + std::to_string(reached[0]) + "/" +
          std::to_string(reached[1]));
  }
  // A direct connection to a backend address is left alone.
  Fd d(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  SockAddr direct(svc.backends[0].address, 8080);
  if (::connect(d.get(), direct.get(), direct.length) != 0) return f.add("direct connect failed");
  SockAddr peer;
  peer.length = sizeof(peer.storage);
  ::getpeername(d.get(), peer.get(), &peer.length);
  if (peer.toString() != "127.0.0.2:8080") f.add("direct getpeername gave " + peer.toString());
}

// Connects to `vip`:80 `count` times; the backend index each connection reached (-1: none).
std::vector<int> connectMany(const IpAddress& vip, int count, int l0, int l1, Findings& f) {
  std::vector<int> reached;
  for (int i = 0; i < count; ++i) {
    Fd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    SockAddr to(vip, 80);
    if (::connect(c.get(), to.get(), to.length) != 0) {
      f.add("connect to " + to.toString() + ": " + strerror(errno));
      reached.push_back(-1);
      continue;
    }
    const int which = waitReadable({l0, l1});
    if (which >= 0) {
      Fd accepted(::accept4(which == 0 ? l0 : l1, nullptr, nullptr, SOCK_CLOEXEC));
    }
    reached.push_back(which);
  }
  return reached;
}

void checkAffinityAndDraining(Findings& f) {
  Fd l0(listener(ip("127.0.0.2"), 8080, SOCK_STREAM));
  Fd l1(listener(ip("127.0.0.3"), 8080, SOCK_STREAM));
  if (l0.get() < 0 || l1.get() < 0) return f.add("TCP listeners: " + std::string(strerror(errno)));
  const auto sticky = connectMany(ip("10.96.0.12"), 8, l0.get(), l1.get(), f);
  if (sticky.front() < 0 || std::count(sticky.begin(), sticky.end(), sticky.front()) !=
                                static_cast<long>(sticky.size())) {
    f.add("ClientIP affinity: connections went to different backends");
  }
  for (int which : connectMany(ip("10.96.0.13"), 8, l0.get(), l1.get(), f)) {
    if (which != 0) f.add("a new connection went to the terminating backend (or none)");
  }
}

void checkUdp(const EbpfDataplane& dp, Findings& f) {
  const Service svc = udpService();
  Fd s0(listener(svc.backends[0].address, 5353, SOCK_DGRAM));
  Fd s1(listener(svc.backends[1].address, 5353, SOCK_DGRAM));
  if (s0.get() < 0 || s1.get() < 0) return f.add("UDP servers: " + std::string(strerror(errno)));
  for (int round = 0; round < 8; ++round) {
    const bool connected = round % 2 == 1;
    Fd c(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    const size_t want = predictedBackend(dp, svc, cookieOf(c.get()));
    SockAddr vip(kVip, 53);
    if (connected && ::connect(c.get(), vip.get(), vip.length) != 0) {
      return f.add("connect UDP: " + std::string(strerror(errno)));
    }
    const char ping[] = "ping";
    const ssize_t sent = connected ? ::send(c.get(), ping, 4, 0)
                                   : ::sendto(c.get(), ping, 4, 0, vip.get(), vip.length);
    if (sent != 4) return f.add("send to the UDP VIP: " + std::string(strerror(errno)));
    const int which = waitReadable({s0.get(), s1.get()});
    if (which < 0) return f.add("no backend got the datagram");
    if (static_cast<size_t>(which) != want) f.add("datagram reached the wrong backend");
    const int server = which == 0 ? s0.get() : s1.get();
    char buf[16];
    SockAddr from;
    from.length = sizeof(from.storage);
    if (::recvfrom(server, buf, sizeof(buf), 0, from.get(), &from.length) != 4) {
      return f.add("server recvfrom failed");
    }
    if (::sendto(server, "pong", 4, 0, from.get(), from.length) != 4) {
      return f.add("server reply failed");
    }
    SockAddr src;
    src.length = sizeof(src.storage);
    if (waitReadable({c.get()}) != 0) return f.add("no reply reached the client");
    if (::recvfrom(c.get(), buf, sizeof(buf), 0, src.get(), &src.length) != 4 ||
        std::memcmp(buf, "pong", 4) != 0) {
      return f.add("client recvfrom failed");
    }
    if (src.toString() != "10.96.0.10:53") {
      f.add(std::string(connected ? "connected" : "unconnected") + " UDP reply came from " +
            src.toString());
    }
    if (connected) {
      SockAddr peer;
      peer.length = sizeof(peer.storage);
      ::getpeername(c.get(), peer.get(), &peer.length);
      if (peer.toString() != "10.96.0.10:53") f.add("UDP getpeername gave " + peer.toString());
    }
  }
}

void checkV6(Findings& f) {
  Fd l(listener(ip("::1"), 8081, SOCK_STREAM));
  if (l.get() < 0) return f.add("IPv6 listener: " + std::string(strerror(errno)));
  Fd c(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  SockAddr vip(kVip6, 80);
  if (::connect(c.get(), vip.get(), vip.length) != 0) {
    return f.add("connect to the IPv6 VIP: " + std::string(strerror(errno)));
  }
  SockAddr peer;
  peer.length = sizeof(peer.storage);
  ::getpeername(c.get(), peer.get(), &peer.length);
  if (peer.toString() != "fd00:96::10:80") f.add("IPv6 getpeername gave " + peer.toString());
  if (waitReadable({l.get()}) != 0) f.add("the IPv6 backend saw no connection");
}

// An AF_INET6 socket that connects to the IPv4 service as ::ffff:10.96.0.10 is balanced too and
// sees the mapped service address as its peer.
void checkV4Mapped(Findings& f) {
  Fd l0(listener(ip("127.0.0.2"), 8080, SOCK_STREAM));
  Fd l1(listener(ip("127.0.0.3"), 8080, SOCK_STREAM));
  if (l0.get() < 0 || l1.get() < 0) return f.add("TCP listeners: " + std::string(strerror(errno)));
  Fd c(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  SockAddr vip(ip("::ffff:10.96.0.10"), 80);
  if (::connect(c.get(), vip.get(), vip.length) != 0) {
    return f.add("connect to the IPv4-mapped VIP: " + std::string(strerror(errno)));
  }
  SockAddr peer;
  peer.length = sizeof(peer.storage);
  ::getpeername(c.get(), peer.get(), &peer.length);
  if (peer.toString() != "::ffff:10.96.0.10:80") {
    f.add("IPv4-mapped getpeername gave " + peer.toString());
  }
  if (waitReadable({l0.get(), l1.get()}) < 0) f.add("no backend saw the IPv4-mapped connection");
}

void checkNoBackends(Findings& f) {
  Fd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  SockAddr vip(kVipNoBackends, 80);
  const int rc = ::connect(c.get(), vip.get(), vip.length);
  if (rc == 0 || errno != ECONNREFUSED) {
    f.add("connect to a service without backends: rc " + std::to_string(rc) + ", " +
          strerror(errno));
  }
}

// Runs in the child: joins the cgroup, makes a network namespace, checks. Writes findings to
// `out` and exits.
[[noreturn]] void child(const std::string& cgroup, const EbpfDataplane& dp, int out) {
  ::alarm(60);
  Findings f;
  const std::string pid = std::to_string(::getpid());
  const int procs = ::open((cgroup + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
  if (procs < 0 || ::write(procs, pid.data(), pid.size()) != static_cast<ssize_t>(pid.size())) {
    f.add("join cgroup: " + std::string(strerror(errno)));
  } else if (::unshare(CLONE_NEWNET) != 0) {
    f.add("unshare(CLONE_NEWNET): " + std::string(strerror(errno)));
  } else if (!bringLoopbackUp()) {
    f.add("loopback up: " + std::string(strerror(errno)));
  } else {
    checkTcp(dp, f);
    checkAffinityAndDraining(f);
    checkUdp(dp, f);
    checkV6(f);
    checkV4Mapped(f);
    checkNoBackends(f);
  }
  const std::string& text = f.text();
  if (!text.empty() && ::write(out, text.data(), text.size()) < 0) _exit(3);
  _exit(text.empty() ? 0 : 1);
}

class SockLbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF, cgroups, netns)";
    struct stat st {};
    if (::stat((std::string(kCgroupRoot) + "/cgroup.procs").c_str(), &st) != 0) {
      GTEST_SKIP() << "no cgroup v2 at " << kCgroupRoot;
    }
    cgroup_ = std::string(kCgroupRoot) + "/skiff-test-" + std::to_string(::getpid());
    ASSERT_EQ(::mkdir(cgroup_.c_str(), 0755), 0) << strerror(errno);
  }
  void TearDown() override {
    dp_.reset();  // detaches the hooks
    if (!cgroup_.empty()) {
      EXPECT_EQ(::rmdir(cgroup_.c_str()), 0) << strerror(errno);
    }
  }

  std::string cgroup_;
  std::unique_ptr<EbpfDataplane> dp_;
};

TEST_F(SockLbTest, ConnectSendmsgRecvmsgGetpeername) {
  EbpfDataplaneOptions options;
  options.load.conntrack = 1024;
  options.load.frontends = 64;
  options.load.services = 64;
  options.load.backends = 64;
  options.load.rings = 64;
  options.cgroupPath = cgroup_;
  auto created = EbpfDataplane::create(options);
  ASSERT_TRUE(created.ok()) << created.message();
  dp_ = std::move(*created);
  dataplane::ServiceDelta delta;
  delta.upserted = {tcpService(),      udpService(),    v6Service(),
                    drainingService(), stickyService(), emptyService()};
  ASSERT_TRUE(dp_->apply(delta).ok());

  int pipeFds[2];
  ASSERT_EQ(::pipe2(pipeFds, O_CLOEXEC), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) child(cgroup_, *dp_, pipeFds[1]);
  ::close(pipeFds[1]);
  std::string findings;
  char buf[512];
  for (ssize_t n; (n = ::read(pipeFds[0], buf, sizeof(buf))) > 0;)
    findings.append(buf, static_cast<size_t>(n));
  ::close(pipeFds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status)) << "child killed by signal " << WTERMSIG(status);
  EXPECT_EQ(findings, "");
  EXPECT_EQ(WEXITSTATUS(status), 0);

  auto stats = dp_->stats();
  ASSERT_TRUE(stats.ok()) << stats.message();
  for (const auto& s : stats->services) {
    if (s.id == "default/web:http") {
      EXPECT_EQ(s.newFlows, 17u);  // 16 IPv4 connections, 1 from an IPv6 socket (mapped)
    }
    if (s.id == "default/dns:dns") {
      EXPECT_EQ(s.newFlows, 8u);
    }
    if (s.id == "default/down:http") {
      EXPECT_EQ(s.drops[static_cast<size_t>(dataplane::DropReason::kNoBackend)], 1u);
    }
  }
}

}  // namespace
}  // namespace skiff::ebpf
