#include "ebpf/map_reader.h"

#include <bpf/bpf.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <utility>

namespace skiff::ebpf {
namespace {

using dataplane::Result;
using dataplane::Status;

std::string errnoText() {
  return std::strerror(errno);
}

// Every key of a HASH or LPM map, by bpf_map_get_next_key.
template <class K>
Result<std::vector<K>> keysOf(int fd, const char* what) {
  std::vector<K> keys;
  K key{};
  K next{};
  const K* previous = nullptr;
  while (bpf_map_get_next_key(fd, previous, &next) == 0) {
    keys.push_back(next);
    key = next;
    previous = &key;
  }
  if (errno != ENOENT) return Status::failure(std::string("iterate ") + what + ": " + errnoText());
  return keys;
}

uint32_t maxEntries(int fd) {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return 0;
  return info.max_entries;
}

void closeAll(MapFds& fds) {
  for (int* fd :
       {&fds.services, &fds.backends, &fds.rings, &fds.conntrack, &fds.sockRevNat, &fds.affinity,
        &fds.sourceRanges, &fds.svcStats, &fds.backendStats, &fds.global, &fds.serviceNames}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

}  // namespace

PinnedMaps::~PinnedMaps() {
  closeAll(fds_);
}

PinnedMaps::PinnedMaps(PinnedMaps&& other) noexcept : fds_(other.fds_) {
  other.fds_ = MapFds{};
}

Result<PinnedMaps> PinnedMaps::open(const std::string& dir) {
  PinnedMaps maps;
  const std::pair<int*, const char*> wanted[] = {
      {&maps.fds_.services, SKIFF_MAP_SERVICES},
      {&maps.fds_.backends, SKIFF_MAP_BACKENDS},
      {&maps.fds_.rings, SKIFF_MAP_RINGS},
      {&maps.fds_.conntrack, SKIFF_MAP_CT},
      {&maps.fds_.sockRevNat, SKIFF_MAP_SOCK_REVNAT},
      {&maps.fds_.affinity, SKIFF_MAP_AFFINITY},
      {&maps.fds_.sourceRanges, SKIFF_MAP_SRC_RANGES},
      {&maps.fds_.svcStats, SKIFF_MAP_SVC_STATS},
      {&maps.fds_.backendStats, SKIFF_MAP_BE_STATS},
      {&maps.fds_.global, SKIFF_MAP_GLOBAL},
      {&maps.fds_.serviceNames, SKIFF_MAP_SVC_NAMES},
  };
  for (const auto& [fd, name] : wanted) {
    const std::string path = dir + "/" + name;
    LIBBPF_OPTS(bpf_obj_get_opts, opts, .file_flags = BPF_F_RDONLY);
    *fd = bpf_obj_get_opts(path.c_str(), &opts);
    if (*fd < 0) {
      return Status::failure("open pinned map " + path + ": " + errnoText() +
                             (errno == ENOENT ? " (is the eBPF data path loaded with this pin "
                                                "directory? skiff agent pins there)"
                                              : ""));
    }
  }
  return maps;
}

Result<std::vector<FrontendEntry>> readFrontends(int fd) {
  auto keys = keysOf<skiff_frontend_key>(fd, SKIFF_MAP_SERVICES);
  if (!keys.ok()) return keys.status();
  std::vector<FrontendEntry> out;
  for (const skiff_frontend_key& k : *keys) {
    FrontendEntry e{k, {}};
    if (bpf_map_lookup_elem(fd, &k, &e.value) == 0) out.push_back(e);
  }
  return out;
}

Result<std::vector<BackendEntry>> readBackends(int fd) {
  const uint32_t max = maxEntries(fd);
  if (max == 0) return Status::failure(std::string("info of ") + SKIFF_MAP_BACKENDS);
  std::vector<BackendEntry> out;
  for (uint32_t id = 1; id < max; ++id) {
    skiff_backend v{};
    if (bpf_map_lookup_elem(fd, &id, &v) != 0) {
      return Status::failure(std::string("read ") + SKIFF_MAP_BACKENDS + ": " + errnoText());
    }
    if (v.family != 0) out.push_back({id, v});
  }
  return out;
}

Result<std::vector<RingEntry>> readRings(int ringsFd, int servicesFd) {
  auto frontends = readFrontends(servicesFd);
  if (!frontends.ok()) return frontends.status();
  std::map<uint32_t, uint32_t> extents;  // start -> size
  for (const FrontendEntry& e : *frontends) {
    for (uint32_t origin = 0; origin < SKIFF_ORIGIN_COUNT; ++origin) {
      if (e.value.ring_start[origin] != SKIFF_ID_NONE && e.value.ring_size[origin] != 0)
        extents[e.value.ring_start[origin]] = e.value.ring_size[origin];
    }
  }
  std::vector<RingEntry> out;
  if (extents.empty()) return out;
  const uint32_t blocks = maxEntries(ringsFd);
  if (blocks == 0) return Status::failure(std::string("info of ") + SKIFF_MAP_RINGS);
  const uint64_t max = static_cast<uint64_t>(blocks) * SKIFF_RING_ALIGN;
  // A read-only fd (PinnedMaps) cannot be mapped: read the blocks of each extent one by one.
  for (const auto& [start, size] : extents) {
    if (static_cast<uint64_t>(start) + size > max) {
      return Status::failure("a frontend names ring entries " + std::to_string(start) + "+" +
                             std::to_string(size) + " beyond " SKIFF_MAP_RINGS "'s " +
                             std::to_string(max));
    }
    RingEntry ring{start, std::vector<uint32_t>(size)};
    for (uint32_t e = 0; e < size;) {
      uint32_t block = (start + e) / SKIFF_RING_ALIGN;
      skiff_ring_block b{};
      if (bpf_map_lookup_elem(ringsFd, &block, &b) != 0) {
        return Status::failure(std::string("read ") + SKIFF_MAP_RINGS + ": " + errnoText());
      }
      for (uint32_t slot = (start + e) % SKIFF_RING_ALIGN; slot < SKIFF_RING_ALIGN && e < size;
           ++slot, ++e)
        ring.table[e] = b.backend_id[slot];
    }
    out.push_back(std::move(ring));
  }
  return out;
}

Result<std::vector<skiff_src_range_key>> readSourceRanges(int fd) {
  return keysOf<skiff_src_range_key>(fd, SKIFF_MAP_SRC_RANGES);
}

Result<std::vector<ServiceName>> readServiceNames(int fd) {
  auto keys = keysOf<uint32_t>(fd, SKIFF_MAP_SVC_NAMES);
  if (!keys.ok()) return keys.status();
  std::vector<ServiceName> out;
  for (uint32_t id : *keys) {
    skiff_svc_name v{};
    if (bpf_map_lookup_elem(fd, &id, &v) != 0) continue;
    v.name[SKIFF_SVC_NAME_LEN - 1] = '\0';
    out.push_back({id, v.name});
  }
  return out;
}

Result<std::vector<Attachment>> readAttachments(const std::string& pinDir) {
  DIR* d = ::opendir(pinDir.c_str());
  if (d == nullptr) return Status::failure("open pin directory " + pinDir + ": " + errnoText());
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.rfind("link_", 0) == 0) names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  std::vector<Attachment> out;
  for (const std::string& name : names) {
    Attachment a;
    a.pin = name;
    a.kind = "unknown";
    const int fd = bpf_obj_get((pinDir + "/" + name).c_str());
    if (fd < 0)
      return Status::failure("open pinned link " + pinDir + "/" + name + ": " + errnoText());
    bpf_link_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) {
      a.programId = info.prog_id;
      if (info.type == BPF_LINK_TYPE_CGROUP) {
        a.kind = "cgroup";
        a.target = info.cgroup.cgroup_id;
        a.detached = info.cgroup.cgroup_id == 0;
      } else if (info.type == BPF_LINK_TYPE_XDP) {
        a.kind = "xdp";
        a.target = info.xdp.ifindex;
        a.detached = info.xdp.ifindex == 0;
      } else if (static_cast<int>(info.type) == kLinkTypeTcx) {
        const TcxLinkInfo tcx = tcxLinkInfo(&info);
        a.kind = static_cast<int>(tcx.attachType) == kTcxEgress ? "tc-egress" : "tc-ingress";
        a.target = tcx.ifindex;
        a.detached = tcx.ifindex == 0;
      }
    }
    ::close(fd);
    const int prog = bpf_prog_get_fd_by_id(a.programId);
    if (prog >= 0) {
      bpf_prog_info pinfo{};
      uint32_t plen = sizeof(pinfo);
      if (bpf_obj_get_info_by_fd(prog, &pinfo, &plen) == 0) a.program = pinfo.name;
      ::close(prog);
    }
    out.push_back(std::move(a));
  }
  return out;
}

std::string frontendText(const skiff_frontend_key& key) {
  const dataplane::IpAddress address = addressFromKey(key.addr, key.family);
  std::string host = address.isUnspecified() ? "*" : address.toString();
  if (key.family == SKIFF_AF_INET6 && !address.isUnspecified()) host = "[" + host + "]";
  const char* proto = key.proto == IPPROTO_TCP    ? "TCP"
                      : key.proto == IPPROTO_UDP  ? "UDP"
                      : key.proto == IPPROTO_SCTP ? "SCTP"
                                                  : "?";
  return host + ":" + std::to_string(fromNetwork16(key.port)) + "/" + proto;
}

std::string backendText(const skiff_backend& backend) {
  const dataplane::IpAddress address = addressFromKey(backend.addr, backend.family);
  const std::string host =
      backend.family == SKIFF_AF_INET6 ? "[" + address.toString() + "]" : address.toString();
  return host + ":" + std::to_string(fromNetwork16(backend.port));
}

}  // namespace skiff::ebpf
