#include "control/apiserver/openapi.h"

#include <map>
#include <set>

#include "control/api/json.h"
#include "control/api/registry.h"
#include "skiff/api/options.pb.h"

namespace skiff::apiserver {
namespace {

using api::Value;
using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

// Kubernetes' definition names: io.k8s.api.apps.v1.Deployment,
// io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta.
std::string definitionName(const Descriptor* d) {
  const std::string& package = d->file()->package();  // skiff.api.apps.v1
  if (package == "skiff.api.meta.v1") return "io.k8s.apimachinery.pkg.apis.meta.v1." + d->name();
  if (package == "skiff.api.runtime") {
    if (d->name() == "IntOrString") return "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
    if (d->name() == "Quantity") return "io.k8s.apimachinery.pkg.api.resource.Quantity";
    return "io.k8s.apimachinery.pkg.runtime." + d->name();
  }
  std::string rest = package.substr(std::string("skiff.api.").size());
  return "io.k8s.api." + rest + "." + d->name();
}

Value str(std::string s) {
  return Value::string(std::move(s));
}

Value ref(const Descriptor* d) {
  Value r = Value::object();
  r.append("$ref", str("#/components/schemas/" + definitionName(d)));
  return r;
}

Value gvkValue(const api::ResourceType& t) {
  Value g = Value::object();
  g.append("group", str(t.group));
  g.append("kind", str(t.kind));
  g.append("version", str(t.version));
  return g;
}

class SchemaBuilder {
 public:
  void add(const Descriptor* d) {
    std::string name = definitionName(d);
    if (!seen_.insert(name).second) return;
    schemas_.emplace(name, schemaOf(d));
  }
  Value take() {
    Value out = Value::object();
    for (auto& [name, schema] : schemas_)
      out.append(name, std::move(schema));
    return out;
  }

 private:
  Value scalar(const FieldDescriptor* f) {
    Value s = Value::object();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        s.append("type", str("string"));
        if (f->type() == FieldDescriptor::TYPE_BYTES) s.append("format", str("byte"));
        break;
      case FieldDescriptor::CPPTYPE_INT32:
      case FieldDescriptor::CPPTYPE_UINT32:
        s.append("type", str("integer"));
        s.append("format", str("int32"));
        break;
      case FieldDescriptor::CPPTYPE_INT64:
      case FieldDescriptor::CPPTYPE_UINT64:
        s.append("type", str("integer"));
        s.append("format", str("int64"));
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        s.append("type", str("boolean"));
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
      case FieldDescriptor::CPPTYPE_FLOAT:
        s.append("type", str("number"));
        break;
      case FieldDescriptor::CPPTYPE_ENUM:
        s.append("type", str("string"));
        break;
      case FieldDescriptor::CPPTYPE_MESSAGE:
        add(f->message_type());
        return ref(f->message_type());
    }
    return s;
  }

  Value schemaOf(const Descriptor* d) {
    Value s = Value::object();
    switch (d->options().GetExtension(skiff::api::json_form)) {
      case api::JSON_FORM_INT_OR_STRING:
        s.append("type", str("string"));
        s.append("format", str("int-or-string"));
        s.append("x-kubernetes-int-or-string", Value::boolean(true));
        return s;
      case api::JSON_FORM_QUANTITY:
        s.append("type", str("string"));
        s.append("format", str("quantity"));
        s.append("x-kubernetes-int-or-string", Value::boolean(true));
        return s;
      case api::JSON_FORM_TIME:
      case api::JSON_FORM_MICRO_TIME:
        s.append("type", str("string"));
        s.append("format", str("date-time"));
        return s;
      case api::JSON_FORM_DURATION:
        s.append("type", str("string"));
        return s;
      case api::JSON_FORM_RAW:
        s.append("type", str("object"));
        s.append("x-kubernetes-preserve-unknown-fields", Value::boolean(true));
        return s;
      case api::JSON_FORM_OBJECT:
        break;
    }
    s.append("type", str("object"));
    Value props = Value::object();
    const auto* type = api::Registry::builtin().byDescriptor(d);
    if (type != nullptr) {
      Value s1 = Value::object();
      s1.append("type", str("string"));
      s1.append(
          "description",
          str("APIVersion defines the versioned schema of this representation of an object."));
      props.append("apiVersion", std::move(s1));
      Value s2 = Value::object();
      s2.append("type", str("string"));
      s2.append(
          "description",
          str("Kind is a string value representing the REST resource this object represents."));
      props.append("kind", std::move(s2));
    }
    Value required = Value::array();
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      if (f->options().GetExtension(skiff::api::required)) required.push(str(f->json_name()));
      Value p;
      if (f->is_map()) {
        p = Value::object();
        p.append("type", str("object"));
        p.append("additionalProperties", scalar(f->message_type()->map_value()));
      } else if (f->is_repeated()) {
        p = Value::object();
        p.append("type", str("array"));
        p.append("items", scalar(f));
        const auto& o = f->options();
        if (o.HasExtension(skiff::api::list_type)) {
          p.append("x-kubernetes-list-type", str(o.GetExtension(skiff::api::list_type)));
        }
        if (o.ExtensionSize(skiff::api::list_map_keys) > 0) {
          Value keys = Value::array();
          for (int k = 0; k < o.ExtensionSize(skiff::api::list_map_keys); ++k) {
            keys.push(str(o.GetExtension(skiff::api::list_map_keys, k)));
          }
          p.append("x-kubernetes-list-map-keys", std::move(keys));
        }
        if (o.HasExtension(skiff::api::patch_merge_key)) {
          p.append("x-kubernetes-patch-merge-key",
                   str(o.GetExtension(skiff::api::patch_merge_key)));
        }
        if (o.HasExtension(skiff::api::patch_strategy)) {
          p.append("x-kubernetes-patch-strategy", str(o.GetExtension(skiff::api::patch_strategy)));
        }
      } else {
        p = scalar(f);
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
          // Kubernetes wraps references in allOf so that siblings (defaults) are allowed.
          Value wrapped = Value::object();
          Value all = Value::array();
          all.push(std::move(p));
          wrapped.append("allOf", std::move(all));
          wrapped.append("default", Value::object());
          p = std::move(wrapped);
        }
      }
      props.append(f->json_name(), std::move(p));
    }
    s.append("properties", std::move(props));
    if (!required.items().empty()) s.append("required", std::move(required));
    if (type != nullptr) {
      Value gvks = Value::array();
      gvks.push(gvkValue(*type));
      s.append("x-kubernetes-group-version-kind", std::move(gvks));
    }
    return s;
  }

  std::set<std::string> seen_;
  std::map<std::string, Value> schemas_;
};

Value queryParam(const std::string& name, const std::string& type, const std::string& description) {
  Value p = Value::object();
  p.append("name", str(name));
  p.append("in", str("query"));
  p.append("description", str(description));
  Value schema = Value::object();
  schema.append("type", str(type));
  schema.append("uniqueItems", Value::boolean(true));
  p.append("schema", std::move(schema));
  return p;
}

Value pathParam(const std::string& name) {
  Value p = Value::object();
  p.append("name", str(name));
  p.append("in", str("path"));
  p.append("required", Value::boolean(true));
  Value schema = Value::object();
  schema.append("type", str("string"));
  schema.append("uniqueItems", Value::boolean(true));
  p.append("schema", std::move(schema));
  return p;
}

Value operation(const api::ResourceType& t, const std::string& action, const std::string& id,
                const Descriptor* body_type, const std::vector<std::string>& path_params,
                bool mutating) {
  Value op = Value::object();
  op.append("operationId", str(id));
  Value params = Value::array();
  for (const auto& p : path_params)
    params.push(pathParam(p));
  if (mutating) {
    params.push(queryParam("dryRun", "string", "When present, modifications are not persisted."));
    params.push(queryParam("fieldManager", "string",
                           "A name associated with the actor making these changes."));
    params.push(queryParam("fieldValidation", "string",
                           "How the server handles unknown and duplicate fields: Ignore, Warn (the "
                           "default) or Strict."));
  }
  if (action == "patch") params.push(queryParam("force", "boolean", "Force an apply patch."));
  if (action == "list" || action == "watchlist") {
    for (const char* q : {"labelSelector", "fieldSelector", "continue", "resourceVersion",
                          "resourceVersionMatch"}) {
      params.push(queryParam(q, "string", ""));
    }
    params.push(queryParam("limit", "integer", ""));
    params.push(queryParam("watch", "boolean", ""));
    params.push(queryParam("allowWatchBookmarks", "boolean", ""));
    params.push(queryParam("timeoutSeconds", "integer", ""));
  }
  op.append("parameters", std::move(params));
  if (body_type != nullptr && (action == "post" || action == "put" || action == "patch")) {
    Value body = Value::object();
    Value content = Value::object();
    std::vector<std::string> types = {"application/json", "application/yaml"};
    if (action == "patch") {
      types = {"application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json"};
    }
    for (const auto& ct : types) {
      Value media = Value::object();
      Value schema = Value::object();
      if (action == "patch") {
        schema.append("type", str("object"));
      } else {
        schema = ref(body_type);
      }
      media.append("schema", std::move(schema));
      content.append(ct, std::move(media));
    }
    body.append("content", std::move(content));
    body.append("required", Value::boolean(true));
    op.append("requestBody", std::move(body));
  }
  Value responses = Value::object();
  Value ok = Value::object();
  ok.append("description", str("OK"));
  if (body_type != nullptr) {
    Value content = Value::object();
    Value media = Value::object();
    media.append("schema", ref(body_type));
    content.append("application/json", std::move(media));
    ok.append("content", std::move(content));
  }
  responses.append(action == "post" ? "201" : "200", std::move(ok));
  op.append("responses", std::move(responses));
  op.append("x-kubernetes-action", str(action));
  op.append("x-kubernetes-group-version-kind", gvkValue(t));
  return op;
}

