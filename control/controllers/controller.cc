#include "control/controllers/controller.h"

#include <algorithm>
#include <cstdio>
#include <iterator>

#include "control/api/codec.h"
#include "control/controllers/garbage_collector.h"

namespace skiff::controllers {

// ---------------------------------------------------------------- EventRecorder

EventRecorder::EventRecorder(client::Client& client, std::string component, size_t max_queued,
                             EventSpamOptions spam)
    : client_(client), component_(std::move(component)), max_queued_(max_queued), spam_(spam) {
  thread_ = std::thread([this] { loop(); });
}

EventRecorder::~EventRecorder() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void EventRecorder::record(const api::ResourceType& type, const google::protobuf::Message& object,
                           std::string event_type, std::string reason, std::string message) {
  const auto& meta = metaOf(object);
  api::core::v1::Event ev;
  auto* m = ev.mutable_metadata();
  m->set_generate_name(meta.name() + ".");
  m->set_namespace_(meta.namespace_().empty() ? "default" : meta.namespace_());
  auto* ref = ev.mutable_involved_object();
  ref->set_api_version(type.apiVersion());
  ref->set_kind(type.kind);
  ref->set_name(meta.name());
  ref->set_namespace_(meta.namespace_());
  ref->set_uid(meta.uid());
  ref->set_resource_version(meta.resource_version());
  ev.set_reason(std::move(reason));
  ev.set_message(std::move(message));
  ev.set_type(std::move(event_type));
  ev.mutable_source()->set_component(component_);
  api::Timestamp now = api::now();
  setTime(*ev.mutable_first_timestamp(), api::Timestamp{now.seconds, 0});
  setTime(*ev.mutable_last_timestamp(), api::Timestamp{now.seconds, 0});
  ev.set_count(1);
  ev.set_reporting_component(component_);
  {
    std::lock_guard lock(mu_);
    if (!allow(component_ + "/" + type.apiVersion() + "/" + type.kind + "/" + meta.namespace_() +
               "/" + meta.name() + "/" + meta.uid())) {
      ++filtered_;
      return;
    }
    if (queue_.size() >= max_queued_) {
      ++dropped_;
      return;
    }
    queue_.push_back(std::move(ev));
  }
  cv_.notify_all();
}

bool EventRecorder::allow(const std::string& key) {
  const auto now = std::chrono::steady_clock::now();
  auto [it, fresh] = buckets_.try_emplace(key);
  Bucket& b = it->second;
  if (fresh) {
    b.tokens = spam_.burst;
    b.at = now;
    if (buckets_.size() > 4096) {
      // Forget full buckets (objects quiet for a while) so the map does not grow without end.
      const auto full_after = spam_.refill_every * spam_.burst;
      for (auto i = buckets_.begin(); i != buckets_.end();) {
        i = i != it && now - i->second.at > full_after ? buckets_.erase(i) : std::next(i);
      }
    }
  } else if (spam_.refill_every.count() > 0) {
    b.tokens = std::min<double>(
        spam_.burst, b.tokens + std::chrono::duration<double>(now - b.at) / spam_.refill_every);
    b.at = now;
  }
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

void EventRecorder::flush() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return queue_.empty() && in_flight_ == 0; });
}

void EventRecorder::loop() {
  const auto& type = typeOf<api::core::v1::Event>();
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty() && stopping_) return;
    api::core::v1::Event ev = std::move(queue_.front());
    queue_.pop_front();
    ++in_flight_;
    lock.unlock();
    try {
      client_.create(type, ev.metadata().namespace_(), api::encode(ev));
    } catch (const std::exception&) {
      ++dropped_;  // best effort, as client-go's recorder
    }
    lock.lock();
    --in_flight_;
    cv_.notify_all();
  }
}

// ---------------------------------------------------------------- ActionRunner

api::Value ActionRunner::run(const Action& action, const google::protobuf::Message* event_object,
                             const api::ResourceType* event_type) {
  const api::ResourceType& type = *action.type;
  std::string id = type.kind + "/" + action.ns + "/" + action.name;
  api::Value answer;
  switch (action.verb) {
    case Action::Verb::kCreate:
      answer = client_.create(type, action.ns, api::encode(*action.object));
      break;
    case Action::Verb::kUpdate:
    case Action::Verb::kUpdateStatus: {
      std::unique_ptr<google::protobuf::Message> copy(action.object->New());
      copy->CopyFrom(*action.object);
      auto it = versions_.find(id);
      if (it != versions_.end()) mutableMetaOf(*copy).set_resource_version(it->second);
      api::Value body = api::encode(*copy);
      answer = action.verb == Action::Verb::kUpdate ? client_.update(type, action.ns, body)
                                                    : client_.updateStatus(type, action.ns, body);
      if (const auto* meta = answer.find("metadata")) {
        if (const auto* rv = meta->find("resourceVersion"); rv != nullptr && rv->isString()) {
          versions_[id] = rv->text();
        }
      }
      break;
    }
    case Action::Verb::kDelete: {
      client::DeleteOptions options;
      options.propagation_policy = action.propagation_policy;
      options.precondition_uid = action.precondition_uid;
      answer = client_.remove(type, action.ns, action.name, options);
      break;
    }
  }
  if (events_ != nullptr && !action.event_reason.empty()) {
    std::string message = action.event_message;
    if (action.verb == Action::Verb::kCreate && action.name.empty()) {
      if (const auto* meta = answer.find("metadata")) {
        if (const auto* n = meta->find("name"); n != nullptr && n->isString()) message += n->text();
      }
    }
    if (event_object != nullptr && event_type != nullptr) {
      events_->record(*event_type, *event_object, "Normal", action.event_reason, message);
    }
  }
  return answer;
}

// ---------------------------------------------------------------- QueueController

QueueController::QueueController(std::string name, client::WorkQueueOptions options)
    : name_(std::move(name)), queue_(options) {}

QueueController::~QueueController() {
  stop();
}

void QueueController::start(int workers) {
  for (int i = 0; i < workers; ++i)
    workers_.emplace_back([this] { worker(); });
}

void QueueController::stop() {
  queue_.shutDown();
  for (auto& t : workers_) {
    if (t.joinable()) t.join();
  }
  workers_.clear();
}

void QueueController::handle(const std::string& key) {
  ++syncs_;
  try {
    auto again = sync(key);
    queue_.forget(key);
    if (again) queue_.addAfter(key, *again);
  } catch (const std::exception& e) {
    ++errors_;
    std::fprintf(stderr, "%s: syncing %s failed (retrying): %s\n", name_.c_str(), key.c_str(),
                 e.what());
    queue_.addRateLimited(key);
  }
  queue_.done(key);
}

void QueueController::worker() {
  while (auto key = queue_.get())
    handle(*key);
}

int QueueController::drain() {
  int n = 0;
  while (auto key = queue_.get(std::chrono::milliseconds(0))) {
    handle(*key);
    ++n;
  }
  return n;
}

}  // namespace skiff::controllers
