#pragma once

#include <CLI/CLI.hpp>

namespace skiff::cli {

// `skiff bench xdp [--services N] [--backends B] [--runs R] [--changes C] [--quick] [--json]`:
// the XDP load balancer (issue LB-EBPF, part 7). Programs N services of B backends into a fresh
// eBPF data path (nothing attached, nothing pinned; needs root) and reports: program_all_ms (the
// apply() of all N), program_one_change_ms (median over C changes of one backend of one service
// among the N), and in-kernel ns per packet through BPF_PROG_TEST_RUN, one packet per call so
// every run sees the original frame (medians of R runs): established_ns, new_flow_ns, floor_ns (a
// two-instruction XDP_TX program measured the same way, interleaved) and their ratio; also
// established_ns_1_service from a one-service data path in the same run (flatness).
// --quick: at most 200 services, 300 runs, 10 changes.
void addBenchXdpCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli
