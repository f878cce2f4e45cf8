#include "control/client/leader_election.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "control/client/typed.h"
#include "skiff/api/coordination_v1.pb.h"
#include "tests/control/client/test_server.h"

namespace skiff::client {
namespace {

using namespace std::chrono_literals;
using testing::ServerMode;
using testing::TestApiServer;

// A Client that can be cut off from the server (every call fails as unreachable), to play a
// leader that stops renewing.
class CuttableClient : public Client {
 public:
  explicit CuttableClient(Client& inner) : inner_(inner) {}
  void cut(bool on) { cut_ = on; }

  api::Value get(const api::ResourceType& t, std::string_view ns, std::string_view n) override {
    check();
    return inner_.get(t, ns, n);
  }
  api::Value list(const api::ResourceType& t, std::string_view ns, const ListOptions& o) override {
    check();
    return inner_.list(t, ns, o);
  }
  api::Value create(const api::ResourceType& t, std::string_view ns, const api::Value& v,
                    const WriteOptions& o) override {
    check();
    return inner_.create(t, ns, v, o);
  }
  api::Value update(const api::ResourceType& t, std::string_view ns, const api::Value& v,
                    const WriteOptions& o) override {
    check();
    return inner_.update(t, ns, v, o);
  }
  api::Value updateStatus(const api::ResourceType& t, std::string_view ns, const api::Value& v,
                          const WriteOptions& o) override {
    check();
    return inner_.updateStatus(t, ns, v, o);
  }
  api::Value patch(const api::ResourceType& t, std::string_view ns, std::string_view n, PatchType p,
                   std::string_view b, const WriteOptions& o, std::string_view s) override {
    check();
    return inner_.patch(t, ns, n, p, b, o, s);
  }
  api::Value remove(const api::ResourceType& t, std::string_view ns, std::string_view n,
                    const DeleteOptions& o) override {
    check();
    return inner_.remove(t, ns, n, o);
  }
  api::Value removeCollection(const api::ResourceType& t, std::string_view ns, const ListOptions& l,
                              const DeleteOptions& o) override {
    check();
    return inner_.removeCollection(t, ns, l, o);
  }
  WatchStreamPtr watch(const api::ResourceType& t, std::string_view ns,
                       const WatchOptions& o) override {
    check();
    return inner_.watch(t, ns, o);
  }
  api::Value getScale(const api::ResourceType& t, std::string_view ns,
                      std::string_view n) override {
    check();
    return inner_.getScale(t, ns, n);
  }
  api::Value updateScale(const api::ResourceType& t, std::string_view ns,
                         const api::Value& s) override {
    check();
    return inner_.updateScale(t, ns, s);
  }
  void bind(std::string_view ns, std::string_view p, std::string_view n) override {
    check();
    inner_.bind(ns, p, n);
  }
  RawResponse raw(const RawRequest& r) override {
    check();
    return inner_.raw(r);
  }
  std::vector<std::string> lastWarnings() const override { return inner_.lastWarnings(); }

 private:
  void check() const {
    if (cut_) throw ApiError(0, "", "cannot reach the server: cut off by the test");
  }
  Client& inner_;
  std::atomic<bool> cut_{false};
};

struct Candidate {
  Candidate(Client& server_client, const std::string& id)
      : client(server_client),
        elector(client, LeaderElectionConfig{
                            .lease_name = "skiff-test",
                            .identity = id,
                            .lease_duration = 1000ms,
                            .renew_deadline = 500ms,
                            .retry_period = 100ms,
                            .on_started_leading =
                                [this](std::stop_token stop) {
                                  ++started;
                                  while (!stop.stop_requested())
                                    std::this_thread::sleep_for(5ms);
                                  ++work_stopped;
                                },
                            .on_stopped_leading = [this] { ++stopped; },
                        }) {}
  CuttableClient client;
  std::atomic<int> started{0};
  std::atomic<int> work_stopped{0};
  std::atomic<int> stopped{0};
  LeaderElector elector;
};

class LeaderElectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 3; ++i) {
      clients_.push_back(server_.client());
      candidates_.push_back(std::make_unique<Candidate>(*clients_.back(), "c" + std::to_string(i)));
    }
  }
  void TearDown() override {
    stop_sampling_ = true;
    if (sampler_.joinable()) sampler_.join();
    candidates_.clear();
    EXPECT_EQ(overlaps_.load(), 0) << "two candidates led at once";
  }

  // Samples every few milliseconds that at most one candidate believes it leads.
  void startSampling() {
    sampler_ = std::thread([this] {
      while (!stop_sampling_) {
        int leaders = 0;
        for (auto& c : candidates_)
          leaders += c->elector.isLeader() ? 1 : 0;
        if (leaders > 1) ++overlaps_;
        std::this_thread::sleep_for(2ms);
      }
    });
  }

  // The one leader once exactly one leads (and stays so for a moment), or -1.
  int waitForLeader(int not_this = -1, std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int leader = -1;
      int count = 0;
      for (int i = 0; i < static_cast<int>(candidates_.size()); ++i) {
        if (candidates_[i]->elector.isLeader()) {
          leader = i;
          ++count;
        }
      }
      if (count == 1 && leader != not_this) return leader;
      std::this_thread::sleep_for(10ms);
    }
    return -1;
  }

  TestApiServer server_{ServerMode::kPlain};
  std::vector<ClientPtr> clients_;
  std::vector<std::unique_ptr<Candidate>> candidates_;
  std::thread sampler_;
  std::atomic<bool> stop_sampling_{false};
  std::atomic<int> overlaps_{0};
};

