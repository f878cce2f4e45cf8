#include "kubelet/agent/pod_events.h"

#include "control/client/typed.h"
#include "kubelet/agent/time_util.h"

namespace skiff::kubelet {

PodEventRecorder::PodEventRecorder(client::Client& client, std::string node_name, size_t max_queued)
    : client_(client), node_name_(std::move(node_name)), max_queued_(max_queued) {
  thread_ = std::thread([this] { loop(); });
}

PodEventRecorder::~PodEventRecorder() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void PodEventRecorder::record(const api::core::v1::Pod& pod, const PodEvent& event) {
  const auto& meta = pod.metadata();
  api::core::v1::Event ev;
  auto* m = ev.mutable_metadata();
  m->set_generate_name(meta.name() + ".");
  m->set_namespace_(meta.namespace_().empty() ? "default" : meta.namespace_());
  auto* ref = ev.mutable_involved_object();
  ref->set_api_version("v1");
  ref->set_kind("Pod");
  ref->set_name(meta.name());
  ref->set_namespace_(m->namespace_());
  ref->set_uid(meta.uid());
  ref->set_resource_version(meta.resource_version());
  if (!event.field_path.empty()) ref->set_field_path(event.field_path);
  ev.set_type(event.type.empty() ? "Normal" : event.type);
  ev.set_reason(event.reason);
  ev.set_message(event.message);
  ev.mutable_source()->set_component("kubelet");
  ev.mutable_source()->set_host(node_name_);
  ev.set_reporting_component("kubelet");
  ev.set_reporting_instance(node_name_);
  api::Timestamp now = api::now();
  setTime(*ev.mutable_first_timestamp(), now);
  setTime(*ev.mutable_last_timestamp(), now);
  ev.set_count(1);
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= max_queued_) {
      ++dropped_;
      return;
    }
    queue_.push_back(std::move(ev));
  }
  cv_.notify_all();
}

void PodEventRecorder::flush() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return queue_.empty() && in_flight_ == 0; });
}

uint64_t PodEventRecorder::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

void PodEventRecorder::loop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty() && stopping_) return;
    api::core::v1::Event ev = std::move(queue_.front());
    queue_.pop_front();
    ++in_flight_;
    lock.unlock();
    bool sent = true;
    try {
      client::create(client_, ev);
    } catch (const std::exception&) {
      sent = false;
    }
    lock.lock();
    if (!sent) ++dropped_;
    --in_flight_;
    cv_.notify_all();
  }
}

}  // namespace skiff::kubelet
