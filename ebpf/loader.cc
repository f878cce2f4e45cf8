#include "ebpf/loader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
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

}  // namespace

Programs::~Programs() {
  detachAll();
  if (sock_ != nullptr) skiff_sock__destroy(sock_);
  if (xdp_ != nullptr) skiff_xdp__destroy(xdp_);
}

Result<std::unique_ptr<Programs>> Programs::load(const LoadOptions& options) {
  std::unique_ptr<Programs> p(new Programs());
  p->xdp_ = skiff_xdp__open();
  if (p->xdp_ == nullptr) return Status::failure("open skiff_xdp: " + errnoText(errno));
  auto* x = p->xdp_;
  x->rodata->skiff_cfg_fwd_mode = options.fwdMode;
  x->rodata->skiff_cfg_reject = options.rejectWithoutBackends ? 1 : 0;
  if (options.ctTcpNs != 0) x->rodata->skiff_cfg_ct_tcp_ns = options.ctTcpNs;
  if (options.ctOtherNs != 0) x->rodata->skiff_cfg_ct_other_ns = options.ctOtherNs;
  if (options.ctClosingNs != 0) x->rodata->skiff_cfg_ct_closing_ns = options.ctClosingNs;

  const std::pair<bpf_map*, uint32_t> sizes[] = {
      {x->maps.skiff_services, options.frontends},
      {x->maps.skiff_backends, options.backends},
      {x->maps.skiff_rings, options.rings},
      {x->maps.skiff_ct, options.conntrack},
      {x->maps.skiff_sock_revnat, options.sockRevNat},
      {x->maps.skiff_affinity, options.affinity},
      {x->maps.skiff_src_ranges, options.sourceRanges},
      {x->maps.skiff_svc_stats, options.services},
      {x->maps.skiff_be_stats, options.backends},
  };
  for (const auto& [map, entries] : sizes) {
    if (Status s = setMax(map, entries); !s.ok()) return s;
  }
  if (options.conntrackWithoutLru) {
    const int err = bpf_map__set_type(x->maps.skiff_ct, BPF_MAP_TYPE_HASH);
    if (err != 0) return Status::failure("conntrack as HASH: " + errnoText(err));
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
  };

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

Status Programs::attachXdp(int ifindex, bool native) {
  // bpf_program__attach_xdp attaches in the mode the kernel picks; ask for one explicitly.
  const uint32_t flags = native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
  const int err = bpf_xdp_attach(ifindex, xdpProgram(), flags, nullptr);
  if (err != 0) return Status::failure("attach XDP: " + errnoText(err));
  xdpIfindexes_.push_back({ifindex, flags});
  return {};
}

Status Programs::attachCgroup(const std::string& cgroupPath) {
  if (sock_ == nullptr) return Status::failure("socket programs not loaded");
  const int fd = ::open(cgroupPath.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::failure("open cgroup " + cgroupPath + ": " + errnoText(errno));
  Status status;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, sock_->obj) {
    bpf_link* link = bpf_program__attach_cgroup(prog, fd);
    if (link == nullptr) {
      status = Status::failure(std::string("attach ") + bpf_program__name(prog) + " to " +
                               cgroupPath + ": " + errnoText(errno));
      break;
    }
    links_.push_back(link);
  }
  ::close(fd);
  return status;
}

void Programs::detachAll() {
  for (bpf_link* link : links_)
    bpf_link__destroy(link);
  links_.clear();
  for (const auto& [ifindex, flags] : xdpIfindexes_)
    bpf_xdp_detach(ifindex, flags, nullptr);
  xdpIfindexes_.clear();
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
