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
  bool server_side = false;      // --server-side: PATCH application/apply-patch+yaml
  bool force_conflicts = false;  // --force-conflicts: take over fields other managers own
  std::string field_manager;     // empty: "skiff" (server-side), "kubectl-client-side-apply"
};

// `skiff apply -f`: client-side apply as kubectl does it. Every document of every file is decoded
// strictly, then every object is sent as a server dry run; only when all of them pass is any
// applied (created with the last-applied-configuration annotation, or patched with the three-way
// strategic merge patch, re-reading and retrying on 409 Conflict). With `server_side`, each object
// is sent whole as a server-side apply under its field manager (the server merges it and tracks
// ownership in managedFields; a field another manager owns is a conflict unless
// `force_conflicts`), after the same dry run of every object first. Returns the exit code.
int runApply(CliContext& context, const ApplyOptions& options, std::ostream& out,
             std::ostream& err);

void addApplyCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli
