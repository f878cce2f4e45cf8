#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "control/api/value.h"
#include "control/apiserver/csr_strategy.h"
#include "control/apiserver/http_server.h"
#include "control/apiserver/metrics.h"
#include "control/apiserver/node_proxy.h"
#include "control/apiserver/resource_storage.h"
#include "control/apiserver/service_admission.h"
#include "control/apiserver/watch_cache.h"
#include "control/store/store.h"

namespace skiff::apiserver {

struct ApiHandlerOptions {
  // host:port for /api's serverAddressByClientCIDRs; empty: the Host the client used.
  std::string server_address;
  // How long a watch may stay open when the client names no timeoutSeconds.
  int default_watch_timeout_seconds = 1800;
  int bookmark_interval_seconds = 60;
  ServiceAdmissionOptions services;
  // Kubernetes' ServiceAccount admission of pod creates (pod_admission.h): the default
  // ServiceAccount, a 403 when it is missing, the kube-api-access-* token volume. skiff apiserver,
  // server and up turn it on; off here, for tests that make pods without a ServiceAccount.
  bool service_account_admission = false;
  // Where watches count themselves (apiserver_registered_watchers); may be null.
  Metrics* metrics = nullptr;
  // Lists at resourceVersion "0"/NotOlderThan and every watch are served from one watch cache per
  // resource; off, each watch is a store watch of its own (the path before the cache).
  bool watch_cache = true;
  WatchCacheOptions watch_cache_options;
  // How pods/log reaches the kubelets.
  NodeProxyOptions node_proxy;
  // serviceaccounts/token is served in front of the handler (ApiServer's auth): discovery lists it.
  bool token_subresource = false;
  // Called before an object is created or updated (patches included, not the status
  // subresource) with the request, the namespace, the object to be written and a reader of the
  // stored one (nullptr on create); throws ApiError to refuse (RBAC's escalation check).
  std::function<void(const HttpRequest&, const std::string& ns, const google::protobuf::Message&,
                     const std::function<MessagePtr()>& current)>
      admit_write;
  // The user a request comes from (CertificateSigningRequests record their requester); unset:
  // an empty user.
  std::function<Requester(const HttpRequest&)> requester;
  // Whether the request's user holds `verb` ("approve", "sign") on certificates.k8s.io `signers`
  // named `signer` (or its "<domain>/*"): CertificateApproval and CertificateSigning admission.
  // Unset: allowed.
  std::function<bool(const HttpRequest&, const std::string& verb, const std::string& signer)>
      signer_permission;
};

// Serves Kubernetes' REST API over the store: every registered kind at its path, with get, list,
// watch, create, update, delete and deletecollection, the status subresource, pods/binding,
// namespaces/finalize, discovery, /version and the health endpoints. Errors are Status objects.
// Writes, gets and consistent lists go to the store; watches and lists at resourceVersion "0" (or
// NotOlderThan without a limit) are served by each resource's WatchCache.
//
// Thread-safe: the HTTP server calls it from every connection's thread.
class ApiHandler {
 public:
  ApiHandler(store::Store& store, ApiHandlerOptions options);

  void handle(const HttpRequest& request, HttpResponse& response,
              const std::function<ResponseStream&(const HttpResponse&)>& start_stream);
  // Creates the namespaces every cluster has (default, kube-system, kube-public,
  // kube-node-lease) when they are missing.
  void ensureSystemNamespaces();
  void setReady(bool ready) { ready_.store(ready); }
  // The resource's watch cache, or nullptr (caches off, or a kind that is never stored).
  WatchCache* watchCache(const api::ResourceType& type) const;

 private:
  ResourceStorage& storageFor(const RequestInfo& info);
  void handleResource(const HttpRequest& request, const RequestInfo& info, HttpResponse& response,
                      const std::function<ResponseStream&(const HttpResponse&)>& start_stream);
  // GET /api or /apis as one apidiscovery.k8s.io APIGroupDiscoveryList (`version` "v2" or
  // "v2beta1"): the core group, or every named group, with their resources and subresources.
  api::Value aggregatedDiscovery(bool named_groups, const std::string& version) const;
  bool handleNonResource(const HttpRequest& request, const RequestInfo& info,
                         HttpResponse& response);
  MessagePtr decodeBody(const HttpRequest& request, const ResourceStorage& storage,
                        HttpResponse& response);
  // The object an admission check reads (nullptr: not found): from the kind's watch cache, as
  // Kubernetes' admission plugins read their informers, else (not there yet, or `live`) from the
  // store.
  ObjectPtr lookupForAdmission(const ResourceStorage& storage, const std::string& ns,
                               const std::string& name, bool live) const;
  // A namespace deleted through this server is read from the store by the NamespaceLifecycle
  // check for a while (Kubernetes' forceLiveLookupCache), so creates right after the delete see
  // it terminating even before the cache does.
  void noteNamespaceDeleted(const std::string& name);
  bool namespaceDeletedRecently(const std::string& name) const;
  static constexpr std::chrono::seconds kNamespaceLiveLookup{30};
  // 404 when `ns` does not exist, 403 while it is terminating (NamespaceLifecycle admission).
  void checkNamespaceWritable(const std::string& ns, const GroupResource& gr,
                              const std::string& name);
  void watch(const HttpRequest& request, const RequestInfo& info, ResourceStorage& storage,
             const ListRequest& list,
             const std::function<ResponseStream&(const HttpResponse&)>& start_stream);
  // A watch on a store watch of its own, while the resource's cache is not loaded (or is off).
  void watchFromStore(const HttpRequest& request, const RequestInfo& info, ResourceStorage& storage,
                      const ListRequest& list,
                      const std::function<ResponseStream&(const HttpResponse&)>& start_stream);
  // From the watch cache when it can serve the request, else from the store.
  ListResponse listObjects(ResourceStorage& storage, const std::string& ns,
                           const ListRequest& list);
  WatchCache* cacheFor(const ResourceStorage& storage) const;
  // The DefaultStorageClass admission plugin (storage_admission.h) on a claim being created.
  void admitDefaultStorageClass(api::core::v1::PersistentVolumeClaim& pvc) const;
  void admitWrite(const HttpRequest& request, ResourceStorage& storage, const std::string& ns,
                  const std::string& name, const google::protobuf::Message& next, bool update);
  void patch(const HttpRequest& request, const RequestInfo& info, ResourceStorage& storage,
             HttpResponse& response);
  // Updates an object after the admission its kind needs (Service addresses); with
  // `track_fields`, the request's manager gets an Update entry in managedFields for what changed.
  // `subresource` tells the status subresource from approval (CertificateSigningRequests).
  MessagePtr admitAndUpdate(ResourceStorage& storage, const std::string& ns,
                            const std::string& name, MessagePtr next, bool status_only, bool dry,
                            const HttpRequest* track_fields, std::string_view subresource = "");
  // Creates an object after defaulting and the admission of creates (namespace lifecycle, RBAC
  // escalation, ServiceAccounts, Service addresses); `track_fields` as for admitAndUpdate.
  MessagePtr admitAndCreate(const HttpRequest& request, ResourceStorage& storage,
                            const std::string& ns, MessagePtr object, bool track_fields);
  // PATCH with application/apply-patch+yaml: server-side apply (server_side_apply.h), creating a
  // missing object; fieldManager is required, force=true takes conflicting fields over.
  void applyPatch(const HttpRequest& request, const RequestInfo& info, ResourceStorage& storage,
                  HttpResponse& response);
  void bind(const HttpRequest& request, const RequestInfo& info, HttpResponse& response);

  store::Store& store_;
  ApiHandlerOptions options_;
  // One storage per kind, built at start and never changed: lookups need no lock.
  std::map<std::string, std::unique_ptr<ResourceStorage>, std::less<>> storages_;
  // After storages_: the caches go first, as they read through them.
  std::map<const ResourceStorage*, std::unique_ptr<WatchCache>> caches_;
  std::atomic<bool> ready_{true};
  std::atomic<int> cache_watches_{0};  // open watches served from the watch caches
  ServiceAdmission services_;
  mutable std::mutex deleted_namespaces_mu_;
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> deleted_namespaces_;
};

}  // namespace skiff::apiserver
