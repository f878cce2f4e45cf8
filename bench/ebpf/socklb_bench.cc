// connect() through the socket LB beside a direct connect(): the process joins a cgroup made for
// the benchmark (the hooks are attached there, never to the root cgroup) and a network namespace
// of its own with loopback up; a ClusterIP service points at a loopback listener. Each iteration
// is connect + accept + close of both ends, so the difference between the two figures is what
// the connect4 hook and the reverse-NAT entry cost. Without root the benchmarks skip.

#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>

#include "ebpf/cgroup.h"
#include "ebpf/ebpf_dataplane.h"

namespace {

using skiff::dataplane::Backend;
using skiff::dataplane::IpAddress;

constexpr uint16_t kBackendPort = 18080;

struct Setup {
  std::unique_ptr<skiff::ebpf::EbpfDataplane> dp;
  std::string cgroup;
  std::string error;
  int listener = -1;
};

bool loopbackUp() {
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  bool ok = ::ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  ok = ok && ::ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
  ::close(s);
  return ok;
}

// Made once for the whole run (the process stays in the namespace and cgroup until it exits).
Setup& setup() {
  static Setup s = [] {
    Setup out;
    if (geteuid() != 0) {
      out.error = "needs root (BPF, cgroups, network namespaces)";
      return out;
    }
    if (skiff::ebpf::cgroup2Mount().empty()) {
      out.error = "cgroup v2 is not mounted";
      return out;
    }
    if (::unshare(CLONE_NEWNET) != 0 || !loopbackUp()) {
      out.error = "own network namespace with loopback";
      return out;
    }
    out.cgroup = skiff::ebpf::cgroup2Mount() + "/skiff-bench-" + std::to_string(::getpid());
    skiff::ebpf::EbpfDataplaneOptions options;
    options.cgroupPath = out.cgroup;
    options.load.frontends = 64;
    options.load.services = 16;
    options.load.backends = 64;
    options.load.rings = 64;
    options.load.conntrack = 1024;
    auto dp = skiff::ebpf::EbpfDataplane::create(options);
    if (!dp.ok()) {
      out.error = dp.message();
      return out;
    }
    out.dp = std::move(*dp);
    skiff::dataplane::Service svc;
    svc.id = "bench/web:http";
    svc.frontends = {{{*IpAddress::parse("10.96.0.10"), 80, skiff::dataplane::L4Protocol::kTcp},
                      skiff::dataplane::FrontendKind::kClusterIP}};
    svc.backends = {Backend{.address = *IpAddress::parse("127.0.0.1"), .port = kBackendPort}};
    skiff::dataplane::ServiceDelta delta;
    delta.upserted = {svc};
    if (auto st = out.dp->apply(delta); !st.ok()) {
      out.error = st.message();
      return out;
    }
    if (auto st = skiff::ebpf::joinCgroup(out.cgroup); !st.ok()) {
      out.error = st.message();
      return out;
    }
    out.listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(out.listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(kBackendPort);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(out.listener, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
        ::listen(out.listener, 1024) != 0) {
      out.error = std::string("listener: ") + std::strerror(errno);
    }
    return out;
  }();
  return s;
}

void connectLoop(benchmark::State& state, const char* address, uint16_t port) {
  Setup& s = setup();
  if (!s.error.empty()) {
    state.SkipWithError(s.error.c_str());
    return;
  }
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  inet_pton(AF_INET, address, &to.sin_addr);
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(c, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
      ::close(c);
      state.SkipWithError("connect failed");
      return;
    }
    const int a = ::accept4(s.listener, nullptr, nullptr, SOCK_CLOEXEC);
    ::close(a);
    ::close(c);
  }
  const std::chrono::duration<double, std::micro> elapsed =
      std::chrono::steady_clock::now() - start;
  // Wall-clock microseconds per connect + accept + close.
  state.counters["connect_us"] = elapsed.count() / static_cast<double>(state.iterations());
}

void BM_ConnectViaClusterIp(benchmark::State& state) {
  connectLoop(state, "10.96.0.10", 80);
}
BENCHMARK(BM_ConnectViaClusterIp)->UseRealTime();

void BM_ConnectDirect(benchmark::State& state) {
  connectLoop(state, "127.0.0.1", kBackendPort);
}
BENCHMARK(BM_ConnectDirect)->UseRealTime();

}  // namespace

// The cgroup v2 path (relative to the mount) this process started in.
std::string ownCgroup() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  }
  return "/";
}

int main(int argc, char** argv) {
  const std::string home = skiff::ebpf::cgroup2Mount() + ownCgroup();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  Setup& s = setup();
  if (!s.cgroup.empty()) {
    // Back where it started, so that the benchmark's cgroup is empty and can go.
    if (s.listener >= 0) ::close(s.listener);
    s.dp.reset();
    if (!skiff::ebpf::joinCgroup(home).ok() || !skiff::ebpf::removeCgroup(s.cgroup).ok()) {
      std::fprintf(stderr, "could not remove %s\n", s.cgroup.c_str());
      return 1;
    }
  }
  return 0;
}
