#include "ebpf/map_writer.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace skiff::ebpf {
namespace {

using dataplane::Result;
using dataplane::Status;

int possibleCpus() {
  static const int n = libbpf_num_possible_cpus();
  return n;
}

template <class T>
Result<std::vector<T>> readPerCpu(int fd, uint32_t key) {
  const int n = possibleCpus();
  if (n <= 0) return Status::failure("libbpf_num_possible_cpus failed");
  std::vector<T> values(static_cast<size_t>(n));
  if (bpf_map_lookup_elem(fd, &key, values.data()) != 0) {
    return Status::failure("per-CPU lookup of " + std::to_string(key) + ": " +
                           std::strerror(errno));
  }
  return values;
}

template <class T>
Status zeroPerCpu(int fd, uint32_t key) {
  const int n = possibleCpus();
  if (n <= 0) return Status::failure("libbpf_num_possible_cpus failed");
  std::vector<T> values(static_cast<size_t>(n));
  if (bpf_map_update_elem(fd, &key, values.data(), BPF_ANY) != 0) {
    return Status::failure("per-CPU reset of " + std::to_string(key) + ": " + std::strerror(errno));
  }
  return {};
}

}  // namespace

MapWriter::~MapWriter() {
  for (auto& [id, ring] : rings_) {
    if (ring.fd >= 0) ::close(ring.fd);
  }
  for (auto& [id, ring] : pending_) {
    if (ring.fd >= 0) ::close(ring.fd);
  }
}

template <class T, size_t N = sizeof(T)>
std::array<uint8_t, N> bytesOf(const T& value) {
  std::array<uint8_t, N> out;
  std::memcpy(out.data(), &value, N);
  return out;
}

template <class T>
bool sameBytes(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

Status MapWriter::check(int err, const char* what) {
  ++calls_;
  if (err == 0) return {};
  ++failedUpdates_;
  return Status::failure(std::string(what) + ": " + std::strerror(err < 0 ? -err : err));
}

Status MapWriter::putFrontend(const skiff_frontend_key& key, const skiff_service& value) {
  const FrontendBytes k = bytesOf(key);
  auto it = frontends_.find(k);
  if (it != frontends_.end() && sameBytes(it->second, value)) return {};
  Status s = check(bpf_map_update_elem(fds_.services, &key, &value, BPF_ANY) != 0 ? errno : 0,
                   "update " SKIFF_MAP_SERVICES);
  if (s.ok()) frontends_[k] = value;
  return s;
}

Status MapWriter::deleteFrontend(const skiff_frontend_key& key) {
  frontends_.erase(bytesOf(key));
  if (bpf_map_delete_elem(fds_.services, &key) != 0 && errno != ENOENT) {
    return check(errno, "delete from " SKIFF_MAP_SERVICES);
  }
  ++calls_;
  return {};
}

Status MapWriter::putBackend(uint32_t id, const skiff_backend& value) {
  auto it = backends_.find(id);
  if (it != backends_.end() && sameBytes(it->second, value)) return {};
  Status s = check(bpf_map_update_elem(fds_.backends, &id, &value, BPF_ANY) != 0 ? errno : 0,
                   "update " SKIFF_MAP_BACKENDS);
  if (s.ok()) backends_[id] = value;
  return s;
}

Status MapWriter::clearBackend(uint32_t id) {
  const skiff_backend none{};
  return putBackend(id, none);
}

Status MapWriter::writePositions(const Ring& ring, std::span<const uint32_t> table,
                                 std::span<const uint32_t> positions) {
  if (positions.empty()) return {};
  std::vector<uint32_t> keys;
  std::vector<uint32_t> values;
  keys.reserve(positions.size());
  values.reserve(positions.size());
  for (uint32_t pos : positions) {
    if (pos >= table.size() || pos >= ring.size) {
      return Status::failure("ring position " + std::to_string(pos) + " out of range");
    }
    keys.push_back(pos);
    values.push_back(table[pos]);
  }
  auto count = static_cast<uint32_t>(keys.size());
  LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = 0, .flags = 0);
  const int err = bpf_map_update_batch(ring.fd, keys.data(), values.data(), &count, &opts);
  return check(err != 0 ? errno : 0, "batch update of a Maglev ring");
}

