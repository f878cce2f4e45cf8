#include "control/cli/object_commands.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <thread>

#include "control/api/base64.h"
#include "control/cli/get_command.h"
#include "control/cli/manifest_objects.h"
#include "control/cli/printers.h"

namespace skiff::cli {
namespace {

using api::Value;

struct Target {
  const api::ResourceType* type = nullptr;
  std::string ns;
  std::string name;
  std::string source;  // the file, for -f
};

std::string quotedRef(const api::ResourceType& type, const std::string& name) {
  return kindName(type) + " \"" + name + "\"";
}

bool gone(client::Client& c, const Target& t) {
  try {
    c.get(*t.type, t.ns, t.name);
    return false;
  } catch (const client::ApiError& e) {
    if (e.isNotFound()) return true;
    throw;
  }
}

}  // namespace

int runDelete(CliContext& context, const DeleteOptions& options, std::ostream& out,
              std::ostream& err) {
  return runGuarded(err, context, [&]() -> int {
    std::string policy;
    if (options.cascade == "background" || options.cascade == "true") {
      policy = "Background";
    } else if (options.cascade == "foreground") {
      policy = "Foreground";
    } else if (options.cascade == "orphan" || options.cascade == "false") {
      policy = "Orphan";
    } else {
      throw CliError("invalid cascade value (" + options.cascade +
                     "). Must be \"background\", \"foreground\", or \"orphan\"");
    }
    std::optional<std::chrono::milliseconds> timeout;
    if (!options.timeout.empty() && options.timeout != "0" && options.timeout != "0s") {
      timeout = parseDuration(options.timeout);
      if (!timeout) throw CliError("invalid --timeout \"" + options.timeout + "\"");
    }
    std::vector<Target> targets;
    client::Client* c = nullptr;
    if (!options.files.empty()) {
      if (!options.args.empty()) {
        throw CliError("--filename and resource arguments cannot be used together");
      }
      for (auto& o : loadManifestObjects({.files = options.files,
                     .recursive = options.recursive,
                     .context_namespace = [&] { return context.ns(); },
                     .namespace_given = context.namespaceGiven()})) {
        targets.push_back({o.type, o.ns, o.name, o.source});
      }
      c = &context.client();
    } else {
      auto requests = parseResourceArgs(options.args);
      c = &context.client();
      std::string ns = options.all_namespaces ? std::string() : context.ns();
      for (const auto& r : requests) {
        if (!r.names.empty()) {
          if (options.all || !options.selector.empty()) {
            throw CliError("name cannot be provided when a selector is specified");
          }
          for (const auto& n : r.names)
            targets.push_back({r.type, ns, n, ""});
          continue;
        }
        if (!options.all && options.selector.empty()) {
          throw CliError("resource(s) were provided, but no name was specified");
        }
        Value list = c->list(*r.type, ns, {.label_selector = options.selector});
        if (const Value* items = list.find("items"); items != nullptr && items->isArray()) {
          for (const auto& item : items->items()) {
            targets.push_back({r.type, fieldText(item, "metadata.namespace"),
                               fieldText(item, "metadata.name"), ""});
          }
        }
      }
      if (targets.empty()) {
        err << (ns.empty() ? std::string("No resources found\n")
                           : "No resources found in " + ns + " namespace.\n");
        return 0;
      }
    }
    client::DeleteOptions delete_options{.propagation_policy = policy};
    if (options.grace_period >= 0) delete_options.grace_period_seconds = options.grace_period;
    int code = 0;
    std::vector<Target> deleted;
    for (const auto& t : targets) {
      try {
        c->remove(*t.type, t.ns, t.name, delete_options);
        if (options.output == "name") {
          out << objectRef(*t.type, t.name) << "\n";
        } else {
          out << quotedRef(*t.type, t.name) << " deleted\n";
        }
        out.flush();
        deleted.push_back(t);
      } catch (const client::ApiError& e) {
        if (e.isUnreachable()) throw;
        if (e.isNotFound() && options.ignore_not_found) continue;
        std::string reason = e.reason().empty() ? "Unknown" : e.reason();
        err << "Error from server (" << reason
            << "): " << (t.source.empty() ? "" : "error when deleting \"" + t.source + "\": ")
            << apiErrorText(e) << "\n";
        code = 1;
      }
    }
    if (options.wait) {
      auto deadline = timeout ? std::chrono::steady_clock::now() + *timeout
                              : std::chrono::steady_clock::time_point::max();
      for (const auto& t : deleted) {
        while (!gone(*c, t)) {
          if (std::chrono::steady_clock::now() >= deadline) {
            err << "error: timed out waiting for the condition on " << t.type->plural << "/"
                << t.name << "\n";
            return 1;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }
    }
    return code;
  });
}

int runScale(CliContext& context, const ScaleOptions& options, std::ostream& out,
             std::ostream& err) {
  return runGuarded(err, context, [&]() -> int {
    if (options.replicas < 0) {
      throw CliError(
          "The --replicas=COUNT flag is required, and COUNT must be greater than or "
          "equal to 0");
    }
    auto requests = parseResourceArgs(options.args);
    client::Client& c = context.client();
    std::string ns = context.ns();
    int code = 0;
    for (const auto& r : requests) {
      if (r.names.empty()) throw CliError("resource(s) were provided, but no name was specified");
      const auto& subresources = r.type->subresources;
      if (std::find(subresources.begin(), subresources.end(), "scale") == subresources.end()) {
        throw CliError("cannot scale " + r.type->plural + ": the kind has no scale subresource");
      }
      for (const auto& name : r.names) {
        try {
          if (options.current_replicas >= 0) {
            Value scale = c.getScale(*r.type, ns, name);
            int64_t current = fieldInt(scale, "spec.replicas");
            if (current != options.current_replicas) {
              err << "error: Expected replicas to be " << options.current_replicas << ", was "
                  << current << "\n";
              code = 1;
              continue;
            }
            // The resourceVersion read above makes this a compare-and-swap.
            Value* spec = scale.find("spec");
            spec->set("replicas", Value::integer(options.replicas));
            c.updateScale(*r.type, ns, scale);
          } else {
            c.patch(*r.type, ns, name, client::PatchType::kMerge,
                    "{\"spec\":{\"replicas\":" + std::to_string(options.replicas) + "}}", {},
                    "scale");
          }
          out << objectRef(*r.type, name) << " scaled\n";
        } catch (const client::ApiError& e) {
          if (e.isUnreachable()) throw;
          reportError(err, e);
          code = 1;
        }
      }
    }
    return code;
  });
}

namespace {

std::string readWhole(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CliError("error reading " + path.string() + ": cannot open the file");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool validKey(const std::string& key) {
  if (key.empty() || key.size() > 253) return false;
  return key.find_first_not_of(
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") ==
         std::string::npos;
}

// The key/value pairs of --from-literal and --from-file, in order, keys checked and unique.
std::vector<std::pair<std::string, std::string>> collectData(const CreateOptions& options) {
  std::vector<std::pair<std::string, std::string>> data;
  auto add = [&](std::string key, std::string value) {
    if (!validKey(key)) {
      throw CliError("\"" + key +
                     "\" is not a valid key name: a valid config key must consist of alphanumeric "
                     "characters, '-', '_' or '.'");
    }
    for (const auto& [k, v] : data) {
      if (k == key)
        throw CliError("cannot add key " + key + ", another key by that name already exists");
    }
    data.emplace_back(std::move(key), std::move(value));
  };
  for (const auto& literal : options.from_literal) {
    size_t eq = literal.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw CliError("invalid literal source " + literal + ", expected key=value");
    }
    add(literal.substr(0, eq), literal.substr(eq + 1));
  }
  namespace fs = std::filesystem;
  for (const auto& source : options.from_file) {
    std::string key;
    std::string path = source;
    if (size_t eq = source.find('='); eq != std::string::npos) {
      key = source.substr(0, eq);
      path = source.substr(eq + 1);
    }
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      if (!key.empty()) throw CliError("cannot give a key name for a directory path");
      std::vector<fs::path> files;
      for (const auto& entry : fs::directory_iterator(path)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
      std::sort(files.begin(), files.end());
      for (const auto& f : files)
        add(f.filename().string(), readWhole(f));
      continue;
    }
    if (!fs::exists(path, ec))
      throw CliError("error reading " + path + ": no such file or directory");
    add(key.empty() ? fs::path(path).filename().string() : key, readWhole(path));
  }
  return data;
}

bool isUtf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t j = 1; j < n; ++j) {
      if ((static_cast<unsigned char>(s[i + j]) & 0xc0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

}  // namespace

int runCreate(CliContext& context, const CreateOptions& options, std::ostream& out,
              std::ostream& err) {
  return runGuarded(err, context, [&]() -> int {
    if (options.name.empty()) throw CliError("NAME is required");
    const api::ResourceType* type = nullptr;
    Value object = Value::object();
    object.append("apiVersion", Value::string("v1"));
    Value metadata = Value::object();
    metadata.append("name", Value::string(options.name));
    if (options.what == "namespace") {
      type = &resolveType("namespaces");
      object.append("kind", Value::string("Namespace"));
      object.append("metadata", std::move(metadata));
    } else if (options.what == "configmap" || options.what == "secret") {
      bool secret = options.what == "secret";
      type = &resolveType(secret ? "secrets" : "configmaps");
      object.append("kind", Value::string(secret ? "Secret" : "ConfigMap"));
      metadata.append("namespace", Value::string(context.ns()));
      object.append("metadata", std::move(metadata));
      Value data = Value::object();
      Value binary = Value::object();
      for (auto& [k, v] : collectData(options)) {
        if (secret) {
          data.append(k, Value::string(api::base64Encode(v)));
        } else if (isUtf8(v)) {
          data.append(k, Value::string(std::move(v)));
        } else {
          binary.append(k, Value::string(api::base64Encode(v)));
        }
      }
      if (!data.members().empty()) object.append("data", std::move(data));
      if (!binary.members().empty()) object.append("binaryData", std::move(binary));
      if (secret) object.append("type", Value::string(options.secret_type));
    } else {
      throw CliError("unknown resource to create: \"" + options.what + "\"");
    }
    if (options.dry_run != "none" && options.dry_run != "client" && options.dry_run != "server") {
      throw CliError("Invalid dry-run value (" + options.dry_run +
                     "). Must be \"none\", \"server\", or \"client\".");
    }
    Value created = object;
    if (options.dry_run != "client") {
      created = context.client().create(
          *type, type->namespaced ? context.ns() : "", object,
          {.dry_run = options.dry_run == "server", .field_validation = "Strict"});
    }
    if (options.output == "yaml") {
      out << toYaml(created);
    } else if (options.output == "json") {
      out << toJson(created);
    } else if (options.output == "name") {
      out << objectRef(*type, options.name) << "\n";
    } else {
      out << objectRef(*type, options.name) << " created"
          << (options.dry_run == "server"   ? " (server dry run)"
              : options.dry_run == "client" ? " (dry run)"
                                            : "")
          << "\n";
    }
    return 0;
  });
}

void addObjectCommands(CLI::App& app, int& exit_code) {
  {
    auto options = std::make_shared<DeleteOptions>();
    auto globals = std::make_shared<GlobalOptions>();
    auto* cmd = app.add_subcommand("delete", "Delete resources by file, names or label selector");
    addGlobalFlags(*cmd, *globals);
    cmd->add_option("args", options->args, "TYPE NAME... or TYPE/NAME...");
    cmd->add_option("-f,--filename", options->files, "Files, directories or - naming the objects");
    cmd->add_flag("-R,--recursive", options->recursive, "Read directories recursively");
    cmd->add_option("-l,--selector", options->selector, "Label selector");
    cmd->add_flag("--all", options->all, "Delete every object of the types given");
    cmd->add_flag("-A,--all-namespaces", options->all_namespaces, "In every namespace");
    cmd->add_option("--cascade", options->cascade, "background, foreground or orphan")
        ->capture_default_str();
    cmd->add_option("--wait", options->wait, "Wait until the objects are gone")
        ->capture_default_str();
    cmd->add_option("--grace-period", options->grace_period,
                    "Seconds the objects get to terminate (-1: their own default)");
    cmd->add_flag("--ignore-not-found", options->ignore_not_found, "Absent objects are no error");
    cmd->add_option("--timeout", options->timeout, "How long --wait waits (e.g. 60s); 0: forever");
    cmd->add_option("-o,--output", options->output, "Output format: name");
    cmd->callback([options, globals, &exit_code] {
      CliContext context(*globals);
      exit_code = runDelete(context, *options, std::cout, std::cerr);
    });
  }
  {
    auto options = std::make_shared<ScaleOptions>();
    auto globals = std::make_shared<GlobalOptions>();
    auto* cmd = app.add_subcommand("scale",
                                   "Set a new size for a deployment, replica set or "
                                   "stateful set");
    addGlobalFlags(*cmd, *globals);
    cmd->add_option("args", options->args, "TYPE/NAME or TYPE NAME")->required();
    cmd->add_option("--replicas", options->replicas, "The new number of replicas")->required();
    cmd->add_option("--current-replicas", options->current_replicas,
                    "Precondition: the current size must be this");
    cmd->callback([options, globals, &exit_code] {
      CliContext context(*globals);
      exit_code = runScale(context, *options, std::cout, std::cerr);
    });
  }
  {
    auto* create = app.add_subcommand("create", "Create a namespace, config map or secret");
    create->require_subcommand(1);
    auto add = [&](const std::string& what, const std::string& help, CLI::App* parent) {
      auto options = std::make_shared<CreateOptions>();
      auto globals = std::make_shared<GlobalOptions>();
      options->what = what == "generic" ? "secret" : what;
      auto* cmd = parent->add_subcommand(what, help);
      if (what == "configmap") cmd->alias("cm");
      if (what == "namespace") cmd->alias("ns");
      addGlobalFlags(*cmd, *globals);
      cmd->add_option("name", options->name, "The object's name")->required();
      if (what != "namespace") {
        cmd->add_option("--from-literal", options->from_literal, "key=value (repeatable)");
        cmd->add_option("--from-file", options->from_file,
                        "[key=]path: a file, or a directory's files (repeatable)");
      }
      if (what == "generic") cmd->add_option("--type", options->secret_type, "The secret's type");
      cmd->add_option("--dry-run", options->dry_run, "none, client or server")
          ->capture_default_str();
      cmd->add_option("-o,--output", options->output, "Output format: name, yaml, json");
      cmd->callback([options, globals, &exit_code] {
        CliContext context(*globals);
        exit_code = runCreate(context, *options, std::cout, std::cerr);
      });
    };
    add("namespace", "Create a namespace", create);
    add("configmap", "Create a config map from literals, files or directories", create);
    auto* secret = create->add_subcommand("secret", "Create a secret");
    secret->require_subcommand(1);
    add("generic", "Create a secret from literals, files or directories", secret);
  }
}

}  // namespace skiff::cli
