#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace skiff::cli {

struct ValidateOptions {
  std::vector<std::string> files;
  bool recursive = false;
  std::string validate = "strict";  // strict, warn, ignore (kubectl's --validate)
  std::string output;               // "", yaml, json, name
};

// `skiff validate -f FILE`: reads manifests offline with the API codec and reports every problem
// with file:line:column and field path. Nothing is sent anywhere. Returns the exit code.
int runValidate(const ValidateOptions& options, std::ostream& out, std::ostream& err);

void addValidateCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli
