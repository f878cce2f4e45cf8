#include "control/controllers/garbage_collector.h"

#include <algorithm>
#include <set>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/reflection.h>

namespace skiff::controllers {

using api::meta::v1::ObjectMeta;
using google::protobuf::Message;

const ObjectMeta& metaOf(const Message& object) {
  const auto* field = object.GetDescriptor()->FindFieldByName("metadata");
  return static_cast<const ObjectMeta&>(object.GetReflection()->GetMessage(object, field));
}

ObjectMeta& mutableMetaOf(Message& object) {
  const auto* field = object.GetDescriptor()->FindFieldByName("metadata");
  return static_cast<ObjectMeta&>(*object.GetReflection()->MutableMessage(&object, field));
}

namespace {

bool hasFinalizer(const ObjectMeta& m, std::string_view f) {
  return std::find(m.finalizers().begin(), m.finalizers().end(), f) != m.finalizers().end();
}

std::shared_ptr<Message> copyOf(const Message& m) {
  std::shared_ptr<Message> c(m.New());
  c->CopyFrom(m);
  return c;
}

Action updateOf(const api::ResourceType* type, std::shared_ptr<Message> object) {
  Action a;
  a.verb = Action::Verb::kUpdate;
  a.type = type;
  a.ns = metaOf(*object).namespace_();
  a.name = metaOf(*object).name();
  a.object = std::move(object);
  return a;
}

void removeFinalizer(ObjectMeta& m, std::string_view f) {
  auto* list = m.mutable_finalizers();
  for (int i = list->size() - 1; i >= 0; --i) {
    if (list->Get(i) == f) list->DeleteSubrange(i, 1);
  }
}

const api::meta::v1::OwnerReference* refTo(const ObjectMeta& m, const std::string& uid) {
  for (const auto& r : m.owner_references()) {
    if (r.uid() == uid) return &r;
  }
  return nullptr;
}

}  // namespace

GcResult reconcileGarbage(const GcInput& input) {
  GcResult result;
  const Message& object = *input.object;
  const ObjectMeta& meta = metaOf(object);

  if (meta.has_deletion_timestamp()) {
    if (hasFinalizer(meta, kOrphanFinalizer)) {
      for (const auto& dep : input.dependents) {
        auto copy = copyOf(*dep.object);
        auto* refs = mutableMetaOf(*copy).mutable_owner_references();
        for (int i = refs->size() - 1; i >= 0; --i) {
          if (refs->Get(i).uid() == meta.uid()) refs->DeleteSubrange(i, 1);
        }
        result.actions.push_back(updateOf(dep.type, std::move(copy)));
      }
      auto copy = copyOf(object);
      removeFinalizer(mutableMetaOf(*copy), kOrphanFinalizer);
      result.actions.push_back(updateOf(input.type, std::move(copy)));
      return result;
    }
    if (hasFinalizer(meta, kForegroundFinalizer)) {
      bool blocked = false;
      for (const auto& dep : input.dependents) {
        const auto* ref = refTo(metaOf(*dep.object), meta.uid());
        if (ref != nullptr && ref->block_owner_deletion()) blocked = true;
      }
      if (!blocked) {
        auto copy = copyOf(object);
        removeFinalizer(mutableMetaOf(*copy), kForegroundFinalizer);
        result.actions.push_back(updateOf(input.type, std::move(copy)));
      }
      return result;
    }
    return result;  // someone else's deletion in progress
  }

  if (input.owners.empty()) return result;
  std::vector<const GcOwner*> solid, dangling, waiting;
  for (const auto& o : input.owners) {
    switch (o.state) {
      case GcOwner::State::kPresent:
      case GcOwner::State::kUnknown:
        solid.push_back(&o);
        break;
      case GcOwner::State::kAbsent:
        dangling.push_back(&o);
        break;
      case GcOwner::State::kDeletingForeground:
        waiting.push_back(&o);
        break;
    }
  }
  if (!solid.empty()) {
    if (dangling.empty() && waiting.empty()) return result;
    std::set<std::string> drop;
    for (const auto* o : dangling)
      drop.insert(o->ref.uid());
    for (const auto* o : waiting)
      drop.insert(o->ref.uid());
    auto copy = copyOf(object);
    auto* refs = mutableMetaOf(*copy).mutable_owner_references();
    for (int i = refs->size() - 1; i >= 0; --i) {
      if (drop.count(refs->Get(i).uid()) != 0) refs->DeleteSubrange(i, 1);
    }
    result.actions.push_back(updateOf(input.type, std::move(copy)));
    for (const auto* o : dangling)
      result.verify_absent.push_back(o->ref);
    return result;
  }

  Action del;
  del.verb = Action::Verb::kDelete;
  del.type = input.type;
  del.ns = meta.namespace_();
  del.name = meta.name();
  del.precondition_uid = meta.uid();
  if (!waiting.empty() && !input.dependents.empty()) {
    // The chain goes in order: this object waits in the foreground for its own dependents, and its
    // waiting owners wait for it. Only when a dependent is itself waiting in the foreground could
    // that be a cycle (it may own one of this object's owners); then, as Kubernetes does, this
    // object stops blocking the waiting owners. Unblocking always would let an owner go while its
    // dependents' dependents still run.
    const bool dependent_waits =
        std::any_of(input.dependents.begin(), input.dependents.end(), [](const GcDependent& d) {
          const ObjectMeta& dm = metaOf(*d.object);
          return dm.has_deletion_timestamp() && hasFinalizer(dm, kForegroundFinalizer);
        });
    if (dependent_waits) {
      bool blocking = false;
      auto copy = copyOf(object);
      for (auto& r : *mutableMetaOf(*copy).mutable_owner_references()) {
        for (const auto* o : waiting) {
          if (r.uid() == o->ref.uid() && r.block_owner_deletion()) {
            r.set_block_owner_deletion(false);
            blocking = true;
          }
        }
      }
      if (blocking) result.actions.push_back(updateOf(input.type, std::move(copy)));
    }
    del.propagation_policy = "Foreground";
  } else if (hasFinalizer(meta, kOrphanFinalizer)) {
    del.propagation_policy = "Orphan";
  } else if (hasFinalizer(meta, kForegroundFinalizer)) {
    del.propagation_policy = "Foreground";
  } else {
    del.propagation_policy = "Background";
  }
  result.actions.push_back(std::move(del));
  for (const auto* o : dangling)
    result.verify_absent.push_back(o->ref);
  return result;
}

}  // namespace skiff::controllers
