#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <google/protobuf/message.h>

#include "control/api/registry.h"
#include "control/api/value.h"

// The one way every Skiff component reaches the cluster: Kubernetes' REST API through the
// apiserver. `Client` is the interface (controllers, the scheduler, the kubelet and the proxier
// take a `Client&`, and unit tests mock it); `RestClient` (rest_client.h) implements it over HTTPS.
//
// Objects cross this interface unstructured, as api::Value in Kubernetes' JSON shape, so that the
// CLI can send what a manifest says and typed callers decode with the project's one codec
// (typed.h). Every call is synchronous and may be made from any thread at once.

namespace skiff::client {

// One entry of a Status' details.causes (a 422's fields).
struct StatusCause {
  std::string type;  // "FieldValueRequired", "FieldValueInvalid", ...
  std::string message;
  std::string field;  // "spec.containers[0].image"
};

// A failed call: the apiserver's `kind: Status` answer, or a transport failure (code 0).
class ApiError : public std::runtime_error {
 public:
  ApiError(int code, std::string reason, const std::string& message, api::Value status = {});

  // The HTTP status; 0 when no answer came (unreachable, TLS failure, connection lost).
  int code() const { return code_; }
  // Status.reason: "NotFound", "AlreadyExists", "Conflict", "Invalid", "Expired", "Gone", ...
  const std::string& reason() const { return reason_; }
  // The Status object as sent (details.causes carry the fields of a 422); null for transport
  // failures.
  const api::Value& status() const { return status_; }
  // status().details.causes, decoded.
  std::vector<StatusCause> causes() const;

  bool isNotFound() const { return code_ == 404; }
  bool isAlreadyExists() const { return code_ == 409 && reason_ == "AlreadyExists"; }
  bool isConflict() const { return code_ == 409 && reason_ != "AlreadyExists"; }
  bool isInvalid() const { return code_ == 422; }
  bool isGone() const { return code_ == 410; }
  bool isUnreachable() const { return code_ == 0; }

 private:
  int code_;
  std::string reason_;
  api::Value status_;
};

struct ListOptions {
  std::string label_selector;  // "app=web,tier!=db"
  std::string field_selector;  // "spec.nodeName=node-1"
  int64_t limit = 0;           // 0: everything in one answer
  std::string continue_token;
  std::string resource_version;        // "", "0" or a revision
  std::string resource_version_match;  // "", "NotOlderThan", "Exact"
};

struct WatchOptions {
  std::string label_selector;
  std::string field_selector;
  // Events after this revision. Empty or "0": the server first sends the current objects as ADDED
  // (Kubernetes' semantics), then changes.
  std::string resource_version;
  bool allow_bookmarks = true;
  int timeout_seconds = 0;  // 0: the server's default
};

struct WriteOptions {
  bool dry_run = false;          // dryRun=All
  std::string field_manager;     // fieldManager; RestClient fills in its default ("skiff")
  std::string field_validation;  // "Strict", "Warn", "Ignore"; empty: the server's default
  bool force = false;            // server-side apply: take ownership of conflicting fields
};

struct DeleteOptions {
  std::string propagation_policy;  // "Background", "Foreground", "Orphan"; empty: the default
  std::optional<int64_t> grace_period_seconds;
  std::string precondition_uid;
  std::string precondition_resource_version;
  bool dry_run = false;
};

enum class PatchType {
  kJson,            // application/json-patch+json
  kMerge,           // application/merge-patch+json
  kStrategicMerge,  // application/strategic-merge-patch+json
  kApply,           // application/apply-patch+yaml (server-side apply)
};

struct WatchEvent {
  enum class Type { kAdded, kModified, kDeleted, kBookmark, kError };
  Type type = Type::kAdded;
  // The object; for kBookmark only metadata.resourceVersion; for kError a Status.
  api::Value object;
};

// One open watch (a chunked HTTP stream). Used by one thread at a time, except cancel().
class WatchStream {
 public:
  virtual ~WatchStream() = default;

