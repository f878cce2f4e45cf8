#include "control/cli/info_commands.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include <google/protobuf/stubs/common.h>

#include "control/api/json.h"
#include "control/api/yaml.h"
#include "control/cli/printers.h"
#include "skiff/version.h"

namespace skiff::cli {
namespace {

using api::Value;

Value getJson(client::Client& c, const std::string& path) {
  client::RawRequest request;
  request.path = path;
  return rawJson(c, request);
}

Value clientVersion() {
  Value v = Value::object();
  std::string k8s = kKubernetesVersion;  // "v1.32.0"
  std::string numbers = k8s.substr(1);
  v.append("major", Value::string(numbers.substr(0, numbers.find('.'))));
  size_t a = numbers.find('.');
  size_t b = numbers.find('.', a + 1);
  v.append("minor", Value::string(numbers.substr(a + 1, b - a - 1)));
  v.append("gitVersion", Value::string(k8s + "-skiff." + kVersion));
  v.append("skiffVersion", Value::string(kVersion));
  v.append("protobufVersion",
           Value::string(google::protobuf::internal::VersionString(GOOGLE_PROTOBUF_VERSION)));
  v.append("platform", Value::string("linux/amd64"));
  return v;
}

}  // namespace

int runVersion(CliContext& context, const VersionOptions& options, std::ostream& out,
               std::ostream& err) {
  if (!options.output.empty() && options.output != "json" && options.output != "yaml") {
    err << "error: --output must be 'yaml' or 'json'\n";
    return 1;
  }
  Value client_version = clientVersion();
  if (options.output.empty()) {
    out << "Client Version: skiff " << kVersion << " (Kubernetes API " << kKubernetesVersion
        << ", protobuf " << fieldText(client_version, "protobufVersion") << ")\n";
  }
  if (options.client_only) {
    if (!options.output.empty()) {
      Value doc = Value::object();
      doc.append("clientVersion", client_version);
      out << (options.output == "json" ? toJson(doc) : toYaml(doc));
    }
    return 0;
  }
  return runGuarded(err, context, [&] {
    Value server = getJson(context.client(), "/version");
    if (options.output.empty()) {
      out << "Server Version: " << fieldText(server, "gitVersion") << "\n";
    } else {
      Value doc = Value::object();
      doc.append("clientVersion", client_version);
      doc.append("serverVersion", server);
      out << (options.output == "json" ? toJson(doc) : toYaml(doc));
    }
    return 0;
  });
}

int runApiResources(CliContext& context, const ApiResourcesOptions& options, std::ostream& out,
                    std::ostream& err) {
  return runGuarded(err, context, [&] {
    client::Client& c = context.client();
    struct Row {
      std::string name, short_names, group_version, group, kind, verbs, categories;
      bool namespaced = false;
    };
    std::vector<Row> rows;
    auto collect = [&](const std::string& path, const std::string& group) {
      Value list = getJson(c, path);
      const Value* resources = list.find("resources");
      if (resources == nullptr || !resources->isArray()) return;
      for (const auto& r : resources->items()) {
        Row row;
        row.name = fieldText(r, "name");
        if (row.name.find('/') != std::string::npos) continue;  // subresources
        row.group = group;
        row.group_version = fieldText(list, "groupVersion");
        row.kind = fieldText(r, "kind");
        const Value* ns = r.find("namespaced");
        row.namespaced = ns != nullptr && ns->isBool() && ns->asBool();
        auto joined = [&](const char* key, const char* sep) {
          std::string s;
          if (const Value* a = r.find(key); a != nullptr && a->isArray()) {
            for (const auto& v : a->items())
              s += (s.empty() ? "" : sep) + v.text();
          }
          return s;
        };
        row.short_names = joined("shortNames", ",");
        row.verbs = "[" + joined("verbs", " ") + "]";
        row.categories = joined("categories", ",");
        rows.push_back(std::move(row));
      }
    };
    collect("/api/v1", "");
    Value groups = getJson(c, "/apis");
    if (const Value* g = groups.find("groups"); g != nullptr && g->isArray()) {
      for (const auto& group : g->items()) {
        std::string gv = fieldText(group, "preferredVersion.groupVersion");
        if (!gv.empty()) collect("/apis/" + gv, fieldText(group, "name"));
      }
    }
    std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
      if (a.group != b.group) return a.group < b.group;
      return a.name < b.name;
    });
    TabWriter writer;
    bool wide = options.output == "wide";
    if (options.output != "name" && !options.no_headers) {
      std::vector<std::string> header{"NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"};
      if (wide) {
        header.emplace_back("VERBS");
        header.emplace_back("CATEGORIES");
      }
      writer.addRow(header);
    }
    for (const auto& r : rows) {
      if (!options.api_group.empty() && r.group != options.api_group) continue;
      if (!options.namespaced.empty() && (options.namespaced == "true") != r.namespaced) continue;
      if (options.output == "name") {
        out << r.name << (r.group.empty() ? "" : "." + r.group) << "\n";
        continue;
      }
      std::vector<std::string> cells{r.name, r.short_names, r.group_version,
                                     r.namespaced ? "true" : "false", r.kind};
      if (wide) {
        cells.push_back(r.verbs);
        cells.push_back(r.categories);
      }
      writer.addRow(std::move(cells));
    }
    writer.write(out);
    return 0;
  });
}

namespace {

// Follows `$ref` (directly or in allOf) to the schema it names.
const Value* deref(const Value& schemas, const Value* s) {
  for (int depth = 0; s != nullptr && depth < 8; ++depth) {
    const Value* ref = s->find("$ref");
    if (ref == nullptr) {
      const Value* all = s->find("allOf");
      if (all != nullptr && all->isArray() && !all->items().empty())
        ref = all->items()[0].find("$ref");
    }
    if (ref == nullptr || !ref->isString()) return s;
    std::string name = ref->text().substr(ref->text().rfind('/') + 1);
    s = schemas.find(name);
  }
  return s;
}

std::string typeName(const Value& schemas, const Value& s) {
  const Value* target = deref(schemas, &s);
  const Value* ref = s.find("$ref");
  if (ref == nullptr) {
    if (const Value* all = s.find("allOf");
        all != nullptr && all->isArray() && !all->items().empty())
      ref = all->items()[0].find("$ref");
  }
  std::string type = fieldText(target != nullptr ? *target : s, "type");
  if (ref != nullptr && ref->isString() && type == "object") {
    std::string name = ref->text().substr(ref->text().rfind('.') + 1);
    return name;
  }
  if (type == "array") {
    const Value* items = s.find("items");
    return "[]" + (items != nullptr ? typeName(schemas, *items) : std::string("Object"));
  }
  if (type == "object" && target != nullptr && target->find("additionalProperties") != nullptr) {
    const Value* ap = target->find("additionalProperties");
    return "map[string]" + (ap->isObject() ? typeName(schemas, *ap) : std::string("string"));
  }
  if (target != nullptr && target->find("x-kubernetes-int-or-string") != nullptr)
    return "IntOrString";
  if (type.empty()) return "Object";
  return type;
}

void printDescription(std::ostream& out, const std::string& text, const std::string& indent) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    out << indent << line << "\n";
}

void printFields(std::ostream& out, const Value& schemas, const Value& schema,
                 const std::string& indent, bool recursive, int depth) {
  const Value* props = schema.find("properties");
  if (props == nullptr || !props->isObject()) return;
  std::vector<const Value::Member*> fields;
  for (const auto& m : props->members())
    fields.push_back(&m);
  std::sort(fields.begin(), fields.end(),
            [](const Value::Member* a, const Value::Member* b) { return a->key < b->key; });
  const Value* required = schema.find("required");
  for (const auto* f : fields) {
    bool req = required != nullptr && required->isArray() &&
               std::find(required->items().begin(), required->items().end(),
                         Value::string(f->key)) != required->items().end();
    out << indent << f->key << "\t<" << typeName(schemas, f->value) << ">"
        << (req ? " -required-" : "") << "\n";
    if (recursive) {
      const Value* sub = deref(schemas, &f->value);
      if (sub != nullptr && fieldText(*sub, "type") == "array")
        sub = deref(schemas, sub->find("items"));
      if (sub != nullptr && depth < 12)
        printFields(out, schemas, *sub, indent + "  ", true, depth + 1);
      continue;
    }
    std::string description = fieldText(f->value, "description");
    if (description.empty()) {
      if (const Value* t = deref(schemas, &f->value)) description = fieldText(*t, "description");
    }
    if (!description.empty()) {
      printDescription(out, description, indent + "  ");
      out << "\n";
    }
  }
}

}  // namespace

int runExplain(CliContext& context, const ExplainOptions& options, std::ostream& out,
               std::ostream& err) {
  return runGuarded(err, context, [&] {
    if (options.path.empty()) {
      throw CliError(
          "You must specify the type of resource to explain. Use \"skiff "
          "api-resources\" for a complete list of supported resources.");
    }
    // "deployments.apps.spec" cannot be told from "deployment.spec" by dots alone: try the longest
    // prefix that names a kind.
    std::vector<std::string> parts;
    std::stringstream in(options.path);
    for (std::string p; std::getline(in, p, '.');)
      parts.push_back(p);
    const api::ResourceType* type = nullptr;
    size_t used = 0;
    for (size_t n = parts.size(); n >= 1 && type == nullptr; --n) {
      std::string name;
      for (size_t i = 0; i < n; ++i)
        name += (i ? "." : "") + parts[i];
      type = api::Registry::builtin().resolve(name);
      if (type != nullptr) used = n;
    }
    if (type == nullptr) resolveType(parts[0]);  // throws kubectl's message
    client::Client& c = context.client();
    std::string doc_path = type->group.empty()
                               ? "/openapi/v3/api/" + type->version
                               : "/openapi/v3/apis/" + type->group + "/" + type->version;
    Value doc = getJson(c, doc_path);
    const Value* schemas = field(doc, "components.schemas");
    if (schemas == nullptr) throw CliError("the server's OpenAPI document has no schemas");
    const Value* schema = nullptr;
    for (const auto& m : schemas->members()) {
      const Value* gvks = m.value.find("x-kubernetes-group-version-kind");
      if (gvks == nullptr || !gvks->isArray()) continue;
      for (const auto& gvk : gvks->items()) {
        if (fieldText(gvk, "kind") == type->kind && fieldText(gvk, "group") == type->group &&
            fieldText(gvk, "version") == type->version) {
          schema = &m.value;
        }
      }
    }
    if (schema == nullptr) {
      throw CliError("couldn't find resource for \"" + type->apiVersion() + ", Kind=" + type->kind +
                     "\"");
    }
    out << "GROUP:      " << type->group << "\nKIND:       " << type->kind
        << "\nVERSION:    " << type->version << "\n\n";
    const Value* current = schema;
    std::string field_name;
    std::string field_type;
    for (size_t i = used; i < parts.size(); ++i) {
      const Value* target = deref(*schemas, current);
      if (target != nullptr && fieldText(*target, "type") == "array") {
        target = deref(*schemas, target->find("items"));
      }
      const Value* props = target != nullptr ? target->find("properties") : nullptr;
      const Value* next = props != nullptr ? props->find(parts[i]) : nullptr;
      if (next == nullptr) {
        std::string path;
        for (size_t j = used; j <= i; ++j)
          path += "." + parts[j];
        throw CliError("field \"" + parts[i] + "\" does not exist");
      }
      field_name = parts[i];
      field_type = typeName(*schemas, *next);
      current = next;
    }
    if (!field_name.empty()) out << "FIELD: " << field_name << " <" << field_type << ">\n\n";
    std::string description = fieldText(*current, "description");
    const Value* target = deref(*schemas, current);
    if (target != nullptr && fieldText(*target, "type") == "array") {
      target = deref(*schemas, target->find("items"));
    }
    if (description.empty() && target != nullptr) description = fieldText(*target, "description");
    out << "DESCRIPTION:\n";
    printDescription(out, description.empty() ? "<empty>" : description, "    ");
    if (target != nullptr && target->find("properties") != nullptr) {
      out << "\nFIELDS:\n";
      printFields(out, *schemas, *target, "  ", options.recursive, 0);
    }
    return 0;
  });
}

