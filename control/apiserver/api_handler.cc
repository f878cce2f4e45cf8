#include "control/apiserver/api_handler.h"

#include <chrono>
#include <optional>
#include <thread>

#include "control/api/codec.h"
#include "control/api/kube_protobuf.h"
#include "control/api/time.h"
#include "control/api/yaml.h"
#include "control/apiserver/csr_strategy.h"
#include "control/apiserver/defaults.h"
#include "control/apiserver/job_validation.h"
#include "control/apiserver/object_meta.h"
#include "control/apiserver/object_validation.h"
#include "control/apiserver/openapi.h"
#include "control/apiserver/patch.h"
#include "control/apiserver/pod_admission.h"
#include "control/apiserver/pod_validation.h"
#include "control/apiserver/response_encoding.h"
#include "control/apiserver/server_side_apply.h"
#include "control/apiserver/storage_admission.h"
#include "control/apiserver/table.h"
#include "skiff/api/autoscaling_v1.pb.h"
#include "skiff/api/core_v1.pb.h"
#include "skiff/version.h"

namespace skiff::apiserver {
namespace {

using google::protobuf::Message;

// A watch writes what is queued for it in one chunk of at most this much.
constexpr int kMaxWatchBatchEvents = 256;
constexpr size_t kMaxWatchBatchBytes = 256 * 1024;
// Under a stream of events a watch writes at most once per linger, the events of that time in one
// chunk: a thousand watchers of a busy resource would otherwise each wake and write for every
// event (a million thread wakeups and TLS writes a second at 1,000 events/s). The linger grows
// with the number of open watches, kWatchLingerPerWatch each up to kMaxWatchLinger, so that all
// of them together write at most about 100,000 times a second while a lone watch adds almost
// nothing. An event after a quiet spell still goes out the moment it comes.
constexpr auto kWatchLingerPerWatch = std::chrono::microseconds(10);
constexpr auto kMaxWatchLinger = std::chrono::milliseconds(10);

std::string storageKey(std::string_view group, std::string_view version, std::string_view plural) {
  return std::string(group) + "/" + std::string(version) + "/" + std::string(plural);
}

std::string queryValue(const HttpRequest& request, std::string_view key) {
  auto it = request.query.find(key);
  return it == request.query.end() ? "" : it->second;
}

bool dryRun(const HttpRequest& request) {
  auto range = request.query.equal_range("dryRun");
  bool dry = false;
  for (auto it = range.first; it != range.second; ++it) {
    if (it->second != "All") {
      throw badRequest("dryRun: Unsupported value: \"" + it->second +
                       "\": supported values: \"All\"");
    }
    dry = true;
  }
  return dry;
}

api::UnknownFields fieldValidation(const HttpRequest& request) {
  std::string v = queryValue(request, "fieldValidation");
  if (v.empty() || v == "Warn") return api::UnknownFields::kWarn;  // Kubernetes' default
  if (v == "Strict") return api::UnknownFields::kStrict;
  if (v == "Ignore") return api::UnknownFields::kIgnore;
  throw badRequest("fieldValidation: Unsupported value: \"" + v +
                   "\": supported values: \"Ignore\", \"Strict\", \"Warn\"");
}

// Who a write is recorded for in managedFields: the fieldManager query, else the User-Agent up to
// its first '/', as Kubernetes' managerOrUserAgent ("kubectl", "skiff", "python-requests").
Writer writerFor(const HttpRequest& request, const api::ResourceType& type, std::string operation,
                 std::string subresource) {
  std::string manager = queryValue(request, "fieldManager");
  if (manager.size() > 128) {
    std::string_view kind = request.method == "POST"  ? "CreateOptions"
                            : request.method == "PUT" ? "UpdateOptions"
                                                      : "PatchOptions";
    throw invalid(
        kind, "meta.k8s.io", "",
        {{"FieldValueTooLong", "fieldManager", "Too long: may not be more than 128 bytes"}});
  }
  if (manager.empty()) {
    std::string_view agent = request.header("user-agent");
    manager = std::string(agent.substr(0, std::min<size_t>(agent.find('/'), 128)));
  }
  Writer writer{
      std::move(manager), std::move(operation), type.apiVersion(), std::move(subresource), {}};
  writer.time.set_seconds(api::now().seconds);
  return writer;
}

FieldScope fieldScope(const api::ResourceType& type, bool status_subresource) {
  if (status_subresource) return FieldScope::kStatus;
  bool has_status = std::find(type.subresources.begin(), type.subresources.end(), "status") !=
                    type.subresources.end();
  return has_status ? FieldScope::kMainResource : FieldScope::kAll;
}

std::string mediaType(std::string_view content_type) {
  std::string_view t = content_type.substr(0, content_type.find(';'));
  while (!t.empty() && t.back() == ' ')
    t.remove_suffix(1);
  return std::string(t);
}

// Writes an object in the representation the client asked for (response_encoding.h).
void respondObject(const HttpRequest& request, HttpResponse& response, int status,
                   const Message& object) {
  writeObject(negotiate(request, Endpoint::kObject), response, status, object);
}

void respondJson(HttpResponse& response, int status, const api::Value& value) {
  response.status = status;
  response.content_type = "application/json";
  response.body = api::writeJson(value);
}

std::string warningHeader(const api::Diagnostic& d) {
  std::string text = d.message + " \"" + d.path + "\"";
  std::string quoted;
  for (char c : text) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return "299 - \"" + quoted + "\"";
}

// A resourceVersion as a revision, or nullopt when it is not one.
std::optional<int64_t> parseRevision(std::string_view text) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

int64_t parseTimeout(const std::string& text, int64_t fallback) {
  if (text.empty()) return fallback;
  try {
    size_t used = 0;
    int64_t v = std::stoll(text, &used);
    if (used != text.size() || v < 0) throw std::invalid_argument("timeoutSeconds");
    return v;
  } catch (const std::exception&) {
    throw badRequest("timeoutSeconds: invalid value \"" + text + "\"");
  }
}

api::labels::Selector labelSelector(const HttpRequest& request) {
  try {
    return api::labels::Selector::parse(queryValue(request, "labelSelector"));
  } catch (const api::SelectorError& e) {
    throw badRequest(e.what());
  }
}

api::fields::Selector fieldSelector(const HttpRequest& request, const ResourceStorage& storage) {
  try {
    auto selector = api::fields::Selector::parse(queryValue(request, "fieldSelector"));
    for (const auto& r : selector.requirements()) {
      const auto& allowed = storage.selectableFields();
      if (std::find(allowed.begin(), allowed.end(), r.field) == allowed.end()) {
        throw badRequest("field label not supported: " + r.field);
      }
    }
    return selector;
  } catch (const api::SelectorError& e) {
    throw badRequest(e.what());
  }
}

// The access and token reviews (authorization.k8s.io, authentication.k8s.io): created and
// answered, never stored, so they have no storage here (ApiServer's auth serves them).
bool answeredOnly(const api::ResourceType& t) {
  return t.group == "authorization.k8s.io" || t.group == "authentication.k8s.io";
}

api::Value resourceEntry(const api::ResourceType& t, std::string_view subresource) {
  api::Value r = api::Value::object();
  std::string name = t.plural;
  if (!subresource.empty()) name += "/" + std::string(subresource);
  r.append("name", api::Value::string(name));
  r.append("singularName", api::Value::string(subresource.empty() ? t.singular : ""));
  r.append("namespaced", api::Value::boolean(t.namespaced));
  std::string kind = t.kind;
  if (subresource == "scale") kind = "Scale";
  if (subresource == "binding") kind = "Binding";
  if (subresource == "token") kind = "TokenRequest";
  if (subresource == "scale") {
    r.append("group", api::Value::string("autoscaling"));
    r.append("version", api::Value::string("v1"));
  }
  if (subresource == "token") {
    r.append("group", api::Value::string("authentication.k8s.io"));
    r.append("version", api::Value::string("v1"));
  }
  r.append("kind", api::Value::string(kind));
  api::Value verbs = api::Value::array();
  std::vector<std::string> names;
  if (subresource.empty() && answeredOnly(t)) {
    names = {"create"};
  } else if (subresource.empty()) {
    names = {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"};
  } else if (subresource == "token") {
    names = {"create"};
  } else if (subresource == "status" || subresource == "scale" || subresource == "approval") {
    names = {"get", "patch", "update"};
  } else if (subresource == "finalize") {
    names = {"update"};
  } else if (subresource == "binding") {
    names = {"create"};
  } else {
    names = {"get"};
  }
  for (const auto& v : names)
    verbs.push(api::Value::string(v));
  r.append("verbs", std::move(verbs));
  if (subresource.empty() && !t.short_names.empty()) {
    api::Value shorts = api::Value::array();
    for (const auto& s : t.short_names)
      shorts.push(api::Value::string(s));
    r.append("shortNames", std::move(shorts));
  }
  if (subresource.empty() && !t.categories.empty()) {
    api::Value cats = api::Value::array();
    for (const auto& c : t.categories)
      cats.push(api::Value::string(c));
    r.append("categories", std::move(cats));
  }
  return r;
}

// The subresources Skiff serves today.
bool servedSubresource(std::string_view s) {
  return s == "status" || s == "scale" || s == "binding" || s == "finalize" || s == "approval";
}

// The aggregated discovery version (apidiscovery.k8s.io "v2" or "v2beta1") the Accept header asks
// for in JSON, in the client's order; empty when it asks for the legacy documents only.
std::string aggregatedDiscoveryVersion(std::string_view accept) {
  size_t start = 0;
  while (start <= accept.size()) {
    size_t comma = accept.find(',', start);
    std::string_view entry = accept.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    start = comma == std::string_view::npos ? accept.size() + 1 : comma + 1;
    std::string media, g, v, as;
    size_t pos = 0;
    for (int i = 0; pos <= entry.size(); ++i) {
      size_t semi = entry.find(';', pos);
      std::string_view part =
          entry.substr(pos, semi == std::string_view::npos ? std::string_view::npos : semi - pos);
      pos = semi == std::string_view::npos ? entry.size() + 1 : semi + 1;
      while (!part.empty() && part.front() == ' ')
        part.remove_prefix(1);
      while (!part.empty() && part.back() == ' ')
        part.remove_suffix(1);
      if (i == 0) {
        media = std::string(part);
        continue;
      }
      size_t eq = part.find('=');
      if (eq == std::string_view::npos) continue;
      std::string_view key = part.substr(0, eq);
      std::string value(part.substr(eq + 1));
      if (key == "g") g = value;
      if (key == "v") v = value;
      if (key == "as") as = value;
    }
    if (media == "application/json" && g == "apidiscovery.k8s.io" &&
        as == "APIGroupDiscoveryList" && (v == "v2" || v == "v2beta1")) {
      return v;
    }
  }
  return {};
}

// Applies a PATCH body to an object's JSON form by its content type.
api::Value patchValue(const HttpRequest& request, const api::Value& current,
                      const google::protobuf::Descriptor* type) {
  std::string content_type = mediaType(request.header("content-type"));
  api::Value patch;
  try {
    patch = api::parseDocuments(request.body).at(0);
  } catch (const api::DecodeError& e) {
    throw badRequest(std::string("the patch is not valid JSON or YAML: ") + e.what());
  } catch (const std::out_of_range&) {
    throw badRequest("the patch is empty");
  }
  if (content_type == "application/merge-patch+json") return applyMergePatch(current, patch);
  if (content_type == "application/json-patch+json") return applyJsonPatch(current, patch);
  if (content_type == "application/strategic-merge-patch+json") {
    return applyStrategicMergePatch(current, patch, type);
  }
  if (content_type == "application/apply-patch+yaml") {
    // Apply patches are merged by ApiHandler::applyPatch and applyScale, never as a patch here.
    throw ApiError(415, "UnsupportedMediaType",
                   "server-side apply (application/apply-patch+yaml) is not served for this "
                   "subresource");
  }
  throw ApiError(415, "UnsupportedMediaType",
                 "the body of the request was in an unknown format (" + content_type +
                     ") - accepted media types include: application/json-patch+json, "
                     "application/merge-patch+json, application/strategic-merge-patch+json");
}

// A body that does not decode, as Kubernetes words it: unknown and duplicate fields under Strict
// are a "strict decoding error"; anything else says which kind could not be read and why.
ApiError decodeFailure(const api::DecodeError& e, const api::ResourceType& type) {
  bool strict_only = true;
  for (const auto& d : e.diagnostics()) {
    strict_only = strict_only && (d.message == "unknown field" || d.message == "duplicate field");
  }
  std::string message;
  for (const auto& d : e.diagnostics()) {
    if (!message.empty()) message += ", ";
    message += strict_only ? d.message + " \"" + d.path + "\"" : d.toString();
  }
  return badRequest(strict_only ? "strict decoding error: " + message
                                : type.kind + " in version \"" + type.version +
                                      "\" cannot be handled as a " + type.kind + ": " + message);
}

// What every server-side apply request carries: its manager (required), force, and the applied
// configuration, an object of the apiVersion and kind the path serves.
struct ApplyRequest {
  Writer writer;
  bool force = false;
  api::Value config;
};

ApplyRequest readApplyRequest(const HttpRequest& request, const api::ResourceType& type,
                              std::string_view subresource, const std::string& api_version,
                              const std::string& kind) {
  if (queryValue(request, "fieldManager").empty()) {
    throw invalid(
        "PatchOptions", "meta.k8s.io", "",
        {{"FieldValueRequired", "fieldManager", "Required value: is required for apply patch"}});
  }
  ApplyRequest out;
  out.writer = writerFor(request, type, "Apply", std::string(subresource));
  std::string force = queryValue(request, "force");
  if (!force.empty() && force != "true" && force != "false") {
    throw badRequest("force: invalid value \"" + force + "\": must be true or false");
  }
  out.force = force == "true";
  try {
    out.config = api::parseDocuments(request.body).at(0);
  } catch (const api::DecodeError& e) {
    throw badRequest(std::string("error decoding YAML: ") + e.what());
  } catch (const std::out_of_range&) {
    throw badRequest("the apply patch is empty");
  }
  if (!out.config.isObject()) throw badRequest("the apply patch must be an object");
  auto text = [&](std::string_view field) {
    const api::Value* v = out.config.find(field);
    return v != nullptr && v->isString() ? v->text() : std::string();
  };
  if (text("apiVersion") != api_version) {
    throw badRequest("Incorrect version specified in apply patch. Specified patch version: " +
                     text("apiVersion") + ", expected: " + api_version);
  }
  if (text("kind") != kind) {
    throw badRequest("apply patch kind \"" + text("kind") + "\" does not match the " + kind +
                     " at this path");
  }
  return out;
}

// Server-side apply to the scale subresource, as Kubernetes' ScaleHandler: the applied Scale's
// spec.replicas is the parent's, the parent's managers owning .spec.replicas are the Scale's
// (conflicts and force as for the main resource), and the applier's entry lands in the parent's
// managedFields with subresource "scale". Returns the updated parent.
MessagePtr applyScale(const HttpRequest& request, ResourceStorage& storage, const std::string& ns,
                      const std::string& name, HttpResponse& response) {
  const api::ResourceType& type = storage.type();
  auto [writer, force, config] =
      readApplyRequest(request, type, "scale", "autoscaling/v1", "Scale");
  api::autoscaling::v1::Scale typed;
  std::vector<api::Diagnostic> warnings;
  try {
    api::decode(config, typed, {.unknown_fields = fieldValidation(request), .warnings = &warnings});
  } catch (const api::DecodeError& e) {
    api::ResourceType scale_type;
    scale_type.kind = "Scale";
    scale_type.version = "v1";
    throw decodeFailure(e, scale_type);
  }
  if (!typed.metadata().name().empty() && typed.metadata().name() != name) {
    throw badRequest("the name of the object (" + typed.metadata().name() +
                     ") does not match the name on the URL (" + name + ")");
  }
  if (typed.metadata().managed_fields_size() > 0) {
    throw badRequest("metadata.managedFields must be nil");
  }
  typed.mutable_metadata()->set_name(name);
  const api::Value normalized = api::encode(typed);
  const FieldType scale_fields = FieldType::ofMessage(api::autoscaling::v1::Scale::descriptor());
  const ManagedPath parent_replicas = {"f:spec", "f:replicas"};
  for (int attempt = 0;; ++attempt) {
    MessagePtr object = storage.get(ns, name);
    auto* spec = object->GetReflection()->MutableMessage(
        object.get(), object->GetDescriptor()->FindFieldByName("spec"));
    auto replicas_field = spec->GetDescriptor()->FindFieldByName("replicas");
    api::autoscaling::v1::Scale view;
    view.mutable_metadata()->set_name(name);
    view.mutable_spec()->set_replicas(spec->GetReflection()->GetInt32(*spec, replicas_field));
    const api::Value live = api::encode(view);
    const ManagedFields parent = managersOf(*object);
    ApplyResult result =
        applyConfiguration(&live, normalized, scale_fields, FieldScope::kMainResource,
                           scaleManagers(parent, parent_replicas), writer, force);
    api::autoscaling::v1::Scale applied;
    try {
      api::decode(result.object, applied, {.unknown_fields = api::UnknownFields::kIgnore});
    } catch (const api::DecodeError& e) {
      throw badRequest(std::string("the applied Scale is invalid: ") + e.what());
    }
    spec->GetReflection()->SetInt32(spec, replicas_field, applied.spec().replicas());
    encodeManagedFields(parentManagers(parent, result.managed, parent_replicas, type.apiVersion()),
                        mutableMeta(*object));
    try {
      // The resourceVersion read stays: a write in between is a conflict, and apply runs again.
      MessagePtr updated = storage.update(ns, name, std::move(object), false, dryRun(request));
      for (const auto& w : warnings)
        response.headers.emplace_back("Warning", warningHeader(w));
      return updated;
    } catch (const ApiError& e) {
      if (e.code() != 409 || attempt >= 5) throw;
    }
  }
}

}  // namespace

ApiHandler::ApiHandler(store::Store& store, ApiHandlerOptions options)
    : store_(store), options_(std::move(options)), services_(store, options_.services) {
  if (options_.watch_cache_options.metrics == nullptr) {
    options_.watch_cache_options.metrics = options_.metrics;
  }
  for (const auto& t : api::Registry::builtin().types()) {
    // Reviews are answered by the server's authentication and authorization, never stored.
    if (!t.served() || answeredOnly(t)) continue;
    auto storage = std::make_unique<ResourceStorage>(store_, t);
    if (options_.watch_cache) {
      caches_.emplace(storage.get(),
                      std::make_unique<WatchCache>(store_, *storage, options_.watch_cache_options));
    }
    storages_.emplace(storageKey(t.group, t.version, t.plural), std::move(storage));
  }
}

WatchCache* ApiHandler::cacheFor(const ResourceStorage& storage) const {
  auto it = caches_.find(&storage);
  return it == caches_.end() ? nullptr : it->second.get();
}

WatchCache* ApiHandler::watchCache(const api::ResourceType& type) const {
  auto it = storages_.find(storageKey(type.group, type.version, type.plural));
  return it == storages_.end() ? nullptr : cacheFor(*it->second);
}

void ApiHandler::admitWrite(const HttpRequest& request, ResourceStorage& storage,
                            const std::string& ns, const std::string& name, const Message& next,
                            bool update) {
  if (!options_.admit_write) return;
  options_.admit_write(request, ns, next,
                       [&]() -> MessagePtr { return update ? storage.get(ns, name) : nullptr; });
}

ListResponse ApiHandler::listObjects(ResourceStorage& storage, const std::string& ns,
                                     const ListRequest& list) {
  WatchCache* cache = cacheFor(storage);
  if (cache != nullptr && WatchCache::servesList(list)) {
    std::optional<int64_t> min = list.resource_version == "0"
                                     ? std::optional<int64_t>(0)
                                     : parseRevision(list.resource_version);
    // A revision the cache has not reached yet (or a malformed one) is the store's to answer.
    if (min) {
      if (auto served = cache->list(ns, list, *min)) return std::move(*served);
    }
  }
  return storage.list(ns, list);
}

void ApiHandler::ensureSystemNamespaces() {
  auto& namespaces = *storages_.at(storageKey("", "v1", "namespaces"));
  for (const char* name : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
    auto ns = std::make_unique<api::core::v1::Namespace>();
    ns->mutable_metadata()->set_name(name);
    (*ns->mutable_metadata()->mutable_labels())["kubernetes.io/metadata.name"] = name;
    try {
      namespaces.create("", std::move(ns), false);
    } catch (const ApiError& e) {
      if (e.code() != 409) throw;  // already there from an earlier start
    }
  }
}

ResourceStorage& ApiHandler::storageFor(const RequestInfo& info) {
  auto it = storages_.find(storageKey(info.api_group, info.api_version, info.resource));
  if (it == storages_.end()) {
    throw ApiError(404, "NotFound", "the server could not find the requested resource");
  }
  return *it->second;
}

void ApiHandler::handle(const HttpRequest& request, HttpResponse& response,
                        const std::function<ResponseStream&(const HttpResponse&)>& start_stream) {
  RequestInfo info = parseRequestInfo(request.method, request.path, request.query);
  if (!info.is_resource_request) {
    if (!handleNonResource(request, info, response)) {
      throw ApiError(404, "NotFound", "the server could not find the requested resource");
    }
    return;
  }
  handleResource(request, info, response, start_stream);
}

api::Value ApiHandler::aggregatedDiscovery(bool named_groups, const std::string& version) const {
  using api::Value;
  const auto& types = api::Registry::builtin().types();
  std::vector<std::string> groups;  // in the order /apis lists them
  for (const auto& t : types) {
    if (t.served() && t.group.empty() != named_groups &&
        std::find(groups.begin(), groups.end(), t.group) == groups.end()) {
      groups.push_back(t.group);
    }
  }
  auto kindOf = [](const Value& entry, const api::ResourceType& t) {
    Value k = Value::object();
    const Value* g = entry.find("group");
    const Value* v = entry.find("version");
    k.append("group", Value::string(g != nullptr ? g->text() : t.group));
    k.append("version", Value::string(v != nullptr ? v->text() : t.version));
    k.append("kind", Value::string(entry.find("kind")->text()));
    return k;
  };
  Value items = Value::array();
  for (const auto& group : groups) {
    Value resources = Value::array();
    for (const auto& t : types) {
      if (!t.served() || t.group != group) continue;
      Value main = resourceEntry(t, "");
      Value r = Value::object();
      r.append("resource", Value::string(t.plural));
      r.append("responseKind", kindOf(main, t));
      r.append("scope", Value::string(t.namespaced ? "Namespaced" : "Cluster"));
      r.append("singularResource", Value::string(t.singular));
      r.append("verbs", *main.find("verbs"));
      if (const Value* shorts = main.find("shortNames")) r.append("shortNames", *shorts);
      if (const Value* cats = main.find("categories")) r.append("categories", *cats);
      Value subresources = Value::array();
      for (const auto& sub : t.subresources) {
        if (!servedSubresource(sub) && !(sub == "token" && options_.token_subresource)) continue;
        Value entry = resourceEntry(t, sub);
        Value s = Value::object();
        s.append("subresource", Value::string(sub));
        s.append("responseKind", kindOf(entry, t));
        s.append("verbs", *entry.find("verbs"));
        subresources.push(std::move(s));
      }
      if (!subresources.items().empty()) r.append("subresources", std::move(subresources));
      resources.push(std::move(r));
    }
    Value v1 = Value::object();
    v1.append("version", Value::string("v1"));
    v1.append("resources", std::move(resources));
    v1.append("freshness", Value::string("Current"));
    Value versions = Value::array();
    versions.push(std::move(v1));
    Value meta = Value::object();
    if (!group.empty()) meta.append("name", Value::string(group));
    Value item = Value::object();
    item.append("metadata", std::move(meta));
    item.append("versions", std::move(versions));
    items.push(std::move(item));
  }
  Value list = Value::object();
  list.append("kind", Value::string("APIGroupDiscoveryList"));
  list.append("apiVersion", Value::string("apidiscovery.k8s.io/" + version));
  list.append("metadata", Value::object());
  list.append("items", std::move(items));
  return list;
}

bool ApiHandler::handleNonResource(const HttpRequest& request, const RequestInfo& info,
                                   HttpResponse& response) {
  const std::string& path = request.path;
  if (path == "/healthz" || path == "/livez" || path == "/readyz") {
    bool ok = path != "/readyz" || ready_.load();
    response.status = ok ? 200 : 503;
    response.content_type = "text/plain; charset=utf-8";
    response.body = ok ? "ok" : "not ready";
    return true;
  }
  if (path == "/openapi/v2") {
    // client-go asks for the protobuf form first; JSON otherwise. One ETag names both.
    const OpenApi& openapi = OpenApi::instance();
    response.headers.emplace_back("ETag", openapi.v2ETag());
    response.headers.emplace_back("Vary", "Accept");
    if (request.header("if-none-match") == openapi.v2ETag()) {
      response.status = 304;
      return true;
    }
    const std::string_view accept = request.header("accept");
    if (accept.find("application/com.github.proto-openapi.spec.v2") != std::string_view::npos &&
        accept.find("protobuf") != std::string_view::npos) {
      response.content_type = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
      response.body = openapi.v2Protobuf();
    } else {
      response.content_type = "application/json";
      response.body = openapi.v2Json();
    }
    return true;
  }
  if (path == "/openapi/v3" || path == "/openapi/v3/") {
    response.content_type = "application/json";
    response.body = OpenApi::instance().index();
    return true;
  }
  if (path.starts_with("/openapi/v3/")) {
    auto doc = OpenApi::instance().document(std::string_view(path).substr(12));
    if (!doc) return false;
    response.content_type = "application/json";
    // The hash in the URL names this exact document: clients may cache it for good.
    response.headers.emplace_back("Cache-Control", "public, immutable");
    response.body = *doc;
    return true;
  }
  if (path == "/version") {
    api::Value v = api::Value::object();
    v.append("major", api::Value::string("1"));
    v.append("minor", api::Value::string("32"));
    v.append("gitVersion",
             api::Value::string(std::string(kKubernetesVersion) + "-skiff." + kVersion));
    v.append("gitCommit", api::Value::string(""));
    v.append("gitTreeState", api::Value::string("clean"));
    v.append("buildDate", api::Value::string(""));
    v.append("goVersion", api::Value::string(""));
    v.append("compiler", api::Value::string("gcc"));
    v.append("platform", api::Value::string("linux/amd64"));
    respondJson(response, 200, v);
    return true;
  }
  const auto& types = api::Registry::builtin().types();
  if (path == "/api" || path == "/api/" || path == "/apis" || path == "/apis/") {
    // kubectl and client-go ask for aggregated discovery first: every group's resources in one
    // answer, instead of one more request per group version.
    if (std::string version = aggregatedDiscoveryVersion(request.header("accept"));
        !version.empty()) {
      respondJson(response, 200, aggregatedDiscovery(path.starts_with("/apis"), version));
      response.content_type =
          "application/json;g=apidiscovery.k8s.io;v=" + version + ";as=APIGroupDiscoveryList";
      response.headers.emplace_back("Vary", "Accept");
      return true;
    }
  }
  if (path == "/api" || path == "/api/") {
    api::Value v = api::Value::object();
    v.append("kind", api::Value::string("APIVersions"));
    api::Value versions = api::Value::array();
    versions.push(api::Value::string("v1"));
    v.append("versions", std::move(versions));
    api::Value addresses = api::Value::array();
    api::Value address = api::Value::object();
    address.append("clientCIDR", api::Value::string("0.0.0.0/0"));
    address.append("serverAddress", api::Value::string(options_.server_address.empty()
                                                           ? std::string(request.header("host"))
                                                           : options_.server_address));
    addresses.push(std::move(address));
    v.append("serverAddressByClientCIDRs", std::move(addresses));
    respondJson(response, 200, v);
    return true;
  }
  if (path == "/apis" || path == "/apis/" ||
      (info.api_prefix == "apis" && info.api_version.empty())) {
    std::vector<std::string> groups;
    for (const auto& t : types) {
      if (t.served() && !t.group.empty() &&
          std::find(groups.begin(), groups.end(), t.group) == groups.end()) {
        groups.push_back(t.group);
      }
    }
    auto group_value = [&](const std::string& g) {
      api::Value group = api::Value::object();
      group.append("name", api::Value::string(g));
      api::Value gv = api::Value::object();
      gv.append("groupVersion", api::Value::string(g + "/v1"));
      gv.append("version", api::Value::string("v1"));
      api::Value versions = api::Value::array();
      versions.push(gv);
      group.append("versions", std::move(versions));
      group.append("preferredVersion", std::move(gv));
      return group;
    };
    std::vector<std::string> parts;
    if (path != "/apis" && path != "/apis/") {
      std::string g = path.substr(6);
      if (!g.empty() && g.back() == '/') g.pop_back();
      if (std::find(groups.begin(), groups.end(), g) == groups.end()) return false;
      api::Value v = group_value(g);
      v.members().insert(v.members().begin(),
                         {api::Value::Member{"apiVersion", {}, api::Value::string("v1")},
                          api::Value::Member{"kind", {}, api::Value::string("APIGroup")}});
      respondJson(response, 200, v);
      return true;
    }
    api::Value v = api::Value::object();
    v.append("kind", api::Value::string("APIGroupList"));
    v.append("apiVersion", api::Value::string("v1"));
    api::Value list = api::Value::array();
    for (const auto& g : groups)
      list.push(group_value(g));
    v.append("groups", std::move(list));
    respondJson(response, 200, v);
    return true;
  }
  if (!info.api_version.empty()) {
    // /api/v1 or /apis/{group}/v1: the resources of one group version.
    api::Value resources = api::Value::array();
    for (const auto& t : types) {
      if (!t.served() || t.group != info.api_group || t.version != info.api_version) continue;
      resources.push(resourceEntry(t, ""));
      for (const auto& s : t.subresources) {
        if (servedSubresource(s) || (s == "token" && options_.token_subresource)) {
          resources.push(resourceEntry(t, s));
        }
      }
    }
    if (resources.items().empty()) return false;
    api::Value v = api::Value::object();
    v.append("kind", api::Value::string("APIResourceList"));
    v.append("apiVersion", api::Value::string("v1"));
    v.append("groupVersion",
             api::Value::string(info.api_group.empty() ? info.api_version
                                                       : info.api_group + "/" + info.api_version));
    v.append("resources", std::move(resources));
    respondJson(response, 200, v);
    return true;
  }
  return false;
}

MessagePtr ApiHandler::decodeBody(const HttpRequest& request, const ResourceStorage& storage,
                                  HttpResponse& response) {
  std::string type = mediaType(request.header("content-type"));
  if (api::kubepb::isMediaType(type)) {
    // kubectl's typed generators (create configmap, secret, deployment, role, ...) send protobuf.
    if (request.body.empty()) throw badRequest("the request body is empty");
    MessagePtr object = storage.type().newMessage();
    std::vector<std::string> unknown;
    try {
      api::kubepb::decodeObject(request.body, *object, &unknown);
    } catch (const api::kubepb::ProtobufError& e) {
      throw badRequest(storage.type().kind + " in version \"" + storage.type().version +
                       "\" cannot be handled as a " + storage.type().kind + ": " + e.what());
    }
    // Kubernetes drops unknown protobuf fields without a word (field validation covers JSON and
    // YAML only); Skiff keeps the request working but says what it dropped, unless told to Ignore.
    if (fieldValidation(request) != api::UnknownFields::kIgnore) {
      for (const auto& path : unknown) {
        response.headers.emplace_back("Warning",
                                      warningHeader({.path = path, .message = "unknown field"}));
      }
    }
    return object;
  }
  if (!type.empty() && type != "application/json" && type != "application/yaml" && type != "*/*") {
    throw unsupportedMediaType(type);
  }
  if (request.body.empty()) throw badRequest("the request body is empty");
  std::vector<api::Diagnostic> warnings;
  api::DecodeOptions options{.unknown_fields = fieldValidation(request), .warnings = &warnings};
  MessagePtr object = storage.type().newMessage();
  try {
    api::Value value =
        type == "application/yaml" ? api::parseYaml(request.body) : api::parseJson(request.body);
    api::decode(value, *object, options);
  } catch (const api::DecodeError& e) {
    throw decodeFailure(e, storage.type());
  }
  for (const auto& w : warnings)
    response.headers.emplace_back("Warning", warningHeader(w));
  return object;
}

ObjectPtr ApiHandler::lookupForAdmission(const ResourceStorage& storage, const std::string& ns,
                                         const std::string& name, bool live) const {
  if (!live) {
    if (WatchCache* cache = cacheFor(storage); cache != nullptr && cache->ready()) {
      if (ObjectPtr cached = cache->get(ns, name)) return cached;
    }
  }
  try {
    return ObjectPtr(storage.get(ns, name));
  } catch (const ApiError& e) {
    if (e.code() == 404) return nullptr;
    throw;
  }
}

void ApiHandler::admitDefaultStorageClass(api::core::v1::PersistentVolumeClaim& pvc) const {
  auto it = storages_.find(storageKey("storage.k8s.io", "v1", "storageclasses"));
  if (it == storages_.end()) return;
  const ResourceStorage& classes = *it->second;
  std::optional<ListResponse> listed;
  if (WatchCache* cache = cacheFor(classes); cache != nullptr && cache->ready())
    listed = cache->list("", ListRequest{});
  if (!listed) listed = classes.list("", ListRequest{});
  std::vector<const api::storage::v1::StorageClass*> found;
  for (const auto& item : listed->items)
    found.push_back(dynamic_cast<const api::storage::v1::StorageClass*>(item.get()));
  apiserver::admitDefaultStorageClass(pvc, found);
}

void ApiHandler::noteNamespaceDeleted(const std::string& name) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(deleted_namespaces_mu_);
  std::erase_if(deleted_namespaces_, [&](const auto& entry) { return entry.second <= now; });
  deleted_namespaces_[name] = now + kNamespaceLiveLookup;
}

bool ApiHandler::namespaceDeletedRecently(const std::string& name) const {
  std::lock_guard lock(deleted_namespaces_mu_);
  auto it = deleted_namespaces_.find(name);
  return it != deleted_namespaces_.end() && it->second > std::chrono::steady_clock::now();
}

void ApiHandler::checkNamespaceWritable(const std::string& ns, const GroupResource& gr,
                                        const std::string& name) {
  auto& namespaces = *storages_.at(storageKey("", "v1", "namespaces"));
  ObjectPtr object = lookupForAdmission(namespaces, "", ns, namespaceDeletedRecently(ns));
  if (object == nullptr) throw notFound({"", "namespaces"}, ns);
  const auto& namespace_ = dynamic_cast<const api::core::v1::Namespace&>(*object);
  if (namespace_.metadata().has_deletion_timestamp() ||
      namespace_.status().phase() == "Terminating") {
    // Kubernetes' NamespaceLifecycle admission, word for word.
    ApiError e = forbidden(
        gr, name,
        "unable to create new content in namespace " + ns + " because it is being terminated");
    auto* cause = e.details().add_causes();
    cause->set_reason("NamespaceTerminating");
    cause->set_message("namespace " + ns + " is being terminated");
    cause->set_field("metadata.namespace");
    throw e;
  }
}

void ApiHandler::handleResource(
    const HttpRequest& request, const RequestInfo& info, HttpResponse& response,
    const std::function<ResponseStream&(const HttpResponse&)>& start_stream) {
  ResourceStorage& storage = storageFor(info);
  const api::ResourceType& type = storage.type();
  if (info.subresource == "log" && type.group.empty() && type.plural == "pods") {
    if (info.verb != "get") throw methodNotAllowed();
    auto pod = storage.get(info.namespace_, info.name);
    auto& nodes = *storages_.at(storageKey("", "v1", "nodes"));
    proxyPodLog(
        dynamic_cast<const api::core::v1::Pod&>(*pod),
        [&](const std::string& name) {
          return dynamic_cast<const api::core::v1::Node&>(*nodes.get("", name));
        },
        request, start_stream, options_.node_proxy);
    return;
  }
  if (info.subresource == "exec" && type.group.empty() && type.plural == "pods") {
    if (info.verb != "get" && info.verb != "create") throw methodNotAllowed();
    auto pod = storage.get(info.namespace_, info.name);
    auto& nodes = *storages_.at(storageKey("", "v1", "nodes"));
    proxyPodExec(
        dynamic_cast<const api::core::v1::Pod&>(*pod),
        [&](const std::string& name) {
          return dynamic_cast<const api::core::v1::Node&>(*nodes.get("", name));
        },
        request, response, options_.node_proxy);
    return;
  }
  if (!info.subresource.empty() && (std::find(type.subresources.begin(), type.subresources.end(),
                                              info.subresource) == type.subresources.end() ||
                                    !servedSubresource(info.subresource))) {
    throw ApiError(404, "NotFound", "the server could not find the requested resource");
  }
  // A namespaced object is reached through its namespace (lists and watches may span all).
  std::string ns = type.namespaced ? info.namespace_ : "";
  if (type.namespaced && ns.empty() && info.verb != "list" && info.verb != "watch") {
    throw ApiError(404, "NotFound", "the server could not find the requested resource");
  }
  const std::string& verb = info.verb;
  // Negotiated before anything is done, as kube-apiserver does: a 406 leaves the store untouched.
  const ResponseFormat format =
      negotiate(request, verb == "watch"                   ? Endpoint::kWatch
                         : verb == "get" || verb == "list" ? Endpoint::kTable
                                                           : Endpoint::kObject);

  if (info.subresource == "binding") {
    if (verb != "create") throw methodNotAllowed();
    bind(request, info, response);
    return;
  }
  if (info.subresource == "finalize") {
    if (verb != "update") throw methodNotAllowed();
    MessagePtr object = decodeBody(request, storage, response);
    respondObject(request, response, 200,
                  *storage.finalize(info.name, std::move(object), dryRun(request)));
    return;
  }
  if (info.subresource == "scale") {
    MessagePtr object = storage.get(ns, info.name);
    auto spec_field = object->GetDescriptor()->FindFieldByName("spec");
    auto* spec = object->GetReflection()->MutableMessage(object.get(), spec_field);
    auto replicas_field = spec->GetDescriptor()->FindFieldByName("replicas");
    if (verb == "patch" &&
        mediaType(request.header("content-type")) == "application/apply-patch+yaml") {
      object = applyScale(request, storage, ns, info.name, response);
      spec = object->GetReflection()->MutableMessage(object.get(), spec_field);
    } else if (verb == "update" || verb == "patch") {
      api::autoscaling::v1::Scale scale;
      std::vector<api::Diagnostic> warnings;
      try {
        if (verb == "update") {
          api::decodeJson(request.body, scale,
                          {.unknown_fields = fieldValidation(request), .warnings = &warnings});
        } else {
          // The patch applies to the Scale view of the object.
          api::autoscaling::v1::Scale view;
          view.mutable_metadata()->set_name(meta(*object).name());
          view.mutable_spec()->set_replicas(spec->GetReflection()->GetInt32(*spec, replicas_field));
          api::decode(patchValue(request, api::encode(view), view.GetDescriptor()), scale,
                      {.unknown_fields = fieldValidation(request), .warnings = &warnings});
        }
      } catch (const api::DecodeError& e) {
        throw badRequest(e.what());
      }
      if (!scale.metadata().resource_version().empty() &&
          scale.metadata().resource_version() != meta(*object).resource_version()) {
        throw staleUpdate(storage.groupResource(), info.name);
      }
      MessagePtr live = storage.type().newMessage();
      live->CopyFrom(*object);
      spec->GetReflection()->SetInt32(spec, replicas_field, scale.spec().replicas());
      mutableMeta(*object).clear_resource_version();
      trackUpdate(live.get(), *object, FieldScope::kMainResource,
                  writerFor(request, type, "Update", "scale"));
      object = storage.update(ns, info.name, std::move(object), false, dryRun(request));
      spec = object->GetReflection()->MutableMessage(object.get(), spec_field);
    } else if (verb != "get") {
      throw methodNotAllowed();
    }
    api::autoscaling::v1::Scale scale;
    const auto& m = meta(*object);
    scale.mutable_metadata()->set_name(m.name());
    scale.mutable_metadata()->set_namespace_(m.namespace_());
    scale.mutable_metadata()->set_uid(m.uid());
    scale.mutable_metadata()->set_resource_version(m.resource_version());
    *scale.mutable_metadata()->mutable_creation_timestamp() = m.creation_timestamp();
    scale.mutable_spec()->set_replicas(spec->GetReflection()->GetInt32(*spec, replicas_field));
    auto status_replicas = fieldText(*object, "status.replicas");
    scale.mutable_status()->set_replicas(status_replicas ? std::stoi(*status_replicas) : 0);
    auto selector_field = spec->GetDescriptor()->FindFieldByName("selector");
    if (selector_field != nullptr && spec->GetReflection()->HasField(*spec, selector_field)) {
      const auto& selector = static_cast<const api::meta::v1::LabelSelector&>(
          spec->GetReflection()->GetMessage(*spec, selector_field));
      scale.mutable_status()->set_selector(api::labels::Selector::fromProto(&selector).toString());
    }
    respondObject(request, response, 200, scale);
    return;
  }

  if (verb == "get") {
    MessagePtr object = storage.get(ns, info.name);
    if (format.table) {
      writeValue(
          format, response, 200,
          makeTable(type, {object.get()}, parseIncludeObject(queryValue(request, "includeObject")),
                    meta(*object).resource_version(), "", api::now().seconds));
      return;
    }
    respondObject(request, response, 200, *object);
  } else if (verb == "list" || verb == "watch") {
    ListRequest list{.labels = labelSelector(request),
                     .fields = fieldSelector(request, storage),
                     .limit = 0,
                     .continue_token = queryValue(request, "continue"),
                     .resource_version = queryValue(request, "resourceVersion"),
                     .resource_version_match = queryValue(request, "resourceVersionMatch")};
    if (!info.name.empty() && verb == "watch" && list.fields.empty()) {
      list.fields = api::fields::Selector::oneTermEqual("metadata.name", info.name);
    }
    if (verb == "watch") {
      watch(request, info, storage, list, start_stream);
      return;
    }
    std::string limit = queryValue(request, "limit");
    if (!limit.empty()) list.limit = parseTimeout(limit, 0);
    ListResponse result = listObjects(storage, ns, list);
    if (format.table) {
      std::vector<const Message*> objects;
      for (const auto& item : result.items)
        objects.push_back(item.get());
      writeValue(format, response, 200,
                 makeTable(type, objects, parseIncludeObject(queryValue(request, "includeObject")),
                           result.resource_version, result.continue_token, api::now().seconds));
      return;
    }
    writeList(format, response, type, result);
  } else if (verb == "create") {
    if (!info.name.empty()) throw methodNotAllowed();
    MessagePtr object = decodeBody(request, storage, response);
    MessagePtr created = admitAndCreate(request, storage, ns, std::move(object), true);
    respondObject(request, response, 201, *created);
  } else if (verb == "update") {
    MessagePtr object = decodeBody(request, storage, response);
    bool status_only = info.subresource == "status" || info.subresource == "approval";
    if (!status_only) admitWrite(request, storage, ns, info.name, *object, true);
    respondObject(request, response, 200,
                  *admitAndUpdate(storage, ns, info.name, std::move(object), status_only,
                                  dryRun(request), &request, info.subresource));
  } else if (verb == "delete") {
    api::meta::v1::DeleteOptions options;
    if (!request.body.empty()) {
      try {
        api::decodeJson(request.body, options, {.unknown_fields = api::UnknownFields::kIgnore});
      } catch (const api::DecodeError& e) {
        throw badRequest(std::string("invalid DeleteOptions: ") + e.what());
      }
    }
    std::string grace = queryValue(request, "gracePeriodSeconds");
    if (!grace.empty()) options.set_grace_period_seconds(parseTimeout(grace, 0));
    std::string policy = queryValue(request, "propagationPolicy");
    if (!policy.empty()) options.set_propagation_policy(policy);
    MessagePtr result = storage.remove(ns, info.name, options, dryRun(request));
    if (type.group.empty() && type.plural == "namespaces" && !dryRun(request)) {
      noteNamespaceDeleted(info.name);
    }
    if (const auto* service = dynamic_cast<const api::core::v1::Service*>(result.get());
        service != nullptr && !dryRun(request) && !meta(*result).has_deletion_timestamp()) {
      services_.release(*service);
    }
    if (meta(*result).has_deletion_timestamp() && !dryRun(request)) {
      try {
        respondObject(request, response, 200, *storage.get(ns, info.name));
        return;
      } catch (const ApiError&) {
        // removed in the meantime: report success below
      }
    }
    api::meta::v1::Status status;
    status.mutable_metadata();
    status.set_status("Success");
    status.mutable_details()->set_name(info.name);
    status.mutable_details()->set_group(type.group);
    status.mutable_details()->set_kind(type.plural);
    status.mutable_details()->set_uid(meta(*result).uid());
    respondObject(request, response, 200, status);
  } else if (verb == "deletecollection") {
    ListRequest list{.labels = labelSelector(request), .fields = fieldSelector(request, storage)};
    ListResponse result = storage.list(ns, list);
    bool dry = dryRun(request);
    ListResponse deleted_items;
    for (const auto& item : result.items) {
      const auto& m = meta(*item);
      try {
        MessagePtr deleted = storage.remove(m.namespace_(), m.name(), {}, dry);
        if (const auto* service = dynamic_cast<const api::core::v1::Service*>(deleted.get());
            service != nullptr && !dry && !meta(*deleted).has_deletion_timestamp()) {
          services_.release(*service);
        }
        deleted_items.items.push_back(std::move(deleted));
      } catch (const ApiError& e) {
        if (e.code() != 404) throw;  // gone meanwhile: nothing to do
      }
    }
    writeList(format, response, type, deleted_items);
  } else if (verb == "patch") {
    patch(request, info, storage, response);
  } else {
    throw methodNotAllowed();
  }
}

void ApiHandler::patch(const HttpRequest& request, const RequestInfo& info,
                       ResourceStorage& storage, HttpResponse& response) {
  if (mediaType(request.header("content-type")) == "application/apply-patch+yaml") {
    applyPatch(request, info, storage, response);
    return;
  }
  if (!queryValue(request, "force").empty()) {
    throw invalid(
        "PatchOptions", "meta.k8s.io", "",
        {{"FieldValueForbidden", "force", "Forbidden: may not be specified for non-apply patch"}});
  }
  std::string ns = storage.type().namespaced ? info.namespace_ : "";
  bool status_only = info.subresource == "status" || info.subresource == "approval";
  bool dry = dryRun(request);
  // Without a resourceVersion in the patch a conflict means someone else wrote in between:
  // apply the patch again to the new object, as Kubernetes does.
  for (int attempt = 0;; ++attempt) {
    MessagePtr current = storage.get(ns, info.name);
    api::Value patched = patchValue(request, api::encode(*current), current->GetDescriptor());
    MessagePtr next = storage.type().newMessage();
    std::vector<api::Diagnostic> warnings;
    try {
      api::decode(patched, *next,
                  {.unknown_fields = fieldValidation(request), .warnings = &warnings});
    } catch (const api::DecodeError& e) {
      throw decodeFailure(e, storage.type());
    }
    bool pinned = meta(*next).resource_version() != meta(*current).resource_version() ||
                  request.body.find("resourceVersion") != std::string::npos;
    if (!status_only) admitWrite(request, storage, ns, info.name, *next, true);
    try {
      MessagePtr updated = admitAndUpdate(storage, ns, info.name, std::move(next), status_only, dry,
                                          &request, info.subresource);
      for (const auto& w : warnings)
        response.headers.emplace_back("Warning", warningHeader(w));
      respondObject(request, response, 200, *updated);
      return;
    } catch (const ApiError& e) {
      if (e.code() != 409 || pinned || attempt >= 5) throw;
    }
  }
}

MessagePtr ApiHandler::admitAndUpdate(ResourceStorage& storage, const std::string& ns,
                                      const std::string& name, MessagePtr next, bool status_only,
                                      bool dry, const HttpRequest* track_fields,
                                      std::string_view subresource) {
  applyDefaults(*next);  // Kubernetes defaults every decoded object, updates and patches too
  // What is stored, read once for every check below that compares against it.
  MessagePtr stored_object;
  auto stored = [&]() -> const Message& {
    if (!stored_object) stored_object = storage.get(ns, name);
    return *stored_object;
  };
  if (auto* csr = dynamic_cast<CertificateSigningRequest*>(next.get())) {
    CsrWrite what = subresource == "approval" ? CsrWrite::kApproval
                    : status_only             ? CsrWrite::kStatus
                                              : CsrWrite::kMain;
    const auto& old = dynamic_cast<const CertificateSigningRequest&>(stored());
    prepareCsrUpdate(old, *csr, what, api::now().seconds);
    validateCsrUpdate(old, *csr, what);
    if (std::string verb = csrSignerVerb(old, *csr, what);
        !verb.empty() && options_.signer_permission) {
      // Server-side apply passes no request here; without one the permission cannot be checked.
      if (track_fields == nullptr ||
          !options_.signer_permission(*track_fields, verb, csr->spec().signer_name())) {
        throw signerForbidden(*csr, verb);
      }
    }
  }
  if (track_fields != nullptr) {
    trackUpdate(&stored(), *next, fieldScope(storage.type(), status_only),
                writerFor(*track_fields, storage.type(), "Update", status_only ? "status" : ""));
  }
  if (!status_only) {
    // Only some kinds compare against what is stored (immutable selectors, roleRefs, types,
    // immutable data); the others need no read for it.
    const api::ResourceType& type = storage.type();
    const bool compares = type.group == "apps" || type.group == "rbac.authorization.k8s.io" ||
                          type.kind == "ConfigMap" || type.kind == "Secret" ||
                          type.kind == "Node" || type.kind == "EndpointSlice";
    try {
      validateUpdate(compares ? stored() : *next, *next, type);
    } catch (const ApiError&) {
      // Kubernetes checks the resourceVersion precondition first: a stale write is a 409, which
      // the storage's compare-and-swap below answers.
      const std::string& rv = meta(*next).resource_version();
      if (rv.empty() || rv == meta(stored()).resource_version()) throw;
    }
  }
  if (const auto* job = dynamic_cast<const api::batch::v1::Job*>(next.get());
      job != nullptr && !status_only) {
    validateJob(*job);
  }
  if (const auto* pod = dynamic_cast<const api::core::v1::Pod*>(next.get());
      pod != nullptr && !status_only) {
    validatePodUpdate(dynamic_cast<const api::core::v1::Pod&>(stored()), *pod);
  }
  auto* service = dynamic_cast<api::core::v1::Service*>(next.get());
  if (service == nullptr || status_only) {
    return storage.update(ns, name, std::move(next), status_only, dry);
  }
  const auto& old = dynamic_cast<const api::core::v1::Service&>(stored());
  service->mutable_metadata()->set_namespace_(ns);
  services_.admitUpdate(old, *service, dry);
  api::core::v1::Service attempted = *service;
  try {
    return storage.update(ns, name, std::move(next), status_only, dry);
  } catch (...) {
    if (!dry) services_.releaseNewNodePorts(old, attempted);
    throw;
  }
}

MessagePtr ApiHandler::admitAndCreate(const HttpRequest& request, ResourceStorage& storage,
                                      const std::string& ns, MessagePtr object, bool track_fields) {
  const api::ResourceType& type = storage.type();
  if (type.namespaced) {
    // As Kubernetes' BeforeCreate: the request's namespace, before any check reads it (an
    // Event's involvedObject must be in it).
    auto& m = mutableMeta(*object);
    if (m.namespace_().empty()) m.set_namespace_(ns);
    if (m.namespace_() != ns) {
      throw badRequest(
          "the namespace of the provided object does not match the namespace sent on the "
          "request");
    }
  }
  applyDefaults(*object);
  if (track_fields) {
    trackUpdate(nullptr, *object, fieldScope(type, false), writerFor(request, type, "Update", ""));
  }
  validateCreate(*object, type);
  if (const auto* job = dynamic_cast<const api::batch::v1::Job*>(object.get())) validateJob(*job);
  if (auto* csr = dynamic_cast<CertificateSigningRequest*>(object.get())) {
    prepareCsrCreate(*csr, options_.requester ? options_.requester(request) : Requester{});
    validateCsrCreate(*csr);
  }
  if (type.namespaced) checkNamespaceWritable(ns, storage.groupResource(), meta(*object).name());
  admitWrite(request, storage, ns, meta(*object).name(), *object, false);
  bool dry = dryRun(request);
  if (auto* pvc = dynamic_cast<api::core::v1::PersistentVolumeClaim*>(object.get());
      pvc != nullptr && !pvc->spec().has_storage_class_name()) {
    admitDefaultStorageClass(*pvc);
  }
  if (auto* pod = dynamic_cast<api::core::v1::Pod*>(object.get())) {
    addDefaultTolerationSeconds(*pod);
    if (options_.service_account_admission) {
      ServiceAccountAdmissionOptions admission;
      auto& accounts = *storages_.at(storageKey("", "v1", "serviceaccounts"));
      admission.lookup =
          [&](const std::string& sa_ns,
              const std::string& name) -> std::optional<api::core::v1::ServiceAccount> {
        ObjectPtr account = lookupForAdmission(accounts, sa_ns, name, false);
        if (account == nullptr) return std::nullopt;
        return dynamic_cast<const api::core::v1::ServiceAccount&>(*account);
      };
      admitServiceAccount(*pod, ns, admission);
    }
  }
  auto* service = dynamic_cast<api::core::v1::Service*>(object.get());
  if (service != nullptr) {
    service->mutable_metadata()->set_namespace_(ns);
    services_.admitCreate(*service, dry);
  }
  api::core::v1::Service allocated;
  if (service != nullptr) allocated = *service;
  MessagePtr created;
  try {
    created = storage.create(ns, std::move(object), dry);
  } catch (...) {
    if (service != nullptr && !dry) services_.release(allocated);
    throw;
  }
  return created;
}

void ApiHandler::applyPatch(const HttpRequest& request, const RequestInfo& info,
                            ResourceStorage& storage, HttpResponse& response) {
  const api::ResourceType& type = storage.type();
  std::string ns = type.namespaced ? info.namespace_ : "";
  bool status_only = info.subresource == "status";
  bool dry = dryRun(request);
  auto [writer, force, config] =
      readApplyRequest(request, type, status_only ? "status" : "", type.apiVersion(), type.kind);
  // The configuration is typed (and checked, by fieldValidation) before it is merged.
  MessagePtr typed = type.newMessage();
  std::vector<api::Diagnostic> warnings;
  try {
    api::decode(config, *typed,
                {.unknown_fields = fieldValidation(request), .warnings = &warnings});
  } catch (const api::DecodeError& e) {
    throw decodeFailure(e, type);
  }
  const auto& applied_meta = meta(*typed);
  if (!applied_meta.name().empty() && applied_meta.name() != info.name) {
    throw badRequest("the name of the object (" + applied_meta.name() +
                     ") does not match the name on the URL (" + info.name + ")");
  }
  if (applied_meta.managed_fields_size() > 0)
    throw badRequest("metadata.managedFields must be nil");
  mutableMeta(*typed).set_name(info.name);
  api::Value normalized = api::encode(*typed);
  FieldType field_type = FieldType::ofMessage(typed->GetDescriptor());
  FieldScope scope = fieldScope(type, status_only);
  for (int attempt = 0;; ++attempt) {
    MessagePtr current;
    try {
      current = storage.get(ns, info.name);
    } catch (const ApiError& e) {
      if (e.code() != 404 || status_only) throw;
    }
    api::Value live = current ? api::encode(*current) : api::Value();
    ApplyResult result =
        applyConfiguration(current ? &live : nullptr, normalized, field_type, scope,
                           current ? managersOf(*current) : ManagedFields{}, writer, force);
    MessagePtr next = type.newMessage();
    try {
      api::decode(result.object, *next, {.unknown_fields = api::UnknownFields::kIgnore});
    } catch (const api::DecodeError& e) {
      throw decodeFailure(e, type);
    }
    encodeManagedFields(result.managed, mutableMeta(*next));
    auto respond = [&](int code, const Message& object) {
      for (const auto& w : warnings)
        response.headers.emplace_back("Warning", warningHeader(w));
      respondObject(request, response, code, object);
    };
    try {
      if (!current) {
        // Apply to a missing object creates it, as Kubernetes does.
        mutableMeta(*next).clear_resource_version();
        MessagePtr created = admitAndCreate(request, storage, ns, std::move(next), false);
        respond(201, *created);
        return;
      }
      mutableMeta(*next).set_resource_version(meta(*current).resource_version());
      if (!status_only) admitWrite(request, storage, ns, info.name, *next, true);
      MessagePtr updated =
          admitAndUpdate(storage, ns, info.name, std::move(next), status_only, dry, nullptr);
      respond(200, *updated);
      return;
    } catch (const ApiError& e) {
      // Someone else wrote (or created) it in between: apply again to what is there now.
      if (e.code() != 409 || attempt >= 5) throw;
    }
  }
}

void ApiHandler::bind(const HttpRequest& request, const RequestInfo& info, HttpResponse& response) {
  auto& pods = *storages_.at(storageKey("", "v1", "pods"));
  api::core::v1::Binding binding;
  try {
    api::decodeJson(request.body, binding, {.unknown_fields = api::UnknownFields::kIgnore});
  } catch (const api::DecodeError& e) {
    throw badRequest(e.what());
  }
  if (binding.target().name().empty()) {
    throw invalid("Binding", "", info.name,
                  {{"FieldValueRequired", "target.name", "Required value"}});
  }
  // The scheduler binds pods it saw through a watch, so the watch cache nearly always has the
  // current pod: it saves a store read, and a stale copy only costs a compare-and-swap retry.
  ObjectPtr cached;
  if (WatchCache* cache = cacheFor(pods); cache != nullptr && cache->ready()) {
    cached = cache->get(info.namespace_, info.name);
  }
  const int64_t now = api::now().seconds;
  pods.updateWith(
      info.namespace_, info.name,
      [&](google::protobuf::Message& object) {
        auto& pod = dynamic_cast<api::core::v1::Pod&>(object);
        if (!pod.spec().node_name().empty()) {
          throw conflict({"", "pods"}, info.name,
                         "pod " + info.name + " is already assigned to node \"" +
                             pod.spec().node_name() + "\"");
        }
        pod.mutable_spec()->set_node_name(binding.target().name());
        markScheduled(pod, binding, now);
      },
      dryRun(request), cached.get());
  api::meta::v1::Status status;
  status.mutable_metadata();
  status.set_status("Success");
  status.set_code(201);
  respondObject(request, response, 201, status);
}

void ApiHandler::watch(const HttpRequest& request, const RequestInfo& info,
                       ResourceStorage& storage, const ListRequest& list,
                       const std::function<ResponseStream&(const HttpResponse&)>& start_stream) {
  WatchCache* cache = cacheFor(storage);
  if (cache == nullptr || !cache->ready()) {
    watchFromStore(request, info, storage, list, start_stream);
    return;
  }
  std::string ns = storage.type().namespaced ? info.namespace_ : "";
  int64_t timeout =
      parseTimeout(queryValue(request, "timeoutSeconds"), options_.default_watch_timeout_seconds);
  bool bookmarks = queryTrue(queryValue(request, "allowWatchBookmarks"));
  const std::string& rv_text = list.resource_version;
  // "" and "0": the cache's current state as ADDED events, then changes; a revision: changes
  // after it.
  std::optional<int64_t> from;
  if (!rv_text.empty() && rv_text != "0") {
    from = parseRevision(rv_text);
    if (!from) throw badRequest("invalid resourceVersion \"" + rv_text + "\"");
  }

  const ResponseFormat format = negotiate(request, Endpoint::kWatch);
  HttpResponse head{200, format.contentType(true), {}, ""};
  // kubectl get -w asks for each event's object as a one-row Table.
  bool table = format.table;
  TableObjects include = parseIncludeObject(queryValue(request, "includeObject"));
  auto typeName = [](WatchEvent::Type type) -> std::string_view {
    switch (type) {
      case WatchEvent::Type::kAdded:
        return "ADDED";
      case WatchEvent::Type::kModified:
        return "MODIFIED";
      case WatchEvent::Type::kDeleted:
        return "DELETED";
    }
    return "ERROR";
  };
  // Appends one event to `batch`; the object is encoded once for every watcher.
  auto append = [&](std::string& batch, std::string_view type, const CachedObject& object) {
    if (table) {
      batch += watchEvent(MediaType::kJson, type,
                          api::writeJson(makeTable(storage.type(), {object.object.get()}, include,
                                                   meta(*object.object).resource_version(), "",
                                                   api::now().seconds)));
      return;
    }
    batch += watchEvent(format.media, type,
                        format.media == MediaType::kProtobuf ? object.protobuf() : object.json());
  };
  auto sendStatus = [&](ResponseStream& out, std::string_view type, const Message& object) {
    return out.write(watchEvent(format.media, type, encodeEventObject(format.media, object)));
  };

  CacheWatcherPtr watcher;
  try {
    if (from) {
      // The store's compaction ends history for the cache too: clients relist, as before.
      int64_t compacted = store_.compactedRevision();
      if (*from < compacted) {
        throw gone("too old resource version: " + std::to_string(*from) + " (" +
                   std::to_string(compacted) + ")");
      }
      if (*from > cache->revision()) {
        int64_t current = store_.currentRevision();
        if (*from > current) {
          throw serverTimeout("Too large resource version: " + std::to_string(*from) +
                              ", current: " + std::to_string(current));
        }
      }
    }
    watcher = cache->watch(ns, list, from);
  } catch (const ApiError& e) {
    // Kubernetes reports an expired version inside the stream, as an ERROR event.
    ResponseStream& out = start_stream(head);
    sendStatus(out, "ERROR", e.toStatus());
    return;
  }
  struct Registered {
    WatchCache* cache;
    CacheWatcherPtr watcher;
    Metrics* metrics;
    std::string resource;
    std::atomic<int>* open;
    ~Registered() {
      cache->stopWatching(watcher);
      open->fetch_sub(1, std::memory_order_relaxed);
      if (metrics != nullptr) metrics->addWatchers(resource, -1);
    }
  } registered{cache, watcher, options_.metrics, storage.type().plural, &cache_watches_};
  cache_watches_.fetch_add(1, std::memory_order_relaxed);
  if (options_.metrics != nullptr) options_.metrics->addWatchers(registered.resource, 1);
  ResponseStream& out = start_stream(head);

  using Clock = std::chrono::steady_clock;
  auto deadline = Clock::now() + std::chrono::seconds(timeout);
  auto interval = std::chrono::seconds(options_.bookmark_interval_seconds);
  auto next_bookmark = Clock::now() + interval;
  std::optional<Clock::time_point> last_write;
  while (out.alive()) {
    auto now = Clock::now();
    if (now >= deadline) return;
    if (last_write) {
      const auto linger = std::min<Clock::duration>(
          kMaxWatchLinger, kWatchLingerPerWatch * cache_watches_.load(std::memory_order_relaxed));
      if (now - *last_write < linger) {
        std::this_thread::sleep_until(*last_write + linger);
        now = Clock::now();
      }
    }
    auto wait = std::min<Clock::duration>(std::chrono::seconds(1), deadline - now);
    if (bookmarks) wait = std::max<Clock::duration>(std::min(wait, next_bookmark - now), {});
    CacheWatcher::Item item;
    switch (watcher->next(item, std::chrono::duration_cast<std::chrono::milliseconds>(wait))) {
      case CacheWatcher::Next::kEnded:
        return;  // dropped for falling behind, or the cache restarted: the client watches again
      case CacheWatcher::Next::kItem: {
        // What is already queued goes out in the same chunk: one TLS record and one write for a
        // burst rather than one per event (1,000 watchers of a busy resource would otherwise
        // cost a million writes a second).
        std::string batch;
        append(batch, typeName(item.type), *item.object);
        bool ended = false;
        for (int taken = 1; taken < kMaxWatchBatchEvents && batch.size() < kMaxWatchBatchBytes;
             ++taken) {
          const auto more = watcher->next(item, std::chrono::milliseconds(0));
          if (more != CacheWatcher::Next::kItem) {
            ended = more == CacheWatcher::Next::kEnded;
            break;
          }
          append(batch, typeName(item.type), *item.object);
        }
        if (!out.write(batch) || ended) return;
        last_write = Clock::now();
        break;
      }
      case CacheWatcher::Next::kTimeout:
        break;
    }
    if (bookmarks && Clock::now() >= next_bookmark) {
      if (auto revision = watcher->bookmarkRevision()) {
        MessagePtr mark = storage.type().newMessage();
        mutableMeta(*mark).set_resource_version(std::to_string(*revision));
        if (!sendStatus(out, "BOOKMARK", *mark)) return;
        next_bookmark = Clock::now() + interval;
      }
    }
  }
}

void ApiHandler::watchFromStore(
    const HttpRequest& request, const RequestInfo& info, ResourceStorage& storage,
    const ListRequest& list,
    const std::function<ResponseStream&(const HttpResponse&)>& start_stream) {
  std::string ns = storage.type().namespaced ? info.namespace_ : "";
  int64_t timeout =
      parseTimeout(queryValue(request, "timeoutSeconds"), options_.default_watch_timeout_seconds);
  bool bookmarks = queryTrue(queryValue(request, "allowWatchBookmarks"));
  const std::string& rv_text = list.resource_version;

  // "" and "0": the current state as ADDED events, then changes; a revision: changes after it.
  std::vector<ObjectPtr> initial;
  int64_t from = 0;
  if (rv_text.empty() || rv_text == "0") {
    ListRequest all = list;
    all.resource_version.clear();
    ListResponse current = storage.list(ns, all);
    from = std::stoll(current.resource_version);
    initial = std::move(current.items);
  } else {
    try {
      from = std::stoll(rv_text);
    } catch (const std::exception&) {
      throw badRequest("invalid resourceVersion \"" + rv_text + "\"");
    }
  }

  const ResponseFormat format = negotiate(request, Endpoint::kWatch);
  HttpResponse head{200, format.contentType(true), {}, ""};
  // kubectl get -w asks for each event's object as a one-row Table.
  bool table = format.table;
  TableObjects include = parseIncludeObject(queryValue(request, "includeObject"));
  auto send = [&](ResponseStream& out, std::string_view type, const Message& object) {
    if (table && type != "ERROR" && type != "BOOKMARK") {
      return out.write(watchEvent(
          MediaType::kJson, type,
          api::writeJson(makeTable(storage.type(), {&object}, include,
                                   meta(object).resource_version(), "", api::now().seconds))));
    }
    return out.write(watchEvent(format.media, type, encodeEventObject(format.media, object)));
  };

  store::WatchPtr watch;
  try {
    watch = storage.watchStore(ns, from);
  } catch (const ApiError& e) {
    // Kubernetes reports an expired version inside the stream, as an ERROR event.
    ResponseStream& out = start_stream(head);
    send(out, "ERROR", e.toStatus());
    return;
  }
  ResponseStream& out = start_stream(head);
  struct Registered {
    Metrics* metrics;
    std::string resource;
    ~Registered() {
      if (metrics != nullptr) metrics->addWatchers(resource, -1);
    }
  } registered{options_.metrics, storage.type().plural};
  if (options_.metrics != nullptr) options_.metrics->addWatchers(registered.resource, 1);
  for (const auto& object : initial) {
    if (!send(out, "ADDED", *object)) return;
  }

  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout);
  auto next_bookmark =
      std::chrono::steady_clock::now() + std::chrono::seconds(options_.bookmark_interval_seconds);
  std::vector<store::Event> events;
  while (std::chrono::steady_clock::now() < deadline && out.alive()) {
    events.clear();
    auto wait = std::min<std::chrono::steady_clock::duration>(
        std::chrono::seconds(1), deadline - std::chrono::steady_clock::now());
    if (!watch->next(events, std::chrono::duration_cast<std::chrono::milliseconds>(wait))) {
      if (auto error = watch->error()) {
        ApiError e = error->code() == store::ErrorCode::kCompacted
                         ? gone(std::string("too old resource version: ") + error->what())
                         : internalError(error->what());
        send(out, "ERROR", e.toStatus());
      }
      return;
    }
    for (const auto& event : events) {
      WatchEvent typed = storage.toWatchEvent(event);
      bool now_matches = storage.matches(*typed.object, list);
      bool was_matching = false;
      if (event.type == store::Event::Type::kUpdate && event.prev) {
        was_matching = storage.matches(*storage.decode(*event.prev), list);
      }
      std::string_view type;
      switch (typed.type) {
        case WatchEvent::Type::kAdded:
          if (!now_matches) continue;
          type = "ADDED";
          break;
        case WatchEvent::Type::kModified:
          // Objects that move in or out of a selector's view are added or deleted for it.
          if (now_matches && was_matching) {
            type = "MODIFIED";
          } else if (now_matches) {
            type = "ADDED";
          } else if (was_matching) {
            type = "DELETED";
          } else {
            continue;
          }
          break;
        case WatchEvent::Type::kDeleted:
          if (!now_matches) continue;
          type = "DELETED";
          break;
      }
      if (!send(out, type, *typed.object)) return;
    }
    if (bookmarks && std::chrono::steady_clock::now() >= next_bookmark) {
      MessagePtr mark = storage.type().newMessage();
      mutableMeta(*mark).set_resource_version(std::to_string(watch->progressRevision()));
      if (!send(out, "BOOKMARK", *mark)) return;
      next_bookmark = std::chrono::steady_clock::now() +
                      std::chrono::seconds(options_.bookmark_interval_seconds);
    }
  }
}

}  // namespace skiff::apiserver
