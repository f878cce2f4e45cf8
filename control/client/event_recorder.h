#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include <google/protobuf/message.h>

#include "control/api/registry.h"
#include "control/client/client.h"
#include "skiff/api/core_v1.pb.h"

// Records core/v1 Events about objects for any component, as client-go's event recorder does:
// off the caller's thread (a full queue drops, events are best effort), with its correlator so
// that a component repeating itself does not flood the store:
// - dedupe: the same event again (same source, object, type, reason and message) PATCHes the
//   count and lastTimestamp of the Event already written ("x5 over 2m" in kubectl describe);
// - aggregation: more than `aggregate_max_events` events that differ only in their message within
//   `aggregate_interval` become one Event "(combined from similar events): <latest message>";
// - spam filter: a token bucket per (source, object) (burst 25, one token per 5 minutes) drops
//   the rest.

namespace skiff::client {

struct EventSource {
  std::string component;  // "default-scheduler", "kubelet", "deployment-controller"
  std::string host;       // the node, for the kubelet
  std::string instance;   // reportingInstance
};

struct EventRecorderOptions {
  size_t max_queued = 1000;
  size_t cache_size = 4096;  // LRU entries of each correlator cache, as client-go
  std::chrono::seconds aggregate_interval{600};
  size_t aggregate_max_events = 10;
  size_t spam_burst = 25;
  std::chrono::seconds spam_refill_interval{300};
  // The clock (tests move it); defaults to the system clock.
  std::function<std::chrono::system_clock::time_point()> clock;
};

class EventRecorder {
 public:
  EventRecorder(Client& client, EventSource source, EventRecorderOptions options = {});
  ~EventRecorder();
  EventRecorder(const EventRecorder&) = delete;
  EventRecorder& operator=(const EventRecorder&) = delete;

  // An event about `object` (a typed API object of kind `type`). `event_type` is "Normal" or
  // "Warning"; `action` is the optional series action ("Binding", "Scheduling").
  void record(const api::ResourceType& type, const google::protobuf::Message& object,
              std::string_view event_type, std::string_view reason, std::string_view message,
              std::string_view action = {});
  void record(const api::core::v1::ObjectReference& involved, std::string_view event_type,
              std::string_view reason, std::string_view message, std::string_view action = {});

  // Waits until every queued event was sent or dropped (tests, shutdown).
  void flush();

  struct Stats {
    uint64_t created = 0;   // new Event objects
    uint64_t patched = 0;   // repeats counted into an existing Event
    uint64_t filtered = 0;  // refused by the spam filter
    uint64_t dropped = 0;   // full queue or a failed write
  };
  Stats stats() const;

 private:
  // What the dedupe cache keeps per Event written.
  struct Written {
    std::string name;
    std::string ns;
    int32_t count = 0;
    api::meta::v1::Time first_timestamp;
  };
  struct Aggregate {
    std::set<std::string> messages;
    std::chrono::system_clock::time_point last;
  };
  struct Bucket {
    double tokens = 0;
    std::chrono::system_clock::time_point refilled;
  };
  // A small LRU map, the shape of client-go's golang-lru use.
  template <typename V>
  class Lru {
   public:
    explicit Lru(size_t capacity) : capacity_(capacity) {}
    V* find(const std::string& key);
    V& put(const std::string& key, V value);
    void erase(const std::string& key);

   private:
    size_t capacity_;
    std::list<std::pair<std::string, V>> order_;  // most recent first
    std::unordered_map<std::string, typename std::list<std::pair<std::string, V>>::iterator> index_;
  };

  void loop();
  void send(api::core::v1::Event event);
  bool allowedBySpamFilter(const api::core::v1::Event& event);
  std::chrono::system_clock::time_point now() const;

  Client& client_;
  const EventSource source_;
  const EventRecorderOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<api::core::v1::Event> queue_;
  bool stopping_ = false;
  int in_flight_ = 0;
  Stats stats_;
  // Used by the sender thread only.
  Lru<Written> written_;
  Lru<Aggregate> aggregates_;
  Lru<Bucket> buckets_;
  std::thread thread_;
};

}  // namespace skiff::client
