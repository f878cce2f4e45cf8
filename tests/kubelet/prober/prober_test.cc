// ProbeTracker's schedule and thresholds, and ActionProber's checks against real sockets on
// loopback (httpGet status codes, headers and timeouts, tcpSocket, named ports) and exec through
// a runtime fake.

#include "kubelet/prober/prober.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "control/api/codec.h"

namespace skiff::kubelet::prober {
namespace {
namespace core = api::core::v1;
using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

core::Probe probe(const std::string& yaml) {
  core::Probe p;
  api::decodeYaml(yaml, p);
  return p;
}

TEST(ProbeTrackerTest, InitialResultsDelayPeriodAndThresholds) {
  const Clock::time_point t0 = Clock::now();
  ProbeTracker readiness(probe("{initialDelaySeconds: 5, periodSeconds: 2, successThreshold: 2}"),
                         ProbeKind::kReadiness, t0);
  EXPECT_EQ(readiness.result(), ProbeResult::kFailure);
  EXPECT_FALSE(readiness.due(t0 + 4s));
  EXPECT_TRUE(readiness.due(t0 + 5s));
  readiness.record(true, t0 + 5s);
  EXPECT_EQ(readiness.result(), ProbeResult::kFailure);  // one of two successes
  EXPECT_EQ(readiness.nextDue(), t0 + 7s);
  readiness.record(true, t0 + 7s);
  EXPECT_EQ(readiness.result(), ProbeResult::kSuccess);
  // Three failures (the default threshold) in a row to flip back; a success resets the count.
  readiness.record(false, t0 + 9s);
  readiness.record(false, t0 + 11s);
  readiness.record(true, t0 + 13s);
  readiness.record(false, t0 + 15s);
  readiness.record(false, t0 + 17s);
  EXPECT_EQ(readiness.result(), ProbeResult::kSuccess);
  readiness.record(false, t0 + 19s);
  EXPECT_EQ(readiness.result(), ProbeResult::kFailure);

  ProbeTracker liveness(probe("{failureThreshold: 1}"), ProbeKind::kLiveness, t0);
  EXPECT_EQ(liveness.result(), ProbeResult::kSuccess);
  EXPECT_TRUE(liveness.due(t0));
  liveness.record(false, t0);
  EXPECT_EQ(liveness.result(), ProbeResult::kFailure);
  EXPECT_EQ(liveness.nextDue(), t0 + 10s);  // the default period
  EXPECT_EQ(liveness.timeout(), 1s);

  ProbeTracker startup(probe("{timeoutSeconds: 3}"), ProbeKind::kStartup, t0);
  EXPECT_EQ(startup.result(), ProbeResult::kUnknown);
  EXPECT_EQ(startup.timeout(), 3s);
}

// A loopback HTTP server answering each connection with `status`, after `delay`.
class HttpServer {
 public:
  HttpServer(int status, std::chrono::milliseconds delay = 0ms) : status_(status), delay_(delay) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    ::listen(fd_, 8);
    thread_ = std::thread([this] {
      while (true) {
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0 || stop_) {
          if (c >= 0) ::close(c);
          return;
        }
        char buf[4096];
        const ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n > 0) last_request_.assign(buf, static_cast<size_t>(n));
        std::this_thread::sleep_for(delay_);
        const std::string answer =
            "HTTP/1.1 " + std::to_string(status_) + " X\r\nContent-Length: 0\r\n\r\n";
        ::send(c, answer.data(), answer.size(), MSG_NOSIGNAL);
        ::close(c);
      }
    });
  }
  ~HttpServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  std::string lastRequest() const { return last_request_; }

 private:
  int status_;
  std::chrono::milliseconds delay_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::string last_request_;
  std::thread thread_;
};

class NoRuntime final : public ContainerRuntime {
 public:
  void create(const ContainerConfig&) override {}
  void start(const std::string&) override {}
  ContainerStatus status(const std::string& id) override { return {.id = id}; }
  void kill(const std::string&, int) override {}
  ContainerStatus stop(const std::string& id, std::chrono::milliseconds, int) override {
    return {.id = id};
  }
  void remove(const std::string&) override {}
  std::vector<std::string> list() override { return {}; }
  ExecResult exec(const std::string& id, const std::vector<std::string>& argv,
                  std::chrono::milliseconds timeout) override {
    last_id = id;
    last_argv = argv;
    last_timeout = timeout;
    if (argv.at(0) == "hang") return {.exit_code = 137, .timed_out = true};
    if (argv.at(0) == "fail") return {.exit_code = 1, .output = "not yet"};
    return {.exit_code = 0};
  }
  std::string last_id;
  std::vector<std::string> last_argv;
  std::chrono::milliseconds last_timeout{0};
};

