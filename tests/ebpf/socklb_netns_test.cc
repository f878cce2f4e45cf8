// The socket LB end to end, as `skiff agent` runs it: an EbpfDataplane pinned under a bpffs and
// attached to a cgroup subtree made for the test (never the root cgroup) programs a ClusterIP
// service whose three backends are TCP servers in another network namespace, behind a veth pair.
// A client process in a sub-cgroup of that subtree, in its own network namespace, connects to the
// ClusterIP many times: the connections spread over all three backends, and the per-backend
// counters (EbpfDataplane::stats() and the pinned maps as `skiff lb backends` reads them) agree
// with what the servers saw. The data path keeps answering after the EbpfDataplane goes (pinned),
// a restarted one adopts the service with its counters, a removed backend gets no new
// connection, and cleanup leaves no pin, attachment, cgroup or namespace behind.

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "control/cli/lb_command.h"
#include "ebpf/cgroup.h"
#include "ebpf/ebpf_dataplane.h"
#include "ebpf/lb_report.h"

namespace skiff::ebpf {
namespace {

using dataplane::Backend;
using dataplane::FrontendKind;
using dataplane::IpAddress;
using dataplane::L4Protocol;
using dataplane::Service;
using dataplane::ServiceDelta;

constexpr const char* kVip = "10.96.7.7";
constexpr uint16_t kVipPort = 80;
constexpr uint16_t kBackendPort = 8080;
const std::array<const char*, 3> kBackends = {"10.200.0.11", "10.200.0.12", "10.200.0.13"};
constexpr int kConnections = 60;

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}

Service web(size_t backends = kBackends.size()) {
  Service s;
  s.id = "default/web:http";
  s.frontends = {{{ip(kVip), kVipPort, L4Protocol::kTcp}, FrontendKind::kClusterIP}};
  for (size_t i = 0; i < backends; ++i)
    s.backends.push_back(Backend{.address = ip(kBackends[i]), .port = kBackendPort});
  return s;
}

ServiceDelta fullSync(const Service& s) {
  ServiceDelta d;
  d.upserted = {s};
  d.replaceAll = true;
  return d;
}

bool run(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
}

sockaddr_in v4(const char* address, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, address, &sa.sin_addr);
  return sa;
}

bool enterNetns(const std::string& name) {
  const int fd = ::open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::setns(fd, CLONE_NEWNET) == 0;
  ::close(fd);
  return ok;
}

// The backends: one TCP listener per address; each accepted connection gets the backend's index
// as one byte. Runs until killed. Writes one byte to `ready` once listening.
[[noreturn]] void serveBackends(const std::string& netns, int ready) {
  if (!enterNetns(netns)) _exit(10);
  std::vector<pollfd> fds;
  for (const char* address : kBackends) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    const sockaddr_in sa = v4(address, kBackendPort);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) != 0) _exit(11);
    if (::listen(fd, 128) != 0) _exit(12);
    fds.push_back({fd, POLLIN, 0});
  }
  if (::write(ready, "r", 1) != 1) _exit(13);
  for (;;) {
    if (::poll(fds.data(), fds.size(), -1) <= 0) continue;
    for (size_t i = 0; i < fds.size(); ++i) {
      if ((fds[i].revents & POLLIN) == 0) continue;
      const int c = ::accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      const char id = static_cast<char>('0' + i);
      (void)!::write(c, &id, 1);
      ::close(c);
    }
  }
}

struct Tally {
  std::array<int, 3> perBackend{};
  int failed = 0;
  std::string error;
};

// A client process in cgroup `cgroup` and network namespace `netns` connects to the VIP
// `count` times; what each connection reached.
Tally connectFromClient(const std::string& cgroup, const std::string& netns, int count) {
  int pipeFds[2];
  Tally t;
  if (::pipe2(pipeFds, O_CLOEXEC) != 0) {
    t.error = "pipe";
    return t;
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipeFds[0]);
    Tally mine;
    if (!joinCgroup(cgroup).ok()) _exit(20);
    if (!enterNetns(netns)) _exit(21);
    for (int i = 0; i < count; ++i) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      const sockaddr_in sa = v4(kVip, kVipPort);
      char id = 0;
      if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) != 0 ||
          ::read(fd, &id, 1) != 1 || id < '0' || id > '2') {
        ++mine.failed;
      } else {
        ++mine.perBackend[static_cast<size_t>(id - '0')];
      }
      ::close(fd);
    }
    const int out[4] = {mine.perBackend[0], mine.perBackend[1], mine.perBackend[2], mine.failed};
    _exit(::write(pipeFds[1], out, sizeof(out)) == sizeof(out) ? 0 : 22);
  }
  ::close(pipeFds[1]);
  int in[4] = {};
  const ssize_t got = ::read(pipeFds[0], in, sizeof(in));
  ::close(pipeFds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (got != sizeof(in) || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    t.error = "client exited with " + std::to_string(WEXITSTATUS(status));
    return t;
  }
  t.perBackend = {in[0], in[1], in[2]};
  t.failed = in[3];
  return t;
}

