#include "control/cli/apply_patch.h"

#include <gtest/gtest.h>

#include "control/api/json.h"
#include "control/api/yaml.h"
#include "control/apiserver/patch.h"
#include "skiff/api/apps_v1.pb.h"
#include "skiff/api/core_v1.pb.h"

namespace skiff::cli {
namespace {

using api::Value;

Value json(std::string_view text) {
  return api::parseJson(text);
}
Value yaml(std::string_view text) {
  return api::parseYaml(text);
}

const google::protobuf::Descriptor* deployment() {
  return api::apps::v1::Deployment::descriptor();
}

TEST(GoJson, SortsKeysAndEscapesAsGo) {
  EXPECT_EQ(goJson(json(R"({"b":1,"a":{"z":true,"y":null},"c":["<&>",1.5,2.0]})")),
            R"({"a":{"y":null,"z":true},"b":1,"c":["\u003c\u0026\u003e",1.5,2]})");
  EXPECT_EQ(goJson(Value::string("a\"b\\c\nd\te\x01")), R"("a\"b\\c\nd\te\u0001")");
  EXPECT_EQ(goJson(Value::number(1e21)), "1e+21");
  EXPECT_EQ(goJson(Value::number(0.000001)), "0.000001");
}

TEST(LastApplied, MatchesKubectlsAnnotation) {
  // The exact text `kubectl apply` stores for this manifest (checked with kubectl v1.32).
  Value manifest = yaml(R"(
apiVersion: v1
kind: ConfigMap
metadata:
  name: c
  namespace: default
data:
  key: "1"
)");
  Value modified = withLastApplied(manifest);
  const Value* annotation =
      modified.find("metadata")->find("annotations")->find(kLastAppliedAnnotation);
  ASSERT_NE(annotation, nullptr);
  EXPECT_EQ(annotation->text(),
            "{\"apiVersion\":\"v1\",\"data\":{\"key\":\"1\"},\"kind\":\"ConfigMap\",\"metadata\":"
            "{\"annotations\":{},\"name\":\"c\",\"namespace\":\"default\"}}\n");
  EXPECT_EQ(lastApplied(modified), [&] {
    Value v = manifest;
    v.find("metadata")->set("annotations", Value::object());
    return v;
  }());
  // Applying again keeps the user's annotations and replaces the old last-applied text.
  Value again = withLastApplied(modified);
  EXPECT_EQ(again, modified);
}

TEST(ThreeWayMergePatch, UnchangedIsEmpty) {
  Value manifest = withLastApplied(yaml(R"(
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  template:
    spec:
      containers:
      - name: a
        image: a:1
)"));
  // The live object has defaults and status the manifest does not mention.
  Value live = manifest;
  live.find("metadata")->set("uid", Value::string("u-1"));
  live.find("spec")->set("revisionHistoryLimit", Value::integer(10));
  live.set("status", json(R"({"replicas":2})"));
  EXPECT_EQ(api::writeJson(threeWayMergePatch(lastApplied(live), manifest, live, deployment())),
            "{}");
}

// The patch, applied by the apiserver's own strategic merge, gives what kubectl gives.
TEST(ThreeWayMergePatch, ChangesAdditionsAndDeletions) {
  Value old_manifest = yaml(R"(
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default, labels: {app: web, old: x}}
spec:
  replicas: 2
  paused: true
  template:
    spec:
      containers:
      - name: a
        image: a:1
        args: [x]
        env:
        - {name: KEEP, value: "1"}
        - {name: DROP, value: "2"}
      - name: b
        image: b:1
)");
  Value live = withLastApplied(old_manifest);
  // Someone else set a field apply does not own; it survives.
  live.find("spec")->set("minReadySeconds", Value::integer(5));
  Value new_manifest = withLastApplied(yaml(R"(
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default, labels: {app: web}}
spec:
  replicas: 3
  template:
    spec:
      containers:
      - name: c
        image: c:1
      - name: a
        image: a:2
        env:
        - {name: KEEP, value: "1"}
)"));
  Value patch = threeWayMergePatch(lastApplied(live), new_manifest, live, deployment());
  Value result = apiserver::applyStrategicMergePatch(live, patch, deployment());
  Value want = new_manifest;
  want.find("spec")->set("minReadySeconds", Value::integer(5));
  EXPECT_EQ(result, want) << api::writeJson(patch) << "\n" << api::writeJson(result);
  // Containers follow the manifest's order.
  const auto& containers =
      result.find("spec")->find("template")->find("spec")->find("containers")->items();
  ASSERT_EQ(containers.size(), 2u);
  EXPECT_EQ(containers[0].find("name")->text(), "c");
  // The directives kubectl sends.
  const Value* spec_patch = patch.find("spec")->find("template")->find("spec");
  EXPECT_NE(spec_patch->find("$setElementOrder/containers"), nullptr) << api::writeJson(patch);
  EXPECT_EQ(patch.find("spec")->find("paused")->kind(), Value::Kind::kNull);
}

TEST(ThreeWayMergePatch, RetainKeysForDeploymentStrategy) {
  Value old_manifest = yaml(R"(
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1}
)");
  Value live = withLastApplied(old_manifest);
  Value new_manifest = withLastApplied(yaml(R"(
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  strategy:
    type: Recreate
)"));
  Value patch = threeWayMergePatch(lastApplied(live), new_manifest, live, deployment());
  EXPECT_EQ(goJson(*patch.find("spec")->find("strategy")),
            R"({"$retainKeys":["type"],"rollingUpdate":null,"type":"Recreate"})");
  Value result = apiserver::applyStrategicMergePatch(live, patch, deployment());
  EXPECT_EQ(*result.find("spec"), *new_manifest.find("spec"));
}

TEST(ThreeWayMergePatch, PrimitiveMergeListAndNoLastApplied) {
  // finalizers merge as a set of strings; without a last-applied configuration nothing is deleted.
  Value live = yaml(R"(
apiVersion: v1
kind: Pod
metadata: {name: p, finalizers: [a, b]}
spec: {containers: [{name: c, image: i}]}
)");
  Value manifest = withLastApplied(yaml(R"(
apiVersion: v1
kind: Pod
metadata: {name: p, finalizers: [c, a]}
spec: {containers: [{name: c, image: i}]}
)"));
  Value patch = threeWayMergePatch(Value::null(), manifest, live, api::core::v1::Pod::descriptor());
  Value result = apiserver::applyStrategicMergePatch(live, patch, api::core::v1::Pod::descriptor());
  EXPECT_EQ(api::writeJson(*result.find("metadata")->find("finalizers")), R"(["c","a","b"])");
  // With it, what the last apply set and this one does not is removed.
  Value patch2 = threeWayMergePatch(lastApplied(result), withLastApplied(yaml(R"(
apiVersion: v1
kind: Pod
metadata: {name: p, finalizers: [a]}
spec: {containers: [{name: c, image: i}]}
)")),
                                    result, api::core::v1::Pod::descriptor());
  Value result2 =
      apiserver::applyStrategicMergePatch(result, patch2, api::core::v1::Pod::descriptor());
  EXPECT_EQ(api::writeJson(*result2.find("metadata")->find("finalizers")), R"(["a","b"])");
}

}  // namespace
}  // namespace skiff::cli
