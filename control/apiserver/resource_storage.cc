#include "control/apiserver/resource_storage.h"

#include <algorithm>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "control/api/base64.h"
#include "control/api/json.h"
#include "control/api/time.h"
#include "control/apiserver/defaults.h"
#include "control/apiserver/object_meta.h"
#include "skiff/api/core_v1.pb.h"

namespace skiff::apiserver {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

// Kubernetes' continue token: where the next page starts and the revision every page is read at.
std::string encodeContinue(int64_t revision, std::string_view last_key) {
  api::Value v = api::Value::object();
  v.append("v", api::Value::string("meta.k8s.io/v1"));
  v.append("rv", api::Value::integer(revision));
  v.append("start", api::Value::string(std::string(last_key)));
  return api::base64Encode(api::writeJson(v));
}

std::pair<int64_t, std::string> decodeContinue(std::string_view token) {
  auto fail = [] {
    return badRequest("continue key is not valid: the token must come from a previous list");
  };
  auto json = api::base64Decode(token);
  if (!json) throw fail();
  try {
    api::Value v = api::parseJson(*json);
    const api::Value* rv = v.find("rv");
    const api::Value* start = v.find("start");
    if (rv == nullptr || !rv->isInteger() || start == nullptr || !start->isString()) throw fail();
    return {rv->asInt(), start->text()};
  } catch (const api::DecodeError&) {
    throw fail();
  }
}

int64_t parseRevision(std::string_view text, std::string_view what) {
  int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9' || v > (INT64_MAX - 9) / 10) {
      throw badRequest("invalid " + std::string(what) + " \"" + std::string(text) +
                       "\": expected a resource version");
    }
    v = v * 10 + (c - '0');
  }
  return v;
}

bool hasField(const Message& m, std::string_view name) {
  return m.GetDescriptor()->FindFieldByName(std::string(name)) != nullptr;
}

const Message* subMessage(const Message& m, std::string_view name) {
  const FieldDescriptor* f = m.GetDescriptor()->FindFieldByName(std::string(name));
  if (f == nullptr || f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) return nullptr;
  return &m.GetReflection()->GetMessage(m, f);
}

// Copies one top-level field (spec or status) from `from` to `to`.
void copyField(const Message& from, Message& to, std::string_view name) {
  const FieldDescriptor* f = to.GetDescriptor()->FindFieldByName(std::string(name));
  if (f == nullptr) return;
  const auto* r = to.GetReflection();
  if (from.GetReflection()->HasField(from, f)) {
    r->MutableMessage(&to, f)->CopyFrom(from.GetReflection()->GetMessage(from, f));
  } else {
    r->ClearField(&to, f);
  }
}

void clearField(Message& m, std::string_view name) {
  const FieldDescriptor* f = m.GetDescriptor()->FindFieldByName(std::string(name));
  if (f != nullptr) m.GetReflection()->ClearField(&m, f);
}

// Protobuf orders map entries (labels, annotations, nodeSelector) as it likes unless asked not to:
// bytes compared for "did it change" must be deterministic, or an unchanged object would look
// changed (a new revision, a bumped generation).
std::string deterministicBytes(const Message& object) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    object.SerializeToCodedStream(&coded);
  }
  return out;
}

std::string serializeStored(const Message& object) {
  // The store holds the object without its resourceVersion: the revision is the version.
  if (!meta(object).has_resource_version()) return deterministicBytes(object);
  std::unique_ptr<Message> copy(object.New());
  copy->CopyFrom(object);
  mutableMeta(*copy).clear_resource_version();
  return deterministicBytes(*copy);
}

void setTime(api::meta::v1::Time& t, const api::Timestamp& now) {
  t.set_seconds(now.seconds);
}

constexpr const char* kNamespaceFinalizer = "kubernetes";

}  // namespace

void throwStoreError(const store::StoreError& e, const GroupResource& gr, std::string_view name) {
  switch (e.code()) {
    case store::ErrorCode::kNotFound:
      throw notFound(gr, name);
    case store::ErrorCode::kAlreadyExists:
      throw alreadyExists(gr, name);
    case store::ErrorCode::kConflict:
      throw staleUpdate(gr, name);
    case store::ErrorCode::kCompacted:
      throw gone(e.what());
    case store::ErrorCode::kTooLarge:
      throw ApiError(413, "RequestEntityTooLarge", e.what());
    case store::ErrorCode::kFutureRevision:
      throw serverTimeout(std::string("Too large resource version: ") + e.what());
    case store::ErrorCode::kUnavailable:
      throw ApiError(503, "ServiceUnavailable", std::string("storage unavailable: ") + e.what());
    case store::ErrorCode::kOutcomeUnknown:
      // Not 503, which clients read as "nothing was done" and resend even a POST (a second object
      // of a generateName create): Kubernetes' 504 Timeout, which they do not resend.
      throw ApiError(
          504, "Timeout",
          std::string("storage did not confirm the write, it may have been applied: ") + e.what());
    case store::ErrorCode::kCorrupt:
    case store::ErrorCode::kInternal:
    case store::ErrorCode::kLeaseNotFound:
      throw internalError(e.what());
  }
  throw internalError(e.what());
}

ResourceStorage::ResourceStorage(store::Store& store, const api::ResourceType& type)
    : store_(store), type_(type) {
  selectable_fields_ = {"metadata.name", "metadata.namespace"};
  if (type_.kind == "Pod") {
    for (std::string_view f :
         {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
          "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"}) {
      selectable_fields_.push_back(f);
    }
  } else if (type_.kind == "Event") {
    for (std::string_view f :
         {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
          "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
          "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"}) {
      selectable_fields_.push_back(f);
    }
  } else if (type_.kind == "Node") {
    selectable_fields_.push_back("spec.unschedulable");
  } else if (type_.kind == "Namespace") {
    selectable_fields_.push_back("status.phase");
  } else if (type_.kind == "Secret") {
    selectable_fields_.push_back("type");
  } else if (type_.kind == "ReplicaSet" || type_.kind == "Job") {
    selectable_fields_.push_back("status.replicas");
  } else if (type_.kind == "CertificateSigningRequest") {
    selectable_fields_.push_back("spec.signerName");
  }
}

bool ResourceStorage::hasStatus() const {
  return std::find(type_.subresources.begin(), type_.subresources.end(), "status") !=
         type_.subresources.end();
}

std::string ResourceStorage::key(std::string_view ns, std::string_view name) const {
  return store::objectKey(type_.plural, type_.namespaced ? ns : "", name);
}

MessagePtr ResourceStorage::decode(const store::KeyValue& kv) const {
  MessagePtr object = newObject();
  if (!object->ParseFromString(kv.value)) {
    throw internalError("stored object " + kv.key + " cannot be decoded");
  }
  mutableMeta(*object).set_resource_version(std::to_string(kv.mod_revision));
  return object;
}

store::KeyValue ResourceStorage::read(std::string_view ns, std::string_view name) const {
  std::optional<store::KeyValue> kv;
  try {
    kv = store_.get(key(ns, name));
  } catch (const store::StoreError& e) {
    throwStoreError(e, groupResource(), name);
  }
  if (!kv) throw notFound(groupResource(), name);
  return std::move(*kv);
}

MessagePtr ResourceStorage::get(std::string_view ns, std::string_view name) const {
  return decode(read(ns, name));
}

bool ResourceStorage::matches(const Message& object, const ListRequest& request) const {
  const auto& m = meta(object);
  if (!request.labels.matches(m.labels())) return false;
  if (request.fields.empty()) return true;
  return request.fields.matches([&](std::string_view field) -> std::optional<std::string> {
    if (field == "metadata.name") return m.name();
    if (field == "metadata.namespace") return m.namespace_();
    return fieldText(object, field);
  });
}

ListResponse ResourceStorage::list(std::string_view ns, const ListRequest& request) const {
  std::string prefix = store::resourcePrefix(type_.plural, type_.namespaced ? ns : "");
  store::ListOptions options;
  std::string start_after;
  if (!request.continue_token.empty()) {
    if (!request.resource_version.empty() && request.resource_version != "0") {
      throw badRequest("specifying resource version is not allowed when using continue");
    }
    auto [rv, start] = decodeContinue(request.continue_token);
    if (!start.starts_with(prefix) && !start.empty()) {
      throw badRequest("continue key is not valid: it belongs to another list");
    }
    options.revision = rv;
    start_after = start;
  } else if (!request.resource_version.empty() && request.resource_version != "0") {
    int64_t rv = parseRevision(request.resource_version, "resourceVersion");
    if (request.resource_version_match == "Exact") {
      options.revision = rv;
    } else if (request.resource_version_match.empty() ||
               request.resource_version_match == "NotOlderThan") {
      int64_t current = store_.currentRevision();
      if (rv > current) {
        throw serverTimeout("Too large resource version: " + std::to_string(rv) +
                            ", current: " + std::to_string(current));
      }
    } else {
      throw badRequest("resourceVersionMatch: Unsupported value: \"" +
                       request.resource_version_match + "\": supported values: \"Exact\", " +
                       "\"NotOlderThan\"");
    }
  } else if (!request.resource_version_match.empty() && request.resource_version.empty()) {
    throw badRequest("resourceVersionMatch is forbidden unless resourceVersion is provided");
  }

  ListResponse response;
  // Read pages from the store at one revision and filter them, until the page is full.
  int64_t chunk = request.limit > 0 ? std::max<int64_t>(request.limit, 64) : 0;
  while (true) {
    options.limit = chunk;
    options.start_after = start_after;
    store::ListResult page;
    try {
      page = store_.list(prefix, options);
    } catch (const store::StoreError& e) {
      if (e.code() == store::ErrorCode::kCompacted && !request.continue_token.empty()) {
        throw gone(
            "The provided continue parameter is too old to display a consistent list result. You "
            "can start a new list without the continue parameter.");
      }
      throwStoreError(e, groupResource(), "");
    }
    options.revision = page.revision;
    for (const auto& kv : page.kvs) {
      start_after = kv.key;
      MessagePtr object = decode(kv);
      if (!matches(*object, request)) continue;
      response.items.push_back(std::move(object));
      if (request.limit > 0 && static_cast<int64_t>(response.items.size()) >= request.limit) {
        bool rest = page.more || &kv != &page.kvs.back();
        if (rest) response.continue_token = encodeContinue(page.revision, kv.key);
        response.resource_version = std::to_string(page.revision);
        return response;
      }
    }
    if (!page.more || page.kvs.empty()) {
      response.resource_version = std::to_string(page.revision);
      return response;
    }
  }
}

MessagePtr ResourceStorage::create(std::string_view ns, MessagePtr object, bool dry_run) {
  auto& m = mutableMeta(*object);
  if (type_.namespaced) {
    if (!m.namespace_().empty() && m.namespace_() != ns) {
      throw badRequest(
          "the namespace of the provided object does not match the namespace sent on "
          "the request");
    }
    m.set_namespace_(std::string(ns));
  } else {
    m.clear_namespace_();
  }
  if (!m.resource_version().empty()) {
    throw badRequest("resourceVersion should not be set on objects to be created");
  }
  if (m.name().empty() && m.generate_name().empty()) {
    throw invalid(type_.kind, type_.group, "",
                  {{"FieldValueRequired", "metadata.name",
                    "Required value: name or generateName is required"}});
  }
  api::Timestamp now = api::now();
  m.set_uid(newUid());
  setTime(*m.mutable_creation_timestamp(), now);
  m.clear_deletion_timestamp();
  m.clear_deletion_grace_period_seconds();
  m.clear_self_link();
  if (hasField(*object, "spec")) m.set_generation(1);
  // The status is the status subresource's to write; Nodes are the exception (their kubelet
  // registers them with their status, and Kubernetes keeps it).
  if (hasStatus() && type_.kind != "Node") clearField(*object, "status");
  if (auto* ns_object = dynamic_cast<api::core::v1::Namespace*>(object.get())) {
    // Active, and finalized by "kubernetes" (the namespace controller) once it is deleted.
    ns_object->mutable_status()->set_phase("Active");
    const auto& finalizers = ns_object->spec().finalizers();
    if (std::find(finalizers.begin(), finalizers.end(), kNamespaceFinalizer) == finalizers.end()) {
      ns_object->mutable_spec()->add_finalizers(kNamespaceFinalizer);
    }
  }

  bool generated = m.name().empty();
  for (int attempt = 0;; ++attempt) {
    if (generated) m.set_name(m.generate_name() + randomSuffix());
    // Once: a Job whose generated name collided keeps its first name in its template's labels.
    if (attempt == 0) prepareForCreate(*object);
    if (dry_run) return object;
    try {
      int64_t rev = store_.create(key(ns, m.name()), serializeStored(*object));
      m.set_resource_version(std::to_string(rev));
      return object;
    } catch (const store::StoreError& e) {
      // A generated name that collided is tried again, as Kubernetes does a few times.
      if (e.code() == store::ErrorCode::kAlreadyExists && generated && attempt < 8) continue;
      throwStoreError(e, groupResource(), m.name());
    }
  }
}

