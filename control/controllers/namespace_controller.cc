#include "control/controllers/namespace_controller.h"

#include <algorithm>

#include "control/api/codec.h"
#include "control/api/json.h"
#include "control/client/typed.h"

namespace skiff::controllers {

namespace {

using api::core::v1::Namespace;

// GET of a discovery document; throws std::runtime_error naming the path when it fails.
api::Value getDiscovery(client::Client& client, const std::string& path) {
  client::RawResponse res = client.raw({.method = "GET", .path = path});
  if (res.status != 200) {
    throw std::runtime_error(path + ": HTTP " + std::to_string(res.status));
  }
  return api::parseJson(res.body);
}

// "pods" for the core group, "deployments.apps" otherwise (what Kubernetes' messages say).
std::string resourceName(const NamespacedResource& r) {
  return r.type.group.empty() ? r.type.plural : r.type.plural + "." + r.type.group;
}

}  // namespace

std::vector<NamespacedResource> discoverNamespacedResources(client::Client& client,
                                                            std::vector<std::string>& failures) {
  std::vector<std::string> group_versions = {"v1"};
  try {
    for (auto& gv : preferredGroupVersions(getDiscovery(client, "/apis")))
      group_versions.push_back(std::move(gv));
  } catch (const std::exception& e) {
    failures.push_back(std::string("/apis: ") + e.what());
  }
  std::vector<NamespacedResource> out;
  for (const auto& gv : group_versions) {
    try {
      std::string path = gv == "v1" ? "/api/v1" : "/apis/" + gv;
      for (auto& r : namespacedResourcesOf(getDiscovery(client, path)))
        out.push_back(std::move(r));
    } catch (const std::exception& e) {
      failures.push_back(gv + ": " + e.what());
    }
  }
  return out;
}

NamespaceController::NamespaceController(client::Client& client, client::SharedInformer& namespaces,
                                         client::EventRecorder* events)
    : QueueController("namespace"), client_(client), namespaces_(namespaces), events_(events) {
  auto enqueueIfDeleting = [this](const client::ObjectPtr& o) {
    if (client::as<Namespace>(o).metadata().has_deletion_timestamp()) {
      enqueue(client::objectKey(*o));
    }
  };
  namespaces_.addEventHandler({
      .on_add = enqueueIfDeleting,
      .on_update = [enqueueIfDeleting](const client::ObjectPtr&,
                                       const client::ObjectPtr& o) { enqueueIfDeleting(o); },
      .on_delete = nullptr,
  });
}

NamespaceController::~NamespaceController() {
  stop();
}

NamespaceContent NamespaceController::deleteContent(
    const std::string& ns, const std::vector<NamespacedResource>& resources) {
  NamespaceContent content;
  for (const auto& r : resources) {
    std::string name = resourceName(r);
    // Events are kept until the end, as Kubernetes does, so what happened stays visible.
    try {
      if (r.delete_collection) {
        client_.removeCollection(r.type, ns, {});
      } else {
        api::Value list = client_.list(r.type, ns);
        if (const auto* items = list.find("items"); items != nullptr && items->isArray()) {
          for (const auto& item : items->items()) {
            const auto* meta = item.find("metadata");
            const auto* n = meta != nullptr ? meta->find("name") : nullptr;
            if (n == nullptr || !n->isString()) continue;
            try {
              client_.remove(r.type, ns, n->text());
            } catch (const client::ApiError& e) {
              if (!e.isNotFound()) throw;
            }
          }
        }
      }
    } catch (const client::ApiError& e) {
      if (e.isNotFound()) continue;  // the resource went away with its group
      content.deletion_failures.push_back(name + ": " + e.what());
      continue;
    }
    if (!r.list) continue;
    // What is left: objects held by finalizers or terminating gracefully.
    try {
      api::Value list = client_.list(r.type, ns);
      const auto* items = list.find("items");
      if (items == nullptr || !items->isArray() || items->items().empty()) continue;
      content.remaining[name] = static_cast<int>(items->items().size());
      for (const auto& item : items->items()) {
        const auto* meta = item.find("metadata");
        if (meta == nullptr) continue;
        if (const auto* f = meta->find("finalizers"); f != nullptr && f->isArray()) {
          for (const auto& fin : f->items()) {
            if (fin.isString()) ++content.finalizers_remaining[fin.text()];
          }
        }
        if (const auto* g = meta->find("deletionGracePeriodSeconds");
            g != nullptr && g->isInteger()) {
          content.estimate_seconds = std::max(content.estimate_seconds, g->asInt());
        }
      }
    } catch (const client::ApiError& e) {
      if (!e.isNotFound()) content.deletion_failures.push_back(name + ": " + e.what());
    }
  }
  return content;
}

std::optional<std::chrono::milliseconds> NamespaceController::sync(const std::string& key) {
  Namespace ns;
  try {
    ns = client::get<Namespace>(client_, "", key);
  } catch (const client::ApiError& e) {
    if (e.isNotFound()) return std::nullopt;  // gone: done
    throw;
  }
  if (!ns.metadata().has_deletion_timestamp()) return std::nullopt;

  std::vector<std::string> discovery_failures;
  auto resources = discoverNamespacedResources(client_, discovery_failures);
  // Pods first, then the rest (the deleter's order does not matter for correctness; pods going
  // first lets their grace periods run while the rest is deleted).
  std::stable_partition(resources.begin(), resources.end(), [](const NamespacedResource& r) {
    return r.type.group.empty() && r.type.plural == "pods";
  });
  // Events last, so that they stay readable while the namespace terminates.
  std::stable_partition(resources.begin(), resources.end(),
                        [](const NamespacedResource& r) { return r.type.plural != "events"; });
  NamespaceContent content = deleteContent(key, resources);
  content.discovery_failures = std::move(discovery_failures);
  NamespaceDeletionResult result = reconcileNamespaceDeletion(ns, content, api::now());

  if (result.status_update) {
    try {
      ns = client::updateStatus(client_, *result.status_update);
    } catch (const client::ApiError& e) {
      if (e.isNotFound()) return std::nullopt;
      if (e.isConflict()) return std::chrono::milliseconds(100);  // read it again
      throw;
    }
    if (result.finalize) {
      // Carry the new resourceVersion into what is sent to /finalize.
      result.finalize->mutable_metadata()->set_resource_version(ns.metadata().resource_version());
    }
  }
  if (result.finalize) {
    client::RawResponse res = client_.raw({
        .method = "PUT",
        .path = client::resourcePath(typeOf<Namespace>(), "", key, "finalize"),
        .body = api::encodeJson(*result.finalize),
        .content_type = "application/json",
    });
    if (res.status == 409) return std::chrono::milliseconds(100);  // changed meanwhile
    // Gone meanwhile (the next sync sees it), or an apiserver without the subresource: try again.
    if (res.status == 404) return std::chrono::seconds(2);
    if (res.status < 200 || res.status >= 300) {
      throw std::runtime_error("PUT namespaces/" + key + "/finalize: HTTP " +
                               std::to_string(res.status) + ": " + res.body);
    }
    if (events_ != nullptr) {
      events_->record(typeOf<Namespace>(), ns, "Normal", "NamespaceFinalized",
                      "All content of namespace " + key + " was deleted");
    }
    return std::nullopt;
  }
  if (!content.deletion_failures.empty() || !content.discovery_failures.empty()) {
    throw std::runtime_error("namespace " + key + ": content deletion incomplete");
  }
  return result.requeue_after;
}

}  // namespace skiff::controllers
