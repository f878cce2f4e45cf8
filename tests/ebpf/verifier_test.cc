// Every BPF program of ebpf/bpf/ loads and passes the verifier of the running kernel, with the
// production capacities and with each configuration the loader can set.

#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>

#include "ebpf/loader.h"

namespace skiff::ebpf {
namespace {

void expectAllLoaded(const Programs& programs, bool withSocket) {
  std::vector<std::string> expected = {SKIFF_PROG_XDP, SKIFF_PROG_TC_INGRESS, SKIFF_PROG_TC_EGRESS};
  if (withSocket) {
    expected.insert(expected.end(), {SKIFF_PROG_CONNECT4, SKIFF_PROG_CONNECT6, SKIFF_PROG_SENDMSG4,
                                     SKIFF_PROG_SENDMSG6, SKIFF_PROG_RECVMSG4, SKIFF_PROG_RECVMSG6,
                                     SKIFF_PROG_GETPEERNAME4, SKIFF_PROG_GETPEERNAME6});
  }
  auto loaded = programs.programs();
  ASSERT_EQ(loaded.size(), expected.size());
  for (const std::string& name : expected) {
    auto it =
        std::find_if(loaded.begin(), loaded.end(), [&](const auto& p) { return p.first == name; });
    ASSERT_NE(it, loaded.end()) << name;
    EXPECT_GE(it->second, 0) << name;
  }
  const MapFds& m = programs.maps();
  for (int fd : {m.services, m.backends, m.rings, m.conntrack, m.sockRevNat, m.affinity,
                 m.sourceRanges, m.svcStats, m.backendStats, m.global}) {
    EXPECT_GE(fd, 0);
  }
}

class VerifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF)";
  }
};

TEST_F(VerifierTest, DefaultCapacitiesLoad) {
  auto programs = Programs::load(LoadOptions{});
  ASSERT_TRUE(programs.ok()) << programs.message();
  expectAllLoaded(**programs, true);
}

TEST_F(VerifierTest, TxModeAndShortLifetimesLoad) {
  LoadOptions options;
  options.fwdMode = SKIFF_FWD_TX;
  options.conntrack = 1024;
  options.ctTcpNs = 1'000'000'000;
  options.ctOtherNs = 1'000'000'000;
  options.ctClosingNs = 1'000'000;
  auto programs = Programs::load(options);
  ASSERT_TRUE(programs.ok()) << programs.message();
  expectAllLoaded(**programs, true);
}

TEST_F(VerifierTest, FibModeLoads) {
  LoadOptions options;
  options.fwdMode = SKIFF_FWD_FIB;
  options.rejectWithoutBackends = false;
  options.conntrack = 1024;
  options.withSocketLb = false;
  auto programs = Programs::load(options);
  ASSERT_TRUE(programs.ok()) << programs.message();
  expectAllLoaded(**programs, false);
}

// DSR (`--lb-mode dsr`) in each forwarding mode, with the outer source configured or left to
// the FIB lookup; an unknown mode is a clear error.
TEST_F(VerifierTest, DsrModeLoadsInEveryForwardingMode) {
  for (uint32_t fwd : {SKIFF_FWD_PASS, SKIFF_FWD_TX, SKIFF_FWD_FIB}) {
    for (uint32_t source : {0u, 0x0100000au}) {
      LoadOptions options;
      options.lbMode = SKIFF_LB_DSR;
      options.fwdMode = fwd;
      options.dsrSourceV4 = source;
      options.conntrack = 1024;
      options.withSocketLb = false;
      auto programs = Programs::load(options);
      ASSERT_TRUE(programs.ok()) << "fwd " << fwd << ": " << programs.message();
      expectAllLoaded(**programs, false);
    }
  }
  LoadOptions bad;
  bad.lbMode = 7;
  bad.withSocketLb = false;
  auto refused = Programs::load(bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("load balancer mode"), std::string::npos);
  EXPECT_EQ(parseLbMode("dsr"), std::optional<uint32_t>(SKIFF_LB_DSR));
  EXPECT_EQ(parseLbMode("snat"), std::optional<uint32_t>(SKIFF_LB_SNAT));
  EXPECT_FALSE(parseLbMode("DSR").has_value());
  EXPECT_EQ(lbModeName(SKIFF_LB_DSR), "dsr");
}

TEST_F(VerifierTest, PlainHashConntrackLoads) {
  LoadOptions options;
  options.conntrack = 16;
  options.conntrackWithoutLru = true;
  options.withSocketLb = false;
  auto programs = Programs::load(options);
  ASSERT_TRUE(programs.ok()) << programs.message();
  expectAllLoaded(**programs, false);
}

// pinMaps() in a bpffs mounted in a private mount namespace (the host's /sys/fs/bpf is left
// alone): every shared map is pinned under its lb_abi.h name and can be opened again.
TEST_F(VerifierTest, MapsPinByName) {
  char dir[] = "/tmp/skiff-bpffs-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::unshare(CLONE_NEWNS) != 0) _exit(10);
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(11);
    if (::mount("bpf", dir, "bpf", 0, nullptr) != 0) _exit(12);
    LoadOptions options;
    options.conntrack = 64;
    auto programs = Programs::load(options);
    if (!programs.ok()) _exit(13);
    const std::string pinDir = std::string(dir) + "/skiff";
    if (!(*programs)->pinMaps(pinDir).ok()) _exit(14);
    int code = 0;
    for (const char* name : {SKIFF_MAP_SERVICES, SKIFF_MAP_BACKENDS, SKIFF_MAP_RINGS, SKIFF_MAP_CT,
                             SKIFF_MAP_SOCK_REVNAT, SKIFF_MAP_AFFINITY, SKIFF_MAP_SRC_RANGES,
                             SKIFF_MAP_SVC_STATS, SKIFF_MAP_BE_STATS, SKIFF_MAP_GLOBAL}) {
      const int fd = bpf_obj_get((pinDir + "/" + name).c_str());
      if (fd < 0) code = 20;
      if (fd >= 0) ::close(fd);
    }
    _exit(code);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_EQ(::rmdir(dir), 0);  // the mount lived only in the child's mount namespace
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace skiff::ebpf