// New flows per backend address, from the pinned maps (what `skiff lb backends` prints).
std::array<uint64_t, 3> pinnedCounters(const std::string& pinDir, std::string& error,
                                       size_t* rows = nullptr) {
  std::array<uint64_t, 3> out{};
  auto report = readLbReport(pinDir);
  if (!report.ok()) {
    error = report.message();
    return out;
  }
  if (rows != nullptr) *rows = report->backends.size();
  for (const BackendRow& b : report->backends) {
    for (size_t i = 0; i < kBackends.size(); ++i) {
      if (b.address == std::string(kBackends[i]) + ":" + std::to_string(kBackendPort)) {
        out[i] = b.newFlows;
        if (b.service != "default/web:http") error = "backend row names " + b.service;
      }
    }
  }
  return out;
}

class SockLbNetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF, cgroups, network namespaces)";
    if (cgroup2Mount().empty()) GTEST_SKIP() << "cgroup v2 is not mounted";
    if (!run("ip -V")) GTEST_SKIP() << "needs iproute2 (ip)";
    // A private mount namespace: the bpffs and the /run/netns mounts stay this process's.
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      GTEST_SKIP() << "private mount namespace: " << std::strerror(errno);
    }
    const std::string id = std::to_string(::getpid());
    bpffs_ = "/tmp/skiff-socklb-test-" + id;
    ::mkdir(bpffs_.c_str(), 0700);
    ASSERT_EQ(::mount("bpffs", bpffs_.c_str(), "bpf", 0, "mode=0700"), 0) << std::strerror(errno);
    subtree_ = cgroup2Mount() + "/skiff-test-" + id;
    client_ = subtree_ + "/client";
    clientNs_ = "skc-" + id;
    backendNs_ = "skb-" + id;
    ASSERT_TRUE(run("ip netns add " + clientNs_));
    ASSERT_TRUE(run("ip netns add " + backendNs_));
    ASSERT_TRUE(
        run("ip link add vc netns " + clientNs_ + " type veth peer name vb netns " + backendNs_));
    const std::string c = "ip -n " + clientNs_ + " ", b = "ip -n " + backendNs_ + " ";
    ASSERT_TRUE(run(c + "addr add 10.200.0.1/24 dev vc"));
    for (const char* address : kBackends) {
      ASSERT_TRUE(run(b + "addr add " + address + "/24 dev vb"));
    }
    for (const std::string& cmd :
         {c + "link set lo up", c + "link set vc up", b + "link set lo up", b + "link set vb up"}) {
      ASSERT_TRUE(run(cmd)) << cmd;
    }
    int ready[2];
    ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
    server_ = ::fork();
    if (server_ == 0) serveBackends(backendNs_, ready[1]);
    ::close(ready[1]);
    char r = 0;
    ASSERT_EQ(::read(ready[0], &r, 1), 1) << "backends did not start";
    ::close(ready[0]);

    options_.load.frontends = 64;
    options_.load.services = 16;
    options_.load.backends = 64;
    options_.load.rings = 64;
    options_.load.conntrack = 1024;
    options_.load.sockRevNat = 4096;
    options_.load.affinity = 64;
    options_.load.sourceRanges = 64;
    options_.pinDir = bpffs_ + "/skiff";
    options_.cgroupPath = subtree_;
  }

  void TearDown() override {
    if (server_ > 0) {
      ::kill(server_, SIGKILL);
      ::waitpid(server_, nullptr, 0);
    }
    if (!options_.pinDir.empty()) {
      EXPECT_TRUE(Programs::cleanupPinDir(options_.pinDir).ok());
    }
    if (!subtree_.empty()) {
      EXPECT_TRUE(removeCgroup(client_).ok());
      EXPECT_TRUE(removeCgroup(subtree_ + "/" + kHostCgroupName).ok());
      EXPECT_TRUE(removeCgroup(subtree_).ok());
    }
    if (!clientNs_.empty()) run("ip netns del " + clientNs_);
    if (!backendNs_.empty()) run("ip netns del " + backendNs_);
    if (!bpffs_.empty()) {
      ::umount2(bpffs_.c_str(), MNT_DETACH);
      ::rmdir(bpffs_.c_str());
    }
  }

  std::string bpffs_, subtree_, client_, clientNs_, backendNs_;
  pid_t server_ = -1;
  EbpfDataplaneOptions options_;
};

