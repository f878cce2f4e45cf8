#include "control/controllers/controller.h"

#include <algorithm>
#include <cstdio>
#include <iterator>

#include "control/api/codec.h"
#include "control/controllers/garbage_collector.h"

namespace skiff::controllers {

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