MessagePtr ResourceStorage::update(std::string_view ns, std::string_view name, MessagePtr object,
                                   bool status_only, bool dry_run) {
  std::optional<store::KeyValue> kv = read(ns, name);
  MessagePtr current = decode(*kv);
  const auto& in = meta(*object);
  if (!in.name().empty() && in.name() != name) {
    throw badRequest("the name of the object (" + in.name() +
                     ") does not match the name on the URL (" + std::string(name) + ")");
  }
  if (type_.namespaced && !in.namespace_().empty() && in.namespace_() != ns) {
    throw badRequest(
        "the namespace of the provided object does not match the namespace sent on "
        "the request");
  }
  if (!in.resource_version().empty() && in.resource_version() != std::to_string(kv->mod_revision)) {
    throw staleUpdate(groupResource(), name);
  }
  if (!in.uid().empty() && in.uid() != meta(*current).uid()) {
    throw conflict(groupResource(), name,
                   "Precondition failed: UID in precondition: " + in.uid() +
                       ", UID in object meta: " + meta(*current).uid());
  }
  MessagePtr next;
  if (status_only) {
    // The status subresource changes the status alone.
    next = newObject();
    next->CopyFrom(*current);
    copyField(*object, *next, "status");
    // ... and the status writer's managedFields entry, which the apiserver's field manager set.
    if (meta(*object).managed_fields_size() > 0) {
      *mutableMeta(*next).mutable_managed_fields() = meta(*object).managed_fields();
    }
  } else {
    next = std::move(object);
    if (hasStatus()) copyField(*current, *next, "status");
    // spec.finalizers change only through namespaces/{name}/finalize.
    if (auto* ns_object = dynamic_cast<api::core::v1::Namespace*>(next.get())) {
      *ns_object->mutable_spec()->mutable_finalizers() =
          dynamic_cast<const api::core::v1::Namespace&>(*current).spec().finalizers();
    }
  }
  return applyUpdate(ns, name, current, kv->mod_revision, std::move(next), dry_run);
}

MessagePtr ResourceStorage::replace(std::string_view ns, std::string_view name, MessagePtr object,
                                    bool dry_run) {
  store::KeyValue kv = read(ns, name);
  MessagePtr current = decode(kv);
  const auto& in = meta(*object);
  if (!in.resource_version().empty() && in.resource_version() != std::to_string(kv.mod_revision)) {
    throw staleUpdate(groupResource(), name);
  }
  return applyUpdate(ns, name, current, kv.mod_revision, std::move(object), dry_run);
}

MessagePtr ResourceStorage::updateWith(std::string_view ns, std::string_view name,
                                       const std::function<void(Message&)>& mutate, bool dry_run,
                                       const Message* suggestion) {
  // Conflicts come from writers racing on the same object; a handful of rounds settles them.
  constexpr int kAttempts = 5;
  for (int attempt = 0;; ++attempt) {
    MessagePtr current;
    int64_t revision = 0;
    const bool suggested = attempt == 0 && suggestion != nullptr;
    if (suggested) {
      current.reset(suggestion->New());
      current->CopyFrom(*suggestion);
      revision = std::stoll(meta(*current).resource_version());
    } else {
      store::KeyValue kv = read(ns, name);
      current = decode(kv);
      revision = kv.mod_revision;
    }
    MessagePtr next(current->New());
    next->CopyFrom(*current);
    mutate(*next);
    try {
      return applyUpdate(ns, name, current, revision, std::move(next), dry_run);
    } catch (const ApiError& e) {
      if (e.code() != 409 || (!suggested && attempt + 1 >= kAttempts)) throw;
    }
  }
}

MessagePtr ResourceStorage::finalize(std::string_view name, MessagePtr object, bool dry_run) {
  if (type_.kind != "Namespace") {
    throw ApiError(404, "NotFound", "the server could not find the requested resource");
  }
  store::KeyValue kv = read("", name);
  MessagePtr current = decode(kv);
  const auto& in = meta(*object);
  if (!in.name().empty() && in.name() != name) {
    throw badRequest("the name of the object (" + in.name() +
                     ") does not match the name on the URL (" + std::string(name) + ")");
  }
  if (!in.resource_version().empty() && in.resource_version() != std::to_string(kv.mod_revision)) {
    throw staleUpdate(groupResource(), name);
  }
  // Only spec.finalizers come from the request.
  MessagePtr next = newObject();
  next->CopyFrom(*current);
  *dynamic_cast<api::core::v1::Namespace&>(*next).mutable_spec()->mutable_finalizers() =
      dynamic_cast<const api::core::v1::Namespace&>(*object).spec().finalizers();
  return applyUpdate("", name, current, kv.mod_revision, std::move(next), dry_run);
}

MessagePtr ResourceStorage::applyUpdate(std::string_view ns, std::string_view name,
                                        const MessagePtr& current, int64_t current_revision,
                                        MessagePtr next, bool dry_run) {
  const auto& old_meta = meta(*current);
  auto& m = mutableMeta(*next);
  // What the server owns stays as it was.
  m.set_name(std::string(name));
  if (type_.namespaced) m.set_namespace_(std::string(ns));
  m.set_uid(old_meta.uid());
  *m.mutable_creation_timestamp() = old_meta.creation_timestamp();
  if (old_meta.has_deletion_timestamp()) {
    *m.mutable_deletion_timestamp() = old_meta.deletion_timestamp();
    if (old_meta.has_deletion_grace_period_seconds()) {
      m.set_deletion_grace_period_seconds(old_meta.deletion_grace_period_seconds());
    }
  } else {
    m.clear_deletion_timestamp();
    m.clear_deletion_grace_period_seconds();
  }
  m.clear_self_link();
  if (old_meta.has_generation()) {
    m.set_generation(old_meta.generation());
    const Message* old_spec = subMessage(*current, "spec");
    const Message* new_spec = subMessage(*next, "spec");
    if (old_spec != nullptr && new_spec != nullptr &&
        deterministicBytes(*old_spec) != deterministicBytes(*new_spec)) {
      m.set_generation(old_meta.generation() + 1);
    }
  }
  m.set_resource_version(std::to_string(current_revision));
  std::string value = serializeStored(*next);
  if (value == serializeStored(*current)) return next;  // nothing changed: no new revision

  // An object being deleted goes once its last finalizer is removed (a namespace once its
  // spec.finalizers are empty too).
  bool finalize = m.has_deletion_timestamp() && m.finalizers_size() == 0;
  if (const auto* ns_object = dynamic_cast<const api::core::v1::Namespace*>(next.get())) {
    finalize = finalize && ns_object->spec().finalizers_size() == 0;
  }
  if (dry_run) return next;
  try {
    if (finalize) {
      store_.remove(key(ns, name), current_revision);
      return next;
    }
    int64_t rev = store_.update(key(ns, name), value, current_revision);
    m.set_resource_version(std::to_string(rev));
  } catch (const store::StoreError& e) {
    throwStoreError(e, groupResource(), name);
  }
  return next;
}

