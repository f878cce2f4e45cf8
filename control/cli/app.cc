#include "control/cli/app.h"

#include <iostream>

#include "control/cli/version.h"
#include <google/protobuf/stubs/common.h>

namespace skiff::cli {

App::App() : app_("Skiff: a compact Kubernetes-compatible orchestrator for bare-metal nodes") {
  app_.name("skiff");
  app_.require_subcommand(1);
  app_.set_version_flag("--version", kVersion);
  addVersion();
}

void App::addVersion() {
  auto* cmd = app_.add_subcommand("version", "Print Skiff's version and the API level it serves");
  cmd->callback([] {
    std::cout << "skiff " << kVersion << "\n"
              << "kubernetes api " << kKubernetesVersion << "\n"
              << "protobuf " << google::protobuf::internal::VersionString(GOOGLE_PROTOBUF_VERSION)
              << "\n";
  });
}

int App::run(int argc, char** argv) {
  try {
    app_.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app_.exit(e);
  }
  return exit_code_;
}

}  // namespace skiff::cli
