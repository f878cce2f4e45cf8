#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "control/cli/cli_context.h"

// `rollout status|history|undo|restart deployment/NAME` and `wait --for=...`, as kubectl does them.

namespace skiff::cli {

struct RolloutOptions {
  std::string verb;               // status, history, undo, restart
  std::vector<std::string> args;  // deployment/NAME | deployment NAME
  bool watch = true;              // status: follow until done
  std::string timeout;            // status: give up after this (empty: never)
  int64_t revision = 0;           // history --revision, undo --to-revision (0: previous)
  std::chrono::milliseconds poll_interval{200};
};
int runRollout(CliContext& context, const RolloutOptions& options, std::ostream& out,
               std::ostream& err);

// kubectl's DeploymentStatusViewer: the message for a Deployment's state and whether the rollout
// is done. Throws CliError when the Progressing condition says the deadline passed.
std::pair<std::string, bool> deploymentRolloutStatus(const api::Value& deployment);

struct WaitOptions {
  std::vector<std::string> args;  // TYPE/NAME... | TYPE NAME...
  std::string for_condition;      // condition=Available[=true] | delete | jsonpath={...}=value
  std::string timeout = "30s";
  std::string selector;
  bool all = false;
  std::chrono::milliseconds poll_interval{200};
};
int runWait(CliContext& context, const WaitOptions& options, std::ostream& out, std::ostream& err);

void addRolloutCommands(CLI::App& app, int& exit_code);

}  // namespace skiff::cli