  // Waits up to `timeout` for the next event. True when `event` was filled; false on timeout or
  // once the stream has ended (then ended() is true, and error() says why when it failed).
  virtual bool next(WatchEvent& event, std::chrono::milliseconds timeout) = 0;
  virtual bool ended() const = 0;
  virtual std::optional<ApiError> error() const = 0;
  // Closes the stream; next() then returns false. Safe from any thread.
  virtual void cancel() = 0;
};

using WatchStreamPtr = std::unique_ptr<WatchStream>;

// Any request, for what the typed verbs do not cover (discovery, /version, /openapi, logs).
struct RawRequest {
  std::string method = "GET";
  std::string path;  // "/api/v1/namespaces/default/pods/web-1/log"
  std::vector<std::pair<std::string, std::string>> query;  // unescaped; the client escapes
  std::string body;
  std::string content_type;  // of the body
  std::string accept = "application/json";
};

struct RawResponse {
  int status = 0;
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
  std::string body;
  // The Warning headers, as the apiserver sends them for fieldValidation=Warn and deprecations.
  std::vector<std::string> warnings;
};

class Client {
 public:
  virtual ~Client() = default;

  // `ns` is ignored for cluster-scoped kinds; for list, watch and deleteCollection an empty `ns`
  // of a namespaced kind means all namespaces.
  virtual api::Value get(const api::ResourceType& type, std::string_view ns,
                         std::string_view name) = 0;
  // The list object (`kind: PodList`, metadata.resourceVersion and continue, items).
  virtual api::Value list(const api::ResourceType& type, std::string_view ns,
                          const ListOptions& options = {}) = 0;
  // The name comes from the object's metadata (generateName works).
  virtual api::Value create(const api::ResourceType& type, std::string_view ns,
                            const api::Value& object, const WriteOptions& options = {}) = 0;
  // PUT of the whole object; its metadata.resourceVersion (when set) must match (else 409).
  virtual api::Value update(const api::ResourceType& type, std::string_view ns,
                            const api::Value& object, const WriteOptions& options = {}) = 0;
  // PUT to the status subresource.
  virtual api::Value updateStatus(const api::ResourceType& type, std::string_view ns,
                                  const api::Value& object, const WriteOptions& options = {}) = 0;
  // `subresource`: "" (the object), "status" or "scale".
  virtual api::Value patch(const api::ResourceType& type, std::string_view ns,
                           std::string_view name, PatchType patch_type, std::string_view body,
                           const WriteOptions& options = {}, std::string_view subresource = {}) = 0;
  // The object as it stands after the delete (with deletionTimestamp while finalizers or a grace
  // period hold it), or the Status the server answered with once it is gone.
  virtual api::Value remove(const api::ResourceType& type, std::string_view ns,
                            std::string_view name, const DeleteOptions& options = {}) = 0;
  virtual api::Value removeCollection(const api::ResourceType& type, std::string_view ns,
                                      const ListOptions& list_options,
                                      const DeleteOptions& options = {}) = 0;
  virtual WatchStreamPtr watch(const api::ResourceType& type, std::string_view ns,
                               const WatchOptions& options = {}) = 0;

  // Subresources.
  // autoscaling/v1 Scale of a Deployment, ReplicaSet or StatefulSet.
  virtual api::Value getScale(const api::ResourceType& type, std::string_view ns,
                              std::string_view name) = 0;
  virtual api::Value updateScale(const api::ResourceType& type, std::string_view ns,
                                 const api::Value& scale) = 0;
  // POST pods/{name}/binding with a v1 Binding (the scheduler's bind).
  virtual void bind(std::string_view ns, std::string_view pod_name, std::string_view node_name) = 0;

  // Anything else. Throws ApiError only when no answer came; HTTP errors are in the response.
  virtual RawResponse raw(const RawRequest& request) = 0;
  // The Warning headers of this thread's last call (fieldValidation=Warn, deprecations).
  virtual std::vector<std::string> lastWarnings() const = 0;
};

using ClientPtr = std::unique_ptr<Client>;

// The REST path of a collection or object: "/api/v1/namespaces/default/pods",
// "/apis/apps/v1/namespaces/default/deployments/web/scale", "/api/v1/nodes/node-1".
std::string resourcePath(const api::ResourceType& type, std::string_view ns,
                         std::string_view name = {}, std::string_view subresource = {});

}  // namespace skiff::client
