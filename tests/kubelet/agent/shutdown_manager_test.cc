// Graceful node shutdown (kubelet/agent/shutdown_manager.h): the manager with a fake inhibitor and
// fake pods, and the whole agent (hollow pods) on a real in-process apiserver.
#include "kubelet/agent/shutdown_manager.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
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
#include "tests/control/client/test_server.h"
#include "tests/kubelet/agent/agent_options.h"

namespace skiff::kubelet {
namespace {

using namespace std::chrono_literals;
using api::core::v1::Node;
using api::core::v1::Pod;
using api::core::v1::PodStatus;

template <class F>
bool eventually(F f, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}

// What happened, in order, across the inhibitor and the pods.
struct Journal {
  void add(const std::string& line) {
    std::lock_guard lock(mu);
    lines.push_back(line);
  }
  std::vector<std::string> get() {
    std::lock_guard lock(mu);
    return lines;
  }
  // Position of the first line equal to `line`, or -1.
  int at(const std::string& line) {
    auto all = get();
    auto it = std::find(all.begin(), all.end(), line);
    return it == all.end() ? -1 : static_cast<int>(it - all.begin());
  }
  std::mutex mu;
  std::vector<std::string> lines;
};

class FakeInhibitor final : public ShutdownInhibitor {
 public:
  explicit FakeInhibitor(Journal& journal) : journal_(journal) {}
  std::chrono::microseconds inhibitDelayMax() override {
    std::lock_guard lock(mu_);
    return delay_max;
  }
  // As logind on SIGHUP: reads CONF_DIR/99-kubelet.conf's InhibitDelayMaxSec (when conf_dir is
  // set), applied after reload_lag.
  void reloadConfiguration() override {
    journal_.add("reload");
    if (refuse_reload) throw std::runtime_error("reload refused");
    if (conf_dir.empty()) return;
    std::ifstream in(conf_dir + "/99-kubelet.conf");
    std::string line;
    while (std::getline(in, line)) {
      if (!line.starts_with("InhibitDelayMaxSec=")) continue;
      const auto value = std::chrono::seconds(std::stoll(line.substr(19)));
      std::thread([this, value] {
        std::this_thread::sleep_for(reload_lag);
        std::lock_guard lock(mu_);
        delay_max = value;
      }).detach();
    }
  }
  void acquire(const std::string& who, const std::string& why) override {
    std::lock_guard lock(mu_);
    if (refuse) throw std::runtime_error("refused");
    if (held_) return;
    held_ = true;
    who_ = who;
    why_ = why;
    journal_.add("acquire");
  }
  void release() override {
    std::lock_guard lock(mu_);
    if (!held_) return;
    held_ = false;
    journal_.add("release");
  }
  bool held() const override {
    std::lock_guard lock(mu_);
    return held_;
  }
  std::optional<bool> waitForShutdownSignal(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return !signals_.empty(); })) return std::nullopt;
    bool s = signals_.front();
    signals_.pop_front();
    return s;
  }
  void send(bool shutting_down) {
    {
      std::lock_guard lock(mu_);
      signals_.push_back(shutting_down);
    }
    cv_.notify_all();
  }
  std::string who() const {
    std::lock_guard lock(mu_);
    return who_ + ": " + why_;
  }

  std::chrono::microseconds delay_max = 3600s;  // under mu_ once shared
  bool refuse = false;
  bool refuse_reload = false;
  std::string conf_dir;  // where reloadConfiguration() reads the drop-in; "": it changes nothing
  std::chrono::milliseconds reload_lag = 100ms;

 private:
  Journal& journal_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<bool> signals_;
  bool held_ = false;
  std::string who_, why_;
};

