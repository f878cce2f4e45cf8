#include "control/cli/get_command.h"

#include <algorithm>
#include <iostream>
#include <map>
#include <sstream>

#include "control/cli/jsonpath.h"
#include "control/cli/printers.h"

namespace skiff::cli {
namespace {

using api::Value;

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, sep)) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

// The objects of a request: one per name, or the list's items.
std::vector<Value> fetchObjects(client::Client& c, const ResourceRequest& r, const std::string& ns,
                                const client::ListOptions& list_options, std::ostream& err,
                                int& code) {
  std::vector<Value> out;
  if (r.names.empty()) {
    Value list = c.list(*r.type, ns, list_options);
    if (Value* items = list.find("items"); items != nullptr && items->isArray()) {
      for (auto& item : items->items()) {
        // Lists leave apiVersion and kind out of their items; kubectl puts them back.
        if (item.find("apiVersion") == nullptr) {
          Value typed = Value::object();
          typed.append("apiVersion", Value::string(r.type->apiVersion()));
          typed.append("kind", Value::string(r.type->kind));
          for (auto& m : item.members())
            typed.append(m.key, m.value);
          item = std::move(typed);
        }
        out.push_back(std::move(item));
      }
    }
    return out;
  }
  for (const auto& name : r.names) {
    try {
      out.push_back(c.get(*r.type, ns, name));
    } catch (const client::ApiError& e) {
      if (e.isUnreachable()) throw;
      reportError(err, e);
      code = 1;
    }
  }
  return out;
}

std::string noResources(const std::string& ns, bool all, const api::ResourceType* type) {
  if (all || (type != nullptr && !type->namespaced)) return "No resources found\n";
  return "No resources found in " + ns + " namespace.\n";
}

int watchRows(client::Client& c, const ResourceRequest& r, const std::string& ns,
              const GetOptions& options, const TableOptions& table_options,
              const std::string& resource_version, std::vector<size_t> widths,
              std::map<std::string, std::vector<std::string>> rows, std::ostream& out) {
  client::WatchOptions watch_options{.label_selector = options.selector,
                                     .field_selector = options.field_selector,
                                     .resource_version = resource_version};
  if (r.names.size() == 1) {
    watch_options.field_selector = "metadata.name=" + r.names[0];
  }
  if (watch_options.resource_version.empty()) {
    // Changes after what was printed: the list's revision (a GET of one object has none).
    watch_options.resource_version =
        fieldText(c.list(*r.type, ns,
                         {.label_selector = watch_options.label_selector,
                          .field_selector = watch_options.field_selector,
                          .limit = 1}),
                  "metadata.resourceVersion");
  }
  auto stream = c.watch(*r.type, ns, watch_options);
  int events = 0;
  client::WatchEvent event;
  while (!stream->ended()) {
    if (!stream->next(event, std::chrono::milliseconds(500))) continue;
    if (event.type == client::WatchEvent::Type::kBookmark) continue;
    if (event.type == client::WatchEvent::Type::kError) {
      throw client::ApiError(static_cast<int>(fieldInt(event.object, "code", 500)),
                             fieldText(event.object, "reason"), fieldText(event.object, "message"),
                             event.object);
    }
    std::string obj_ns = fieldText(event.object, "metadata.namespace");
    std::string name = fieldText(event.object, "metadata.name");
    std::string key = obj_ns + "/" + name;
    std::vector<std::string> cells;
    if (event.type == client::WatchEvent::Type::kDeleted) {
      cells = rows.contains(key) ? rows[key] : std::vector<std::string>{name};
      rows.erase(key);
    } else {
      try {
        Value table = getTable(c, *r.type, obj_ns, name);
        auto fresh = tableRows(table, table_options);
        if (fresh.empty()) continue;
        cells = fresh[0];
        rows[key] = cells;
      } catch (const client::ApiError& e) {
        if (!e.isNotFound()) throw;
        continue;  // gone again before we read it; its DELETED event follows
      }
    }
    out << TabWriter::formatRow(cells, widths) << std::endl;
    if (options.watch_event_limit > 0 && ++events >= options.watch_event_limit) break;
  }
  stream->cancel();
  if (auto error = stream->error()) throw *error;
  return 0;
}

}  // namespace

std::vector<ResourceRequest> parseResourceArgs(const std::vector<std::string>& args) {
  std::vector<ResourceRequest> requests;
  if (args.empty()) {
    throw CliError(
        "You must specify the type of resource to get. Use \"skiff api-resources\" for a "
        "complete list of supported resources.");
  }
  bool slash_form = args[0].find('/') != std::string::npos;
  if (slash_form) {
    for (const auto& arg : args) {
      size_t slash = arg.find('/');
      if (slash == std::string::npos || slash == 0 || slash + 1 == arg.size()) {
        throw CliError(
            "there is no need to specify a resource type as a separate argument when "
            "passing arguments in resource/name form (e.g. 'skiff get resource/<"
            "resource_name>' instead of 'skiff get resource resource/<resource_name>'");
      }
      const api::ResourceType& type = resolveType(arg.substr(0, slash));
      auto it = std::find_if(requests.begin(), requests.end(),
                             [&](const ResourceRequest& r) { return r.type == &type; });
      if (it == requests.end()) {
        requests.push_back({&type, {}});
        it = requests.end() - 1;
      }
      it->names.push_back(arg.substr(slash + 1));
    }
    return requests;
  }
  for (const auto& t : split(args[0], ',')) {
    // A category ("all") stands for its kinds, in kubectl's order for "all".
    std::vector<const api::ResourceType*> members;
    if (api::Registry::builtin().resolve(t) == nullptr) {
      static const char* kAllOrder[] = {"Pod",        "Service",     "DaemonSet", "Deployment",
                                        "ReplicaSet", "StatefulSet", "Job",       "CronJob"};
      for (const char* kind : kAllOrder) {
        for (const auto& type : api::Registry::builtin().types()) {
          const auto& c = type.categories;
          if (type.served() && type.kind == kind && std::find(c.begin(), c.end(), t) != c.end())
            members.push_back(&type);
        }
      }
      for (const auto& type : api::Registry::builtin().types()) {
        const auto& c = type.categories;
        if (type.served() && std::find(c.begin(), c.end(), t) != c.end() &&
            std::find(members.begin(), members.end(), &type) == members.end()) {
          members.push_back(&type);
        }
      }
    }
    if (members.empty()) members.push_back(&resolveType(t));
    for (const auto* type : members) {
      bool seen = std::any_of(requests.begin(), requests.end(),
                              [&](const ResourceRequest& r) { return r.type == type; });
      if (!seen) requests.push_back({type, {}});
    }
  }
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i].find('/') != std::string::npos) {
      throw CliError(
          "there is no need to specify a resource type as a separate argument when "
          "passing arguments in resource/name form (e.g. 'skiff get resource/<"
          "resource_name>' instead of 'skiff get resource resource/<resource_name>'");
    }
    for (auto& r : requests)
      r.names.push_back(args[i]);
  }
  return requests;
}