std::string fnv(const std::string& text) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llX", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

OpenApi::OpenApi() {
  const auto& registry = api::Registry::builtin();
  std::map<std::string, std::vector<const api::ResourceType*>> by_gv;
  for (const auto& t : registry.types()) {
    if (!t.served()) continue;
    by_gv[t.group.empty() ? "api/" + t.version : "apis/" + t.group + "/" + t.version].push_back(&t);
  }
  Value index_paths = Value::object();
  for (const auto& [gv, types] : by_gv) {
    SchemaBuilder schemas;
    Value paths = Value::object();
    std::string prefix = "/" + gv + "/";
    for (const auto* t : types) {
      schemas.add(t->descriptor);
      std::string kind = t->kind;
      std::string base =
          t->namespaced ? prefix + "namespaces/{namespace}/" + t->plural : prefix + t->plural;
      std::vector<std::string> ns_params;
      if (t->namespaced) ns_params.push_back("namespace");
      std::vector<std::string> item_params = ns_params;
      item_params.push_back("name");

      Value collection = Value::object();
      collection.append("get", operation(*t, "list", "list" + kind, nullptr, ns_params, false));
      collection.append("post",
                        operation(*t, "post", "create" + kind, t->descriptor, ns_params, true));
      collection.append("delete", operation(*t, "deletecollection", "deletecollection" + kind,
                                            nullptr, ns_params, true));
      paths.append(base, std::move(collection));

      Value item = Value::object();
      item.append("get", operation(*t, "get", "read" + kind, t->descriptor, item_params, false));
      item.append("put", operation(*t, "put", "replace" + kind, t->descriptor, item_params, true));
      item.append("patch",
                  operation(*t, "patch", "patch" + kind, t->descriptor, item_params, true));
      item.append("delete", operation(*t, "delete", "delete" + kind, nullptr, item_params, true));
      paths.append(base + "/{name}", std::move(item));

      for (const auto& sub : t->subresources) {
        if (sub != "status") continue;
        Value status = Value::object();
        status.append("get", operation(*t, "get", "read" + kind + "Status", t->descriptor,
                                       item_params, false));
        status.append("put", operation(*t, "put", "replace" + kind + "Status", t->descriptor,
                                       item_params, true));
        status.append("patch", operation(*t, "patch", "patch" + kind + "Status", t->descriptor,
                                         item_params, true));
        paths.append(base + "/{name}/status", std::move(status));
      }
      if (t->namespaced) {
        Value all = Value::object();
        all.append("get",
                   operation(*t, "list", "list" + kind + "ForAllNamespaces", nullptr, {}, false));
        paths.append(prefix + t->plural, std::move(all));
      }
    }
    Value doc = Value::object();
    doc.append("openapi", str("3.0.0"));
    Value info = Value::object();
    info.append("title", str("Kubernetes"));
    info.append("version", str("v1.32.0"));
    doc.append("info", std::move(info));
    doc.append("paths", std::move(paths));
    Value components = Value::object();
    components.append("schemas", schemas.take());
    doc.append("components", std::move(components));
    std::string text = api::writeJson(doc);
    Value entry = Value::object();
    entry.append("serverRelativeURL", str("/openapi/v3/" + gv + "?hash=" + fnv(text)));
    index_paths.append(gv, std::move(entry));
    documents_.emplace_back(gv, std::move(text));
  }
  Value index = Value::object();
  index.append("paths", std::move(index_paths));
  index_ = api::writeJson(index);
}

const OpenApi& OpenApi::instance() {
  static const OpenApi openapi;
  return openapi;
}

std::optional<std::string> OpenApi::document(std::string_view group_version_path) const {
  for (const auto& [gv, text] : documents_) {
    if (gv == group_version_path) return text;
  }
  return std::nullopt;
}

}  // namespace skiff::apiserver
