#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "control/api/registry.h"
#include "control/cli/cli_context.h"

namespace skiff::cli {

struct GetOptions {
  std::vector<std::string> args;  // TYPE[,TYPE] [NAME...] | TYPE/NAME...
  bool all_namespaces = false;
  std::string selector;
  std::string field_selector;
  std::string output;  // "", wide, yaml, json, name, jsonpath=...
  bool watch = false;
  bool show_labels = false;
  bool no_headers = false;
  // Objects keep metadata.managedFields (kubectl leaves them out unless --show-managed-fields).
  bool show_managed_fields = false;
  // For tests: stop watching after this many events (0: until the stream ends).
  int watch_event_limit = 0;
};

// What the user asked for: a kind and the names of it (none: all).
struct ResourceRequest {
  const api::ResourceType* type = nullptr;
  std::vector<std::string> names;
};

// Reads kubectl's resource arguments: "deploy", "deploy,svc", "deploy web db", "deploy/web
// svc/web". Throws CliError for unknown kinds and mixed forms.
std::vector<ResourceRequest> parseResourceArgs(const std::vector<std::string>& args);

// `skiff get`: server-side tables laid out as kubectl lays them out, or the objects as yaml, json,
// names or a JSONPath template; -w streams changes. Returns the exit code.
int runGet(CliContext& context, const GetOptions& options, std::ostream& out, std::ostream& err);

void addGetCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli
