#pragma once

#include <vector>

#include "control/controllers/controller.h"
#include "control/controllers/namespace.h"

namespace skiff::controllers {

// Finds every namespaced resource the apiserver serves (GET /api/v1, /apis and each group's
// preferred version): the resources a terminating namespace must be emptied of. Groups whose
// discovery failed are named in `failures` ("apps/v1: ...") and left out.
std::vector<NamespacedResource> discoverNamespacedResources(client::Client& client,
                                                            std::vector<std::string>& failures);

// The namespace controller (pkg/controller/namespace): for a Namespace with a deletionTimestamp,
// deletes every object of every namespaced resource in it (deletecollection, or list + delete),
// keeps status.phase Terminating and the deletion conditions up to date, and, once nothing is
// left, removes the "kubernetes" finalizer through PUT namespaces/{name}/finalize. It reads the
// namespace live (not from the cache), as Kubernetes does, so a stale cache never finalizes a
// namespace twice or too early.
class NamespaceController : public QueueController {
 public:
  NamespaceController(client::Client& client, client::SharedInformer& namespaces,
                      client::EventRecorder* events = nullptr);
  ~NamespaceController() override;

 protected:
  std::optional<std::chrono::milliseconds> sync(const std::string& key) override;

 private:
  // Deletes what is in `ns` for each resource and counts what is left.
  NamespaceContent deleteContent(const std::string& ns,
                                 const std::vector<NamespacedResource>& resources);

  client::Client& client_;
  client::SharedInformer& namespaces_;
  client::EventRecorder* events_;
};

}  // namespace skiff::controllers