MessagePtr ResourceStorage::remove(std::string_view ns, std::string_view name,
                                   const api::meta::v1::DeleteOptions& options, bool dry_run) {
  std::optional<store::KeyValue> kv = read(ns, name);
  MessagePtr current = decode(*kv);
  const auto& old_meta = meta(*current);
  if (options.has_preconditions()) {
    const auto& p = options.preconditions();
    if (p.has_uid() && p.uid() != old_meta.uid()) {
      throw conflict(groupResource(), name,
                     "Precondition failed: UID in precondition: " + p.uid() +
                         ", UID in object meta: " + old_meta.uid());
    }
    if (p.has_resource_version() && p.resource_version() != old_meta.resource_version()) {
      throw conflict(
          groupResource(), name,
          "Precondition failed: ResourceVersion in precondition: " + p.resource_version() +
              ", ResourceVersion in object meta: " + old_meta.resource_version());
    }
  }
  const std::string& policy = options.propagation_policy();
  if (!policy.empty() && policy != "Orphan" && policy != "Background" && policy != "Foreground") {
    throw badRequest("propagationPolicy: Unsupported value: \"" + policy +
                     "\": supported values: \"Orphan\", \"Background\", \"Foreground\"");
  }

  if (type_.kind == "Namespace") {
    const auto& ns_object = dynamic_cast<const api::core::v1::Namespace&>(*current);
    if (!old_meta.has_deletion_timestamp()) {
      return markNamespaceTerminating(*current, kv->mod_revision, options, dry_run);
    }
    // The namespace controller removes the content first, then its finalizer.
    if (ns_object.spec().finalizers_size() > 0) {
      throw conflict(groupResource(), name,
                     "The system is ensuring all content is removed from this namespace.  Upon "
                     "completion, this namespace will automatically be purged by the system.");
    }
  }

  // A pod on a node is deleted gracefully: marked, and removed by its kubelet once stopped.
  int64_t grace = 0;
  if (const auto* pod = dynamic_cast<const api::core::v1::Pod*>(current.get())) {
    const std::string& phase = pod->status().phase();
    bool finished = phase == "Succeeded" || phase == "Failed";
    if (!pod->spec().node_name().empty() && !finished) {
      grace = pod->spec().has_termination_grace_period_seconds()
                  ? pod->spec().termination_grace_period_seconds()
                  : 30;  // Kubernetes' default
      if (options.has_grace_period_seconds()) grace = options.grace_period_seconds();
    }
  }
  std::vector<std::string> add_finalizers;
  if (policy == "Orphan" ||
      (policy.empty() && options.has_orphan_dependents() && options.orphan_dependents())) {
    add_finalizers.emplace_back("orphan");
  } else if (policy == "Foreground") {
    add_finalizers.emplace_back("foregroundDeletion");
  }

  bool has_finalizers = old_meta.finalizers_size() > 0 || !add_finalizers.empty();
  if (!has_finalizers && grace <= 0) {
    if (dry_run) return current;
    try {
      store_.remove(key(ns, name), kv->mod_revision);
    } catch (const store::StoreError& e) {
      throwStoreError(e, groupResource(), name);
    }
    return current;
  }
  // Mark it for deletion; finalizers (or the kubelet) finish the job.
  MessagePtr next = newObject();
  next->CopyFrom(*current);
  auto& m = mutableMeta(*next);
  for (const auto& f : add_finalizers) {
    if (std::find(m.finalizers().begin(), m.finalizers().end(), f) == m.finalizers().end()) {
      m.add_finalizers(f);
    }
  }
  if (!m.has_deletion_timestamp()) {
    api::Timestamp now = api::now();
    now.seconds += grace;
    setTime(*m.mutable_deletion_timestamp(), now);
    m.set_deletion_grace_period_seconds(grace);
  } else if (grace < m.deletion_grace_period_seconds()) {
    // A shorter grace period than the one running wins, as in Kubernetes.
    api::Timestamp now = api::now();
    now.seconds += grace;
    setTime(*m.mutable_deletion_timestamp(), now);
    m.set_deletion_grace_period_seconds(grace);
  }
  if (m.finalizers_size() == 0 && grace <= 0) {
    if (dry_run) return next;
    try {
      store_.remove(key(ns, name), kv->mod_revision);
    } catch (const store::StoreError& e) {
      throwStoreError(e, groupResource(), name);
    }
    return next;
  }
  if (dry_run) return next;
  try {
    int64_t rev = store_.update(key(ns, name), serializeStored(*next), kv->mod_revision);
    m.set_resource_version(std::to_string(rev));
  } catch (const store::StoreError& e) {
    throwStoreError(e, groupResource(), name);
  }
  return next;
}

