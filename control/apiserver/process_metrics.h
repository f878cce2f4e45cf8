#pragma once

// The process's own figures in Prometheus' text format: the standard process collector's metrics
// (process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds, process_start_time_seconds), as every Kubernetes component
// serves them, plus skiff_process_threads and, when the binary runs on jemalloc, the allocator's
// view (skiff_allocator_{allocated,active,resident,mapped,retained,metadata}_bytes): the gap
// between what is allocated and what is resident tells fragmentation and unpurged pages from
// live data.

#include <string>

namespace skiff::apiserver {

// Appends the metrics above to `out` (HELP and TYPE lines included).
void renderProcessMetrics(std::string& out);

}  // namespace skiff::apiserver
