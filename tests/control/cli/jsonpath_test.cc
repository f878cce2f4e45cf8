#include "control/cli/jsonpath.h"

#include <gtest/gtest.h>

#include "control/api/json.h"

namespace skiff::cli {
namespace {

api::Value pods() {
  return api::parseJson(R"({"kind":"List","items":[
    {"metadata":{"name":"a","labels":{"app":"web","tier":"front"},
      "annotations":{"kubernetes.io/change-cause":"v2"}},
     "spec":{"containers":[{"name":"c1","image":"i:1"},{"name":"c2","image":"i:2"}]},
     "status":{"conditions":[{"type":"Ready","status":"True"},{"type":"Scheduled","status":"True"}],
               "restarts":3}},
    {"metadata":{"name":"b","labels":{"app":"db"}},
     "spec":{"containers":[{"name":"c3","image":"i:3"}]},
     "status":{"conditions":[{"type":"Ready","status":"False"}],"restarts":0}}]})");
}

std::string run(std::string_view tmpl, const api::Value& v = pods()) {
  return JsonPath::parse(tmpl).execute(v, true);
}

TEST(JsonPath, FieldsWildcardsAndIndexes) {
  EXPECT_EQ(run("{.items[*].metadata.name}"), "a b");
  EXPECT_EQ(run("{.items[0].spec.containers[-1].image}"), "i:2");
  EXPECT_EQ(run("{.items[0].spec.containers[0:1].name}"), "c1");
  EXPECT_EQ(run("{.items[1].metadata.labels}"), R"({"app":"db"})");
  EXPECT_EQ(run("{..image}"), "i:1 i:2 i:3");
  EXPECT_EQ(run("{.items[0].metadata.annotations.kubernetes\\.io/change-cause}"), "v2");
  EXPECT_EQ(run("{.items[0].metadata.annotations['kubernetes.io/change-cause']}"), "v2");
  EXPECT_EQ(run("{$.kind}"), "List");
  EXPECT_EQ(run("name: {.items[1].metadata.name}!"), "name: b!");
}

TEST(JsonPath, FiltersRangesAndLiterals) {
  EXPECT_EQ(run(R"({.items[?(@.status.restarts>1)].metadata.name})"), "a");
  EXPECT_EQ(run(R"({.items[0].status.conditions[?(@.type=="Ready")].status})"), "True");
  EXPECT_EQ(run(R"({.items[?(@.metadata.labels.tier)].metadata.name})"), "a");
  EXPECT_EQ(
      run(R"({range .items[*]}{.metadata.name}{"\t"}{.status.conditions[0].status}{"\n"}{end})"),
      "a\tTrue\nb\tFalse\n");
}

TEST(JsonPath, MissingFieldsAndBadTemplates) {
  EXPECT_EQ(run("{.items[0].nothing}"), "");
  EXPECT_THROW(JsonPath::parse("{.items[0].nothing}").execute(pods(), false), std::runtime_error);
  EXPECT_THROW(JsonPath::parse("{.items[0"), std::invalid_argument);
  EXPECT_THROW(JsonPath::parse("{range .items[*]}{.x}"), std::invalid_argument);
  EXPECT_THROW(JsonPath::parse("{end}"), std::invalid_argument);
}

}  // namespace
}  // namespace skiff::cli