TEST_F(LeaderElectionTest, ExactlyOneLeadsAndEveryoneKnowsWho) {
  startSampling();
  for (auto& c : candidates_)
    c->elector.start();
  int leader = waitForLeader();
  ASSERT_GE(leader, 0);
  std::this_thread::sleep_for(600ms);  // several renewals later, still the same one
  EXPECT_EQ(waitForLeader(), leader);
  std::string id = "c" + std::to_string(leader);
  auto deadline = std::chrono::steady_clock::now() + 5s;
  for (auto& c : candidates_) {
    while (c->elector.leader() != id && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(10ms);
    EXPECT_EQ(c->elector.leader(), id);
  }
  EXPECT_EQ(candidates_[leader]->started.load(), 1);

  auto lease = get<api::coordination::v1::Lease>(*clients_[0], "kube-system", "skiff-test");
  EXPECT_EQ(lease.spec().holder_identity(), id);
  EXPECT_EQ(lease.spec().lease_duration_seconds(), 1);
}

TEST_F(LeaderElectionTest, AnotherTakesOverAtOnceWhenTheLeaderStopsAndReleases) {
  startSampling();
  for (auto& c : candidates_)
    c->elector.start();
  int first = waitForLeader();
  ASSERT_GE(first, 0);
  auto start = std::chrono::steady_clock::now();
  candidates_[first]->elector.stop();
  EXPECT_FALSE(candidates_[first]->elector.isLeader());
  EXPECT_EQ(candidates_[first]->work_stopped.load(), 1);  // its work saw the stop token
  EXPECT_EQ(candidates_[first]->stopped.load(), 1);
  int second = waitForLeader(first);
  ASSERT_GE(second, 0);
  // Released: no need to wait out the 1 s lease.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 900ms);

  auto lease = get<api::coordination::v1::Lease>(*clients_[0], "kube-system", "skiff-test");
  EXPECT_EQ(lease.spec().holder_identity(), "c" + std::to_string(second));
  EXPECT_GE(lease.spec().lease_transitions(), 1);
}

TEST_F(LeaderElectionTest, ALeaderThatStopsRenewingLosesTheLeaseAfterItsDuration) {
  startSampling();
  for (auto& c : candidates_)
    c->elector.start();
  int first = waitForLeader();
  ASSERT_GE(first, 0);
  auto cut_at = std::chrono::steady_clock::now();
  candidates_[first]->client.cut(true);
  int second = waitForLeader(first);
  ASSERT_GE(second, 0);
  auto took = std::chrono::steady_clock::now() - cut_at;
  // Not before the lease ran out on the others' clocks (1 s), but soon after.
  EXPECT_GE(took, 800ms);
  EXPECT_LT(took, 3s);
  // The cut-off leader gave up by itself once its renew deadline passed.
  EXPECT_FALSE(candidates_[first]->elector.isLeader());
  EXPECT_EQ(candidates_[first]->stopped.load(), 1);
  EXPECT_EQ(candidates_[first]->work_stopped.load(), 1);

  // Back online, it campaigns again but the new leader keeps the lease.
  candidates_[first]->client.cut(false);
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(waitForLeader(), second);
}

TEST(LeaderElection, RejectsBadConfigs) {
  TestApiServer server(ServerMode::kPlain);
  ClientPtr client = server.client();
  EXPECT_THROW(LeaderElector(*client, {.lease_name = "x"}), std::invalid_argument);
  EXPECT_THROW(
      LeaderElector(
          *client,
          {.lease_name = "x", .identity = "me", .lease_duration = 1s, .renew_deadline = 2s}),
      std::invalid_argument);
}

}  // namespace
}  // namespace skiff::client