class FakePods final : public ShutdownPods {
 public:
  explicit FakePods(Journal& journal) : journal_(journal) {}
  std::vector<Pod> activePods() override { return pods; }
  void killPod(const Pod& pod, std::chrono::milliseconds grace,
               const std::function<void(PodStatus&)>& set_status) override {
    const std::string& name = pod.metadata().name();
    journal_.add("kill " + name);
    {
      std::lock_guard lock(mu_);
      graces[name] = grace;
    }
    if (name.starts_with("slow")) {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return let_slow_go_; });
    } else {
      std::this_thread::sleep_for(50ms);
    }
    PodStatus status;
    status.set_phase("Running");
    set_status(status);
    {
      std::lock_guard lock(mu_);
      statuses[name] = status;
    }
    journal_.add("killed " + name);
  }
  void letSlowGo() {
    {
      std::lock_guard lock(mu_);
      let_slow_go_ = true;
    }
    cv_.notify_all();
  }
  std::map<std::string, std::chrono::milliseconds> gracesSeen() {
    std::lock_guard lock(mu_);
    return graces;
  }

  std::vector<Pod> pods;
  std::map<std::string, PodStatus> statuses;  // after the kill, under mu_

 private:
  Journal& journal_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool let_slow_go_ = false;
  std::map<std::string, std::chrono::milliseconds> graces;
};

Pod makePod(const std::string& name, const std::string& priority_class = "",
            std::optional<int64_t> grace = std::nullopt) {
  Pod pod;
  pod.mutable_metadata()->set_name(name);
  pod.mutable_metadata()->set_namespace_("default");
  pod.mutable_metadata()->set_uid("uid-" + name);
  pod.mutable_spec()->set_node_name("node-1");
  if (!priority_class.empty()) pod.mutable_spec()->set_priority_class_name(priority_class);
  if (grace) pod.mutable_spec()->set_termination_grace_period_seconds(*grace);
  auto* c = pod.mutable_spec()->add_containers();
  c->set_name("main");
  c->set_image("busybox");
  return pod;
}

const api::core::v1::PodCondition* condition(const PodStatus& s, const std::string& type) {
  for (const auto& c : s.conditions()) {
    if (c.type() == type) return &c;
  }
  return nullptr;
}

TEST(ShutdownPolicyTest, PriorityFromSpecElseFromTheBuiltInClasses) {
  EXPECT_EQ(podPriority(makePod("a")), 0);
  EXPECT_EQ(podPriority(makePod("a", "system-cluster-critical")), 2000000000);
  EXPECT_EQ(podPriority(makePod("a", "system-node-critical")), 2000001000);
  EXPECT_EQ(podPriority(makePod("a", "high")), 0);
  Pod p = makePod("a", "system-node-critical");
  p.mutable_spec()->set_priority(5);  // the apiserver's value wins
  EXPECT_EQ(podPriority(p), 5);
  EXPECT_FALSE(isCriticalPod(p));
  p.mutable_spec()->set_priority(2000000000);
  EXPECT_TRUE(isCriticalPod(p));
  EXPECT_FALSE(isCriticalPod(makePod("a")));
  EXPECT_TRUE(isCriticalPod(makePod("a", "system-cluster-critical")));
}

TEST(ShutdownPolicyTest, TwoGroupsRegularThenCriticalWithTheirBudgets) {
  Pod negative = makePod("neg");
  negative.mutable_spec()->set_priority(-10);
  auto groups = shutdownGroups(30s, 10s,
                               {makePod("web"), makePod("dns", "system-cluster-critical"),
                                makePod("cni", "system-node-critical"), negative});
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].grace, 20s);
  EXPECT_EQ(groups[0].priority, 0);
  ASSERT_EQ(groups[0].pods.size(), 2u);
  EXPECT_EQ(groups[0].pods[0].metadata().name(), "web");
  EXPECT_EQ(groups[0].pods[1].metadata().name(), "neg");
  EXPECT_EQ(groups[1].grace, 10s);
  EXPECT_EQ(groups[1].priority, 2000000000);
  ASSERT_EQ(groups[1].pods.size(), 2u);
  EXPECT_EQ(groups[1].pods[0].metadata().name(), "dns");
  EXPECT_EQ(groups[1].pods[1].metadata().name(), "cni");
}

TEST(ShutdownPolicyTest, GracePeriodIsTheBudgetOrThePodsOwnWhenShorter) {
  EXPECT_EQ(shutdownGracePeriod(makePod("a"), 20s), 20s);          // default 30 s: unset
  EXPECT_EQ(shutdownGracePeriod(makePod("a", "", 60), 20s), 20s);  // capped
  EXPECT_EQ(shutdownGracePeriod(makePod("a", "", 5), 20s), 5s);    // its own, shorter
  EXPECT_EQ(shutdownGracePeriod(makePod("a", "", 20), 20s), 20s);  // equal
  EXPECT_EQ(shutdownGracePeriod(makePod("a", "", 0), 20s), 0s);    // kill at once
  EXPECT_EQ(shutdownGracePeriod(makePod("a", "", 5), 0s), 0s);     // no budget
}

TEST(ShutdownPolicyTest, StatusIsFailedTerminatedWithKubernetesWordsAndDisruptionTarget) {
  PodStatus s;
  s.set_phase("Running");
  auto* ready = s.add_conditions();
  ready->set_type("Ready");
  ready->set_status("True");
  setShutdownStatus(s);
  EXPECT_EQ(s.phase(), "Failed");
  EXPECT_EQ(s.reason(), "Terminated");
  EXPECT_EQ(s.message(), "Pod was terminated in response to imminent node shutdown.");
  const auto* target = condition(s, "DisruptionTarget");
  ASSERT_NE(target, nullptr);
  EXPECT_EQ(target->status(), "True");
  EXPECT_EQ(target->reason(), "TerminationByKubelet");
  EXPECT_EQ(target->message(), "Pod was terminated in response to imminent node shutdown.");
  ASSERT_NE(condition(s, "Ready"), nullptr);
  // Applied twice: one condition.
  setShutdownStatus(s);
  int targets = 0;
  for (const auto& c : s.conditions())
    targets += c.type() == "DisruptionTarget";
  EXPECT_EQ(targets, 1);
  // A pod that Succeeded stays Succeeded.
  PodStatus done;
  done.set_phase("Succeeded");
  setShutdownStatus(done);
  EXPECT_EQ(done.phase(), "Succeeded");
  EXPECT_EQ(done.reason(), "Terminated");
}

class ShutdownManagerTest : public ::testing::Test {
 protected:
  ShutdownManagerOptions options(std::chrono::seconds total, std::chrono::seconds critical) {
    ShutdownManagerOptions o;
    o.node_name = "node-1";
    o.grace_period = total;
    o.grace_period_critical_pods = critical;
    o.poll_interval = 20ms;
    o.on_change = [this] { ++changes_; };
    o.node_event = [this](const std::string& reason, const std::string& message) {
      journal_.add("event " + reason + ": " + message);
    };
    o.logind_conf_dir = conf_dir_.string();
    o.log = [this](const std::string& line) {
      std::lock_guard lock(log_mu_);
      log_.push_back(line);
    };
    return o;
  }
  bool logged(const std::string& part) {
    std::lock_guard lock(log_mu_);
    for (const auto& l : log_)
      if (l.find(part) != std::string::npos) return true;
    return false;
  }

