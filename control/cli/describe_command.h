#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "control/cli/cli_context.h"

namespace skiff::cli {

struct DescribeOptions {
  std::vector<std::string> args;  // TYPE [NAME...] | TYPE/NAME...
  std::string selector;
  bool all_namespaces = false;
  bool show_events = true;
};

// `skiff describe`: kubectl's sections for the object (Deployments, ReplicaSets, Pods and
// Services in kubectl's own layout; other kinds as their spec and status), then its Events.
int runDescribe(CliContext& context, const DescribeOptions& options, std::ostream& out,
                std::ostream& err);

// The text for one object and the events about it, with `now` as the current time (seconds since
// the epoch), for tests.
std::string describeObject(const api::ResourceType& type, const api::Value& object,
                           const std::vector<api::Value>& events, int64_t now);

void addDescribeCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli
