#include "control/apiserver/openapi.h"

#include <gtest/gtest.h>

#include "control/api/codec.h"
#include "control/api/json.h"
#include "skiff/openapi/v2/openapi_v2.pb.h"

namespace skiff::apiserver {
namespace {

namespace v2 = skiff::openapi::v2;
using api::Value;

Value parse(const std::string& text) {
  return api::parseDocuments(text).at(0);
}

const v2::Operation* patchOf(const v2::Document& doc, const std::string& path) {
  for (const auto& p : doc.paths().path()) {
    if (p.name() == path) return p.value().has_patch() ? &p.value().patch() : nullptr;
  }
  return nullptr;
}

std::string extension(const v2::Operation& op, const std::string& name) {
  for (const auto& e : op.vendor_extension()) {
    if (e.name() == name) return e.value().yaml();
  }
  return "";
}

TEST(OpenApiV3, ScaleSubresourceIsInTheParentsDocumentAndScaleHasADocumentOfItsOwn) {
  const auto& openapi = OpenApi::instance();
  Value apps = parse(*openapi.document("apis/apps/v1"));
  const Value* scale =
      apps.find("paths")->find("/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale");
  ASSERT_NE(scale, nullptr);
  const Value* gvk = scale->find("patch")->find("x-kubernetes-group-version-kind");
  EXPECT_EQ(gvk->find("group")->text(), "autoscaling");
  EXPECT_EQ(gvk->find("kind")->text(), "Scale");
  const Value* schemas = apps.find("components")->find("schemas");
  EXPECT_NE(schemas->find("io.k8s.api.autoscaling.v1.Scale"), nullptr);
  // Apply is a patch type kubectl may send.
  EXPECT_NE(scale->find("patch")
                ->find("requestBody")
                ->find("content")
                ->find("application/apply-patch+yaml"),
            nullptr);

  // autoscaling/v1 serves no resource here, but kubectl fetches the document of a kind's group
  // version to validate it: the Scale schema is there, with no paths.
  Value index = parse(openapi.index());
  ASSERT_NE(index.find("paths")->find("apis/autoscaling/v1"), nullptr);
  Value autoscaling = parse(*openapi.document("apis/autoscaling/v1"));
  EXPECT_TRUE(autoscaling.find("paths")->members().empty());
  EXPECT_NE(
      autoscaling.find("components")->find("schemas")->find("io.k8s.api.autoscaling.v1.Scale"),
      nullptr);
  EXPECT_EQ(index.find("paths")->find("apis/meta.k8s.io/v1"), nullptr);
}

TEST(OpenApiV2, JsonHasEveryPathAndDefinitionsReferDirectly) {
  Value doc = parse(OpenApi::instance().v2Json());
  EXPECT_EQ(doc.find("swagger")->text(), "2.0");
  const Value* paths = doc.find("paths");
  for (const char* p :
       {"/api/v1/namespaces/{namespace}/pods", "/api/v1/nodes/{name}/status",
        "/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}/scale", "/apis/batch/v1/jobs"}) {
    EXPECT_NE(paths->find(p), nullptr) << p;
  }
  const Value* create = paths->find("/api/v1/namespaces/{namespace}/pods")->find("post");
  const Value& body = create->find("parameters")->items().at(0);
  EXPECT_EQ(body.find("in")->text(), "body");
  EXPECT_EQ(body.find("schema")->find("$ref")->text(), "#/definitions/io.k8s.api.core.v1.Pod");
  const Value* spec = doc.find("definitions")
                          ->find("io.k8s.api.apps.v1.Deployment")
                          ->find("properties")
                          ->find("spec");
  EXPECT_EQ(spec->find("$ref")->text(), "#/definitions/io.k8s.api.apps.v1.DeploymentSpec");
  EXPECT_EQ(spec->find("allOf"), nullptr);  // v3's wrapping stays in v3
}

TEST(OpenApiV2, ProtobufIsGnosticsDocumentWithWhatKubectlReads) {
  v2::Document doc;
  ASSERT_TRUE(doc.ParseFromString(OpenApi::instance().v2Protobuf()));
  EXPECT_EQ(doc.swagger(), "2.0");
  EXPECT_EQ(doc.info().title(), "Kubernetes");

  // kubectl's query-parameter check: the PATCH of the kind, its GVK extension as YAML, and a
  // fieldValidation query parameter.
  const auto* patch = patchOf(doc, "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale");
  ASSERT_NE(patch, nullptr);
  Value gvk = parse(extension(*patch, "x-kubernetes-group-version-kind"));
  EXPECT_EQ(gvk.find("kind")->text(), "Scale");
  EXPECT_EQ(gvk.find("version")->text(), "v1");
  bool field_validation = false;
  for (const auto& p : patch->parameters()) {
    const auto& q = p.parameter().non_body_parameter().query_parameter_sub_schema();
    if (q.name() == "fieldValidation") field_validation = q.in() == "query";
  }
  EXPECT_TRUE(field_validation);
  EXPECT_EQ(extension(*patch, "x-kubernetes-action"), "\"patch\"");

  const v2::Schema* deployment = nullptr;
  for (const auto& d : doc.definitions().additional_properties()) {
    if (d.name() == "io.k8s.api.apps.v1.Deployment") deployment = &d.value();
  }
  ASSERT_NE(deployment, nullptr);
  ASSERT_EQ(deployment->type().value_size(), 1);
  EXPECT_EQ(deployment->type().value(0), "object");
  bool spec_ref = false;
  for (const auto& p : deployment->properties().additional_properties()) {
    if (p.name() == "spec")
      spec_ref = p.value()._ref() == "#/definitions/io.k8s.api.apps.v1.DeploymentSpec";
  }
  EXPECT_TRUE(spec_ref);
  // The same document as the JSON form: one path entry per JSON path.
  Value json = parse(OpenApi::instance().v2Json());
  EXPECT_EQ(static_cast<size_t>(doc.paths().path_size()), json.find("paths")->members().size());
  EXPECT_EQ(static_cast<size_t>(doc.definitions().additional_properties_size()),
            json.find("definitions")->members().size());
}

}  // namespace
}  // namespace skiff::apiserver
