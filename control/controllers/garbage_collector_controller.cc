#include "control/controllers/garbage_collector_controller.h"

#include <algorithm>

#include <google/protobuf/util/message_differencer.h>

#include "control/client/typed.h"

namespace skiff::controllers {

namespace {

// Whether an update can change what the collector decides about the object, its owners or its
// dependents: its identity, ownerReferences, deletion or finalizers. Status writes (a ReplicaSet's
// counts, a pod's readiness) cannot, and they are nearly every update.
bool collectorCares(const google::protobuf::Message& a, const google::protobuf::Message& b) {
  const auto& ma = metaOf(a);
  const auto& mb = metaOf(b);
  if (ma.uid() != mb.uid() || ma.has_deletion_timestamp() != mb.has_deletion_timestamp()) {
    return true;
  }
  if (ma.finalizers_size() != mb.finalizers_size() ||
      !std::equal(ma.finalizers().begin(), ma.finalizers().end(), mb.finalizers().begin())) {
    return true;
  }
  if (ma.owner_references_size() != mb.owner_references_size()) return true;
  for (int i = 0; i < ma.owner_references_size(); ++i) {
    if (!google::protobuf::util::MessageDifferencer::Equals(ma.owner_references(i),
                                                            mb.owner_references(i))) {
      return true;
    }
  }
  return false;
}

}  // namespace

GarbageCollector::GarbageCollector(client::Client& client,
                                   std::vector<client::SharedInformer*> informers)
    : QueueController("garbagecollector"), client_(client), informers_(std::move(informers)) {
  for (size_t i = 0; i < informers_.size(); ++i) {
    int index = static_cast<int>(i);
    informers_[i]->addEventHandler({
        .on_add = [this, index](const client::ObjectPtr& o) { enqueueAdded(index, *o); },
        .on_update =
            [this, index](const client::ObjectPtr& a, const client::ObjectPtr& b) {
              if (!collectorCares(*a, *b)) return;
              // Owners a dependent dropped must look again too.
              enqueueRelated(index, *a);
              enqueueRelated(index, *b);
            },
        .on_delete = [this, index](const client::ObjectPtr& o) { enqueueRelated(index, *o); },
    });
  }
}

GarbageCollector::~GarbageCollector() {
  stop();
}

std::vector<const api::ResourceType*> GarbageCollector::defaultTypes() {
  const auto& r = api::Registry::builtin();
  std::vector<const api::ResourceType*> out;
  const std::pair<const char*, const char*> kinds[] = {
      {"v1", "Pod"},
      {"v1", "Service"},
      {"v1", "ConfigMap"},
      {"v1", "Secret"},
      {"v1", "ServiceAccount"},
      {"v1", "PersistentVolumeClaim"},
      {"v1", "Namespace"},
      {"v1", "Node"},
      {"apps/v1", "Deployment"},
      {"apps/v1", "ReplicaSet"},
      {"apps/v1", "DaemonSet"},
      {"apps/v1", "StatefulSet"},
      {"apps/v1", "ControllerRevision"},
      {"batch/v1", "Job"},
      {"discovery.k8s.io/v1", "EndpointSlice"},
      {"coordination.k8s.io/v1", "Lease"},
  };
  for (const auto& [v, k] : kinds) {
    if (const auto* t = r.byKind(v, k); t != nullptr && t->served()) out.push_back(t);
  }
  return out;
}

int GarbageCollector::indexOf(const api::ResourceType& type) const {
  for (size_t i = 0; i < informers_.size(); ++i) {
    if (informers_[i]->type().kind == type.kind && informers_[i]->type().group == type.group) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

int GarbageCollector::indexOfKind(const std::string& api_version, const std::string& kind) const {
  const auto* type = api::Registry::builtin().byKind(api_version, kind);
  return type == nullptr ? -1 : indexOf(*type);
}

std::string GarbageCollector::keyOf(int index, const google::protobuf::Message& object) const {
  return std::to_string(index) + "|" + client::objectKey(object);
}

bool GarbageCollector::allSynced() const {
  return std::all_of(informers_.begin(), informers_.end(),
                     [](const client::SharedInformer* i) { return i->hasSynced(); });
}

void GarbageCollector::enqueueAdded(int index, const google::protobuf::Message& object) {
  const auto& meta = metaOf(object);
  enqueue(keyOf(index, object));
  // A new dependent matters to an owner only while that owner is being deleted (foreground
  // deletion waits for it); the dependent's own sync looks at owners that are gone.
  for (const auto& ref : meta.owner_references()) {
    int oi = indexOfKind(ref.api_version(), ref.kind());
    if (oi < 0) continue;
    const bool namespaced = informers_[oi]->type().namespaced;
    auto owner = informers_[oi]->cache().get(namespaced ? meta.namespace_() : "", ref.name());
    if (owner && metaOf(*owner).has_deletion_timestamp()) {
      enqueue(std::to_string(oi) + "|" +
              (namespaced ? meta.namespace_() + "/" + ref.name() : ref.name()));
    }
  }
  // Dependents made before their owner was seen.
  for (size_t i = 0; i < informers_.size(); ++i) {
    for (const auto& dep : informers_[i]->cache().byIndex(client::kIndexOwner, meta.uid())) {
      enqueue(keyOf(static_cast<int>(i), *dep));
    }
  }
}

void GarbageCollector::enqueueRelated(int index, const google::protobuf::Message& object) {
  const auto& meta = metaOf(object);
  enqueue(keyOf(index, object));
  for (const auto& ref : meta.owner_references()) {
    int oi = indexOfKind(ref.api_version(), ref.kind());
    if (oi < 0) continue;
    const bool namespaced = informers_[oi]->type().namespaced;
    enqueue(std::to_string(oi) + "|" +
            (namespaced ? meta.namespace_() + "/" + ref.name() : ref.name()));
  }
  for (size_t i = 0; i < informers_.size(); ++i) {
    for (const auto& dep : informers_[i]->cache().byIndex(client::kIndexOwner, meta.uid())) {
      enqueue(keyOf(static_cast<int>(i), *dep));
    }
  }
}

std::vector<GcDependent> GarbageCollector::dependentsOf(
    const api::meta::v1::ObjectMeta& meta, std::vector<client::ObjectPtr>& keep) const {
  std::vector<GcDependent> out;
  for (auto* informer : informers_) {
    for (auto& dep : informer->cache().byIndex(client::kIndexOwner, meta.uid())) {
      const auto& dm = metaOf(*dep);
      // A namespaced owner only owns objects of its own namespace.
      if (!meta.namespace_().empty() && dm.namespace_() != meta.namespace_()) continue;
      out.push_back({&informer->type(), dep.get()});
      keep.push_back(std::move(dep));
    }
  }
  return out;
}

std::optional<std::chrono::milliseconds> GarbageCollector::sync(const std::string& key) {
  if (!allSynced()) return std::chrono::milliseconds(200);
  size_t bar = key.find('|');
  int index = std::stoi(key.substr(0, bar));
  auto obj = informers_.at(index)->cache().get(key.substr(bar + 1));
  if (!obj) return std::nullopt;
  const auto& meta = metaOf(*obj);

  GcInput in;
  in.type = &informers_[index]->type();
  in.object = obj.get();
  std::vector<client::ObjectPtr> keep;
  for (const auto& ref : meta.owner_references()) {
    GcOwner owner;
    owner.ref = ref;
    int oi = indexOfKind(ref.api_version(), ref.kind());
    if (oi < 0) {
      owner.state = GcOwner::State::kUnknown;
    } else {
      const bool namespaced = informers_[oi]->type().namespaced;
      auto o = informers_[oi]->cache().get(namespaced ? meta.namespace_() : "", ref.name());
      if (!o || metaOf(*o).uid() != ref.uid()) {
        owner.state = GcOwner::State::kAbsent;
      } else {
        const auto& om = metaOf(*o);
        bool foreground =
            om.has_deletion_timestamp() && std::find(om.finalizers().begin(), om.finalizers().end(),
                                                     kForegroundFinalizer) != om.finalizers().end();
        owner.state = foreground ? GcOwner::State::kDeletingForeground : GcOwner::State::kPresent;
      }
      keep.push_back(std::move(o));
    }
    in.owners.push_back(std::move(owner));
  }
  in.dependents = dependentsOf(meta, keep);
  GcResult result = reconcileGarbage(in);

  // The cache may lag: an owner that looks gone must be gone on the server too.
  for (const auto& ref : result.verify_absent) {
    const auto* type = api::Registry::builtin().byKind(ref.api_version(), ref.kind());
    if (type == nullptr) return std::nullopt;
    try {
      api::Value live = client_.get(*type, type->namespaced ? meta.namespace_() : "", ref.name());
      const auto* m = live.find("metadata");
      const auto* uid = m != nullptr ? m->find("uid") : nullptr;
      if (uid != nullptr && uid->isString() && uid->text() == ref.uid()) {
        return std::chrono::milliseconds(500);  // still there: the cache will tell
      }
    } catch (const client::ApiError& e) {
      if (!e.isNotFound()) throw;
    }
  }
  ActionRunner runner(client_, nullptr);
  for (const Action& a : result.actions) {
    try {
      runner.run(a);
    } catch (const client::ApiError& e) {
      if (e.isNotFound()) continue;  // gone already
      throw;
    }
  }
  return std::nullopt;
}

}  // namespace skiff::controllers
