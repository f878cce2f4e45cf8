#include "ebpf/map_writer.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
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

// A released extent waits this long before it is handed out again: a program that read a
// frontend before it was switched away from the extent has long finished with it by then.
constexpr uint64_t kQuarantineNs = 1'000'000'000;

uint64_t monotonicNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

uint32_t aligned(uint32_t size) {
  return (size + SKIFF_RING_ALIGN - 1) & ~static_cast<uint32_t>(SKIFF_RING_ALIGN - 1);
}

// The kernel's internal ENOTSUPP (no batch operation for this map type); not in <errno.h>.
constexpr int kKernelEnotsupp = 524;

// dataplane::kMaglevEmpty: a ring entry that names no backend, never translated.
constexpr uint32_t kEmptyRingEntry = UINT32_MAX;

// A hash of a ring's entries, for ringIntact(): two independent lanes (about two cycles per
// entry).
uint64_t ringHash(const uint32_t* ring, uint32_t size) {
  constexpr uint64_t kMul = 0x9e3779b97f4a7c15ULL;
  uint64_t a = size, b = ~static_cast<uint64_t>(size);
  uint32_t i = 0;
  for (; i + 2 <= size; i += 2) {
    a = (a ^ ring[i]) * kMul;
    b = (b ^ ring[i + 1]) * kMul;
  }
  if (i < size) a = (a ^ ring[i]) * kMul;
  return a ^ (b >> 1) ^ (b << 63);
}

bool batchUnsupported(int err) {
  return err == EINVAL || err == kKernelEnotsupp || err == EOPNOTSUPP;
}

}  // namespace

MapWriter::MapWriter(const MapFds& fds, uint32_t maxRings) : fds_(fds), maxRings_(maxRings) {
  if (Status s = mapRings(); !s.ok()) ringsError_ = s.message();
}

MapWriter::~MapWriter() {
  if (rings_ != nullptr) ::munmap(rings_, reservedBytes_);
}

Status MapWriter::mapRings() {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fds_.rings, &info, &len) != 0) {
    return Status::failure(std::string("info of " SKIFF_MAP_RINGS ": ") + std::strerror(errno));
  }
  if (info.type != BPF_MAP_TYPE_ARRAY || info.value_size != sizeof(skiff_ring_block) ||
      (info.map_flags & BPF_F_MMAPABLE) == 0 || info.max_entries < 2) {
    return Status::failure(SKIFF_MAP_RINGS " is not an mmapable ARRAY of ring blocks");
  }
  ringEntries_ = info.max_entries * SKIFF_RING_ALIGN;
  // Mapped as far as rings reach, not whole: a mapping of a BPF array is populated at mmap time,
  // so mapping all of it would count all of it in the agent's RSS.
  return ensureMapped(SKIFF_RING_ALIGN);
}

Status MapWriter::ensureMapped(uint64_t entries) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t total =
      (static_cast<size_t>(ringEntries_) * sizeof(uint32_t) + page - 1) / page * page;
  const size_t need = std::min(total, (entries * sizeof(uint32_t) + page - 1) / page * page);
  if (rings_ != nullptr && need <= ringBytes_) return {};
  if (rings_ == nullptr) {
    // Address space for all of it, mapped piece by piece below: a growth maps (and populates)
    // only the new piece, and the address of the ring memory never changes.
    void* at =
        ::mmap(nullptr, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (at == MAP_FAILED) {
      return Status::failure(std::string("reserve address space for " SKIFF_MAP_RINGS ": ") +
                             std::strerror(errno));
    }
    rings_ = static_cast<uint32_t*>(at);
    reservedBytes_ = total;
    ringBytes_ = 0;
  }
  // Grow by a step of up to 4 MiB beyond what is needed (few calls while rings are added one by
  // one, none of them long: each populates its piece), in whole 256 KiB steps.
  constexpr size_t kStep = 256 * 1024;
  constexpr size_t kMaxSlack = 4 * 1024 * 1024;
  size_t bytes = std::max(need, ringBytes_ + std::min(ringBytes_ / 2, kMaxSlack));
  bytes = std::min(total, (bytes + kStep - 1) / kStep * kStep);
  void* at = ::mmap(reinterpret_cast<uint8_t*>(rings_) + ringBytes_, bytes - ringBytes_,
                    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fds_.rings,
                    static_cast<off_t>(ringBytes_));
  if (at == MAP_FAILED) {
    return Status::failure(std::string("mmap " SKIFF_MAP_RINGS ": ") + std::strerror(errno));
  }
  ringBytes_ = bytes;
  return {};
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
  if (batching_) {
    frontendKeys_.push_back(key);
    frontendValues_.push_back(value);
    frontends_[k] = value;
    return {};
  }
  Status s = check(bpf_map_update_elem(fds_.services, &key, &value, BPF_ANY) != 0 ? errno : 0,
                   "update " SKIFF_MAP_SERVICES);
  if (s.ok()) frontends_[k] = value;
  return s;
}

