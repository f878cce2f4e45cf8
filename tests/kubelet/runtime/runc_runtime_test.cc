// Real containers: the busybox fixture image on overlayfs, run by runc under a private --root,
// each with a skiff-shim parent. Cgroups go below /skiff/test-<pid> in every hierarchy and are
// removed at the end, as are mounts and runc state, also when a test fails.

#include "kubelet/runtime/runc_runtime.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "kubelet/images/image_store.h"
#include "tests/kubelet/runc_fixture.h"

namespace skiff::kubelet {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

using runc_fixture::readFile;

class RuncRuntimeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/skiff-runc-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    ASSERT_TRUE(runc_fixture::makeBusyboxLayout(dir_));
    store_ = runc_fixture::importBusybox(dir_);
    // A parent of its own at the top, so that removing it leaves nothing of the test behind.
    cgroup_parent_ = "/skiff-test-" + std::to_string(::getpid());
  }
  static void TearDownTestSuite() {
    delete store_;
    // Container cgroups went with `runc delete`; the test's parents go here.
    runc_fixture::removeCgroupParent(cgroup_parent_);
    fs::remove_all(dir_);
  }

  void SetUp() override { runtime_ = runc_fixture::runcRuntime(dir_ + "/runc", dir_ + "/state"); }

  void TearDown() override {
    for (const auto& id : created_) {
      try {
        runtime_->remove(id);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "remove " << id << ": " << e.what();
      }
      try {
        store_->releaseRootfs(id, dir_ + "/bundles/" + id);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "release " << id << ": " << e.what();
      }
    }
    EXPECT_TRUE(runtime_->list().empty());
  }

  ContainerConfig config(const std::string& id, std::vector<std::string> args) {
    auto image = store_->find("example.com/test/busybox:v1");
    EXPECT_TRUE(image);
    const std::string bundle = dir_ + "/bundles/" + id;
    fs::create_directories(bundle);
    created_.push_back(id);
    ContainerConfig c;
    c.id = id;
    c.bundle_dir = bundle;
    c.rootfs = store_->prepareRootfs(*image, id, bundle).path;
    c.args = std::move(args);
    c.env = {"PATH=/bin"};
    c.hostname = id;
    c.cgroups_path = cgroup_parent_ + "/" + id;
    c.log_path = dir_ + "/logs/" + id + ".log";
    return c;
  }

  ContainerStatus waitStopped(const std::string& id, std::chrono::milliseconds limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    ContainerStatus s;
    while (std::chrono::steady_clock::now() < deadline) {
      s = runtime_->status(id);
      if (s.state == ContainerState::kStopped) return s;
      std::this_thread::sleep_for(20ms);
    }
    return s;
  }

  // Log lines without their timestamps, after checking each has the CRI shape.
  std::vector<std::string> logLines(const std::string& id) {
    std::vector<std::string> out;
    std::ifstream in(dir_ + "/logs/" + id + ".log");
    const std::regex shape(
        R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) (F|P) (.*)$)");
    std::string line;
    while (std::getline(in, line)) {
      std::smatch m;
      EXPECT_TRUE(std::regex_match(line, m, shape)) << line;
      if (!m.empty()) out.push_back(m[1].str() + " " + m[2].str() + " " + m[3].str());
    }
    return out;
  }

  static inline std::string dir_;
  static inline images::ImageStore* store_ = nullptr;
  static inline std::string cgroup_parent_;
  std::unique_ptr<RuncRuntime> runtime_;
  std::vector<std::string> created_;
};

TEST_F(RuncRuntimeTest, EchoHelloIntoTheCriLog) {
  const ContainerConfig c = config("echo", {"/bin/busybox", "echo", "hello"});
  runtime_->create(c);
  EXPECT_EQ(runtime_->status("echo").state, ContainerState::kCreated);
  runtime_->start("echo");
  const ContainerStatus s = waitStopped("echo");
  ASSERT_EQ(s.state, ContainerState::kStopped);
  EXPECT_EQ(s.exit_code, 0);
  EXPECT_EQ(s.reason, "Completed");
  EXPECT_GT(s.started_at_ns, 0);
  EXPECT_GE(s.finished_at_ns, s.started_at_ns);
  // The shim drains the pipes after the exit; wait for the line.
  for (int i = 0; i < 100 && logLines("echo").empty(); ++i)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(logLines("echo"), std::vector<std::string>{"stdout F hello"});
  EXPECT_EQ(runtime_->list(), std::vector<std::string>{"echo"});
}

TEST_F(RuncRuntimeTest, ExitCodeEnvCwdAndStderr) {
  ContainerConfig c = config("exit3", {"/bin/sh", "-c",
                                       "echo \"$FOO in $(pwd) on $(hostname)\"; echo oops >&2; "
                                       "printf partial; exit 3"});
  c.env.push_back("FOO=bar");
  c.cwd = "/tmp";
  runtime_->create(c);
  runtime_->start("exit3");
  const ContainerStatus s = waitStopped("exit3");
  EXPECT_EQ(s.exit_code, 3);
  EXPECT_EQ(s.reason, "Error");
  std::vector<std::string> lines;
  for (int i = 0; i < 100 && lines.size() < 3; ++i) {
    lines = logLines("exit3");
    std::this_thread::sleep_for(20ms);
  }
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, (std::vector<std::string>{"stderr F oops", "stdout F bar in /tmp on exit3",
                                             "stdout F partial"}));
}

