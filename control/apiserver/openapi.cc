#include "control/apiserver/openapi.h"

#include <algorithm>
#include <map>
#include <set>

#include "control/api/json.h"
#include "control/api/registry.h"
#include "skiff/api/options.pb.h"
#include "skiff/openapi/v2/openapi_v2.pb.h"

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

// v3 documents keep schemas under components and wrap a field's reference in allOf (so that
// siblings such as defaults are allowed); v2 keeps them under definitions and refers directly.
enum class Dialect { kV2, kV3 };

Value ref(const Descriptor* d, Dialect dialect) {
  Value r = Value::object();
  r.append("$ref", str((dialect == Dialect::kV3 ? "#/components/schemas/" : "#/definitions/") +
                       definitionName(d)));
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
  explicit SchemaBuilder(Dialect dialect) : dialect_(dialect) {}
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
        return ref(f->message_type(), dialect_);
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
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && dialect_ == Dialect::kV3) {
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

  Dialect dialect_;
  std::set<std::string> seen_;
  std::map<std::string, Value> schemas_;
};

// One operation of a path: what both dialects say about it.
struct OperationSpec {
  std::string method;  // get, put, post, delete, patch
  std::string action;  // x-kubernetes-action: get, list, post, put, patch, delete, deletecollection
  std::string id;
  const api::ResourceType* gvk = nullptr;  // the kind it speaks (Scale for the scale subresource)
  const Descriptor* body = nullptr;        // request and response body, if any
  std::vector<std::string> path_params;
  bool mutating = false;
};

struct PathSpec {
  std::string path;
  std::vector<OperationSpec> operations;
};

// The paths of one served resource, as kube-apiserver lays them out.
std::vector<PathSpec> pathsOf(const api::ResourceType& t, const std::string& prefix) {
  std::vector<PathSpec> out;
  const std::string& kind = t.kind;
  std::string base =
      t.namespaced ? prefix + "namespaces/{namespace}/" + t.plural : prefix + t.plural;
  std::vector<std::string> ns_params;
  if (t.namespaced) ns_params.push_back("namespace");
  std::vector<std::string> item_params = ns_params;
  item_params.push_back("name");

  out.push_back(
      {base,
       {{"get", "list", "list" + kind, &t, nullptr, ns_params, false},
        {"post", "post", "create" + kind, &t, t.descriptor, ns_params, true},
        {"delete", "deletecollection", "deletecollection" + kind, &t, nullptr, ns_params, true}}});
  out.push_back({base + "/{name}",
                 {{"get", "get", "read" + kind, &t, t.descriptor, item_params, false},
                  {"put", "put", "replace" + kind, &t, t.descriptor, item_params, true},
                  {"patch", "patch", "patch" + kind, &t, t.descriptor, item_params, true},
                  {"delete", "delete", "delete" + kind, &t, nullptr, item_params, true}}});
  // The scale subresource speaks autoscaling/v1 Scale, as in Kubernetes' apps/v1 document:
  // kubectl looks the kind up there for `scale` and `apply --subresource=scale`.
  const api::ResourceType* scale = api::Registry::builtin().byKind("autoscaling/v1", "Scale");
  auto has = [&](std::string_view sub) {
    return std::find(t.subresources.begin(), t.subresources.end(), sub) != t.subresources.end();
  };
  if (scale != nullptr && has("scale")) {
    const Descriptor* b = scale->descriptor;
    out.push_back({base + "/{name}/scale",
                   {{"get", "get", "read" + kind + "Scale", scale, b, item_params, false},
                    {"put", "put", "replace" + kind + "Scale", scale, b, item_params, true},
                    {"patch", "patch", "patch" + kind + "Scale", scale, b, item_params, true}}});
  }
  if (has("status")) {
    out.push_back(
        {base + "/{name}/status",
         {{"get", "get", "read" + kind + "Status", &t, t.descriptor, item_params, false},
          {"put", "put", "replace" + kind + "Status", &t, t.descriptor, item_params, true},
          {"patch", "patch", "patch" + kind + "Status", &t, t.descriptor, item_params, true}}});
  }
  if (has("approval")) {  // CertificateSigningRequests
    out.push_back(
        {base + "/{name}/approval",
         {{"get", "get", "read" + kind + "Approval", &t, t.descriptor, item_params, false},
          {"put", "put", "replace" + kind + "Approval", &t, t.descriptor, item_params, true},
          {"patch", "patch", "patch" + kind + "Approval", &t, t.descriptor, item_params, true}}});
  }
  if (t.namespaced) {
    out.push_back({prefix + t.plural,
                   {{"get", "list", "list" + kind + "ForAllNamespaces", &t, nullptr, {}, false}}});
  }
  return out;
}