  void TearDown() override { std::filesystem::remove_all(conf_dir_); }
  std::string readFile(const std::filesystem::path& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  // A drop-in directory of the test's own (never /etc).
  const std::filesystem::path conf_dir_ =
      std::filesystem::temp_directory_path() /
      ("skiff-logind-conf-" + std::to_string(::getpid()) + "-" +
       ::testing::UnitTest::GetInstance()->current_test_info()->name());
  Journal journal_;
  FakeInhibitor inhibitor_{journal_};
  FakePods pods_{journal_};
  std::atomic<int> changes_{0};
  std::mutex log_mu_;
  std::vector<std::string> log_;
};

TEST_F(ShutdownManagerTest, OffWithoutAGracePeriod) {
  ShutdownManager m(inhibitor_, pods_, options(0s, 0s));
  m.start();
  EXPECT_FALSE(inhibitor_.held());
  EXPECT_TRUE(journal_.get().empty());
  m.stop();
}

TEST_F(ShutdownManagerTest, RefusesBadBudgets) {
  ShutdownManager critical_above(inhibitor_, pods_, options(10s, 20s));
  EXPECT_THROW(critical_above.start(), std::invalid_argument);
  ShutdownManager negative(inhibitor_, pods_, options(-1s, 0s));
  EXPECT_THROW(negative.start(), std::invalid_argument);
  EXPECT_FALSE(inhibitor_.held());
}

TEST_F(ShutdownManagerTest, TakesTheLockAndStopReleasesIt) {
  {
    ShutdownManager m(inhibitor_, pods_, options(30s, 10s));
    m.start();
    EXPECT_TRUE(inhibitor_.held());
    EXPECT_EQ(inhibitor_.who(), "skiff agent: Kubelet needs time to handle node shutdown");
    EXPECT_FALSE(m.shuttingDown());
    EXPECT_EQ(m.notReadyMessage(), "");
    EXPECT_EQ(m.admit(makePod("new")).first, "");
  }
  EXPECT_FALSE(inhibitor_.held());
  EXPECT_EQ(journal_.get(), (std::vector<std::string>{"acquire", "release"}));
}

TEST_F(ShutdownManagerTest, ARefusedLockIsAnError) {
  inhibitor_.refuse = true;
  ShutdownManager m(inhibitor_, pods_, options(30s, 10s));
  EXPECT_THROW(m.start(), std::runtime_error);
}

TEST_F(ShutdownManagerTest, ADelayLimitAtTheGracePeriodWritesNoDropIn) {
  inhibitor_.delay_max = 30s;
  ShutdownManager m(inhibitor_, pods_, options(30s, 10s));
  m.start();
  EXPECT_TRUE(inhibitor_.held());
  EXPECT_FALSE(std::filesystem::exists(conf_dir_));
  EXPECT_EQ(journal_.get(), (std::vector<std::string>{"acquire"}));
}

TEST_F(ShutdownManagerTest, ALowDelayLimitIsRaisedByADropInAndAReloadBeforeTheLock) {
  inhibitor_.delay_max = 5s;
  inhibitor_.conf_dir = conf_dir_.string();
  ShutdownManager m(inhibitor_, pods_, options(30s, 10s));
  m.start();  // waits out the reload's lag
  EXPECT_TRUE(inhibitor_.held());
  EXPECT_EQ(inhibitor_.inhibitDelayMax(), 30s);
  const auto file = conf_dir_ / "99-kubelet.conf";
  ASSERT_TRUE(std::filesystem::exists(file));
  EXPECT_EQ(readFile(file),
            "# skiff agent: graceful node shutdown (--shutdown-grace-period), as the kubelet's "
            "override\n[Login]\nInhibitDelayMaxSec=30\n");
  EXPECT_EQ(std::filesystem::status(file).permissions() & std::filesystem::perms::all,
            std::filesystem::perms(0644));
  EXPECT_EQ(journal_.get(), (std::vector<std::string>{"reload", "acquire"}));
  EXPECT_TRUE(logged("InhibitDelayMaxSec is 5s, less than the shutdown grace period of 30s"));
  EXPECT_TRUE(logged("InhibitDelayMaxSec is now 30s"));
  EXPECT_NE(logindDropIn(12s).find("\n[Login]\nInhibitDelayMaxSec=12\n"), std::string::npos);
}

TEST_F(ShutdownManagerTest, ADelayLimitLogindKeepsLowIsAnErrorAndNoLockIsTaken) {
  inhibitor_.delay_max = 5s;  // the reload changes nothing (conf_dir unset)
  ShutdownManagerOptions o = options(30s, 10s);
  o.logind_reload_timeout = 300ms;
  ShutdownManager m(inhibitor_, pods_, o);
  try {
    m.start();
    FAIL() << "started with InhibitDelayMaxSec below the grace period";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "unable to update logind's InhibitDelayMaxSec to 30s (the shutdown grace "
                  "period): it is still 5s after writing " +
                  (conf_dir_ / "99-kubelet.conf").string()),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(inhibitor_.held());
  EXPECT_EQ(journal_.get(), (std::vector<std::string>{"reload"}));
}

TEST_F(ShutdownManagerTest, ADropInThatCannotBeWrittenOrAReloadRefusedIsAnError) {
  inhibitor_.delay_max = 5s;
  // The directory's place is taken by a file.
  std::filesystem::create_directories(conf_dir_);
  std::ofstream(conf_dir_ / "file") << "x";
  ShutdownManagerOptions o = options(30s, 10s);
  o.logind_conf_dir = (conf_dir_ / "file").string();
  ShutdownManager unwritable(inhibitor_, pods_, o);
  EXPECT_THROW(unwritable.start(), std::runtime_error);
  EXPECT_TRUE(journal_.get().empty());  // no reload, no lock

  inhibitor_.refuse_reload = true;
  ShutdownManager refused(inhibitor_, pods_, options(30s, 10s));
  EXPECT_THROW(refused.start(), std::runtime_error);
  EXPECT_FALSE(inhibitor_.held());
}

TEST_F(ShutdownManagerTest, StopsRegularPodsFirstThenCriticalOnesThenReleasesTheLock) {
  pods_.pods = {makePod("web", "", 60), makePod("batch", "", 2),
                makePod("dns", "system-cluster-critical"),
                makePod("cni", "system-node-critical", 1)};
  ShutdownManager m(inhibitor_, pods_, options(10s, 4s));
  m.start();
  inhibitor_.send(true);
  ASSERT_TRUE(eventually([&] { return m.shutdownsHandled() == 1; }));
  EXPECT_TRUE(m.shuttingDown());
  EXPECT_EQ(m.notReadyMessage(), "node is shutting down");
  EXPECT_GE(changes_.load(), 1);
  auto [reason, message] = m.admit(makePod("late"));
  EXPECT_EQ(reason, "NodeShutdown");
  EXPECT_EQ(message, "Pod was rejected as the node is shutting down.");
  EXPECT_FALSE(inhibitor_.held());

  // Regular pods both stopped before any critical one began; the lock went last.
  const int last_regular = std::max(journal_.at("killed web"), journal_.at("killed batch"));
  const int first_critical = std::min(journal_.at("kill dns"), journal_.at("kill cni"));
  ASSERT_GE(journal_.at("killed web"), 0);
  ASSERT_GE(journal_.at("killed batch"), 0);
  ASSERT_GE(first_critical, 0);
  EXPECT_LT(last_regular, first_critical);
  EXPECT_LT(journal_.at("acquire"), journal_.at("kill web"));
  // The Node Event came first, before any pod was stopped.
  const int event = journal_.at("event Shutdown: Shutdown manager detected shutdown event");
  ASSERT_GE(event, 0);
  EXPECT_LT(event, journal_.at("kill web"));
  const int release = journal_.at("release");
  EXPECT_GT(release, journal_.at("killed dns"));
  EXPECT_GT(release, journal_.at("killed cni"));

  auto graces = pods_.gracesSeen();
  EXPECT_EQ(graces["web"], 6s);    // capped at 10 s - 4 s
  EXPECT_EQ(graces["batch"], 2s);  // its own, shorter
  EXPECT_EQ(graces["dns"], 4s);
  EXPECT_EQ(graces["cni"], 1s);
  for (const char* name : {"web", "batch", "dns", "cni"}) {
    const PodStatus& s = pods_.statuses[name];
    EXPECT_EQ(s.phase(), "Failed") << name;
    EXPECT_EQ(s.reason(), "Terminated") << name;
    ASSERT_NE(condition(s, "DisruptionTarget"), nullptr) << name;
  }
}

TEST_F(ShutdownManagerTest, AGroupOutOfBudgetLetsTheNextOneStart) {
  pods_.pods = {makePod("slow-web"), makePod("dns", "system-node-critical")};
  ShutdownManager m(inhibitor_, pods_, options(2s, 1s));
  m.start();
  const auto began = std::chrono::steady_clock::now();
  inhibitor_.send(true);
  ASSERT_TRUE(eventually([&] { return m.shutdownsHandled() == 1; }));
  const auto took = std::chrono::steady_clock::now() - began;
  // The regular group's 1 s ran out; the critical pod was stopped and the lock released while
  // the slow pod was still stopping.
  EXPECT_GE(took, 1s);
  EXPECT_LT(took, 5s);
  EXPECT_GE(journal_.at("killed dns"), 0);
  EXPECT_GE(journal_.at("release"), 0);
  EXPECT_EQ(journal_.at("killed slow-web"), -1);
  EXPECT_TRUE(logged("did not stop within 1s"));
  pods_.letSlowGo();
  m.stop();  // joins the slow kill
  EXPECT_GE(journal_.at("killed slow-web"), 0);
}

TEST_F(ShutdownManagerTest, ACancelledShutdownTakesTheLockAgain) {
  ShutdownManager m(inhibitor_, pods_, options(10s, 0s));
  m.start();
  inhibitor_.send(true);
  ASSERT_TRUE(eventually([&] { return m.shutdownsHandled() == 1; }));
  EXPECT_FALSE(inhibitor_.held());
  inhibitor_.send(false);
  ASSERT_TRUE(eventually([&] { return inhibitor_.held(); }));
  EXPECT_FALSE(m.shuttingDown());
  EXPECT_EQ(m.notReadyMessage(), "");
  EXPECT_EQ(journal_.get(),
            (std::vector<std::string>{
                "acquire", "event Shutdown: Shutdown manager detected shutdown event", "release",
                "event Shutdown: Shutdown manager detected shutdown cancellation", "acquire"}));
}

// The agent with hollow pods on a real apiserver: the Node goes NotReady, the pods Failed with
// the shutdown's reason, and a pod created afterwards is rejected.
class AgentShutdownTest : public ::testing::Test {
 protected:
  AgentShutdownTest()
      : server_(client::testing::ServerMode::kPlain),
        client_(server_.client()),
        syncer_(HollowPodSyncerOptions{.pod_cidr = [] { return std::string("10.244.0.0/24"); },
                                       .host_ip = [] { return std::string("192.0.2.10"); }}) {}

