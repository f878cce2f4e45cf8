#pragma once

#include <vector>

#include "control/controllers/controller.h"
#include "control/controllers/garbage_collector.h"

namespace skiff::controllers {

// The garbage collector: reconcileGarbage for every object of the watched kinds, with the
// ownerReference graph read from the informers' owner indexes. Keys are "<kind index>|ns/name".
// It acts only once every informer has synced (an empty cache would make every owner look gone),
// and confirms with a live read that an owner is gone before deleting its dependents. Updates that
// change nothing the collector reads (status) are not looked at: a ReplicaSet's status write
// would otherwise send all of its pods through the queue.
class GarbageCollector : public QueueController {
 public:
  GarbageCollector(client::Client& client, std::vector<client::SharedInformer*> informers);
  ~GarbageCollector() override;

  // The kinds it watches by default: every kind that owns or is owned in Skiff.
  static std::vector<const api::ResourceType*> defaultTypes();

 protected:
  std::optional<std::chrono::milliseconds> sync(const std::string& key) override;

 private:
  int indexOf(const api::ResourceType& type) const;
  int indexOfKind(const std::string& api_version, const std::string& kind) const;
  std::string keyOf(int index, const google::protobuf::Message& object) const;
  // An object, its owners and its dependents (deletes, and updates of what the collector cares
  // about: ownerReferences, deletion, finalizers; status-only updates enqueue nothing).
  void enqueueRelated(int index, const google::protobuf::Message& object);
  // A new object, its dependents, and those of its owners that are being deleted.
  void enqueueAdded(int index, const google::protobuf::Message& object);
  std::vector<GcDependent> dependentsOf(const api::meta::v1::ObjectMeta& meta,
                                        std::vector<client::ObjectPtr>& keep) const;
  bool allSynced() const;

  client::Client& client_;
  std::vector<client::SharedInformer*> informers_;
};

}  // namespace skiff::controllers
