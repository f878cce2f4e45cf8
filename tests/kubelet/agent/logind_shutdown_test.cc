// Graceful node shutdown over real D-Bus: a private dbus-daemon in a temporary directory and a
// fake systemd-logind on it (fake_logind.py: Inhibit hands out a pipe's write end and reports when
// every copy is closed; it emits PrepareForShutdown on command). Checked: LogindInhibitor itself,
// and the agent (pods of a recording hollow syncer, a real in-process apiserver) taking the lock,
// stopping regular pods before critical ones on PrepareForShutdown(true) and closing the lock's
// fd only after.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "control/client/typed.h"
#include "kubelet/agent/agent.h"
#include "kubelet/agent/hollow_pod_syncer.h"
#include "kubelet/agent/logind_inhibitor.h"
#include "tests/control/client/test_server.h"
#include "tests/kubelet/agent/agent_options.h"

#ifndef SKIFF_FAKE_LOGIND
#error "SKIFF_FAKE_LOGIND must name tests/kubelet/agent/fake_logind.py"
#endif

namespace skiff::kubelet {
namespace {

using namespace std::chrono_literals;
using api::core::v1::Pod;
using Clock = std::chrono::steady_clock;

// A child process with its stdin and stdout on pipes.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv) {
    int in[2];
    int out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0)
      throw std::runtime_error("pipe");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      std::vector<char*> args;
      for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    in_ = in[1];
    out_ = out[0];
  }
  ~Child() {
    ::close(in_);
    ::close(out_);
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  void send(const std::string& line) {
    const std::string text = line + "\n";
    ASSERT_EQ(::write(in_, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  }
  // The next line, or "" after `timeout`.
  std::string readLine(std::chrono::milliseconds timeout = 10s) {
    const auto deadline = Clock::now() + timeout;
    while (true) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return "";
      pollfd p{.fd = out_, .events = POLLIN, .revents = 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[512];
      ssize_t n = ::read(out_, chunk, sizeof(chunk));
      if (n <= 0) return "";
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }

 private:
  pid_t pid_ = -1;
  int in_ = -1;
  int out_ = -1;
  std::string buf_;
};

// A dbus-daemon of its own, listening on a socket in a temporary directory.
class PrivateBus {
 public:
  PrivateBus() {
    dir_ = std::filesystem::temp_directory_path() /
           ("skiff-dbus-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(dir_);
    const std::string config = (dir_ / "bus.conf").string();
    std::ofstream(config) << R"(<!DOCTYPE busconfig PUBLIC
 "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=)" << (dir_ / "bus").string()
                          << R"(</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
)";
    daemon_ = std::make_unique<Child>(std::vector<std::string>{
        "/usr/bin/dbus-daemon", "--config-file=" + config, "--print-address", "--nofork"});
    address_ = daemon_->readLine();
  }
  ~PrivateBus() {
    daemon_.reset();
    std::filesystem::remove_all(dir_);
  }
  const std::string& address() const { return address_; }

 private:
  static inline int counter_ = 0;
  std::filesystem::path dir_;
  std::unique_ptr<Child> daemon_;
  std::string address_;
};

// A node without pods, for the tests of the manager's start and stop alone.
struct NoPods final : ShutdownPods {
  std::vector<Pod> activePods() override { return {}; }
  void killPod(const Pod&, std::chrono::milliseconds,
               const std::function<void(api::core::v1::PodStatus&)>&) override {}
};

class LogindTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/usr/bin/dbus-daemon", X_OK) != 0) {
      GTEST_FAIL() << "no /usr/bin/dbus-daemon (scripts/install-deps.sh installs dbus-daemon)";
    }
    bus_ = std::make_unique<PrivateBus>();
    ASSERT_TRUE(bus_->address().starts_with("unix:path=")) << bus_->address();
  }
  void TearDown() override { std::filesystem::remove_all(conf_dir_); }
  // The fake reads its drop-ins from conf_dir_ on a reload (never /etc).
  void startLogind(const std::string& delay_usec = "5000000") {
    logind_ = std::make_unique<Child>(std::vector<std::string>{
        "/usr/bin/python3", SKIFF_FAKE_LOGIND, bus_->address(), delay_usec, conf_dir_.string()});
    ASSERT_EQ(logind_->readLine(), "ready");
  }
  LogindInhibitorOptions options() { return {.bus_address = bus_->address()}; }

  const std::filesystem::path conf_dir_ =
      std::filesystem::temp_directory_path() /
      ("skiff-logind-conf-" + std::to_string(::getpid()) + "-" +
       ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::unique_ptr<PrivateBus> bus_;
  std::unique_ptr<Child> logind_;
};

TEST_F(LogindTest, InhibitorTakesTheDelayLockHearsTheSignalsAndReleases) {
  startLogind("5000000");
  LogindInhibitor inhibitor(options());
  EXPECT_EQ(inhibitor.inhibitDelayMax(), 5s);
  EXPECT_FALSE(inhibitor.held());
  inhibitor.acquire("skiff agent", "Kubelet needs time to handle node shutdown");
  EXPECT_TRUE(inhibitor.held());
  EXPECT_GE(inhibitor.lockFd(), 0);
  EXPECT_EQ(logind_->readLine(),
            "inhibit shutdown|skiff agent|Kubelet needs time to handle node shutdown|delay 1");
  inhibitor.acquire("skiff agent", "again");  // held: not taken twice
  EXPECT_EQ(inhibitor.waitForShutdownSignal(100ms), std::nullopt);

  logind_->send("shutdown");
  EXPECT_EQ(logind_->readLine(), "sent shutdown");
  EXPECT_EQ(inhibitor.waitForShutdownSignal(5s), std::optional<bool>(true));
  logind_->send("cancel");
  EXPECT_EQ(logind_->readLine(), "sent cancel");
  EXPECT_EQ(inhibitor.waitForShutdownSignal(5s), std::optional<bool>(false));

  inhibitor.release();
  EXPECT_FALSE(inhibitor.held());
  EXPECT_EQ(logind_->readLine(), "released 0");  // the only copy of the fd was ours
}

TEST_F(LogindTest, ReloadIsSystemdsKillUnitSighupToLogindWhichRereadsItsDropIns) {
  startLogind("5000000");
  LogindInhibitor inhibitor(options());
  inhibitor.reloadConfiguration();  // no drop-in yet: the limit stays
  EXPECT_EQ(logind_->readLine(), "killunit systemd-logind.service all 1");
  EXPECT_EQ(logind_->readLine(), "reloaded InhibitDelayMaxUSec=5000000");
  EXPECT_EQ(inhibitor.inhibitDelayMax(), 5s);

  writeLogindDropIn(conf_dir_.string(), 45s);
  inhibitor.reloadConfiguration();
  EXPECT_EQ(logind_->readLine(), "killunit systemd-logind.service all 1");
  EXPECT_EQ(logind_->readLine(), "reloaded InhibitDelayMaxUSec=45000000");
  EXPECT_EQ(inhibitor.inhibitDelayMax(), 45s);
}

TEST_F(LogindTest, TheManagerRaisesALowLimitBeforeItTakesTheLock) {
  startLogind("5000000");
  LogindInhibitor inhibitor(options());
  NoPods pods;
  ShutdownManager m(inhibitor, pods,
                    {.node_name = "node-1",
                     .grace_period = 20s,
                     .grace_period_critical_pods = 5s,
                     .logind_conf_dir = conf_dir_.string(),
                     .log = [](const std::string&) {}});
  m.start();
  // The drop-in, the reload, and only then the lock.
  EXPECT_EQ(logind_->readLine(), "killunit systemd-logind.service all 1");
  EXPECT_EQ(logind_->readLine(), "reloaded InhibitDelayMaxUSec=20000000");
  EXPECT_EQ(logind_->readLine(),
            "inhibit shutdown|skiff agent|Kubelet needs time to handle node shutdown|delay 1");
  EXPECT_EQ(inhibitor.inhibitDelayMax(), 20s);
  std::ifstream in(conf_dir_ / "99-kubelet.conf");
  const std::string text(std::istreambuf_iterator<char>(in), {});
  EXPECT_NE(text.find("\n[Login]\nInhibitDelayMaxSec=20\n"), std::string::npos) << text;
  m.stop();
  EXPECT_EQ(logind_->readLine(), "released 0");
}

TEST_F(LogindTest, ALimitTheReloadDoesNotRaiseLeavesGracefulShutdownOff) {
  startLogind("5000000");
  // An administrator's drop-in sorts after the kubelet's and keeps the limit at 5 s.
  std::filesystem::create_directories(conf_dir_);
  std::ofstream(conf_dir_ / "zz-admin.conf") << "[Login]\nInhibitDelayMaxSec=5s\n";
  LogindInhibitor inhibitor(options());
  NoPods pods;
  ShutdownManager m(inhibitor, pods,
                    {.node_name = "node-1",
                     .grace_period = 20s,
                     .logind_conf_dir = conf_dir_.string(),
                     .logind_reload_timeout = 500ms,
                     .log = [](const std::string&) {}});
  EXPECT_THROW(m.start(), std::runtime_error);
  EXPECT_EQ(logind_->readLine(), "killunit systemd-logind.service all 1");
  EXPECT_EQ(logind_->readLine(), "reloaded InhibitDelayMaxUSec=5000000");
  EXPECT_FALSE(inhibitor.held());
  EXPECT_EQ(logind_->readLine(300ms), "");  // no Inhibit call
}

TEST_F(LogindTest, NoLogindOnTheBusOrNoBusIsAClearError) {
  try {
    LogindInhibitor inhibitor(options());
    FAIL() << "connected without a logind";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no systemd-logind on D-Bus unix:path="),
              std::string::npos)
        << e.what();
  }
  try {
    LogindInhibitor inhibitor({.bus_address = "unix:path=/nonexistent/skiff-test-bus"});
    FAIL() << "connected to a bus that is not there";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot connect to D-Bus unix:path=/nonexistent"),
              std::string::npos)
        << e.what();
  }
}

// Hollow pods, with each terminate() recorded (and the regular ones taking a while).
class RecordingSyncer final : public PodSyncer {
 public:
  RecordingSyncer()
      : hollow_(HollowPodSyncerOptions{.pod_cidr = [] { return std::string("10.244.0.0/24"); },
                                       .host_ip = [] { return std::string("192.0.2.10"); }}) {}
  PodSyncResult sync(const Pod& pod) override { return hollow_.sync(pod); }
  PodSyncResult terminate(const Pod& pod, std::chrono::milliseconds grace) override {
    const std::string& name = pod.metadata().name();
    {
      std::lock_guard lock(mu_);
      began[name] = Clock::now();
      graces[name] = grace;
    }
    std::this_thread::sleep_for(300ms);  // a preStop hook, a process that takes its SIGTERM slowly
    PodSyncResult r = hollow_.terminate(pod, grace);
    std::lock_guard lock(mu_);
    ended[name] = Clock::now();
    return r;
  }
  std::vector<std::string> knownPodUids() override { return hollow_.knownPodUids(); }
  void cleanupOrphan(const std::string& uid) override { hollow_.cleanupOrphan(uid); }

  std::mutex mu_;
  std::map<std::string, Clock::time_point> began, ended;
  std::map<std::string, std::chrono::milliseconds> graces;

