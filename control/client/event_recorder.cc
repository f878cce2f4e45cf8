#include "control/client/event_recorder.h"

#include <algorithm>
#include <cstdio>

#include "control/api/codec.h"
#include "control/api/json.h"
#include "control/api/time.h"
#include "control/client/typed.h"

namespace skiff::client {
namespace {

using Clock = std::chrono::system_clock;
constexpr std::string_view kCombinedPrefix = "(combined from similar events): ";

api::meta::v1::Time toTime(Clock::time_point t) {
  api::meta::v1::Time out;
  out.set_seconds(std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count());
  return out;
}

const api::meta::v1::ObjectMeta* metadataOf(const google::protobuf::Message& object) {
  const auto* field = object.GetDescriptor()->FindFieldByName("metadata");
  if (field == nullptr || field->type() != google::protobuf::FieldDescriptor::TYPE_MESSAGE) {
    return nullptr;
  }
  return dynamic_cast<const api::meta::v1::ObjectMeta*>(
      &object.GetReflection()->GetMessage(object, field));
}

std::string objectKey(const api::core::v1::Event& e) {
  const auto& o = e.involved_object();
  return e.source().component() + '\x1f' + e.source().host() + '\x1f' + o.kind() + '\x1f' +
         o.namespace_() + '\x1f' + o.name() + '\x1f' + o.uid() + '\x1f' + o.api_version();
}

// client-go's getSpamKey/aggregate key/event key, joined with a separator no field holds.
std::string aggregateKey(const api::core::v1::Event& e) {
  return objectKey(e) + '\x1f' + e.type() + '\x1f' + e.reason() + '\x1f' + e.reporting_component() +
         '\x1f' + e.reporting_instance();
}

}  // namespace

// ---------------------------------------------------------------- Lru

template <typename V>
V* EventRecorder::Lru<V>::find(const std::string& key) {
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  order_.splice(order_.begin(), order_, it->second);
  return &it->second->second;
}

template <typename V>
V& EventRecorder::Lru<V>::put(const std::string& key, V value) {
  if (V* existing = find(key)) {
    *existing = std::move(value);
    return *existing;
  }
  order_.emplace_front(key, std::move(value));
  index_[key] = order_.begin();
  if (order_.size() > capacity_) {
    index_.erase(order_.back().first);
    order_.pop_back();
  }
  return order_.front().second;
}

template <typename V>
void EventRecorder::Lru<V>::erase(const std::string& key) {
  auto it = index_.find(key);
  if (it == index_.end()) return;
  order_.erase(it->second);
  index_.erase(it);
}

// ---------------------------------------------------------------- EventRecorder

EventRecorder::EventRecorder(Client& client, EventSource source, EventRecorderOptions options)
    : client_(client),
      source_(std::move(source)),
      options_(std::move(options)),
      written_(options_.cache_size),
      aggregates_(options_.cache_size),
      buckets_(options_.cache_size) {
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

Clock::time_point EventRecorder::now() const {
  return options_.clock ? options_.clock() : Clock::now();
}

void EventRecorder::record(const api::ResourceType& type, const google::protobuf::Message& object,
                           std::string_view event_type, std::string_view reason,
                           std::string_view message, std::string_view action) {
  api::core::v1::ObjectReference ref;
  ref.set_api_version(type.apiVersion());
  ref.set_kind(type.kind);
  if (const auto* meta = metadataOf(object)) {
    ref.set_name(meta->name());
    ref.set_namespace_(meta->namespace_());
    ref.set_uid(meta->uid());
    ref.set_resource_version(meta->resource_version());
  }
  record(ref, event_type, reason, message, action);
}

void EventRecorder::record(const api::core::v1::ObjectReference& involved,
                           std::string_view event_type, std::string_view reason,
                           std::string_view message, std::string_view action) {
  api::core::v1::Event ev;
  *ev.mutable_involved_object() = involved;
  ev.mutable_metadata()->set_namespace_(involved.namespace_().empty() ? "default"
                                                                      : involved.namespace_());
  ev.set_type(std::string(event_type));
  ev.set_reason(std::string(reason));
  ev.set_message(std::string(message));
  if (!action.empty()) ev.set_action(std::string(action));
  ev.mutable_source()->set_component(source_.component);
  if (!source_.host.empty()) ev.mutable_source()->set_host(source_.host);
  ev.set_reporting_component(source_.component);
  ev.set_reporting_instance(source_.instance.empty() ? source_.host : source_.instance);
  const auto t = toTime(now());
  *ev.mutable_first_timestamp() = t;
  *ev.mutable_last_timestamp() = t;
  ev.set_count(1);
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= options_.max_queued) {
      ++stats_.dropped;
      return;
    }
    queue_.push_back(std::move(ev));
  }
  cv_.notify_all();
}

