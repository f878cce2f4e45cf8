#include "control/cli/describe_command.h"

#include <algorithm>
#include <ctime>
#include <iostream>
#include <map>
#include <sstream>

#include "control/api/json.h"
#include "control/cli/get_command.h"
#include "control/cli/printers.h"

namespace skiff::cli {
namespace {

using api::Value;

// kubectl's describe output: lines of tab-separated cells, aligned as Go's tabwriter aligns them
// (minimum width 0, padding 2), blocks of consecutive lines per column.
class Describer {
 public:
  void line(int level, const std::string& key, const std::string& value) {
    lines_.push_back({std::string(static_cast<size_t>(level) * 2, ' ') + key, value});
  }
  void row(int level, std::vector<std::string> cells) {
    cells[0] = std::string(static_cast<size_t>(level) * 2, ' ') + cells[0];
    lines_.push_back(std::move(cells));
  }
  void text(int level, const std::string& t) {
    lines_.push_back({std::string(static_cast<size_t>(level) * 2, ' ') + t});
  }
  std::string str() const {
    // widths[i][j]: the width of column j on line i.
    std::vector<std::vector<size_t>> widths(lines_.size());
    size_t max_cols = 0;
    for (const auto& l : lines_)
      max_cols = std::max(max_cols, l.size());
    for (size_t j = 0; j + 1 < max_cols; ++j) {
      size_t i = 0;
      while (i < lines_.size()) {
        if (lines_[i].size() <= j + 1) {
          ++i;
          continue;
        }
        size_t start = i;
        size_t w = 0;
        while (i < lines_.size() && lines_[i].size() > j + 1) {
          w = std::max(w, lines_[i][j].size());
          ++i;
        }
        for (size_t k = start; k < i; ++k) {
          widths[k].resize(j + 1, 0);
          widths[k][j] = w + 2;
        }
      }
    }
    std::string out;
    for (size_t i = 0; i < lines_.size(); ++i) {
      const auto& l = lines_[i];
      for (size_t j = 0; j < l.size(); ++j) {
        out += l[j];
        if (j + 1 < l.size()) out.append(widths[i][j] - l[j].size(), ' ');
      }
      out += "\n";
    }
    return out;
  }

 private:
  std::vector<std::vector<std::string>> lines_;
};

std::string text(const Value& v, const char* path, const char* fallback = "<none>") {
  std::string s = fieldText(v, path);
  return s.empty() ? fallback : s;
}

std::string number(const Value& v, const char* path) {
  return std::to_string(fieldInt(v, path));
}

// "Mon, 02 Jan 2006 15:04:05 -0700", as kubectl writes times.
std::string timeText(const std::string& rfc3339) {
  if (rfc3339.empty()) return "<unset>";
  std::tm tm{};
  if (strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return rfc3339;
  char buf[64];
  std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

int64_t epoch(const std::string& rfc3339) {
  std::tm tm{};
  if (rfc3339.empty() || strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

void mapLines(Describer& d, int level, const std::string& key, const Value* map, const char* sep) {
  if (map == nullptr || !map->isObject() || map->members().empty()) {
    d.line(level, key, "<none>");
    return;
  }
  std::map<std::string, std::string> sorted;
  for (const auto& m : map->members())
    sorted[m.key] = m.value.isString() ? m.value.text() : api::writeJson(m.value);
  bool first = true;
  for (const auto& [k, v] : sorted) {
    if (key.find("Annotations") != std::string::npos &&
        k == "kubectl.kubernetes.io/last-applied-configuration") {
      continue;  // kubectl leaves it out
    }
    d.line(level, first ? key : "", k + sep + v);
    first = false;
  }
  if (first) d.line(level, key, "<none>");
}

void metadataLines(Describer& d, const Value& object, bool namespaced) {
  d.line(0, "Name:", text(object, "metadata.name"));
  if (namespaced) d.line(0, "Namespace:", text(object, "metadata.namespace"));
  mapLines(d, 0, "Labels:", field(object, "metadata.labels"), "=");
  mapLines(d, 0, "Annotations:", field(object, "metadata.annotations"), ": ");
}

std::string selectorText(const Value* selector) {
  if (selector == nullptr || !selector->isObject()) return "<none>";
  std::vector<std::string> parts;
  if (const Value* ml = selector->find("matchLabels"); ml != nullptr && ml->isObject()) {
    std::string labels = formatLabels(ml);
    if (labels != "<none>") parts.push_back(labels);
  }
  if (const Value* me = selector->find("matchExpressions"); me != nullptr && me->isArray()) {
    for (const auto& e : me->items()) {
      std::string op = fieldText(e, "operator");
      std::string key = fieldText(e, "key");
      std::string values;
      if (const Value* vs = e.find("values"); vs != nullptr && vs->isArray()) {
        for (const auto& v : vs->items())
          values += (values.empty() ? "" : ",") + v.text();
      }
      if (op == "In") parts.push_back(key + " in (" + values + ")");
      if (op == "NotIn") parts.push_back(key + " notin (" + values + ")");
      if (op == "Exists") parts.push_back(key);
      if (op == "DoesNotExist") parts.push_back("!" + key);
    }
  }
  std::string out;
  for (const auto& p : parts)
    out += (out.empty() ? "" : ",") + p;
  return out.empty() ? "<none>" : out;
}

void containerLines(Describer& d, int level, const Value* containers, const char* title) {
  if (containers == nullptr || !containers->isArray() || containers->items().empty()) return;
  d.text(level, title);
  for (const auto& c : containers->items()) {
    d.text(level, " " + fieldText(c, "name") + ":");
    d.line(level + 1, "Image:", text(c, "image"));
    const Value* ports = c.find("ports");
    if (ports != nullptr && ports->isArray() && !ports->items().empty()) {
      std::string p, hp;
      for (const auto& port : ports->items()) {
        std::string proto =
            fieldText(port, "protocol").empty() ? "TCP" : fieldText(port, "protocol");
        p += (p.empty() ? "" : ", ") + number(port, "containerPort") + "/" + proto;
        hp += (hp.empty() ? "" : ", ") + number(port, "hostPort") + "/" + proto;
      }
      d.line(level + 1, "Port:", p);
      d.line(level + 1, "Host Port:", hp);
    } else {
      d.line(level + 1, "Port:", "<none>");
      d.line(level + 1, "Host Port:", "<none>");
    }
    if (const Value* cmd = c.find("command"); cmd != nullptr && cmd->isArray()) {
      d.text(level + 1, "Command:");
      for (const auto& a : cmd->items())
        d.text(level + 2, a.text());
    }
    if (const Value* args = c.find("args"); args != nullptr && args->isArray()) {
      d.text(level + 1, "Args:");
      for (const auto& a : args->items())
        d.text(level + 2, a.text());
    }
    auto resources = [&](const char* key, const char* title2) {
      const Value* r = field(c, std::string("resources.") + key);
      if (r == nullptr || !r->isObject() || r->members().empty()) return;
      d.text(level + 1, title2);
      for (const auto& m : r->members())
        d.line(level + 2, m.key + ":",
               m.value.isString() ? m.value.text() : api::writeJson(m.value));
    };
    resources("limits", "Limits:");
    resources("requests", "Requests:");
    const Value* env = c.find("env");
    if (env == nullptr || !env->isArray() || env->items().empty()) {
      d.line(level + 1, "Environment:", "<none>");
    } else {
      d.text(level + 1, "Environment:");
      for (const auto& e : env->items()) {
        std::string value = fieldText(e, "value");
        if (e.find("valueFrom") != nullptr) value = api::writeJson(*e.find("valueFrom"));
        d.line(level + 2, fieldText(e, "name") + ":", value);
      }
    }
    const Value* mounts = c.find("volumeMounts");
    if (mounts == nullptr || !mounts->isArray() || mounts->items().empty()) {
      d.line(level + 1, "Mounts:", "<none>");
    } else {
      d.text(level + 1, "Mounts:");
      for (const auto& m : mounts->items()) {
        const Value* ro = m.find("readOnly");
        d.text(level + 2, fieldText(m, "mountPath") + " from " + fieldText(m, "name") + " (" +
                              (ro != nullptr && ro->isBool() && ro->asBool() ? "ro" : "rw") + ")");
      }
    }
  }
}

void podTemplateLines(Describer& d, int level, const Value* tmpl) {
  Value empty = Value::object();
  const Value& t = tmpl != nullptr ? *tmpl : empty;
  mapLines(d, level, "Labels:", field(t, "metadata.labels"), "=");
  const Value* annotations = field(t, "metadata.annotations");
  if (annotations != nullptr && annotations->isObject() && !annotations->members().empty()) {
    mapLines(d, level, "Annotations:", annotations, ": ");
  }
  std::string sa = fieldText(t, "spec.serviceAccountName");
  if (!sa.empty()) d.line(level, "Service Account:", sa);
  containerLines(d, level, field(t, "spec.initContainers"), "Init Containers:");
  containerLines(d, level, field(t, "spec.containers"), "Containers:");
  const Value* volumes = field(t, "spec.volumes");
  if (volumes == nullptr || !volumes->isArray() || volumes->items().empty()) {
    d.line(level, "Volumes:", "<none>");
  } else {
    d.text(level, "Volumes:");
    for (const auto& v : volumes->items()) {
      d.text(level + 1, fieldText(v, "name") + ":");
      for (const auto& m : v.members()) {
        if (m.key == "name") continue;
        d.line(level + 2, "Type:", m.key);
        if (m.value.isObject()) {
          for (const auto& f : m.value.members()) {
            std::string key = f.key;
            key[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(key[0])));
            d.line(level + 2, key + ":",
                   f.value.isString() ? f.value.text() : api::writeJson(f.value));
          }
        }
      }
    }
  }
}

void conditionLines(Describer& d, const Value& object, bool with_reason) {
  const Value* conditions = field(object, "status.conditions");
  if (conditions == nullptr || !conditions->isArray() || conditions->items().empty()) return;
  d.text(0, "Conditions:");
  if (with_reason) {
    d.row(1, {"Type", "Status", "Reason"});
    d.row(1, {"----", "------", "------"});
  } else {
    d.row(1, {"Type", "Status"});
    d.row(1, {"----", "------"});
  }
  for (const auto& c : conditions->items()) {
    if (with_reason) {
      d.row(1, {fieldText(c, "type"), fieldText(c, "status"), text(c, "reason", "")});
    } else {
      d.row(1, {fieldText(c, "type"), fieldText(c, "status")});
    }
  }
}

void genericLines(Describer& d, int level, const std::string& key, const Value& v) {
  std::string label = key;
  if (!label.empty())
    label[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(label[0])));
  if (v.isObject()) {
    if (v.members().empty()) return;
    d.text(level, label + ":");
    for (const auto& m : v.members())
      genericLines(d, level + 1, m.key, m.value);
  } else if (v.isArray()) {
    if (v.items().empty()) return;
    d.text(level, label + ":");
    for (const auto& item : v.items()) {
      if (item.isObject()) {
        bool first = true;
        for (const auto& m : item.members()) {
          if (m.value.isObject() || m.value.isArray()) {
            genericLines(d, level + 1, (first ? "- " : "  ") + m.key, m.value);
          } else {
            d.line(level + 1, (first ? "- " : "  ") + m.key + ":",
                   m.value.isString() ? m.value.text() : api::writeJson(m.value));
          }
          first = false;
        }
      } else {
        d.text(level + 1, item.isString() ? item.text() : api::writeJson(item));
      }
    }
  } else {
    d.line(level, label + ":", v.isString() ? v.text() : api::writeJson(v));
  }
}

std::string eventAge(const Value& e, int64_t now) {
  std::string last = fieldText(e, "lastTimestamp");
  std::string first = fieldText(e, "firstTimestamp");
  if (last.empty()) last = fieldText(e, "eventTime");
  if (first.empty()) first = last;
  int64_t count = fieldInt(e, "count", 1);
  std::string age = humanDuration(now - epoch(last));
  if (count > 1) {
    return age + " (x" + std::to_string(count) + " over " + humanDuration(now - epoch(first)) + ")";
  }
  return age;
}

void eventLines(Describer& d, const std::vector<Value>& events, int64_t now) {
  if (events.empty()) {
    d.line(0, "Events:", "<none>");
    return;
  }
  d.text(0, "Events:");
  d.row(1, {"Type", "Reason", "Age", "From", "Message"});
  d.row(1, {"----", "------", "----", "----", "-------"});
  for (const auto& e : events) {
    std::string from = fieldText(e, "source.component");
    if (from.empty()) from = fieldText(e, "reportingComponent");
    std::string host = fieldText(e, "source.host");
    if (!host.empty()) from += ", " + host;
    d.row(1, {fieldText(e, "type"), fieldText(e, "reason"), eventAge(e, now), from,
              fieldText(e, "message")});
  }
}

}  // namespace

std::string describeObject(const api::ResourceType& type, const Value& object,
                           const std::vector<Value>& events, int64_t now) {
  Describer d;
  metadataLines(d, object, type.namespaced);
  std::string created = fieldText(object, "metadata.creationTimestamp");
  const std::string& kind = type.kind;
  if (kind == "Deployment") {
    d.line(0, "CreationTimestamp:", timeText(created));
    d.line(0, "Selector:", selectorText(field(object, "spec.selector")));
    int64_t desired = fieldInt(object, "spec.replicas", 1);
    d.line(0, "Replicas:",
           std::to_string(desired) + " desired | " + number(object, "status.updatedReplicas") +
               " updated | " + number(object, "status.replicas") + " total | " +
               number(object, "status.availableReplicas") + " available | " +
               number(object, "status.unavailableReplicas") + " unavailable");
    std::string strategy = text(object, "spec.strategy.type", "RollingUpdate");
    d.line(0, "StrategyType:", strategy);
    d.line(0, "MinReadySeconds:", number(object, "spec.minReadySeconds"));
    if (strategy == "RollingUpdate") {
      std::string unavailable = text(object, "spec.strategy.rollingUpdate.maxUnavailable", "25%");
      std::string surge = text(object, "spec.strategy.rollingUpdate.maxSurge", "25%");
      d.line(0,
             "RollingUpdateStrategy:", unavailable + " max unavailable, " + surge + " max surge");
    }
    d.text(0, "Pod Template:");
    podTemplateLines(d, 1, field(object, "spec.template"));
    conditionLines(d, object, true);
  } else if (kind == "ReplicaSet" || kind == "StatefulSet" || kind == "DaemonSet") {
    d.line(0, "Selector:", selectorText(field(object, "spec.selector")));
    if (kind != "DaemonSet") {
      d.line(0, "Replicas:",
             number(object, "status.replicas") + " current / " +
                 std::to_string(fieldInt(object, "spec.replicas", 1)) + " desired");
    }
    d.text(0, "Pod Template:");
    podTemplateLines(d, 1, field(object, "spec.template"));
    conditionLines(d, object, true);
  } else if (kind == "Pod") {
    d.line(0, "Priority:", number(object, "spec.priority"));
    d.line(0, "Service Account:", text(object, "spec.serviceAccountName", "default"));
    std::string node = fieldText(object, "spec.nodeName");
    std::string host_ip = fieldText(object, "status.hostIP");
    d.line(0, "Node:", node.empty() ? "<none>" : node + "/" + host_ip);
    d.line(0, "Start Time:", timeText(fieldText(object, "status.startTime")));
    d.line(0, "Status:", text(object, "status.phase", "Pending"));
    d.line(0, "IP:", text(object, "status.podIP", ""));
    const Value* owners = field(object, "metadata.ownerReferences");
    if (owners != nullptr && owners->isArray() && !owners->items().empty()) {
      d.line(0, "Controlled By:",
             fieldText(owners->items()[0], "kind") + "/" + fieldText(owners->items()[0], "name"));
    }
    containerLines(d, 0, field(object, "spec.initContainers"), "Init Containers:");
    containerLines(d, 0, field(object, "spec.containers"), "Containers:");
    conditionLines(d, object, false);
    d.line(0, "QoS Class:", text(object, "status.qosClass", "BestEffort"));
    mapLines(d, 0, "Node-Selectors:", field(object, "spec.nodeSelector"), "=");
  } else if (kind == "Service") {
    mapLines(d, 0, "Selector:", field(object, "spec.selector"), "=");
    d.line(0, "Type:", text(object, "spec.type", "ClusterIP"));
    d.line(0, "IP Family Policy:", text(object, "spec.ipFamilyPolicy", "SingleStack"));
    d.line(0, "IP:", text(object, "spec.clusterIP"));
    const Value* ports = field(object, "spec.ports");
    if (ports != nullptr && ports->isArray()) {
      for (const auto& p : ports->items()) {
        std::string name = fieldText(p, "name").empty() ? "<unset>" : fieldText(p, "name");
        std::string proto = fieldText(p, "protocol").empty() ? "TCP" : fieldText(p, "protocol");
        d.line(0, "Port:", name + "  " + number(p, "port") + "/" + proto);
        std::string target = fieldText(p, "targetPort");
        d.line(0, "TargetPort:", (target.empty() ? number(p, "port") : target) + "/" + proto);
        if (fieldInt(p, "nodePort") != 0) {
          d.line(0, "NodePort:", name + "  " + number(p, "nodePort") + "/" + proto);
        }
      }
    }
    d.line(0, "Session Affinity:", text(object, "spec.sessionAffinity", "None"));
  } else {
    if (!created.empty()) d.line(0, "CreationTimestamp:", timeText(created));
    for (const auto& m : object.members()) {
      if (m.key == "metadata" || m.key == "apiVersion" || m.key == "kind") continue;
      genericLines(d, 0, m.key, m.value);
    }
  }
  eventLines(d, events, now);
  return d.str();
}

int runDescribe(CliContext& context, const DescribeOptions& options, std::ostream& out,
                std::ostream& err) {
  return runGuarded(err, context, [&]() -> int {
    auto requests = parseResourceArgs(options.args);
    client::Client& c = context.client();
    std::string ns = options.all_namespaces ? std::string() : context.ns();
    const api::ResourceType& event_type = resolveType("events");
    int code = 0;
    bool first = true;
    for (const auto& r : requests) {
      std::vector<Value> objects;
      if (r.names.empty()) {
        Value list = c.list(*r.type, ns, {.label_selector = options.selector});
        if (const Value* items = list.find("items"); items != nullptr && items->isArray()) {
          objects = items->items();
        }
      }
      for (const auto& name : r.names) {
        try {
          objects.push_back(c.get(*r.type, ns, name));
        } catch (const client::ApiError& e) {
          if (e.isUnreachable()) throw;
          reportError(err, e);
          code = 1;
        }
      }
      for (const auto& object : objects) {
        std::vector<Value> events;
        if (options.show_events) {
          std::string uid = fieldText(object, "metadata.uid");
          Value list = c.list(event_type, fieldText(object, "metadata.namespace"));
          if (const Value* items = list.find("items"); items != nullptr && items->isArray()) {
            for (const auto& e : items->items()) {
              if (fieldText(e, "involvedObject.uid") == uid ||
                  (fieldText(e, "involvedObject.uid").empty() &&
                   fieldText(e, "involvedObject.name") == fieldText(object, "metadata.name") &&
                   fieldText(e, "involvedObject.kind") == r.type->kind)) {
                events.push_back(e);
              }
            }
          }
          std::stable_sort(events.begin(), events.end(), [](const Value& a, const Value& b) {
            auto t = [](const Value& e) {
              std::string s = fieldText(e, "lastTimestamp");
              return s.empty() ? fieldText(e, "eventTime") : s;
            };
            return t(a) < t(b);
          });
        }
        if (!first) out << "\n\n";
        first = false;
        out << describeObject(*r.type, object, events, static_cast<int64_t>(std::time(nullptr)));
      }
      if (objects.empty() && r.names.empty()) {
        err << "No resources found in " << (ns.empty() ? "any" : ns) << " namespace.\n";
      }
    }
    return code;
  });
}

void addDescribeCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<DescribeOptions>();
  auto globals = std::make_shared<GlobalOptions>();
  auto* cmd = app.add_subcommand("describe", "Show details of a resource and its events");
  addGlobalFlags(*cmd, *globals);
  cmd->add_option("args", options->args, "TYPE [NAME...] or TYPE/NAME...")->required();
  cmd->add_option("-l,--selector", options->selector, "Label selector");
  cmd->add_flag("-A,--all-namespaces", options->all_namespaces, "In every namespace");
  cmd->add_option("--show-events", options->show_events, "Show the object's events")
      ->capture_default_str();
  cmd->callback([options, globals, &exit_code] {
    CliContext context(*globals);
    exit_code = runDescribe(context, *options, std::cout, std::cerr);
  });
}

}  // namespace skiff::cli
