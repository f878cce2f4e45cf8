#pragma once

// A SharedInformer fed by hand: tests put objects in its cache and the handlers run at once, on
// the test's thread, as the real informer's thread would run them.

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "control/api/selector.h"
#include "control/client/informer.h"

namespace skiff::client::testing {

class FakeInformer : public SharedInformer, private Cache {
 public:
  explicit FakeInformer(const api::ResourceType& type) : type_(type) {}

  template <class T>
  static FakeInformer of() {
    return FakeInformer(*api::Registry::builtin().byDescriptor(T::descriptor()));
  }

  // Adds or replaces (handlers get on_add or on_update).
  template <class T>
  ObjectPtr put(const T& object) {
    auto ptr = std::make_shared<const T>(object);
    ObjectPtr old;
    std::vector<EventHandlers> handlers;
    {
      std::lock_guard lock(mu_);
      std::string key = objectKey(*ptr);
      auto it = objects_.find(key);
      if (it != objects_.end()) old = it->second;
      objects_[key] = ptr;
      handlers = handlers_;
    }
    for (auto& h : handlers) {
      if (old && h.on_update) h.on_update(old, ptr);
      if (!old && h.on_add) h.on_add(ptr);
    }
    return ptr;
  }
  void erase(const std::string& key) {
    ObjectPtr old;
    std::vector<EventHandlers> handlers;
    {
      std::lock_guard lock(mu_);
      auto it = objects_.find(key);
      if (it == objects_.end()) return;
      old = it->second;
      objects_.erase(it);
      handlers = handlers_;
    }
    for (auto& h : handlers) {
      if (h.on_delete) h.on_delete(old);
    }
  }
  void setSynced(bool synced) { synced_ = synced; }

  // SharedInformer.
  const api::ResourceType& type() const override { return type_; }
  void addEventHandler(EventHandlers handlers) override {
    std::vector<ObjectPtr> existing;
    {
      std::lock_guard lock(mu_);
      handlers_.push_back(handlers);
      for (const auto& [k, v] : objects_)
        existing.push_back(v);
    }
    for (const auto& o : existing) {
      if (handlers.on_add) handlers.on_add(o);
    }
  }
  void addIndex(std::string, IndexFunc) override {}
  const Cache& cache() const override { return *this; }
  bool hasSynced() const override { return synced_; }
  std::string lastSyncResourceVersion() const override { return "1"; }

 private:
  static const api::meta::v1::ObjectMeta& metaOf(const google::protobuf::Message& m) {
    const auto* f = m.GetDescriptor()->FindFieldByName("metadata");
    return static_cast<const api::meta::v1::ObjectMeta&>(m.GetReflection()->GetMessage(m, f));
  }

  // Cache.
  ObjectPtr get(std::string_view key) const override {
    std::lock_guard lock(mu_);
    auto it = objects_.find(std::string(key));
    return it == objects_.end() ? nullptr : it->second;
  }
  ObjectPtr get(std::string_view ns, std::string_view name) const override {
    return get(ns.empty() ? std::string(name) : std::string(ns) + "/" + std::string(name));
  }
  std::vector<ObjectPtr> list() const override {
    std::lock_guard lock(mu_);
    std::vector<ObjectPtr> out;
    for (const auto& [k, v] : objects_)
      out.push_back(v);
    return out;
  }
  std::vector<ObjectPtr> list(std::string_view ns, std::string_view selector) const override {
    auto sel = api::labels::Selector::parse(selector);
    std::vector<ObjectPtr> out;
    for (auto& o : list()) {
      const auto& m = metaOf(*o);
      if ((ns.empty() || m.namespace_() == ns) && sel.matches(m.labels())) out.push_back(o);
    }
    return out;
  }
  std::vector<ObjectPtr> byIndex(std::string_view index, std::string_view value) const override {
    std::vector<ObjectPtr> out;
    for (auto& o : list()) {
      const auto& m = metaOf(*o);
      if (index == kIndexNamespace && m.namespace_() == value) out.push_back(o);
      if (index == kIndexOwner) {
        for (const auto& r : m.owner_references()) {
          if (r.uid() == value) {
            out.push_back(o);
            break;
          }
        }
      }
    }
    return out;
  }
  std::vector<std::string> keys() const override {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& [k, v] : objects_)
      out.push_back(k);
    return out;
  }
  size_t size() const override {
    std::lock_guard lock(mu_);
    return objects_.size();
  }

  const api::ResourceType& type_;
  mutable std::mutex mu_;
  std::map<std::string, ObjectPtr> objects_;
  std::vector<EventHandlers> handlers_;
  bool synced_ = true;
};

}  // namespace skiff::client::testing
