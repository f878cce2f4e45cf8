#include "control/controllers/namespace.h"

#include <algorithm>
#include <stdexcept>

namespace skiff::controllers {

namespace {

using api::core::v1::Namespace;
using api::core::v1::NamespaceCondition;

const std::string* stringField(const api::Value& v, std::string_view key) {
  const api::Value* f = v.find(key);
  return f != nullptr && f->isString() ? &f->text() : nullptr;
}

bool hasVerb(const api::Value& resource, std::string_view verb) {
  const api::Value* verbs = resource.find("verbs");
  if (verbs == nullptr || !verbs->isArray()) return false;
  return std::any_of(verbs->items().begin(), verbs->items().end(),
                     [&](const api::Value& v) { return v.isString() && v.text() == verb; });
}

// "a has 2 resource instances, b has 1 resource instances" in the map's (sorted) order.
std::string describeCounts(const std::map<std::string, int>& counts, const char* what) {
  std::string out;
  for (const auto& [name, n] : counts) {
    if (!out.empty()) out += ", ";
    out += name + " " + what + " " + std::to_string(n) + " resource instances";
  }
  return out;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items)
    out += (out.empty() ? "" : ", ") + s;
  return out;
}

// The condition a pass wants: status "True" with the failure's reason and message, or "False"
// with Kubernetes' ok reason and message.
struct WantedCondition {
  const char* type;
  bool failing;
  const char* ok_reason;
  const char* ok_message;
  const char* fail_reason;
  std::string fail_message;
};

// Sets `wanted` on `ns`'s conditions; true when anything changed.
bool setCondition(Namespace& ns, const WantedCondition& wanted, const api::Timestamp& now) {
  NamespaceCondition next;
  next.set_type(wanted.type);
  next.set_status(wanted.failing ? "True" : "False");
  next.set_reason(wanted.failing ? wanted.fail_reason : wanted.ok_reason);
  next.set_message(wanted.failing ? wanted.fail_message : wanted.ok_message);
  auto* conditions = ns.mutable_status()->mutable_conditions();
  for (auto& c : *conditions) {
    if (c.type() != wanted.type) continue;
    if (c.status() == next.status() && c.reason() == next.reason() &&
        c.message() == next.message()) {
      return false;
    }
    if (c.status() == next.status()) {
      *next.mutable_last_transition_time() = c.last_transition_time();
    } else {
      setTime(*next.mutable_last_transition_time(), now);
    }
    c = next;
    return true;
  }
  setTime(*next.mutable_last_transition_time(), now);
  *conditions->Add() = std::move(next);
  return true;
}

}  // namespace

std::string NamespacedResource::groupVersionResource() const {
  return (type.group.empty() ? "" : type.group + "/") + type.version + ", Resource=" + type.plural;
}

std::vector<NamespacedResource> namespacedResourcesOf(const api::Value& resource_list) {
  const std::string* kind = stringField(resource_list, "kind");
  if (kind == nullptr || *kind != "APIResourceList") {
    throw std::invalid_argument("discovery: expected kind APIResourceList, got " +
                                (kind == nullptr ? std::string("no kind") : *kind));
  }
  const std::string* group_version = stringField(resource_list, "groupVersion");
  if (group_version == nullptr || group_version->empty()) {
    throw std::invalid_argument("discovery: APIResourceList without groupVersion");
  }
  auto [group, version] = api::splitApiVersion(*group_version);
  std::vector<NamespacedResource> out;
  const api::Value* resources = resource_list.find("resources");
  if (resources == nullptr || !resources->isArray()) return out;
  for (const auto& r : resources->items()) {
    const std::string* name = stringField(r, "name");
    const api::Value* namespaced = r.find("namespaced");
    if (name == nullptr || name->find('/') != std::string::npos) continue;  // subresource
    if (namespaced == nullptr || !namespaced->isBool() || !namespaced->asBool()) continue;
    NamespacedResource res;
    res.type.group = std::string(group);
    res.type.version = std::string(version);
    res.type.plural = *name;
    const std::string* k = stringField(r, "kind");
    res.type.kind = k != nullptr ? *k : *name;
    res.type.namespaced = true;
    res.delete_collection = hasVerb(r, "deletecollection");
    res.list = hasVerb(r, "list");
    res.remove = hasVerb(r, "delete");
    // The deleter skips what it can neither delete as a collection nor list and delete.
    if (!res.delete_collection && !(res.list && res.remove)) continue;
    out.push_back(std::move(res));
  }
  return out;
}

std::vector<std::string> preferredGroupVersions(const api::Value& group_list) {
  const std::string* kind = stringField(group_list, "kind");
  if (kind == nullptr || *kind != "APIGroupList") {
    throw std::invalid_argument("discovery: expected kind APIGroupList, got " +
                                (kind == nullptr ? std::string("no kind") : *kind));
  }
  std::vector<std::string> out;
  const api::Value* groups = group_list.find("groups");
  if (groups == nullptr || !groups->isArray()) return out;
  for (const auto& g : groups->items()) {
    const api::Value* preferred = g.find("preferredVersion");
    const std::string* gv =
        preferred != nullptr ? stringField(*preferred, "groupVersion") : nullptr;
    if (gv == nullptr) {
      // No preferred version: the first one listed, as kube's discovery falls back to.
      const api::Value* versions = g.find("versions");
      if (versions != nullptr && versions->isArray() && !versions->items().empty()) {
        gv = stringField(versions->items().front(), "groupVersion");
      }
    }
    if (gv != nullptr && !gv->empty()) out.push_back(*gv);
  }
  return out;
}

bool namespaceNeedsFinalize(const Namespace& ns) {
  const auto& f = ns.spec().finalizers();
  return std::find(f.begin(), f.end(), kNamespaceFinalizer) != f.end();
}

NamespaceDeletionResult reconcileNamespaceDeletion(const Namespace& ns,
                                                   const NamespaceContent& content,
                                                   const api::Timestamp& now) {
  NamespaceDeletionResult result;
  Namespace next = ns;
  bool changed = false;
  if (next.status().phase() != "Terminating") {
    next.mutable_status()->set_phase("Terminating");
    changed = true;
  }
  const WantedCondition wanted[] = {
      {"NamespaceDeletionDiscoveryFailure", !content.discovery_failures.empty(),
       "ResourcesDiscovered", "All resources successfully discovered", "DiscoveryFailed",
       "Discovery failed for some groups, " + std::to_string(content.discovery_failures.size()) +
           " failing: " + join(content.discovery_failures)},
      {"NamespaceDeletionGroupVersionParsingFailure", false, "ParsedGroupVersions",
       "All legacy kube types successfully parsed", "GroupVersionParsingFailed", ""},
      {"NamespaceDeletionContentFailure", !content.deletion_failures.empty(), "ContentDeleted",
       "All content successfully deleted, may be waiting on finalization", "ContentDeletionFailed",
       "Failed to delete all resource types, " + std::to_string(content.deletion_failures.size()) +
           " remaining: " + join(content.deletion_failures)},
      {"NamespaceContentRemaining", !content.remaining.empty(), "ContentRemoved",
       "All content successfully removed", "SomeResourcesRemain",
       "Some resources are remaining: " + describeCounts(content.remaining, "has")},
      {"NamespaceFinalizersRemaining", !content.finalizers_remaining.empty(),
       "ContentHasNoFinalizers", "All content-preserving finalizers finished",
       "SomeFinalizersRemain",
       "Some content in the namespace has finalizers remaining: " +
           describeCounts(content.finalizers_remaining, "in")},
  };
  for (const auto& w : wanted)
    changed = setCondition(next, w, now) || changed;
  if (changed) result.status_update = next;

  bool done = content.discovery_failures.empty() && content.deletion_failures.empty() &&
              content.remaining.empty();
  if (done) {
    if (namespaceNeedsFinalize(next)) {
      Namespace finalized = next;
      auto* f = finalized.mutable_spec()->mutable_finalizers();
      f->erase(std::remove(f->begin(), f->end(), kNamespaceFinalizer), f->end());
      result.finalize = std::move(finalized);
    }
    return result;
  }
  // Kubernetes waits the estimate (the longest grace period left) when it knows one, and retries
  // failures with the queue's backoff; content held by finalizers is looked at again soon.
  int64_t wait_ms = content.estimate_seconds > 0 ? content.estimate_seconds * 1000 : 1000;
  result.requeue_after = std::chrono::milliseconds(std::min<int64_t>(wait_ms, 15000));
  return result;
}

}  // namespace skiff::controllers
