#pragma once

#include <CLI/CLI.hpp>

namespace skiff::cli {

// Builds the `skiff` command tree. Each component adds its own verbs here; a verb's callback does
// the work and sets the process exit code through `exitCode`.
class App {
 public:
  App();
  int run(int argc, char** argv);

 private:
  CLI::App app_;
  int exit_code_ = 0;
};

}  // namespace skiff::cli
