#include "control/cli/app.h"

#include <iostream>

#include "control/cli/agent_command.h"
#include "control/cli/apply_command.h"
#include "control/cli/bench_all_command.h"
#include "control/cli/bench_apiserver_command.h"
#include "control/cli/bench_baselines_command.h"
#include "control/cli/bench_controllers_command.h"
#include "control/cli/bench_endpoints_command.h"
#include "control/cli/bench_pod_startup_command.h"
#include "control/cli/bench_soak_command.h"
#include "control/cli/bench_scheduler_command.h"
#include "control/cli/bench_socklb_command.h"
#include "control/cli/bench_store_command.h"
#include "control/cli/bench_xdp_command.h"
#include "control/cli/cleanup.h"
#include "control/cli/controller_manager_command.h"
#include "control/cli/dataplane_command.h"
#include "control/cli/describe_command.h"
#include "control/cli/exec_command.h"
#include "control/cli/get_command.h"
#include "control/cli/image_command.h"
#include "control/cli/info_commands.h"
#include "control/cli/lb_apply.h"
#include "control/cli/lb_command.h"
#include "control/cli/logs_command.h"
#include "control/cli/object_commands.h"
#include "control/cli/rollout_command.h"
#include "control/cli/scheduler_command.h"
#include "control/cli/server_command.h"
#include "control/cli/token_command.h"
#include "control/cli/up_command.h"
#include "control/cli/validate.h"
#include "skiff/version.h"

namespace skiff::cli {

App::App() : app_("Skiff: a compact Kubernetes-compatible orchestrator for bare-metal nodes") {
  app_.name("skiff");
  app_.require_subcommand(1);
  app_.set_version_flag("--version", kVersion);
  addValidateCommand(app_, exit_code_);
  addApiserverCommand(app_, exit_code_);
  addImageCommand(app_, exit_code_);
  addControllerManagerCommand(app_, exit_code_);
  addServerCommand(app_, exit_code_);
  addSchedulerCommand(app_, exit_code_);
  addAgentCommand(app_, exit_code_);
  addNodeKubeconfigCommand(app_, exit_code_);
  addTokenCommands(app_, exit_code_);
  addUpCommand(app_, exit_code_);
  addCleanupCommand(app_, exit_code_);
  addDataplaneCommand(app_, exit_code_);
  addLbCommand(app_, exit_code_);
  addLbApplyCommand(app_, exit_code_);
  addBenchStoreCommand(app_, exit_code_);
  addBenchPodStartupCommand(app_, exit_code_);
  addBenchSoakCommand(app_, exit_code_);
  addBenchSchedulerCommand(app_, exit_code_);
  addBenchControllersCommand(app_, exit_code_);
  addBenchApiserverCommand(app_, exit_code_);
  addBenchEndpointsCommand(app_, exit_code_);
  addBenchBaselinesCommand(app_, exit_code_);
  addBenchAllCommand(app_, exit_code_);
  addBenchXdpCommand(app_, exit_code_);
  addBenchSocklbCommand(app_, exit_code_);
  addApplyCommand(app_, exit_code_);
  addGetCommand(app_, exit_code_);
  addLogsCommand(app_, exit_code_);
  addExecCommand(app_, exit_code_);
  addObjectCommands(app_, exit_code_);
  addRolloutCommands(app_, exit_code_);
  addDescribeCommand(app_, exit_code_);
  addInfoCommands(app_, exit_code_);
}

int App::run(int argc, char** argv) {
  // Name the unknown verb, as kubectl does, instead of CLI11's "A subcommand is required".
  auto is_verb = [&](std::string_view word) {
    for (const auto* sub : app_.get_subcommands({})) {
      if (sub->check_name(std::string(word))) return true;
    }
    return false;
  };
  if (argc > 1 && argv[1][0] != '-' && !is_verb(argv[1])) {
    std::cerr << "error: unknown command \"" << argv[1] << "\" for \"skiff\"\n"
              << "Run 'skiff --help' for usage.\n";
    return 1;
  }
  try {
    app_.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app_.exit(e);
  }
  return exit_code_;
}

}  // namespace skiff::cli
