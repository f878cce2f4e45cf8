#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "control/cli/cli_context.h"

namespace skiff::cli {

struct ApplyOptions {
  std::vector<std::string> files;
  bool recursive = false;
  std::string dry_run = "none";  // none, client, server
  bool prune = false;
  std::string selector;  // -l: with --prune, what may be pruned
  std::string output;    // "" or "name"
  int max_conflict_retries = 5;
};

// `skiff apply -f`: client-side apply as kubectl does it. Every document of every file is decoded
// strictly, then every object is sent as a server dry run; only when all of them pass is any
// applied (created with the last-applied-configuration annotation, or patched with the three-way
// strategic merge patch, re-reading and retrying on 409 Conflict). Returns the exit code.
int runApply(CliContext& context, const ApplyOptions& options, std::ostream& out,
             std::ostream& err);

void addApplyCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli
