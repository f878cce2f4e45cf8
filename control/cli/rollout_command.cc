#include "control/cli/rollout_command.h"

#include <algorithm>
#include <ctime>
#include <iostream>
#include <thread>

#include "control/api/json.h"
#include "control/api/yaml.h"
#include "control/cli/get_command.h"
#include "control/cli/jsonpath.h"
#include "control/cli/printers.h"

namespace skiff::cli {
namespace {

using api::Value;
using Clock = std::chrono::steady_clock;

constexpr const char* kRevision = "deployment.kubernetes.io/revision";
constexpr const char* kChangeCause = "kubernetes.io/change-cause";

const Value* annotation(const Value& object, const char* key) {
  const Value* a = field(object, "metadata.annotations");
  return a != nullptr && a->isObject() ? a->find(key) : nullptr;
}

int64_t revisionOf(const Value& rs) {
  const Value* r = annotation(rs, kRevision);
  if (r == nullptr || !r->isString()) return 0;
  try {
    return std::stoll(r->text());
  } catch (const std::exception&) {
    return 0;
  }
}

const Value* condition(const Value& object, const std::string& type) {
  const Value* conditions = field(object, "status.conditions");
  if (conditions == nullptr || !conditions->isArray()) return nullptr;
  for (const auto& c : conditions->items()) {
    if (fieldText(c, "type") == type) return &c;
  }
  return nullptr;
}

// The deployment a rollout verb names.
std::string deploymentName(const std::vector<std::string>& args) {
  auto requests = parseResourceArgs(args);
  if (requests.size() != 1 || requests[0].names.size() != 1) {
    throw CliError("rollout takes exactly one resource: deployment/NAME");
  }
  if (requests[0].type->kind != "Deployment") {
    throw CliError("no rollout support for " + requests[0].type->plural + " (only deployments)");
  }
  return requests[0].names[0];
}

// The ReplicaSets a Deployment owns.
std::vector<Value> ownedReplicaSets(client::Client& c, const Value& deployment) {
  std::string uid = fieldText(deployment, "metadata.uid");
  std::string ns = fieldText(deployment, "metadata.namespace");
  Value list = c.list(resolveType("replicasets"), ns);
  std::vector<Value> out;
  if (const Value* items = list.find("items"); items != nullptr && items->isArray()) {
    for (const auto& rs : items->items()) {
      const Value* owners = field(rs, "metadata.ownerReferences");
      if (owners == nullptr || !owners->isArray()) continue;
      for (const auto& o : owners->items()) {
        const Value* controller = o.find("controller");
        if (fieldText(o, "uid") == uid && controller != nullptr && controller->isBool() &&
            controller->asBool()) {
          out.push_back(rs);
        }
      }
    }
  }
  std::sort(out.begin(), out.end(),
            [](const Value& a, const Value& b) { return revisionOf(a) < revisionOf(b); });
  return out;
}

std::string rfc3339Now() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::optional<Clock::time_point> deadlineFrom(const std::string& timeout) {
  if (timeout.empty() || timeout == "0" || timeout == "0s") return std::nullopt;
  auto d = parseDuration(timeout);
  if (!d) throw CliError("invalid timeout \"" + timeout + "\"");
  return Clock::now() + *d;
}

}  // namespace

std::pair<std::string, bool> deploymentRolloutStatus(const Value& d) {
  std::string name = fieldText(d, "metadata.name");
  if (fieldInt(d, "metadata.generation") <= fieldInt(d, "status.observedGeneration")) {
    const Value* progressing = condition(d, "Progressing");
    if (progressing != nullptr && fieldText(*progressing, "reason") == "ProgressDeadlineExceeded") {
      throw CliError("deployment \"" + name + "\" exceeded its progress deadline");
    }
    int64_t updated = fieldInt(d, "status.updatedReplicas");
    int64_t replicas = fieldInt(d, "status.replicas");
    int64_t available = fieldInt(d, "status.availableReplicas");
    const Value* spec_replicas = field(d, "spec.replicas");
    if (spec_replicas != nullptr && spec_replicas->isNumber() && updated < spec_replicas->asInt()) {
      return {"Waiting for deployment \"" + name +
                  "\" rollout to finish: " + std::to_string(updated) + " out of " +
                  std::to_string(spec_replicas->asInt()) + " new replicas have been updated...",
              false};
    }
    if (replicas > updated) {
      return {"Waiting for deployment \"" + name + "\" rollout to finish: " +
                  std::to_string(replicas - updated) + " old replicas are pending termination...",
              false};
    }
    if (available < updated) {
      return {"Waiting for deployment \"" + name +
                  "\" rollout to finish: " + std::to_string(available) + " of " +
                  std::to_string(updated) + " updated replicas are available...",
              false};
    }
    return {"deployment \"" + name + "\" successfully rolled out", true};
  }
  return {"Waiting for deployment spec update to be observed...", false};
}

int runRollout(CliContext& context, const RolloutOptions& options, std::ostream& out,
               std::ostream& err) {
  return runGuarded(err, context, [&]() -> int {
    std::string name = deploymentName(options.args);
    const api::ResourceType& type = resolveType("deployments");
    client::Client& c = context.client();
    std::string ns = context.ns();
    if (options.verb == "status") {
      auto deadline = deadlineFrom(options.timeout);
      std::string last;
      while (true) {
        Value d = c.get(type, ns, name);
        auto [message, done] = deploymentRolloutStatus(d);
        if (message != last) {
          out << message << std::endl;
          last = message;
        }
        if (done || !options.watch) return 0;
        if (deadline && Clock::now() >= *deadline) {
          throw CliError("timed out waiting for the condition");
        }
        std::this_thread::sleep_for(options.poll_interval);
      }
    }
    Value d = c.get(type, ns, name);
    if (options.verb == "restart") {
      const Value* paused = field(d, "spec.paused");
      if (paused != nullptr && paused->isBool() && paused->asBool()) {
        throw CliError("deployments.apps \"" + name +
                       "\" can't restart paused deployment (run rollout resume first)");
      }
      Value annotations = Value::object();
      annotations.append("kubectl.kubernetes.io/restartedAt", Value::string(rfc3339Now()));
      Value metadata = Value::object();
      metadata.append("annotations", std::move(annotations));
      Value pod_template = Value::object();
      pod_template.append("metadata", std::move(metadata));
      Value spec = Value::object();
      spec.append("template", std::move(pod_template));
      Value patch = Value::object();
      patch.append("spec", std::move(spec));
      c.patch(type, ns, name, client::PatchType::kStrategicMerge, api::writeJson(patch));
      out << objectRef(type, name) << " restarted\n";
      return 0;
    }
    std::vector<Value> sets = ownedReplicaSets(c, d);
    if (options.verb == "history") {
      if (options.revision > 0) {
        for (const auto& rs : sets) {
          if (revisionOf(rs) != options.revision) continue;
          out << objectRef(type, name) << " with revision #" << options.revision << "\n";
          const Value* tmpl = field(rs, "spec.template");
          out << "Pod Template:\n" << (tmpl != nullptr ? toYaml(*tmpl) : std::string()) << "\n";
          return 0;
        }
        throw CliError("unable to find the specified revision");
      }
      out << objectRef(type, name) << " \n";
      std::vector<std::vector<std::string>> rows{{"REVISION", "CHANGE-CAUSE"}};
      for (const auto& rs : sets) {
        if (revisionOf(rs) == 0) continue;
        const Value* cause = annotation(rs, kChangeCause);
        rows.push_back({std::to_string(revisionOf(rs)),
                        cause != nullptr && cause->isString() ? cause->text() : "<none>"});
      }
      size_t w = 0;
      for (const auto& r : rows)
        w = std::max(w, r[0].size());
      for (const auto& r : rows)
        out << r[0] << std::string(w - r[0].size() + 2, ' ') << r[1] << "\n";
      out << "\n";
      return 0;
    }
    if (options.verb == "undo") {
      int64_t current = revisionOf(d);
      const Value* target = nullptr;
      if (options.revision > 0) {
        for (const auto& rs : sets) {
          if (revisionOf(rs) == options.revision) target = &rs;
        }
        if (target == nullptr) {
          throw CliError("unable to find specified revision " + std::to_string(options.revision) +
                         " in history");
        }
      } else {
        // The newest revision before the current one.
        for (const auto& rs : sets) {
          if (revisionOf(rs) != current && revisionOf(rs) > 0) target = &rs;
        }
        if (target == nullptr) {
          throw CliError("no rollout history found for deployment \"" + name + "\"");
        }
      }
      Value tmpl = *field(*target, "spec.template");
      if (Value* metadata = tmpl.find("metadata"); metadata != nullptr && metadata->isObject()) {
        if (Value* labels = metadata->find("labels"); labels != nullptr) {
          labels->erase("pod-template-hash");
        }
      }
      const Value* live_template = field(d, "spec.template");
      if (live_template != nullptr && *live_template == tmpl) {
        out << objectRef(type, name) << " skipped rollback (current template already matches "
            << "revision " << revisionOf(*target) << ")\n";
        return 0;
      }
      // kubectl copies the revision's annotations (but its own bookkeeping) onto the Deployment.
      static const char* kSkip[] = {"kubectl.kubernetes.io/last-applied-configuration",
                                    kRevision,
                                    "deployment.kubernetes.io/revision-history",
                                    "deployment.kubernetes.io/desired-replicas",
                                    "deployment.kubernetes.io/max-replicas",
                                    "deprecated.deployment.rollback.to"};
      Value annotations = Value::object();
      if (const Value* a = field(d, "metadata.annotations"); a != nullptr && a->isObject()) {
        annotations = *a;
      }
      if (const Value* a = field(*target, "metadata.annotations"); a != nullptr && a->isObject()) {
        for (const auto& m : a->members()) {
          if (std::find_if(std::begin(kSkip), std::end(kSkip),
                           [&](const char* s) { return m.key == s; }) == std::end(kSkip)) {
            annotations.set(m.key, m.value);
          }
        }
      }
      Value patch = Value::array();
      Value op1 = Value::object();
      op1.append("op", Value::string("replace"));
      op1.append("path", Value::string("/spec/template"));
      op1.append("value", std::move(tmpl));
      patch.push(std::move(op1));
      Value op2 = Value::object();
      op2.append("op",
                 Value::string(field(d, "metadata.annotations") != nullptr ? "replace" : "add"));
      op2.append("path", Value::string("/metadata/annotations"));
      op2.append("value", std::move(annotations));
      patch.push(std::move(op2));
      // A resourceVersion test makes the patch fail if the Deployment changed meanwhile.
      Value test = Value::object();
      test.append("op", Value::string("test"));
      test.append("path", Value::string("/metadata/resourceVersion"));
      test.append("value", Value::string(fieldText(d, "metadata.resourceVersion")));
      patch.items().insert(patch.items().begin(), std::move(test));
      c.patch(type, ns, name, client::PatchType::kJson, api::writeJson(patch));
      out << objectRef(type, name) << " rolled back\n";
      return 0;
    }
    throw CliError("unknown rollout command \"" + options.verb + "\"");
  });
}

int runWait(CliContext& context, const WaitOptions& options, std::ostream& out, std::ostream& err) {
  return runGuarded(err, context, [&]() -> int {
    const std::string& f = options.for_condition;
    enum class Mode { kCondition, kDelete, kJsonPath } mode;
    std::string cond_name;
    std::string cond_value = "true";
    std::optional<JsonPath> path;
    std::string path_value;
    if (f == "delete") {
      mode = Mode::kDelete;
    } else if (f.starts_with("condition=")) {
      mode = Mode::kCondition;
      cond_name = f.substr(10);
      if (size_t eq = cond_name.find('='); eq != std::string::npos) {
        cond_value = cond_name.substr(eq + 1);
        cond_name.resize(eq);
      }
      if (cond_name.empty()) throw CliError("condition name is required");
    } else if (f.starts_with("jsonpath=")) {
      mode = Mode::kJsonPath;
      std::string expr = f.substr(9);
      size_t close = expr.rfind('}');
      if (close == std::string::npos || close + 1 >= expr.size() || expr[close + 1] != '=') {
        throw CliError("jsonpath wait format must be --for=jsonpath='{.status.readyReplicas}'=3");
      }
      path_value = expr.substr(close + 2);
      try {
        path = JsonPath::parse(expr.substr(0, close + 1));
      } catch (const std::invalid_argument& e) {
        throw CliError(e.what());
      }
    } else {
      throw CliError(
          "--for must be \"delete\", \"condition=condition-name[=condition-value]\" "
          "or \"jsonpath='{JSONPath expression}'=JSONPath value\"");
    }
    auto lower = [](std::string s) {
      for (auto& ch : s)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      return s;
    };
    client::Client& c = context.client();
    std::string ns = context.ns();
    struct Target {
      const api::ResourceType* type;
      std::string name;
    };
    std::vector<Target> targets;
    for (const auto& r : parseResourceArgs(options.args)) {
      if (r.names.empty()) {
        if (!options.all && options.selector.empty()) {
          throw CliError("resource(s) were provided, but no name was specified");
        }
        Value list = c.list(*r.type, ns, {.label_selector = options.selector});
        if (const Value* items = list.find("items"); items != nullptr && items->isArray()) {
          for (const auto& item : items->items())
            targets.push_back({r.type, fieldText(item, "metadata.name")});
        }
      }
      for (const auto& n : r.names)
        targets.push_back({r.type, n});
    }
    if (targets.empty()) throw CliError("no matching resources found");
    auto deadline =
        Clock::now() + parseDuration(options.timeout).value_or(std::chrono::seconds(30));
    if (options.timeout.starts_with("-")) deadline = Clock::time_point::max();
    for (const auto& t : targets) {
      while (true) {
        bool met = false;
        try {
          Value object = c.get(*t.type, ns, t.name);
          if (mode == Mode::kCondition) {
            const Value* cond = condition(object, cond_name);
            if (cond == nullptr) {
              // Conditions match case-insensitively, as kubectl matches them.
              const Value* conditions = field(object, "status.conditions");
              if (conditions != nullptr && conditions->isArray()) {
                for (const auto& cc : conditions->items()) {
                  if (lower(fieldText(cc, "type")) == lower(cond_name)) cond = &cc;
                }
              }
            }
            met = cond != nullptr && lower(fieldText(*cond, "status")) == lower(cond_value);
          } else if (mode == Mode::kJsonPath) {
            met = path->execute(object, true) == path_value;
          }
        } catch (const client::ApiError& e) {
          if (!e.isNotFound()) throw;
          if (mode != Mode::kDelete) throw;
          met = true;
        }
        if (met) {
          out << objectRef(*t.type, t.name)
              << (mode == Mode::kDelete ? " deleted" : " condition met") << "\n";
          break;
        }
        if (Clock::now() >= deadline) {
          throw CliError("timed out waiting for the condition on " + t.type->plural + "/" + t.name);
        }
        std::this_thread::sleep_for(options.poll_interval);
      }
    }
    return 0;
  });
}

void addRolloutCommands(CLI::App& app, int& exit_code) {
  auto* rollout = app.add_subcommand("rollout", "Manage the rollout of a deployment");
  rollout->require_subcommand(1);
  for (const char* verb : {"status", "history", "undo", "restart"}) {
    auto options = std::make_shared<RolloutOptions>();
    auto globals = std::make_shared<GlobalOptions>();
    options->verb = verb;
    auto* cmd = rollout->add_subcommand(verb, std::string("rollout ") + verb);
    addGlobalFlags(*cmd, *globals);
    cmd->add_option("args", options->args, "deployment/NAME")->required();
    if (options->verb == "status") {
      cmd->add_option("-w,--watch", options->watch, "Follow until the rollout is done")
          ->capture_default_str();
      cmd->add_option("--timeout", options->timeout, "Give up after this long (e.g. 5m)");
    }
    if (options->verb == "history") {
      cmd->add_option("--revision", options->revision, "Show this revision's pod template");
    }
    if (options->verb == "undo") {
      cmd->add_option("--to-revision", options->revision, "Roll back to this revision");
    }
    cmd->callback([options, globals, &exit_code] {
      CliContext context(*globals);
      exit_code = runRollout(context, *options, std::cout, std::cerr);
    });
  }
  auto options = std::make_shared<WaitOptions>();
  auto globals = std::make_shared<GlobalOptions>();
  auto* cmd = app.add_subcommand("wait", "Wait for a condition on one or many resources");
  addGlobalFlags(*cmd, *globals);
  cmd->add_option("args", options->args, "TYPE/NAME... or TYPE NAME...")->required();
  cmd->add_option("--for", options->for_condition,
                  "delete, condition=NAME[=VALUE] or jsonpath='{EXPR}'=VALUE")
      ->required();
  cmd->add_option("--timeout", options->timeout, "Give up after this long; negative: a week")
      ->capture_default_str();
  cmd->add_option("-l,--selector", options->selector, "Label selector");
  cmd->add_flag("--all", options->all, "Every object of the types given");
  cmd->callback([options, globals, &exit_code] {
    CliContext context(*globals);
    exit_code = runWait(context, *options, std::cout, std::cerr);
  });
}

}  // namespace skiff::cli