void EventRecorder::flush() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return queue_.empty() && in_flight_ == 0; });
}

EventRecorder::Stats EventRecorder::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void EventRecorder::loop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty() && stopping_) return;
    api::core::v1::Event ev = std::move(queue_.front());
    queue_.pop_front();
    ++in_flight_;
    lock.unlock();
    send(std::move(ev));
    lock.lock();
    --in_flight_;
    cv_.notify_all();
  }
}

bool EventRecorder::allowedBySpamFilter(const api::core::v1::Event& event) {
  const auto t = now();
  const std::string key = objectKey(event);
  Bucket* bucket = buckets_.find(key);
  if (bucket == nullptr) {
    bucket = &buckets_.put(key, Bucket{static_cast<double>(options_.spam_burst), t});
  } else {
    const double refill = std::chrono::duration<double>(t - bucket->refilled).count() /
                          std::chrono::duration<double>(options_.spam_refill_interval).count();
    bucket->tokens = std::min(static_cast<double>(options_.spam_burst), bucket->tokens + refill);
    bucket->refilled = t;
  }
  if (bucket->tokens < 1) return false;
  bucket->tokens -= 1;
  return true;
}

void EventRecorder::send(api::core::v1::Event ev) {
  if (!allowedBySpamFilter(ev)) {
    std::lock_guard lock(mu_);
    ++stats_.filtered;
    return;
  }
  const auto t = now();

  // Aggregation: past the limit of distinct messages, similar events share one Event.
  const std::string agg_key = aggregateKey(ev);
  Aggregate* agg = aggregates_.find(agg_key);
  if (agg == nullptr || t - agg->last > options_.aggregate_interval) {
    agg = &aggregates_.put(agg_key, Aggregate{});
  }
  // Bounded: past the limit every message is combined, so more need not be remembered.
  if (agg->messages.size() < options_.aggregate_max_events) agg->messages.insert(ev.message());
  agg->last = t;
  std::string dedupe_key;
  if (agg->messages.size() >= options_.aggregate_max_events) {
    ev.set_message(std::string(kCombinedPrefix) + ev.message());
    dedupe_key = agg_key;
  } else {
    dedupe_key = agg_key + '\x1f' + ev.message();
  }

  const auto& type = resourceTypeOf<api::core::v1::Event>();
  if (Written* prior = written_.find(dedupe_key)) {
    // A repeat: count it into the Event already written.
    const int32_t count = prior->count + 1;
    api::Value body = api::Value::object();
    body.set("count", api::Value::integer(count));
    body.set("lastTimestamp", api::Value::string(api::formatRfc3339({toTime(t).seconds(), 0})));
    body.set("message", api::Value::string(ev.message()));
    try {
      client_.patch(type, prior->ns, prior->name, PatchType::kStrategicMerge, api::writeJson(body));
      prior->count = count;
      std::lock_guard lock(mu_);
      ++stats_.patched;
      return;
    } catch (const ApiError& e) {
      if (!e.isNotFound()) {
        std::lock_guard lock(mu_);
        ++stats_.dropped;
        return;
      }
      // Gone (expired by its TTL, or deleted): write it anew with the count so far.
      ev.set_count(count);
      *ev.mutable_first_timestamp() = prior->first_timestamp;
    }
  }

  const auto nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  char suffix[24];
  std::snprintf(suffix, sizeof(suffix), ".%llx", static_cast<unsigned long long>(nanos));
  ev.mutable_metadata()->set_name(ev.involved_object().name() + suffix);
  try {
    client_.create(type, ev.metadata().namespace_(), api::encode(ev));
  } catch (const ApiError&) {
    std::lock_guard lock(mu_);
    ++stats_.dropped;
    return;
  }
  written_.put(dedupe_key, Written{ev.metadata().name(), ev.metadata().namespace_(), ev.count(),
                                   ev.first_timestamp()});
  std::lock_guard lock(mu_);
  ++stats_.created;
}

}  // namespace skiff::client