Status MapWriter::deleteFrontend(const skiff_frontend_key& key) {
  const FrontendBytes k = bytesOf(key);
  frontends_.erase(k);
  // A queued write of the same key would bring it back.
  for (size_t i = 0; i < frontendKeys_.size();) {
    if (sameBytes(frontendKeys_[i], key)) {
      frontendKeys_.erase(frontendKeys_.begin() + static_cast<std::ptrdiff_t>(i));
      frontendValues_.erase(frontendValues_.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
  if (bpf_map_delete_elem(fds_.services, &key) != 0 && errno != ENOENT) {
    return check(errno, "delete from " SKIFF_MAP_SERVICES);
  }
  ++calls_;
  return {};
}

Status MapWriter::putBackend(uint32_t id, const skiff_backend& value) {
  auto it = backends_.find(id);
  if (it != backends_.end() && sameBytes(it->second, value)) return {};
  if (batching_) {
    backendKeys_.push_back(id);
    backendValues_.push_back(value);
    backends_[id] = value;
    return {};
  }
  Status s = check(bpf_map_update_elem(fds_.backends, &id, &value, BPF_ANY) != 0 ? errno : 0,
                   "update " SKIFF_MAP_BACKENDS);
  if (s.ok()) backends_[id] = value;
  return s;
}

Status MapWriter::clearBackend(uint32_t id) {
  const skiff_backend none{};
  return putBackend(id, none);
}

template <class K, class V>
Status MapWriter::updateBatch(int fd, std::vector<K>& keys, std::vector<V>& values,
                              const char* what) {
  if (keys.empty()) return {};
  // A key queued twice: the last value wins (a batch must not name a key twice).
  if (keys.size() > 1) {
    std::vector<size_t> order(keys.size());
    for (size_t i = 0; i < order.size(); ++i)
      order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return std::memcmp(&keys[a], &keys[b], sizeof(K)) < 0;
    });
    std::vector<K> k;
    std::vector<V> v;
    k.reserve(keys.size());
    v.reserve(keys.size());
    for (size_t i = 0; i < order.size(); ++i) {
      const bool lastOfKey = i + 1 == order.size() ||
                             std::memcmp(&keys[order[i]], &keys[order[i + 1]], sizeof(K)) != 0;
      if (!lastOfKey) continue;
      k.push_back(keys[order[i]]);
      v.push_back(values[order[i]]);
    }
    keys.swap(k);
    values.swap(v);
  }
  auto count = static_cast<uint32_t>(keys.size());
  LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY, .flags = 0);
  const int err =
      bpf_map_update_batch(fd, keys.data(), values.data(), &count, &opts) != 0 ? errno : 0;
  if (err == 0) {
    ++calls_;
    return {};
  }
  if (!batchUnsupported(err)) return check(err, what);
  ++batchFallbacks_;
  for (size_t i = std::min<size_t>(count, keys.size()); i < keys.size(); ++i) {
    const int e = bpf_map_update_elem(fd, &keys[i], &values[i], BPF_ANY) != 0 ? errno : 0;
    if (Status s = check(e, what); !s.ok()) return s;
  }
  return {};
}

Status MapWriter::flush() {
  batching_ = false;
  // Backends and names first: the frontends of the same flush may name them.
  Status s =
      updateBatch(fds_.backends, backendKeys_, backendValues_, "batch update " SKIFF_MAP_BACKENDS);
  if (!s.ok()) {
    for (uint32_t id : backendKeys_)
      backends_.erase(id);  // not known to be written: rewritten next time
  }
  if (s.ok()) {
    s = updateBatch(fds_.serviceNames, nameKeys_, nameValues_, "batch update " SKIFF_MAP_SVC_NAMES);
  }
  Status f;
  if (s.ok()) {
    f = updateBatch(fds_.services, frontendKeys_, frontendValues_,
                    "batch update " SKIFF_MAP_SERVICES);
  }
  if (!s.ok() || !f.ok()) {
    for (const skiff_frontend_key& k : frontendKeys_)
      frontends_.erase(bytesOf(k));
  }
  backendKeys_.clear();
  backendValues_.clear();
  nameKeys_.clear();
  nameValues_.clear();
  frontendKeys_.clear();
  frontendValues_.clear();
  return s.ok() ? f : s;
}