Status MapWriter::putRing(uint32_t ringId, std::span<const uint32_t> table,
                          std::span<const uint32_t> changed) {
  if (table.empty() || table.size() > SKIFF_MAX_RING_SIZE) {
    return Status::failure("Maglev ring of " + std::to_string(table.size()) + " entries");
  }
  const auto size = static_cast<uint32_t>(table.size());
  auto it = rings_.find(ringId);
  if (it != rings_.end() && it->second.size == size) {
    return writePositions(it->second, table, changed);
  }
  // A new inner map, filled before anyone can see it, then swapped in.
  LIBBPF_OPTS(bpf_map_create_opts, create, .map_flags = BPF_F_INNER_MAP);
  const int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "skiff_ring", sizeof(uint32_t),
                                sizeof(uint32_t), size, &create);
  if (fd < 0) return check(errno, "create a Maglev ring");
  Ring fresh{fd, size};
  std::vector<uint32_t> all(size);
  for (uint32_t i = 0; i < size; ++i)
    all[i] = i;
  if (Status s = writePositions(fresh, table, all); !s.ok()) {
    ::close(fd);
    return s;
  }
  if (batching_) {
    dropPending(ringId);
    pending_.emplace_back(ringId, fresh);
    return {};
  }
  if (bpf_map_update_elem(fds_.rings, &ringId, &fd, BPF_ANY) != 0) {
    const int err = errno;
    ::close(fd);
    return check(err, "update " SKIFF_MAP_RINGS);
  }
  commitRing(ringId, fresh);
  return {};
}

void MapWriter::commitRing(uint32_t ringId, const Ring& fresh) {
  auto [it, inserted] = rings_.try_emplace(ringId, fresh);
  if (!inserted) {
    ::close(it->second.fd);
    it->second = fresh;
  }
}

void MapWriter::dropPending(uint32_t ringId) {
  auto it = std::find_if(pending_.begin(), pending_.end(),
                         [&](const auto& p) { return p.first == ringId; });
  if (it == pending_.end()) return;
  ::close(it->second.fd);
  pending_.erase(it);
}

namespace {
// The kernel's internal ENOTSUPP (no batch operation for this map type); not in <errno.h>.
constexpr int kKernelEnotsupp = 524;

bool batchUnsupported(int err) {
  return err == EINVAL || err == kKernelEnotsupp || err == EOPNOTSUPP;
}
}  // namespace

Status MapWriter::flushRings() {
  batching_ = false;
  if (pending_.empty()) return {};
  std::vector<std::pair<uint32_t, Ring>> pending;
  pending.swap(pending_);
  std::vector<uint32_t> keys;
  std::vector<int> values;
  for (const auto& [id, ring] : pending) {
    keys.push_back(id);
    values.push_back(ring.fd);
  }
  auto count = static_cast<uint32_t>(keys.size());
  LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY, .flags = 0);
  int err =
      bpf_map_update_batch(fds_.rings, keys.data(), values.data(), &count, &opts) != 0 ? errno : 0;
  size_t done = err == 0 ? keys.size() : std::min<size_t>(count, keys.size());
  Status result =
      check(err != 0 && !batchUnsupported(err) ? err : 0, "batch update " SKIFF_MAP_RINGS);
  if (err != 0 && batchUnsupported(err)) {
    ++batchFallbacks_;
    for (; done < keys.size(); ++done) {
      const int e =
          bpf_map_update_elem(fds_.rings, &keys[done], &values[done], BPF_ANY) != 0 ? errno : 0;
      result = check(e, "update " SKIFF_MAP_RINGS);
      if (!result.ok()) break;
    }
  }
  for (size_t i = 0; i < pending.size(); ++i) {
    if (i < done) {
      commitRing(pending[i].first, pending[i].second);
    } else {
      ::close(pending[i].second.fd);
    }
  }
  return result;
}