namespace {

std::string firstKubeconfig(const GlobalOptions& g) {
  auto paths = client::kubeconfigPaths({.kubeconfig = g.kubeconfig});
  for (const auto& p : paths) {
    if (std::filesystem::exists(p)) return p;
  }
  if (paths.empty()) throw CliError("no kubeconfig file found");
  return paths[0];
}

std::string readText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CliError("cannot read " + path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

Value loadYaml(const std::string& path) {
  std::string text = readText(path);
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return Value::object();
  Value v = api::parseYaml(text, {.source = path});
  if (!v.isObject()) throw CliError(path + ": not a kubeconfig");
  return v;
}

void redact(Value& v) {
  if (v.isObject()) {
    for (auto& m : v.members()) {
      if (m.key.ends_with("-data") && m.value.isString()) {
        m.value = Value::string("DATA+OMITTED");
      } else if (m.key == "token" && m.value.isString()) {
        m.value = Value::string("REDACTED");
      } else {
        redact(m.value);
      }
    }
  } else if (v.isArray()) {
    for (auto& item : v.items())
      redact(item);
  }
}

const Value* named(const Value& config, const char* list, const std::string& name) {
  const Value* items = config.find(list);
  if (items == nullptr || !items->isArray()) return nullptr;
  for (const auto& item : items->items()) {
    if (fieldText(item, "name") == name) return &item;
  }
  return nullptr;
}

}  // namespace

int runConfig(CliContext& context, const ConfigOptions& options, std::ostream& out,
              std::ostream& err) {
  return runGuarded(err, context, [&] {
    const GlobalOptions& g = context.options();
    if (options.verb == "current-context") {
      client::Kubeconfig merged;
      for (const auto& p : client::kubeconfigPaths({.kubeconfig = g.kubeconfig})) {
        if (std::filesystem::exists(p)) merged.merge(client::Kubeconfig::loadFile(p));
      }
      std::string current = g.context.empty() ? merged.currentContext() : g.context;
      if (current.empty()) throw CliError("current-context is not set");
      out << current << "\n";
      return 0;
    }
    std::string path = firstKubeconfig(g);
    if (options.verb == "use-context") {
      Value config = loadYaml(path);
      if (named(config, "contexts", options.name) == nullptr) {
        throw CliError("no context exists with the name: \"" + options.name + "\"");
      }
      config.set("current-context", Value::string(options.name));
      std::string tmp = path + ".skiff-tmp";
      {
        std::ofstream o(tmp, std::ios::binary | std::ios::trunc);
        o << api::writeYaml(config);
        if (!o) throw CliError("cannot write " + tmp);
      }
      std::filesystem::permissions(
          tmp, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
      std::filesystem::rename(tmp, path);
      out << "Switched to context \"" << options.name << "\".\n";
      return 0;
    }
    Value config = loadYaml(path);
    std::string current = fieldText(config, "current-context");
    if (options.verb == "get-contexts") {
      TabWriter writer;
      if (options.output != "name") {
        writer.addRow({"CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE"});
      }
      const Value* contexts = config.find("contexts");
      bool found = options.name.empty();
      if (contexts != nullptr && contexts->isArray()) {
        for (const auto& c : contexts->items()) {
          std::string name = fieldText(c, "name");
          if (!options.name.empty() && name != options.name) continue;
          found = true;
          if (options.output == "name") {
            out << name << "\n";
            continue;
          }
          writer.addRow({name == current ? "*" : "", name, fieldText(c, "context.cluster"),
                         fieldText(c, "context.user"), fieldText(c, "context.namespace")});
        }
      }
      if (!found) throw CliError("context " + options.name + " not found");
      writer.write(out);
      return 0;
    }
    if (options.verb == "view") {
      if (options.minify) {
        std::string name = g.context.empty() ? current : g.context;
        const Value* ctx = named(config, "contexts", name);
        if (ctx == nullptr) throw CliError("current-context must exist in order to minify");
        Value minified = Value::object();
        minified.append("apiVersion", Value::string("v1"));
        auto one = [&](const char* list, const std::string& n) {
          Value array = Value::array();
          if (const Value* e = named(config, list, n)) array.push(*e);
          return array;
        };
        minified.append("clusters", one("clusters", fieldText(*ctx, "context.cluster")));
        Value contexts = Value::array();
        contexts.push(*ctx);
        minified.append("contexts", std::move(contexts));
        minified.append("current-context", Value::string(name));
        minified.append("kind", Value::string("Config"));
        minified.append("preferences", Value::object());
        minified.append("users", one("users", fieldText(*ctx, "context.user")));
        config = std::move(minified);
      }
      if (!options.raw) redact(config);
      out << (options.output == "json" ? toJson(config) : toYaml(config));
      return 0;
    }
    throw CliError("unknown config command \"" + options.verb + "\"");
  });
}

void addInfoCommands(CLI::App& app, int& exit_code) {
  {
    auto options = std::make_shared<VersionOptions>();
    auto globals = std::make_shared<GlobalOptions>();
    auto* cmd = app.add_subcommand("version", "Print the client and server versions");
    addGlobalFlags(*cmd, *globals);
    cmd->add_flag("--client", options->client_only, "Only the client's version");
    cmd->add_option("-o,--output", options->output, "yaml or json");
    cmd->callback([options, globals, &exit_code] {
      CliContext context(*globals);
      exit_code = runVersion(context, *options, std::cout, std::cerr);
    });
  }
  {
    auto options = std::make_shared<ApiResourcesOptions>();
    auto globals = std::make_shared<GlobalOptions>();
    auto* cmd = app.add_subcommand("api-resources", "Print the resources the server serves");
    addGlobalFlags(*cmd, *globals);
    cmd->add_option("-o,--output", options->output, "wide or name");
    cmd->add_option("--api-group", options->api_group, "Only this API group");
    cmd->add_option("--namespaced", options->namespaced, "true or false: only those resources");
    cmd->add_flag("--no-headers", options->no_headers, "Print no header row");
    cmd->callback([options, globals, &exit_code] {
      CliContext context(*globals);
      exit_code = runApiResources(context, *options, std::cout, std::cerr);
    });
  }
  {
    auto options = std::make_shared<ExplainOptions>();
    auto globals = std::make_shared<GlobalOptions>();
    auto* cmd =
        app.add_subcommand("explain", "Describe a kind's fields, from the server's OpenAPI");
    addGlobalFlags(*cmd, *globals);
    cmd->add_option("path", options->path, "TYPE[.field.path]")->required();
    cmd->add_flag("--recursive", options->recursive, "Every field, nested");
    cmd->callback([options, globals, &exit_code] {
      CliContext context(*globals);
      exit_code = runExplain(context, *options, std::cout, std::cerr);
    });
  }
  {
    auto* config = app.add_subcommand("config", "Read and change kubeconfig files");
    config->require_subcommand(1);
    auto add = [&](const std::string& verb, const std::string& help) {
      auto options = std::make_shared<ConfigOptions>();
      auto globals = std::make_shared<GlobalOptions>();
      options->verb = verb;
      auto* cmd = config->add_subcommand(verb, help);
      addGlobalFlags(*cmd, *globals);
      if (verb == "use-context") cmd->add_option("name", options->name, "The context")->required();
      if (verb == "get-contexts") cmd->add_option("name", options->name, "Only this context");
      if (verb == "view") {
        cmd->add_flag("--raw", options->raw, "Show certificates and tokens");
        cmd->add_flag("--minify", options->minify, "Only what the current context uses");
      }
      if (verb == "view" || verb == "get-contexts") {
        cmd->add_option("-o,--output", options->output, verb == "view" ? "yaml or json" : "name");
      }
      cmd->callback([options, globals, &exit_code] {
        CliContext context(*globals);
        exit_code = runConfig(context, *options, std::cout, std::cerr);
      });
    };
    add("view", "Show the kubeconfig (secrets redacted unless --raw)");
    add("use-context", "Set current-context");
    add("get-contexts", "List the contexts");
    add("current-context", "Print current-context");
  }
}

}  // namespace skiff::cli
