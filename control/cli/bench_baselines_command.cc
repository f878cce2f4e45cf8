#include "control/cli/bench_baselines_command.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "control/cli/bench_report.h"
#include "control/cli/bench_store_command.h"

#if SKIFF_WITH_EBPF
#include "dataplane/service.h"
#include "ebpf/cgroup.h"
#include "ebpf/ebpf_dataplane.h"
#endif

namespace skiff::cli {
namespace baselines {

std::string ipv4(uint32_t v) {
  return std::to_string(v >> 24) + "." + std::to_string((v >> 16) & 255) + "." +
         std::to_string((v >> 8) & 255) + "." + std::to_string(v & 255);
}

uint32_t clusterIp(int service) {
  return 0x0a600000u + static_cast<uint32_t>(service) + 1;  // 10.96.0.0/12
}

uint32_t endpointIp(const ServiceSet& set, int service, int endpoint) {
  const uint32_t generation = set.generation[static_cast<size_t>(service)];
  if (endpoint == 0 && generation > 0) return 0x0af00000u + generation;  // 10.240.0.0/12
  return 0x0ae00000u +
         static_cast<uint32_t>(service) * static_cast<uint32_t>(set.endpointsPerService) +
         static_cast<uint32_t>(endpoint) + 1;  // 10.224.0.0/12
}

std::string serviceName(int service) {
  return "svc-" + std::to_string(service);
}

namespace {

// kube-proxy's portProtoHash: base32 of a SHA-256, cut to 16 characters. FNV-1a (twice, for 80
// bits) gives names of the same shape and length.
std::string hashName(std::string_view text) {
  static constexpr char kBase32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  uint64_t a = 0xcbf29ce484222325ull, b = 0x84222325cbf29ce4ull;
  for (unsigned char c : text) {
    a = (a ^ c) * 0x100000001b3ull;
    b = (b ^ c) * 0x100000001b3ull + 1;
  }
  std::string out;
  for (int i = 0; i < 16; ++i) {
    const uint64_t word = i < 12 ? a : b;
    const int shift = (i < 12 ? i : i - 12) * 5;
    out += kBase32[(word >> shift) & 31];
  }
  return out;
}

std::string portName(int service) {
  return "default/" + serviceName(service) + ":http";
}

std::string endpointText(uint32_t endpoint) {
  return ipv4(endpoint) + ":" + std::to_string(kEndpointPort);
}

void iptablesServiceRules(std::string& out, const ServiceSet& set, int i) {
  const std::string svc = iptablesServiceChain(i);
  const std::string name = portName(i);
  const std::string vip = ipv4(clusterIp(i));
  const int n = set.endpointsPerService;
  out += "-A " + svc + " -m comment --comment \"" + name + " cluster IP\" -m tcp -p tcp -d " + vip +
         "/32 --dport " + std::to_string(kServicePort) + " ! -s " + kEndpointRange +
         " -j KUBE-MARK-MASQ\n";
  for (int e = 0; e < n; ++e) {
    const uint32_t ep = endpointIp(set, i, e);
    out += "-A " + svc + " -m comment --comment \"" + name + " -> " + endpointText(ep) + "\"";
    if (e < n - 1) {
      char probability[32];
      std::snprintf(probability, sizeof(probability), "%0.10f", 1.0 / (n - e));
      out += std::string(" -m statistic --mode random --probability ") + probability;
    }
    out += " -j " + iptablesEndpointChain(i, ep) + "\n";
  }
}

void iptablesEndpointRules(std::string& out, int i, uint32_t ep) {
  const std::string sep = iptablesEndpointChain(i, ep);
  const std::string name = portName(i);
  out +=
      "-A " + sep + " -m comment --comment " + name + " -s " + ipv4(ep) + "/32 -j KUBE-MARK-MASQ\n";
  out += "-A " + sep + " -m comment --comment " + name +
         " -m tcp -p tcp -j DNAT --to-destination " + endpointText(ep) + "\n";
}

void iptablesServicesChain(std::string& out, const ServiceSet& set) {
  for (int i = 0; i < set.services; ++i) {
    out += "-A KUBE-SERVICES -m comment --comment \"" + portName(i) +
           " cluster IP\" -m tcp -p tcp -d " + ipv4(clusterIp(i)) + "/32 --dport " +
           std::to_string(kServicePort) + " -j " + iptablesServiceChain(i) + "\n";
  }
  out +=
      "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be "
      "the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n";
}

std::string nftName(int service) {
  return "default/" + serviceName(service) + "/tcp/http";
}

void nftServiceChain(std::string& out, const ServiceSet& set, int i) {
  const std::string chain = nftablesServiceChain(i);
  out += "add chain ip kube-proxy " + chain + "\n";
  out += "flush chain ip kube-proxy " + chain + "\n";
  out += "add rule ip kube-proxy " + chain + " ip daddr " + ipv4(clusterIp(i)) + " tcp dport " +
         std::to_string(kServicePort) + " ip saddr != " + kEndpointRange +
         " jump mark-for-masquerade\n";
  out += "add rule ip kube-proxy " + chain + " numgen random mod " +
         std::to_string(set.endpointsPerService) + " vmap { ";
  for (int e = 0; e < set.endpointsPerService; ++e) {
    if (e > 0) out += " , ";
    out += std::to_string(e) + " : goto " + nftablesEndpointChain(i, endpointIp(set, i, e));
  }
  out += " }\n";
}

void nftEndpointChain(std::string& out, int i, uint32_t ep) {
  const std::string chain = nftablesEndpointChain(i, ep);
  out += "add chain ip kube-proxy " + chain + "\n";
  out += "flush chain ip kube-proxy " + chain + "\n";
  out +=
      "add rule ip kube-proxy " + chain + " ip saddr " + ipv4(ep) + " jump mark-for-masquerade\n";
  out += "add rule ip kube-proxy " + chain + " meta l4proto tcp dnat to " + endpointText(ep) + "\n";
}

}  // namespace

std::string iptablesServiceChain(int service) {
  return "KUBE-SVC-" + hashName(portName(service) + "tcp");
}

std::string iptablesEndpointChain(int service, uint32_t endpoint) {
  return "KUBE-SEP-" + hashName(portName(service) + "tcp" + endpointText(endpoint));
}

std::string iptablesFullSync(const ServiceSet& set) {
  std::string out = "*nat\n";
  out += ":KUBE-SERVICES - [0:0]\n:KUBE-NODEPORTS - [0:0]\n:KUBE-POSTROUTING - [0:0]\n";
  out += ":KUBE-MARK-MASQ - [0:0]\n";
  for (int i = 0; i < set.services; ++i) {
    out += ":" + iptablesServiceChain(i) + " - [0:0]\n";
    for (int e = 0; e < set.endpointsPerService; ++e)
      out += ":" + iptablesEndpointChain(i, endpointIp(set, i, e)) + " - [0:0]\n";
  }
  out += "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n";
  out += "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n";
  out +=
      "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j "
      "MASQUERADE --random-fully\n";
  out += "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n";
  iptablesServicesChain(out, set);
  for (int i = 0; i < set.services; ++i) {
    iptablesServiceRules(out, set, i);
    for (int e = 0; e < set.endpointsPerService; ++e)
      iptablesEndpointRules(out, i, endpointIp(set, i, e));
  }
  out += "COMMIT\n";
  return out;
}

std::string iptablesPartialSync(const ServiceSet& set, int service, uint32_t previousEndpoint) {
  const uint32_t fresh = endpointIp(set, service, 0);
  std::string out = "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-NODEPORTS - [0:0]\n";
  out += ":" + iptablesServiceChain(service) + " - [0:0]\n";
  out += ":" + iptablesEndpointChain(service, fresh) + " - [0:0]\n";
  // The stale chain is declared (so flushed) before its -X, as kube-proxy writes it: a chain
  // that still holds rules cannot be deleted.
  out += ":" + iptablesEndpointChain(service, previousEndpoint) + " - [0:0]\n";
  iptablesServicesChain(out, set);
  iptablesServiceRules(out, set, service);
  iptablesEndpointRules(out, service, fresh);
  out += "-X " + iptablesEndpointChain(service, previousEndpoint) + "\n";
  out += "COMMIT\n";
  return out;
}

std::string nftablesServiceChain(int service) {
  return "service-" + hashName(nftName(service)).substr(0, 8) + "-" + nftName(service);
}

std::string nftablesEndpointChain(int service, uint32_t endpoint) {
  const std::string name =
      nftName(service) + "__" + ipv4(endpoint) + "/" + std::to_string(kEndpointPort);
  return "endpoint-" + hashName(name).substr(0, 8) + "-" + name;
}

std::string nftablesFullSync(const ServiceSet& set) {
  std::string out =
      "add table ip kube-proxy { comment \"rules for kube-proxy\" ; }\n"
      "flush table ip kube-proxy\n"
      "add chain ip kube-proxy mark-for-masquerade\n"
      "add rule ip kube-proxy mark-for-masquerade meta mark set meta mark or 0x4000\n"
      "add chain ip kube-proxy masquerading\n"
      "add rule ip kube-proxy masquerading meta mark and 0x4000 == 0 return\n"
      "add rule ip kube-proxy masquerading meta mark set meta mark xor 0x4000\n"
      "add rule ip kube-proxy masquerading masquerade fully-random\n"
      "add chain ip kube-proxy services\n"
      "add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; "
      "comment \"ClusterIP, ExternalIP and LoadBalancer IP traffic\" ; }\n"
      "add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips\n"
      "add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }\n"
      "add rule ip kube-proxy nat-prerouting jump services\n"
      "add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }\n"
      "add rule ip kube-proxy nat-output jump services\n"
      "add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }\n"
      "add rule ip kube-proxy nat-postrouting jump masquerading\n";
  for (int i = 0; i < set.services; ++i) {
    for (int e = 0; e < set.endpointsPerService; ++e)
      nftEndpointChain(out, i, endpointIp(set, i, e));
    nftServiceChain(out, set, i);
  }
  // The map's elements in batches of 1,000 per line (nft's parser is happier with short lines).
  for (int i = 0; i < set.services; i += 1000) {
    out += "add element ip kube-proxy service-ips { ";
    for (int j = i; j < std::min(set.services, i + 1000); ++j) {
      if (j > i) out += " , ";
      out += ipv4(clusterIp(j)) + " . tcp . " + std::to_string(kServicePort) + " : goto " +
             nftablesServiceChain(j);
    }
    out += " }\n";
  }
  return out;
}

std::string nftablesPartialSync(const ServiceSet& set, int service, const std::string& staleChain) {
  std::string out;
  nftEndpointChain(out, service, endpointIp(set, service, 0));
  nftServiceChain(out, set, service);
  if (!staleChain.empty()) out += "delete chain ip kube-proxy " + staleChain + "\n";
  return out;
}

}  // namespace baselines

namespace {

using namespace baselines;
using Clock = std::chrono::steady_clock;

// A suite that cannot run on this machine exits with this code (as automake's test drivers do).
constexpr int kCannotRunHere = 77;

std::atomic<bool> interrupted{false};

void onInterrupt(int) {
  interrupted.store(true);
}

struct Options {
  int services = 0;  // 0: 1,000 and 10,000
  int endpointsPerService = 2;
  double seconds = 0;  // per traffic figure; 0: 5 (quick: 1)
  int changes = 0;     // one-change samples; 0: 20 (quick: 5)
  int runs = 0;        // full syncs per size; 0: 3 (quick: 1)
  int threads = 2;     // client threads
  bool quick = false;
  std::string modes = "iptables-legacy,iptables-nft,nftables,ebpf";
  bool json = false;
};

double msBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string shellOutput(const std::string& command, int& status) {
  std::string out;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    status = -1;
    return "popen failed";
  }
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0)
    out.append(buffer, n);
  const int rc = ::pclose(pipe);
  status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' '))
    out.pop_back();
  return out;
}