TEST(ActionProberTest, HttpGetStatusCodesHeadersAndTimeouts) {
  NoRuntime runtime;
  ActionProber prober(runtime);
  const ProbeTarget target{"127.0.0.1", "", "c1", nullptr};
  {
    HttpServer ok(204);
    const ProbeOutcome o =
        prober.run(probe("{httpGet: {path: /healthz, port: " + std::to_string(ok.port()) +
                         ", httpHeaders: [{name: X-Probe, value: yes}]}}"),
                   target);
    EXPECT_TRUE(o.success) << o.message;
    EXPECT_TRUE(ok.lastRequest().starts_with("GET /healthz HTTP/1.1\r\n")) << ok.lastRequest();
    EXPECT_NE(ok.lastRequest().find("X-Probe: yes\r\n"), std::string::npos);
    EXPECT_NE(ok.lastRequest().find("User-Agent: kube-probe/"), std::string::npos);
  }
  {
    HttpServer redirect(302);
    EXPECT_TRUE(
        prober.run(probe("{httpGet: {port: " + std::to_string(redirect.port()) + "}}"), target)
            .success);
  }
  {
    HttpServer broken(500);
    const ProbeOutcome o =
        prober.run(probe("{httpGet: {port: " + std::to_string(broken.port()) + "}}"), target);
    EXPECT_FALSE(o.success);
    EXPECT_EQ(o.message, "HTTP probe failed with statuscode: 500");
  }
  {
    HttpServer slow(200, 1500ms);
    const auto t0 = std::chrono::steady_clock::now();
    const ProbeOutcome o = prober.run(
        probe("{timeoutSeconds: 1, httpGet: {port: " + std::to_string(slow.port()) + "}}"), target);
    EXPECT_FALSE(o.success);
    EXPECT_NE(o.message.find("timeout"), std::string::npos) << o.message;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1400ms);
  }
}

TEST(ActionProberTest, TcpSocketNamedPortsAndExec) {
  NoRuntime runtime;
  ActionProber prober(runtime);
  HttpServer server(200);
  core::Container c;
  api::decodeYaml(
      "name: web\nports: [{name: http, containerPort: " + std::to_string(server.port()) + "}]\n",
      c);
  const ProbeTarget target{"127.0.0.1", "", "c1", &c};
  EXPECT_TRUE(prober.run(probe("{tcpSocket: {port: http}}"), target).success);
  EXPECT_TRUE(prober.run(probe("{httpGet: {port: http}}"), target).success);
  const ProbeOutcome unnamed = prober.run(probe("{tcpSocket: {port: grpc}}"), target);
  EXPECT_FALSE(unnamed.success);
  EXPECT_NE(unnamed.message.find("grpc"), std::string::npos);

  // A port nothing listens on: connection refused.
  const ProbeOutcome refused = prober.run(probe("{tcpSocket: {port: 1}}"), target);
  EXPECT_FALSE(refused.success);
  EXPECT_NE(refused.message.find("dial tcp 127.0.0.1:1"), std::string::npos) << refused.message;

  const ProbeOutcome exec_ok =
      prober.run(probe("{timeoutSeconds: 2, exec: {command: [cat, /tmp/healthy]}}"), target);
  EXPECT_TRUE(exec_ok.success);
  EXPECT_EQ(runtime.last_id, "c1");
  EXPECT_EQ(runtime.last_argv, (std::vector<std::string>{"cat", "/tmp/healthy"}));
  EXPECT_EQ(runtime.last_timeout, 2s);
  const ProbeOutcome exec_fail = prober.run(probe("{exec: {command: [fail]}}"), target);
  EXPECT_FALSE(exec_fail.success);
  EXPECT_EQ(exec_fail.message, "command exited with 1: not yet");
  EXPECT_FALSE(prober.run(probe("{exec: {command: [hang]}}"), target).success);
  EXPECT_FALSE(prober.run(probe("{}"), target).success);  // no handler
}

}  // namespace
}  // namespace skiff::kubelet::prober
