#pragma once

// Builders of the objects the reconciler tables are made of.

#include <map>
#include <string>

#include "control/api/codec.h"
#include "control/controllers/controller_utils.h"
#include "skiff/api/apps_v1.pb.h"
#include "skiff/api/core_v1.pb.h"

namespace skiff::controllers::testing {

inline constexpr api::Timestamp kNow{1'700'000'000, 0};

inline api::Timestamp ago(int64_t seconds) {
  return api::Timestamp{kNow.seconds - seconds, 0};
}

template <class T>
T fromYaml(const std::string& yaml) {
  T out;
  api::decodeYaml(yaml, out);
  return out;
}

struct PodSpec {
  std::string name;
  std::map<std::string, std::string> labels = {{"app", "web"}};
  std::string owner_uid;  // "" = orphan
  std::string owner_name = "owner";
  std::string phase = "Running";
  std::string node = "node-1";
  bool ready = true;
  int64_t ready_since = 100;  // seconds before kNow
  int64_t created = 200;      // seconds before kNow
  int restarts = 0;
  bool deleting = false;
};

inline api::core::v1::Pod makePod(const PodSpec& s) {
  api::core::v1::Pod pod;
  auto* m = pod.mutable_metadata();
  m->set_name(s.name);
  m->set_namespace_("default");
  m->set_uid("uid-" + s.name);
  setTime(*m->mutable_creation_timestamp(), ago(s.created));
  for (const auto& [k, v] : s.labels)
    (*m->mutable_labels())[k] = v;
  if (!s.owner_uid.empty()) {
    auto* ref = m->add_owner_references();
    ref->set_api_version("apps/v1");
    ref->set_kind("ReplicaSet");
    ref->set_name(s.owner_name);
    ref->set_uid(s.owner_uid);
    ref->set_controller(true);
  }
  if (s.deleting) setTime(*m->mutable_deletion_timestamp(), kNow);
  pod.mutable_spec()->set_node_name(s.node);
  pod.mutable_spec()->add_containers()->set_name("c");
  pod.mutable_status()->set_phase(s.phase);
  auto* c = pod.mutable_status()->add_conditions();
  c->set_type("Ready");
  c->set_status(s.ready ? "True" : "False");
  setTime(*c->mutable_last_transition_time(), ago(s.ready_since));
  if (s.restarts > 0) pod.mutable_status()->add_container_statuses()->set_restart_count(s.restarts);
  return pod;
}

inline api::apps::v1::ReplicaSet makeReplicaSet(int replicas, int min_ready = 0) {
  auto rs = fromYaml<api::apps::v1::ReplicaSet>(R"(
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web, namespace: default, uid: rs-uid, generation: 3}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web, tier: front}, annotations: {a: b}}
    spec: {containers: [{name: c, image: busybox}]}
)");
  rs.mutable_spec()->set_replicas(replicas);
  rs.mutable_spec()->set_min_ready_seconds(min_ready);
  return rs;
}

}  // namespace skiff::controllers::testing
