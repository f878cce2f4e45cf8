#include "control/apiserver/process_metrics.h"

#include <sqlite3.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string_view>
#include <vector>

// jemalloc's control interface, present only when the binary is linked with it (SKIFF_MALLOC=
// jemalloc, the default); weak, so a build on the C library's malloc links and skips it.
extern "C" int mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen)
    __attribute__((weak));

namespace skiff::apiserver {
namespace {

void metric(std::string& out, std::string_view name, std::string_view help, std::string_view type,
            double value) {
  char number[64];
  std::snprintf(number, sizeof number, "%.17g", value);
  out.append("# HELP ").append(name).append(" ").append(help).append("\n# TYPE ");
  out.append(name).append(" ").append(type).append("\n");
  out.append(name).append(" ").append(number).append("\n");
}

// /proc/self/stat after the command's closing parenthesis: field 3 (state) onwards.
std::vector<std::string> statFields() {
  std::ifstream in("/proc/self/stat");
  std::string line((std::istreambuf_iterator<char>(in)), {});
  std::vector<std::string> fields;
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return fields;
  std::istringstream rest(line.substr(close + 1));
  for (std::string f; rest >> f;)
    fields.push_back(f);
  return fields;
}

double bootTimeSeconds() {
  std::ifstream in("/proc/stat");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("btime ", 0) == 0) return std::stod(line.substr(6));
  }
  return 0;
}

}  // namespace

void renderProcessMetrics(std::string& out) {
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  // Fields of proc(5) counted from 1: utime 14, stime 15, num_threads 20, starttime 22, vsize 23,
  // rss 24; statFields() starts at field 3.
  const std::vector<std::string> f = statFields();
  auto field = [&](size_t n) { return n - 3 < f.size() ? std::stod(f[n - 3]) : 0.0; };
  metric(out, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
         "counter", (field(14) + field(15)) / ticks);
  metric(out, "process_resident_memory_bytes", "Resident memory size in bytes.", "gauge",
         field(24) * page);
  metric(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge", field(23));
  metric(out, "process_start_time_seconds",
         "Start time of the process since unix epoch in seconds.", "gauge",
         bootTimeSeconds() + field(22) / ticks);
  std::error_code ec;
  size_t fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++fds;
  }
  // The directory iterator's own descriptor is one of them.
  metric(out, "process_open_fds", "Number of open file descriptors.", "gauge",
         static_cast<double>(fds > 0 ? fds - 1 : 0));
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  metric(out, "process_max_fds", "Maximum number of open file descriptors.", "gauge",
         static_cast<double>(limit.rlim_cur));
  metric(out, "skiff_process_threads", "Number of threads of the process.", "gauge", field(20));
  // SQLite's heap (page caches, statements, sorters) is part of the allocator's below; apart,
  // it says how much of a growing heap is the embedded store's.
  sqlite3_int64 sqlite_used = 0;
  sqlite3_int64 sqlite_highwater = 0;
  if (sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &sqlite_used, &sqlite_highwater, 0) ==
      SQLITE_OK) {
    metric(out, "skiff_sqlite_memory_bytes", "Bytes of heap SQLite holds.", "gauge",
           static_cast<double>(sqlite_used));
    metric(out, "skiff_sqlite_memory_highwater_bytes",
           "The most bytes of heap SQLite has held at once.", "gauge",
           static_cast<double>(sqlite_highwater));
  }

  if (mallctl == nullptr) return;
  // The statistics are a snapshot taken at the last epoch: advance it first.
  uint64_t epoch = 1;
  size_t epoch_len = sizeof epoch;
  if (mallctl("epoch", &epoch, &epoch_len, &epoch, epoch_len) != 0) return;
  struct Stat {
    const char* ctl;
    std::string_view name;
    std::string_view help;
  };
  static constexpr Stat kStats[] = {
      {"stats.allocated", "skiff_allocator_allocated_bytes",
       "Bytes the allocator has handed out and not had back (live objects)."},
      {"stats.active", "skiff_allocator_active_bytes",
       "Bytes in the allocator's active pages (allocated plus fragmentation within them)."},
      {"stats.metadata", "skiff_allocator_metadata_bytes",
       "Bytes of the allocator's own metadata."},
      {"stats.resident", "skiff_allocator_resident_bytes",
       "Bytes of physically resident pages the allocator maps (active, metadata and dirty pages "
       "not yet purged)."},
      {"stats.mapped", "skiff_allocator_mapped_bytes", "Bytes in the allocator's active extents."},
      {"stats.retained", "skiff_allocator_retained_bytes",
       "Bytes of virtual memory the allocator keeps unmapped-but-reserved for reuse."},
  };
  for (const Stat& s : kStats) {
    size_t value = 0;
    size_t len = sizeof value;
    if (mallctl(s.ctl, &value, &len, nullptr, 0) == 0) {
      metric(out, s.name, s.help, "gauge", static_cast<double>(value));
    }
  }
}

}  // namespace skiff::apiserver
