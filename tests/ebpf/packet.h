#pragma once

// The frame builders live in tests/dataplane/packet_builder.h, shared with the DPDK tests; this
// name stays for the eBPF tests and benchmarks that include it.

#include "tests/dataplane/packet_builder.h"

namespace skiff::ebpf {
namespace testing = ::skiff::dataplane::testing;
}  // namespace skiff::ebpf