TEST_F(SockLbNetnsTest, ClusterIpSpreadsOverBackendsAndCountersAgree) {
  auto created = EbpfDataplane::create(options_);
  ASSERT_TRUE(created.ok()) << created.message();
  std::unique_ptr<EbpfDataplane> dp = std::move(*created);
  ASSERT_TRUE(dp->apply(fullSync(web())).ok());
  ASSERT_TRUE(ensureCgroup(client_).ok());

  // 1. Spread over all three, counters agree with the servers.
  const Tally first = connectFromClient(client_, clientNs_, kConnections);
  ASSERT_EQ(first.error, "");
  EXPECT_EQ(first.failed, 0);
  for (size_t i = 0; i < kBackends.size(); ++i)
    EXPECT_GT(first.perBackend[i], 0) << "no connection reached " << kBackends[i];
  std::string error;
  const auto pinned = pinnedCounters(options_.pinDir, error);
  ASSERT_EQ(error, "");
  auto stats = dp->stats();
  ASSERT_TRUE(stats.ok()) << stats.message();
  ASSERT_EQ(stats->services.size(), 1u);
  EXPECT_EQ(stats->services[0].newFlows, static_cast<uint64_t>(kConnections));
  for (size_t i = 0; i < kBackends.size(); ++i) {
    EXPECT_EQ(pinned[i], static_cast<uint64_t>(first.perBackend[i])) << kBackends[i];
    EXPECT_EQ(stats->services[0].backends[i].newFlows, static_cast<uint64_t>(first.perBackend[i]));
  }

  // 2. The agent goes (pinned): the ClusterIP still answers, and a restarted one adopts the
  // service with its ids and counters.
  dp.reset();
  const Tally meanwhile = connectFromClient(client_, clientNs_, kConnections);
  ASSERT_EQ(meanwhile.error, "");
  EXPECT_EQ(meanwhile.failed, 0) << "the ClusterIP stopped answering without its loader";
  created = EbpfDataplane::create(options_);
  ASSERT_TRUE(created.ok()) << created.message();
  dp = std::move(*created);
  EXPECT_TRUE(dp->restoredFromPins());
  ASSERT_TRUE(dp->apply(fullSync(web())).ok());
  const auto afterRestart = pinnedCounters(options_.pinDir, error);
  ASSERT_EQ(error, "");
  for (size_t i = 0; i < kBackends.size(); ++i) {
    EXPECT_EQ(afterRestart[i], static_cast<uint64_t>(first.perBackend[i] + meanwhile.perBackend[i]))
        << "counters of " << kBackends[i] << " did not survive the restart";
  }

  // 3. The third backend leaves: no new connection goes to it.
  ASSERT_TRUE(dp->apply(fullSync(web(2))).ok());
  const Tally second = connectFromClient(client_, clientNs_, kConnections);
  ASSERT_EQ(second.error, "");
  EXPECT_EQ(second.failed, 0);
  EXPECT_EQ(second.perBackend[2], 0) << "a removed backend got new connections";
  EXPECT_GT(second.perBackend[0], 0);
  EXPECT_GT(second.perBackend[1], 0);
  size_t rows = 0;
  const auto afterRemoval = pinnedCounters(options_.pinDir, error, &rows);
  ASSERT_EQ(error, "");
  EXPECT_EQ(rows, 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(afterRemoval[i], afterRestart[i] + static_cast<uint64_t>(second.perBackend[i]));
  }

  // 4. Clean shutdown: nothing pinned or attached; the client is outside the LB again.
  ASSERT_TRUE(dp->detachAndUnpin().ok());
  struct stat st {};
  EXPECT_NE(::stat(options_.pinDir.c_str(), &st), 0) << "pin directory left behind";
  const Tally detached = connectFromClient(client_, clientNs_, 3);
  ASSERT_EQ(detached.error, "");
  EXPECT_EQ(detached.failed, 3) << "the ClusterIP still answered after detachAndUnpin()";
}

