#include "control/apiserver/response_encoding.h"

#include <gtest/gtest.h>

#include <google/protobuf/unknown_field_set.h>

#include "control/api/json.h"
#include "control/api/kube_protobuf.h"
#include "skiff/api/core_v1.pb.h"

namespace skiff::apiserver {
namespace {

namespace kubepb = api::kubepb;

std::string describe(const ResponseFormat& f) {
  std::string s = f.media == MediaType::kJson   ? "json"
                  : f.media == MediaType::kYaml ? "yaml"
                                                : "protobuf";
  return f.table ? s + "+table" : s;
}

std::string negotiated(std::string_view accept, Endpoint endpoint = Endpoint::kTable) {
  try {
    return describe(negotiate(accept, endpoint));
  } catch (const ApiError& e) {
    return std::to_string(e.code()) + " " + e.what();
  }
}

constexpr std::string_view kTable = "application/json;as=Table;v=v1;g=meta.k8s.io";
const std::string k406 =
    "406 only the following media types are accepted: application/json, application/yaml, "
    "application/vnd.kubernetes.protobuf";
const std::string k406Stream =
    "406 only the following media types are accepted: application/json;stream=watch, "
    "application/vnd.kubernetes.protobuf;stream=watch";

TEST(ResponseEncoding, NegotiatesAsKubeApiserver) {
  EXPECT_EQ(negotiated(""), "json");
  EXPECT_EQ(negotiated("*/*"), "json");
  EXPECT_EQ(negotiated("application/*"), "json");
  EXPECT_EQ(negotiated("application/json"), "json");
  EXPECT_EQ(negotiated("application/yaml"), "yaml");
  EXPECT_EQ(negotiated("application/json; charset=utf-8"), "json");
  // client-go's typed clients for built-in types.
  EXPECT_EQ(negotiated("application/vnd.kubernetes.protobuf, */*"), "protobuf");
  EXPECT_EQ(negotiated("application/vnd.kubernetes.protobuf,application/json"), "protobuf");
  EXPECT_EQ(negotiated("application/json, application/vnd.kubernetes.protobuf"), "json");
  // q-values outrank the order; q=0 is "never"; among equal q a concrete type beats a wildcard.
  EXPECT_EQ(negotiated("application/json;q=0.5, application/vnd.kubernetes.protobuf"), "protobuf");
  EXPECT_EQ(negotiated("application/vnd.kubernetes.protobuf;q=0.9, application/yaml"), "yaml");
  EXPECT_EQ(negotiated("*/*, application/vnd.kubernetes.protobuf"), "protobuf");
  EXPECT_EQ(negotiated("application/vnd.kubernetes.protobuf;q=0, */*;q=0.1"), "json");
  EXPECT_EQ(negotiated("application/json;q=0"), k406);
  EXPECT_EQ(negotiated("text/plain"), k406);
  EXPECT_EQ(negotiated("text/html, image/*"), k406);
  EXPECT_EQ(negotiated("application/json;q=bogus"), k406);
}

TEST(ResponseEncoding, TablesAreJsonOrYamlOnlyAndOnlyWhereObjectsAreRead) {
  // kubectl get.
  EXPECT_EQ(negotiated(std::string(kTable) +
                       ",application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"),
            "json+table");
  EXPECT_EQ(negotiated("application/yaml;as=Table;v=v1;g=meta.k8s.io"), "yaml+table");
  // A protobuf Table is not served: the next clause is.
  EXPECT_EQ(negotiated("application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,"
                       "application/vnd.kubernetes.protobuf"),
            "protobuf");
  EXPECT_EQ(negotiated("application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io"), k406);
  EXPECT_EQ(negotiated("application/json;as=Table;v=v2;g=meta.k8s.io"), k406);
  EXPECT_EQ(negotiated("application/json;as=Unknown;v=v1;g=meta.k8s.io,application/yaml"), "yaml");
  // A write answers with the object.
  EXPECT_EQ(negotiated(std::string(kTable) + ",application/json", Endpoint::kObject), "json");
  EXPECT_EQ(negotiated(kTable, Endpoint::kObject), k406);
  // PartialObjectMetadata: the whole object in JSON, never in protobuf.
  EXPECT_EQ(negotiated("application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"), "json");
  EXPECT_EQ(negotiated("application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;v=v1;"
                       "g=meta.k8s.io,application/json"),
            "json");
}

TEST(ResponseEncoding, WatchStreamsAreJsonOrProtobuf) {
  EXPECT_EQ(negotiated("", Endpoint::kWatch), "json");
  EXPECT_EQ(negotiated("application/vnd.kubernetes.protobuf;stream=watch", Endpoint::kWatch),
            "protobuf");
  EXPECT_EQ(negotiated("application/vnd.kubernetes.protobuf, */*", Endpoint::kWatch), "protobuf");
  EXPECT_EQ(negotiated("application/json;stream=watch", Endpoint::kWatch), "json");
  EXPECT_EQ(negotiated(std::string(kTable) + ",application/json", Endpoint::kWatch), "json+table");
  EXPECT_EQ(negotiated("application/vnd.kubernetes.protobuf;stream=other", Endpoint::kWatch),
            k406Stream);
  // YAML has no stream form: kube-apiserver refuses it even with a later acceptable clause.
  EXPECT_EQ(negotiated("application/yaml", Endpoint::kWatch), k406Stream);
  EXPECT_EQ(negotiated("application/yaml, application/json", Endpoint::kWatch), k406Stream);
  EXPECT_EQ(negotiated("text/plain", Endpoint::kWatch), k406Stream);
  EXPECT_EQ(ResponseFormat{.media = MediaType::kProtobuf}.contentType(true),
            "application/vnd.kubernetes.protobuf;stream=watch");
  EXPECT_EQ(ResponseFormat{.media = MediaType::kJson}.contentType(true), "application/json");
}

api::core::v1::ConfigMap configMap(const std::string& name) {
  api::core::v1::ConfigMap cm;
  cm.mutable_metadata()->set_name(name);
  cm.mutable_metadata()->set_namespace_("default");
  cm.mutable_metadata()->set_resource_version("7");
  (*cm.mutable_data())["k"] = name + "-value";
  return cm;
}

TEST(ResponseEncoding, ProtobufObjectRoundTripsThroughTheDecoder) {
  HttpResponse response;
  auto cm = configMap("a");
  writeObject({.media = MediaType::kProtobuf}, response, 201, cm);
  EXPECT_EQ(response.status, 201);
  EXPECT_EQ(response.content_type, "application/vnd.kubernetes.protobuf");
  kubepb::Unknown envelope = kubepb::parseEnvelope(response.body);
  EXPECT_EQ(envelope.api_version, "v1");
  EXPECT_EQ(envelope.kind, "ConfigMap");
  api::core::v1::ConfigMap decoded;
  kubepb::decodeObject(response.body, decoded);
  EXPECT_EQ(decoded.SerializeAsString(), cm.SerializeAsString());

  writeObject({.media = MediaType::kYaml}, response, 200, cm);
  EXPECT_EQ(response.content_type, "application/yaml");
  EXPECT_NE(response.body.find("kind: ConfigMap"), std::string::npos) << response.body;
}

TEST(ResponseEncoding, ProtobufListCarriesListMetaAndItems) {
  const api::ResourceType& type = *api::Registry::builtin().byKind("v1", "ConfigMap");
  ListResponse list;
  list.items.push_back(std::make_shared<api::core::v1::ConfigMap>(configMap("a")));
  list.items.push_back(std::make_shared<api::core::v1::ConfigMap>(configMap("b")));
  list.resource_version = "12";
  list.continue_token = "next-page";
  HttpResponse response;
  writeList({.media = MediaType::kProtobuf}, response, type, list);
  kubepb::Unknown envelope = kubepb::parseEnvelope(response.body);
  EXPECT_EQ(envelope.api_version, "v1");
  EXPECT_EQ(envelope.kind, "ConfigMapList");
  google::protobuf::UnknownFieldSet fields;
  ASSERT_TRUE(fields.ParseFromString(envelope.raw));
  ASSERT_EQ(fields.field_count(), 3);
  ASSERT_EQ(fields.field(0).number(), 1);
  api::meta::v1::ListMeta metadata;
  ASSERT_TRUE(metadata.ParseFromString(fields.field(0).length_delimited()));
  EXPECT_EQ(metadata.resource_version(), "12");
  EXPECT_EQ(metadata.continue_(), "next-page");
  for (int i = 1; i < 3; ++i) {
    ASSERT_EQ(fields.field(i).number(), 2);
    api::core::v1::ConfigMap item;
    ASSERT_TRUE(item.ParseFromString(fields.field(i).length_delimited()));
    EXPECT_EQ(item.metadata().name(), i == 1 ? "a" : "b");
    EXPECT_EQ(item.data().at("k"), item.metadata().name() + "-value");
  }

  // The JSON form of the same list.
  writeList({}, response, type, list);
  api::Value json = api::parseJson(response.body);
  EXPECT_EQ(json.find("kind")->text(), "ConfigMapList");
  EXPECT_EQ(json.find("metadata")->find("continue")->text(), "next-page");
  EXPECT_EQ(json.find("items")->items().size(), 2u);
  // A list without a version (deletecollection) has empty metadata.
  writeList({}, response, type, ListResponse{});
  EXPECT_EQ(response.body,
            R"({"apiVersion":"v1","kind":"ConfigMapList","metadata":{},"items":[]})");
}

TEST(ResponseEncoding, StatusErrorsFollowAcceptExcept406) {
  ApiError error = notFound({"", "configmaps"}, "missing");
  HttpResponse pb = errorResponse("application/vnd.kubernetes.protobuf, */*", error);
  EXPECT_EQ(pb.status, 404);
  EXPECT_EQ(pb.content_type, "application/vnd.kubernetes.protobuf");
  kubepb::Unknown envelope = kubepb::parseEnvelope(pb.body);
  EXPECT_EQ(envelope.api_version, "v1");
  EXPECT_EQ(envelope.kind, "Status");
  api::meta::v1::Status status;
  kubepb::decodeObject(pb.body, status);
  EXPECT_EQ(status.status(), "Failure");
  EXPECT_EQ(status.code(), 404);
  EXPECT_EQ(status.reason(), "NotFound");
  EXPECT_EQ(status.message(), "configmaps \"missing\" not found");
  EXPECT_EQ(status.details().name(), "missing");
  EXPECT_EQ(status.details().kind(), "configmaps");

  // A Table Accept gets its error in JSON (kube-apiserver's ErrorNegotiated passes "as=" over).
  HttpResponse table = errorResponse(std::string(kTable) + ",application/json", error);
  EXPECT_EQ(table.content_type, "application/json");
  EXPECT_EQ(api::parseJson(table.body).find("reason")->text(), "NotFound");
  EXPECT_EQ(errorResponse("application/yaml", error).content_type, "application/yaml");
  EXPECT_EQ(errorResponse("text/plain", error).content_type, "application/json");
  HttpResponse refused =
      errorResponse("application/vnd.kubernetes.protobuf", notAcceptable("only the following ..."));
  EXPECT_EQ(refused.status, 406);
  EXPECT_EQ(refused.content_type, "application/json");
}

TEST(ResponseEncoding, WatchEventsAreJsonLinesOrLengthPrefixedFrames) {
  auto cm = configMap("a");
  std::string json = watchEvent(MediaType::kJson, "ADDED", encodeEventObject(MediaType::kJson, cm));
  EXPECT_EQ(json.back(), '\n');
  api::Value event = api::parseJson(json);
  EXPECT_EQ(event.find("type")->text(), "ADDED");
  EXPECT_EQ(event.find("object")->find("metadata")->find("name")->text(), "a");

  std::string stream =
      watchEvent(MediaType::kProtobuf, "ADDED", encodeEventObject(MediaType::kProtobuf, cm)) +
      watchEvent(MediaType::kProtobuf, "ERROR",
                 encodeEventObject(MediaType::kProtobuf,
                                   gone("too old resource version: 2 (9)").toStatus()));
  auto frames = kubepb::parseWatchFrames(stream);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].type, "ADDED");
  api::core::v1::ConfigMap decoded;
  kubepb::decodeObject(frames[0].object, decoded);
  EXPECT_EQ(decoded.metadata().name(), "a");
  EXPECT_EQ(frames[1].type, "ERROR");
  api::meta::v1::Status status;
  kubepb::decodeObject(frames[1].object, status);
  EXPECT_EQ(status.code(), 410);
  EXPECT_EQ(status.reason(), "Expired");
}

}  // namespace
}  // namespace skiff::apiserver
