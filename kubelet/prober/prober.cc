#include "kubelet/prober/prober.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace skiff::kubelet::prober {
namespace core = api::core::v1;
namespace {

using Ms = std::chrono::milliseconds;

int orDefault(bool has, int value, int fallback) {
  return has && value > 0 ? value : fallback;
}

// Connects to host:port within `timeout`; returns the socket or -1 with `error` set.
int connectWithin(const std::string& host, int port, Ms timeout, std::string& error) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int gai = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (gai != 0) {
    error = "cannot resolve " + host + ": " + ::gai_strerror(gai);
    return -1;
  }
  const int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    ::freeaddrinfo(res);
    return -1;
  }
  int rc = ::connect(fd, res->ai_addr, res->ai_addrlen);
  ::freeaddrinfo(res);
  const std::string where = host + ":" + std::to_string(port);
  if (rc != 0 && errno != EINPROGRESS) {
    error = "dial tcp " + where + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  if (rc != 0) {
    pollfd p{fd, POLLOUT, 0};
    rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
    int so_error = 0;
    socklen_t len = sizeof so_error;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
    if (rc <= 0 || so_error != 0) {
      error = "dial tcp " + where + ": " +
              (rc <= 0 ? std::string("i/o timeout") : std::string(std::strerror(so_error)));
      ::close(fd);
      return -1;
    }
  }
  return fd;
}

ProbeOutcome tcpCheck(const std::string& host, int port, Ms timeout) {
  std::string error;
  const int fd = connectWithin(host, port, timeout, error);
  if (fd < 0) return {false, error};
  ::close(fd);
  return {true, {}};
}

ProbeOutcome httpCheck(const core::HTTPGetAction& action, const std::string& host, int port,
                       Ms timeout) {
  if (!action.scheme().empty() && action.scheme() != "HTTP") {
    return {false, "httpGet scheme " + action.scheme() + " is not supported by this kubelet"};
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string error;
  const int fd = connectWithin(host, port, timeout, error);
  if (fd < 0) return {false, "Get \"http://" + host + ":" + std::to_string(port) + "\": " + error};
  std::string path = action.path().empty() ? "/" : action.path();
  if (path[0] != '/') path = "/" + path;
  std::string request = "GET " + path + " HTTP/1.1\r\n";
  bool has_host = false, has_agent = false;
  std::string headers;
  for (const auto& h : action.http_headers()) {
    has_host = has_host || strcasecmp(h.name().c_str(), "Host") == 0;
    has_agent = has_agent || strcasecmp(h.name().c_str(), "User-Agent") == 0;
    headers += h.name() + ": " + h.value() + "\r\n";
  }
  if (!has_host) request += "Host: " + host + ":" + std::to_string(port) + "\r\n";
  if (!has_agent) request += "User-Agent: kube-probe/1.32\r\n";
  request += headers + "Accept: */*\r\nConnection: close\r\n\r\n";
  std::string answer;
  size_t sent = 0;
  bool failed = false;
  while (!failed) {
    const auto left =
        std::chrono::duration_cast<Ms>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      error = "timeout awaiting response headers";
      failed = true;
      break;
    }
    pollfd p{fd, static_cast<short>(sent < request.size() ? POLLOUT : POLLIN), 0};
    const int n = ::poll(&p, 1, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    if (sent < request.size()) {
      const ssize_t w = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (w < 0) {
        error = std::string("write: ") + std::strerror(errno);
        failed = true;
      } else {
        sent += static_cast<size_t>(w);
      }
      continue;
    }
    char buf[1024];
    const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (r <= 0) break;
    answer.append(buf, static_cast<size_t>(r));
    if (answer.find("\r\n") != std::string::npos) break;
  }
  ::close(fd);
  const std::string url = "http://" + host + ":" + std::to_string(port) + path;
  if (failed) return {false, "Get \"" + url + "\": " + error};
  // "HTTP/1.1 200 OK"
  int code = 0;
  if (answer.starts_with("HTTP/") && answer.size() > 12) {
    code = std::atoi(answer.c_str() + answer.find(' ') + 1);
  }
  if (code == 0) return {false, "Get \"" + url + "\": malformed HTTP response"};
  if (code >= 200 && code < 400) return {true, {}};
  return {false, "HTTP probe failed with statuscode: " + std::to_string(code)};
}

// Runs `fn` on a thread inside the network namespace at `netns` ("" = ours).
ProbeOutcome inNetns(const std::string& netns, const std::function<ProbeOutcome()>& fn) {
  if (netns.empty()) return fn();
  ProbeOutcome out;
  std::thread t([&] {
    const int fd = ::open(netns.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
      out = {false, "cannot enter network namespace " + netns + ": " + std::strerror(errno)};
      if (fd >= 0) ::close(fd);
      return;
    }
    ::close(fd);
    out = fn();
  });
  t.join();
  return out;
}

}  // namespace