void MapWriter::reclaim(bool all) {
  const uint64_t now = monotonicNs();
  for (size_t i = 0; i < quarantine_.size();) {
    const Quarantined& q = quarantine_[i];
    if (all || now - q.releasedNs >= kQuarantineNs) {
      freeExtent(q.start, q.size);
      quarantine_[i] = quarantine_.back();
      quarantine_.pop_back();
    } else {
      ++i;
    }
  }
}

void MapWriter::freeExtent(uint32_t start, uint32_t size) {
  auto [it, inserted] = free_.emplace(start, size);
  if (!inserted) return;
  // Merge with the neighbours, and give the top back to the bump pointer.
  if (auto next = std::next(it); next != free_.end() && it->first + it->second == next->first) {
    it->second += next->second;
    free_.erase(next);
  }
  if (it != free_.begin()) {
    auto prev = std::prev(it);
    if (prev->first + prev->second == it->first) {
      prev->second += it->second;
      free_.erase(it);
      it = prev;
    }
  }
  if (it->first + it->second == top_) {
    top_ = it->first;
    free_.erase(it);
  }
}

uint32_t MapWriter::allocate(uint32_t size) {
  if (maxRings_ != 0 && extents_.size() >= maxRings_) return 0;
  const uint32_t want = aligned(size);
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (attempt == 1) reclaim(false);
    // Last resort: released extents before their quarantine ends (skiff_listed_backend keeps a
    // reader that raced the reuse from sending to another service's backend).
    if (attempt == 2) reclaim(true);
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->second < want) continue;
      const uint32_t start = it->first;
      const uint32_t rest = it->second - want;
      free_.erase(it);
      if (rest != 0) free_.emplace(start + want, rest);
      return start;
    }
    if (static_cast<uint64_t>(top_) + want <= ringEntries_ &&
        ensureMapped(static_cast<uint64_t>(top_) + want).ok()) {
      const uint32_t start = top_;
      top_ += want;
      return start;
    }
  }
  return 0;
}

Result<uint32_t> MapWriter::putRing(uint32_t start, std::span<const uint32_t> table) {
  return putRing(start, table, {});
}

Result<uint32_t> MapWriter::putRing(uint32_t start, std::span<const uint32_t> table,
                                    std::span<const uint32_t> ids) {
  if (table.empty() || table.size() > SKIFF_MAX_RING_SIZE) {
    return Status::failure("Maglev ring of " + std::to_string(table.size()) + " entries");
  }
  if (rings_ == nullptr) return Status::failure(ringsError_);
  const auto size = static_cast<uint32_t>(table.size());
  // With ids: entry v goes into the ring as byIndex[v + 1], where byIndex[0] is the empty entry
  // (kEmptyRingEntry + 1 wraps to 0), so the copy has no branch per entry.
  const uint32_t* byIndex = nullptr;
  if (!ids.empty()) {
    // Every index names a backend: the largest v + 1 (0 for empty entries) is at most ids.size().
    uint32_t top = 0;
    for (uint32_t v : table)
      top = std::max(top, v + 1);
    if (top > ids.size()) {
      for (uint32_t v : table) {
        if (v != kEmptyRingEntry && v >= ids.size()) {
          return Status::failure("Maglev ring names index " + std::to_string(v) + " of " +
                                 std::to_string(ids.size()) + " backends");
        }
      }
    }
    ringIds_.resize(ids.size() + 1);
    ringIds_[0] = kEmptyRingEntry;
    std::copy(ids.begin(), ids.end(), ringIds_.begin() + 1);
    byIndex = ringIds_.data();
  }
  // Entry `pos` as the ring must hold it.
  auto entry = [&](uint32_t pos) -> uint32_t {
    const uint32_t v = table[pos];
    return byIndex == nullptr ? v : byIndex[v + 1];
  };
  auto old = extents_.find(start);
  const bool sameSize = old != extents_.end() && old->second == size;
  if (sameSize) {
    bool same = true;
    if (ids.empty()) {
      same = std::memcmp(rings_ + start, table.data(), size * sizeof(uint32_t)) == 0;
    } else {
      for (uint32_t pos = 0; pos < size && same; ++pos)
        same = rings_[start + pos] == entry(pos);
    }
    if (same) {
      // Known to match (a ring adopted after a restart is hashed here on first use).
      ringHashes_[start] = ringHash(rings_ + start, size);
      return start;
    }
  }
  const uint32_t fresh = allocate(size);
  if (fresh != 0) {
    if (ids.empty()) {
      std::memcpy(rings_ + fresh, table.data(), size * sizeof(uint32_t));
    } else {
      uint32_t* out = rings_ + fresh;
      const uint32_t* in = table.data();
      for (uint32_t pos = 0; pos < size; ++pos)
        out[pos] = byIndex[in[pos] + 1];
    }
    extents_[fresh] = size;
    ringHashes_[fresh] = ringHash(rings_ + fresh, size);
    ++calls_;
    return fresh;
  }
  if (!sameSize) {
    ++failedUpdates_;
    return Status::failure(
        "no room for a Maglev ring of " + std::to_string(size) + " entries (" +
        std::to_string(extents_.size()) + " rings in " + std::to_string(ringEntries_) +
        " entries of " SKIFF_MAP_RINGS ": raise the ring memory, skiff agent --lb-ring-memory-mb)");
  }
  // In place, position by position: each entry names the old or the new backend, both listed.
  for (uint32_t pos = 0; pos < size; ++pos) {
    const uint32_t v = entry(pos);
    if (rings_[start + pos] != v) {
      std::atomic_ref<uint32_t>(rings_[start + pos]).store(v, std::memory_order_relaxed);
    }
  }
  ringHashes_[start] = ringHash(rings_ + start, size);
  ++inPlaceRingWrites_;
  ++calls_;
  return start;
}

