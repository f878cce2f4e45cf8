#include "control/apiserver/object_validation.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <string_view>
#include <type_traits>

#include <google/protobuf/util/message_differencer.h>

#include "control/api/quantity.h"
#include "control/api/selector.h"
#include "control/apiserver/object_meta.h"
#include "skiff/api/apps_v1.pb.h"
#include "skiff/api/batch_v1.pb.h"
#include "skiff/api/coordination_v1.pb.h"
#include "skiff/api/discovery_v1.pb.h"
#include "skiff/api/rbac_v1.pb.h"

namespace skiff::apiserver {
namespace {

using api::core::v1::Container;
using api::core::v1::PodSpec;
using api::core::v1::PodTemplateSpec;
using api::meta::v1::LabelSelector;
using api::meta::v1::ObjectMeta;
using Causes = std::vector<FieldCause>;

constexpr size_t kTotalAnnotationSizeLimit =
    256 * 1024;  // apimachinery's TotalAnnotationSizeLimitB

// Go's %q of the strings users type.
std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::string join(const std::vector<std::string>& messages) {
  std::string out;
  for (const std::string& m : messages) {
    if (!out.empty()) out += "; ";
    out += m;
  }
  return out;
}

void required(Causes& causes, const std::string& field, const std::string& detail = "") {
  causes.push_back({"FieldValueRequired", field,
                    detail.empty() ? "Required value" : "Required value: " + detail});
}

void invalid(Causes& causes, const std::string& field, const std::string& value,
             const std::string& detail) {
  causes.push_back({"FieldValueInvalid", field, "Invalid value: " + value + ": " + detail});
}

void duplicate(Causes& causes, const std::string& field, const std::string& value) {
  causes.push_back({"FieldValueDuplicate", field, "Duplicate value: " + quote(value)});
}

void forbidden(Causes& causes, const std::string& field, const std::string& detail) {
  causes.push_back({"FieldValueForbidden", field, "Forbidden: " + detail});
}

// field.NotSupported: `Unsupported value: "x": supported values: "a", "b"`.
void notSupported(Causes& causes, const std::string& field, const std::string& value,
                  std::initializer_list<std::string_view> supported) {
  std::string list;
  for (std::string_view s : supported) {
    if (!list.empty()) list += ", ";
    list += quote(s);
  }
  causes.push_back({"FieldValueNotSupported", field,
                    "Unsupported value: " + quote(value) + ": supported values: " + list});
}

// The value must be one of `supported` (an empty value is left to defaulting, which runs first).
void oneOf(Causes& causes, const std::string& field, const std::string& value,
           std::initializer_list<std::string_view> supported) {
  if (value.empty()) return;
  if (std::find(supported.begin(), supported.end(), value) != supported.end()) return;
  notSupported(causes, field, value, supported);
}

void nonNegative(Causes& causes, const std::string& field, int64_t value) {
  if (value < 0) {
    invalid(causes, field, std::to_string(value), "must be greater than or equal to 0");
  }
}

void nameErrors(Causes& causes, const std::string& field, const std::string& value,
                const std::vector<std::string>& errs) {
  if (!errs.empty()) invalid(causes, field, quote(value), join(errs));
}

// ---------------------------------------------------------------- names and metadata

// path.IsValidPathSegmentName: what any name must be to sit in a URL path.
std::vector<std::string> pathSegmentErrors(std::string_view name) {
  std::vector<std::string> errs;
  if (name == "." || name == "..") {
    errs.push_back("may not be '" + std::string(name) + "'");
    return errs;
  }
  if (name.find('/') != std::string_view::npos) errs.emplace_back("may not contain '/'");
  if (name.find('%') != std::string_view::npos) errs.emplace_back("may not contain '%'");
  return errs;
}

// The name rule of each kind (the ValidateXName functions of pkg/apis/*/validation).
std::vector<std::string> nameRuleErrors(const api::ResourceType& type, std::string_view name) {
  static const std::set<std::string, std::less<>> kSubdomainKinds = {"Pod",
                                                                     "Node",
                                                                     "ConfigMap",
                                                                     "Secret",
                                                                     "ServiceAccount",
                                                                     "Event",
                                                                     "Deployment",
                                                                     "ReplicaSet",
                                                                     "DaemonSet",
                                                                     "StatefulSet",
                                                                     "ControllerRevision",
                                                                     "Job",
                                                                     "EndpointSlice",
                                                                     "Lease",
                                                                     "PersistentVolumeClaim",
                                                                     "PersistentVolume",
                                                                     "StorageClass",
                                                                     "CertificateSigningRequest"};
  if (type.kind == "Namespace") return api::labels::dns1123LabelErrors(name);
  if (type.kind == "Service") return api::labels::dns1035LabelErrors(name);
  if (kSubdomainKinds.contains(type.kind)) return api::labels::dns1123SubdomainErrors(name);
  return pathSegmentErrors(name);
}

void appendLabelCauses(const google::protobuf::Map<std::string, std::string>& labels,
                       const std::string& field, Causes& causes) {
  // Sorted, as Go's map iteration in Kubernetes' tests is not: the same input, the same message.
  std::map<std::string, std::string> sorted(labels.begin(), labels.end());
  for (const auto& [k, v] : sorted) {
    nameErrors(causes, field, k, api::labels::qualifiedNameErrors(k));
    nameErrors(causes, field, v, api::labels::labelValueErrors(v));
  }
}

void appendAnnotationCauses(const google::protobuf::Map<std::string, std::string>& annotations,
                            const std::string& field, Causes& causes) {
  std::map<std::string, std::string> sorted(annotations.begin(), annotations.end());
  size_t total = 0;
  for (const auto& [k, v] : sorted) {
    std::string lower = k;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    nameErrors(causes, field, k, api::labels::qualifiedNameErrors(lower));
    total += k.size() + v.size();
  }
  if (total > kTotalAnnotationSizeLimit) {
    causes.push_back(
        {"FieldValueTooLong", field,
         "Too long: must have at most " + std::to_string(kTotalAnnotationSizeLimit) + " bytes"});
  }
}

void appendOwnerReferenceCauses(const ObjectMeta& meta, Causes& causes) {
  const std::string field = "metadata.ownerReferences";
  std::vector<std::string> controllers;
  for (const auto& ref : meta.owner_references()) {
    if (ref.api_version().empty()) {
      invalid(causes, field + ".apiVersion", "\"\"", "version must not be empty");
    }
    if (ref.kind().empty()) invalid(causes, field + ".kind", "\"\"", "kind must not be empty");
    if (ref.name().empty()) invalid(causes, field + ".name", "\"\"", "name must not be empty");
    if (ref.uid().empty()) invalid(causes, field + ".uid", "\"\"", "uid must not be empty");
    if (ref.controller()) controllers.push_back(ref.kind() + "/" + ref.name());
  }
  if (controllers.size() > 1) {
    std::string found;
    for (const std::string& c : controllers) {
      if (!found.empty()) found += ", ";
      found += c;
    }
    invalid(causes, field, std::to_string(meta.owner_references_size()) + " references",
            "Only one reference can have Controller set to true. Found \"true\" in references "
            "for " +
                found);
  }
}

// ---------------------------------------------------------------- pod specs

// validation.IsValidPortName (IANA_SVC_NAME).
std::vector<std::string> portNameErrors(std::string_view name) {
  std::vector<std::string> errs;
  if (name.size() > 15) errs.emplace_back("must be no more than 15 characters");
  bool letter = false;
  bool ok = true;
  for (char c : name) {
    if (c >= 'a' && c <= 'z') letter = true;
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) ok = false;
  }
  if (!ok)
    errs.emplace_back("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
  if (!letter) errs.emplace_back("must contain at least one letter (a-z)");
  if (name.find("--") != std::string_view::npos) {
    errs.emplace_back("must not contain consecutive hyphens");
  }
  if (!name.empty() && (name.front() == '-' || name.back() == '-')) {
    errs.emplace_back("must not begin or end with a hyphen");
  }
  return errs;
}

void portNumber(Causes& causes, const std::string& field, int32_t port) {
  if (port < 1 || port > 65535) {
    invalid(causes, field, std::to_string(port), "must be between 1 and 65535, inclusive");
  }
}

void appendProbeCauses(const api::core::v1::Probe& probe, const std::string& field,
                       Causes& causes) {
  const int handlers = static_cast<int>(probe.has_exec()) + static_cast<int>(probe.has_http_get()) +
                       static_cast<int>(probe.has_tcp_socket()) +
                       static_cast<int>(probe.has_grpc());
  if (handlers == 0) required(causes, field, "must specify a handler type");
  if (handlers > 1) forbidden(causes, field, "may not specify more than 1 handler type");
  nonNegative(causes, field + ".initialDelaySeconds", probe.initial_delay_seconds());
  nonNegative(causes, field + ".timeoutSeconds", probe.timeout_seconds());
  nonNegative(causes, field + ".periodSeconds", probe.period_seconds());
  nonNegative(causes, field + ".successThreshold", probe.success_threshold());
  nonNegative(causes, field + ".failureThreshold", probe.failure_threshold());
}

void appendResourceCauses(const api::core::v1::ResourceRequirements& resources,
                          const std::string& field, Causes& causes) {
  auto quantities = [&](const auto& map, const std::string& at) {
    std::map<std::string, api::Quantity> out;
    for (const auto& [name, q] : map) {
      api::Quantity value = api::Quantity::fromProto(q);
      if (value.sign() < 0) {
        invalid(causes, at + "[" + name + "]", quote(q.string()),
                "must be greater than or equal to 0");
      }
      out.emplace(name, value);
    }
    return out;
  };
  const auto limits = quantities(resources.limits(), field + ".limits");
  const auto requests = quantities(resources.requests(), field + ".requests");
  for (const auto& [name, request] : requests) {
    auto limit = limits.find(name);
    if (limit == limits.end() || request <= limit->second) continue;
    invalid(causes, field + ".requests", quote(resources.requests().at(name).string()),
            "must be less than or equal to " + name + " limit of " +
                resources.limits().at(name).string());
  }
}

void appendContainerCauses(const Container& c, const std::string& field,
                           const std::set<std::string>& volumes, std::set<std::string>& names,
                           Causes& causes) {
  if (c.name().empty()) {
    required(causes, field + ".name");
  } else {
    nameErrors(causes, field + ".name", c.name(), api::labels::dns1123LabelErrors(c.name()));
    if (!names.insert(c.name()).second) duplicate(causes, field + ".name", c.name());
  }
  if (c.image().empty()) required(causes, field + ".image");
  std::set<std::string> port_names;
  for (int i = 0; i < c.ports_size(); ++i) {
    const auto& p = c.ports(i);
    const std::string at = field + ".ports[" + std::to_string(i) + "]";
    if (!p.name().empty()) {
      nameErrors(causes, at + ".name", p.name(), portNameErrors(p.name()));
      if (!port_names.insert(p.name()).second) duplicate(causes, at + ".name", p.name());
    }
    if (p.container_port() == 0) {
      required(causes, at + ".containerPort");
    } else {
      portNumber(causes, at + ".containerPort", p.container_port());
    }
    if (p.host_port() != 0) portNumber(causes, at + ".hostPort", p.host_port());
    oneOf(causes, at + ".protocol", p.protocol(), {"SCTP", "TCP", "UDP"});
  }
  for (int i = 0; i < c.env_size(); ++i) {
    const std::string& name = c.env(i).name();
    const std::string at = field + ".env[" + std::to_string(i) + "].name";
    if (name.empty()) {
      required(causes, at);
      continue;
    }
    // RelaxedEnvironmentVariableValidation (on by default since 1.32): printable ASCII but '='.
    const bool ok = std::all_of(name.begin(), name.end(),
                                [](char ch) { return ch >= ' ' && ch <= '~' && ch != '='; });
    if (!ok) {
      invalid(causes, at, quote(name),
              "a valid environment variable name must consist only of printable ASCII "
              "characters other than '='");
    }
  }
  std::set<std::string> mount_paths;
  for (int i = 0; i < c.volume_mounts_size(); ++i) {
    const auto& m = c.volume_mounts(i);
    const std::string at = field + ".volumeMounts[" + std::to_string(i) + "]";
    if (m.name().empty()) {
      required(causes, at + ".name");
    } else if (!volumes.contains(m.name())) {
      causes.push_back({"FieldValueNotFound", at + ".name", "Not found: " + quote(m.name())});
    }
    if (m.mount_path().empty()) {
      required(causes, at + ".mountPath");
    } else if (!mount_paths.insert(m.mount_path()).second) {
      invalid(causes, at + ".mountPath", quote(m.mount_path()), "must be unique");
    }
  }
  if (c.has_resources()) appendResourceCauses(c.resources(), field + ".resources", causes);
  if (c.has_liveness_probe())
    appendProbeCauses(c.liveness_probe(), field + ".livenessProbe", causes);
  if (c.has_readiness_probe()) {
    appendProbeCauses(c.readiness_probe(), field + ".readinessProbe", causes);
  }
  if (c.has_startup_probe()) appendProbeCauses(c.startup_probe(), field + ".startupProbe", causes);
  oneOf(causes, field + ".imagePullPolicy", c.image_pull_policy(),
        {"Always", "IfNotPresent", "Never"});
}

std::set<std::string> appendVolumeCauses(const PodSpec& spec, const std::string& path,
                                         Causes& causes) {
  std::set<std::string> names;
  for (int i = 0; i < spec.volumes_size(); ++i) {
    const auto& v = spec.volumes(i);
    const std::string at = path + ".volumes[" + std::to_string(i) + "]";
    if (v.name().empty()) {
      required(causes, at + ".name");
    } else {
      nameErrors(causes, at + ".name", v.name(), api::labels::dns1123LabelErrors(v.name()));
      if (!names.insert(v.name()).second) duplicate(causes, at + ".name", v.name());
    }
    // The sources set, in the order Kubernetes checks them.
    std::vector<std::string> sources;
    if (v.has_host_path()) sources.emplace_back("hostPath");
    if (v.has_empty_dir()) sources.emplace_back("emptyDir");
    if (v.has_secret()) sources.emplace_back("secret");
    if (v.has_persistent_volume_claim()) sources.emplace_back("persistentVolumeClaim");
    if (v.has_downward_api()) sources.emplace_back("downwardAPI");
    if (v.has_config_map()) sources.emplace_back("configMap");
    if (v.has_projected()) sources.emplace_back("projected");
    if (sources.empty()) required(causes, at, "must specify a volume type");
    for (size_t s = 1; s < sources.size(); ++s) {
      forbidden(causes, at + "." + sources[s], "may not specify more than 1 volume type");
    }
  }
  return names;
}

const LabelSelector* selectorOf(bool has, const LabelSelector& selector) {
  return has ? &selector : nullptr;
}

// Go's %#v of a map[string]string, as Kubernetes prints template labels.
std::string goMap(const google::protobuf::Map<std::string, std::string>& labels) {
  std::map<std::string, std::string> sorted(labels.begin(), labels.end());
  std::string out = "map[string]string{";
  bool first = true;
  for (const auto& [k, v] : sorted) {
    if (!first) out += ", ";
    first = false;
    out += quote(k) + ":" + quote(v);
  }
  return out + "}";
}

// Go's %#v of a LabelSelector, short: the selector's text in Kubernetes' form.
std::string selectorValue(const LabelSelector* selector) {
  if (!selector) return "nil";
  auto parsed = api::labels::Selector::tryFromProto(selector);
  return "v1.LabelSelector{" + (parsed ? quote(parsed->toString()) : std::string("invalid")) + "}";
}

// ValidatePodTemplateSpecForX: labels, a selector that selects them, and the pod spec.
void appendTemplateCauses(const PodTemplateSpec& tpl, const LabelSelector* selector,
                          const std::string& path, Causes& causes) {
  const std::string meta_path = path + ".metadata";
  appendLabelCauses(tpl.metadata().labels(), meta_path + ".labels", causes);
  appendAnnotationCauses(tpl.metadata().annotations(), meta_path + ".annotations", causes);
  if (selector) {
    auto parsed = api::labels::Selector::tryFromProto(selector);
    if (parsed && !parsed->empty() && !parsed->matches(tpl.metadata().labels())) {
      invalid(causes, meta_path + ".labels", goMap(tpl.metadata().labels()),
              "`selector` does not match template `labels`");
    }
  }
  appendPodSpecCauses(tpl.spec(), path + ".spec", causes);
  const std::string& policy = tpl.spec().restart_policy();
  if (!policy.empty() && policy != "Always") {
    notSupported(causes, path + ".spec.restartPolicy", policy, {"Always"});
  }
}

// A workload's spec.selector: required, valid, not empty.
void appendSelectorCauses(const LabelSelector* selector, const std::string& kind_lower,
                          Causes& causes) {
  if (!selector) {
    required(causes, "spec.selector");
    return;
  }
  std::string error;
  auto parsed = api::labels::Selector::tryFromProto(selector, &error, "spec.selector");
  if (!parsed) {
    // tryFromProto's message starts with the field path.
    const std::string prefix = "spec.selector";
    std::string field = prefix;
    std::string detail = error;
    if (size_t colon = error.find(": "); colon != std::string::npos) {
      field = error.substr(0, colon);
      detail = error.substr(colon + 2);
    }
    causes.push_back({"FieldValueInvalid", field, detail});
    return;
  }
  if (parsed->empty()) {
    invalid(causes, "spec.selector", selectorValue(selector),
            "empty selector is invalid for " + kind_lower);
  }
}

// maxUnavailable / maxSurge: non-negative ints, or percentages (maxUnavailable at most 100%).
bool intOrPercentCauses(const api::runtime::IntOrString& v, const std::string& field,
                        bool at_most_100, Causes& causes, int64_t& value) {
  if (v.type() == api::runtime::IntOrString::STRING) {
    const std::string& s = v.str_val();
    bool ok = s.size() >= 2 && s.back() == '%' &&
              std::all_of(s.begin(), s.end() - 1, [](char c) { return c >= '0' && c <= '9'; });
    if (!ok) {
      invalid(causes, field, quote(s),
              "a valid percent string must be a numeric string followed "
              "by an ending '%' (e.g. '1%',  or '93%', regex used for "
              "validation is '[0-9]+%')");
      return false;
    }
    value = std::stoll(s.substr(0, s.size() - 1));
    if (at_most_100 && value > 100) {
      invalid(causes, field, quote(s), "must not be greater than 100%");
    }
    return true;
  }
  value = v.int_val();
  nonNegative(causes, field, value);
  return true;
}

void appendRollingUpdateCauses(bool has_unavailable, const api::runtime::IntOrString& unavailable,
                               bool has_surge, const api::runtime::IntOrString& surge,
                               const std::string& path, Causes& causes) {
  int64_t u = 1;
  int64_t s = 0;
  bool ok = true;
  if (has_unavailable) {
    ok = intOrPercentCauses(unavailable, path + ".maxUnavailable", true, causes, u) && ok;
  }
  if (has_surge) ok = intOrPercentCauses(surge, path + ".maxSurge", false, causes, s) && ok;
  if (ok && has_unavailable && has_surge && u == 0 && s == 0) {
    invalid(causes, path + ".maxUnavailable", "0", "may not be 0 when `maxSurge` is 0");
  }
}

void appendDeploymentCauses(const api::apps::v1::Deployment& d, Causes& causes) {
  const auto& spec = d.spec();
  nonNegative(causes, "spec.replicas", spec.replicas());
  const LabelSelector* selector = selectorOf(spec.has_selector(), spec.selector());
  appendSelectorCauses(selector, "deployment", causes);
  appendTemplateCauses(spec.template_(), selector, "spec.template", causes);
  const auto& strategy = spec.strategy();
  oneOf(causes, "spec.strategy.type", strategy.type(), {"Recreate", "RollingUpdate"});
  if (strategy.type() == "Recreate" && strategy.has_rolling_update()) {
    forbidden(causes, "spec.strategy.rollingUpdate",
              "may not be specified when strategy `type` is 'Recreate'");
  }
  if (strategy.has_rolling_update()) {
    const auto& ru = strategy.rolling_update();
    appendRollingUpdateCauses(ru.has_max_unavailable(), ru.max_unavailable(), ru.has_max_surge(),
                              ru.max_surge(), "spec.strategy.rollingUpdate", causes);
  }
  nonNegative(causes, "spec.minReadySeconds", spec.min_ready_seconds());
  if (spec.has_revision_history_limit()) {
    nonNegative(causes, "spec.revisionHistoryLimit", spec.revision_history_limit());
  }
  if (spec.has_progress_deadline_seconds()) {
    nonNegative(causes, "spec.progressDeadlineSeconds", spec.progress_deadline_seconds());
    if (spec.progress_deadline_seconds() <= spec.min_ready_seconds()) {
      invalid(causes, "spec.progressDeadlineSeconds",
              std::to_string(spec.progress_deadline_seconds()),
              "must be greater than minReadySeconds");
    }
  }
}

void appendReplicaSetCauses(const api::apps::v1::ReplicaSet& rs, Causes& causes) {
  const auto& spec = rs.spec();
  nonNegative(causes, "spec.replicas", spec.replicas());
  nonNegative(causes, "spec.minReadySeconds", spec.min_ready_seconds());
  const LabelSelector* selector = selectorOf(spec.has_selector(), spec.selector());
  appendSelectorCauses(selector, "deployment", causes);  // Kubernetes' wording, for ReplicaSets too
  appendTemplateCauses(spec.template_(), selector, "spec.template", causes);
}

void appendDaemonSetCauses(const api::apps::v1::DaemonSet& ds, Causes& causes) {
  const auto& spec = ds.spec();
  const LabelSelector* selector = selectorOf(spec.has_selector(), spec.selector());
  appendSelectorCauses(selector, "daemonset", causes);
  appendTemplateCauses(spec.template_(), selector, "spec.template", causes);
  nonNegative(causes, "spec.minReadySeconds", spec.min_ready_seconds());
  if (spec.has_revision_history_limit()) {
    nonNegative(causes, "spec.revisionHistoryLimit", spec.revision_history_limit());
  }
  const auto& strategy = spec.update_strategy();
  oneOf(causes, "spec.updateStrategy.type", strategy.type(), {"OnDelete", "RollingUpdate"});
  if (strategy.has_rolling_update()) {
    const auto& ru = strategy.rolling_update();
    appendRollingUpdateCauses(ru.has_max_unavailable(), ru.max_unavailable(), ru.has_max_surge(),
                              ru.max_surge(), "spec.updateStrategy.rollingUpdate", causes);
  }
}

void appendStatefulSetCauses(const api::apps::v1::StatefulSet& ss, Causes& causes) {
  const auto& spec = ss.spec();
  oneOf(causes, "spec.podManagementPolicy", spec.pod_management_policy(),
        {"OrderedReady", "Parallel"});
  const auto& strategy = spec.update_strategy();
  oneOf(causes, "spec.updateStrategy.type", strategy.type(), {"OnDelete", "RollingUpdate"});
  if (strategy.type() == "OnDelete" && strategy.has_rolling_update()) {
    invalid(causes, "spec.updateStrategy.rollingUpdate", "rollingUpdate",
            "only allowed for updateStrategy 'RollingUpdate'");
  }
  if (strategy.has_rolling_update()) {
    const auto& ru = strategy.rolling_update();
    nonNegative(causes, "spec.updateStrategy.rollingUpdate.partition", ru.partition());
    if (ru.has_max_unavailable()) {
      int64_t u = 0;
      if (intOrPercentCauses(ru.max_unavailable(),
                             "spec.updateStrategy.rollingUpdate.maxUnavailable", true, causes, u) &&
          u == 0) {
        invalid(causes, "spec.updateStrategy.rollingUpdate.maxUnavailable",
                ru.max_unavailable().type() == api::runtime::IntOrString::STRING
                    ? quote(ru.max_unavailable().str_val())
                    : "0",
                "must be greater than 0");
      }
    }
  }
  const auto& retention = spec.persistent_volume_claim_retention_policy();
  oneOf(causes, "spec.persistentVolumeClaimRetentionPolicy.whenDeleted", retention.when_deleted(),
        {"Retain", "Delete"});
  oneOf(causes, "spec.persistentVolumeClaimRetentionPolicy.whenScaled", retention.when_scaled(),
        {"Retain", "Delete"});
  nonNegative(causes, "spec.replicas", spec.replicas());
  nonNegative(causes, "spec.minReadySeconds", spec.min_ready_seconds());
  if (spec.has_ordinals()) nonNegative(causes, "spec.ordinals.start", spec.ordinals().start());
  const LabelSelector* selector = selectorOf(spec.has_selector(), spec.selector());
  appendSelectorCauses(selector, "statefulset", causes);
  // Its pods get a persistentVolumeClaim volume per claim template, replacing a template volume of
  // that name (the controller's updateStorage), so containers may mount the templates' names
  // (Kubernetes leaves a StatefulSet template's volumes unchecked for that reason).
  PodTemplateSpec tpl = spec.template_();
  for (const auto& claim : spec.volume_claim_templates()) {
    if (claim.metadata().name().empty()) continue;
    api::core::v1::Volume* volume = nullptr;
    for (auto& v : *tpl.mutable_spec()->mutable_volumes()) {
      if (v.name() == claim.metadata().name()) volume = &v;
    }
    if (volume == nullptr) volume = tpl.mutable_spec()->add_volumes();
    volume->Clear();
    volume->set_name(claim.metadata().name());
    volume->mutable_persistent_volume_claim()->set_claim_name(claim.metadata().name() + "-" +
                                                              ss.metadata().name() + "-0");
  }
  appendTemplateCauses(tpl, selector, "spec.template", causes);
  if (spec.has_revision_history_limit()) {
    nonNegative(causes, "spec.revisionHistoryLimit", spec.revision_history_limit());
  }
}

void appendJobTemplateCauses(const api::batch::v1::Job& job, Causes& causes) {
  const auto& tpl = job.spec().template_();
  appendLabelCauses(tpl.metadata().labels(), "spec.template.metadata.labels", causes);
  appendPodSpecCauses(tpl.spec(), "spec.template.spec", causes);
  // Defaulting made an unset restartPolicy Always: both are "Required" (ValidateJobSpec).
  const std::string& policy = tpl.spec().restart_policy();
  if (policy.empty() || policy == "Always") {
    required(causes, "spec.template.spec.restartPolicy", R"(valid values: ["OnFailure" "Never"])");
  } else if (policy != "OnFailure" && policy != "Never") {
    notSupported(causes, "spec.template.spec.restartPolicy", policy, {"OnFailure", "Never"});
  }
}

// ---------------------------------------------------------------- ConfigMaps and Secrets

constexpr size_t kMaxSecretSize = 1024 * 1024;  // api.MaxSecretSize, ConfigMaps' limit too

// validation.IsConfigMapKey.
std::vector<std::string> configKeyErrors(std::string_view key) {
  std::vector<std::string> errs;
  if (key.size() > 253) errs.emplace_back("must be no more than 253 characters");
  const bool ok = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
  if (!ok) {
    errs.emplace_back(
        "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
        "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
        "'[-._a-zA-Z0-9]+')");
  }
  if (key == ".") {
    errs.emplace_back("must not be '.'");
  } else if (key == "..") {
    errs.emplace_back("must not be '..'");
  } else if (key.starts_with("..")) {
    errs.emplace_back("must not start with '..'");
  }
  return errs;
}

template <class Map>
size_t appendDataKeyCauses(const Map& data, const std::string& field, Causes& causes) {
  std::map<std::string, size_t> sorted;
  for (const auto& [k, v] : data)
    sorted.emplace(k, v.size());
  size_t total = 0;
  for (const auto& [k, size] : sorted) {
    nameErrors(causes, field + "[" + k + "]", k, configKeyErrors(k));
    total += size;
  }
  return total;
}

void appendConfigMapCauses(const api::core::v1::ConfigMap& cm, Causes& causes) {
  size_t total = appendDataKeyCauses(cm.data(), "data", causes);
  total += appendDataKeyCauses(cm.binary_data(), "binaryData", causes);
  std::map<std::string, std::string> sorted(cm.data().begin(), cm.data().end());
  for (const auto& [k, v] : sorted) {
    if (cm.binary_data().contains(k)) {
      invalid(causes, "data[" + k + "]", quote(k), "duplicate of key present in binaryData");
    }
  }
  if (total > kMaxSecretSize) {
    causes.push_back(
        {"FieldValueTooLong", "",
         "Too long: may not be more than " + std::to_string(kMaxSecretSize) + " bytes"});
  }
}

void appendSecretCauses(const api::core::v1::Secret& secret, Causes& causes) {
  const size_t total = appendDataKeyCauses(secret.data(), "data", causes);
  auto has = [&](const char* key) {
    auto it = secret.data().find(key);
    return it != secret.data().end() && !it->second.empty();
  };
  const std::string& type = secret.type();
  if (type == "kubernetes.io/service-account-token") {
    if (!secret.metadata().annotations().contains("kubernetes.io/service-account.name")) {
      required(causes, "metadata.annotations[kubernetes.io/service-account.name]");
    }
  } else if (type == "kubernetes.io/dockercfg") {
    if (!has(".dockercfg")) required(causes, "data[.dockercfg]");
  } else if (type == "kubernetes.io/dockerconfigjson") {
    if (!has(".dockerconfigjson")) required(causes, "data[.dockerconfigjson]");
  } else if (type == "kubernetes.io/basic-auth") {
    if (!has("username") && !has("password")) {
      required(causes, "data[username]");
      required(causes, "data[password]");
    }
  } else if (type == "kubernetes.io/ssh-auth") {
    if (!has("ssh-privatekey")) required(causes, "data[ssh-privatekey]");
  } else if (type == "kubernetes.io/tls") {
    if (!has("tls.crt")) required(causes, "data[tls.crt]");
    if (!has("tls.key")) required(causes, "data[tls.key]");
  }
  if (total > kMaxSecretSize) {
    causes.push_back(
        {"FieldValueTooLong", "data",
         "Too long: may not be more than " + std::to_string(kMaxSecretSize) + " bytes"});
  }
}

// An immutable ConfigMap or Secret keeps its data (ValidateConfigMapUpdate, ValidateSecretUpdate).
template <class T>
void appendImmutableDataCauses(const T& old, const T& next, Causes& causes) {
  if (!old.immutable()) return;
  if (!next.immutable())
    forbidden(causes, "immutable", "field is immutable when `immutable` is set");
  auto same = [](const auto& a, const auto& b) {
    if (a.size() != b.size()) return false;
    for (const auto& [k, v] : a) {
      auto it = b.find(k);
      if (it == b.end() || it->second != v) return false;
    }
    return true;
  };
  if (!same(old.data(), next.data())) {
    forbidden(causes, "data", "field is immutable when `immutable` is set");
  }
  if constexpr (std::is_same_v<T, api::core::v1::ConfigMap>) {
    if (!same(old.binary_data(), next.binary_data())) {
      forbidden(causes, "binaryData", "field is immutable when `immutable` is set");
    }
  }
}

// ---------------------------------------------------------------- RBAC

std::string goStrings(const google::protobuf::RepeatedPtrField<std::string>& values) {
  std::string out = "[]string{";
  for (int i = 0; i < values.size(); ++i)
    out += (i ? ", " : "") + quote(values[i]);
  return out + "}";
}

// ValidatePolicyRule.
void appendRuleCauses(const google::protobuf::RepeatedPtrField<api::rbac::v1::PolicyRule>& rules,
                      bool namespaced, Causes& causes) {
  for (int i = 0; i < rules.size(); ++i) {
    const auto& rule = rules[i];
    const std::string at = "rules[" + std::to_string(i) + "]";
    if (rule.verbs().empty())
      required(causes, at + ".verbs", "verbs must contain at least one value");
    if (!rule.non_resource_urls().empty()) {
      if (namespaced) {
        invalid(causes, at + ".nonResourceURLs", goStrings(rule.non_resource_urls()),
                "namespaced rules cannot apply to non-resource URLs");
      }
      if (!rule.api_groups().empty() || !rule.resources().empty() ||
          !rule.resource_names().empty()) {
        invalid(causes, at + ".nonResourceURLs", goStrings(rule.non_resource_urls()),
                "rules cannot apply to both regular resources and non-resource URLs");
      }
      continue;
    }
    if (rule.api_groups().empty()) {
      required(causes, at + ".apiGroups", "resource rules must supply at least one api group");
    }
    if (rule.resources().empty()) {
      required(causes, at + ".resources", "resource rules must supply at least one resource");
    }
  }
}

// ValidateRoleBinding / ValidateClusterRoleBinding: roleRef and subjects.
template <class Binding>
void appendBindingCauses(const Binding& b, bool namespaced, Causes& causes) {
  const auto& ref = b.role_ref();
  if (ref.api_group() != "rbac.authorization.k8s.io") {
    notSupported(causes, "roleRef.apiGroup", ref.api_group(), {"rbac.authorization.k8s.io"});
  }
  if (namespaced) {
    if (ref.kind() != "Role" && ref.kind() != "ClusterRole") {
      notSupported(causes, "roleRef.kind", ref.kind(), {"Role", "ClusterRole"});
    }
  } else if (ref.kind() != "ClusterRole") {
    notSupported(causes, "roleRef.kind", ref.kind(), {"ClusterRole"});
  }
  if (ref.name().empty()) {
    required(causes, "roleRef.name");
  } else {
    nameErrors(causes, "roleRef.name", ref.name(), pathSegmentErrors(ref.name()));
  }
  for (int i = 0; i < b.subjects_size(); ++i) {
    const auto& s = b.subjects(i);
    const std::string at = "subjects[" + std::to_string(i) + "]";
    if (s.name().empty()) required(causes, at + ".name");
    if (s.kind() == "ServiceAccount") {
      if (!s.name().empty()) {
        nameErrors(causes, at + ".name", s.name(), api::labels::dns1123SubdomainErrors(s.name()));
      }
      if (!s.api_group().empty()) {
        notSupported(causes, at + ".apiGroup", s.api_group(), {""});
      }
      if (!namespaced && s.namespace_().empty()) required(causes, at + ".namespace");
    } else if (s.kind() == "User" || s.kind() == "Group") {
      if (s.api_group() != "rbac.authorization.k8s.io") {
        notSupported(causes, at + ".apiGroup", s.api_group(), {"rbac.authorization.k8s.io"});
      }
    } else {
      notSupported(causes, at + ".kind", s.kind(), {"ServiceAccount", "User", "Group"});
    }
  }
}

template <class Binding>
void immutableRoleRef(const Binding& old, const Binding& next, Causes& causes) {
  if (!google::protobuf::util::MessageDifferencer::Equals(old.role_ref(), next.role_ref())) {
    invalid(causes, "roleRef", "{" + next.role_ref().kind() + " " + next.role_ref().name() + "}",
            "cannot change roleRef");
  }
}

// Whether the two selectors are the same (apps/v1 selectors are immutable). Compared as
// messages: the serialized bytes of a map (matchLabels) follow no fixed order, so equal
// selectors could serialize differently and a rolling update be refused.
bool sameSelector(bool has_a, const LabelSelector& a, bool has_b, const LabelSelector& b) {
  if (has_a != has_b) return false;
  return !has_a || google::protobuf::util::MessageDifferencer::Equals(a, b);
}

void immutableSelector(bool has_old, const LabelSelector& old, bool has_new,
                       const LabelSelector& next, Causes& causes) {
  if (!sameSelector(has_old, old, has_new, next)) {
    invalid(causes, "spec.selector", selectorValue(has_new ? &next : nullptr),
            "field is immutable");
  }
}

// ---------------------------------------------------------------- addresses

// An address as Go's net.ParseIP reads it: `v4` when it is IPv4 or IPv4-mapped IPv6 (To4() !=
// nil), with its 16 bytes.
struct ParsedIp {
  bool ok = false;
  bool v4 = false;
  unsigned char bytes[16] = {};
};

ParsedIp parseIp(const std::string& s) {
  ParsedIp ip;
  in_addr a4{};
  if (inet_pton(AF_INET, s.c_str(), &a4) == 1) {
    ip.ok = ip.v4 = true;
    ip.bytes[10] = ip.bytes[11] = 0xff;
    std::memcpy(ip.bytes + 12, &a4, 4);
    return ip;
  }
  in6_addr a6{};
  if (s.find(':') != std::string::npos && inet_pton(AF_INET6, s.c_str(), &a6) == 1) {
    ip.ok = true;
    std::memcpy(ip.bytes, &a6, 16);
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    ip.v4 = std::memcmp(ip.bytes, kMapped, 12) == 0;
  }
  return ip;
}

// net.ParseCIDR: an address, '/', and a prefix length of at most 32 (IPv4) or 128 bits.
ParsedIp parseCidr(const std::string& s) {
  const size_t slash = s.find('/');
  if (slash == std::string::npos) return {};
  ParsedIp ip = parseIp(s.substr(0, slash));
  const std::string bits = s.substr(slash + 1);
  if (!ip.ok || bits.empty() || bits.size() > 3 ||
      !std::all_of(bits.begin(), bits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return {};
  }
  // An IPv4-mapped address is IPv6 text with 128 bits of prefix.
  const bool v4_text = s.substr(0, slash).find(':') == std::string::npos;
  if (std::stoi(bits) > (v4_text ? 32 : 128)) return {};
  return ip;
}

// ValidateEndpointIP, less its loopback rule: Skiff's single-machine clusters advertise and run
// pods on loopback addresses, which Kubernetes would refuse.
void appendEndpointIpCauses(const std::string& address, const std::string& field, Causes& causes) {
  const ParsedIp ip = parseIp(address);
  if (!ip.ok) {
    invalid(causes, field, quote(address), "must be a valid IP address");
    return;
  }
  const unsigned char* b = ip.bytes;
  const bool unspecified = ip.v4 ? (b[12] | b[13] | b[14] | b[15]) == 0
                                 : std::all_of(b, b + 16, [](unsigned char c) { return c == 0; });
  if (unspecified) {
    invalid(causes, field, quote(address), "may not be unspecified (" + address + ")");
  }
  const bool link_local =
      ip.v4 ? (b[12] == 169 && b[13] == 254) : (b[0] == 0xfe && (b[1] & 0xc0) == 0x80);
  if (link_local) {
    invalid(causes, field, quote(address),
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)");
  }
  const bool link_local_multicast =
      ip.v4 ? (b[12] == 224 && b[13] == 0 && b[14] == 0) : (b[0] == 0xff && (b[1] & 0x0f) == 0x02);
  if (link_local_multicast) {
    invalid(causes, field, quote(address),
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)");
  }
}

void tooMany(Causes& causes, const std::string& field, size_t actual, size_t max) {
  causes.push_back({"FieldValueTooMany", field,
                    "Too many: " + std::to_string(actual) + ": must have at most " +
                        std::to_string(max) + (max == 1 ? " item" : " items")});
}

// ---------------------------------------------------------------- Node

// The podCIDRs the internal API sees: podCIDRs, or podCIDR alone (Convert_v1_NodeSpec_To_core).
std::vector<std::string> podCidrs(const api::core::v1::NodeSpec& spec) {
  if (!spec.pod_cidrs().empty()) return {spec.pod_cidrs().begin(), spec.pod_cidrs().end()};
  if (!spec.pod_cidr().empty()) return {spec.pod_cidr()};
  return {};
}

void appendPodCidrCauses(const std::vector<std::string>& cidrs, Causes& causes) {
  const std::string field = "spec.podCIDRs";
  bool has_v4 = false;
  bool has_v6 = false;
  for (size_t i = 0; i < cidrs.size(); ++i) {
    const ParsedIp net = parseCidr(cidrs[i]);
    if (!net.ok) {
      invalid(causes, field + "[" + std::to_string(i) + "]", quote(cidrs[i]),
              "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)");
      continue;
    }
    (net.v4 ? has_v4 : has_v6) = true;
  }
  if (cidrs.size() <= 1) return;
  if (!(has_v4 && has_v6) || cidrs.size() > 2) {
    std::string list = "[]string{";
    for (size_t i = 0; i < cidrs.size(); ++i)
      list += (i ? ", " : "") + quote(cidrs[i]);
    invalid(causes, field, list + "}", "may specify no more than one CIDR for each IP family");
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < cidrs.size(); ++i) {
    if (!seen.insert(cidrs[i]).second) {
      duplicate(causes, field + "[" + std::to_string(i) + "]", cidrs[i]);
    }
  }
}

// validateNodeTaints, at Kubernetes' path: metadata.taints (ValidateNode's fldPath is metadata).
void appendTaintCauses(const api::core::v1::NodeSpec& spec, Causes& causes) {
  std::set<std::pair<std::string, std::string>> unique;  // (effect, key)
  for (int i = 0; i < spec.taints_size(); ++i) {
    const auto& t = spec.taints(i);
    const std::string at = "metadata.taints[" + std::to_string(i) + "]";
    nameErrors(causes, at + ".key", t.key(), api::labels::qualifiedNameErrors(t.key()));
    if (auto errs = api::labels::labelValueErrors(t.value()); !errs.empty()) {
      std::string joined;
      for (const std::string& e : errs)
        joined += (joined.empty() ? "" : ";") + e;
      invalid(causes, at + ".value", quote(t.value()), joined);
    }
    if (t.effect().empty()) {
      required(causes, at + ".effect");
    } else {
      oneOf(causes, at + ".effect", t.effect(), {"NoSchedule", "PreferNoSchedule", "NoExecute"});
    }
    if (!unique.emplace(t.effect(), t.key()).second) {
      // field.Duplicate of the internal core.Taint, printed with %#v.
      const std::string added = t.has_time_added()
                                    ? "(*v1.Time)(" + std::to_string(t.time_added().seconds()) + ")"
                                    : "<nil>";
      causes.push_back({"FieldValueDuplicate", at,
                        "Duplicate value: core.Taint{Key:" + quote(t.key()) +
                            ", Value:" + quote(t.value()) + ", Effect:" + quote(t.effect()) +
                            ", TimeAdded:" + added +
                            "}: taints must be unique by key and effect pair"});
    }
  }
}

void appendNodeCauses(const api::core::v1::Node& node, Causes& causes) {
  appendTaintCauses(node.spec(), causes);
  appendPodCidrCauses(podCidrs(node.spec()), causes);
}

// ValidateNodeUpdate: podCIDRs and providerID may only be set once. Kubernetes checks the
// podCIDRs' form on create only; here a first assignment is checked too, as a create would be.
void appendNodeUpdateCauses(const api::core::v1::Node& old, const api::core::v1::Node& next,
                            Causes& causes) {
  const std::vector<std::string> before = podCidrs(old.spec());
  const std::vector<std::string> after = podCidrs(next.spec());
  if (before.empty()) {
    appendPodCidrCauses(after, causes);
  } else {
    const std::string detail = "node updates may not change podCIDR except from \"\" to valid";
    if (before.size() != after.size()) {
      forbidden(causes, "spec.podCIDRs", detail);
    } else {
      for (size_t i = 0; i < before.size(); ++i) {
        if (before[i] != after[i]) forbidden(causes, "spec.podCIDRs", detail);
      }
    }
  }
  if (!old.spec().provider_id().empty() && old.spec().provider_id() != next.spec().provider_id()) {
    forbidden(causes, "spec.providerID",
              "node updates may not change providerID except from \"\" to valid");
  }
  appendTaintCauses(next.spec(), causes);
}

// ---------------------------------------------------------------- EndpointSlice

constexpr size_t kMaxEndpointAddresses = 100;
constexpr size_t kMaxEndpoints = 1000;
constexpr size_t kMaxEndpointPorts = 20000;

// validation.IsFullyQualifiedDomainName.
void appendFqdnCauses(std::string name, const std::string& field, Causes& causes) {
  if (name.empty()) {
    required(causes, field);
    return;
  }
  if (name.back() == '.') name.pop_back();
  if (auto errs = api::labels::dns1123SubdomainErrors(name); !errs.empty()) {
    std::string joined;
    for (const std::string& e : errs)
      joined += (joined.empty() ? "" : ",") + e;
    invalid(causes, field, quote(name), joined);
    return;
  }
  std::vector<std::string> labels;
  for (size_t start = 0;;) {
    const size_t dot = name.find('.', start);
    labels.push_back(name.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (labels.size() < 2) {
    invalid(causes, field, quote(name),
            "should be a domain with at least two segments separated by dots");
    return;
  }
  for (const std::string& label : labels) {
    if (auto errs = api::labels::dns1123LabelErrors(label); !errs.empty()) {
      std::string joined;
      for (const std::string& e : errs)
        joined += (joined.empty() ? "" : ",") + e;
      invalid(causes, field, quote(label), joined);
      return;
    }
  }
}

// ValidateEndpointSlice (pkg/apis/discovery/validation): addressType, endpoints, ports.
void appendEndpointSliceCauses(const api::discovery::v1::EndpointSlice& slice, Causes& causes) {
  const std::string& type = slice.address_type();
  if (type.empty()) {
    required(causes, "addressType");
  } else if (type != "IPv4" && type != "IPv6" && type != "FQDN") {
    notSupported(causes, "addressType", type, {"FQDN", "IPv4", "IPv6"});
  }
  if (static_cast<size_t>(slice.endpoints_size()) > kMaxEndpoints) {
    tooMany(causes, "endpoints", slice.endpoints_size(), kMaxEndpoints);
  } else {
    for (int i = 0; i < slice.endpoints_size(); ++i) {
      const auto& e = slice.endpoints(i);
      const std::string at = "endpoints[" + std::to_string(i) + "]";
      const std::string addresses = at + ".addresses";
      if (e.addresses().empty()) {
        required(causes, addresses, "must contain at least 1 address");
      } else if (static_cast<size_t>(e.addresses_size()) > kMaxEndpointAddresses) {
        tooMany(causes, addresses, e.addresses_size(), kMaxEndpointAddresses);
      }
      for (int j = 0; j < e.addresses_size(); ++j) {
        const std::string& a = e.addresses(j);
        const std::string field = addresses + "[" + std::to_string(j) + "]";
        if (type == "IPv4") {
          const ParsedIp ip = parseIp(a);
          if (!ip.ok || !ip.v4) {
            invalid(causes, field, quote(a), "must be a valid IPv4 address");
          } else {
            appendEndpointIpCauses(a, field, causes);
          }
        } else if (type == "IPv6") {
          const ParsedIp ip = parseIp(a);
          if (!ip.ok || ip.v4) invalid(causes, field, quote(a), "must be a valid IPv6 address");
          appendEndpointIpCauses(a, field, causes);
        } else if (type == "FQDN") {
          appendFqdnCauses(a, field, causes);
        }
      }
      if (e.has_node_name()) {
        nameErrors(causes, at + ".nodeName", e.node_name(),
                   api::labels::dns1123SubdomainErrors(e.node_name()));
      }
      if (e.has_hostname()) {
        nameErrors(causes, at + ".hostname", e.hostname(),
                   api::labels::dns1123LabelErrors(e.hostname()));
      }
    }
  }
  if (static_cast<size_t>(slice.ports_size()) > kMaxEndpointPorts) {
    tooMany(causes, "ports", slice.ports_size(), kMaxEndpointPorts);
    return;
  }
  std::set<std::string> names;
  for (int i = 0; i < slice.ports_size(); ++i) {
    const auto& p = slice.ports(i);
    const std::string at = "ports[" + std::to_string(i) + "]";
    if (!p.name().empty()) {
      nameErrors(causes, at + ".name", p.name(), api::labels::dns1123LabelErrors(p.name()));
    }
    if (!names.insert(p.name()).second) duplicate(causes, at + ".name", p.name());
    if (!p.has_protocol()) {
      required(causes, at + ".protocol");
    } else if (p.protocol() != "TCP" && p.protocol() != "UDP" && p.protocol() != "SCTP") {
      notSupported(causes, at + ".protocol", p.protocol(), {"SCTP", "TCP", "UDP"});
    }
    // The internal API's *int32 takes any value; the port is a uint16 in the data plane.
    if (p.has_port() && (p.port() < 0 || p.port() > 65535)) {
      invalid(causes, at + ".port", std::to_string(p.port()),
              "must be between 0 and 65535, inclusive");
    }
    if (p.has_app_protocol()) {
      nameErrors(causes, at + ".appProtocol", p.app_protocol(),
                 api::labels::qualifiedNameErrors(p.app_protocol()));
    }
  }
}

// ---------------------------------------------------------------- Lease

void appendLeaseCauses(const api::coordination::v1::Lease& lease, Causes& causes) {
  const auto& spec = lease.spec();
  if (spec.has_lease_duration_seconds() && spec.lease_duration_seconds() <= 0) {
    invalid(causes, "spec.leaseDurationSeconds", std::to_string(spec.lease_duration_seconds()),
            "must be greater than 0");
  }
  if (spec.has_lease_transitions() && spec.lease_transitions() < 0) {
    invalid(causes, "spec.leaseTransitions", std::to_string(spec.lease_transitions()),
            "must be greater than or equal to 0");
  }
  if (spec.has_strategy()) {
    // ValidateCoordinatedLeaseStrategy, at its path (fldPath.Child("strategy") twice).
    const std::string& s = spec.strategy();
    if (s.find('/') == std::string::npos) {
      if (s != "OldestEmulationVersion") {
        notSupported(causes, "spec.strategy.strategy", s, {"OldestEmulationVersion"});
      }
    } else {
      nameErrors(causes, "spec.strategy.strategy", s, api::labels::qualifiedNameErrors(s));
    }
  }
  if (!spec.preferred_holder().empty() && spec.strategy().empty()) {
    forbidden(causes, "spec.preferredHolder", "may only be specified if `strategy` is defined");
  }
}

// ---------------------------------------------------------------- Event

constexpr size_t kReportingInstanceLengthLimit = 128;
constexpr size_t kActionLengthLimit = 128;
constexpr size_t kReasonLengthLimit = 128;
constexpr size_t kNoteLengthLimit = 1024;

// legacyValidateEvent, what kube-apiserver checks of a core/v1 Event (the events.k8s.io rules
// are not applied to v1 requests). The namespace rules compare with metadata.namespace only
// when the body carries one: the handler fills it from the URL after validation.
void appendEventCauses(const api::core::v1::Event& event, Causes& causes) {
  const std::string& ns = event.metadata().namespace_();
  const std::string& involved = event.involved_object().namespace_();
  const std::string involved_field = "involvedObject.namespace";
  if (!event.has_event_time() ||
      (event.event_time().seconds() == 0 && event.event_time().nanos() == 0)) {
    if (!ns.empty()) {
      if (involved.empty() ? ns != "default" : ns != involved) {
        invalid(causes, involved_field, quote(involved), "does not match event.namespace");
      }
    }
    return;
  }
  if (involved.empty() && !ns.empty() && ns != "default" && ns != "kube-system") {
    invalid(causes, involved_field, quote(involved), "does not match event.namespace");
  }
  const std::string& controller = event.reporting_component();
  if (controller.empty()) required(causes, "reportingComponent");
  nameErrors(causes, "reportingComponent", controller,
             api::labels::qualifiedNameErrors(controller));
  auto limit = [&](const std::string& field, const std::string& value, size_t max) {
    if (value.empty()) required(causes, field);
    if (value.size() > max) {
      invalid(causes, field, "\"\"", "can have at most " + std::to_string(max) + " characters");
    }
  };
  limit("reportingInstance", event.reporting_instance(), kReportingInstanceLengthLimit);
  limit("action", event.action(), kActionLengthLimit);
  limit("reason", event.reason(), kReasonLengthLimit);
  if (event.message().size() > kNoteLengthLimit) {
    invalid(causes, "message", "\"\"",
            "can have at most " + std::to_string(kNoteLengthLimit) + " characters");
  }
}

// ---------------------------------------------------------------- Namespace

// ValidateNamespace: spec.finalizers are qualified names, and a name without '/' is one of
// Kubernetes' own (validateKubeFinalizerName).
void appendNamespaceCauses(const api::core::v1::Namespace& ns, Causes& causes) {
  for (const std::string& f : ns.spec().finalizers()) {
    nameErrors(causes, "spec.finalizers", f, api::labels::qualifiedNameErrors(f));
    if (f.find('/') == std::string::npos && f != "kubernetes" && f != "orphan" &&
        f != "foregroundDeletion") {
      invalid(causes, "spec.finalizers", quote(f),
              "name is neither a standard finalizer name nor is it fully qualified");
    }
  }
}

}  // namespace

std::vector<FieldCause> objectMetaCauses(const ObjectMeta& meta, const api::ResourceType& type,
                                         bool creating) {
  Causes causes;
  if (creating) {
    if (!meta.name().empty()) {
      nameErrors(causes, "metadata.name", meta.name(), nameRuleErrors(type, meta.name()));
    } else if (!meta.generate_name().empty()) {
      // The prefix may end in '-' (maskTrailingDash): the random suffix follows it.
      std::string masked = meta.generate_name();
      if (masked.size() > 1 && masked.back() == '-') masked.back() = 'a';
      nameErrors(causes, "metadata.generateName", meta.generate_name(),
                 nameRuleErrors(type, masked));
    }
  }
  appendLabelCauses(meta.labels(), "metadata.labels", causes);
  appendAnnotationCauses(meta.annotations(), "metadata.annotations", causes);
  appendOwnerReferenceCauses(meta, causes);
  for (const std::string& f : meta.finalizers()) {
    nameErrors(causes, "metadata.finalizers", f, api::labels::qualifiedNameErrors(f));
  }
  return causes;
}

void appendPodSpecCauses(const PodSpec& spec, const std::string& path, Causes& causes) {
  const std::set<std::string> volumes = appendVolumeCauses(spec, path, causes);
  std::set<std::string> names;
  for (int i = 0; i < spec.init_containers_size(); ++i) {
    appendContainerCauses(spec.init_containers(i),
                          path + ".initContainers[" + std::to_string(i) + "]", volumes, names,
                          causes);
  }
  if (spec.containers_size() == 0) required(causes, path + ".containers");
  for (int i = 0; i < spec.containers_size(); ++i) {
    appendContainerCauses(spec.containers(i), path + ".containers[" + std::to_string(i) + "]",
                          volumes, names, causes);
  }
  oneOf(causes, path + ".restartPolicy", spec.restart_policy(), {"Always", "OnFailure", "Never"});
  oneOf(causes, path + ".dnsPolicy", spec.dns_policy(),
        {"ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"});
  if (spec.has_active_deadline_seconds() && spec.active_deadline_seconds() < 1) {
    invalid(causes, path + ".activeDeadlineSeconds", std::to_string(spec.active_deadline_seconds()),
            "must be between 1 and 2147483647, inclusive");
  }
}

std::vector<FieldCause> createCauses(const google::protobuf::Message& object,
                                     const api::ResourceType& type) {
  Causes causes = objectMetaCauses(meta(object), type, true);
  if (const auto* pod = dynamic_cast<const api::core::v1::Pod*>(&object)) {
    appendPodSpecCauses(pod->spec(), "spec", causes);
  } else if (const auto* d = dynamic_cast<const api::apps::v1::Deployment*>(&object)) {
    appendDeploymentCauses(*d, causes);
  } else if (const auto* rs = dynamic_cast<const api::apps::v1::ReplicaSet*>(&object)) {
    appendReplicaSetCauses(*rs, causes);
  } else if (const auto* ds = dynamic_cast<const api::apps::v1::DaemonSet*>(&object)) {
    appendDaemonSetCauses(*ds, causes);
  } else if (const auto* ss = dynamic_cast<const api::apps::v1::StatefulSet*>(&object)) {
    appendStatefulSetCauses(*ss, causes);
  } else if (const auto* job = dynamic_cast<const api::batch::v1::Job*>(&object)) {
    appendJobTemplateCauses(*job, causes);
  } else if (const auto* cm = dynamic_cast<const api::core::v1::ConfigMap*>(&object)) {
    appendConfigMapCauses(*cm, causes);
  } else if (const auto* secret = dynamic_cast<const api::core::v1::Secret*>(&object)) {
    appendSecretCauses(*secret, causes);
  } else if (const auto* role = dynamic_cast<const api::rbac::v1::Role*>(&object)) {
    appendRuleCauses(role->rules(), true, causes);
  } else if (const auto* cr = dynamic_cast<const api::rbac::v1::ClusterRole*>(&object)) {
    appendRuleCauses(cr->rules(), false, causes);
  } else if (const auto* rb = dynamic_cast<const api::rbac::v1::RoleBinding*>(&object)) {
    appendBindingCauses(*rb, true, causes);
  } else if (const auto* crb = dynamic_cast<const api::rbac::v1::ClusterRoleBinding*>(&object)) {
    appendBindingCauses(*crb, false, causes);
  } else if (const auto* node = dynamic_cast<const api::core::v1::Node*>(&object)) {
    appendNodeCauses(*node, causes);
  } else if (const auto* slice = dynamic_cast<const api::discovery::v1::EndpointSlice*>(&object)) {
    appendEndpointSliceCauses(*slice, causes);
  } else if (const auto* lease = dynamic_cast<const api::coordination::v1::Lease*>(&object)) {
    appendLeaseCauses(*lease, causes);
  } else if (const auto* event = dynamic_cast<const api::core::v1::Event*>(&object)) {
    appendEventCauses(*event, causes);
  } else if (const auto* ns = dynamic_cast<const api::core::v1::Namespace*>(&object)) {
    appendNamespaceCauses(*ns, causes);
  }
  return causes;
}

std::vector<FieldCause> updateCauses(const google::protobuf::Message& old,
                                     const google::protobuf::Message& next,
                                     const api::ResourceType& type) {
  Causes causes = objectMetaCauses(meta(next), type, false);
  if (const auto* node = dynamic_cast<const api::core::v1::Node*>(&next)) {
    appendNodeUpdateCauses(dynamic_cast<const api::core::v1::Node&>(old), *node, causes);
  } else if (const auto* slice = dynamic_cast<const api::discovery::v1::EndpointSlice*>(&next)) {
    const auto& o = dynamic_cast<const api::discovery::v1::EndpointSlice&>(old);
    appendEndpointSliceCauses(*slice, causes);
    if (o.address_type() != slice->address_type()) {
      invalid(causes, "addressType", quote(slice->address_type()), "field is immutable");
    }
  } else if (const auto* lease = dynamic_cast<const api::coordination::v1::Lease*>(&next)) {
    appendLeaseCauses(*lease, causes);
  } else if (const auto* event = dynamic_cast<const api::core::v1::Event*>(&next)) {
    appendEventCauses(*event, causes);
  } else if (const auto* ns = dynamic_cast<const api::core::v1::Namespace*>(&next)) {
    appendNamespaceCauses(*ns, causes);
  } else if (const auto* cm = dynamic_cast<const api::core::v1::ConfigMap*>(&next)) {
    appendConfigMapCauses(*cm, causes);
    appendImmutableDataCauses(dynamic_cast<const api::core::v1::ConfigMap&>(old), *cm, causes);
  } else if (const auto* secret = dynamic_cast<const api::core::v1::Secret*>(&next)) {
    const auto& o = dynamic_cast<const api::core::v1::Secret&>(old);
    appendSecretCauses(*secret, causes);
    if (o.type() != secret->type()) {
      invalid(causes, "type", quote(secret->type()), "field is immutable");
    }
    appendImmutableDataCauses(o, *secret, causes);
  } else if (const auto* role = dynamic_cast<const api::rbac::v1::Role*>(&next)) {
    appendRuleCauses(role->rules(), true, causes);
  } else if (const auto* cr = dynamic_cast<const api::rbac::v1::ClusterRole*>(&next)) {
    appendRuleCauses(cr->rules(), false, causes);
  } else if (const auto* rb = dynamic_cast<const api::rbac::v1::RoleBinding*>(&next)) {
    appendBindingCauses(*rb, true, causes);
    immutableRoleRef(dynamic_cast<const api::rbac::v1::RoleBinding&>(old), *rb, causes);
  } else if (const auto* crb = dynamic_cast<const api::rbac::v1::ClusterRoleBinding*>(&next)) {
    appendBindingCauses(*crb, false, causes);
    immutableRoleRef(dynamic_cast<const api::rbac::v1::ClusterRoleBinding&>(old), *crb, causes);
  } else if (const auto* d = dynamic_cast<const api::apps::v1::Deployment*>(&next)) {
    const auto& o = dynamic_cast<const api::apps::v1::Deployment&>(old);
    appendDeploymentCauses(*d, causes);
    immutableSelector(o.spec().has_selector(), o.spec().selector(), d->spec().has_selector(),
                      d->spec().selector(), causes);
  } else if (const auto* rs = dynamic_cast<const api::apps::v1::ReplicaSet*>(&next)) {
    const auto& o = dynamic_cast<const api::apps::v1::ReplicaSet&>(old);
    appendReplicaSetCauses(*rs, causes);
    immutableSelector(o.spec().has_selector(), o.spec().selector(), rs->spec().has_selector(),
                      rs->spec().selector(), causes);
  } else if (const auto* ds = dynamic_cast<const api::apps::v1::DaemonSet*>(&next)) {
    const auto& o = dynamic_cast<const api::apps::v1::DaemonSet&>(old);
    appendDaemonSetCauses(*ds, causes);
    immutableSelector(o.spec().has_selector(), o.spec().selector(), ds->spec().has_selector(),
                      ds->spec().selector(), causes);
  } else if (const auto* ss = dynamic_cast<const api::apps::v1::StatefulSet*>(&next)) {
    const auto& o = dynamic_cast<const api::apps::v1::StatefulSet&>(old);
    appendStatefulSetCauses(*ss, causes);
    // ValidateStatefulSetUpdate: only these fields of the spec may change.
    api::apps::v1::StatefulSetSpec a = o.spec();
    api::apps::v1::StatefulSetSpec b = ss->spec();
    for (auto* s : {&a, &b}) {
      s->clear_replicas();
      s->clear_ordinals();
      s->clear_template_();
      s->clear_update_strategy();
      s->clear_persistent_volume_claim_retention_policy();
      s->clear_min_ready_seconds();
      s->clear_revision_history_limit();  // let through here too: only the controller reads it
    }
    if (!google::protobuf::util::MessageDifferencer::Equals(a, b)) {
      forbidden(causes, "spec",
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                "'minReadySeconds' are forbidden");
    }
  }
  return causes;
}

void validateCreate(const google::protobuf::Message& object, const api::ResourceType& type) {
  Causes causes = createCauses(object, type);
  if (causes.empty()) return;
  const ObjectMeta& m = meta(object);
  throw invalid(type.kind, type.group, m.name().empty() ? m.generate_name() : m.name(), causes);
}

void validateUpdate(const google::protobuf::Message& old, const google::protobuf::Message& next,
                    const api::ResourceType& type) {
  Causes causes = updateCauses(old, next, type);
  if (!causes.empty()) throw invalid(type.kind, type.group, meta(next).name(), causes);
}

}  // namespace skiff::apiserver
