#include "ebpf/lb_bench.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <utility>

#include "ebpf/cgroup.h"

namespace skiff::ebpf::bench {
namespace {

using dataplane::Backend;
using dataplane::IpAddress;
using dataplane::Result;
using dataplane::Status;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kFrontendBase = 0xc6120000u;  // 198.18.0.0/15 (benchmarking)
constexpr uint32_t kBackendBase = 0x0a000000u;   // 10.0.0.0/8

uint16_t foldSum(uint64_t sum) {
  while ((sum >> 16) != 0)
    sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum & 0xffff);
}

uint64_t sum16(const uint8_t* p, size_t n) {
  uint64_t sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2)
    sum += static_cast<uint64_t>(p[i]) << 8 | p[i + 1];
  if (n % 2 != 0) sum += static_cast<uint64_t>(p[n - 1]) << 8;
  return sum;
}

void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}

dataplane::Service makeService(uint32_t index, uint32_t backends, uint32_t generation) {
  dataplane::Service s;
  s.id = "bench/svc-" + std::to_string(index) + ":http";
  s.frontends = {{{IpAddress::v4(kFrontendBase + index + 1), 80, dataplane::L4Protocol::kTcp},
                  dataplane::FrontendKind::kExternalIP}};
  for (uint32_t b = 0; b < backends; ++b) {
    // Generation g > 0 moves the first backend to 11.0.0.0 + g (a pod replaced).
    const uint32_t address =
        b == 0 && generation > 0 ? 0x0b000000u + generation : kBackendBase + index * 16 + b + 1;
    s.backends.push_back(Backend{.address = IpAddress::v4(address), .port = 8080});
  }
  return s;
}

double msSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

}  // namespace

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  const auto mid = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
  std::nth_element(values.begin(), mid, values.end());
  return *mid;
}

std::vector<uint8_t> tcpFrame(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport,
                              uint8_t flags) {
  std::vector<uint8_t> f(14 + 20 + 20, 0);
  const uint8_t dmac[6] = {0x02, 0, 0, 0, 0, 0x02};
  const uint8_t smac[6] = {0x02, 0, 0, 0, 0, 0x01};
  std::memcpy(f.data(), dmac, 6);
  std::memcpy(f.data() + 6, smac, 6);
  put16(f.data() + 12, 0x0800);
  uint8_t* ip = f.data() + 14;
  ip[0] = 0x45;
  put16(ip + 2, 40);
  ip[8] = 64;
  ip[9] = IPPROTO_TCP;
  put32(ip + 12, src);
  put32(ip + 16, dst);
  put16(ip + 10, foldSum(sum16(ip, 20)));
  uint8_t* tcp = ip + 20;
  put16(tcp, sport);
  put16(tcp + 2, dport);
  put32(tcp + 4, 1);
  tcp[12] = 5 << 4;
  tcp[13] = flags;
  put16(tcp + 14, 65535);
  uint64_t pseudo = sum16(ip + 12, 8) + IPPROTO_TCP + 20;
  put16(tcp + 16, foldSum(pseudo + sum16(tcp, 20)));
  return f;
}

XdpRig::~XdpRig() {
  if (floorFd_ >= 0) ::close(floorFd_);
}

Result<std::unique_ptr<XdpRig>> XdpRig::create(uint32_t services, uint32_t backendsPerService) {
  if (services < 1 || services > 65000 || backendsPerService < 1 || backendsPerService > 15) {
    return Status::failure("XDP bench: services must be 1..65000, backends per service 1..15");
  }
  if (::geteuid() != 0) return Status::failure("needs root (BPF)");
  std::unique_ptr<XdpRig> rig(new XdpRig());
  // The floor: r0 = XDP_TX; exit.
  const bpf_insn floor[] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_TX},
      {.code = BPF_JMP | BPF_EXIT},
  };
  rig->floorFd_ = bpf_prog_load(BPF_PROG_TYPE_XDP, "skiff_floor", "GPL", floor, 2, nullptr);
  if (rig->floorFd_ < 0) {
    return Status::failure(std::string("load the XDP_TX floor program: ") + std::strerror(errno));
  }

  EbpfDataplaneOptions options;
  options.load.fwdMode = SKIFF_FWD_TX;
  options.load.withSocketLb = false;
  options.load.services = services + 16;
  options.load.frontends = services + 16;
  options.load.backends = services * (backendsPerService + 1) + 1024;
  // Room for a second copy of some rings (changes are double-buffered).
  options.load.ringEntries = (services + 256) * dataplane::kMaglevDefaultTableSize;
  options.load.conntrack = 1 << 18;
  auto dp = EbpfDataplane::create(options);
  if (!dp.ok()) return Status::failure("the eBPF data path: " + dp.message());
  rig->dp_ = std::move(*dp);

  dataplane::ServiceDelta delta;
  delta.replaceAll = true;
  for (uint32_t i = 0; i < services; ++i)
    delta.upserted.push_back(makeService(i, backendsPerService, 0));
  const Clock::time_point start = Clock::now();
  if (Status s = rig->dp_->apply(delta); !s.ok()) return Status::failure("program: " + s.message());
  rig->programAllMs_ = msSince(start);
  rig->services_ = std::move(delta.upserted);
  return rig;
}

int XdpRig::lbProgram() const {
  return dp_->programs().xdpProgram();
}

int XdpRig::tcProgram() const {
  return dp_->programs().tcIngressProgram();
}

double XdpRig::runOnce(int prog, std::span<const uint8_t> frame, uint32_t* verdict) {
  uint8_t out[256];
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_out = out,
              .data_size_in = static_cast<uint32_t>(frame.size()), .data_size_out = sizeof(out),
              .repeat = 1);
  if (bpf_prog_test_run_opts(prog, &opts) != 0) return -1;
  if (verdict != nullptr) *verdict = opts.retval;
  return opts.duration;
}

std::vector<uint8_t> XdpRig::frameTo(uint32_t index, uint32_t client, uint16_t sport,
                                     uint8_t flags) const {
  return tcpFrame(client, sport, kFrontendBase + index + 1, 80, flags);
}

Result<double> XdpRig::programOneChange(uint32_t index, uint32_t generation) {
  if (index >= services_.size()) return Status::failure("no service " + std::to_string(index));
  dataplane::ServiceDelta delta;
  delta.upserted = {
      makeService(index, static_cast<uint32_t>(services_[index].backends.size()), generation)};
  const Clock::time_point start = Clock::now();
  if (Status s = dp_->apply(delta); !s.ok()) return Status::failure("change: " + s.message());
  const double ms = msSince(start);
  services_[index] = std::move(delta.upserted[0]);
  return ms;
}

