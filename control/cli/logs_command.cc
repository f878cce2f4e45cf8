#include "control/cli/logs_command.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <memory>

#include "control/client/client.h"

namespace skiff::cli {
namespace {

// The pod a target names: POD, pod/POD, or the first pod (by name) of deploy/NAME's selector.
std::string podFor(CliContext& context, const std::string& target, const std::string& ns) {
  const size_t slash = target.find('/');
  if (slash == std::string::npos) return target;
  const std::string kind = target.substr(0, slash);
  const std::string name = target.substr(slash + 1);
  if (name.empty()) throw CliError("\"" + target + "\": want TYPE/NAME");
  const api::ResourceType& type = resolveType(kind);
  if (type.group.empty() && type.plural == "pods") return name;
  if (type.plural != "deployments")
    throw CliError("cannot get the logs of " + kindName(type) + "/" + name +
                   ": want a pod or a deployment");
  api::Value deployment = context.client().get(type, ns, name);
  std::string selector;
  if (const api::Value* labels =
          deployment.find("spec") ? deployment.find("spec")->find("selector") : nullptr) {
    if (const api::Value* match = labels->find("matchLabels"))
      for (const auto& member : match->members())
        selector += (selector.empty() ? "" : ",") + member.key + "=" + member.value.text();
  }
  if (selector.empty()) throw CliError("deployment " + name + " has no spec.selector.matchLabels");
  client::ListOptions list;
  list.label_selector = selector;
  api::Value pods = context.client().list(resolveType("pods"), ns, list);
  std::vector<std::string> names;
  if (const api::Value* items = pods.find("items"))
    for (const auto& pod : items->items())
      names.push_back(fieldText(pod, "metadata.name"));
  if (names.empty()) throw CliError("no pods found for deployment " + name);
  return *std::min_element(names.begin(), names.end());
}

}  // namespace

int runLogs(CliContext& context, const LogsOptions& options, std::ostream& out, std::ostream& err) {
  try {
    if (options.follow)
      throw CliError(
          "skiff logs -f is not supported yet (the client reads whole answers); use kubectl logs "
          "-f, which the apiserver serves");
    const std::string ns = context.ns();
    const std::string pod = podFor(context, options.target, ns);
    client::RawRequest request;
    request.path = apiPath(resolveType("pods"), ns, pod, "log");
    request.accept = "text/plain, application/json";
    if (!options.container.empty()) request.query.emplace_back("container", options.container);
    if (options.tail >= 0) request.query.emplace_back("tailLines", std::to_string(options.tail));
    if (options.timestamps) request.query.emplace_back("timestamps", "true");
    if (options.previous) request.query.emplace_back("previous", "true");
    if (options.limit_bytes > 0)
      request.query.emplace_back("limitBytes", std::to_string(options.limit_bytes));
    if (!options.since.empty()) {
      auto since = parseDuration(options.since);
      if (!since || since->count() < 0)
        throw CliError("invalid argument \"" + options.since + "\" for \"--since\" flag");
      const int64_t seconds = std::max<int64_t>(1, (since->count() + 999) / 1000);
      request.query.emplace_back("sinceSeconds", std::to_string(seconds));
    }
    client::RawResponse response = context.client().raw(request);
    if (response.status != 200) {
      rawJson(context.client(), request);  // throws the Status as ApiError
      throw CliError("the server answered " + std::to_string(response.status));
    }
    out << response.body << std::flush;
    return 0;
  } catch (const std::exception& e) {
    return reportError(err, e, &context);
  }
}

void addLogsCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<LogsOptions>();
  auto globals = std::make_shared<GlobalOptions>();
  auto* cmd = app.add_subcommand("logs", "Print the logs of a container in a pod");
  addGlobalFlags(*cmd, *globals);
  cmd->add_option("target", options->target, "POD, pod/POD or deploy/NAME")->required();
  cmd->add_option("-c,--container", options->container, "The container (for multi-container pods)");
  cmd->add_flag("-f,--follow", options->follow, "Stream new lines");
  cmd->add_option("--tail", options->tail, "Lines from the end (-1: all)")->capture_default_str();
  cmd->add_flag("--timestamps", options->timestamps, "Prefix each line with its RFC3339 time");
  cmd->add_flag("-p,--previous", options->previous, "The previous instance of the container");
  cmd->add_option("--since", options->since, "Only lines newer than this (5s, 2m, 3h)");
  cmd->add_option("--limit-bytes", options->limit_bytes, "At most this many bytes");
  cmd->callback([options, globals, &exit_code] {
    CliContext context(*globals);
    exit_code = runLogs(context, *options, std::cout, std::cerr);
  });
}

}  // namespace skiff::cli
