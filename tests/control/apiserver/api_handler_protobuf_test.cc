// ApiHandler over HTTP with Kubernetes' protobuf answers: Accept negotiation, 406, Status errors,
// lists, writes and watch streams, each decoded back with the codec's own decoders.
#include <gtest/gtest.h>

#include <google/protobuf/unknown_field_set.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <filesystem>
#include <thread>

#include "control/api/json.h"
#include "control/api/kube_protobuf.h"
#include "control/apiserver/api_handler.h"
#include "control/store/sqlite_store.h"
#include "skiff/api/core_v1.pb.h"

namespace skiff::apiserver {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace kubepb = api::kubepb;
using tcp = asio::ip::tcp;

constexpr std::string_view kProtobuf = "application/vnd.kubernetes.protobuf";
constexpr std::string_view kClientGo = "application/vnd.kubernetes.protobuf, */*";

struct Reply {
  int status = 0;
  std::string content_type;
  std::string body;
};

class ApiHandlerProtobufTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("skiff-api-pb-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    store_ = store::SqliteStore::open({.path = (dir_ / "db").string(), .fsync = false});
    handler_ = std::make_unique<ApiHandler>(
        *store_,
        ApiHandlerOptions{.server_address = "127.0.0.1:0", .bookmark_interval_seconds = 1});
    handler_->ensureSystemNamespaces();
    server_ = std::make_unique<HttpServer>(
        HttpServerOptions{}, [this](const HttpRequest& req, HttpResponse& res, const auto& stream) {
          handler_->handle(req, res, stream);
        });
    server_->start();
  }
  void TearDown() override {
    server_.reset();
    handler_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  Reply call(http::verb method, const std::string& target, std::string_view accept,
             const std::string& body = "", const std::string& content_type = "application/json") {
    asio::io_context io;
    tcp::socket socket(io);
    socket.connect({asio::ip::make_address("127.0.0.1"), server_->port()});
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "localhost");
    if (!accept.empty()) req.set(http::field::accept, std::string(accept));
    if (!body.empty()) req.set(http::field::content_type, content_type);
    req.body() = body;
    req.prepare_payload();
    http::write(socket, req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    http::read(socket, buffer, parser);
    const auto& res = parser.get();
    return {static_cast<int>(res.result_int()), std::string(res[http::field::content_type]),
            res.body()};
  }

  Reply createConfigMap(const std::string& name, std::string_view accept = "") {
    return call(http::verb::post, "/api/v1/namespaces/default/configmaps", accept,
                R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":")" + name +
                    R"("},"data":{"k":")" + name + R"("}})");
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<ApiHandler> handler_;
  std::unique_ptr<HttpServer> server_;
};

api::meta::v1::Status decodeStatus(const Reply& reply) {
  EXPECT_EQ(reply.content_type, kProtobuf);
  api::meta::v1::Status status;
  kubepb::decodeObject(reply.body, status);
  return status;
}

TEST_F(ApiHandlerProtobufTest, GetNegotiatesTheRepresentation) {
  ASSERT_EQ(createConfigMap("a").status, 201);
  const std::string path = "/api/v1/namespaces/default/configmaps/a";

  Reply pb = call(http::verb::get, path, kClientGo);
  ASSERT_EQ(pb.status, 200);
  EXPECT_EQ(pb.content_type, kProtobuf);
  kubepb::Unknown envelope = kubepb::parseEnvelope(pb.body);
  EXPECT_EQ(envelope.api_version, "v1");
  EXPECT_EQ(envelope.kind, "ConfigMap");
  api::core::v1::ConfigMap cm;
  kubepb::decodeObject(pb.body, cm);
  EXPECT_EQ(cm.metadata().name(), "a");
  EXPECT_EQ(cm.data().at("k"), "a");
  EXPECT_FALSE(cm.metadata().uid().empty());

  Reply json = call(http::verb::get, path, "application/json;q=0.9, text/plain");
  EXPECT_EQ(json.content_type, "application/json");
  EXPECT_EQ(api::parseJson(json.body).find("data")->find("k")->text(), "a");
  EXPECT_EQ(call(http::verb::get, path, "").content_type, "application/json");
  EXPECT_EQ(call(http::verb::get, path, "application/yaml").content_type, "application/yaml");
  // kubectl get: a Table, as before.
  Reply table =
      call(http::verb::get, path, "application/json;as=Table;v=v1;g=meta.k8s.io,application/json");
  EXPECT_EQ(api::parseJson(table.body).find("kind")->text(), "Table");
  // A protobuf Table is not served; the next clause is.
  Reply fallback = call(http::verb::get, path,
                        "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,"
                        "application/vnd.kubernetes.protobuf");
  EXPECT_EQ(fallback.content_type, kProtobuf);
  EXPECT_EQ(kubepb::parseEnvelope(fallback.body).kind, "ConfigMap");
}

TEST_F(ApiHandlerProtobufTest, NothingAcceptableIs406BeforeAnythingIsWritten) {
  Reply refused = createConfigMap("b", "text/plain");
  EXPECT_EQ(refused.status, 406);
  EXPECT_EQ(refused.content_type, "application/json");
  api::Value status = api::parseJson(refused.body);
  EXPECT_EQ(status.find("reason")->text(), "NotAcceptable");
  EXPECT_EQ(status.find("message")->text(),
            "only the following media types are accepted: application/json, application/yaml, "
            "application/vnd.kubernetes.protobuf");
  EXPECT_EQ(call(http::verb::get, "/api/v1/namespaces/default/configmaps/b", "").status, 404);
  // A watch has no YAML form.
  Reply watch =
      call(http::verb::get, "/api/v1/namespaces/default/configmaps?watch=true", "application/yaml");
  EXPECT_EQ(watch.status, 406);
  EXPECT_NE(watch.body.find("application/vnd.kubernetes.protobuf;stream=watch"), std::string::npos)
      << watch.body;
}

TEST_F(ApiHandlerProtobufTest, ErrorsAreProtobufStatus) {
  api::meta::v1::Status missing =
      decodeStatus(call(http::verb::get, "/api/v1/namespaces/default/configmaps/nope", kClientGo));
  EXPECT_EQ(missing.status(), "Failure");
  EXPECT_EQ(missing.code(), 404);
  EXPECT_EQ(missing.reason(), "NotFound");
  EXPECT_EQ(missing.message(), "configmaps \"nope\" not found");
  EXPECT_EQ(missing.details().name(), "nope");
  EXPECT_EQ(missing.details().kind(), "configmaps");

  ASSERT_EQ(createConfigMap("dup").status, 201);
  Reply again = createConfigMap("dup", kClientGo);
  EXPECT_EQ(again.status, 409);
  api::meta::v1::Status exists = decodeStatus(again);
  EXPECT_EQ(exists.reason(), "AlreadyExists");
  EXPECT_EQ(exists.code(), 409);

  Reply invalid = call(http::verb::post, "/api/v1/namespaces/default/configmaps", kClientGo,
                       R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{}})");
  EXPECT_EQ(invalid.status, 422) << invalid.body;
  api::meta::v1::Status unprocessable = decodeStatus(invalid);
  EXPECT_EQ(unprocessable.reason(), "Invalid");
  ASSERT_GT(unprocessable.details().causes_size(), 0);
  EXPECT_EQ(unprocessable.details().causes(0).field(), "metadata.name");
  EXPECT_EQ(unprocessable.details().causes(0).reason(), "FieldValueRequired");
}

TEST_F(ApiHandlerProtobufTest, WritesAnswerInProtobuf) {
  Reply created = createConfigMap("w", kClientGo);
  ASSERT_EQ(created.status, 201);
  api::core::v1::ConfigMap cm;
  kubepb::decodeObject(created.body, cm);
  EXPECT_EQ(cm.metadata().name(), "w");
  EXPECT_FALSE(cm.metadata().resource_version().empty());

  // An update whose body is protobuf, answered in protobuf (client-go's typed Update).
  (*cm.mutable_data())["k"] = "updated";
  Reply updated = call(http::verb::put, "/api/v1/namespaces/default/configmaps/w", kClientGo,
                       kubepb::encodeObject(cm), std::string(kProtobuf));
  ASSERT_EQ(updated.status, 200) << updated.body;
  api::core::v1::ConfigMap after;
  kubepb::decodeObject(updated.body, after);
  EXPECT_EQ(after.data().at("k"), "updated");
  EXPECT_NE(after.metadata().resource_version(), cm.metadata().resource_version());

  Reply patched = call(http::verb::patch, "/api/v1/namespaces/default/configmaps/w", kClientGo,
                       R"({"data":{"p":"1"}})", "application/merge-patch+json");
  ASSERT_EQ(patched.status, 200) << patched.body;
  kubepb::decodeObject(patched.body, after);
  EXPECT_EQ(after.data().at("p"), "1");

  Reply deleted = call(http::verb::delete_, "/api/v1/namespaces/default/configmaps/w", kClientGo);
  ASSERT_EQ(deleted.status, 200);
  api::meta::v1::Status status = decodeStatus(deleted);
  EXPECT_EQ(status.status(), "Success");
  EXPECT_EQ(status.details().name(), "w");
  EXPECT_EQ(status.details().kind(), "configmaps");
}

