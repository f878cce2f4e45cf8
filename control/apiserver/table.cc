#include "control/apiserver/table.h"

#include <algorithm>
#include <functional>

#include "control/api/codec.h"
#include "control/api/selector.h"
#include "control/apiserver/object_meta.h"
#include "skiff/api/apps_v1.pb.h"
#include "skiff/api/batch_v1.pb.h"
#include "skiff/api/certificates_v1.pb.h"
#include "skiff/api/coordination_v1.pb.h"
#include "skiff/api/core_v1.pb.h"
#include "skiff/api/discovery_v1.pb.h"
#include "skiff/api/storage_v1.pb.h"

namespace skiff::apiserver {
namespace {

using api::Value;
using google::protobuf::Message;
namespace core = api::core::v1;
namespace apps = api::apps::v1;

struct Column {
  std::string name;
  std::string type;  // string, integer, date
  int priority = 0;  // 1: only with -o wide
  std::function<Value(const Message&, int64_t now)> cell;
};

Value str(std::string s) {
  return Value::string(std::move(s));
}
Value num(int64_t i) {
  return Value::integer(i);
}

std::string age(const Message& m, int64_t now) {
  const auto& meta_value = meta(m);
  if (!meta_value.has_creation_timestamp()) return "<unknown>";
  return humanDuration(now - meta_value.creation_timestamp().seconds());
}

Column nameColumn() {
  return {"Name", "string", 0, [](const Message& m, int64_t) { return str(meta(m).name()); }};
}
Column ageColumn() {
  return {"Age", "string", 0, [](const Message& m, int64_t now) { return str(age(m, now)); }};
}

std::string join(const std::vector<std::string>& parts, const std::string& sep = ",") {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

std::string orNone(const std::string& s) {
  return s.empty() ? "<none>" : s;
}

std::string containerNames(const core::PodSpec& spec) {
  std::vector<std::string> names;
  for (const auto& c : spec.containers())
    names.push_back(c.name());
  return join(names);
}
std::string containerImages(const core::PodSpec& spec) {
  std::vector<std::string> images;
  for (const auto& c : spec.containers())
    images.push_back(c.image());
  return join(images);
}
std::string selectorText(const api::meta::v1::LabelSelector& s) {
  try {
    return orNone(api::labels::Selector::fromProto(&s).toString());
  } catch (const std::exception&) {
    return "<error>";
  }
}

template <typename T>
const T& as(const Message& m) {
  return static_cast<const T&>(m);
}

// What `kubectl get pods` shows in STATUS: the phase, or a container's waiting or terminated
// reason, or Terminating.
std::string podStatus(const core::Pod& pod) {
  std::string reason = pod.status().reason().empty() ? pod.status().phase() : pod.status().reason();
  for (const auto& c : pod.status().container_statuses()) {
    if (c.state().has_waiting() && !c.state().waiting().reason().empty()) {
      reason = c.state().waiting().reason();
    } else if (c.state().has_terminated() && !c.state().terminated().reason().empty()) {
      reason = c.state().terminated().reason();
    }
  }
  if (pod.metadata().has_deletion_timestamp()) reason = "Terminating";
  return reason.empty() ? "Pending" : reason;
}

// kubectl's access-mode abbreviations (helper.GetAccessModesAsString), in Kubernetes' order.
std::string accessModes(const google::protobuf::RepeatedPtrField<std::string>& modes) {
  std::vector<std::string> out;
  auto has = [&](const char* m) { return std::find(modes.begin(), modes.end(), m) != modes.end(); };
  if (has("ReadWriteOnce")) out.emplace_back("RWO");
  if (has("ReadOnlyMany")) out.emplace_back("ROX");
  if (has("ReadWriteMany")) out.emplace_back("RWX");
  if (has("ReadWriteOncePod")) out.emplace_back("RWOP");
  return join(out);
}

std::string storageOf(const google::protobuf::Map<std::string, api::runtime::Quantity>& m) {
  auto it = m.find("storage");
  return it == m.end() ? "" : it->second.string();
}

std::string volumeModeOf(const std::string& mode) {
  return mode.empty() ? "<unset>" : mode;
}

std::vector<Column> columnsFor(const std::string& kind) {
  std::vector<Column> c;
  if (kind == "Pod") {
    c = {
        nameColumn(),
        {"Ready", "string", 0,
         [](const Message& m, int64_t) {
           const auto& p = as<core::Pod>(m);
           int ready = 0;
           for (const auto& s : p.status().container_statuses())
             ready += s.ready() ? 1 : 0;
           return str(std::to_string(ready) + "/" + std::to_string(p.spec().containers_size()));
         }},
        {"Status", "string", 0,
         [](const Message& m, int64_t) { return str(podStatus(as<core::Pod>(m))); }},
        {"Restarts", "string", 0,
         [](const Message& m, int64_t) {
           int restarts = 0;
           for (const auto& s : as<core::Pod>(m).status().container_statuses())
             restarts += s.restart_count();
           return str(std::to_string(restarts));
         }},
        ageColumn(),
        {"IP", "string", 1,
         [](const Message& m, int64_t) { return str(orNone(as<core::Pod>(m).status().pod_ip())); }},
        {"Node", "string", 1,
         [](const Message& m, int64_t) {
           return str(orNone(as<core::Pod>(m).spec().node_name()));
         }},
        {"Nominated Node", "string", 1,
         [](const Message& m, int64_t) {
           return str(orNone(as<core::Pod>(m).status().nominated_node_name()));
         }},
        {"Readiness Gates", "string", 1, [](const Message& m, int64_t) {
           return str(as<core::Pod>(m).spec().readiness_gates_size() == 0
                          ? "<none>"
                          : std::to_string(as<core::Pod>(m).spec().readiness_gates_size()));
         }}};
  } else if (kind == "Deployment") {
    c = {nameColumn(),
         {"Ready", "string", 0,
          [](const Message& m, int64_t) {
            const auto& d = as<apps::Deployment>(m);
            int desired = d.spec().has_replicas() ? d.spec().replicas() : 1;
            return str(std::to_string(d.status().ready_replicas()) + "/" + std::to_string(desired));
          }},
         {"Up-to-date", "integer", 0,
          [](const Message& m, int64_t) {
            return num(as<apps::Deployment>(m).status().updated_replicas());
          }},
         {"Available", "integer", 0,
          [](const Message& m, int64_t) {
            return num(as<apps::Deployment>(m).status().available_replicas());
          }},
         ageColumn(),
         {"Containers", "string", 1,
          [](const Message& m, int64_t) {
            return str(containerNames(as<apps::Deployment>(m).spec().template_().spec()));
          }},
         {"Images", "string", 1,
          [](const Message& m, int64_t) {
            return str(containerImages(as<apps::Deployment>(m).spec().template_().spec()));
          }},
         {"Selector", "string", 1, [](const Message& m, int64_t) {
            return str(selectorText(as<apps::Deployment>(m).spec().selector()));
          }}};
  } else if (kind == "ReplicaSet") {
    c = {nameColumn(),
         {"Desired", "integer", 0,
          [](const Message& m, int64_t) {
            const auto& r = as<apps::ReplicaSet>(m);
            return num(r.spec().has_replicas() ? r.spec().replicas() : 1);
          }},
         {"Current", "integer", 0,
          [](const Message& m, int64_t) {
            return num(as<apps::ReplicaSet>(m).status().replicas());
          }},
         {"Ready", "integer", 0,
          [](const Message& m, int64_t) {
            return num(as<apps::ReplicaSet>(m).status().ready_replicas());
          }},
         ageColumn(),
         {"Containers", "string", 1,
          [](const Message& m, int64_t) {
            return str(containerNames(as<apps::ReplicaSet>(m).spec().template_().spec()));
          }},
         {"Images", "string", 1,
          [](const Message& m, int64_t) {
            return str(containerImages(as<apps::ReplicaSet>(m).spec().template_().spec()));
          }},
         {"Selector", "string", 1, [](const Message& m, int64_t) {
            return str(selectorText(as<apps::ReplicaSet>(m).spec().selector()));
          }}};
  } else if (kind == "DaemonSet") {
    c = {nameColumn(),
         {"Desired", "integer", 0,
          [](const Message& m, int64_t) {
            return num(as<apps::DaemonSet>(m).status().desired_number_scheduled());
          }},
         {"Current", "integer", 0,
          [](const Message& m, int64_t) {
            return num(as<apps::DaemonSet>(m).status().current_number_scheduled());
          }},
         {"Ready", "integer", 0,
          [](const Message& m, int64_t) {
            return num(as<apps::DaemonSet>(m).status().number_ready());
          }},
         {"Up-to-date", "integer", 0,
          [](const Message& m, int64_t) {
            return num(as<apps::DaemonSet>(m).status().updated_number_scheduled());
          }},
         {"Available", "integer", 0,
          [](const Message& m, int64_t) {
            return num(as<apps::DaemonSet>(m).status().number_available());
          }},
         {"Node Selector", "string", 0,
          [](const Message& m, int64_t) {
            std::vector<std::string> parts;
            std::map<std::string, std::string> sorted(
                as<apps::DaemonSet>(m).spec().template_().spec().node_selector().begin(),
                as<apps::DaemonSet>(m).spec().template_().spec().node_selector().end());
            for (const auto& [k, v] : sorted)
              parts.push_back(k + "=" + v);
            return str(orNone(join(parts)));
          }},
         ageColumn(),
         {"Containers", "string", 1,
          [](const Message& m, int64_t) {
            return str(containerNames(as<apps::DaemonSet>(m).spec().template_().spec()));
          }},
         {"Images", "string", 1,
          [](const Message& m, int64_t) {
            return str(containerImages(as<apps::DaemonSet>(m).spec().template_().spec()));
          }},
         {"Selector", "string", 1, [](const Message& m, int64_t) {
            return str(selectorText(as<apps::DaemonSet>(m).spec().selector()));
          }}};
  } else if (kind == "StatefulSet") {
    c = {nameColumn(),
         {"Ready", "string", 0,
          [](const Message& m, int64_t) {
            const auto& s = as<apps::StatefulSet>(m);
            return str(std::to_string(s.status().ready_replicas()) + "/" +
                       std::to_string(s.spec().has_replicas() ? s.spec().replicas() : 1));
          }},
         ageColumn(),
         {"Containers", "string", 1,
          [](const Message& m, int64_t) {
            return str(containerNames(as<apps::StatefulSet>(m).spec().template_().spec()));
          }},
         {"Images", "string", 1, [](const Message& m, int64_t) {
            return str(containerImages(as<apps::StatefulSet>(m).spec().template_().spec()));
          }}};
  } else if (kind == "Job") {
    c = {
        nameColumn(),
        {"Status", "string", 0,
         [](const Message& m, int64_t) {
           const auto& j = as<api::batch::v1::Job>(m);
           std::string status = "Running";
           for (const auto& cond : j.status().conditions()) {
             if (cond.status() == "True" && (cond.type() == "Complete" || cond.type() == "Failed" ||
                                             cond.type() == "Suspended"))
               status = cond.type();
           }
           return str(status);
         }},
        {"Completions", "string", 0,
         [](const Message& m, int64_t) {
           const auto& j = as<api::batch::v1::Job>(m);
           return str(std::to_string(j.status().succeeded()) + "/" +
                      std::to_string(j.spec().has_completions() ? j.spec().completions() : 1));
         }},
        {"Duration", "string", 0,
         [](const Message& m, int64_t now) {
           const auto& j = as<api::batch::v1::Job>(m);
           if (!j.status().has_start_time()) return str("");
           int64_t end =
               j.status().has_completion_time() ? j.status().completion_time().seconds() : now;
           return str(humanDuration(end - j.status().start_time().seconds()));
         }},
        ageColumn(),
        {"Containers", "string", 1,
         [](const Message& m, int64_t) {
           return str(containerNames(as<api::batch::v1::Job>(m).spec().template_().spec()));
         }},
        {"Images", "string", 1,
         [](const Message& m, int64_t) {
           return str(containerImages(as<api::batch::v1::Job>(m).spec().template_().spec()));
         }},
        {"Selector", "string", 1, [](const Message& m, int64_t) {
           return str(selectorText(as<api::batch::v1::Job>(m).spec().selector()));
         }}};
  } else if (kind == "Service") {
    c = {nameColumn(),
         {"Type", "string", 0,
          [](const Message& m, int64_t) {
            const auto& s = as<core::Service>(m);
            return str(s.spec().type().empty() ? "ClusterIP" : s.spec().type());
          }},
         {"Cluster-IP", "string", 0,
          [](const Message& m, int64_t) {
            return str(orNone(as<core::Service>(m).spec().cluster_ip()));
          }},
         {"External-IP", "string", 0,
          [](const Message& m, int64_t) {
            const auto& s = as<core::Service>(m);
            std::vector<std::string> ips(s.spec().external_ips().begin(),
                                         s.spec().external_ips().end());
            for (const auto& i : s.status().load_balancer().ingress())
              ips.push_back(i.ip().empty() ? i.hostname() : i.ip());
            if (s.spec().type() == "ExternalName") return str(s.spec().external_name());
            if (ips.empty()) return str(s.spec().type() == "LoadBalancer" ? "<pending>" : "<none>");
            return str(join(ips));
          }},
         {"Port(s)", "string", 0,
          [](const Message& m, int64_t) {
            std::vector<std::string> ports;
            for (const auto& p : as<core::Service>(m).spec().ports()) {
              std::string text = std::to_string(p.port());
              if (p.node_port() != 0) text += ":" + std::to_string(p.node_port());
              ports.push_back(text + "/" + (p.protocol().empty() ? "TCP" : p.protocol()));
            }
            return str(orNone(join(ports)));
          }},
         ageColumn(),
         {"Selector", "string", 1, [](const Message& m, int64_t) {
            std::map<std::string, std::string> sorted(
                as<core::Service>(m).spec().selector().begin(),
                as<core::Service>(m).spec().selector().end());
            std::vector<std::string> parts;
            for (const auto& [k, v] : sorted)
              parts.push_back(k + "=" + v);
            return str(orNone(join(parts)));
          }}};
  } else if (kind == "Node") {
    c = {nameColumn(),
         {"Status", "string", 0,
          [](const Message& m, int64_t) {
            const auto& n = as<core::Node>(m);
            std::string status = "Unknown";
            for (const auto& cond : n.status().conditions()) {
              if (cond.type() == "Ready") status = cond.status() == "True" ? "Ready" : "NotReady";
            }
            if (n.spec().unschedulable()) status += ",SchedulingDisabled";
            return str(status);
          }},
         {"Roles", "string", 0,
          [](const Message& m, int64_t) {
            std::vector<std::string> roles;
            for (const auto& [k, v] : as<core::Node>(m).metadata().labels()) {
              if (k.starts_with("node-role.kubernetes.io/")) roles.push_back(k.substr(24));
            }
            std::sort(roles.begin(), roles.end());
            return str(orNone(join(roles)));
          }},
         ageColumn(),
         {"Version", "string", 0,
          [](const Message& m, int64_t) {
            return str(as<core::Node>(m).status().node_info().kubelet_version());
          }},
         {"Internal-IP", "string", 1,
          [](const Message& m, int64_t) {
            for (const auto& a : as<core::Node>(m).status().addresses())
              if (a.type() == "InternalIP") return str(a.address());
            return str("<none>");
          }},
         {"External-IP", "string", 1,
          [](const Message& m, int64_t) {
            for (const auto& a : as<core::Node>(m).status().addresses())
              if (a.type() == "ExternalIP") return str(a.address());
            return str("<none>");
          }},
         {"OS-Image", "string", 1,
          [](const Message& m, int64_t) {
            return str(as<core::Node>(m).status().node_info().os_image());
          }},
         {"Kernel-Version", "string", 1,
          [](const Message& m, int64_t) {
            return str(as<core::Node>(m).status().node_info().kernel_version());
          }},
         {"Container-Runtime", "string", 1, [](const Message& m, int64_t) {
            return str(as<core::Node>(m).status().node_info().container_runtime_version());
          }}};
  } else if (kind == "Namespace") {
    c = {nameColumn(),
         {"Status", "string", 0,
          [](const Message& m, int64_t) {
            const auto& n = as<core::Namespace>(m);
            return str(n.status().phase().empty() ? "Active" : n.status().phase());
          }},
         ageColumn()};
  } else if (kind == "ConfigMap") {
    c = {nameColumn(),
         {"Data", "integer", 0,
          [](const Message& m, int64_t) {
            const auto& cm = as<core::ConfigMap>(m);
            return num(cm.data_size() + cm.binary_data_size());
          }},
         ageColumn()};
  } else if (kind == "Secret") {
    c = {nameColumn(),
         {"Type", "string", 0,
          [](const Message& m, int64_t) { return str(as<core::Secret>(m).type()); }},
         {"Data", "integer", 0,
          [](const Message& m, int64_t) { return num(as<core::Secret>(m).data_size()); }},
         ageColumn()};
  } else if (kind == "Event") {
    c = {{"Last Seen", "string", 0,
          [](const Message& m, int64_t now) {
            const auto& e = as<core::Event>(m);
            int64_t t =
                e.has_last_timestamp() ? e.last_timestamp().seconds() : e.event_time().seconds();
            return str(t == 0 ? "<unknown>" : humanDuration(now - t));
          }},
         {"Type", "string", 0,
          [](const Message& m, int64_t) { return str(as<core::Event>(m).type()); }},
         {"Reason", "string", 0,
          [](const Message& m, int64_t) { return str(as<core::Event>(m).reason()); }},
         {"Object", "string", 0,
          [](const Message& m, int64_t) {
            const auto& o = as<core::Event>(m).involved_object();
            std::string kind_lower = o.kind();
            std::transform(kind_lower.begin(), kind_lower.end(), kind_lower.begin(),
                           [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
            return str(kind_lower + "/" + o.name());
          }},
         {"Message", "string", 0,
          [](const Message& m, int64_t) { return str(as<core::Event>(m).message()); }}};
  } else if (kind == "CertificateSigningRequest") {
    using api::certificates::v1::CertificateSigningRequest;
    c = {nameColumn(),
         ageColumn(),
         {"SignerName", "string", 0,
          [](const Message& m, int64_t) {
            return str(orNone(as<CertificateSigningRequest>(m).spec().signer_name()));
          }},
         {"Requestor", "string", 0,
          [](const Message& m, int64_t) {
            return str(as<CertificateSigningRequest>(m).spec().username());
          }},
         {"RequestedDuration", "string", 0,
          [](const Message& m, int64_t) {
            const auto& spec = as<CertificateSigningRequest>(m).spec();
            return str(spec.has_expiration_seconds() ? humanDuration(spec.expiration_seconds())
                                                     : "<none>");
          }},
         {"Condition", "string", 0, [](const Message& m, int64_t) {
            // kubectl's order of precedence: Denied, else Approved, else Pending; then Failed
            // and Issued.
            const auto& csr = as<CertificateSigningRequest>(m);
            bool approved = false, denied = false, failed = false;
            for (const auto& cond : csr.status().conditions()) {
              approved = approved || cond.type() == "Approved";
              denied = denied || cond.type() == "Denied";
              failed = failed || cond.type() == "Failed";
            }
            std::string status = denied ? "Denied" : approved ? "Approved" : "Pending";
            if (failed) status += ",Failed";
            if (!csr.status().certificate().empty()) status += ",Issued";
            return str(status);
          }}};
  } else if (kind == "EndpointSlice") {
    c = {nameColumn(),
         {"AddressType", "string", 0,
          [](const Message& m, int64_t) {
            return str(as<api::discovery::v1::EndpointSlice>(m).address_type());
          }},
         {"Ports", "string", 0,
          [](const Message& m, int64_t) {
            std::vector<std::string> ports;
            for (const auto& p : as<api::discovery::v1::EndpointSlice>(m).ports())
              ports.push_back(std::to_string(p.port()));
            return str(orNone(join(ports)));
          }},
         {"Endpoints", "string", 0,
          [](const Message& m, int64_t) {
            std::vector<std::string> addresses;
            for (const auto& e : as<api::discovery::v1::EndpointSlice>(m).endpoints()) {
              for (const auto& a : e.addresses())
                addresses.push_back(a);
            }
            if (addresses.size() > 3) {
              size_t more = addresses.size() - 3;
              addresses.resize(3);
              return str(join(addresses) + " + " + std::to_string(more) + " more...");
            }
            return str(orNone(join(addresses)));
          }},
         ageColumn()};
  } else if (kind == "Lease") {
    c = {nameColumn(),
         {"Holder", "string", 0,
          [](const Message& m, int64_t) {
            return str(as<api::coordination::v1::Lease>(m).spec().holder_identity());
          }},
         ageColumn()};
  } else if (kind == "PersistentVolume") {
    c = {
        nameColumn(),
        {"Capacity", "string", 0,
         [](const Message& m, int64_t) {
           return str(storageOf(as<core::PersistentVolume>(m).spec().capacity()));
         }},
        {"Access Modes", "string", 0,
         [](const Message& m, int64_t) {
           return str(accessModes(as<core::PersistentVolume>(m).spec().access_modes()));
         }},
        {"Reclaim Policy", "string", 0,
         [](const Message& m, int64_t) {
           return str(as<core::PersistentVolume>(m).spec().persistent_volume_reclaim_policy());
         }},
        {"Status", "string", 0,
         [](const Message& m, int64_t) {
           const auto& pv = as<core::PersistentVolume>(m);
           return str(pv.metadata().has_deletion_timestamp() ? "Terminating" : pv.status().phase());
         }},
        {"Claim", "string", 0,
         [](const Message& m, int64_t) {
           const auto& ref = as<core::PersistentVolume>(m).spec().claim_ref();
           return str(ref.name().empty() ? "" : ref.namespace_() + "/" + ref.name());
         }},
        {"StorageClass", "string", 0,
         [](const Message& m, int64_t) {
           return str(as<core::PersistentVolume>(m).spec().storage_class_name());
         }},
        {"VolumeAttributesClass", "string", 0,
         [](const Message& m, int64_t) {
           return str(
               volumeModeOf(as<core::PersistentVolume>(m).spec().volume_attributes_class_name()));
         }},
        {"Reason", "string", 0,
         [](const Message& m, int64_t) {
           return str(as<core::PersistentVolume>(m).status().reason());
         }},
        ageColumn(),
        {"VolumeMode", "string", 1, [](const Message& m, int64_t) {
           return str(volumeModeOf(as<core::PersistentVolume>(m).spec().volume_mode()));
         }}};
  } else if (kind == "PersistentVolumeClaim") {
    c = {nameColumn(),
         {"Status", "string", 0,
          [](const Message& m, int64_t) {
            const auto& pvc = as<core::PersistentVolumeClaim>(m);
            return str(pvc.metadata().has_deletion_timestamp() ? "Terminating"
                                                               : pvc.status().phase());
          }},
         {"Volume", "string", 0,
          [](const Message& m, int64_t) {
            return str(as<core::PersistentVolumeClaim>(m).spec().volume_name());
          }},
         {"Capacity", "string", 0,
          [](const Message& m, int64_t) {
            const auto& pvc = as<core::PersistentVolumeClaim>(m);
            return str(pvc.spec().volume_name().empty() ? "" : storageOf(pvc.status().capacity()));
          }},
         {"Access Modes", "string", 0,
          [](const Message& m, int64_t) {
            const auto& pvc = as<core::PersistentVolumeClaim>(m);
            return str(pvc.spec().volume_name().empty() ? ""
                                                        : accessModes(pvc.status().access_modes()));
          }},
         {"StorageClass", "string", 0,
          [](const Message& m, int64_t) {
            return str(as<core::PersistentVolumeClaim>(m).spec().storage_class_name());
          }},
         {"VolumeAttributesClass", "string", 0,
          [](const Message&, int64_t) { return str("<unset>"); }},
         ageColumn(),
         {"VolumeMode", "string", 1, [](const Message& m, int64_t) {
            return str(volumeModeOf(as<core::PersistentVolumeClaim>(m).spec().volume_mode()));
          }}};
  } else if (kind == "StorageClass") {
    c = {{"Name", "string", 0,
          [](const Message& m, int64_t) {
            const auto& sc = as<api::storage::v1::StorageClass>(m);
            const auto& annotations = sc.metadata().annotations();
            bool is_default = false;
            for (const char* key : {"storageclass.kubernetes.io/is-default-class",
                                    "storageclass.beta.kubernetes.io/is-default-class"}) {
              auto it = annotations.find(key);
              if (it != annotations.end() && it->second == "true") is_default = true;
            }
            return str(sc.metadata().name() + (is_default ? " (default)" : ""));
          }},
         {"Provisioner", "string", 0,
          [](const Message& m, int64_t) {
            return str(as<api::storage::v1::StorageClass>(m).provisioner());
          }},
         {"ReclaimPolicy", "string", 0,
          [](const Message& m, int64_t) {
            return str(as<api::storage::v1::StorageClass>(m).reclaim_policy());
          }},
         {"VolumeBindingMode", "string", 0,
          [](const Message& m, int64_t) {
            return str(as<api::storage::v1::StorageClass>(m).volume_binding_mode());
          }},
         {"AllowVolumeExpansion", "string", 0,
          [](const Message& m, int64_t) {
            return str(as<api::storage::v1::StorageClass>(m).allow_volume_expansion() ? "true"
                                                                                      : "false");
          }},
         ageColumn()};
  } else {
    c = {nameColumn(), ageColumn()};
  }
  return c;
}

}  // namespace

bool acceptsTable(std::string_view accept) {
  return accept.find("as=Table") != std::string_view::npos &&
         accept.find("g=meta.k8s.io") != std::string_view::npos &&
         accept.find("v=v1") != std::string_view::npos;
}

TableObjects parseIncludeObject(std::string_view value) {
  if (value == "None") return TableObjects::kNone;
  if (value == "Object") return TableObjects::kObject;
  return TableObjects::kMetadata;
}

std::string humanDuration(int64_t s) {
  if (s < -1) return "<invalid>";
  if (s < 0) return "0s";
  if (s < 120) return std::to_string(s) + "s";
  int64_t minutes = s / 60;
  if (minutes < 10) {
    int64_t sec = s % 60;
    return std::to_string(minutes) + "m" + (sec == 0 ? "" : std::to_string(sec) + "s");
  }
  if (minutes < 180) return std::to_string(minutes) + "m";
  int64_t hours = minutes / 60;
  if (hours < 8) {
    int64_t m = minutes % 60;
    return std::to_string(hours) + "h" + (m == 0 ? "" : std::to_string(m) + "m");
  }
  if (hours < 48) return std::to_string(hours) + "h";
  if (hours < 24 * 8) {
    int64_t h = hours % 24;
    return std::to_string(hours / 24) + "d" + (h == 0 ? "" : std::to_string(h) + "h");
  }
  if (hours < 24 * 365 * 2) return std::to_string(hours / 24) + "d";
  if (hours < 24 * 365 * 8) {
    int64_t dy = (hours / 24) % 365;
    return std::to_string(hours / 24 / 365) + "y" + (dy == 0 ? "" : std::to_string(dy) + "d");
  }
  return std::to_string(hours / 24 / 365) + "y";
}

Value makeTable(const api::ResourceType& type, const std::vector<const Message*>& objects,
                TableObjects include, const std::string& resource_version,
                const std::string& continue_token, int64_t now_seconds) {
  std::vector<Column> columns = columnsFor(type.kind);
  Value table = Value::object();
  table.append("kind", str("Table"));
  table.append("apiVersion", str("meta.k8s.io/v1"));
  Value list_meta = Value::object();
  if (!resource_version.empty()) list_meta.append("resourceVersion", str(resource_version));
  if (!continue_token.empty()) list_meta.append("continue", str(continue_token));
  table.append("metadata", std::move(list_meta));
  Value defs = Value::array();
  for (const auto& c : columns) {
    Value d = Value::object();
    d.append("name", str(c.name));
    d.append("type", str(c.type));
    d.append("format", str(c.name == "Name" ? "name" : ""));
    d.append("description", str(""));
    d.append("priority", num(c.priority));
    defs.push(std::move(d));
  }
  table.append("columnDefinitions", std::move(defs));
  Value rows = Value::array();
  for (const Message* object : objects) {
    Value row = Value::object();
    Value cells = Value::array();
    for (const auto& c : columns)
      cells.push(c.cell(*object, now_seconds));
    row.append("cells", std::move(cells));
    if (include == TableObjects::kObject) {
      row.append("object", api::encode(*object));
    } else if (include == TableObjects::kMetadata) {
      Value partial = Value::object();
      partial.append("kind", str("PartialObjectMetadata"));
      partial.append("apiVersion", str("meta.k8s.io/v1"));
      Value encoded = api::encode(meta(*object));
      partial.append("metadata", std::move(encoded));
      row.append("object", std::move(partial));
    }
    rows.push(std::move(row));
  }
  table.append("rows", std::move(rows));
  return table;
}

}  // namespace skiff::apiserver