struct QueryParamSpec {
  const char* name;
  const char* type;
  const char* description;
};

// The query parameters of an operation; kubectl looks for fieldValidation on PATCH to decide
// whether the server validates fields itself.
std::vector<QueryParamSpec> queryParamsOf(const OperationSpec& op) {
  std::vector<QueryParamSpec> out;
  if (op.mutating) {
    out.push_back({"dryRun", "string", "When present, modifications are not persisted."});
    out.push_back(
        {"fieldManager", "string", "A name associated with the actor making these changes."});
    out.push_back({"fieldValidation", "string",
                   "How the server handles unknown and duplicate fields: Ignore, Warn (the "
                   "default) or Strict."});
  }
  if (op.action == "patch") out.push_back({"force", "boolean", "Force an apply patch."});
  if (op.action == "list") {
    for (const char* q : {"labelSelector", "fieldSelector", "continue", "resourceVersion",
                          "resourceVersionMatch"}) {
      out.push_back({q, "string", ""});
    }
    out.push_back({"limit", "integer", ""});
    out.push_back({"watch", "boolean", ""});
    out.push_back({"allowWatchBookmarks", "boolean", ""});
    out.push_back({"timeoutSeconds", "integer", ""});
  }
  return out;
}

const std::vector<std::string> kPatchTypes = {
    "application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json",
    "application/strategic-merge-patch+json"};

Value stringArray(const std::vector<std::string>& items) {
  Value a = Value::array();
  for (const auto& i : items)
    a.push(str(i));
  return a;
}