TEST_F(ApiHandlerProtobufTest, ListsCarryResourceVersionAndContinue) {
  for (const char* name : {"a", "b", "c"}) {
    ASSERT_EQ(createConfigMap(name).status, 201);
  }
  std::string path = "/api/v1/namespaces/default/configmaps?limit=2";
  std::vector<std::string> names;
  std::string last_rv;
  for (int page = 0; page < 3 && !path.empty(); ++page) {
    Reply list = call(http::verb::get, path, kClientGo);
    ASSERT_EQ(list.status, 200);
    ASSERT_EQ(list.content_type, kProtobuf);
    kubepb::Unknown envelope = kubepb::parseEnvelope(list.body);
    EXPECT_EQ(envelope.api_version, "v1");
    EXPECT_EQ(envelope.kind, "ConfigMapList");
    google::protobuf::UnknownFieldSet fields;
    ASSERT_TRUE(fields.ParseFromString(envelope.raw));
    api::meta::v1::ListMeta metadata;
    for (int i = 0; i < fields.field_count(); ++i) {
      const auto& f = fields.field(i);
      if (f.number() == 1) {
        ASSERT_TRUE(metadata.ParseFromString(f.length_delimited()));
      }
      if (f.number() == 2) {
        api::core::v1::ConfigMap item;
        ASSERT_TRUE(item.ParseFromString(f.length_delimited()));
        names.push_back(item.metadata().name());
      }
    }
    EXPECT_FALSE(metadata.resource_version().empty());
    last_rv = metadata.resource_version();
    path = metadata.continue_().empty()
               ? ""
               : "/api/v1/namespaces/default/configmaps?limit=2&continue=" + metadata.continue_();
  }
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(path.empty());
  EXPECT_EQ(last_rv, std::to_string(store_->currentRevision()));
}

TEST_F(ApiHandlerProtobufTest, WatchStreamsLengthDelimitedFrames) {
  ASSERT_EQ(createConfigMap("a").status, 201);
  std::thread writer([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    createConfigMap("b");
    call(http::verb::delete_, "/api/v1/namespaces/default/configmaps/a", "");
  });
  Reply watch = call(http::verb::get,
                     "/api/v1/namespaces/default/configmaps?watch=true&allowWatchBookmarks=true&"
                     "timeoutSeconds=2",
                     "application/vnd.kubernetes.protobuf;stream=watch");
  writer.join();
  ASSERT_EQ(watch.status, 200);
  EXPECT_EQ(watch.content_type, "application/vnd.kubernetes.protobuf;stream=watch");
  std::vector<std::string> seen;
  int bookmarks = 0;
  for (const auto& frame : kubepb::parseWatchFrames(watch.body)) {
    api::core::v1::ConfigMap cm;
    kubepb::decodeObject(frame.object, cm);
    EXPECT_EQ(kubepb::parseEnvelope(frame.object).kind, "ConfigMap");
    if (frame.type == "BOOKMARK") {
      ++bookmarks;
      EXPECT_FALSE(cm.metadata().resource_version().empty());
      EXPECT_TRUE(cm.metadata().name().empty());
      continue;
    }
    seen.push_back(frame.type + " " + cm.metadata().name());
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"ADDED a", "ADDED b", "DELETED a"}));
  EXPECT_GE(bookmarks, 1);
}

TEST_F(ApiHandlerProtobufTest, StoreWatchWithoutTheCacheStreamsFramesToo) {
  handler_ =
      std::make_unique<ApiHandler>(*store_, ApiHandlerOptions{.server_address = "127.0.0.1:0",
                                                              .bookmark_interval_seconds = 1,
                                                              .watch_cache = false});
  ASSERT_EQ(createConfigMap("a").status, 201);
  std::thread writer([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    call(http::verb::delete_, "/api/v1/namespaces/default/configmaps/a", "");
  });
  Reply watch = call(http::verb::get,
                     "/api/v1/namespaces/default/configmaps?watch=true&allowWatchBookmarks=true&"
                     "timeoutSeconds=2",
                     kClientGo);
  writer.join();
  EXPECT_EQ(watch.content_type, "application/vnd.kubernetes.protobuf;stream=watch");
  std::vector<std::string> seen;
  for (const auto& frame : kubepb::parseWatchFrames(watch.body)) {
    api::core::v1::ConfigMap cm;
    kubepb::decodeObject(frame.object, cm);
    seen.push_back(frame.type + " " + cm.metadata().name());
  }
  ASSERT_GE(seen.size(), 3u);
  EXPECT_EQ(seen[0], "ADDED a");
  EXPECT_EQ(seen[1], "DELETED a");
  EXPECT_EQ(seen[2], "BOOKMARK ");
}

TEST_F(ApiHandlerProtobufTest, WatchFromACompactedVersionIsAnErrorFrame) {
  for (const char* name : {"a", "b", "c"}) {
    ASSERT_EQ(createConfigMap(name).status, 201);
  }
  store_->compact(store_->currentRevision());
  Reply watch = call(http::verb::get,
                     "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=2&"
                     "timeoutSeconds=1",
                     kClientGo);
  ASSERT_EQ(watch.status, 200);
  EXPECT_EQ(watch.content_type, "application/vnd.kubernetes.protobuf;stream=watch");
  auto frames = kubepb::parseWatchFrames(watch.body);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].type, "ERROR");
  kubepb::Unknown envelope = kubepb::parseEnvelope(frames[0].object);
  EXPECT_EQ(envelope.kind, "Status");
  api::meta::v1::Status status;
  kubepb::decodeObject(frames[0].object, status);
  EXPECT_EQ(status.code(), 410);
  EXPECT_EQ(status.reason(), "Expired");
}

}  // namespace
}  // namespace skiff::apiserver
