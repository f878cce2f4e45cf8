#include "control/apiserver/defaults.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "control/api/quantity.h"

#include "skiff/api/apps_v1.pb.h"
#include "skiff/api/batch_v1.pb.h"
#include "skiff/api/core_v1.pb.h"
#include "skiff/api/discovery_v1.pb.h"
#include "skiff/api/storage_v1.pb.h"

namespace skiff::apiserver {
namespace {

namespace core = api::core::v1;
namespace apps = api::apps::v1;
namespace batch = api::batch::v1;

constexpr int32_t kDefaultVolumeMode = 0644;  // SecretVolumeSourceDefaultMode and its siblings

void setIntOrString(api::runtime::IntOrString& out, int32_t value) {
  out.set_type(api::runtime::IntOrString::INT);
  out.set_int_val(value);
}

void setIntOrString(api::runtime::IntOrString& out, const std::string& value) {
  out.set_type(api::runtime::IntOrString::STRING);
  out.set_str_val(value);
}

// The tag k8s.io/kubernetes/pkg/util/parsers.ParseImageName returns: the text after the last ':'
// of the last path component, "latest" when there is neither a tag nor a digest.
std::string imageTag(const std::string& image) {
  size_t at = image.find('@');
  std::string name = image.substr(0, at);
  size_t slash = name.rfind('/');
  size_t colon = name.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    return name.substr(colon + 1);
  }
  return at == std::string::npos ? "latest" : "";
}

void defaultFieldRef(core::ObjectFieldSelector& ref) {
  if (!ref.has_api_version()) ref.set_api_version("v1");  // SetDefaults_ObjectFieldSelector
}

void defaultProbe(core::Probe& probe) {
  if (!probe.has_timeout_seconds()) probe.set_timeout_seconds(1);
  if (!probe.has_period_seconds()) probe.set_period_seconds(10);
  if (!probe.has_success_threshold()) probe.set_success_threshold(1);
  if (!probe.has_failure_threshold()) probe.set_failure_threshold(3);
  if (probe.has_http_get()) {
    auto* get = probe.mutable_http_get();
    if (!get->has_path()) get->set_path("/");
    if (!get->has_scheme()) get->set_scheme("HTTP");
  }
  if (probe.has_grpc() && !probe.grpc().has_service()) probe.mutable_grpc()->set_service("");
}

void defaultLifecycleHandler(core::LifecycleHandler& handler) {
  if (handler.has_http_get()) {
    auto* get = handler.mutable_http_get();
    if (!get->has_path()) get->set_path("/");
    if (!get->has_scheme()) get->set_scheme("HTTP");
  }
}

void defaultContainer(core::Container& c) {
  if (!c.has_image_pull_policy()) {
    c.set_image_pull_policy(imageTag(c.image()) == "latest" ? "Always" : "IfNotPresent");
  }
  if (!c.has_termination_message_path()) c.set_termination_message_path("/dev/termination-log");
  if (!c.has_termination_message_policy()) c.set_termination_message_policy("File");
  for (auto& port : *c.mutable_ports()) {
    if (!port.has_protocol()) port.set_protocol("TCP");
  }
  for (auto& env : *c.mutable_env()) {
    if (env.value_from().has_field_ref()) {
      defaultFieldRef(*env.mutable_value_from()->mutable_field_ref());
    }
  }
  if (c.has_liveness_probe()) defaultProbe(*c.mutable_liveness_probe());
  if (c.has_readiness_probe()) defaultProbe(*c.mutable_readiness_probe());
  if (c.has_startup_probe()) defaultProbe(*c.mutable_startup_probe());
  if (c.has_lifecycle()) {
    if (c.lifecycle().has_post_start()) {
      defaultLifecycleHandler(*c.mutable_lifecycle()->mutable_post_start());
    }
    if (c.lifecycle().has_pre_stop()) {
      defaultLifecycleHandler(*c.mutable_lifecycle()->mutable_pre_stop());
    }
  }
}

void defaultDownwardApiItems(
    google::protobuf::RepeatedPtrField<core::DownwardAPIVolumeFile>& items) {
  for (auto& item : items) {
    if (item.has_field_ref()) defaultFieldRef(*item.mutable_field_ref());
  }
}

void defaultVolume(core::Volume& v) {
  // SetDefaults_Volume: a volume without a source is an emptyDir.
  if (!v.has_host_path() && !v.has_empty_dir() && !v.has_secret() &&
      !v.has_persistent_volume_claim() && !v.has_downward_api() && !v.has_config_map() &&
      !v.has_projected()) {
    v.mutable_empty_dir();
  }
  if (v.has_host_path() && !v.host_path().has_type()) v.mutable_host_path()->set_type("");
  if (v.has_secret() && !v.secret().has_default_mode()) {
    v.mutable_secret()->set_default_mode(kDefaultVolumeMode);
  }
  if (v.has_config_map() && !v.config_map().has_default_mode()) {
    v.mutable_config_map()->set_default_mode(kDefaultVolumeMode);
  }
  if (v.has_downward_api()) {
    auto* d = v.mutable_downward_api();
    if (!d->has_default_mode()) d->set_default_mode(kDefaultVolumeMode);
    defaultDownwardApiItems(*d->mutable_items());
  }
  if (v.has_projected()) {
    auto* p = v.mutable_projected();
    if (!p->has_default_mode()) p->set_default_mode(kDefaultVolumeMode);
    for (auto& source : *p->mutable_sources()) {
      if (source.has_service_account_token() &&
          !source.service_account_token().has_expiration_seconds()) {
        source.mutable_service_account_token()->set_expiration_seconds(3600);
      }
      if (source.has_downward_api()) {
        defaultDownwardApiItems(*source.mutable_downward_api()->mutable_items());
      }
    }
  }
}

// SetDefaults_PodSpec and what it reaches (containers, volumes, probes), for Pods and templates.
void defaultPodSpec(core::PodSpec& spec) {
  if (!spec.has_dns_policy()) spec.set_dns_policy("ClusterFirst");
  if (!spec.has_restart_policy()) spec.set_restart_policy("Always");
  if (!spec.has_security_context()) spec.mutable_security_context();
  if (!spec.has_termination_grace_period_seconds()) spec.set_termination_grace_period_seconds(30);
  if (!spec.has_scheduler_name()) spec.set_scheduler_name("default-scheduler");
  for (auto& c : *spec.mutable_init_containers())
    defaultContainer(c);
  for (auto& c : *spec.mutable_containers())
    defaultContainer(c);
  for (auto& v : *spec.mutable_volumes())
    defaultVolume(v);
}

// SetDefaults_Pod's part for a container: requests default to limits.
void defaultRequestsFromLimits(core::Container& c) {
  if (!c.has_resources()) return;
  auto* resources = c.mutable_resources();
  for (const auto& [name, quantity] : resources->limits()) {
    if (!resources->requests().contains(name)) (*resources->mutable_requests())[name] = quantity;
  }
}

// defaultHostNetworkPorts: with hostNetwork a port's hostPort is its containerPort.
void defaultHostNetworkPorts(core::Container& c) {
  for (auto& port : *c.mutable_ports()) {
    if (port.host_port() == 0) port.set_host_port(port.container_port());
  }
}

void defaultPod(core::Pod& pod) {
  auto* spec = pod.mutable_spec();
  for (auto* list : {spec->mutable_init_containers(), spec->mutable_containers()}) {
    for (auto& c : *list) {
      defaultRequestsFromLimits(c);
      if (spec->host_network()) defaultHostNetworkPorts(c);
    }
  }
  if (!spec->has_enable_service_links()) spec->set_enable_service_links(true);
  defaultPodSpec(*spec);
}

// Templates get SetDefaults_PodSpec but not SetDefaults_Pod; enableServiceLinks is a +default
// marker on PodSpec, so templates get it too.
void defaultTemplate(core::PodTemplateSpec& t) {
  auto* spec = t.mutable_spec();
  if (!spec->has_enable_service_links()) spec->set_enable_service_links(true);
  defaultPodSpec(*spec);
}

void defaultPvc(core::PersistentVolumeClaim& pvc) {
  if (!pvc.spec().has_volume_mode()) pvc.mutable_spec()->set_volume_mode("Filesystem");
  if (!pvc.status().has_phase()) pvc.mutable_status()->set_phase("Pending");
}

void defaultDeployment(apps::Deployment& d) {
  auto* spec = d.mutable_spec();
  if (!spec->has_replicas()) spec->set_replicas(1);
  auto* strategy = spec->mutable_strategy();
  if (!strategy->has_type()) strategy->set_type("RollingUpdate");
  if (strategy->type() == "RollingUpdate") {
    auto* rolling = strategy->mutable_rolling_update();
    if (!rolling->has_max_unavailable()) setIntOrString(*rolling->mutable_max_unavailable(), "25%");
    if (!rolling->has_max_surge()) setIntOrString(*rolling->mutable_max_surge(), "25%");
  }
  if (!spec->has_revision_history_limit()) spec->set_revision_history_limit(10);
  if (!spec->has_progress_deadline_seconds()) spec->set_progress_deadline_seconds(600);
  defaultTemplate(*spec->mutable_template_());
}

void defaultDaemonSet(apps::DaemonSet& ds) {
  auto* spec = ds.mutable_spec();
  auto* strategy = spec->mutable_update_strategy();
  if (!strategy->has_type()) strategy->set_type("RollingUpdate");
  if (strategy->type() == "RollingUpdate") {
    auto* rolling = strategy->mutable_rolling_update();
    if (!rolling->has_max_unavailable()) setIntOrString(*rolling->mutable_max_unavailable(), 1);
    if (!rolling->has_max_surge()) setIntOrString(*rolling->mutable_max_surge(), 0);
  }
  if (!spec->has_revision_history_limit()) spec->set_revision_history_limit(10);
  defaultTemplate(*spec->mutable_template_());
}

void defaultStatefulSet(apps::StatefulSet& ss) {
  auto* spec = ss.mutable_spec();
  if (!spec->has_pod_management_policy()) spec->set_pod_management_policy("OrderedReady");
  auto* strategy = spec->mutable_update_strategy();
  if (!strategy->has_type()) {
    strategy->set_type("RollingUpdate");
    strategy->mutable_rolling_update();  // takes the defaults below
  }
  if (strategy->type() == "RollingUpdate" && strategy->has_rolling_update() &&
      !strategy->rolling_update().has_partition()) {
    strategy->mutable_rolling_update()->set_partition(0);
  }
  // StatefulSetAutoDeletePVC is GA (1.32).
  auto* retention = spec->mutable_persistent_volume_claim_retention_policy();
  if (!retention->has_when_deleted()) retention->set_when_deleted("Retain");
  if (!retention->has_when_scaled()) retention->set_when_scaled("Retain");
  if (!spec->has_replicas()) spec->set_replicas(1);
  if (!spec->has_revision_history_limit()) spec->set_revision_history_limit(10);
  defaultTemplate(*spec->mutable_template_());
  for (auto& pvc : *spec->mutable_volume_claim_templates())
    defaultPvc(pvc);
}

void defaultJob(batch::Job& job) {
  auto* spec = job.mutable_spec();
  // A non-parallel Job may leave both unset; then both are 1.
  if (!spec->has_completions() && !spec->has_parallelism()) {
    spec->set_completions(1);
    spec->set_parallelism(1);
  }
  if (!spec->has_parallelism()) spec->set_parallelism(1);
  if (!spec->has_backoff_limit()) {
    spec->set_backoff_limit(spec->has_backoff_limit_per_index() ? INT32_MAX : 6);
  }
  const auto& template_labels = spec->template_().metadata().labels();
  if (!template_labels.empty() && job.metadata().labels().empty()) {
    *job.mutable_metadata()->mutable_labels() = template_labels;
  }
  if (!spec->has_completion_mode()) spec->set_completion_mode("NonIndexed");
  if (!spec->has_suspend()) spec->set_suspend(false);
  if (spec->has_pod_failure_policy()) {
    for (auto& rule : *spec->mutable_pod_failure_policy()->mutable_rules()) {
      for (auto& pattern : *rule.mutable_on_pod_conditions()) {
        if (!pattern.has_status()) pattern.set_status("True");
      }
    }
  }
  if (!spec->has_pod_replacement_policy()) {
    spec->set_pod_replacement_policy(spec->has_pod_failure_policy() ? "Failed"
                                                                    : "TerminatingOrFailed");
  }
  defaultTemplate(*spec->mutable_template_());
}

// Kubernetes' ComputePodQOS (pkg/apis/core/v1/helper/qos): BestEffort without cpu or memory
// requests and limits, Guaranteed when every container limits both and requests what it limits,
// else Burstable.
std::string podQosClass(const core::PodSpec& spec) {
  std::map<std::string, api::Quantity> requests;
  std::map<std::string, api::Quantity> limits;
  bool guaranteed = true;
  auto add = [](std::map<std::string, api::Quantity>& sums, const std::string& name,
                const api::Quantity& q) {
    auto [it, inserted] = sums.try_emplace(name, q);
    if (!inserted) it->second += q;
  };
  for (const auto* list : {&spec.containers(), &spec.init_containers()}) {
    for (const auto& c : *list) {
      for (const auto& [name, proto] : c.resources().requests()) {
        if (name != "cpu" && name != "memory") continue;
        api::Quantity q = api::Quantity::fromProto(proto);
        if (q.sign() > 0) add(requests, name, q);
      }
      std::set<std::string> limited;
      for (const auto& [name, proto] : c.resources().limits()) {
        if (name != "cpu" && name != "memory") continue;
        api::Quantity q = api::Quantity::fromProto(proto);
        if (q.sign() > 0) {
          limited.insert(name);
          add(limits, name, q);
        }
      }
      if (limited.size() != 2) guaranteed = false;
    }
  }
  if (requests.empty() && limits.empty()) return "BestEffort";
  for (const auto& [name, request] : requests) {
    auto it = limits.find(name);
    if (it == limits.end() || it->second.cmp(request) != 0) guaranteed = false;
  }
  return guaranteed && requests.size() == limits.size() ? "Guaranteed" : "Burstable";
}

}  // namespace

void applyDefaults(google::protobuf::Message& object) {
  if (auto* pod = dynamic_cast<core::Pod*>(&object)) {
    defaultPod(*pod);
  } else if (auto* ns = dynamic_cast<core::Namespace*>(&object)) {
    // SetDefaults_Namespace: every namespace carries its name as a label (for selectors).
    if (!ns->metadata().name().empty()) {
      (*ns->mutable_metadata()->mutable_labels())["kubernetes.io/metadata.name"] =
          ns->metadata().name();
    }
    if (!ns->status().has_phase()) ns->mutable_status()->set_phase("Active");
  } else if (auto* node = dynamic_cast<core::Node*>(&object)) {
    // SetDefaults_NodeStatus: allocatable defaults to capacity.
    if (node->status().allocatable().empty() && !node->status().capacity().empty()) {
      *node->mutable_status()->mutable_allocatable() = node->status().capacity();
    }
  } else if (auto* slice = dynamic_cast<api::discovery::v1::EndpointSlice*>(&object)) {
    for (auto& port : *slice->mutable_ports()) {
      if (!port.has_name()) port.set_name("");
      if (!port.has_protocol()) port.set_protocol("TCP");
    }
  } else if (auto* pvc = dynamic_cast<core::PersistentVolumeClaim*>(&object)) {
    defaultPvc(*pvc);
  } else if (auto* pv = dynamic_cast<core::PersistentVolume*>(&object)) {
    // SetDefaults_PersistentVolume.
    auto* spec = pv->mutable_spec();
    if (!spec->has_persistent_volume_reclaim_policy())
      spec->set_persistent_volume_reclaim_policy("Retain");
    if (!spec->has_volume_mode()) spec->set_volume_mode("Filesystem");
    if (!pv->status().has_phase()) pv->mutable_status()->set_phase("Pending");
  } else if (auto* sc = dynamic_cast<api::storage::v1::StorageClass*>(&object)) {
    // SetDefaults_StorageClass.
    if (!sc->has_reclaim_policy()) sc->set_reclaim_policy("Delete");
    if (!sc->has_volume_binding_mode()) sc->set_volume_binding_mode("Immediate");
  } else if (auto* d = dynamic_cast<apps::Deployment*>(&object)) {
    defaultDeployment(*d);
  } else if (auto* rs = dynamic_cast<apps::ReplicaSet*>(&object)) {
    if (!rs->spec().has_replicas()) rs->mutable_spec()->set_replicas(1);
    defaultTemplate(*rs->mutable_spec()->mutable_template_());
  } else if (auto* ds = dynamic_cast<apps::DaemonSet*>(&object)) {
    defaultDaemonSet(*ds);
  } else if (auto* ss = dynamic_cast<apps::StatefulSet*>(&object)) {
    defaultStatefulSet(*ss);
  } else if (auto* job = dynamic_cast<batch::Job*>(&object)) {
    defaultJob(*job);
  }
}

void prepareForCreate(google::protobuf::Message& object) {
  if (auto* pod = dynamic_cast<core::Pod*>(&object)) {
    // PodStrategy.PrepareForCreate: a new pod's status is phase Pending and its QoS class.
    pod->clear_status();
    pod->mutable_status()->set_phase("Pending");
    try {
      pod->mutable_status()->set_qos_class(podQosClass(pod->spec()));
    } catch (const api::QuantityError&) {
      // a malformed quantity is validation's to report; no class then
    }
    auto* spec = pod->mutable_spec();
    // The Priority admission plugin: the built-in system classes' values, else priority 0 (no
    // PriorityClasses here), and the default preemption policy.
    if (!spec->has_priority()) {
      const std::string& cls = spec->priority_class_name();
      if (cls == "system-node-critical") {
        spec->set_priority(2000001000);
      } else if (cls == "system-cluster-critical") {
        spec->set_priority(2000000000);
      } else if (cls.empty()) {
        spec->set_priority(0);
      }
    }
    if (!spec->has_preemption_policy()) spec->set_preemption_policy("PreemptLowerPriority");
    return;
  }
  // The StorageObjectInUseProtection admission: claims and volumes carry the protection
  // finalizers that the pvc-protection and pv-protection controllers remove once they are unused.
  auto protect = [](api::meta::v1::ObjectMeta& meta, const char* finalizer) {
    const auto& list = meta.finalizers();
    if (std::find(list.begin(), list.end(), finalizer) == list.end())
      meta.add_finalizers(finalizer);
  };
  if (auto* pvc = dynamic_cast<core::PersistentVolumeClaim*>(&object)) {
    pvc->mutable_status()->set_phase("Pending");
    protect(*pvc->mutable_metadata(), "kubernetes.io/pvc-protection");
    return;
  }
  if (auto* pv = dynamic_cast<core::PersistentVolume*>(&object)) {
    pv->mutable_status()->set_phase("Pending");
    protect(*pv->mutable_metadata(), "kubernetes.io/pv-protection");
    return;
  }
  auto* job = dynamic_cast<batch::Job*>(&object);
  if (job == nullptr || job->spec().manual_selector()) return;
  const std::string& name = job->metadata().name();
  const std::string& uid = job->metadata().uid();
  auto& labels = *job->mutable_spec()->mutable_template_()->mutable_metadata()->mutable_labels();
  // A label the user set is kept; validation rejects it if it then does not match.
  for (const char* key : {"job-name", "batch.kubernetes.io/job-name"})
    labels.try_emplace(key, name);
  for (const char* key : {"controller-uid", "batch.kubernetes.io/controller-uid"})
    labels.try_emplace(key, uid);
  job->mutable_spec()->mutable_selector()->mutable_match_labels()->try_emplace(
      "batch.kubernetes.io/controller-uid", uid);
}

}  // namespace skiff::apiserver
