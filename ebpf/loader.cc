#include "ebpf/loader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <utility>

#include "skiff_sock.skel.h"
#include "skiff_xdp.skel.h"

namespace skiff::ebpf {
namespace {

using dataplane::Result;
using dataplane::Status;

std::string errnoText(int err) {
  return std::strerror(err < 0 ? -err : err);
}

Status setMax(bpf_map* map, uint32_t entries) {
  const int err = bpf_map__set_max_entries(map, entries);
  if (err != 0) {
    return Status::failure(std::string("map ") + bpf_map__name(map) +
                           ": set_max_entries: " + errnoText(err));
  }
  return {};
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

constexpr const char* kLinkPrefix = "link_";

// Opens the maps pinned under `dir` for `obj`'s maps and has `obj` use them. Returns whether it
// did (none pinned: false). Some pinned and others not, or a pinned map of another layout or
// capacity: an error naming it.
Result<bool> reusePinnedMaps(bpf_object* obj, const std::string& dir) {
  std::vector<std::pair<bpf_map*, std::string>> maps;
  size_t pinned = 0;
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, obj) {
    if (bpf_map__is_internal(map)) continue;
    const std::string path = dir + "/" + bpf_map__name(map);
    pinned += exists(path) ? 1 : 0;
    maps.emplace_back(map, path);
  }
  if (pinned == 0) return false;
  if (pinned != maps.size()) {
    return Status::failure("pin directory " + dir + " holds " + std::to_string(pinned) + " of " +
                           std::to_string(maps.size()) +
                           " maps (an interrupted run?): run `skiff lb cleanup --pin-dir " + dir +
                           "` first");
  }
  for (const auto& [m, path] : maps) {
    const int fd = bpf_obj_get(path.c_str());
    if (fd < 0) return Status::failure("open pinned map " + path + ": " + errnoText(errno));
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) {
      const int err = errno;
      ::close(fd);
      return Status::failure("info of pinned map " + path + ": " + errnoText(err));
    }
    // (Binding `path` by name: clang before 16 cannot capture a structured binding.)
    const auto want = [&, &path = path](const char* field, uint32_t have,
                                        uint32_t wanted) -> Status {
      if (have == wanted) return {};
      return Status::failure("pinned map " + path + " has " + field + " " + std::to_string(have) +
                             ", this loader wants " + std::to_string(wanted) +
                             " (another Skiff version or other capacities): run `skiff lb "
                             "cleanup --pin-dir " +
                             dir + "` (resets flows) or load with the same options");
    };
    Status s = want("type", info.type, bpf_map__type(m));
    if (s.ok()) s = want("key size", info.key_size, bpf_map__key_size(m));
    if (s.ok()) s = want("value size", info.value_size, bpf_map__value_size(m));
    if (s.ok()) s = want("max_entries", info.max_entries, bpf_map__max_entries(m));
    if (s.ok() && bpf_map__reuse_fd(m, fd) != 0) {
      s = Status::failure("reuse pinned map " + path + ": " + errnoText(errno));
    }
    ::close(fd);  // reuse_fd duplicated it
    if (!s.ok()) return s;
  }
  return true;
}

// The SKIFF_ABI_VERSION recorded in the skiff_meta map pinned under `dir`, 0 if there is none
// (maps pinned before version 2 had no marker).
uint32_t pinnedAbiVersion(const std::string& dir) {
  const int fd = bpf_obj_get((dir + "/" SKIFF_MAP_META).c_str());
  if (fd < 0) return 0;
  uint32_t key = 0;
  uint32_t version = 0;
  if (bpf_map_lookup_elem(fd, &key, &version) != 0) version = 0;
  ::close(fd);
  return version;
}

// Maps pinned under `dir` by a loader of another layout version: unpins them (links stay, so the
// old programs keep running until attach swaps the new ones in). Returns whether it did.
Result<bool> unpinOtherVersion(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return false;
  std::vector<std::string> maps;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.rfind("skiff_", 0) == 0) maps.push_back(name);
  }
  ::closedir(d);
  if (maps.empty() || pinnedAbiVersion(dir) == SKIFF_ABI_VERSION) return false;
  for (const std::string& name : maps) {
    const std::string path = dir + "/" + name;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return Status::failure("unpin " + path +
                             " (maps of another Skiff version): " + errnoText(errno));
    }
  }
  return true;
}

Status pinMissing(bpf_object* obj, const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::failure("mkdir " + dir + ": " + errnoText(errno));
  }
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, obj) {
    if (bpf_map__is_internal(map)) continue;
    const std::string path = dir + "/" + bpf_map__name(map);
    if (exists(path)) continue;
    if (bpf_obj_pin(bpf_map__fd(map), path.c_str()) != 0) {
      return Status::failure("pin " + path + " (is bpffs mounted on " + dir +
                             "'s parent?): " + errnoText(errno));
    }
  }
  return {};
}

}  // namespace

uint32_t ringEntriesFor(const LoadOptions& options) {
  // One default-size ring (16381, 16384 in whole blocks) per service id up to 1,024 (64 MiB of
  // preallocated kernel memory; more only when asked), and the first block (never handed out).
  uint64_t entries =
      options.ringEntries != 0
          ? options.ringEntries
          : static_cast<uint64_t>(std::min<uint32_t>(options.services, kDefaultRingServices)) *
                    16384u +
                SKIFF_RING_ALIGN;
  entries = (entries + SKIFF_RING_ALIGN - 1) / SKIFF_RING_ALIGN * SKIFF_RING_ALIGN;
  return static_cast<uint32_t>(std::min<uint64_t>(entries, UINT32_MAX / 2));
}

Programs::~Programs() {
  release();
  if (sock_ != nullptr) skiff_sock__destroy(sock_);
  if (xdp_ != nullptr) skiff_xdp__destroy(xdp_);
}

Result<std::unique_ptr<Programs>> Programs::load(const LoadOptions& options,
                                                 const std::string& pinDir) {
  std::unique_ptr<Programs> p(new Programs());
  p->pinDir_ = pinDir;
  p->xdp_ = skiff_xdp__open();
  if (p->xdp_ == nullptr) return Status::failure("open skiff_xdp: " + errnoText(errno));
  auto* x = p->xdp_;
  x->rodata->skiff_cfg_fwd_mode = options.fwdMode;
  if (options.lbMode != SKIFF_LB_SNAT && options.lbMode != SKIFF_LB_DSR) {
    return Status::failure("load balancer mode " + std::to_string(options.lbMode) +
                           ": expected SKIFF_LB_SNAT or SKIFF_LB_DSR");
  }
  x->rodata->skiff_cfg_lb_mode = options.lbMode;
  x->rodata->skiff_cfg_dsr_src4 = options.dsrSourceV4;
  x->rodata->skiff_cfg_reject = options.rejectWithoutBackends ? 1 : 0;
  if (options.ctTcpNs != 0) x->rodata->skiff_cfg_ct_tcp_ns = options.ctTcpNs;
  if (options.ctOtherNs != 0) x->rodata->skiff_cfg_ct_other_ns = options.ctOtherNs;
  if (options.ctClosingNs != 0) x->rodata->skiff_cfg_ct_closing_ns = options.ctClosingNs;

  const std::pair<bpf_map*, uint32_t> sizes[] = {
      {x->maps.skiff_services, options.frontends},
      {x->maps.skiff_backends, options.backends},
      {x->maps.skiff_rings, ringEntriesFor(options) / SKIFF_RING_ALIGN},
      {x->maps.skiff_ct, options.conntrack},
      {x->maps.skiff_sock_revnat, options.sockRevNat},
      {x->maps.skiff_affinity, options.affinity},
      {x->maps.skiff_src_ranges, options.sourceRanges},
      {x->maps.skiff_svc_stats, options.services},
      {x->maps.skiff_be_stats, options.backends},
      {x->maps.skiff_svc_names, options.services},
  };
  for (const auto& [map, entries] : sizes) {
    if (Status s = setMax(map, entries); !s.ok()) return s;
  }
  if (options.conntrackWithoutLru) {
    const int err = bpf_map__set_type(x->maps.skiff_ct, BPF_MAP_TYPE_HASH);
    if (err != 0) return Status::failure("conntrack as HASH: " + errnoText(err));
  }
  if (!pinDir.empty()) {
    auto replaced = unpinOtherVersion(pinDir);
    if (!replaced.ok()) return replaced.status();
    p->replacedOldPins_ = *replaced;
    auto reused = reusePinnedMaps(x->obj, pinDir);
    if (!reused.ok()) return reused.status();
    p->reusedPinnedMaps_ = *reused;
  }
  if (!options.withXdp) bpf_program__set_autoload(x->progs.skiff_xdp_lb, false);
  if (!options.withTc) {
    bpf_program__set_autoload(x->progs.skiff_tc_lb_in, false);
    bpf_program__set_autoload(x->progs.skiff_tc_lb_out, false);
  }
  if (const int err = skiff_xdp__load(x); err != 0) {
    return Status::failure("load skiff_xdp (see the verifier log on stderr): " + errnoText(err));
  }
  p->maps_ = MapFds{
      .services = bpf_map__fd(x->maps.skiff_services),
      .backends = bpf_map__fd(x->maps.skiff_backends),
      .rings = bpf_map__fd(x->maps.skiff_rings),
      .conntrack = bpf_map__fd(x->maps.skiff_ct),
      .sockRevNat = bpf_map__fd(x->maps.skiff_sock_revnat),
      .affinity = bpf_map__fd(x->maps.skiff_affinity),
      .sourceRanges = bpf_map__fd(x->maps.skiff_src_ranges),
      .svcStats = bpf_map__fd(x->maps.skiff_svc_stats),
      .backendStats = bpf_map__fd(x->maps.skiff_be_stats),
      .global = bpf_map__fd(x->maps.skiff_global),
      .serviceNames = bpf_map__fd(x->maps.skiff_svc_names),
  };

  if (!p->reusedPinnedMaps_) {
    const uint32_t key = 0;
    const uint32_t version = SKIFF_ABI_VERSION;
    if (bpf_map_update_elem(bpf_map__fd(x->maps.skiff_meta), &key, &version, BPF_ANY) != 0) {
      return Status::failure("write " SKIFF_MAP_META ": " + errnoText(errno));
    }
  }
  if (!pinDir.empty()) {
    if (Status s = pinMissing(x->obj, pinDir); !s.ok()) return s;
  }

  if (!options.withSocketLb) return p;
  p->sock_ = skiff_sock__open();
  if (p->sock_ == nullptr) return Status::failure("open skiff_sock: " + errnoText(errno));
  // The socket object uses the XDP object's maps: same names, one set of tables.
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, p->sock_->obj) {
    if (bpf_map__is_internal(map)) continue;
    const bpf_map* shared = bpf_object__find_map_by_name(x->obj, bpf_map__name(map));
    if (shared == nullptr) continue;
    if (const int err = bpf_map__reuse_fd(map, bpf_map__fd(shared)); err != 0) {
      return Status::failure(std::string("share map ") + bpf_map__name(map) + ": " +
                             errnoText(err));
    }
  }
  if (const int err = skiff_sock__load(p->sock_); err != 0) {
    return Status::failure("load skiff_sock (see the verifier log on stderr): " + errnoText(err));
  }
  return p;
}

