#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace skiff::cli {

// `skiff lb status|services|backends [--pin-dir DIR] [-o json]`: what the eBPF load balancer of
// this node holds and counts, read from its pinned maps (SKIFF_PIN_DIR by default);
// `skiff lb exec [--cgroup DIR] -- CMD ARGS...`: runs CMD in Skiff's cgroup subtree (its `host`
// sub-cgroup), where the socket LB gives it ClusterIP access;
// `skiff lb cleanup [--pin-dir DIR]`: detaches and unpins what a crashed data path left.
struct LbOptions {
  std::string pinDir;
  std::string output;  // "" (table) or "json"
  std::string cgroup;  // exec: the socket LB's cgroup (default ebpf::defaultCgroupPath())
  std::vector<std::string> command;
};

int runLbStatus(const LbOptions& options, std::ostream& out, std::ostream& err);
int runLbServices(const LbOptions& options, std::ostream& out, std::ostream& err);
int runLbBackends(const LbOptions& options, std::ostream& out, std::ostream& err);
int runLbCleanup(const LbOptions& options, std::ostream& out, std::ostream& err);
// Returns only if CMD could not be run.
int runLbExec(const LbOptions& options, std::ostream& err);

void addLbCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli
