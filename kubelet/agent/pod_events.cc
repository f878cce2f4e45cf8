#include "kubelet/agent/pod_events.h"

namespace skiff::kubelet {

PodEventRecorder::PodEventRecorder(client::Client& client, std::string node_name, size_t max_queued)
    : node_name_(node_name),
      recorder_(
          client,
          client::EventSource{.component = "kubelet", .host = node_name, .instance = node_name},
          client::EventRecorderOptions{.max_queued = max_queued}) {}

void PodEventRecorder::record(const api::core::v1::Pod& pod, const PodEvent& event) {
  const auto& meta = pod.metadata();
  api::core::v1::ObjectReference ref;
  ref.set_api_version("v1");
  ref.set_kind("Pod");
  ref.set_name(meta.name());
  ref.set_namespace_(meta.namespace_().empty() ? "default" : meta.namespace_());
  ref.set_uid(meta.uid());
  ref.set_resource_version(meta.resource_version());
  if (!event.field_path.empty()) ref.set_field_path(event.field_path);
  recorder_.record(ref, event.type.empty() ? "Normal" : event.type, event.reason, event.message);
}

void PodEventRecorder::recordNode(const std::string& type, const std::string& reason,
                                  const std::string& message) {
  api::core::v1::ObjectReference ref;
  ref.set_kind("Node");
  ref.set_name(node_name_);
  ref.set_uid(node_name_);
  recorder_.record(ref, type, reason, message);
}

void PodEventRecorder::flush() {
  recorder_.flush();
}

uint64_t PodEventRecorder::dropped() const {
  const auto stats = recorder_.stats();
  return stats.dropped + stats.filtered;
}

}  // namespace skiff::kubelet