int Programs::xdpProgram() const {
  return bpf_program__fd(xdp_->progs.skiff_xdp_lb);
}

int Programs::tcIngressProgram() const {
  return bpf_program__fd(xdp_->progs.skiff_tc_lb_in);
}

int Programs::tcEgressProgram() const {
  return bpf_program__fd(xdp_->progs.skiff_tc_lb_out);
}

TcxLinkInfo tcxLinkInfo(const void* bpfLinkInfo) {
  TcxLinkInfo out;
  const auto* base = static_cast<const unsigned char*>(bpfLinkInfo) + offsetof(bpf_link_info, xdp);
  std::memcpy(&out.ifindex, base, 4);
  std::memcpy(&out.attachType, base + 4, 4);
  return out;
}

std::optional<NodePortMode> parseNodePortMode(std::string_view text) {
  if (text == "xdp") return NodePortMode::kXdp;
  if (text == "tc") return NodePortMode::kTc;
  if (text == "auto") return NodePortMode::kAuto;
  return std::nullopt;
}

std::string_view nodePortModeName(NodePortMode mode) {
  switch (mode) {
    case NodePortMode::kXdp:
      return "xdp";
    case NodePortMode::kTc:
      return "tc";
    case NodePortMode::kAuto:
      return "auto";
  }
  return "?";
}

std::optional<uint32_t> parseLbMode(std::string_view text) {
  if (text == "snat") return SKIFF_LB_SNAT;
  if (text == "dsr") return SKIFF_LB_DSR;
  return std::nullopt;
}

std::string_view lbModeName(uint32_t mode) {
  return mode == SKIFF_LB_DSR ? "dsr" : mode == SKIFF_LB_SNAT ? "snat" : "?";
}

int Programs::socketProgram(const std::string& name) const {
  if (sock_ == nullptr) return -1;
  const bpf_program* prog = bpf_object__find_program_by_name(sock_->obj, name.c_str());
  return prog == nullptr ? -1 : bpf_program__fd(prog);
}