MessagePtr ResourceStorage::markNamespaceTerminating(const Message& current, int64_t revision,
                                                     const api::meta::v1::DeleteOptions& options,
                                                     bool dry_run) {
  // The first delete only starts termination, as Kubernetes' namespace storage does.
  MessagePtr next = newObject();
  next->CopyFrom(current);
  auto& ns_object = dynamic_cast<api::core::v1::Namespace&>(*next);
  auto& m = *ns_object.mutable_metadata();
  setTime(*m.mutable_deletion_timestamp(), api::now());
  m.set_deletion_grace_period_seconds(0);
  ns_object.mutable_status()->set_phase("Terminating");
  const std::string& policy = options.propagation_policy();
  auto ensure = [&](const char* finalizer, bool wanted) {
    auto& f = *m.mutable_finalizers();
    auto it = std::find(f.begin(), f.end(), finalizer);
    if (wanted && it == f.end()) m.add_finalizers(finalizer);
    if (!wanted && it != f.end()) f.erase(it);
  };
  bool orphan = policy == "Orphan" ||
                (policy.empty() && options.has_orphan_dependents() && options.orphan_dependents());
  if (orphan || policy == "Foreground") {
    ensure("orphan", orphan);
    ensure("foregroundDeletion", policy == "Foreground");
  }
  if (dry_run) return next;
  try {
    int64_t rev = store_.update(key("", m.name()), serializeStored(*next), revision);
    m.set_resource_version(std::to_string(rev));
  } catch (const store::StoreError& e) {
    throwStoreError(e, groupResource(), m.name());
  }
  return next;
}

store::WatchPtr ResourceStorage::watchStore(std::string_view ns, int64_t revision) const {
  try {
    return store_.watch(store::resourcePrefix(type_.plural, type_.namespaced ? ns : ""), revision);
  } catch (const store::StoreError& e) {
    if (e.code() == store::ErrorCode::kCompacted) {
      throw gone("too old resource version: " + std::to_string(revision) + " (" +
                 std::to_string(store_.compactedRevision()) + ")");
    }
    throwStoreError(e, groupResource(), "");
  }
}

WatchEvent ResourceStorage::toWatchEvent(const store::Event& event) const {
  WatchEvent out;
  out.revision = event.kv.mod_revision;
  switch (event.type) {
    case store::Event::Type::kCreate:
      out.type = WatchEvent::Type::kAdded;
      out.object = decode(event.kv);
      break;
    case store::Event::Type::kUpdate:
      out.type = WatchEvent::Type::kModified;
      out.object = decode(event.kv);
      break;
    case store::Event::Type::kDelete:
      // A deleted object is reported as it last was, at the delete's revision.
      out.type = WatchEvent::Type::kDeleted;
      if (event.prev) {
        out.object = decode(*event.prev);
      } else {
        out.object = newObject();
      }
      mutableMeta(*out.object).set_resource_version(std::to_string(event.kv.mod_revision));
      break;
  }
  return out;
}

}  // namespace skiff::apiserver