// What `skiff lb exec -- ARGS...` prints to stdout (run in a child: it execs).
std::string lbExec(const std::string& cgroup, const std::vector<std::string>& args, int& status) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return "pipe failed";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    cli::LbOptions options;
    options.cgroup = cgroup;
    options.command = args;
    std::ostringstream err;
    const int rc = cli::runLbExec(options, err);
    _exit(rc);
  }
  ::close(out[1]);
  std::string text;
  char buf[512];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof(buf))) > 0;)
    text.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  ::waitpid(pid, &status, 0);
  return text;
}

TEST_F(SockLbNetnsTest, SkiffLbPrintsTheCountersAndExecGivesAHostProcessTheClusterIp) {
  auto created = EbpfDataplane::create(options_);
  ASSERT_TRUE(created.ok()) << created.message();
  EbpfDataplane& dp = **created;
  ASSERT_TRUE(dp.apply(fullSync(web())).ok());
  ASSERT_TRUE(ensureCgroup(client_).ok());
  const Tally t = connectFromClient(client_, clientNs_, 30);
  ASSERT_EQ(t.error, "");
  ASSERT_EQ(t.failed, 0);

  cli::LbOptions options;
  options.pinDir = options_.pinDir;
  options.output = "json";
  std::ostringstream out, err;
  ASSERT_EQ(cli::runLbBackends(options, out, err), 0) << err.str();
  for (size_t i = 0; i < kBackends.size(); ++i) {
    const std::string row = "\"address\":\"" + std::string(kBackends[i]) + ":8080\"";
    const size_t at = out.str().find(row);
    ASSERT_NE(at, std::string::npos) << out.str();
    const std::string flows = "\"newFlows\":" + std::to_string(t.perBackend[i]) + ",";
    EXPECT_NE(out.str().find(flows, at), std::string::npos) << kBackends[i] << ": " << out.str();
  }
  std::ostringstream status, services, table;
  ASSERT_EQ(cli::runLbStatus(options, status, err), 0) << err.str();
  EXPECT_NE(status.str().find("\"services\":1,"), std::string::npos) << status.str();
  EXPECT_NE(status.str().find("\"socketsTranslated\":30"), std::string::npos) << status.str();
  options.output.clear();
  ASSERT_EQ(cli::runLbServices(options, services, err), 0) << err.str();
  EXPECT_NE(services.str().find("default/web:http"), std::string::npos) << services.str();
  EXPECT_NE(services.str().find("10.96.7.7:80/TCP"), std::string::npos) << services.str();
  ASSERT_EQ(cli::runLbBackends(options, table, err), 0) << err.str();
  EXPECT_NE(table.str().find("NEW-FLOWS"), std::string::npos) << table.str();
  options.output = "yaml";
  EXPECT_EQ(cli::runLbBackends(options, table, err), 1);
  EXPECT_NE(err.str().find("unknown output format"), std::string::npos);

  // `skiff lb exec` moves the command into the subtree's host cgroup...
  int rc = -1;
  const std::string cgroup = lbExec(subtree_, {"cat", "/proc/self/cgroup"}, rc);
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0);
  EXPECT_NE(cgroup.find("0::/" + subtree_.substr(cgroup2Mount().size() + 1) + "/host\n"),
            std::string::npos)
      << cgroup;
  // ...where the ClusterIP answers (from the client namespace, which has a route to the pods).
  if (run("command -v busybox")) {
    const std::string reply =
        lbExec(subtree_, {"ip", "netns", "exec", clientNs_, "busybox", "nc", kVip, "80"}, rc);
    ASSERT_EQ(reply.size(), 1u) << "no answer through the ClusterIP: \"" << reply << "\"";
    EXPECT_GE(reply[0], '0');
    EXPECT_LE(reply[0], '2');
  }
  EXPECT_EQ(lbExec(subtree_, {"/nonexistent/command"}, rc), "");
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 127);
  ASSERT_TRUE(dp.detachAndUnpin().ok());
}

}  // namespace
}  // namespace skiff::ebpf