TEST_F(RuncRuntimeTest, StopSendsSigtermThenSigkillAfterTheGracePeriod) {
  // A shell that exits on SIGTERM.
  runtime_->create(
      config("polite", {"/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.05; done"}));
  runtime_->start("polite");
  EXPECT_EQ(runtime_->status("polite").state, ContainerState::kRunning);
  auto t0 = std::chrono::steady_clock::now();
  ContainerStatus s = runtime_->stop("polite", 5s, SIGTERM);
  EXPECT_EQ(s.state, ContainerState::kStopped);
  EXPECT_EQ(s.exit_code, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);

  // `sleep` as PID 1 of its namespace ignores SIGTERM: SIGKILL after the grace period.
  runtime_->create(config("stubborn", {"/bin/busybox", "sleep", "100"}));
  runtime_->start("stubborn");
  t0 = std::chrono::steady_clock::now();
  s = runtime_->stop("stubborn", 600ms, SIGTERM);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(s.state, ContainerState::kStopped);
  EXPECT_EQ(s.exit_code, 128 + SIGKILL);
  EXPECT_GE(took, 600ms);
  EXPECT_LT(took, 5s);
  // Stopping a stopped container is a no-op.
  EXPECT_EQ(runtime_->stop("stubborn", 1s, SIGTERM).exit_code, 128 + SIGKILL);
}

// The shim outlives the kubelet that started it: it must keep none of the kubelet's descriptors,
// also those that are not close-on-exec (Boost.Asio's sockets are not). A listening socket kept
// by a shim made a restarted agent fail to bind its kubelet API port.
TEST_F(RuncRuntimeTest, TheShimKeepsNoneOfTheKubeletsDescriptors) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);  // deliberately not SOCK_CLOEXEC
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  const int file = ::open((dir_ + "/kept-open").c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(file, 0);
  auto target = [](const std::string& link) {
    char buf[256] = {};
    return ::readlink(link.c_str(), buf, sizeof buf - 1) > 0 ? std::string(buf) : std::string();
  };
  const std::string socket_name = target("/proc/self/fd/" + std::to_string(listener));
  const std::string file_name = target("/proc/self/fd/" + std::to_string(file));
  ASSERT_TRUE(socket_name.starts_with("socket:[")) << socket_name;

  runtime_->create(config("fds", {"/bin/busybox", "sleep", "100"}));
  runtime_->start("fds");
  const int shim = std::atoi(readFile(dir_ + "/state/fds/shim.pid").c_str());
  ASSERT_GT(shim, 0);
  std::vector<std::string> held;
  for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(shim) + "/fd")) {
    const std::string t = target(e.path());
    if (t == socket_name || t == file_name || t.starts_with("socket:")) held.push_back(t);
  }
  EXPECT_TRUE(held.empty()) << "the shim holds " << held.size() << " of our descriptors, first "
                            << held.front();
  ::close(listener);
  ::close(file);
  runtime_->stop("fds", 1s, SIGKILL);
}

TEST_F(RuncRuntimeTest, MissingExecutableFailsCreateAndLeavesNothing) {
  const ContainerConfig c = config("missing", {"/bin/does-not-exist"});
  try {
    runtime_->create(c);
    FAIL() << "created a container with no executable";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("does-not-exist"), std::string::npos) << e.what();
  }
  EXPECT_EQ(runtime_->status("missing").state, ContainerState::kUnknown);
  EXPECT_TRUE(runtime_->list().empty());
  EXPECT_FALSE(fs::exists(dir_ + "/runc/missing"));
  EXPECT_THROW(runtime_->create(ContainerConfig{.id = "bad/id"}), std::invalid_argument);
}

TEST_F(RuncRuntimeTest, CgroupLimitsAndTheUnifiedTree) {
  ContainerConfig c = config("limited", {"/bin/busybox", "sleep", "100"});
  c.resources.memory_limit = 64 << 20;
  c.resources.cpu_quota_us = 50000;
  c.resources.cpu_shares = 256;
  c.resources.pids_limit = 32;
  runtime_->create(c);
  runtime_->start("limited");
  const ContainerStatus s = runtime_->status("limited");
  ASSERT_EQ(s.state, ContainerState::kRunning);
  const std::string path = c.cgroups_path;
  EXPECT_EQ(readFile("/sys/fs/cgroup/memory" + path + "/memory.limit_in_bytes"), "67108864\n");
  EXPECT_EQ(readFile("/sys/fs/cgroup/cpu" + path + "/cpu.cfs_quota_us"), "50000\n");
  EXPECT_EQ(readFile("/sys/fs/cgroup/cpu" + path + "/cpu.shares"), "256\n");
  EXPECT_EQ(readFile("/sys/fs/cgroup/pids" + path + "/pids.max"), "32\n");
  // The process is in the v2 tree below the parent too (one BPF program can cover all pods).
  EXPECT_NE(readFile("/proc/" + std::to_string(s.pid) + "/cgroup").find("0::" + path),
            std::string::npos);
  runtime_->stop("limited", 100ms, SIGTERM);
  runtime_->remove("limited");
  EXPECT_FALSE(fs::exists("/sys/fs/cgroup/memory" + path));
  EXPECT_FALSE(fs::exists("/sys/fs/cgroup/unified" + path));
}

}  // namespace
}  // namespace skiff::kubelet