void MapWriter::reserveRingEntries(uint64_t entries) {
  if (rings_ == nullptr || entries == 0) return;
  (void)ensureMapped(std::min<uint64_t>(static_cast<uint64_t>(top_) + entries, ringEntries_));
}

void MapWriter::releaseRing(uint32_t start) {
  auto it = extents_.find(start);
  if (it == extents_.end()) return;
  quarantine_.push_back({start, aligned(it->second), monotonicNs()});
  extents_.erase(it);
  ringHashes_.erase(start);
}

bool MapWriter::ringIntact(uint32_t start) const {
  auto it = extents_.find(start);
  auto hash = ringHashes_.find(start);
  if (it == extents_.end() || hash == ringHashes_.end() || rings_ == nullptr) return false;
  return ringHash(rings_ + start, it->second) == hash->second;
}

std::span<const uint32_t> MapWriter::ring(uint32_t start) const {
  auto it = extents_.find(start);
  if (it == extents_.end() || rings_ == nullptr) return {};
  return {rings_ + start, it->second};
}

uint32_t MapWriter::ringSize(uint32_t start) const {
  auto it = extents_.find(start);
  return it == extents_.end() ? 0 : it->second;
}

bool MapWriter::adoptRing(uint32_t start, uint32_t size) {
  if (rings_ == nullptr || start < SKIFF_RING_ALIGN || start % SKIFF_RING_ALIGN != 0 || size == 0 ||
      size > SKIFF_MAX_RING_SIZE || static_cast<uint64_t>(start) + aligned(size) > ringEntries_) {
    return false;
  }
  auto it = extents_.find(start);
  if (it != extents_.end()) return it->second == size;
  // Adopted extents come in any order: the space between them is free once all are known (the
  // bump pointer moves past each; gaps are recorded below).
  const uint32_t end = start + aligned(size);
  if (start >= top_) {
    if (!ensureMapped(end).ok()) return false;
    if (start > top_) freeExtent(top_, start - top_);
    top_ = end;
  } else {
    // Inside the covered range: it must lie in a free gap.
    auto gap = free_.upper_bound(start);
    if (gap == free_.begin()) return false;
    --gap;
    const uint32_t gapStart = gap->first;
    const uint32_t gapEnd = gap->first + gap->second;
    if (end > gapEnd) return false;
    free_.erase(gap);
    if (start > gapStart) free_.emplace(gapStart, start - gapStart);
    if (gapEnd > end) free_.emplace(end, gapEnd - end);
  }
  extents_[start] = size;
  return true;
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
  if (batching_) {
    nameKeys_.push_back(svcId);
    nameValues_.push_back(v);
    return {};
  }
  return check(bpf_map_update_elem(fds_.serviceNames, &svcId, &v, BPF_ANY) != 0 ? errno : 0,
               "update " SKIFF_MAP_SVC_NAMES);
}

Status MapWriter::deleteServiceName(uint32_t svcId) {
  for (size_t i = 0; i < nameKeys_.size();) {
    if (nameKeys_[i] == svcId) {
      nameKeys_.erase(nameKeys_.begin() + static_cast<std::ptrdiff_t>(i));
      nameValues_.erase(nameValues_.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
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