std::vector<std::pair<std::string, int>> Programs::programs() const {
  std::vector<std::pair<std::string, int>> out;
  for (bpf_object* obj :
       {xdp_ != nullptr ? xdp_->obj : nullptr, sock_ != nullptr ? sock_->obj : nullptr}) {
    if (obj == nullptr) continue;
    bpf_program* prog = nullptr;
    bpf_object__for_each_program(prog, obj) {
      out.emplace_back(bpf_program__name(prog), bpf_program__fd(prog));
    }
  }
  return out;
}

Status Programs::attachLink(int progFd, int targetFd, int attachType, uint32_t flags,
                            const std::string& pinName, const std::string& what) {
  const std::string pin = pinDir_.empty() ? std::string() : pinDir_ + "/" + kLinkPrefix + pinName;
  if (!pin.empty() && exists(pin)) {
    // An earlier run's link: swap the program in if it is the same attachment, else replace it.
    const int fd = bpf_obj_get(pin.c_str());
    if (fd < 0) return Status::failure("open pinned link " + pin + ": " + errnoText(errno));
    bpf_link_info info{};
    uint32_t len = sizeof(info);
    bool same = bpf_obj_get_info_by_fd(fd, &info, &len) == 0;
    if (same && attachType == BPF_XDP) {
      same = info.type == BPF_LINK_TYPE_XDP && static_cast<int>(info.xdp.ifindex) == targetFd;
    } else if (same && (attachType == kTcxIngress || attachType == kTcxEgress)) {
      const TcxLinkInfo tcx = tcxLinkInfo(&info);
      same = static_cast<int>(info.type) == kLinkTypeTcx &&
             static_cast<int>(tcx.ifindex) == targetFd &&
             static_cast<int>(tcx.attachType) == attachType;
    } else if (same) {
      struct stat st {};
      same = info.type == BPF_LINK_TYPE_CGROUP && ::fstat(targetFd, &st) == 0 &&
             info.cgroup.cgroup_id == static_cast<uint64_t>(st.st_ino) &&
             static_cast<int>(info.cgroup.attach_type) == attachType;
    }
    if (same && bpf_link_update(fd, progFd, nullptr) == 0) {
      linkFds_.push_back(fd);
      return {};
    }
    bpf_link_detach(fd);
    ::close(fd);
    ::unlink(pin.c_str());
  }
  LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = flags);
  const int fd = bpf_link_create(progFd, targetFd, static_cast<bpf_attach_type>(attachType), &opts);
  if (fd < 0) return Status::failure("attach " + what + ": " + errnoText(errno));
  linkFds_.push_back(fd);
  if (!pin.empty() && bpf_obj_pin(fd, pin.c_str()) != 0) {
    return Status::failure("pin " + pin + ": " + errnoText(errno));
  }
  return {};
}

Status Programs::attachXdp(int ifindex, bool native) {
  if (xdpProgram() < 0) {
    return Status::failure("attach XDP to interface " + std::to_string(ifindex) +
                           ": the XDP program was not loaded (LoadOptions::withXdp)");
  }
  // bpf_program__attach_xdp attaches in the mode the kernel picks; ask for one explicitly.
  const uint32_t flags = native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
  if (!pinDir_.empty()) {
    return attachLink(xdpProgram(), ifindex, BPF_XDP, flags, "xdp_" + std::to_string(ifindex),
                      std::string("XDP to interface ") + std::to_string(ifindex) +
                          (native ? " (native)" : " (generic)"));
  }
  const int err = bpf_xdp_attach(ifindex, xdpProgram(), flags, nullptr);
  if (err != 0) return Status::failure("attach XDP: " + errnoText(err));
  xdpIfindexes_.push_back({ifindex, flags});
  return {};
}

Status Programs::attachTc(int ifindex) {
  if (tcIngressProgram() < 0 || tcEgressProgram() < 0) {
    return Status::failure("attach tc to interface " + std::to_string(ifindex) +
                           ": the tc programs were not loaded (LoadOptions::withTc)");
  }
  // TCX links in both modes: without a pin directory they go with the process's descriptors.
  const std::string suffix = std::to_string(ifindex);
  const std::string where = " to interface " + suffix;
  const std::string pinIngress = pinDir_.empty() ? std::string() : "tcx_ingress_" + suffix;
  const std::string pinEgress = pinDir_.empty() ? std::string() : "tcx_egress_" + suffix;
  if (Status s = attachLink(tcIngressProgram(), ifindex, kTcxIngress, 0, pinIngress,
                            "tc ingress" + where + " (TCX, Linux 6.6 or later)");
      !s.ok()) {
    return s;
  }
  return attachLink(tcEgressProgram(), ifindex, kTcxEgress, 0, pinEgress,
                    "tc egress" + where + " (TCX, Linux 6.6 or later)");
}

