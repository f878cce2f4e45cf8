#include "endpoints/endpointslice_controller.h"

#include <set>

#include <google/protobuf/util/message_differencer.h>

#include "control/api/selector.h"
#include "control/client/typed.h"
#include "endpoints/change_tracker.h"

namespace skiff::endpoints {
namespace {

using google::protobuf::util::MessageDifferencer;

int64_t versionOf(const std::string& resourceVersion) {
  try {
    return resourceVersion.empty() ? 0 : std::stoll(resourceVersion);
  } catch (const std::exception&) {
    return 0;
  }
}

std::string sliceKey(const discovery::EndpointSlice& slice) {
  return slice.metadata().namespace_() + "/" + slice.metadata().name();
}

// The parts of a pod that its endpoints depend on (podEndpointsChanged and the label match).
bool podChangedForEndpoints(const core::Pod& a, const core::Pod& b) {
  return !MessageDifferencer::Equals(a.status(), b.status()) ||
         a.metadata().has_deletion_timestamp() != b.metadata().has_deletion_timestamp() ||
         !MessageDifferencer::Equals(a.spec(), b.spec()) ||
         a.metadata().labels().size() != b.metadata().labels().size() || [&] {
           for (const auto& [k, v] : a.metadata().labels()) {
             auto it = b.metadata().labels().find(k);
             if (it == b.metadata().labels().end() || it->second != v) return true;
           }
           return false;
         }();
}

std::string selectorText(const google::protobuf::Map<std::string, std::string>& selector) {
  std::map<std::string, std::string> sorted(selector.begin(), selector.end());
  std::string out;
  for (const auto& [k, v] : sorted) {
    if (!out.empty()) out += ",";
    out += k + "=" + v;
  }
  return out;
}

}  // namespace

EndpointSliceController::EndpointSliceController(client::Client& client,
                                                 client::SharedInformerFactory& informers,
                                                 EndpointSliceControllerOptions options)
    : client_(client),
      options_(std::move(options)),
      services_(informers.informerFor<core::Service>()),
      pods_(informers.informerFor<core::Pod>()),
      slices_(informers.informerFor<discovery::EndpointSlice>()),
      nodes_(informers.informerFor<core::Node>()),
      queue_(options_.queue) {
  services_.addEventHandler({
      .on_add = [this](const client::ObjectPtr& o) { queue_.add(client::objectKey(*o)); },
      .on_update = [this](const client::ObjectPtr&,
                          const client::ObjectPtr& o) { queue_.add(client::objectKey(*o)); },
      .on_delete = [this](const client::ObjectPtr& o) { queue_.add(client::objectKey(*o)); },
  });
  pods_.addEventHandler({
      .on_add =
          [this](const client::ObjectPtr& o) {
            enqueueServicesOfPod(client::as<core::Pod>(o), options_.podBatchPeriod);
          },
      .on_update =
          [this](const client::ObjectPtr& old, const client::ObjectPtr& now) {
            const auto& a = client::as<core::Pod>(old);
            const auto& b = client::as<core::Pod>(now);
            if (old != now && !podChangedForEndpoints(a, b)) return;
            enqueueServicesOfPod(a, options_.podBatchPeriod);
            enqueueServicesOfPod(b, options_.podBatchPeriod);
          },
      .on_delete =
          [this](const client::ObjectPtr& o) {
            enqueueServicesOfPod(client::as<core::Pod>(o), options_.podBatchPeriod);
          },
  });
  slices_.addEventHandler({
      .on_add =
          [this](const client::ObjectPtr& o) {
            onSliceEvent(client::as<discovery::EndpointSlice>(o), false);
          },
      .on_update =
          [this](const client::ObjectPtr&, const client::ObjectPtr& o) {
            onSliceEvent(client::as<discovery::EndpointSlice>(o), false);
          },
      .on_delete =
          [this](const client::ObjectPtr& o) {
            onSliceEvent(client::as<discovery::EndpointSlice>(o), true);
          },
  });
  // A node that appears (pods on it were skipped), goes, or changes zone: its pods' services.
  auto nodeChanged = [this](const core::Node& node) {
    for (const auto& pod : pods_.cache().byIndex(client::kIndexNodeName, node.metadata().name()))
      enqueueServicesOfPod(client::as<core::Pod>(pod), options_.podBatchPeriod);
  };
  nodes_.addEventHandler({
      .on_add =
          [nodeChanged](const client::ObjectPtr& o) { nodeChanged(client::as<core::Node>(o)); },
      .on_update =
          [nodeChanged](const client::ObjectPtr& old, const client::ObjectPtr& now) {
            const auto& a = client::as<core::Node>(old).metadata().labels();
            const auto& b = client::as<core::Node>(now).metadata().labels();
            const std::string zone(kLabelTopologyZone);
            auto za = a.find(zone);
            auto zb = b.find(zone);
            const std::string va = za == a.end() ? "" : za->second;
            const std::string vb = zb == b.end() ? "" : zb->second;
            if (va != vb) nodeChanged(client::as<core::Node>(now));
          },
      .on_delete =
          [nodeChanged](const client::ObjectPtr& o) { nodeChanged(client::as<core::Node>(o)); },
  });
}

EndpointSliceController::~EndpointSliceController() {
  stop();
}

void EndpointSliceController::enqueueServicesOfPod(const core::Pod& pod,
                                                   std::chrono::milliseconds delay) {
  for (const auto& object : services_.cache().list(pod.metadata().namespace_(), "")) {
    const auto& service = client::as<core::Service>(object);
    if (service.spec().selector().empty()) continue;
    if (api::labels::Selector::fromSet(service.spec().selector()).matches(pod.metadata().labels()))
      queue_.addAfter(client::objectKey(service), delay);
  }
}

void EndpointSliceController::onSliceEvent(const discovery::EndpointSlice& slice, bool deleted) {
  auto managed = slice.metadata().labels().find(std::string(kLabelManagedBy));
  if (managed == slice.metadata().labels().end() ||
      managed->second != options_.reconciler.controllerName) {
    return;
  }
  const std::string service = serviceKeyOf(slice);
  if (service.empty()) return;
  {
    // Our own write coming back: nothing to do.
    std::lock_guard lock(mutex_);
    auto per = written_.find(service);
    if (per != written_.end()) {
      auto it = per->second.find(sliceKey(slice));
      if (it != per->second.end()) {
        if (deleted) {
          // Ours, or someone else's delete of a slice we wrote: either way the record goes.
          const bool ours = it->second.resourceVersion == 0;
          per->second.erase(it);
          if (ours) return;
        }
        if (!deleted && it->second.resourceVersion != 0 &&
            versionOf(slice.metadata().resource_version()) <= it->second.resourceVersion) {
          return;
        }
      }
    }
  }
  queue_.add(service);
}

bool EndpointSliceController::cacheCaughtUp(
    const std::string& key, const std::vector<const discovery::EndpointSlice*>& slices) {
  std::lock_guard lock(mutex_);
  auto per = written_.find(key);
  if (per == written_.end()) return true;
  std::map<std::string, int64_t> cached;
  for (const auto* s : slices)
    cached[sliceKey(*s)] = versionOf(s->metadata().resource_version());
  for (auto it = per->second.begin(); it != per->second.end();) {
    auto c = cached.find(it->first);
    if (it->second.resourceVersion == 0) {
      if (c != cached.end()) return false;  // our delete has not arrived yet
      it = per->second.erase(it);
      continue;
    }
    if (c == cached.end() || c->second < it->second.resourceVersion) return false;
    ++it;
  }
  return true;
}

bool EndpointSliceController::syncService(const std::string& key) {
  ++syncs_;
  auto [ns, name] = client::splitObjectKey(key);
  client::ObjectPtr object = services_.cache().get(ns, name);
  const std::string managedSelector = std::string(kLabelServiceName) + "=" + name + "," +
                                      std::string(kLabelManagedBy) + "=" +
                                      options_.reconciler.controllerName;
  if (!object) {
    // The service is gone: its slices go too (the garbage collector would, through the owner
    // references; doing it here does not depend on one running).
    triggerTimes_.forget(key);
    for (const auto& s : slices_.cache().list(ns, managedSelector)) {
      const auto& slice = client::as<discovery::EndpointSlice>(s);
      try {
        client::remove<discovery::EndpointSlice>(client_, ns, slice.metadata().name());
        ++writes_;
      } catch (const client::ApiError& e) {
        if (!e.isNotFound()) throw;
      }
    }
    std::lock_guard lock(mutex_);
    written_.erase(key);
    return true;
  }
  const auto& service = client::as<core::Service>(object);
  if (service.spec().type() == "ExternalName" || service.spec().selector().empty()) return true;

  std::vector<client::ObjectPtr> podObjects =
      pods_.cache().list(ns, selectorText(service.spec().selector()));
  std::vector<const core::Pod*> pods;
  pods.reserve(podObjects.size());
  for (const auto& p : podObjects)
    pods.push_back(&client::as<core::Pod>(p));

  std::vector<client::ObjectPtr> sliceObjects = slices_.cache().list(ns, managedSelector);
  std::vector<const discovery::EndpointSlice*> slices;
  for (const auto& s : sliceObjects) {
    const auto& slice = client::as<discovery::EndpointSlice>(s);
    if (!slice.metadata().has_deletion_timestamp()) slices.push_back(&slice);
  }
  if (!cacheCaughtUp(key, slices)) return false;

  std::vector<client::ObjectPtr> nodeHold;  // keeps looked-up nodes alive through reconcile()
  std::mutex nodeMutex;
  NodeLookup nodes = [&](std::string_view nodeName) -> const core::Node* {
    if (nodeName.empty()) return nullptr;
    client::ObjectPtr node = nodes_.cache().get(nodeName);
    if (!node) return nullptr;
    std::lock_guard lock(nodeMutex);
    nodeHold.push_back(node);
    return &client::as<core::Node>(node);
  };
  auto trigger = triggerTimes_.compute(key, service, pods);
  SliceChanges changes = reconcile(service, pods, slices, nodes, options_.reconciler, trigger);

  auto remember = [&](const discovery::EndpointSlice& written, bool deleted) {
    std::lock_guard lock(mutex_);
    written_[key][sliceKey(written)].resourceVersion =
        deleted ? 0 : versionOf(written.metadata().resource_version());
  };
  // Deletes first (a name freed), then updates, then creates, as Kubernetes' finalize().
  for (const auto& slice : changes.remove) {
    try {
      client::remove<discovery::EndpointSlice>(client_, ns, slice.metadata().name());
    } catch (const client::ApiError& e) {
      if (!e.isNotFound()) throw;
    }
    ++writes_;
    remember(slice, true);
  }
  for (const auto& slice : changes.update) {
    remember(client::update(client_, slice), false);
    ++writes_;
  }
  for (const auto& slice : changes.create) {
    remember(client::create(client_, slice), false);
    ++writes_;
  }
  return changes.errors.empty();
}

void EndpointSliceController::worker() {
  while (auto key = queue_.get()) {
    try {
      if (syncService(*key)) {
        queue_.forget(*key);
      } else {
        queue_.addRateLimited(*key);
      }
    } catch (const std::exception&) {
      ++errors_;
      queue_.addRateLimited(*key);
    }
    queue_.done(*key);
  }
}

void EndpointSliceController::start() {
  if (starter_.joinable()) return;
  stopping_ = false;
  starter_ = std::thread([this] {
    while (!stopping_) {
      if (services_.hasSynced() && pods_.hasSynced() && slices_.hasSynced() && nodes_.hasSynced())
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (stopping_) return;
    for (int i = 0; i < std::max(1, options_.workers); ++i)
      workers_.emplace_back([this] { worker(); });
  });
}

void EndpointSliceController::stop() {
  stopping_ = true;
  queue_.shutDown();
  if (starter_.joinable()) starter_.join();
  for (auto& w : workers_)
    w.join();
  workers_.clear();
}

}  // namespace skiff::endpoints