int runGet(CliContext& context, const GetOptions& options, std::ostream& out, std::ostream& err) {
  return runGuarded(err, context, [&]() -> int {
    std::vector<ResourceRequest> requests = parseResourceArgs(options.args);
    const std::string& o = options.output;
    std::optional<JsonPath> template_path;
    if (o.starts_with("jsonpath=") || o.starts_with("jsonpath-as-json=")) {
      try {
        template_path = JsonPath::parse(o.substr(o.find('=') + 1));
      } catch (const std::invalid_argument& e) {
        throw CliError(e.what());
      }
    } else if (!o.empty() && o != "wide" && o != "yaml" && o != "json" && o != "name") {
      throw CliError("unable to match a printer suitable for the output format \"" + o +
                     "\", allowed formats are: json,jsonpath,name,wide,yaml");
    }
    if (options.watch && requests.size() > 1) {
      throw CliError(
          "watch is only supported on individual resources and resource collections, "
          "but " +
          std::to_string(requests.size()) + " resources were found");
    }
    client::Client& c = context.client();
    std::string ns = options.all_namespaces ? std::string() : context.ns();
    client::ListOptions list_options{.label_selector = options.selector,
                                     .field_selector = options.field_selector};
    int code = 0;
    bool several_kinds = requests.size() > 1;

    if (o.empty() || o == "wide") {
      bool printed_any = false;
      for (const auto& r : requests) {
        TableOptions table_options{.wide = o == "wide",
                                   .no_headers = options.no_headers,
                                   .show_labels = options.show_labels,
                                   .with_namespace = options.all_namespaces && r.type->namespaced,
                                   .name_prefix = several_kinds ? kindName(*r.type) + "/" : ""};
        std::vector<Value> tables;
        std::string resource_version;
        if (r.names.empty()) {
          tables.push_back(getTable(c, *r.type, ns, "", list_options));
          resource_version = fieldText(tables.back(), "metadata.resourceVersion");
        } else {
          for (const auto& name : r.names) {
            try {
              tables.push_back(getTable(c, *r.type, ns, name));
            } catch (const client::ApiError& e) {
              if (e.isUnreachable()) throw;
              reportError(err, e);
              code = 1;
            }
          }
        }
        TabWriter writer;
        std::map<std::string, std::vector<std::string>> rows_by_key;
        bool header_added = false;
        size_t count = 0;
        for (const auto& table : tables) {
          if (!header_added && !options.no_headers) {
            writer.addRow(tableHeader(table, table_options));
            header_added = true;
          }
          auto rows = tableRows(table, table_options);
          const Value* raw_rows = table.find("rows");
          for (size_t i = 0; i < rows.size(); ++i) {
            const Value& obj = raw_rows->items()[i].find("object") != nullptr
                                   ? *raw_rows->items()[i].find("object")
                                   : Value::object();
            rows_by_key[fieldText(obj, "metadata.namespace") + "/" +
                        fieldText(obj, "metadata.name")] = rows[i];
            writer.addRow(rows[i]);
            ++count;
          }
        }
        if (count > 0) {
          if (printed_any) out << "\n";
          writer.write(out);
          printed_any = true;
        }
        out.flush();
        if (options.watch) {
          if (count == 0 && r.names.empty()) err << noResources(ns, options.all_namespaces, r.type);
          auto widths = writer.widths();
          watchRows(c, r, ns, options, table_options, resource_version, widths,
                    std::move(rows_by_key), out);
        }
      }
      if (!printed_any && code == 0 && !options.watch) {
        err << noResources(ns, options.all_namespaces, requests[0].type);
      }
      return code;
    }

    // Objects: yaml, json, name, jsonpath.
    std::vector<Value> objects;
    std::vector<const api::ResourceType*> types;
    for (const auto& r : requests) {
      for (auto& object : fetchObjects(c, r, ns, list_options, err, code)) {
        objects.push_back(std::move(object));
        types.push_back(r.type);
      }
    }
    auto hideManagedFields = [&](Value& object) {
      if (options.show_managed_fields) return;
      if (Value* m = object.find("metadata"); m != nullptr && m->isObject())
        m->erase("managedFields");
    };
    for (auto& object : objects)
      hideManagedFields(object);
    bool single = requests.size() == 1 && requests[0].names.size() == 1;
    if (o == "name") {
      for (size_t i = 0; i < objects.size(); ++i)
        out << objectRef(*types[i], fieldText(objects[i], "metadata.name")) << "\n";
    } else if (single && objects.size() == 1) {
      if (o == "yaml") out << toYaml(objects[0]);
      if (o == "json") out << toJson(objects[0]);
      if (template_path) out << template_path->execute(objects[0], true);
    } else if (!single) {
      if (objects.empty() && code == 0 && o != "json" && o != "yaml" && !template_path) {
        err << noResources(ns, options.all_namespaces, requests[0].type);
      }
      Value list = listOf(std::move(objects));
      if (o == "yaml") out << toYaml(list);
      if (o == "json") out << toJson(list);
      if (template_path) out << template_path->execute(list, true);
    }
    if (options.watch && requests.size() == 1) {
      // Objects as they change, in the chosen form.
      const ResourceRequest& r = requests[0];
      client::WatchOptions watch_options{.label_selector = options.selector,
                                         .field_selector = options.field_selector};
      if (r.names.size() == 1) watch_options.field_selector = "metadata.name=" + r.names[0];
      watch_options.resource_version =
          fieldText(c.list(*r.type, ns, {.label_selector = options.selector, .limit = 1}),
                    "metadata.resourceVersion");
      auto stream = c.watch(*r.type, ns, watch_options);
      client::WatchEvent event;
      int events = 0;
      while (!stream->ended()) {
        if (!stream->next(event, std::chrono::milliseconds(500))) continue;
        if (event.type == client::WatchEvent::Type::kBookmark) continue;
        hideManagedFields(event.object);
        if (o == "name")
          out << objectRef(*r.type, fieldText(event.object, "metadata.name")) << "\n";
        if (o == "yaml") out << "---\n" << toYaml(event.object);
        if (o == "json") out << toJson(event.object);
        if (template_path) out << template_path->execute(event.object, true);
        out.flush();
        if (options.watch_event_limit > 0 && ++events >= options.watch_event_limit) break;
      }
      stream->cancel();
    }
    return code;
  });
}

void addGetCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<GetOptions>();
  auto globals = std::make_shared<GlobalOptions>();
  auto* cmd = app.add_subcommand("get", "Display one or many resources");
  addGlobalFlags(*cmd, *globals);
  cmd->add_option("args", options->args, "TYPE[,TYPE...] [NAME...] or TYPE/NAME...");
  cmd->add_flag("-A,--all-namespaces", options->all_namespaces, "List across all namespaces");
  cmd->add_option("-l,--selector", options->selector, "Label selector (e.g. app=web,tier!=db)");
  cmd->add_option("--field-selector", options->field_selector,
                  "Field selector (e.g. metadata.name=web)");
  cmd->add_option("-o,--output", options->output,
                  "Output format: wide, yaml, json, name, jsonpath=TEMPLATE");
  cmd->add_flag("-w,--watch", options->watch, "After listing, watch for changes");
  cmd->add_flag("--show-labels", options->show_labels, "Show all labels as the last column");
  cmd->add_flag("--no-headers", options->no_headers, "Print no header row");
  cmd->add_flag("--show-managed-fields", options->show_managed_fields,
                "Keep metadata.managedFields in yaml and json output");
  cmd->callback([options, globals, &exit_code] {
    CliContext context(*globals);
    exit_code = runGet(context, *options, std::cout, std::cerr);
  });
}

}  // namespace skiff::cli
