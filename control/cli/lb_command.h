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
// `skiff lb cleanup [--pin-dir DIR]`: detaches and unpins what a crashed data path left;
// `skiff lb attach [--pin-dir DIR] [--cgroup DIR] [--nodeport-devices IF,...]
// [--nodeport-mode xdp|tc|auto] [--lb-mode snat|dsr]`: loads the data path as `skiff agent` does
// (EbpfDataplane::create) and leaves it pinned and attached, with no control plane (programmed by
// `skiff lb apply`, control/cli/lb_apply.h); `skiff lb detach`: `skiff lb cleanup`.
struct LbOptions {
  std::string pinDir;
  std::string output;  // "" (table) or "json"
  std::string cgroup;  // exec, attach: the socket LB's cgroup (default ebpf::defaultCgroupPath())
  std::vector<std::string> command;
  // attach
  std::vector<std::string> nodePortDevices;
  std::string nodePortMode = "auto";
  std::string lbMode = "snat";
};

int runLbStatus(const LbOptions& options, std::ostream& out, std::ostream& err);
int runLbServices(const LbOptions& options, std::ostream& out, std::ostream& err);
int runLbBackends(const LbOptions& options, std::ostream& out, std::ostream& err);
int runLbCleanup(const LbOptions& options, std::ostream& out, std::ostream& err);
// `skiff lb flows`: the node-port LB's conntrack entries; `skiff lb stats`: counters per service
// and backend, drops and events, in one view.
int runLbFlows(const LbOptions& options, std::ostream& out, std::ostream& err);
int runLbStats(const LbOptions& options, std::ostream& out, std::ostream& err);
int runLbAttach(const LbOptions& options, std::ostream& out, std::ostream& err);
// Returns only if CMD could not be run.
int runLbExec(const LbOptions& options, std::ostream& err);

void addLbCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli
