#pragma once

#include <map>
#include <memory>
#include <string>

#include "control/api/quantity.h"
#include "scheduler/node_info.h"

// Small builders for the Pods and Nodes of scheduler tests.

namespace skiff::scheduler::testing {

inline api::runtime::Quantity q(const std::string& text) {
  return api::Quantity::mustParse(text).toProto();
}

class NodeBuilder {
 public:
  explicit NodeBuilder(const std::string& name) {
    node_.mutable_metadata()->set_name(name);
    (*node_.mutable_metadata()->mutable_labels())["kubernetes.io/hostname"] = name;
    capacity("4", "8Gi", "110");
  }
  NodeBuilder& capacity(const std::string& cpu, const std::string& memory,
                        const std::string& pods = "110") {
    for (auto* map : {node_.mutable_status()->mutable_capacity(),
                      node_.mutable_status()->mutable_allocatable()}) {
      (*map)["cpu"] = q(cpu);
      (*map)["memory"] = q(memory);
      (*map)["pods"] = q(pods);
    }
    return *this;
  }
  NodeBuilder& allocatable(const std::string& name, const std::string& value) {
    (*node_.mutable_status()->mutable_allocatable())[name] = q(value);
    return *this;
  }
  NodeBuilder& label(const std::string& k, const std::string& v) {
    (*node_.mutable_metadata()->mutable_labels())[k] = v;
    return *this;
  }
  NodeBuilder& taint(const std::string& k, const std::string& v, const std::string& effect) {
    auto* t = node_.mutable_spec()->add_taints();
    t->set_key(k);
    t->set_value(v);
    t->set_effect(effect);
    return *this;
  }
  NodeBuilder& unschedulable() {
    node_.mutable_spec()->set_unschedulable(true);
    return *this;
  }
  NodeBuilder& image(const std::string& name, int64_t size) {
    auto* i = node_.mutable_status()->add_images();
    i->add_names(name);
    i->set_size_bytes(size);
    return *this;
  }
  Node build() const { return node_; }
  NodePtr ptr() const { return std::make_shared<Node>(node_); }

 private:
  Node node_;
};

class PodBuilder {
 public:
  explicit PodBuilder(const std::string& name, const std::string& ns = "default") {
    pod_.mutable_metadata()->set_name(name);
    pod_.mutable_metadata()->set_namespace_(ns);
    pod_.mutable_metadata()->set_uid("uid-" + name);
    pod_.mutable_spec()->set_scheduler_name("default-scheduler");
    pod_.mutable_spec()->add_containers()->set_name("c");
  }
  PodBuilder& req(const std::string& cpu, const std::string& memory = "") {
    auto* r = pod_.mutable_spec()->mutable_containers(0)->mutable_resources()->mutable_requests();
    if (!cpu.empty()) (*r)["cpu"] = q(cpu);
    if (!memory.empty()) (*r)["memory"] = q(memory);
    return *this;
  }
  PodBuilder& request(const std::string& name, const std::string& value) {
    auto* r = pod_.mutable_spec()->mutable_containers(0)->mutable_resources()->mutable_requests();
    (*r)[name] = q(value);
    return *this;
  }
  PodBuilder& container(const std::string& cpu, const std::string& memory) {
    auto* c = pod_.mutable_spec()->add_containers();
    c->set_name("c" + std::to_string(pod_.spec().containers_size()));
    (*c->mutable_resources()->mutable_requests())["cpu"] = q(cpu);
    (*c->mutable_resources()->mutable_requests())["memory"] = q(memory);
    return *this;
  }
  PodBuilder& init(const std::string& cpu, const std::string& memory, bool sidecar = false) {
    auto* c = pod_.mutable_spec()->add_init_containers();
    c->set_name("i" + std::to_string(pod_.spec().init_containers_size()));
    (*c->mutable_resources()->mutable_requests())["cpu"] = q(cpu);
    (*c->mutable_resources()->mutable_requests())["memory"] = q(memory);
    if (sidecar) c->set_restart_policy("Always");
    return *this;
  }
  PodBuilder& overhead(const std::string& cpu, const std::string& memory) {
    (*pod_.mutable_spec()->mutable_overhead())["cpu"] = q(cpu);
    (*pod_.mutable_spec()->mutable_overhead())["memory"] = q(memory);
    return *this;
  }
  PodBuilder& label(const std::string& k, const std::string& v) {
    (*pod_.mutable_metadata()->mutable_labels())[k] = v;
    return *this;
  }
  PodBuilder& node(const std::string& name) {
    pod_.mutable_spec()->set_node_name(name);
    return *this;
  }
  PodBuilder& nodeSelector(const std::string& k, const std::string& v) {
    (*pod_.mutable_spec()->mutable_node_selector())[k] = v;
    return *this;
  }
  PodBuilder& toleration(const std::string& key, const std::string& op, const std::string& value,
                         const std::string& effect) {
    auto* t = pod_.mutable_spec()->add_tolerations();
    t->set_key(key);
    t->set_operator_(op);
    t->set_value(value);
    t->set_effect(effect);
    return *this;
  }
  PodBuilder& hostPort(int32_t port, const std::string& protocol = "TCP",
                       const std::string& ip = "") {
    auto* p = pod_.mutable_spec()->mutable_containers(0)->add_ports();
    p->set_container_port(port);
    p->set_host_port(port);
    p->set_protocol(protocol);
    if (!ip.empty()) p->set_host_ip(ip);
    return *this;
  }
  PodBuilder& priority(int32_t p) {
    pod_.mutable_spec()->set_priority(p);
    return *this;
  }
  PodBuilder& antiAffinity(const std::string& k, const std::string& v,
                           const std::string& topology = "kubernetes.io/hostname") {
    auto* t = pod_.mutable_spec()
                  ->mutable_affinity()
                  ->mutable_pod_anti_affinity()
                  ->add_required_during_scheduling_ignored_during_execution();
    (*t->mutable_label_selector()->mutable_match_labels())[k] = v;
    t->set_topology_key(topology);
    return *this;
  }
  PodBuilder& affinity(const std::string& k, const std::string& v,
                       const std::string& topology = "kubernetes.io/hostname") {
    auto* t = pod_.mutable_spec()
                  ->mutable_affinity()
                  ->mutable_pod_affinity()
                  ->add_required_during_scheduling_ignored_during_execution();
    (*t->mutable_label_selector()->mutable_match_labels())[k] = v;
    t->set_topology_key(topology);
    return *this;
  }
  PodBuilder& spread(int32_t max_skew, const std::string& topology_key, const std::string& when,
                     const std::string& k, const std::string& v) {
    auto* c = pod_.mutable_spec()->add_topology_spread_constraints();
    c->set_max_skew(max_skew);
    c->set_topology_key(topology_key);
    c->set_when_unsatisfiable(when);
    (*c->mutable_label_selector()->mutable_match_labels())[k] = v;
    return *this;
  }
  Pod& mut() { return pod_; }
  Pod build() const { return pod_; }
  PodPtr ptr() const { return std::make_shared<Pod>(pod_); }

 private:
  Pod pod_;
};

}  // namespace skiff::scheduler::testing