  AgentOptions options() {
    AgentOptions o = testing::agentOptions("hollow://test", 50ms);
    o.node_status_update_frequency = 10s;  // only the shutdown's request posts early
    o.shutdown_grace_period = 10s;
    o.shutdown_grace_period_critical_pods = 3s;
    o.shutdown_inhibitor = [this]() -> ShutdownInhibitorPtr {
      auto fake = std::make_unique<FakeInhibitor>(journal_);
      inhibitor_ = fake.get();
      return fake;
    };
    return o;
  }
  Pod apiPod(const std::string& name) { return client::get<Pod>(*client_, "default", name); }
  const api::core::v1::NodeCondition* ready(const Node& node) {
    for (const auto& c : node.status().conditions())
      if (c.type() == "Ready") return &c;
    return nullptr;
  }

  client::testing::TestApiServer server_;
  client::ClientPtr client_;
  HollowPodSyncer syncer_;
  Journal journal_;
  FakeInhibitor* inhibitor_ = nullptr;
};

TEST_F(AgentShutdownTest, NodeNotReadyPodsFailedAndNewPodsRejected) {
  Agent agent(*client_, syncer_, options());
  ASSERT_TRUE(agent.start());
  ASSERT_NE(inhibitor_, nullptr);
  ASSERT_NE(agent.shutdownManager(), nullptr);
  EXPECT_TRUE(inhibitor_->held());
  for (const auto& pod : {makePod("web", "", 5), makePod("dns", "system-node-critical")}) {
    Pod p = pod;
    p.mutable_metadata()->clear_uid();
    client::create(*client_, p);
  }
  ASSERT_TRUE(eventually([&] {
    return apiPod("web").status().phase() == "Running" &&
           apiPod("dns").status().phase() == "Running";
  }));

  inhibitor_->send(true);
  ASSERT_TRUE(eventually([&] { return agent.shutdownManager()->shutdownsHandled() == 1; }));
  EXPECT_FALSE(inhibitor_->held());
  for (const char* name : {"web", "dns"}) {
    Pod p = apiPod(name);
    EXPECT_EQ(p.status().phase(), "Failed") << name;
    EXPECT_EQ(p.status().reason(), "Terminated") << name;
    EXPECT_EQ(p.status().message(), "Pod was terminated in response to imminent node shutdown.");
    const auto* target = condition(p.status(), "DisruptionTarget");
    ASSERT_NE(target, nullptr) << name;
    EXPECT_EQ(target->status(), "True");
    EXPECT_EQ(target->reason(), "TerminationByKubelet");
  }
  EXPECT_EQ(syncer_.runningPods(), 0u);
  // The kubelet's Node Event.
  agent.events().flush();
  int shutdown_events = 0;
  for (const auto& e : client::list<api::core::v1::Event>(*client_, "default")) {
    if (e.involved_object().kind() != "Node" || e.reason() != "Shutdown") continue;
    ++shutdown_events;
    EXPECT_EQ(e.involved_object().name(), "node-1");
    EXPECT_EQ(e.involved_object().uid(), "node-1");
    EXPECT_EQ(e.type(), "Normal");
    EXPECT_EQ(e.message(), "Shutdown manager detected shutdown event");
    EXPECT_EQ(e.source().component(), "kubelet");
    EXPECT_EQ(e.source().host(), "node-1");
  }
  EXPECT_EQ(shutdown_events, 1);
  // The node's Ready condition, posted at once (the update period is 10 s).
  ASSERT_TRUE(eventually(
      [&] {
        const Node node = client::get<Node>(*client_, "", "node-1");
        const auto* c = ready(node);
        return c != nullptr && c->status() == "False";
      },
      5s));
  const Node node = client::get<Node>(*client_, "", "node-1");
  const auto* c = ready(node);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->reason(), "KubeletNotReady");
  EXPECT_EQ(c->message(), "node is shutting down");

  // A pod bound here now does not start.
  Pod late = makePod("late");
  late.mutable_metadata()->clear_uid();
  client::create(*client_, late);
  ASSERT_TRUE(eventually([&] { return apiPod("late").status().phase() == "Failed"; }));
  EXPECT_EQ(apiPod("late").status().reason(), "NodeShutdown");
  EXPECT_EQ(apiPod("late").status().message(), "Pod was rejected as the node is shutting down.");
  EXPECT_EQ(syncer_.runningPods(), 0u);
  agent.stop();
}

TEST_F(AgentShutdownTest, WithoutAnInhibitorTheAgentRunsOn) {
  AgentOptions o = options();
  o.shutdown_inhibitor = []() -> ShutdownInhibitorPtr {
    throw std::runtime_error("no systemd-logind on the system D-Bus");
  };
  Agent agent(*client_, syncer_, o);
  ASSERT_TRUE(agent.start());
  EXPECT_EQ(agent.shutdownManager(), nullptr);
  Pod p = makePod("web");
  p.mutable_metadata()->clear_uid();
  client::create(*client_, p);
  ASSERT_TRUE(eventually([&] { return apiPod("web").status().phase() == "Running"; }));
  agent.stop();
}

}  // namespace
}  // namespace skiff::kubelet
