#pragma once

#include <CLI/CLI.hpp>

#include "control/cli/cli_context.h"

// Imperative verbs on objects: `delete`, `scale`, `create namespace|configmap|secret generic`.

namespace skiff::cli {

struct DeleteOptions {
  std::vector<std::string> files;
  bool recursive = false;
  std::vector<std::string> args;  // TYPE NAME... | TYPE/NAME...
  std::string selector;
  bool all = false;
  bool all_namespaces = false;
  std::string cascade = "background";  // background, foreground, orphan (true/false too)
  bool wait = true;
  int64_t grace_period = -1;
  bool ignore_not_found = false;
  std::string timeout;  // for --wait; empty: no limit
  std::string output;   // "" or name
};
int runDelete(CliContext& context, const DeleteOptions& options, std::ostream& out,
              std::ostream& err);

struct ScaleOptions {
  std::vector<std::string> args;  // TYPE/NAME | TYPE NAME
  int64_t replicas = -1;
  int64_t current_replicas = -1;
};
int runScale(CliContext& context, const ScaleOptions& options, std::ostream& out,
             std::ostream& err);

struct CreateOptions {
  std::string what;  // namespace, configmap, secret
  std::string name;
  std::vector<std::string> from_literal;  // key=value
  std::vector<std::string> from_file;     // [key=]path; a directory adds each regular file
  std::string secret_type = "Opaque";
  std::string dry_run = "none";
  std::string output;  // "", name, yaml, json
};
int runCreate(CliContext& context, const CreateOptions& options, std::ostream& out,
              std::ostream& err);

void addObjectCommands(CLI::App& app, int& exit_code);

}  // namespace skiff::cli
