// Pinning and restart: an EbpfDataplane with a pin directory leaves its maps and cgroup links
// pinned when it goes; a second one on the same directory reuses the maps (the service still
// resolves before any apply), swaps its programs into the pinned links (one program per hook, not
// two) and adopts the services by name with the same ids (a full sync that changes nothing writes
// nothing); detachAndUnpin() and cleanupPinDir() leave nothing pinned or attached. The test runs
// in a private mount namespace with its own bpffs, on a cgroup made for it.

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "ebpf/cgroup.h"
#include "ebpf/ebpf_dataplane.h"
#include "ebpf/map_reader.h"

namespace skiff::ebpf {
namespace {

using dataplane::Backend;
using dataplane::FrontendKind;
using dataplane::IpAddress;
using dataplane::L4Protocol;
using dataplane::Service;
using dataplane::ServiceDelta;

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}

Service web() {
  Service s;
  s.id = "default/web:http";
  s.frontends = {{{ip("10.96.0.10"), 80, L4Protocol::kTcp}, FrontendKind::kClusterIP}};
  s.backends = {Backend{.address = ip("10.0.1.1"), .port = 8080},
                Backend{.address = ip("10.0.1.2"), .port = 8080},
                Backend{.address = ip("10.0.1.3"), .port = 8080}};
  s.maglevTableSize = 251;
  return s;
}

Service db() {
  Service s;
  s.id = "default/db:sql";
  s.frontends = {{{ip("10.96.0.20"), 5432, L4Protocol::kTcp}, FrontendKind::kClusterIP}};
  s.backends = {Backend{.address = ip("10.0.2.1"), .port = 5432}};
  s.maglevTableSize = 251;
  return s;
}

ServiceDelta fullSync(std::vector<Service> services) {
  ServiceDelta d;
  d.upserted = std::move(services);
  d.replaceAll = true;
  return d;
}

constexpr bpf_attach_type kHooks[] = {
    BPF_CGROUP_INET4_CONNECT,     BPF_CGROUP_INET6_CONNECT,     BPF_CGROUP_UDP4_SENDMSG,
    BPF_CGROUP_UDP6_SENDMSG,      BPF_CGROUP_UDP4_RECVMSG,      BPF_CGROUP_UDP6_RECVMSG,
    BPF_CGROUP_INET4_GETPEERNAME, BPF_CGROUP_INET6_GETPEERNAME,
};

// The program ids attached to `cgroup` for `type` (not inherited ones).
std::vector<uint32_t> attached(const std::string& cgroup, bpf_attach_type type) {
  const int fd = ::open(cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  std::vector<uint32_t> ids(8);
  uint32_t count = static_cast<uint32_t>(ids.size());
  uint32_t flags = 0;
  if (fd < 0 || bpf_prog_query(fd, type, 0, &flags, ids.data(), &count) != 0) count = 0;
  if (fd >= 0) ::close(fd);
  ids.resize(count);
  return ids;
}

size_t totalAttached(const std::string& cgroup) {
  size_t n = 0;
  for (bpf_attach_type t : kHooks)
    n += attached(cgroup, t).size();
  return n;
}

uint32_t programId(int fd) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

class PinTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) return;
    // A private mount namespace, so the bpffs below is this process's alone.
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      setupError_ = std::string("private mount namespace: ") + std::strerror(errno);
      return;
    }
    bpffs_ = "/tmp/skiff-pin-test-" + std::to_string(::getpid());
    ::mkdir(bpffs_.c_str(), 0700);
    if (::mount("bpffs", bpffs_.c_str(), "bpf", 0, "mode=0700") != 0) {
      setupError_ = std::string("mount bpffs: ") + std::strerror(errno);
    }
  }
  static void TearDownTestSuite() {
    if (bpffs_.empty()) return;
    ::umount2(bpffs_.c_str(), MNT_DETACH);
    ::rmdir(bpffs_.c_str());
  }

  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF, cgroups, mounts)";
    if (!setupError_.empty()) GTEST_SKIP() << setupError_;
    if (cgroup2Mount().empty()) GTEST_SKIP() << "cgroup v2 is not mounted";
    subtree_ = cgroup2Mount() + "/skiff-test-" + std::to_string(::getpid());
    options_.load.frontends = 64;
    options_.load.services = 16;
    options_.load.backends = 64;
    options_.load.rings = 64;
    options_.load.conntrack = 1024;
    options_.load.sockRevNat = 1024;
    options_.load.affinity = 64;
    options_.load.sourceRanges = 64;
    options_.pinDir = bpffs_ + "/skiff";
    options_.cgroupPath = subtree_ + "/lb";
  }
  void TearDown() override {
    EXPECT_TRUE(Programs::cleanupPinDir(options_.pinDir).ok());
    if (!subtree_.empty()) {
      EXPECT_TRUE(removeCgroup(options_.cgroupPath).ok());
      EXPECT_TRUE(removeCgroup(subtree_).ok());
    }
  }

  static inline std::string bpffs_;
  static inline std::string setupError_;
  std::string subtree_;
  EbpfDataplaneOptions options_;
};

TEST_F(PinTest, RestartReusesMapsAndLinksAndAdoptsServicesByName) {
  uint32_t webId = 0, dbId = 0;
  std::vector<uint32_t> backendIds;
  {
    auto dp = EbpfDataplane::create(options_);
    ASSERT_TRUE(dp.ok()) << dp.message();
    EXPECT_FALSE((*dp)->restoredFromPins());
    ASSERT_TRUE((*dp)->apply(fullSync({web(), db()})).ok());
    webId = (*dp)->serviceId("default/web:http");
    dbId = (*dp)->serviceId("default/db:sql");
    for (const Backend& b : web().backends)
      backendIds.push_back((*dp)->backendId("default/web:http", b.key()));
    EXPECT_EQ(totalAttached(options_.cgroupPath), std::size(kHooks));
  }
  // Gone, but still attached and programmed.
  EXPECT_EQ(totalAttached(options_.cgroupPath), std::size(kHooks));
  EXPECT_TRUE(exists(options_.pinDir + "/" SKIFF_MAP_SERVICES));
  EXPECT_TRUE(exists(options_.pinDir + "/link_cgroup_" SKIFF_PROG_CONNECT4));

  auto created = EbpfDataplane::create(options_);
  ASSERT_TRUE(created.ok()) << created.message();
  EbpfDataplane& dp = **created;
  EXPECT_TRUE(dp.restoredFromPins());
  EXPECT_EQ(dp.unclaimedServices(), 2u);
  // The service resolves before the new loader wrote anything.
  const skiff_frontend_key key = frontendKey(web().frontends[0].key);
  skiff_service value{};
  ASSERT_EQ(bpf_map_lookup_elem(dp.maps().services, &key, &value), 0);
  EXPECT_EQ(value.svc_id, webId);
  // One program per hook, and it is the new loader's.
  for (bpf_attach_type t : kHooks)
    EXPECT_EQ(attached(options_.cgroupPath, t).size(), 1u) << t;
  EXPECT_EQ(attached(options_.cgroupPath, BPF_CGROUP_INET4_CONNECT)[0],
            programId(dp.programs().socketProgram(SKIFF_PROG_CONNECT4)));

  // The first full sync lists web only: web keeps its ids and costs no write; db goes.
  ASSERT_TRUE(dp.apply(fullSync({web()})).ok());
  EXPECT_EQ(dp.serviceId("default/web:http"), webId);
  for (size_t i = 0; i < backendIds.size(); ++i)
    EXPECT_EQ(dp.backendId("default/web:http", web().backends[i].key()), backendIds[i]);
  EXPECT_EQ(dp.unclaimedServices(), 0u);
  const skiff_frontend_key dbKey = frontendKey(db().frontends[0].key);
  EXPECT_NE(bpf_map_lookup_elem(dp.maps().services, &dbKey, &value), 0) << "stale db frontend";
  auto names = readServiceNames(dp.maps().serviceNames);
  ASSERT_TRUE(names.ok());
  ASSERT_EQ(names->size(), 1u);
  EXPECT_EQ((*names)[0].name, "default/web:http");
  auto backends = readBackends(dp.maps().backends);
  ASSERT_TRUE(backends.ok());
  EXPECT_EQ(backends->size(), 3u) << "db's backend cleared";
  auto rings = readRings(dp.maps().rings, dp.maps().services);
  ASSERT_TRUE(rings.ok());
  EXPECT_EQ(rings->size(), 1u) << "db's ring deleted";
  // db comes back with a fresh id (its old one was given back, so it may be reused).
  ASSERT_TRUE(dp.apply(fullSync({web(), db()})).ok());
  EXPECT_NE(dp.serviceId("default/db:sql"), SKIFF_ID_NONE);
  EXPECT_NE(dp.serviceId("default/db:sql"), webId);
  (void)dbId;

  // A full sync with nothing changed writes nothing.
  const uint64_t calls = dp.writer().calls();
  ASSERT_TRUE(dp.apply(fullSync({web(), db()})).ok());
  EXPECT_EQ(dp.writer().calls(), calls);

  ASSERT_TRUE(dp.detachAndUnpin().ok());
  EXPECT_EQ(totalAttached(options_.cgroupPath), 0u);
  EXPECT_FALSE(exists(options_.pinDir));
}

TEST_F(PinTest, AdoptedServiceWithNoChangeCostsNoWrite) {
  {
    auto dp = EbpfDataplane::create(options_);
    ASSERT_TRUE(dp.ok()) << dp.message();
    ASSERT_TRUE((*dp)->apply(fullSync({web()})).ok());
  }
  auto dp = EbpfDataplane::create(options_);
  ASSERT_TRUE(dp.ok()) << dp.message();
  const uint64_t calls = (*dp)->writer().calls();
  ASSERT_TRUE((*dp)->apply(fullSync({web()})).ok());
  EXPECT_EQ((*dp)->writer().calls(), calls) << "the adopted service was rewritten";
  // A backend leaves: only its positions and its entry are written.
  Service fewer = web();
  fewer.backends.pop_back();
  ASSERT_TRUE((*dp)->apply(fullSync({fewer})).ok());
  auto backends = readBackends((*dp)->maps().backends);
  ASSERT_TRUE(backends.ok());
  EXPECT_EQ(backends->size(), 2u);
  ASSERT_TRUE((*dp)->detachAndUnpin().ok());
}

TEST_F(PinTest, CleanupAfterACrashDetachesAndUnpins) {
  {
    auto dp = EbpfDataplane::create(options_);
    ASSERT_TRUE(dp.ok()) << dp.message();
    ASSERT_TRUE((*dp)->apply(fullSync({web()})).ok());
  }
  ASSERT_EQ(totalAttached(options_.cgroupPath), std::size(kHooks));
  ASSERT_TRUE(Programs::cleanupPinDir(options_.pinDir).ok());
  EXPECT_EQ(totalAttached(options_.cgroupPath), 0u);
  EXPECT_FALSE(exists(options_.pinDir));
  EXPECT_TRUE(Programs::cleanupPinDir(options_.pinDir).ok()) << "a second cleanup is fine";
}

// Maps pinned by a loader of another layout (SKIFF_ABI_VERSION in skiff_meta, or no skiff_meta
// at all as before version 2) are unpinned and replaced by fresh ones; the pinned links stay and
// get the new programs (one per hook).
TEST_F(PinTest, PinsOfAnotherAbiVersionAreReplacedCleanly) {
  for (const bool withoutMarker : {false, true}) {
    SCOPED_TRACE(withoutMarker ? "no skiff_meta" : "skiff_meta of version 1");
    {
      auto dp = EbpfDataplane::create(options_);
      ASSERT_TRUE(dp.ok()) << dp.message();
      ASSERT_TRUE((*dp)->apply(fullSync({web()})).ok());
    }
    const std::string meta = options_.pinDir + "/" SKIFF_MAP_META;
    if (withoutMarker) {
      ASSERT_EQ(::unlink(meta.c_str()), 0);
    } else {
      const int fd = bpf_obj_get(meta.c_str());
      ASSERT_GE(fd, 0);
      const uint32_t key = 0;
      const uint32_t old = 1;
      ASSERT_EQ(bpf_map_update_elem(fd, &key, &old, BPF_ANY), 0);
      ::close(fd);
    }
    auto created = EbpfDataplane::create(options_);
    ASSERT_TRUE(created.ok()) << created.message();
    EbpfDataplane& dp = **created;
    EXPECT_TRUE(dp.programs().replacedOldPins());
    EXPECT_FALSE(dp.restoredFromPins());
    EXPECT_EQ(dp.unclaimedServices(), 0u);
    const skiff_frontend_key key = frontendKey(web().frontends[0].key);
    skiff_service value{};
    EXPECT_NE(bpf_map_lookup_elem(dp.maps().services, &key, &value), 0) << "fresh maps";
    for (bpf_attach_type t : kHooks)
      EXPECT_EQ(attached(options_.cgroupPath, t).size(), 1u) << t;
    EXPECT_EQ(attached(options_.cgroupPath, BPF_CGROUP_INET4_CONNECT)[0],
              programId(dp.programs().socketProgram(SKIFF_PROG_CONNECT4)));
    // The new maps are pinned with this version's marker: the next loader reuses them.
    ASSERT_TRUE(dp.apply(fullSync({web()})).ok());
    auto again = EbpfDataplane::create(options_);
    ASSERT_TRUE(again.ok()) << again.message();
    EXPECT_FALSE((*again)->programs().replacedOldPins());
    EXPECT_TRUE((*again)->restoredFromPins());
    EXPECT_EQ((*again)->unclaimedServices(), 1u);
  }
}

TEST_F(PinTest, CapacityMismatchWithPinnedMapsIsAClearError) {
  {
    auto dp = EbpfDataplane::create(options_);
    ASSERT_TRUE(dp.ok()) << dp.message();
  }
  EbpfDataplaneOptions other = options_;
  other.load.backends = 128;
  auto dp = EbpfDataplane::create(other);
  ASSERT_FALSE(dp.ok());
  EXPECT_NE(dp.message().find("max_entries"), std::string::npos) << dp.message();
  EXPECT_NE(dp.message().find(SKIFF_MAP_BACKENDS), std::string::npos) << dp.message();
}

TEST_F(PinTest, RefusesTheRootCgroupAndNonCgroupPaths) {
  EbpfDataplaneOptions root = options_;
  root.pinDir.clear();
  root.cgroupPath = cgroup2Mount();
  auto dp = EbpfDataplane::create(root);
  ASSERT_FALSE(dp.ok());
  EXPECT_NE(dp.message().find("refusing the root cgroup"), std::string::npos) << dp.message();

  root.cgroupPath = bpffs_ + "/not-a-cgroup";
  dp = EbpfDataplane::create(root);
  ASSERT_FALSE(dp.ok());
  EXPECT_NE(dp.message().find("not a cgroup v2 directory"), std::string::npos) << dp.message();
}

// The XDP program id on `ifindex` in native mode, 0 if none.
uint32_t xdpProgramOn(int ifindex) {
  uint32_t id = 0;
  if (bpf_xdp_query_id(ifindex, XDP_FLAGS_DRV_MODE, &id) != 0) return 0;
  return id;
}

TEST_F(PinTest, XdpLinkIsPinnedAndGetsTheNewProgramOnRestart) {
  if (std::system("ip link add skpa type veth peer name skpb >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "cannot make a veth pair";
  }
  const int ifindex = static_cast<int>(if_nametoindex("skpa"));
  ASSERT_GT(ifindex, 0);
  options_.cgroupPath.clear();
  options_.xdpIfindexes = {ifindex};
  uint32_t first = 0;
  {
    auto dp = EbpfDataplane::create(options_);
    ASSERT_TRUE(dp.ok()) << dp.message();
    first = programId((*dp)->programs().xdpProgram());
    EXPECT_EQ(xdpProgramOn(ifindex), first);
  }
  EXPECT_EQ(xdpProgramOn(ifindex), first) << "the pinned XDP link went with its loader";
  EXPECT_TRUE(exists(options_.pinDir + "/link_xdp_" + std::to_string(ifindex)));
  auto dp = EbpfDataplane::create(options_);
  ASSERT_TRUE(dp.ok()) << dp.message();
  const uint32_t second = programId((*dp)->programs().xdpProgram());
  EXPECT_NE(second, first);
  EXPECT_EQ(xdpProgramOn(ifindex), second);
  ASSERT_TRUE((*dp)->detachAndUnpin().ok());
  EXPECT_EQ(xdpProgramOn(ifindex), 0u);
  EXPECT_EQ(std::system("ip link del skpa >/dev/null 2>&1"), 0);
}

// The program ids TCX runs on `ifindex` for `attachType` (kTcxIngress, kTcxEgress).
std::vector<uint32_t> tcxPrograms(int ifindex, int attachType) {
  std::vector<uint32_t> ids(8);
  uint32_t count = static_cast<uint32_t>(ids.size());
  if (bpf_prog_query(ifindex, static_cast<bpf_attach_type>(attachType), 0, nullptr, ids.data(),
                     &count) != 0) {
    return {};
  }
  ids.resize(count);
  return ids;
}

// --lb-nodeport-mode tc: the two TCX links are pinned, stay attached without their loader, get
// the new programs on restart (one program per hook, never two), show in readAttachments (what
// `skiff lb status` prints); a restart in XDP mode replaces them (never XDP and tc at once);
// cleanupPinDir detaches everything. In a network namespace of a child process, so the veth
// pair is the test's own.
TEST_F(PinTest, TcLinksArePinnedAndSwitchWithTheMode) {
  EbpfDataplaneOptions options = options_;
  options.cgroupPath.clear();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::unshare(CLONE_NEWNET) != 0) _exit(10);
    if (std::system("ip link add skpa type veth peer name skpb >/dev/null 2>&1") != 0) _exit(11);
    const int ifindex = static_cast<int>(if_nametoindex("skpa"));
    const std::string in = options.pinDir + "/link_tcx_ingress_" + std::to_string(ifindex);
    const std::string out = options.pinDir + "/link_tcx_egress_" + std::to_string(ifindex);
    options.xdpIfindexes = {ifindex};
    options.nodePortMode = NodePortMode::kTc;
    uint32_t first = 0;
    {
      auto dp = EbpfDataplane::create(options);
      if (!dp.ok()) _exit(12);
      first = programId((*dp)->programs().tcIngressProgram());
      if (tcxPrograms(ifindex, kTcxIngress) != std::vector<uint32_t>{first}) _exit(13);
      if (tcxPrograms(ifindex, kTcxEgress) !=
          std::vector<uint32_t>{programId((*dp)->programs().tcEgressProgram())}) {
        _exit(14);
      }
    }
    if (tcxPrograms(ifindex, kTcxIngress) != std::vector<uint32_t>{first}) _exit(15);
    if (!exists(in) || !exists(out)) _exit(16);
    auto attachments = readAttachments(options.pinDir);
    if (!attachments.ok()) _exit(17);
    int tc = 0;
    for (const Attachment& a : *attachments) {
      if ((a.kind == "tc-ingress" && a.program == SKIFF_PROG_TC_INGRESS) ||
          (a.kind == "tc-egress" && a.program == SKIFF_PROG_TC_EGRESS)) {
        tc += static_cast<int>(a.target) == ifindex && !a.detached ? 1 : 0;
      }
    }
    if (tc != 2) _exit(18);
    {
      auto dp = EbpfDataplane::create(options);
      if (!dp.ok()) _exit(19);
      const uint32_t second = programId((*dp)->programs().tcIngressProgram());
      if (second == first || tcxPrograms(ifindex, kTcxIngress) != std::vector<uint32_t>{second}) {
        _exit(20);
      }
      if (tcxPrograms(ifindex, kTcxEgress).size() != 1) _exit(21);
    }
    options.nodePortMode = NodePortMode::kXdp;
    {
      auto dp = EbpfDataplane::create(options);
      if (!dp.ok()) _exit(22);
      if (!tcxPrograms(ifindex, kTcxIngress).empty() || !tcxPrograms(ifindex, kTcxEgress).empty())
        _exit(23);
      if (exists(in) || exists(out)) _exit(24);
      if (xdpProgramOn(ifindex) != programId((*dp)->programs().xdpProgram())) _exit(25);
    }
    options.nodePortMode = NodePortMode::kTc;
    {
      auto dp = EbpfDataplane::create(options);
      if (!dp.ok() || xdpProgramOn(ifindex) != 0) _exit(26);
      if (tcxPrograms(ifindex, kTcxIngress).size() != 1) _exit(27);
    }
    if (!Programs::cleanupPinDir(options.pinDir).ok()) _exit(28);
    if (!tcxPrograms(ifindex, kTcxIngress).empty() || !tcxPrograms(ifindex, kTcxEgress).empty())
      _exit(29);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  // Codes: the step that failed (see above).
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace skiff::ebpf