Result<XdpFigures> measureXdpPackets(XdpRig& rig, uint32_t runs) {
  if (runs < 1) return Status::failure("runs must be >= 1");
  const uint32_t n = rig.services();
  std::vector<double> established, fresh, floor, tcEstablished, tcFresh;
  // Established: one flow per service touched, its entry made by a first run of its SYN; the
  // measured packets are ACKs of it (a repeated SYN is a retransmitted connection attempt, which
  // the program treats as a likely new flow).
  std::vector<std::vector<uint8_t>> flows;
  const uint32_t flowCount = std::min<uint32_t>(n, 64);
  for (uint32_t f = 0; f < flowCount; ++f) {
    const uint32_t service = static_cast<uint32_t>((static_cast<uint64_t>(f) * 7919) % n);
    const uint32_t client = 0xc0000200u + f;  // 192.0.2.x
    flows.push_back(rig.frameTo(service, client, 40000, kTcpAck));
    uint32_t verdict = 0;
    if (rig.runOnce(rig.lbProgram(), rig.frameTo(service, client, 40000), &verdict) < 0 ||
        verdict != XDP_TX) {
      return Status::failure("the XDP program did not forward a packet to service " +
                             std::to_string(service) + " (verdict " + std::to_string(verdict) +
                             ")");
    }
  }
  for (uint32_t r = 0; r < runs; ++r) {
    const auto& frame = flows[r % flows.size()];
    uint32_t establishedVerdict = 0;
    const double e = rig.runOnce(rig.lbProgram(), frame, &establishedVerdict);
    // A new flow: a client address and port never seen, to service r % N.
    const auto newFrame =
        rig.frameTo(static_cast<uint32_t>((static_cast<uint64_t>(r) * 7919) % n),
                    0x64400000u + r / 50000, static_cast<uint16_t>(1024 + r % 50000));
    uint32_t verdict = 0;
    const double nf = rig.runOnce(rig.lbProgram(), newFrame, &verdict);
    const double fl = rig.runOnce(rig.floorProgram(), frame);
    // tc: the same established flow, and a new flow from clients XDP never saw, to a service
    // half the table away (so not the one whose lines the XDP run just brought into cache).
    uint32_t tcVerdict = 0, tcNewVerdict = 0;
    const double te = rig.runOnce(rig.tcProgram(), frame, &tcVerdict);
    const auto tcNewFrame =
        rig.frameTo(static_cast<uint32_t>((static_cast<uint64_t>(r) * 7919 + n / 2) % n),
                    0x64800000u + r / 50000, static_cast<uint16_t>(1024 + r % 50000));
    const double tn = rig.runOnce(rig.tcProgram(), tcNewFrame, &tcNewVerdict);
    if (e < 0 || nf < 0 || fl < 0 || te < 0 || tn < 0) {
      return Status::failure("BPF_PROG_TEST_RUN failed");
    }
    if (verdict != XDP_TX || establishedVerdict != XDP_TX) {
      return Status::failure("a packet was not forwarded (verdicts " +
                             std::to_string(establishedVerdict) + " established, " +
                             std::to_string(verdict) + " new)");
    }
    if (tcVerdict != TC_ACT_REDIRECT || tcNewVerdict != TC_ACT_REDIRECT) {
      return Status::failure("tc did not forward a packet (verdicts " + std::to_string(tcVerdict) +
                             " established, " + std::to_string(tcNewVerdict) + " new)");
    }
    established.push_back(e);
    fresh.push_back(nf);
    floor.push_back(fl);
    tcEstablished.push_back(te);
    tcFresh.push_back(tn);
  }
  return XdpFigures{median(established), median(fresh), median(floor), median(tcEstablished),
                    median(tcFresh)};
}

namespace {

bool loopbackUp() {
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  bool ok = ::ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  ok = ok && ::ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
  ::close(s);
  return ok;
}

// connect + accept + close of both ends, `count` times; mean microseconds, or a negative errno.
double connectRound(int listener, const sockaddr_in& to, uint32_t count) {
  const Clock::time_point start = Clock::now();
  for (uint32_t i = 0; i < count; ++i) {
    const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0) return -errno;
    if (::connect(c, reinterpret_cast<const sockaddr*>(&to), sizeof(to)) != 0) {
      const int err = errno;
      ::close(c);
      return -err;
    }
    const int a = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (a >= 0) ::close(a);
    ::close(c);
  }
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count() / count;
}

