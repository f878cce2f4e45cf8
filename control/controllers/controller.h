#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "control/client/client.h"
#include "control/client/event_recorder.h"
#include "control/client/informer.h"
#include "control/client/workqueue.h"
#include "control/controllers/controller_utils.h"

// The controller shell shared by every controller (ARCHITECTURE.md decision 7): informer handlers
// only enqueue keys; workers take keys from a WorkQueue, reconcile from the cache with a pure
// function, and turn its Actions into Client calls. Events go through the recorder every component
// shares (client::EventRecorder: client-go's correlator, so a repeat is counted into one Event and
// an object that says too much is held back by the spam filter).

namespace skiff::controllers {

// Runs Actions in order through a Client. An update or status update of an object written earlier
// in the same run is sent with the resourceVersion that write returned.
class ActionRunner {
 public:
  ActionRunner(client::Client& client, client::EventRecorder* events)
      : client_(client), events_(events) {}

  // Throws client::ApiError (or std::exception) from the failed call. Returns the answer (for
  // creates: the object with its generated name).
  api::Value run(const Action& action, const google::protobuf::Message* event_object = nullptr,
                 const api::ResourceType* event_type = nullptr);

 private:
  client::Client& client_;
  client::EventRecorder* events_;
  std::map<std::string, std::string> versions_;  // "kind/ns/name" -> resourceVersion
};

// A work queue with worker threads that call sync(key).
class QueueController {
 public:
  explicit QueueController(std::string name, client::WorkQueueOptions options = {});
  virtual ~QueueController();
  QueueController(const QueueController&) = delete;
  QueueController& operator=(const QueueController&) = delete;

  const std::string& name() const { return name_; }
  // Starts `workers` threads; returns at once. Call once the informers have synced.
  void start(int workers);
  // Shuts the queue down and joins the workers. Derived destructors must call it.
  void stop();
  void enqueue(const std::string& key) { queue_.add(key); }
  void enqueueAfter(const std::string& key, std::chrono::milliseconds delay) {
    queue_.addAfter(key, delay);
  }
  client::WorkQueue& queue() { return queue_; }
  // Handles every key waiting now on the calling thread (tests drive controllers this way).
  // Returns how many keys were handled.
  int drain();
  uint64_t syncs() const { return syncs_; }
  uint64_t errors() const { return errors_; }

 protected:
  // Reconciles one key. Throws to be retried with backoff; returns a delay to be looked at again.
  virtual std::optional<std::chrono::milliseconds> sync(const std::string& key) = 0;

 private:
  void handle(const std::string& key);
  void worker();

  std::string name_;
  client::WorkQueue queue_;
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> syncs_{0};
  std::atomic<uint64_t> errors_{0};
};

}  // namespace skiff::controllers