Status MapWriter::putRing(uint32_t ringId, std::span<const uint32_t> table) {
  std::vector<uint32_t> all(table.size());
  for (size_t i = 0; i < all.size(); ++i)
    all[i] = static_cast<uint32_t>(i);
  return putRing(ringId, table, all);
}

Status MapWriter::deleteRing(uint32_t ringId) {
  return deleteRings(std::span<const uint32_t>(&ringId, 1));
}

Status MapWriter::deleteRings(std::span<const uint32_t> ringIds) {
  std::vector<uint32_t> keys;
  for (uint32_t id : ringIds) {
    dropPending(id);
    // Only rings the outer map holds go in the batch: a batch stops at the first missing one.
    if (rings_.contains(id)) {
      keys.push_back(id);
    } else if (bpf_map_delete_elem(fds_.rings, &id) != 0 && errno != ENOENT) {
      return check(errno, "delete from " SKIFF_MAP_RINGS);
    } else {
      ++calls_;
    }
  }
  Status result;
  size_t done = 0;
  if (keys.size() > 1) {
    auto count = static_cast<uint32_t>(keys.size());
    LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = 0, .flags = 0);
    const int err = bpf_map_delete_batch(fds_.rings, keys.data(), &count, &opts) != 0 ? errno : 0;
    if (err == 0) {
      ++calls_;
      done = keys.size();
    } else if (batchUnsupported(err) && count == 0) {
      ++batchFallbacks_;
    } else {
      done = std::min<size_t>(count, keys.size());
      result = check(err, "batch delete from " SKIFF_MAP_RINGS);
    }
  }
  for (size_t i = done; result.ok() && i < keys.size(); ++i) {
    if (bpf_map_delete_elem(fds_.rings, &keys[i]) != 0 && errno != ENOENT) {
      result = check(errno, "delete from " SKIFF_MAP_RINGS);
      done = i;
      break;
    }
    ++calls_;
    done = i + 1;
  }
  for (size_t i = 0; i < done; ++i) {
    auto it = rings_.find(keys[i]);
    ::close(it->second.fd);
    rings_.erase(it);
  }
  return result;
}

uint32_t MapWriter::ringSize(uint32_t ringId) const {
  auto it = rings_.find(ringId);
  return it == rings_.end() ? 0 : it->second.size;
}

skiff_src_range_key sourceRangeKey(uint32_t svcId, const dataplane::IpPrefix& range) {
  skiff_src_range_key key{};
  key.prefixlen = SKIFF_SRC_RANGE_PREFIX_BASE + range.length();
  key.svc_id = svcId;
  key.family = static_cast<uint8_t>(range.family());
  copyAddress(range.address(), key.addr);
  return key;
}

Status MapWriter::putSourceRange(uint32_t svcId, const dataplane::IpPrefix& range) {
  const skiff_src_range_key key = sourceRangeKey(svcId, range);
  if (ranges_.contains(bytesOf(key))) return {};
  const uint8_t allowed = 1;
  Status s = check(bpf_map_update_elem(fds_.sourceRanges, &key, &allowed, BPF_ANY) != 0 ? errno : 0,
                   "update " SKIFF_MAP_SRC_RANGES);
  if (s.ok()) ranges_.insert(bytesOf(key));
  return s;
}

Status MapWriter::deleteSourceRange(uint32_t svcId, const dataplane::IpPrefix& range) {
  const skiff_src_range_key key = sourceRangeKey(svcId, range);
  ranges_.erase(bytesOf(key));
  if (bpf_map_delete_elem(fds_.sourceRanges, &key) != 0 && errno != ENOENT) {
    return check(errno, "delete from " SKIFF_MAP_SRC_RANGES);
  }
  ++calls_;
  return {};
}