const char* probeKindName(ProbeKind kind) {
  switch (kind) {
    case ProbeKind::kLiveness:
      return "Liveness";
    case ProbeKind::kReadiness:
      return "Readiness";
    case ProbeKind::kStartup:
      return "Startup";
  }
  return "Unknown";
}

std::optional<int> resolvePort(const api::runtime::IntOrString& port,
                               const core::Container* container) {
  if (port.type() == api::runtime::IntOrString::INT) return port.int_val();
  const std::string& name = port.str_val();
  if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit)) return std::stoi(name);
  if (container != nullptr) {
    for (const auto& p : container->ports()) {
      if (p.name() == name) return p.container_port();
    }
  }
  return std::nullopt;
}

ProbeOutcome ActionProber::run(const core::Probe& probe, const ProbeTarget& target) {
  const Ms timeout(1000 * orDefault(probe.has_timeout_seconds(), probe.timeout_seconds(), 1));
  try {
    if (probe.has_exec()) {
      const std::vector<std::string> argv(probe.exec().command().begin(),
                                          probe.exec().command().end());
      const ExecResult r = runtime_.exec(target.container_id, argv, timeout);
      if (r.timed_out) {
        return {false, "command timed out after " + std::to_string(timeout.count() / 1000) + "s"};
      }
      if (r.exit_code == 0) return {true, {}};
      return {false, "command exited with " + std::to_string(r.exit_code) +
                         (r.output.empty() ? "" : ": " + r.output)};
    }
    if (probe.has_http_get() || probe.has_tcp_socket()) {
      const auto& port_field =
          probe.has_http_get() ? probe.http_get().port() : probe.tcp_socket().port();
      const std::optional<int> port = resolvePort(port_field, target.container);
      if (!port || *port <= 0 || *port > 65535) {
        return {false, "port \"" + port_field.str_val() + "\" names no containerPort"};
      }
      const std::string& given =
          probe.has_http_get() ? probe.http_get().host() : probe.tcp_socket().host();
      const std::string host = given.empty() ? target.pod_ip : given;
      if (host.empty()) return {false, "the pod has no IP yet"};
      return inNetns(target.netns_path, [&] {
        return probe.has_http_get() ? httpCheck(probe.http_get(), host, *port, timeout)
                                    : tcpCheck(host, *port, timeout);
      });
    }
    if (probe.has_grpc()) return {false, "grpc probes are not supported by this kubelet"};
    return {false, "the probe has no handler (exec, httpGet or tcpSocket)"};
  } catch (const std::exception& e) {
    return {false, e.what()};
  }
}

ProbeTracker::ProbeTracker(core::Probe probe, ProbeKind kind, Clock::time_point container_started)
    : probe_(std::move(probe)), kind_(kind) {
  next_due_ = container_started + std::chrono::seconds(std::max(0, probe_.initial_delay_seconds()));
  result_ = kind == ProbeKind::kLiveness    ? ProbeResult::kSuccess
            : kind == ProbeKind::kReadiness ? ProbeResult::kFailure
                                            : ProbeResult::kUnknown;
}

std::chrono::milliseconds ProbeTracker::timeout() const {
  return Ms(1000 * orDefault(probe_.has_timeout_seconds(), probe_.timeout_seconds(), 1));
}

void ProbeTracker::record(bool success, Clock::time_point now) {
  const int success_threshold =
      orDefault(probe_.has_success_threshold(), probe_.success_threshold(), 1);
  const int failure_threshold =
      orDefault(probe_.has_failure_threshold(), probe_.failure_threshold(), 3);
  if (success) {
    failures_ = 0;
    if (++successes_ >= success_threshold) result_ = ProbeResult::kSuccess;
  } else {
    successes_ = 0;
    if (++failures_ >= failure_threshold) result_ = ProbeResult::kFailure;
  }
  next_due_ = now + std::chrono::seconds(
                        orDefault(probe_.has_period_seconds(), probe_.period_seconds(), 10));
}

}  // namespace skiff::kubelet::prober