Value operationV3(const OperationSpec& spec) {
  Value op = Value::object();
  op.append("operationId", str(spec.id));
  Value params = Value::array();
  for (const auto& name : spec.path_params) {
    Value p = Value::object();
    p.append("name", str(name));
    p.append("in", str("path"));
    p.append("required", Value::boolean(true));
    Value schema = Value::object();
    schema.append("type", str("string"));
    schema.append("uniqueItems", Value::boolean(true));
    p.append("schema", std::move(schema));
    params.push(std::move(p));
  }
  for (const auto& q : queryParamsOf(spec)) {
    Value p = Value::object();
    p.append("name", str(q.name));
    p.append("in", str("query"));
    p.append("description", str(q.description));
    Value schema = Value::object();
    schema.append("type", str(q.type));
    schema.append("uniqueItems", Value::boolean(true));
    p.append("schema", std::move(schema));
    params.push(std::move(p));
  }
  op.append("parameters", std::move(params));
  const std::string& a = spec.action;
  if (spec.body != nullptr && (a == "post" || a == "put" || a == "patch")) {
    Value body = Value::object();
    Value content = Value::object();
    std::vector<std::string> types = {"application/json", "application/yaml"};
    if (a == "patch") types = kPatchTypes;
    for (const auto& ct : types) {
      Value media = Value::object();
      Value schema = Value::object();
      if (a == "patch") {
        schema.append("type", str("object"));
      } else {
        schema = ref(spec.body, Dialect::kV3);
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
  if (spec.body != nullptr) {
    Value content = Value::object();
    Value media = Value::object();
    media.append("schema", ref(spec.body, Dialect::kV3));
    content.append("application/json", std::move(media));
    ok.append("content", std::move(content));
  }
  responses.append(a == "post" ? "201" : "200", std::move(ok));
  op.append("responses", std::move(responses));
  op.append("x-kubernetes-action", str(a));
  op.append("x-kubernetes-group-version-kind", gvkValue(*spec.gvk));
  return op;
}

Value operationV2(const OperationSpec& spec) {
  Value op = Value::object();
  const std::string& a = spec.action;
  op.append("consumes", a == "patch" ? stringArray(kPatchTypes) : stringArray({"*/*"}));
  op.append("produces", stringArray({"application/json", "application/yaml",
                                     "application/vnd.kubernetes.protobuf"}));
  op.append("schemes", stringArray({"https"}));
  op.append("operationId", str(spec.id));
  Value params = Value::array();
  if (spec.body != nullptr && (a == "post" || a == "put" || a == "patch")) {
    Value p = Value::object();
    p.append("name", str("body"));
    p.append("in", str("body"));
    p.append("required", Value::boolean(true));
    if (a == "patch") {
      Value schema = Value::object();
      schema.append("type", str("object"));
      p.append("schema", std::move(schema));
    } else {
      p.append("schema", ref(spec.body, Dialect::kV2));
    }
    params.push(std::move(p));
  }
  for (const auto& name : spec.path_params) {
    Value p = Value::object();
    p.append("uniqueItems", Value::boolean(true));
    p.append("type", str("string"));
    p.append("name", str(name));
    p.append("in", str("path"));
    p.append("required", Value::boolean(true));
    params.push(std::move(p));
  }
  for (const auto& q : queryParamsOf(spec)) {
    Value p = Value::object();
    p.append("uniqueItems", Value::boolean(true));
    p.append("type", str(q.type));
    p.append("description", str(q.description));
    p.append("name", str(q.name));
    p.append("in", str("query"));
    params.push(std::move(p));
  }
  op.append("parameters", std::move(params));
  Value responses = Value::object();
  Value ok = Value::object();
  ok.append("description", str("OK"));
  if (spec.body != nullptr) ok.append("schema", ref(spec.body, Dialect::kV2));
  responses.append(a == "post" ? "201" : "200", std::move(ok));
  Value unauthorized = Value::object();
  unauthorized.append("description", str("Unauthorized"));
  responses.append("401", std::move(unauthorized));
  op.append("responses", std::move(responses));
  op.append("x-kubernetes-action", str(a));
  op.append("x-kubernetes-group-version-kind", gvkValue(*spec.gvk));
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

Value info() {
  Value i = Value::object();
  i.append("title", str("Kubernetes"));
  i.append("version", str("v1.32.0"));
  return i;
}

// The v2 document in gnostic's protobuf messages, read from its JSON form.
namespace v2 = skiff::openapi::v2;

void toAny(const Value& v, v2::Any& out) {
  out.set_yaml(api::writeJson(v));  // JSON is YAML; client-go reads the field as YAML
}

void toSchema(const Value& v, v2::Schema& s) {
  for (const auto& [key, key_mark, x] : v.members()) {
    if (key == "$ref") {
      s.set__ref(x.text());
    } else if (key == "format") {
      s.set_format(x.text());
    } else if (key == "description") {
      s.set_description(x.text());
    } else if (key == "default") {
      toAny(x, *s.mutable_default_());
    } else if (key == "required") {
      for (const auto& r : x.items())
        s.add_required(r.text());
    } else if (key == "additionalProperties") {
      if (x.isBool()) {
        s.mutable_additional_properties()->set_boolean(x.asBool());
      } else {
        toSchema(x, *s.mutable_additional_properties()->mutable_schema());
      }
    } else if (key == "type") {
      s.mutable_type()->add_value(x.text());
    } else if (key == "items") {
      toSchema(x, *s.mutable_items()->add_schema());
    } else if (key == "allOf") {
      for (const auto& a : x.items())
        toSchema(a, *s.add_all_of());
    } else if (key == "properties") {
      for (const auto& [name, name_mark, prop] : x.members()) {
        auto* named = s.mutable_properties()->add_additional_properties();
        named->set_name(name);
        toSchema(prop, *named->mutable_value());
      }
    } else if (key.starts_with("x-")) {
      auto* ext = s.add_vendor_extension();
      ext->set_name(key);
      toAny(x, *ext->mutable_value());
    }
  }
}

void toParameter(const Value& p, v2::ParametersItem& out) {
  auto text = [&](const char* k) {
    const Value* f = p.find(k);
    return f != nullptr ? f->text() : std::string();
  };
  auto flag = [&](const char* k) {
    const Value* f = p.find(k);
    return f != nullptr && f->isBool() && f->asBool();
  };
  const std::string in = text("in");
  auto* param = out.mutable_parameter();
  if (in == "body") {
    auto* b = param->mutable_body_parameter();
    b->set_name(text("name"));
    b->set_in(in);
    b->set_required(flag("required"));
    b->set_description(text("description"));
    if (const Value* schema = p.find("schema")) toSchema(*schema, *b->mutable_schema());
  } else if (in == "query" || in == "path") {
    // The two sub-schemas have the same fields under different numbers.
    auto fill = [&](auto* q) {
      q->set_name(text("name"));
      q->set_in(in);
      q->set_required(flag("required"));
      q->set_description(text("description"));
      q->set_type(text("type"));
      q->set_unique_items(flag("uniqueItems"));
    };
    auto* non_body = param->mutable_non_body_parameter();
    if (in == "query") {
      fill(non_body->mutable_query_parameter_sub_schema());
    } else {
      fill(non_body->mutable_path_parameter_sub_schema());
    }
  }
}

void toOperation(const Value& v, v2::Operation& op) {
  for (const auto& [key, key_mark, x] : v.members()) {
    if (key == "description") {
      op.set_description(x.text());
    } else if (key == "operationId") {
      op.set_operation_id(x.text());
    } else if (key == "consumes") {
      for (const auto& c : x.items())
        op.add_consumes(c.text());
    } else if (key == "produces") {
      for (const auto& c : x.items())
        op.add_produces(c.text());
    } else if (key == "schemes") {
      for (const auto& c : x.items())
        op.add_schemes(c.text());
    } else if (key == "parameters") {
      for (const auto& p : x.items())
        toParameter(p, *op.add_parameters());
    } else if (key == "responses") {
      for (const auto& [code, code_mark, r] : x.members()) {
        auto* named = op.mutable_responses()->add_response_code();
        named->set_name(code);
        auto* response = named->mutable_value()->mutable_response();
        if (const Value* d = r.find("description")) response->set_description(d->text());
        if (const Value* schema = r.find("schema")) {
          toSchema(*schema, *response->mutable_schema()->mutable_schema());
        }
      }
    } else if (key.starts_with("x-")) {
      auto* ext = op.add_vendor_extension();
      ext->set_name(key);
      toAny(x, *ext->mutable_value());
    }
  }
}

v2::Operation* operationSlot(v2::PathItem& item, std::string_view method) {
  if (method == "get") return item.mutable_get();
  if (method == "put") return item.mutable_put();
  if (method == "post") return item.mutable_post();
  if (method == "delete") return item.mutable_delete_();
  if (method == "patch") return item.mutable_patch();
  return nullptr;
}

std::string toProtobuf(const Value& doc) {
  v2::Document out;
  out.set_swagger(doc.find("swagger")->text());
  out.mutable_info()->set_title(doc.find("info")->find("title")->text());
  out.mutable_info()->set_version(doc.find("info")->find("version")->text());
  for (const auto& [path, path_mark, item] : doc.find("paths")->members()) {
    auto* named = out.mutable_paths()->add_path();
    named->set_name(path);
    for (const auto& [method, method_mark, op] : item.members()) {
      if (auto* slot = operationSlot(*named->mutable_value(), method)) toOperation(op, *slot);
    }
  }
  for (const auto& [name, name_mark, schema] : doc.find("definitions")->members()) {
    auto* named = out.mutable_definitions()->add_additional_properties();
    named->set_name(name);
    toSchema(schema, *named->mutable_value());
  }
  return out.SerializeAsString();
}

}  // namespace

OpenApi::OpenApi() {
  const auto& registry = api::Registry::builtin();
  // Kinds that are not served as resources (autoscaling/v1 Scale, Binding, TokenRequest) still
  // get their schema in their group-version's document, as in Kubernetes: kubectl validates a
  // subresource's body (`apply --subresource=scale`) by its kind's document.
  std::map<std::string, std::vector<const api::ResourceType*>> by_gv;
  for (const auto& t : registry.types()) {
    if (t.group == "meta.k8s.io") continue;  // Table: a response form, no document of its own
    by_gv[t.group.empty() ? "api/" + t.version : "apis/" + t.group + "/" + t.version].push_back(&t);
  }
  Value index_paths = Value::object();
  SchemaBuilder v2_schemas(Dialect::kV2);
  Value v2_paths = Value::object();
  for (const auto& [gv, types] : by_gv) {
    SchemaBuilder schemas(Dialect::kV3);
    Value paths = Value::object();
    for (const auto* t : types) {
      schemas.add(t->descriptor);
      v2_schemas.add(t->descriptor);
      if (!t->served()) continue;
      for (const auto& spec : pathsOf(*t, "/" + gv + "/")) {
        Value item = Value::object();
        Value item_v2 = Value::object();
        for (const auto& op : spec.operations) {
          if (op.body != nullptr) {
            schemas.add(op.body);
            v2_schemas.add(op.body);
          }
          item.append(op.method, operationV3(op));
          item_v2.append(op.method, operationV2(op));
        }
        paths.append(spec.path, std::move(item));
        v2_paths.append(spec.path, std::move(item_v2));
      }
    }
    Value doc = Value::object();
    doc.append("openapi", str("3.0.0"));
    doc.append("info", info());
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

  Value v2_doc = Value::object();
  v2_doc.append("swagger", str("2.0"));
  v2_doc.append("info", info());
  v2_doc.append("paths", std::move(v2_paths));
  v2_doc.append("definitions", v2_schemas.take());
  v2_protobuf_ = toProtobuf(v2_doc);
  v2_json_ = api::writeJson(v2_doc);
  v2_etag_ = "\"" + fnv(v2_json_) + "\"";
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