// In the child: everything from the network namespace on; writes the figures or an error.
std::string socklbChild(const std::string& cgroup, uint32_t connects, SocklbFigures& out) {
  if (::unshare(CLONE_NEWNET) != 0 || !loopbackUp()) {
    return std::string("an own network namespace with loopback: ") + std::strerror(errno);
  }
  EbpfDataplaneOptions options;
  options.cgroupPath = cgroup;
  options.load.frontends = 64;
  options.load.services = 16;
  options.load.backends = 64;
  options.load.rings = 64;
  options.load.conntrack = 1024;
  options.load.sockRevNat = 1 << 16;
  auto dp = EbpfDataplane::create(options);
  if (!dp.ok()) return "the eBPF data path: " + dp.message();
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in backend{};
  backend.sin_family = AF_INET;
  backend.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(backend);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&backend), sizeof(backend)) != 0 ||
      ::listen(listener, 1024) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&backend), &len) != 0) {
    return std::string("listener: ") + std::strerror(errno);
  }
  dataplane::Service svc;
  svc.id = "bench/web:http";
  svc.frontends = {{{*IpAddress::parse("10.96.0.10"), 80, dataplane::L4Protocol::kTcp},
                    dataplane::FrontendKind::kClusterIP}};
  svc.backends = {
      Backend{.address = *IpAddress::parse("127.0.0.1"), .port = ntohs(backend.sin_port)}};
  dataplane::ServiceDelta delta;
  delta.upserted = {svc};
  if (Status s = (*dp)->apply(delta); !s.ok()) return "program: " + s.message();
  if (Status s = joinCgroup(cgroup); !s.ok()) return s.message();
  sockaddr_in clusterIp{};
  clusterIp.sin_family = AF_INET;
  clusterIp.sin_port = htons(80);
  inet_pton(AF_INET, "10.96.0.10", &clusterIp.sin_addr);
  constexpr uint32_t kRound = 100;
  const uint32_t rounds = std::max<uint32_t>(1, connects / kRound);
  const uint32_t perRound = std::min(connects, kRound);
  std::vector<double> viaLb, direct;
  // One warm-up round each, then interleaved rounds.
  for (uint32_t r = 0; r <= rounds; ++r) {
    const double l = connectRound(listener, clusterIp, perRound);
    const double d = connectRound(listener, backend, perRound);
    if (l < 0 || d < 0) {
      return std::string("connect: ") + std::strerror(static_cast<int>(-(l < 0 ? l : d)));
    }
    if (r == 0) continue;
    viaLb.push_back(l);
    direct.push_back(d);
  }
  ::close(listener);
  out.socklbConnectUs = median(viaLb);
  out.directConnectUs = median(direct);
  return {};
}

}  // namespace

Result<SocklbFigures> measureSocklb(uint32_t connects) {
  if (connects < 1) return Status::failure("connects must be >= 1");
  if (::geteuid() != 0) return Status::failure("needs root (BPF, cgroups, network namespaces)");
  if (cgroup2Mount().empty()) return Status::failure("cgroup v2 is not mounted");
  const std::string cgroup = cgroup2Mount() + "/skiff-bench-" + std::to_string(::getpid());
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return Status::failure(std::string("pipe: ") + std::strerror(errno));
  const pid_t child = ::fork();
  if (child < 0) return Status::failure(std::string("fork: ") + std::strerror(errno));
  if (child == 0) {
    ::close(fds[0]);
    SocklbFigures figures;
    const std::string error = socklbChild(cgroup, connects, figures);
    struct {
      SocklbFigures figures;
      char error[512];
    } message{};
    message.figures = figures;
    std::strncpy(message.error, error.c_str(), sizeof(message.error) - 1);
    const ssize_t w = ::write(fds[1], &message, sizeof(message));
    ::_exit(w == static_cast<ssize_t>(sizeof(message)) && error.empty() ? 0 : 1);
  }
  ::close(fds[1]);
  struct {
    SocklbFigures figures;
    char error[512];
  } message{};
  size_t got = 0;
  while (got < sizeof(message)) {
    const ssize_t r =
        ::read(fds[0], reinterpret_cast<char*>(&message) + got, sizeof(message) - got);
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  // The child's programs went with it; its cgroup is empty now.
  const Status removed = removeCgroup(cgroup);
  if (got != sizeof(message)) return Status::failure("the socket LB benchmark's child died");
  message.error[sizeof(message.error) - 1] = '\0';
  if (message.error[0] != '\0') return Status::failure(message.error);
  if (!removed.ok()) return Status::failure("remove " + cgroup + ": " + removed.message());
  return message.figures;
}

}  // namespace skiff::ebpf::bench
