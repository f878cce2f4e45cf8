#include "control/apiserver/table.h"

#include <gtest/gtest.h>

#include "control/api/codec.h"
#include "control/api/json.h"
#include "skiff/api/core_v1.pb.h"

namespace skiff::apiserver {
namespace {

TEST(Table, HumanDurationAsKubectl) {
  // Cases from Kubernetes' duration_test.go.
  EXPECT_EQ(humanDuration(-2), "<invalid>");
  EXPECT_EQ(humanDuration(-1), "0s");
  EXPECT_EQ(humanDuration(45), "45s");
  EXPECT_EQ(humanDuration(119), "119s");
  EXPECT_EQ(humanDuration(120), "2m");
  EXPECT_EQ(humanDuration(5 * 60 + 30), "5m30s");
  EXPECT_EQ(humanDuration(10 * 60), "10m");
  EXPECT_EQ(humanDuration(179 * 60), "179m");
  EXPECT_EQ(humanDuration(3 * 3600 + 5 * 60), "3h5m");
  EXPECT_EQ(humanDuration(8 * 3600), "8h");
  EXPECT_EQ(humanDuration(47 * 3600), "47h");
  EXPECT_EQ(humanDuration(50 * 3600), "2d2h");
  EXPECT_EQ(humanDuration(9 * 86400), "9d");
  EXPECT_EQ(humanDuration(800 * 86400), "2y70d");
  EXPECT_EQ(humanDuration(3000 * 86400), "8y");
}

TEST(Table, PodColumnsAndObjects) {
  api::core::v1::Pod pod;
  api::decodeYaml(R"(
metadata: {name: web-1, namespace: default, creationTimestamp: "2026-11-20T10:00:00Z", labels: {app: web}}
spec: {nodeName: node-1, containers: [{name: a, image: a}, {name: b, image: b}]}
status:
  phase: Running
  podIP: 10.244.0.5
  containerStatuses:
  - {name: a, ready: true, restartCount: 2}
  - {name: b, ready: false, restartCount: 1, state: {waiting: {reason: CrashLoopBackOff}}}
)",
                  pod);
  const auto* type = api::Registry::builtin().byKind("v1", "Pod");
  int64_t now = 1795168800 + 330;  // 5m30s later
  api::Value table = makeTable(*type, {&pod}, TableObjects::kMetadata, "42", "", now);
  std::vector<std::string> names;
  for (const auto& c : table.find("columnDefinitions")->items())
    names.push_back(c.find("name")->text());
  EXPECT_EQ(names, (std::vector<std::string>{"Name", "Ready", "Status", "Restarts", "Age", "IP",
                                             "Node", "Nominated Node", "Readiness Gates"}));
  const auto& cells = table.find("rows")->items()[0].find("cells")->items();
  EXPECT_EQ(cells[0].text(), "web-1");
  EXPECT_EQ(cells[1].text(), "1/2");
  EXPECT_EQ(cells[2].text(), "CrashLoopBackOff");
  EXPECT_EQ(cells[3].text(), "3");
  EXPECT_EQ(cells[4].text(), "5m30s");
  EXPECT_EQ(cells[5].text(), "10.244.0.5");
  const api::Value* object = table.find("rows")->items()[0].find("object");
  EXPECT_EQ(object->find("kind")->text(), "PartialObjectMetadata");
  EXPECT_EQ(object->find("metadata")->find("labels")->find("app")->text(), "web");
  EXPECT_EQ(table.find("metadata")->find("resourceVersion")->text(), "42");
  api::Value none = makeTable(*type, {&pod}, TableObjects::kNone, "", "", now);
  EXPECT_EQ(none.find("rows")->items()[0].find("object"), nullptr);
}

TEST(Table, AcceptHeaderAsKubectlSendsIt) {
  EXPECT_TRUE(
      acceptsTable("application/json;as=Table;v=v1;g=meta.k8s.io,application/"
                   "json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"));
  EXPECT_FALSE(acceptsTable("application/json"));
}

}  // namespace
}  // namespace skiff::apiserver