 private:
  HollowPodSyncer hollow_;
};

TEST_F(LogindTest, AgentStopsRegularThenCriticalPodsAndThenClosesTheLock) {
  startLogind("30000000");
  client::testing::TestApiServer server(client::testing::ServerMode::kPlain);
  client::ClientPtr client = server.client();
  RecordingSyncer syncer;
  AgentOptions o = testing::agentOptions("hollow://test", 50ms);
  o.shutdown_grace_period = 20s;
  o.shutdown_grace_period_critical_pods = 5s;
  const LogindInhibitorOptions bus = options();
  o.shutdown_inhibitor = [bus]() -> ShutdownInhibitorPtr {
    return std::make_unique<LogindInhibitor>(bus);
  };
  Agent agent(*client, syncer, o);
  ASSERT_TRUE(agent.start());
  ASSERT_NE(agent.shutdownManager(), nullptr);
  EXPECT_EQ(logind_->readLine(),
            "inhibit shutdown|skiff agent|Kubelet needs time to handle node shutdown|delay 1");

  auto make = [&](const std::string& name, const std::string& cls, int64_t grace) {
    Pod p;
    p.mutable_metadata()->set_name(name);
    p.mutable_metadata()->set_namespace_("default");
    p.mutable_spec()->set_node_name("node-1");
    if (!cls.empty()) p.mutable_spec()->set_priority_class_name(cls);
    p.mutable_spec()->set_termination_grace_period_seconds(grace);
    auto* c = p.mutable_spec()->add_containers();
    c->set_name("main");
    c->set_image("busybox");
    client::create(*client, p);
  };
  make("web", "", 60);
  make("api", "", 3);
  make("dns", "system-cluster-critical", 30);
  auto phase = [&](const std::string& name) {
    return client::get<Pod>(*client, "default", name).status().phase();
  };
  auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline &&
         !(phase("web") == "Running" && phase("api") == "Running" && phase("dns") == "Running")) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(phase("dns"), "Running");

  logind_->send("shutdown");
  EXPECT_EQ(logind_->readLine(), "sent shutdown");
  EXPECT_EQ(logind_->readLine(10s), "released 0");
  const auto released_seen = Clock::now();
  {
    std::lock_guard lock(syncer.mu_);
    ASSERT_EQ(syncer.ended.size(), 3u);
    // Regular pods (web, api) first, both done before the critical one (dns) began; the lock's fd
    // closed after all of them.
    EXPECT_LE(syncer.ended["web"], syncer.began["dns"]);
    EXPECT_LE(syncer.ended["api"], syncer.began["dns"]);
    EXPECT_LE(syncer.ended["dns"], released_seen);
    EXPECT_EQ(syncer.graces["web"], 15s);  // 20 s - 5 s for critical pods
    EXPECT_EQ(syncer.graces["api"], 3s);   // its own, shorter
    EXPECT_EQ(syncer.graces["dns"], 5s);
  }
  for (const char* name : {"web", "api", "dns"}) {
    Pod p = client::get<Pod>(*client, "default", name);
    EXPECT_EQ(p.status().phase(), "Failed") << name;
    EXPECT_EQ(p.status().reason(), "Terminated") << name;
    EXPECT_EQ(p.status().message(), "Pod was terminated in response to imminent node shutdown.");
  }
  EXPECT_TRUE(agent.shutdownManager()->shuttingDown());

  // The shutdown was cancelled after all: the lock is taken again.
  logind_->send("cancel");
  EXPECT_EQ(logind_->readLine(), "sent cancel");
  EXPECT_EQ(logind_->readLine(),
            "inhibit shutdown|skiff agent|Kubelet needs time to handle node shutdown|delay 1");
  deadline = Clock::now() + 5s;
  while (Clock::now() < deadline && agent.shutdownManager()->shuttingDown())
    std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(agent.shutdownManager()->shuttingDown());
  agent.stop();  // releases it
  EXPECT_EQ(logind_->readLine(), "released 0");
}

}  // namespace
}  // namespace skiff::kubelet
