#include "control/cli/apply_command.h"

#include <iostream>
#include <optional>
#include <set>

#include "control/api/json.h"
#include "control/cli/apply_patch.h"
#include "control/cli/manifest_objects.h"

namespace skiff::cli {
namespace {

using api::Value;

struct Planned {
  const ManifestObject* object = nullptr;
  Value modified;  // the manifest with its last-applied annotation
};

std::optional<Value> getCurrent(client::Client& c, const ManifestObject& object) {
  try {
    return c.get(*object.type, object.ns, object.name);
  } catch (const client::ApiError& e) {
    if (e.isNotFound()) return std::nullopt;
    throw;
  }
}

void printWarnings(client::Client& c, std::ostream& err) {
  for (const auto& w : c.lastWarnings())
    err << "Warning: " << w << "\n";
}

std::string failureText(const client::ApiError& e, const char* doing, const ManifestObject& o) {
  if (e.isUnreachable()) {
    return "Unable to connect to the server: " + std::string(e.what());
  }
  std::string reason = e.reason().empty() ? "Unknown" : e.reason();
  std::string text = "Error from server (" + reason + "): error when " + doing + " \"" + where(o) +
                     "\": " + apiErrorText(e);
  if (e.isConflict() && apiErrorText(e).starts_with("Apply failed with")) {
    text +=
        "\nPlease review the fields above--they currently have other managers: re-run with "
        "--force-conflicts to take them over, or remove them from the manifest (or match their "
        "current values to share them)";
  }
  return text;
}

// What one apply of one object did: "created", "configured", "unchanged".
std::string applyOne(client::Client& c, const Planned& plan, const ApplyOptions& options,
                     bool dry_run) {
  const ManifestObject& object = *plan.object;
  if (options.server_side) {
    // The server merges the manifest into the object and answers conflicts (409) itself.
    c.patch(*object.type, object.ns, object.name, client::PatchType::kApply,
            api::writeJson(object.value),
            {.dry_run = dry_run,
             .field_manager = options.field_manager.empty() ? "skiff" : options.field_manager,
             .field_validation = "Strict",
             .force = options.force_conflicts});
    return "serverside-applied";
  }
  int retries = options.max_conflict_retries;
  client::WriteOptions write{.dry_run = dry_run,
                             .field_manager = options.field_manager.empty()
                                                  ? "kubectl-client-side-apply"
                                                  : options.field_manager,
                             .field_validation = "Strict"};
  for (int attempt = 0;; ++attempt) {
    std::optional<Value> current = getCurrent(c, object);
    if (!current) {
      try {
        c.create(*object.type, object.ns, plan.modified, write);
        return "created";
      } catch (const client::ApiError& e) {
        if (e.isAlreadyExists() && attempt < retries) continue;  // someone created it meanwhile
        throw;
      }
    }
    Value patch =
        threeWayMergePatch(lastApplied(*current), plan.modified, *current, object.type->descriptor);
    if (patch.members().empty()) return "unchanged";
    try {
      c.patch(*object.type, object.ns, object.name, client::PatchType::kStrategicMerge,
              api::writeJson(patch), write);
      return "configured";
    } catch (const client::ApiError& e) {
      if ((e.isConflict() || e.isNotFound()) && attempt < retries) continue;
      throw;
    }
  }
}

// Kubernetes' default prune allowlist (kubectl's), as far as Skiff serves those kinds.
bool prunable(const api::ResourceType& t) {
  static const std::set<std::pair<std::string, std::string>> kinds = {
      {"", "ConfigMap"},
      {"", "Endpoints"},
      {"", "Namespace"},
      {"", "PersistentVolumeClaim"},
      {"", "PersistentVolume"},
      {"", "Pod"},
      {"", "ReplicationController"},
      {"", "Secret"},
      {"", "Service"},
      {"batch", "Job"},
      {"batch", "CronJob"},
      {"networking.k8s.io", "Ingress"},
      {"apps", "DaemonSet"},
      {"apps", "Deployment"},
      {"apps", "ReplicaSet"},
      {"apps", "StatefulSet"}};
  return t.served() && kinds.contains({t.group, t.kind});
}

int prune(client::Client& c, const ApplyOptions& options, const std::vector<Planned>& plans,
          std::ostream& out, std::ostream& err) {
  std::set<std::string> applied;
  std::set<std::string> namespaces;
  for (const auto& p : plans) {
    applied.insert(kindName(*p.object->type) + "/" + p.object->ns + "/" + p.object->name);
    if (!p.object->ns.empty()) namespaces.insert(p.object->ns);
  }
  bool dry = options.dry_run != "none";
  int code = 0;
  for (const auto& type : api::Registry::builtin().types()) {
    if (!prunable(type)) continue;
    std::vector<std::string> scopes =
        type.namespaced ? std::vector<std::string>(namespaces.begin(), namespaces.end())
                        : std::vector<std::string>{""};
    for (const auto& ns : scopes) {
      Value list = c.list(type, ns, {.label_selector = options.selector});
      const Value* items = list.find("items");
      if (items == nullptr || !items->isArray()) continue;
      for (const auto& item : items->items()) {
        std::string name = fieldText(item, "metadata.name");
        if (applied.contains(kindName(type) + "/" + ns + "/" + name)) continue;
        if (lastApplied(item).isNull()) continue;  // not made by apply
        if (!fieldText(item, "metadata.deletionTimestamp").empty()) continue;
        try {
          if (options.dry_run != "client") {
            c.remove(type, ns, name,
                     {.propagation_policy = "Background", .dry_run = options.dry_run == "server"});
          }
          out << objectRef(type, name) << " pruned"
              << (dry ? (options.dry_run == "server" ? " (server dry run)" : " (dry run)") : "")
              << "\n";
        } catch (const client::ApiError& e) {
          if (e.isNotFound()) continue;
          err << "error: pruning " << objectRef(type, name) << ": " << apiErrorText(e) << "\n";
          code = 1;
        }
      }
    }
  }
  return code;
}

}  // namespace

int runApply(CliContext& context, const ApplyOptions& options, std::ostream& out,
             std::ostream& err) {
  if (options.dry_run != "none" && options.dry_run != "client" && options.dry_run != "server") {
    err << "error: Invalid dry-run value (" << options.dry_run
        << "). Must be \"none\", \"server\", or \"client\".\n";
    return 1;
  }
  if (options.output != "" && options.output != "name") {
    err << "error: unable to match a printer suitable for the output format \"" << options.output
        << "\", allowed formats are: name\n";
    return 1;
  }
  if (options.force_conflicts && !options.server_side) {
    err << "error: --force-conflicts only works with --server-side\n";
    return 1;
  }
  if (options.server_side && options.dry_run == "client") {
    err << "error: --dry-run=client doesn't work with --server-side (did you mean "
           "--dry-run=server instead?)\n";
    return 1;
  }
  if (options.server_side && options.prune) {
    err << "error: --prune is not supported with --server-side (it prunes what client-side apply "
           "annotated)\n";
    return 1;
  }
  if (options.prune && options.selector.empty()) {
    err << "error: all resources selected for prune without explicitly passing --all. To prune "
           "all resources, pass the --all flag. If you did not mean to prune all resources, "
           "specify a label selector\n";
    return 1;
  }
  return runGuarded(err, context, [&] {
    std::vector<ManifestObject> objects =
        loadManifestObjects({.files = options.files,
                             .recursive = options.recursive,
                             .context_namespace = [&] { return context.ns(); },
                             .namespace_given = context.namespaceGiven()});
    client::Client& c = context.client();
    std::vector<Planned> plans;
    for (const auto& o : objects)
      plans.push_back({&o, withLastApplied(o.value)});

    // Every object is checked by the server (admission, validation) before any is written.
    std::set<std::string> new_namespaces;
    for (const auto& p : plans) {
      if (p.object->type->kind == "Namespace" && p.object->type->group.empty() &&
          !getCurrent(c, *p.object)) {
        new_namespaces.insert(p.object->name);
      }
    }
    std::vector<std::string> failures;
    for (const auto& p : plans) {
      const ManifestObject& o = *p.object;
      // An object in a namespace this apply creates can only be checked offline (done above).
      if (!o.ns.empty() && new_namespaces.contains(o.ns)) continue;
      try {
        applyOne(c, p, options, /*dry_run=*/true);
      } catch (const client::ApiError& e) {
        if (e.isUnreachable()) throw;
        failures.push_back(failureText(e,
                                       options.server_side ? "applying"
                                       : getCurrent(c, o)  ? "patching"
                                                           : "creating",
                                       o));
      }
    }
    if (!failures.empty()) {
      for (const auto& f : failures)
        err << f << "\n";
      err << "error: " << failures.size() << " of " << plans.size()
          << " objects failed the server's checks; nothing was applied\n";
      return 1;
    }
    const char* suffix = options.dry_run == "server"   ? " (server dry run)"
                         : options.dry_run == "client" ? " (dry run)"
                                                       : "";
    int code = 0;
    for (const auto& p : plans) {
      const ManifestObject& o = *p.object;
      std::string result;
      if (options.dry_run == "client") {
        std::optional<Value> current = getCurrent(c, o);
        result =
            !current ? "created"
            : threeWayMergePatch(lastApplied(*current), p.modified, *current, o.type->descriptor)
                    .members()
                    .empty()
                ? "unchanged"
                : "configured";
      } else {
        try {
          result = applyOne(c, p, options, options.dry_run == "server");
          printWarnings(c, err);
        } catch (const client::ApiError& e) {
          if (e.isUnreachable()) throw;
          err << failureText(e, "applying", o) << "\n";
          code = 1;
          continue;
        }
      }
      out << objectRef(*o.type, o.name);
      if (options.output != "name") out << " " << result << suffix;
      out << "\n";
    }
    if (options.prune && prune(c, options, plans, out, err) != 0) code = 1;
    return code;
  });
}

void addApplyCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<ApplyOptions>();
  auto globals = std::make_shared<GlobalOptions>();
  auto* cmd = app.add_subcommand("apply", "Apply a configuration to resources by file or stdin");
  addGlobalFlags(*cmd, *globals);
  cmd->add_option("-f,--filename", options->files, "Files, directories or - for stdin")->required();
  cmd->add_flag("-R,--recursive", options->recursive, "Read directories recursively");
  cmd->add_option("--dry-run", options->dry_run, "none, client or server")->capture_default_str();
  cmd->add_flag("--prune", options->prune,
                "Delete objects made by apply that match -l and are no longer in the files");
  cmd->add_option("-l,--selector", options->selector, "Label selector for --prune");
  cmd->add_option("-o,--output", options->output, "Output format: name");
  cmd->add_flag("--server-side", options->server_side,
                "Apply on the server (server-side apply, fields tracked in managedFields)");
  cmd->add_flag("--force-conflicts", options->force_conflicts,
                "With --server-side: take over fields other managers own instead of failing");
  cmd->add_option("--field-manager", options->field_manager,
                  "Name of the manager that owns the applied fields (server-side default "
                  "\"skiff\")");
  cmd->callback([options, globals, &exit_code] {
    CliContext context(*globals);
    exit_code = runApply(context, *options, std::cout, std::cerr);
  });
}

}  // namespace skiff::cli
