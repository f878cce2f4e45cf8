#include "control/apiserver/patch.h"

#include <gtest/gtest.h>

#include "control/api/json.h"
#include "control/apiserver/errors.h"
#include "skiff/api/apps_v1.pb.h"
#include "skiff/api/core_v1.pb.h"

namespace skiff::apiserver {
namespace {

api::Value j(std::string_view text) {
  return api::parseJson(text);
}

std::string smp(std::string_view target, std::string_view patch,
                const google::protobuf::Descriptor* d = api::core::v1::Pod::descriptor()) {
  return api::writeJson(applyStrategicMergePatch(j(target), j(patch), d));
}

int errorCode(const std::function<void()>& f) {
  try {
    f();
  } catch (const ApiError& e) {
    return e.code();
  }
  return 0;
}

TEST(MergePatch, Rfc7386Examples) {
  EXPECT_EQ(api::writeJson(applyMergePatch(j(R"({"a":"b","c":{"d":"e","f":"g"}})"),
                                           j(R"({"a":"z","c":{"f":null}})"))),
            R"({"a":"z","c":{"d":"e"}})");
  EXPECT_EQ(api::writeJson(applyMergePatch(j(R"({"a":[{"b":"c"}]})"), j(R"({"a":[1]})"))),
            R"({"a":[1]})");
  EXPECT_EQ(api::writeJson(applyMergePatch(j(R"({"e":null})"), j(R"({"a":1})"))),
            R"({"e":null,"a":1})");
  EXPECT_EQ(api::writeJson(applyMergePatch(j(R"({"a":"foo"})"), j("null"))), "null");
}

// Found by apiserver_patch_fuzz: an index of more digits than size_t holds threw
// std::out_of_range out of std::stoul instead of a 400.
TEST(JsonPatch, HugeArrayIndexIsOutOfRange) {
  for (const char* op : {"remove", "replace", "add", "test"}) {
    const std::string patch =
        std::string(R"([{"op":")") + op + R"(","path":"/a/99999999999999999999999","value":1}])";
    EXPECT_EQ(errorCode([&] { applyJsonPatch(j(R"({"a":[1]})"), j(patch)); }), 400) << op;
  }
}

TEST(JsonPatch, Rfc6902Operations) {
  api::Value doc = j(R"({"foo":["bar","baz"],"a/b":1,"m~n":2})");
  EXPECT_EQ(api::writeJson(applyJsonPatch(doc, j(R"([{"op":"add","path":"/foo/1","value":"q"}])"))),
            R"({"foo":["bar","q","baz"],"a/b":1,"m~n":2})");
  EXPECT_EQ(api::writeJson(applyJsonPatch(doc, j(R"([{"op":"add","path":"/foo/-","value":"z"}])"))),
            R"({"foo":["bar","baz","z"],"a/b":1,"m~n":2})");
  EXPECT_EQ(
      api::writeJson(applyJsonPatch(
          doc, j(R"([{"op":"remove","path":"/a~1b"},{"op":"replace","path":"/m~0n","value":3}])"))),
      R"({"foo":["bar","baz"],"m~n":3})");
  EXPECT_EQ(
      api::writeJson(applyJsonPatch(
          doc,
          j(R"([{"op":"move","from":"/foo/0","path":"/x"},{"op":"copy","from":"/x","path":"/y"}])"))),
      R"({"foo":["baz"],"a/b":1,"m~n":2,"x":"bar","y":"bar"})");
  EXPECT_EQ(
      errorCode([&] { applyJsonPatch(doc, j(R"([{"op":"test","path":"/a~1b","value":2}])")); }),
      422);
  EXPECT_EQ(errorCode([&] { applyJsonPatch(doc, j(R"([{"op":"remove","path":"/nope"}])")); }), 400);
  EXPECT_EQ(
      errorCode([&] { applyJsonPatch(doc, j(R"([{"op":"add","path":"/foo/9","value":1}])")); }),
      400);
  EXPECT_EQ(errorCode([&] { applyJsonPatch(doc, j(R"([{"op":"frobnicate","path":"/a"}])")); }),
            400);
  EXPECT_EQ(errorCode([&] { applyJsonPatch(doc, j(R"({"op":"add"})")); }), 400);
}

TEST(StrategicMergePatch, ContainersMergeByName) {
  std::string pod =
      R"({"spec":{"containers":[{"name":"a","image":"a:1"},{"name":"b","image":"b:1"}]}})";
  EXPECT_EQ(smp(pod, R"({"spec":{"containers":[{"name":"b","image":"b:2"}]}})"),
            R"({"spec":{"containers":[{"name":"a","image":"a:1"},{"name":"b","image":"b:2"}]}})");
  EXPECT_EQ(
      smp(pod, R"({"spec":{"containers":[{"name":"c","image":"c:1"}]}})"),
      R"({"spec":{"containers":[{"name":"a","image":"a:1"},{"name":"b","image":"b:1"},{"name":"c","image":"c:1"}]}})");
  EXPECT_EQ(smp(pod, R"({"spec":{"containers":[{"name":"a","$patch":"delete"}]}})"),
            R"({"spec":{"containers":[{"name":"b","image":"b:1"}]}})");
  EXPECT_EQ(smp(pod, R"({"spec":{"containers":[{"name":"z","image":"z"},{"$patch":"replace"}]}})"),
            R"({"spec":{"containers":[{"name":"z","image":"z"}]}})");
  EXPECT_EQ(
      smp(pod,
          R"({"spec":{"$setElementOrder/containers":[{"name":"b"},{"name":"a"}],"containers":[{"name":"a","image":"a:2"}]}})"),
      R"({"spec":{"containers":[{"name":"b","image":"b:1"},{"name":"a","image":"a:2"}]}})");
  EXPECT_EQ(errorCode([&] { smp(pod, R"({"spec":{"containers":[{"image":"x"}]}})"); }), 400);
}

TEST(StrategicMergePatch, NestedMergeKeysAndAtomicLists) {
  std::string pod =
      R"({"spec":{"containers":[{"name":"a","ports":[{"containerPort":80,"name":"http"}],"env":[{"name":"X","value":"1"}],"args":["1","2"]}]}})";
  EXPECT_EQ(
      smp(pod,
          R"({"spec":{"containers":[{"name":"a","ports":[{"containerPort":443}],"env":[{"name":"X","value":"2"}],"args":["3"]}]}})"),
      R"({"spec":{"containers":[{"name":"a","ports":[{"containerPort":80,"name":"http"},{"containerPort":443}],"env":[{"name":"X","value":"2"}],"args":["3"]}]}})");
}

TEST(StrategicMergePatch, MapsPrimitiveSetsAndDirectives) {
  std::string obj =
      R"({"metadata":{"labels":{"a":"1","b":"2"},"finalizers":["x","y"]},"spec":{"replicas":1,"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1}}}})";
  const auto* d = api::apps::v1::Deployment::descriptor();
  EXPECT_EQ(
      smp(obj, R"({"metadata":{"labels":{"a":null,"c":"3"}}})", d),
      R"({"metadata":{"labels":{"b":"2","c":"3"},"finalizers":["x","y"]},"spec":{"replicas":1,"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1}}}})");
  EXPECT_EQ(
      smp(obj, R"({"metadata":{"finalizers":["z"],"$deleteFromPrimitiveList/finalizers":["x"]}})",
          d),
      R"({"metadata":{"labels":{"a":"1","b":"2"},"finalizers":["y","z"]},"spec":{"replicas":1,"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1}}}})");
  // kubectl switches a union with $retainKeys: rollingUpdate goes when type becomes Recreate.
  EXPECT_EQ(
      smp(obj,
          R"({"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate","rollingUpdate":null}}})",
          d),
      R"({"metadata":{"labels":{"a":"1","b":"2"},"finalizers":["x","y"]},"spec":{"replicas":1,"strategy":{"type":"Recreate"}}})");
  EXPECT_EQ(
      smp(obj, R"({"spec":{"strategy":{"$patch":"replace","type":"Recreate"}}})", d),
      R"({"metadata":{"labels":{"a":"1","b":"2"},"finalizers":["x","y"]},"spec":{"replicas":1,"strategy":{"type":"Recreate"}}})");
}

}  // namespace
}  // namespace skiff::apiserver