Status MapWriter::deleteSourceRange(const skiff_src_range_key& key) {
  ranges_.erase(bytesOf(key));
  if (bpf_map_delete_elem(fds_.sourceRanges, &key) != 0 && errno != ENOENT) {
    return check(errno, "delete from " SKIFF_MAP_SRC_RANGES);
  }
  ++calls_;
  return {};
}

Status MapWriter::putServiceName(uint32_t svcId, const std::string& name) {
  skiff_svc_name v{};
  std::memcpy(v.name, name.data(), std::min(name.size(), sizeof(v.name) - 1));
  return check(bpf_map_update_elem(fds_.serviceNames, &svcId, &v, BPF_ANY) != 0 ? errno : 0,
               "update " SKIFF_MAP_SVC_NAMES);
}

Status MapWriter::deleteServiceName(uint32_t svcId) {
  if (bpf_map_delete_elem(fds_.serviceNames, &svcId) != 0 && errno != ENOENT) {
    return check(errno, "delete from " SKIFF_MAP_SVC_NAMES);
  }
  ++calls_;
  return {};
}

void MapWriter::adoptFrontend(const skiff_frontend_key& key, const skiff_service& value) {
  frontends_[bytesOf(key)] = value;
}

void MapWriter::adoptBackend(uint32_t id, const skiff_backend& value) {
  backends_[id] = value;
}

void MapWriter::adoptRing(uint32_t ringId, int fd, uint32_t size) {
  auto [it, fresh] = rings_.try_emplace(ringId, Ring{fd, size});
  if (!fresh) {
    ::close(it->second.fd);
    it->second = Ring{fd, size};
  }
}

void MapWriter::adoptSourceRange(const skiff_src_range_key& key) {
  ranges_.insert(bytesOf(key));
}

const skiff_service* MapWriter::frontend(const skiff_frontend_key& key) const {
  auto it = frontends_.find(bytesOf(key));
  return it == frontends_.end() ? nullptr : &it->second;
}

Status MapWriter::resetServiceStats(uint32_t svcId) {
  ++calls_;
  Status s = zeroPerCpu<skiff_svc_stats>(fds_.svcStats, svcId);
  if (!s.ok()) ++failedUpdates_;
  return s;
}

Status MapWriter::resetBackendStats(uint32_t backendId) {
  ++calls_;
  Status s = zeroPerCpu<skiff_be_stats>(fds_.backendStats, backendId);
  if (!s.ok()) ++failedUpdates_;
  return s;
}

Result<skiff_svc_stats> readServiceStats(int fd, uint32_t svcId) {
  auto values = readPerCpu<skiff_svc_stats>(fd, svcId);
  if (!values.ok()) return values.status();
  skiff_svc_stats sum{};
  for (const auto& v : *values) {
    sum.packets += v.packets;
    sum.bytes += v.bytes;
    sum.new_flows += v.new_flows;
    for (size_t i = 0; i < SKIFF_DROP_REASON_COUNT; ++i)
      sum.drops[i] += v.drops[i];
  }
  return sum;
}

Result<skiff_be_stats> readBackendStats(int fd, uint32_t backendId) {
  auto values = readPerCpu<skiff_be_stats>(fd, backendId);
  if (!values.ok()) return values.status();
  skiff_be_stats sum{};
  for (const auto& v : *values) {
    sum.packets += v.packets;
    sum.bytes += v.bytes;
    sum.new_flows += v.new_flows;
  }
  return sum;
}

Result<uint64_t> readGlobal(int fd, uint32_t index) {
  auto values = readPerCpu<uint64_t>(fd, index);
  if (!values.ok()) return values.status();
  uint64_t sum = 0;
  for (uint64_t v : *values)
    sum += v;
  return sum;
}

}  // namespace skiff::ebpf