// Runs `command` (sh -c); throws naming the command and its output when it fails.
void sh(const std::string& command) {
  int status = 0;
  const std::string out = shellOutput(command, status);
  if (status != 0) {
    throw std::runtime_error("'" + command + "' exited " + std::to_string(status) +
                             (out.empty() ? "" : ": " + out));
  }
}

bool haveCommand(const std::string& name) {
  int status = 0;
  shellOutput("command -v " + name, status);
  return status == 0;
}

int openNetns(const std::string& name) {
  const int fd = ::open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw std::runtime_error("open /run/netns/" + name + ": " + std::strerror(errno));
  }
  return fd;
}

struct ExecResult {
  int status = -1;
  std::string output;
  double ms = 0;
};

// Runs argv inside network namespace `netns` with stdin from `stdinPath`, timed from fork to
// reaped (what kube-proxy pays for each iptables-restore or nft it runs).
ExecResult execIn(const std::string& netns, const std::vector<std::string>& argv,
                  const std::string& stdinPath, const std::string& outputPath) {
  const int nsFd = openNetns(netns);
  std::vector<char*> args;
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ExecResult result;
  const auto start = Clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(nsFd);
    throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    if (::setns(nsFd, CLONE_NEWNET) != 0) _exit(120);
    const int in = ::open(stdinPath.c_str(), O_RDONLY);
    const int out = ::open(outputPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0) _exit(121);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::execvp(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.ms = msBetween(start, Clock::now());
  ::close(nsFd);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(outputPath);
  std::stringstream text;
  text << in.rdbuf();
  result.output = text.str();
  if (result.output.size() > 2000) result.output.resize(2000);
  return result;
}

// ---- topology -----------------------------------------------------------------------------

// A backend netns whose 10.224.0.0/11 is all local (AnyIP: every endpoint address of every
// service is answered by one server on 0.0.0.0:8080), and client netns wired to it by veth pairs.
class Topology {
 public:
  explicit Topology(std::string id) : id_(std::move(id)), backend_("skbl-b-" + id_) {
    sh("ip netns add " + backend_);
    sh("ip -n " + backend_ + " link set lo up");
    sh("ip -n " + backend_ + " route add local 10.224.0.0/11 dev lo table local");
  }
  ~Topology() {
    for (const std::string& ns : clients_) {
      int status = 0;
      shellOutput("ip netns del " + ns, status);
    }
    int status = 0;
    shellOutput("ip netns del " + backend_, status);
  }
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  const std::string& backend() const { return backend_; }

  // A new client netns (number `n` of this run) wired to the backend: 10.199.n.1/30 on its side,
  // routes to the endpoints and to the ClusterIP range through the backend side.
  std::string addClient(int n) {
    const std::string ns = "skbl-c" + std::to_string(n) + "-" + id_;
    const std::string here = "vc" + std::to_string(n) + "-" + id_;
    const std::string there = "vb" + std::to_string(n) + "-" + id_;
    sh("ip netns add " + ns);
    clients_.push_back(ns);
    sh("ip link add " + here + " netns " + ns + " type veth peer name " + there + " netns " +
       backend_);
    const std::string c = "ip -n " + ns + " ", b = "ip -n " + backend_ + " ";
    const std::string net = "10.199." + std::to_string(n) + ".";
    sh(c + "addr add " + net + "1/30 dev " + here);
    sh(b + "addr add " + net + "2/30 dev " + there);
    sh(c + "link set lo up");
    sh(c + "link set " + here + " up");
    sh(b + "link set " + there + " up");
    sh(c + "route add 10.224.0.0/11 via " + net + "2");
    sh(c + "route add 10.96.0.0/12 via " + net + "2");
    return ns;
  }

  void removeClient(const std::string& ns) {
    int status = 0;
    shellOutput("ip netns del " + ns, status);
    clients_.erase(std::remove(clients_.begin(), clients_.end(), ns), clients_.end());
  }

 private:
  std::string id_;
  std::string backend_;
  std::vector<std::string> clients_;
};

// ---- the HTTP server in the backend netns ---------------------------------------------------

// Answers every request with its body the local address it was reached on, so the client can
// check which endpoint the load balancer chose; closes after "Connection: close" requests.
[[noreturn]] void serve(const std::string& netns, int ready) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  const int nsFd = ::open(("/run/netns/" + netns).c_str(), O_RDONLY);
  if (nsFd < 0 || ::setns(nsFd, CLONE_NEWNET) != 0) _exit(10);
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(kEndpointPort);
  if (::bind(listener, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) != 0) _exit(11);
  if (::listen(listener, 4096) != 0) _exit(12);
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listener;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
  struct Conn {
    std::string in;
    std::string body;
  };
  std::map<int, Conn> conns;
  if (::write(ready, "r", 1) != 1) _exit(13);
  epoll_event events[256];
  char buffer[4096];
  for (;;) {
    const int n = ::epoll_wait(ep, events, 256, -1);
    for (int k = 0; k < n; ++k) {
      const int fd = events[k].data.fd;
      if (fd == listener) {
        for (;;) {
          const int c = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          sockaddr_in local{};
          socklen_t len = sizeof(local);
          ::getsockname(c, reinterpret_cast<sockaddr*>(&local), &len);
          Conn& conn = conns[c];
          conn.in.clear();
          conn.body = ipv4(ntohl(local.sin_addr.s_addr));
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.fd = c;
          ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      Conn& conn = conns[fd];
      const ssize_t got = ::read(fd, buffer, sizeof(buffer));
      bool close = got <= 0;
      if (got > 0) conn.in.append(buffer, static_cast<size_t>(got));
      for (size_t end; !close && (end = conn.in.find("\r\n\r\n")) != std::string::npos;) {
        const bool last = conn.in.find("Connection: close") < end;
        const std::string response = std::string("HTTP/1.1 200 OK\r\nContent-Length: ") +
                                     std::to_string(conn.body.size()) +
                                     (last ? "\r\nConnection: close" : "") + "\r\n\r\n" + conn.body;
        (void)!::write(fd, response.data(), response.size());
        conn.in.erase(0, end + 4);
        close = last;
      }
      if (close) {
        ::close(fd);
        conns.erase(fd);
      }
    }
  }
}

class Server {
 public:
  explicit Server(const std::string& netns) {
    int ready[2];
    if (::pipe2(ready, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ == 0) serve(netns, ready[1]);
    ::close(ready[1]);
    char r = 0;
    const bool ok = ::read(ready[0], &r, 1) == 1;
    ::close(ready[0]);
    if (!ok) throw std::runtime_error("the HTTP server in " + netns + " did not start");
  }
  ~Server() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

 private:
  pid_t pid_ = -1;
};

// ---- the load client -------------------------------------------------------------------------

struct Load {
  uint64_t requests = 0;
  uint64_t errors = 0;
  uint64_t wrongEndpoint = 0;
  double seconds = 0;
  double p50Ms = 0;
  double p99Ms = 0;
  char firstError[160] = {};
};

struct LoadSpec {
  uint32_t vip = 0;
  std::unordered_set<std::string> endpoints;  // what a right answer's body may be
  bool keepAlive = false;
  double seconds = 1;
  int threads = 2;
};

constexpr uint64_t kMaxRequestsPerThread = 2'000'000;

// One thread's closed loop: a request, its whole answer, the next.
void loadThread(const LoadSpec& spec, Clock::time_point deadline, std::vector<double>& latencies,
                Load& tally) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(kServicePort);
  sa.sin_addr.s_addr = htonl(spec.vip);
  const std::string request = std::string("GET / HTTP/1.1\r\nHost: bench\r\n") +
                              (spec.keepAlive ? "" : "Connection: close\r\n") + "\r\n";
  auto fail = [&](const char* what) {
    ++tally.errors;
    if (tally.firstError[0] == 0) {
      std::snprintf(tally.firstError, sizeof(tally.firstError), "%s: %s", what,
                    std::strerror(errno));
    }
  };
  auto open = [&]() -> int {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const timeval timeout{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) != 0) {
      fail("connect");
      ::close(fd);
      return -1;
    }
    return fd;
  };
  int fd = -1;
  std::string answer;
  char buffer[1024];
  for (uint64_t i = 0; i < kMaxRequestsPerThread && !interrupted.load(); ++i) {
    const auto start = Clock::now();
    if (start >= deadline) break;
    if (fd < 0 && (fd = open()) < 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    if (::write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
      fail("write");
      ::close(fd);
      fd = -1;
      continue;
    }
    answer.clear();
    bool complete = false;
    for (;;) {
      const ssize_t got = ::read(fd, buffer, sizeof(buffer));
      if (got <= 0) {
        complete = !spec.keepAlive && got == 0;
        break;
      }
      answer.append(buffer, static_cast<size_t>(got));
      const size_t head = answer.find("\r\n\r\n");
      if (spec.keepAlive && head != std::string::npos) {
        const size_t at = answer.find("Content-Length: ");
        if (at != std::string::npos &&
            answer.size() >= head + 4 + std::strtoul(answer.c_str() + at + 16, nullptr, 10)) {
          complete = true;
          break;
        }
      }
    }
    const size_t head = answer.find("\r\n\r\n");
    if (!complete || head == std::string::npos || answer.rfind("HTTP/1.1 200", 0) != 0) {
      fail(complete ? "malformed answer" : "read");
      ::close(fd);
      fd = -1;
      continue;
    }
    latencies.push_back(msBetween(start, Clock::now()));
    ++tally.requests;
    if (spec.endpoints.count(answer.substr(head + 4)) == 0) ++tally.wrongEndpoint;
    if (!spec.keepAlive) {
      ::close(fd);
      fd = -1;
    }
  }
  if (fd >= 0) ::close(fd);
}

// Runs the load from a child process in `netns` (and, for the socket LB, in cgroup `cgroup`).
Load runLoad(const std::string& netns, const std::string& cgroup, const LoadSpec& spec) {
  int pipeFds[2];
  if (::pipe2(pipeFds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipeFds[0]);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    Load total;
#if SKIFF_WITH_EBPF
    if (!cgroup.empty() && !ebpf::joinCgroup(cgroup).ok()) _exit(20);
#else
    if (!cgroup.empty()) _exit(20);
#endif
    const int nsFd = ::open(("/run/netns/" + netns).c_str(), O_RDONLY);
    if (nsFd < 0 || ::setns(nsFd, CLONE_NEWNET) != 0) _exit(21);
    {
      // Room for many short connections: every ephemeral port, and reuse of TIME_WAIT ones.
      std::ofstream("/proc/sys/net/ipv4/ip_local_port_range") << "1024 65000\n";
      std::ofstream("/proc/sys/net/ipv4/tcp_tw_reuse") << "1\n";
    }
    const auto start = Clock::now();
    const auto deadline =
        start + std::chrono::microseconds(static_cast<int64_t>(spec.seconds * 1e6));
    std::vector<std::vector<double>> latencies(static_cast<size_t>(spec.threads));
    std::vector<Load> tallies(static_cast<size_t>(spec.threads));
    std::vector<std::thread> threads;
    for (int t = 0; t < spec.threads; ++t) {
      latencies[static_cast<size_t>(t)].reserve(1 << 16);
      threads.emplace_back(loadThread, std::cref(spec), deadline,
                           std::ref(latencies[static_cast<size_t>(t)]),
                           std::ref(tallies[static_cast<size_t>(t)]));
    }
    for (auto& thread : threads)
      thread.join();
    total.seconds = msBetween(start, Clock::now()) / 1000;
    std::vector<double> all;
    for (size_t t = 0; t < tallies.size(); ++t) {
      total.requests += tallies[t].requests;
      total.errors += tallies[t].errors;
      total.wrongEndpoint += tallies[t].wrongEndpoint;
      if (total.firstError[0] == 0) std::memcpy(total.firstError, tallies[t].firstError, 160);
      all.insert(all.end(), latencies[t].begin(), latencies[t].end());
    }
    total.p50Ms = percentileMs(all, 0.50);
    total.p99Ms = percentileMs(all, 0.99);
    _exit(::write(pipeFds[1], &total, sizeof(total)) == sizeof(total) ? 0 : 22);
  }
  ::close(pipeFds[1]);
  Load result;
  const ssize_t got = ::read(pipeFds[0], &result, sizeof(result));
  ::close(pipeFds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (got != static_cast<ssize_t>(sizeof(result)) || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0) {
    throw std::runtime_error("the load client in " + netns + " exited with status " +
                             std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1));
  }
  return result;
}

// ---- the modes -------------------------------------------------------------------------------

struct Figures {
  std::map<std::string, double> metrics;
  std::map<std::string, std::vector<double>> samples;
};

// A data path under test: what it takes to program the services and where its clients run.
class Mode {
 public:
  virtual ~Mode() = default;
  virtual std::string name() const = 0;
  // Programs `set` in full into empty tables; the time of the programming itself.
  virtual double fullSync(const ServiceSet& set) = 0;
  // Back to empty (not timed).
  virtual void reset() = 0;
  // `service` changed (set.generation moved on; its previous first endpoint given); the time.
  virtual double partialSync(const ServiceSet& set, int service, uint32_t previousEndpoint) = 0;
  virtual std::string clientCgroup() const { return ""; }
};

class RestoreMode : public Mode {
 public:
  RestoreMode(std::string mode, std::string netns, std::string dir)
      : mode_(std::move(mode)),
        nft_(mode_ == "nftables"),
        tool_(mode_ == "iptables-legacy" ? "iptables-legacy" : "iptables-nft"),
        netns_(std::move(netns)),
        dir_(std::move(dir)) {
    if (!nft_) {
      // The jumps kube-proxy keeps in the built-in chains (iptables, not restore).
      runIptables({"-t", "nat", "-N", "KUBE-SERVICES"});
      runIptables({"-t", "nat", "-N", "KUBE-POSTROUTING"});
      runIptables({"-t", "nat", "-A", "OUTPUT", "-m", "comment", "--comment",
                   "kubernetes service portals", "-j", "KUBE-SERVICES"});
      runIptables({"-t", "nat", "-A", "PREROUTING", "-m", "comment", "--comment",
                   "kubernetes service portals", "-j", "KUBE-SERVICES"});
      runIptables({"-t", "nat", "-A", "POSTROUTING", "-m", "comment", "--comment",
                   "kubernetes postrouting rules", "-j", "KUBE-POSTROUTING"});
    }
  }
  std::string name() const override { return mode_; }

  double fullSync(const ServiceSet& set) override {
    return load(nft_ ? nftablesFullSync(set) : iptablesFullSync(set), "full sync");
  }
  void reset() override {
    if (nft_) {
      load("add table ip kube-proxy\ndelete table ip kube-proxy\n", "reset");
    } else {
      // Empty the KUBE-* chains and drop the per-service ones (the jumps stay).
      load("*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-POSTROUTING - [0:0]\nCOMMIT\n", "reset");
      load("*nat\n" + listChains() + "COMMIT\n", "reset");
    }
    stale_.clear();
  }
  double partialSync(const ServiceSet& set, int service, uint32_t previousEndpoint) override {
    if (nft_) {
      const double ms = load(nftablesPartialSync(set, service, stale_), "partial sync");
      stale_ = nftablesEndpointChain(service, previousEndpoint);
      return ms;
    }
    return load(iptablesPartialSync(set, service, previousEndpoint), "partial sync");
  }

 private:
  double load(const std::string& text, const char* what) {
    const std::string input = dir_ + "/" + name() + ".rules";
    {
      std::ofstream out(input);
      out << text;
      if (!out) throw std::runtime_error("cannot write " + input);
    }
    const std::vector<std::string> argv =
        nft_ ? std::vector<std::string>{"nft", "-f", "-"}
             : std::vector<std::string>{tool_ + "-restore", "-w", "5", "--noflush"};
    ExecResult r = execIn(netns_, argv, input, dir_ + "/" + name() + ".out");
    if (r.status != 0) {
      throw std::runtime_error(name() + " " + what + ": '" + argv[0] + "' in " + netns_ +
                               " exited " + std::to_string(r.status) + ": " + r.output);
    }
    return r.ms;
  }

  void runIptables(std::vector<std::string> args) {
    args.insert(args.begin(), {tool_, "-w", "5"});
    const std::string devnull = "/dev/null";
    ExecResult r = execIn(netns_, args, devnull, dir_ + "/iptables.out");
    if (r.status != 0) throw std::runtime_error("iptables in " + netns_ + ": " + r.output);
  }

  // "-F X\n-X X\n" for every KUBE-SVC-/KUBE-SEP- chain the netns holds (iptables-save).
  std::string listChains() {
    const std::vector<std::string> argv = {tool_ + "-save", "-t", "nat"};
    ExecResult r = execIn(netns_, argv, "/dev/null", dir_ + "/save.out");
    if (r.status != 0) throw std::runtime_error("iptables-save in " + netns_ + ": " + r.output);
    std::ifstream in(dir_ + "/save.out");
    std::string line, flush, remove;
    while (std::getline(in, line)) {
      if (line.rfind(":KUBE-SVC-", 0) == 0 || line.rfind(":KUBE-SEP-", 0) == 0) {
        const std::string chain = line.substr(1, line.find(' ') - 1);
        flush += "-F " + chain + "\n";
        remove += "-X " + chain + "\n";
      }
    }
    return flush + remove;
  }

  std::string mode_;
  bool nft_;
  std::string tool_;
  std::string netns_;
  std::string dir_;
  std::string stale_;
};

#if SKIFF_WITH_EBPF
class EbpfMode : public Mode {
 public:
  EbpfMode(const std::string& id, int maxServices, int endpointsPerService) {
    const std::string mount = ebpf::cgroup2Mount();
    if (mount.empty()) throw std::runtime_error("cgroup v2 is not mounted");
    subtree_ = mount + "/skiff-bench-baselines-" + id;
    client_ = subtree_ + "/client";
    ebpf::EbpfDataplaneOptions options;
    const uint32_t services = static_cast<uint32_t>(maxServices) + 16;
    const uint32_t backends =
        static_cast<uint32_t>(maxServices) * static_cast<uint32_t>(endpointsPerService);
    options.load.services = std::max<uint32_t>(options.load.services, services);
    options.load.ringEntries = (services + 16) * 16384u + SKIFF_RING_ALIGN;
    options.load.frontends = std::max<uint32_t>(options.load.frontends, services);
    options.load.rings = std::max<uint32_t>(options.load.rings, 4 * services);
    options.load.backends = std::max<uint32_t>(options.load.backends, backends + services + 1024);
    options.cgroupPath = subtree_;
    auto made = ebpf::EbpfDataplane::create(options);
    if (!made.ok()) throw std::runtime_error("the eBPF data path: " + made.message());
    dp_ = std::move(made).value();
    auto joined = ebpf::ensureCgroup(client_);
    if (!joined.ok()) throw std::runtime_error(joined.message());
  }
  ~EbpfMode() override {
    dp_.reset();
    (void)ebpf::removeCgroup(client_);
    (void)ebpf::removeCgroup(subtree_ + "/" + ebpf::kHostCgroupName);
    (void)ebpf::removeCgroup(subtree_);
  }
  std::string name() const override { return "ebpf"; }
  std::string clientCgroup() const override { return client_; }

  double fullSync(const ServiceSet& set) override {
    dataplane::ServiceDelta delta;
    delta.replaceAll = true;
    for (int i = 0; i < set.services; ++i)
      delta.upserted.push_back(service(set, i));
    return apply(delta, "full sync");
  }
  void reset() override {
    dataplane::ServiceDelta empty;
    empty.replaceAll = true;
    apply(empty, "reset");
  }
  double partialSync(const ServiceSet& set, int i, uint32_t) override {
    dataplane::ServiceDelta delta;
    delta.upserted.push_back(service(set, i));
    return apply(delta, "partial sync");
  }

 private:
  static dataplane::Service service(const ServiceSet& set, int i) {
    dataplane::Service s;
    s.id = portName(i);
    s.frontends = {
        {{dataplane::IpAddress::v4(clusterIp(i)), kServicePort, dataplane::L4Protocol::kTcp},
         dataplane::FrontendKind::kClusterIP}};
    for (int e = 0; e < set.endpointsPerService; ++e) {
      s.backends.push_back(dataplane::Backend{
          .address = dataplane::IpAddress::v4(endpointIp(set, i, e)), .port = kEndpointPort});
    }
    return s;
  }
  double apply(const dataplane::ServiceDelta& delta, const char* what) {
    const auto start = Clock::now();
    auto status = dp_->apply(delta);
    const double ms = msBetween(start, Clock::now());
    if (!status.ok())
      throw std::runtime_error(std::string("ebpf ") + what + ": " + status.message());
    return ms;
  }

  std::string subtree_, client_;
  std::unique_ptr<ebpf::EbpfDataplane> dp_;
};
#endif

std::unordered_set<std::string> endpointsOf(const ServiceSet& set, int i) {
  std::unordered_set<std::string> out;
  for (int e = 0; e < set.endpointsPerService; ++e)
    out.insert(ipv4(endpointIp(set, i, e)));
  return out;
}

double median(std::vector<double> values) {
  return percentileMs(std::move(values), 0.5);
}

struct Run {
  Options options;
  std::vector<int> sizes;
  std::string id;
  std::string dir;
  std::ostream& progress = std::cerr;
};

// Everything one mode measures, into `figures` (keys prefixed with the mode's name).
void measureMode(Run& run, Topology& topology, const std::string& modeName, int clientNumber,
                 Figures& figures) {
  const Options& o = run.options;
  const std::string client = topology.addClient(clientNumber);
  struct RemoveClient {
    Topology& topology;
    std::string ns;
    ~RemoveClient() { topology.removeClient(ns); }
  } removeClient{topology, client};
  std::unique_ptr<Mode> mode;
  if (modeName != "ebpf") {
    mode = std::make_unique<RestoreMode>(modeName, client, run.dir);
  } else {
#if SKIFF_WITH_EBPF
    mode = std::make_unique<EbpfMode>(run.id, run.sizes.back(), o.endpointsPerService);
#endif
  }
  if (!mode) throw std::runtime_error(modeName + ": not built into this skiff");
  // Metric keys: "iptables_legacy_sync_ms_1000", ...
  std::string m = modeName;
  std::replace(m.begin(), m.end(), '-', '_');
  // (a) full syncs, from empty, median of `runs`.
  for (size_t s = 0; s < run.sizes.size(); ++s) {
    const int n = run.sizes[s];
    std::vector<double> times;
    for (int r = 0; r < o.runs; ++r) {
      if (interrupted.load()) throw std::runtime_error("interrupted");
      ServiceSet set(n, o.endpointsPerService);
      const bool keep = s + 1 == run.sizes.size() && r + 1 == o.runs;
      times.push_back(mode->fullSync(set));
      if (!keep) mode->reset();
    }
    figures.metrics[m + "_sync_ms_" + std::to_string(n)] = median(times);
    run.progress << "  " << m << ": full sync of " << n << " services "
                 << benchNumber(median(times)) << " ms (median of " << o.runs << ")\n";
  }
  // One change at a time among the largest count, services far apart.
  const int n = run.sizes.back();
  ServiceSet set(n, o.endpointsPerService);
  std::vector<double> changes;
  uint32_t generation = 0;
  for (int c = 0; c < o.changes; ++c) {
    if (interrupted.load()) throw std::runtime_error("interrupted");
    const int service = n <= 2 ? 0
                               : 1 + static_cast<int>((static_cast<uint64_t>(c) * 7919) %
                                                      static_cast<uint64_t>(n - 2));
    const uint32_t previous = endpointIp(set, service, 0);
    set.generation[static_cast<size_t>(service)] = ++generation;
    changes.push_back(mode->partialSync(set, service, previous));
  }
  const std::string at = "_" + std::to_string(n);
  figures.metrics[m + "_change_ms" + at] = median(changes);
  figures.metrics[m + "_change_p99_ms" + at] = percentileMs(changes, 0.99);
  figures.samples[m + "_change_ms" + at] = changes;
  run.progress << "  " << m << ": one change among " << n << " services "
               << benchNumber(median(changes)) << " ms (median of " << o.changes << ")\n";

  // (b) traffic to the first and the last service.
  for (const bool keepAlive : {false, true}) {
    for (const bool last : {false, true}) {
      if (interrupted.load()) throw std::runtime_error("interrupted");
      const int service = last ? n - 1 : 0;
      LoadSpec spec;
      spec.vip = clusterIp(service);
      spec.endpoints = endpointsOf(set, service);
      spec.keepAlive = keepAlive;
      spec.seconds = o.seconds;
      spec.threads = o.threads;
      const Load load = runLoad(client, mode->clientCgroup(), spec);
      if (load.requests == 0 || load.wrongEndpoint > 0 || load.errors * 100 > load.requests) {
        throw std::runtime_error(
            m + ": requests to " + ipv4(spec.vip) + ":80 (" + portName(service) +
            "): " + std::to_string(load.requests) + " answered, " + std::to_string(load.errors) +
            " failed, " + std::to_string(load.wrongEndpoint) + " from a wrong endpoint" +
            (load.firstError[0] ? std::string(" (first error: ") + load.firstError + ")" : ""));
      }
      const std::string key = m + (keepAlive ? "_keepalive" : "_short");
      const std::string which = last ? "_last" : "_first";
      const double rps = static_cast<double>(load.requests) / load.seconds;
      figures.metrics[key + "_rps" + which] = rps;
      figures.metrics[key + "_p50_ms" + which] = load.p50Ms;
      figures.metrics[key + "_p99_ms" + which] = load.p99Ms;
      run.progress << "  " << m << ": " << (keepAlive ? "keep-alive" : "short")
                   << " requests to the " << (last ? "last" : "first")
                   << " service: " << benchNumber(rps) << " req/s, p99 " << benchNumber(load.p99Ms)
                   << " ms\n";
    }
  }
}

std::string jsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string firstLine(const std::string& command) {
  int status = 0;
  std::string out = shellOutput(command, status);
  return out.substr(0, out.find('\n'));
}

int runBenchBaselines(Options o) {
  if (::geteuid() != 0) {
    std::cerr << "skiff bench baselines: cannot run here: needs root (network namespaces, "
                 "iptables, nftables, BPF)\n";
    return kCannotRunHere;
  }
  // iptables, nft and ip live in /usr/sbin, which a non-login PATH may lack.
  const char* path = std::getenv("PATH");
  ::setenv("PATH", (std::string(path ? path : "/usr/bin:/bin") + ":/usr/sbin:/sbin").c_str(), 1);
  if (!haveCommand("ip")) {
    std::cerr << "skiff bench baselines: cannot run here: no 'ip' (iproute2)\n";
    return kCannotRunHere;
  }
  if (o.services < 0 || o.endpointsPerService < 1 || o.endpointsPerService > 64 || o.threads < 1 ||
      o.threads > 64 || o.seconds < 0 || o.changes < 0 || o.runs < 0) {
    throw std::invalid_argument(
        "--services >= 1, --endpoints-per-service 1..64, --threads 1..64, --seconds > 0");
  }
  if (static_cast<int64_t>(std::max(o.services, 10000)) * o.endpointsPerService > (1 << 20) - 2) {
    throw std::invalid_argument(
        "--services x --endpoints-per-service: at most 1,048,574 endpoints");
  }
  Run run{o, {}, std::to_string(::getpid()), ""};
  Options& opt = run.options;
  if (opt.seconds == 0) opt.seconds = opt.quick ? 1 : 5;
  if (opt.changes == 0) opt.changes = opt.quick ? 5 : 20;
  if (opt.runs == 0) opt.runs = opt.quick ? 1 : 3;
  // 10,000 services take iptables-nft-restore minutes (it grows with the square of the rule
  // count): a quick run keeps to 1,000.
  run.sizes = o.services > 0 ? std::vector<int>{o.services}
              : opt.quick    ? std::vector<int>{1000}
                             : std::vector<int>{1000, 10000};

  std::vector<std::string> modes;
  std::map<std::string, std::string> skipped;
  {
    std::stringstream list(o.modes);
    for (std::string m; std::getline(list, m, ',');) {
      if (m.empty()) continue;
      if (m != "iptables-legacy" && m != "iptables-nft" && m != "nftables" && m != "ebpf") {
        throw std::invalid_argument("--modes: '" + m +
                                    "' is not iptables-legacy, iptables-nft, nftables or ebpf");
      }
      modes.push_back(m);
    }
  }
  std::vector<std::string> runnable;
  for (const std::string& m : modes) {
    if (m.rfind("iptables-", 0) == 0 &&
        !(haveCommand(m + "-restore") && haveCommand(m + "-save"))) {
      skipped[m] = "no " + m + "-restore (Debian package iptables)";
    } else if (m == "nftables" && !haveCommand("nft")) {
      skipped[m] = "no nft (Debian package nftables)";
    } else if (m == "ebpf") {
#if SKIFF_WITH_EBPF
      if (ebpf::cgroup2Mount().empty()) {
        skipped[m] = "cgroup v2 is not mounted";
      } else {
        runnable.push_back(m);
      }
#else
      skipped[m] = "this skiff was built without the eBPF data path (SKIFF_WITH_EBPF=OFF)";
#endif
    } else {
      runnable.push_back(m);
    }
  }

  std::string dir = "/tmp/skiff-bench-baselines-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  run.dir = dir;
  struct RemoveDir {
    std::string path;
    ~RemoveDir() {
      std::error_code error;
      std::filesystem::remove_all(path, error);
    }
  } removeDir{dir};
  struct sigaction action {};
  action.sa_handler = onInterrupt;
  ::sigaction(SIGTERM, &action, nullptr);
  ::sigaction(SIGINT, &action, nullptr);

  Figures figures;
  std::map<std::string, std::string> failed;
  {
    Topology topology(run.id);
    Server server(topology.backend());
    run.progress << "skiff bench baselines: services "
                 << (run.sizes.size() > 1 ? "1000 and 10000" : std::to_string(run.sizes.back()))
                 << " x " << opt.endpointsPerService << " endpoints, modes";
    for (const auto& m : runnable)
      run.progress << " " << m;
    run.progress << "; backend netns " << topology.backend() << "\n";
    int client = 0;
    for (const std::string& m : runnable) {
      try {
        measureMode(run, topology, m, client++, figures);
      } catch (const std::exception& e) {
        failed[m] = e.what();
        run.progress << "  " << m << ": FAILED: " << e.what() << "\n";
        if (interrupted.load()) break;
      }
    }
  }
  auto& metrics = figures.metrics;
  for (const std::string& m :
       {std::string("iptables_legacy"), std::string("iptables_nft"), std::string("nftables")}) {
    const auto ebpf = metrics.find("ebpf_short_rps_last");
    const auto other = metrics.find(m + "_short_rps_last");
    if (ebpf != metrics.end() && other != metrics.end() && other->second > 0)
      metrics["ebpf_to_" + m + "_short_rps_last"] = ebpf->second / other->second;
    const std::string change = "_change_ms_" + std::to_string(run.sizes.back());
    const auto ebpfChange = metrics.find("ebpf" + change);
    const auto otherChange = metrics.find(m + change);
    if (ebpfChange != metrics.end() && otherChange != metrics.end() && ebpfChange->second > 0)
      metrics[m + "_to_ebpf" + change] = otherChange->second / ebpfChange->second;
  }
  for (std::string m : runnable) {
    std::replace(m.begin(), m.end(), '-', '_');
    const auto first = metrics.find(m + "_short_p99_ms_first");
    const auto last = metrics.find(m + "_short_p99_ms_last");
    if (first != metrics.end() && last != metrics.end() && first->second > 0)
      metrics[m + "_short_p99_last_to_first"] = last->second / first->second;
  }

  struct utsname uts {};
  ::uname(&uts);
  const std::string iptablesVersion = firstLine("iptables-nft-restore --version") + ", " +
                                      firstLine("iptables-legacy-restore --version");
  const std::string nftVersion = firstLine("nft --version");
  if (opt.json) {
    std::ostringstream out;
    out << "{\"suite\":\"baselines\",\"params\":{\"services\":[";
    for (size_t i = 0; i < run.sizes.size(); ++i)
      out << (i ? "," : "") << run.sizes[i];
    out << "],\"endpoints_per_service\":" << opt.endpointsPerService
        << ",\"seconds_per_figure\":" << benchNumber(opt.seconds)
        << ",\"client_threads\":" << opt.threads << ",\"changes\":" << opt.changes
        << ",\"runs\":" << opt.runs << ",\"quick\":" << (opt.quick ? "true" : "false")
        << ",\"topology\":\"client netns -> veth -> backend netns (one HTTP server, AnyIP "
           "10.224.0.0/11)\",\"iptables\":"
        << jsonString(iptablesVersion) << ",\"nft\":" << jsonString(nftVersion)
        << ",\"kernel\":" << jsonString(uts.release) << ",\"modes\":[";
    for (size_t i = 0; i < runnable.size(); ++i)
      out << (i ? "," : "") << jsonString(runnable[i]);
    out << "],\"skipped\":{";
    bool first = true;
    for (const auto& [m, why] : skipped) {
      out << (first ? "" : ",") << jsonString(m) << ":" << jsonString(why);
      first = false;
    }
    out << "},\"failed\":{";
    first = true;
    for (const auto& [m, why] : failed) {
      out << (first ? "" : ",") << jsonString(m) << ":" << jsonString(why);
      first = false;
    }
    out << "}},\"metrics\":{";
    first = true;
    for (const auto& [key, value] : metrics) {
      out << (first ? "" : ",") << jsonString(key) << ":" << benchNumber(value);
      first = false;
    }
    out << "},\"samples\":{";
    first = true;
    for (const auto& [key, values] : figures.samples) {
      out << (first ? "" : ",") << jsonString(key) << ":[";
      for (size_t i = 0; i < values.size(); ++i)
        out << (i ? "," : "") << benchNumber(values[i]);
      out << "]";
      first = false;
    }
    out << "}}";
    std::cout << out.str() << std::endl;
  } else {
    std::printf("kube-proxy baselines beside Skiff's eBPF socket LB (%s; %s; kernel %s)\n",
                iptablesVersion.c_str(), nftVersion.c_str(), uts.release);
    std::printf("%d endpoints per service, %d client threads, %.1f s per traffic figure\n",
                opt.endpointsPerService, opt.threads, opt.seconds);
    const std::string big = std::to_string(run.sizes.back());
    std::printf("%-16s", "MODE");
    for (int n : run.sizes)
      std::printf(" %14s", ("SYNC " + std::to_string(n) + " ms").c_str());
    std::printf(" %16s %12s %12s %12s %12s\n", ("1 CHANGE/" + big + " ms").c_str(), "SHORT RPS 1",
                "SHORT RPS N", "P99 ms 1", "P99 ms N");
    for (const std::string& name : runnable) {
      if (failed.count(name)) {
        std::printf("%-16s failed: %s\n", name.c_str(), failed[name].c_str());
        continue;
      }
      std::string m = name;
      std::replace(m.begin(), m.end(), '-', '_');
      std::printf("%-16s", name.c_str());
      for (int n : run.sizes)
        std::printf(" %14.1f", metrics[m + "_sync_ms_" + std::to_string(n)]);
      std::printf(" %16.2f %12.0f %12.0f %12.3f %12.3f\n", metrics[m + "_change_ms_" + big],
                  metrics[m + "_short_rps_first"], metrics[m + "_short_rps_last"],
                  metrics[m + "_short_p99_ms_first"], metrics[m + "_short_p99_ms_last"]);
      std::printf("%-16s keep-alive: %.0f req/s (first), %.0f req/s (last), p99 %.3f / %.3f ms\n",
                  "", metrics[m + "_keepalive_rps_first"], metrics[m + "_keepalive_rps_last"],
                  metrics[m + "_keepalive_p99_ms_first"], metrics[m + "_keepalive_p99_ms_last"]);
    }
    for (const auto& [m, why] : skipped)
      std::printf("%-16s skipped: %s\n", m.c_str(), why.c_str());
  }
  if (interrupted.load()) return 130;
  return failed.empty() ? 0 : 1;
}

}  // namespace

void addBenchBaselinesCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<Options>();
  CLI::App* cmd = benchGroup(app).add_subcommand(
      "baselines",
      "kube-proxy's iptables and nftables rule sets beside Skiff's eBPF socket LB in network "
      "namespaces: sync time, requests/s and p99 to the first and the last service");
  cmd->add_option(
      "--services", options->services,
      "Services (default: syncs of 1,000 and 10,000, --quick 1,000; traffic at the largest)");
  cmd->add_option("--endpoints-per-service", options->endpointsPerService, "Endpoints per service")
      ->capture_default_str();
  cmd->add_option("--seconds", options->seconds,
                  "Seconds per traffic figure (default 5, --quick 1)");
  cmd->add_option("--changes", options->changes,
                  "One-change syncs sampled (default 20, --quick 5)");
  cmd->add_option("--runs", options->runs, "Full syncs per size, median (default 3, --quick 1)");
  cmd->add_option("--threads", options->threads, "Client threads")->capture_default_str();
  cmd->add_option("--modes", options->modes,
                  "Comma-separated: iptables-legacy, iptables-nft, nftables, ebpf")
      ->capture_default_str();
  cmd->add_flag("--quick", options->quick, "One run per size, 5 changes, 1 s per traffic figure");
  cmd->add_flag("--json", options->json, "One JSON object on stdout");
  cmd->callback([options, &exit_code] {
    try {
      exit_code = runBenchBaselines(*options);
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      exit_code = 1;
    }
  });
}

}  // namespace skiff::cli