Result<NodePortMode> Programs::attachNodePort(int ifindex, NodePortMode mode, bool xdpNative) {
  const std::string xdpPin = pinDir_ + "/" + kLinkPrefix + "xdp_" + std::to_string(ifindex);
  const std::string tcPins[] = {
      pinDir_ + "/" + kLinkPrefix + "tcx_ingress_" + std::to_string(ifindex),
      pinDir_ + "/" + kLinkPrefix + "tcx_egress_" + std::to_string(ifindex)};
  // A switch of mode across a restart: the new hook is attached first, then the previous run's
  // other one goes, so the interface ends with one of them and is never without (while both
  // run, the second sees the backend's address, not a frontend, and leaves the packet alone).
  auto dropPin = [&](const std::string& pin) {
    if (pinDir_.empty() || !exists(pin)) return;
    const int fd = bpf_obj_get(pin.c_str());
    if (fd >= 0) {
      bpf_link_detach(fd);
      ::close(fd);
    }
    ::unlink(pin.c_str());
  };
  if (mode == NodePortMode::kTc) {
    if (Status s = attachTc(ifindex); !s.ok()) return s;
    dropPin(xdpPin);
    return NodePortMode::kTc;
  }
  const bool native = mode == NodePortMode::kAuto ? true : xdpNative;
  Status xdp = attachXdp(ifindex, native);
  if (xdp.ok()) {
    for (const std::string& pin : tcPins)
      dropPin(pin);
    return NodePortMode::kXdp;
  }
  if (mode == NodePortMode::kXdp) return xdp;
  if (Status s = attachTc(ifindex); !s.ok()) {
    return Status::failure(xdp.message() + "; tc fallback: " + s.message());
  }
  dropPin(xdpPin);  // an earlier run's XDP link (this run's native attach failed)
  return NodePortMode::kTc;
}

Status Programs::attachCgroup(const std::string& cgroupPath) {
  if (sock_ == nullptr) return Status::failure("socket programs not loaded");
  const int fd = ::open(cgroupPath.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::failure("open cgroup " + cgroupPath + ": " + errnoText(errno));
  Status status;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, sock_->obj) {
    const std::string name = bpf_program__name(prog);
    status = attachLink(bpf_program__fd(prog), fd, bpf_program__expected_attach_type(prog), 0,
                        "cgroup_" + name, name + " to " + cgroupPath);
    if (!status.ok()) break;
  }
  ::close(fd);
  return status;
}

void Programs::release() {
  if (pinDir_.empty()) {
    detachAll();
    return;
  }
  for (int fd : linkFds_)
    ::close(fd);
  linkFds_.clear();
  for (const auto& [ifindex, flags] : xdpIfindexes_)
    bpf_xdp_detach(ifindex, flags, nullptr);
  xdpIfindexes_.clear();
}

void Programs::detachAll() {
  for (int fd : linkFds_) {
    bpf_link_detach(fd);
    ::close(fd);
  }
  linkFds_.clear();
  for (const auto& [ifindex, flags] : xdpIfindexes_)
    bpf_xdp_detach(ifindex, flags, nullptr);
  xdpIfindexes_.clear();
}

Status Programs::detachAndUnpin() {
  detachAll();
  if (pinDir_.empty()) return {};
  return cleanupPinDir(pinDir_);
}

Status Programs::cleanupPinDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return {};
    return Status::failure("open pin directory " + dir + ": " + errnoText(errno));
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  Status status;
  for (const std::string& name : names) {
    const std::string path = dir + "/" + name;
    if (name.rfind(kLinkPrefix, 0) == 0) {
      // A process that still holds the link would keep it attached: detach it for good.
      const int fd = bpf_obj_get(path.c_str());
      if (fd >= 0) {
        bpf_link_detach(fd);
        ::close(fd);
      }
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT && status.ok()) {
      status = Status::failure("unpin " + path + ": " + errnoText(errno));
    }
  }
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT && status.ok()) {
    status = Status::failure("remove pin directory " + dir + ": " + errnoText(errno));
  }
  return status;
}

Status Programs::pinMaps(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::failure("mkdir " + dir + ": " + errnoText(errno));
  }
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, xdp_->obj) {
    if (bpf_map__is_internal(map)) continue;
    const std::string path = dir + "/" + bpf_map__name(map);
    if (const int err = bpf_map__pin(map, path.c_str()); err != 0) {
      return Status::failure("pin " + path + ": " + errnoText(err));
    }
  }
  return {};
}

}  // namespace skiff::ebpf
