#pragma once

#include <iosfwd>
#include <string>

#include <CLI/CLI.hpp>

#include "control/cli/cli_context.h"

// Verbs about the client, the server and the kubeconfig: `version`, `api-resources`, `explain`,
// `config view|use-context|get-contexts|current-context`.

namespace skiff::cli {

struct VersionOptions {
  bool client_only = false;
  std::string output;  // "", json, yaml
};
int runVersion(CliContext& context, const VersionOptions& options, std::ostream& out,
               std::ostream& err);

struct ApiResourcesOptions {
  std::string output;  // "", wide, name
  std::string api_group;
  std::string namespaced;  // "", "true", "false"
  bool no_headers = false;
};
int runApiResources(CliContext& context, const ApiResourcesOptions& options, std::ostream& out,
                    std::ostream& err);

struct ExplainOptions {
  std::string path;  // "deployment.spec.replicas"
  bool recursive = false;
};
int runExplain(CliContext& context, const ExplainOptions& options, std::ostream& out,
               std::ostream& err);

struct ConfigOptions {
  std::string verb;  // view, use-context, get-contexts, current-context
  std::string name;  // the context for use-context / get-contexts
  bool raw = false;
  bool minify = false;
  std::string output;  // view: yaml (default) or json; get-contexts: "" or name
};
int runConfig(CliContext& context, const ConfigOptions& options, std::ostream& out,
              std::ostream& err);

void addInfoCommands(CLI::App& app, int& exit_code);

}  // namespace skiff::cli
