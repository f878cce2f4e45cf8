#include "control/client/rest_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "control/api/json.h"
#include "control/apiserver/http_server.h"
#include "control/apiserver/pki.h"
#include "control/client/typed.h"
#include "skiff/api/apps_v1.pb.h"
#include "skiff/api/core_v1.pb.h"
#include "tests/control/client/test_server.h"
#include "tests/mocks/mock_client.h"

namespace skiff::client {
namespace {

using api::Value;
using ::testing::HasSubstr;
using testing::TestApiServer;
using namespace std::chrono_literals;
namespace core = api::core::v1;
namespace apps = api::apps::v1;

const api::ResourceType& configMaps() {
  return resourceTypeOf<core::ConfigMap>();
}

core::ConfigMap configMap(const std::string& name, const std::string& ns = "default") {
  core::ConfigMap cm;
  cm.mutable_metadata()->set_name(name);
  cm.mutable_metadata()->set_namespace_(ns);
  (*cm.mutable_data())["key"] = "value";
  return cm;
}

Value json(std::string_view text) {
  return api::parseJson(text);
}

template <class F>
ApiError errorOf(F&& f) {
  try {
    f();
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "no ApiError thrown";
  return ApiError(-1, "", "none");
}

// ----- against the real apiserver over HTTPS with its admin kubeconfig -----

class RestClientTest : public ::testing::Test {
 protected:
  TestApiServer server_;
  ClientPtr client_ = server_.client();
};

TEST_F(RestClientTest, TypedCrud) {
  core::ConfigMap created = create(*client_, configMap("one"));
  EXPECT_EQ(created.metadata().name(), "one");
  EXPECT_FALSE(created.metadata().uid().empty());
  EXPECT_FALSE(created.metadata().resource_version().empty());

  core::ConfigMap got = get<core::ConfigMap>(*client_, "default", "one");
  EXPECT_EQ(got.data().at("key"), "value");

  (*got.mutable_data())["key"] = "changed";
  core::ConfigMap updated = update(*client_, got);
  EXPECT_EQ(updated.data().at("key"), "changed");
  EXPECT_NE(updated.metadata().resource_version(), got.metadata().resource_version());

  core::ConfigMap patched = patch<core::ConfigMap>(*client_, "default", "one", PatchType::kMerge,
                                                   R"({"data":{"extra":"1"}})");
  EXPECT_EQ(patched.data().at("extra"), "1");
  EXPECT_EQ(patched.data().at("key"), "changed");

  create(*client_, configMap("two"));
  create(*client_, configMap("three", "kube-system"));
  EXPECT_EQ(list<core::ConfigMap>(*client_, "default").size(), 2u);
  EXPECT_GE(list<core::ConfigMap>(*client_, "").size(), 3u);  // all namespaces

  remove<core::ConfigMap>(*client_, "default", "one");
  EXPECT_TRUE(errorOf([&] { get<core::ConfigMap>(*client_, "default", "one"); }).isNotFound());
}

TEST_F(RestClientTest, DynamicCrudAndClusterScopedKinds) {
  const api::ResourceType& namespaces = *api::Registry::builtin().resolve("namespaces");
  Value ns = client_->create(namespaces, "", json(R"({"apiVersion":"v1","kind":"Namespace",
      "metadata":{"name":"team-a"}})"));
  EXPECT_EQ(ns.find("metadata")->find("name")->text(), "team-a");

  // The namespace comes from the object when the call names none.
  Value cm = client_->create(configMaps(), "", json(R"({"apiVersion":"v1","kind":"ConfigMap",
      "metadata":{"name":"dyn","namespace":"team-a"},"data":{"a":"b"}})"));
  EXPECT_EQ(cm.find("metadata")->find("namespace")->text(), "team-a");

  Value got = client_->get(configMaps(), "team-a", "dyn");
  EXPECT_EQ(got.find("data")->find("a")->text(), "b");
  Value listed = client_->list(configMaps(), "team-a");
  EXPECT_EQ(listed.find("kind")->text(), "ConfigMapList");
  EXPECT_EQ(listed.find("items")->items().size(), 1u);

  Value patched = client_->patch(configMaps(), "team-a", "dyn", PatchType::kJson,
                                 R"([{"op":"add","path":"/data/c","value":"d"}])");
  EXPECT_EQ(patched.find("data")->find("c")->text(), "d");
  Value strategic = client_->patch(configMaps(), "team-a", "dyn", PatchType::kStrategicMerge,
                                   R"({"data":{"e":"f"}})");
  EXPECT_EQ(strategic.find("data")->find("e")->text(), "f");

  Value gone = client_->removeCollection(configMaps(), "team-a", {});
  EXPECT_TRUE(client_->list(configMaps(), "team-a").find("items")->items().empty());
}

TEST_F(RestClientTest, ErrorsCarryTheServersStatus) {
  ApiError missing = errorOf([&] { client_->get(configMaps(), "default", "nope"); });
  EXPECT_EQ(missing.code(), 404);
  EXPECT_EQ(missing.reason(), "NotFound");
  EXPECT_TRUE(missing.isNotFound());
  EXPECT_THAT(missing.what(), HasSubstr("\"nope\" not found"));
  EXPECT_TRUE(missing.status().isObject());

  core::ConfigMap first = create(*client_, configMap("dup"));
  ApiError exists = errorOf([&] { create(*client_, configMap("dup")); });
  EXPECT_TRUE(exists.isAlreadyExists());
  EXPECT_FALSE(exists.isConflict());

  core::ConfigMap stale = first;
  (*first.mutable_data())["key"] = "new";
  update(*client_, first);  // moves the resourceVersion on
  ApiError conflict = errorOf([&] { update(*client_, stale); });
  EXPECT_TRUE(conflict.isConflict());
  EXPECT_EQ(conflict.reason(), "Conflict");

  core::Service bad;
  bad.mutable_metadata()->set_name("bad");
  bad.mutable_metadata()->set_namespace_("default");
  auto* port = bad.mutable_spec()->add_ports();
  port->set_port(70000);
  ApiError invalid = errorOf([&] { create(*client_, bad); });
  EXPECT_EQ(invalid.code(), 422);
  EXPECT_TRUE(invalid.isInvalid());
  ASSERT_FALSE(invalid.causes().empty());
  EXPECT_EQ(invalid.causes()[0].field, "spec.ports[0].port");
  EXPECT_EQ(invalid.causes()[0].type, "FieldValueInvalid");
}

TEST_F(RestClientTest, StatusAndScaleSubresources) {
  apps::Deployment d;
  d.mutable_metadata()->set_name("web");
  d.mutable_metadata()->set_namespace_("default");
  d.mutable_spec()->set_replicas(2);
  (*d.mutable_spec()->mutable_selector()->mutable_match_labels())["app"] = "web";
  (*d.mutable_spec()->mutable_template_()->mutable_metadata()->mutable_labels())["app"] = "web";
  auto* c = d.mutable_spec()->mutable_template_()->mutable_spec()->add_containers();
  c->set_name("web");
  c->set_image("nginx");
  apps::Deployment created = create(*client_, d);

  created.mutable_status()->set_ready_replicas(2);
  created.mutable_spec()->set_replicas(7);  // ignored by the status subresource
  apps::Deployment with_status = updateStatus(*client_, created);
  EXPECT_EQ(with_status.status().ready_replicas(), 2);
  EXPECT_EQ(with_status.spec().replicas(), 2);

  Value scale = client_->getScale(resourceTypeOf<apps::Deployment>(), "default", "web");
  EXPECT_EQ(scale.find("kind")->text(), "Scale");
  EXPECT_EQ(scale.find("spec")->find("replicas")->asInt(), 2);
  scale.find("spec")->set("replicas", Value::integer(5));
  client_->updateScale(resourceTypeOf<apps::Deployment>(), "default", scale);
  EXPECT_EQ(get<apps::Deployment>(*client_, "default", "web").spec().replicas(), 5);

  apps::Deployment patched = patch<apps::Deployment>(*client_, "default", "web", PatchType::kMerge,
                                                     R"({"status":{"replicas":9}})", {}, "status");
  EXPECT_EQ(patched.status().replicas(), 9);
}

TEST_F(RestClientTest, BindSetsTheNodeOnce) {
  core::Pod pod;
  pod.mutable_metadata()->set_name("p");
  pod.mutable_metadata()->set_namespace_("default");
  auto* c = pod.mutable_spec()->add_containers();
  c->set_name("c");
  c->set_image("busybox");
  create(*client_, pod);
  client_->bind("default", "p", "node-1");
  EXPECT_EQ(get<core::Pod>(*client_, "default", "p").spec().node_name(), "node-1");
  EXPECT_TRUE(errorOf([&] { client_->bind("default", "p", "node-2"); }).isConflict());
}

TEST_F(RestClientTest, DryRunWritesNothing) {
  core::ConfigMap answer = create(*client_, configMap("dry"), {.dry_run = true});
  EXPECT_EQ(answer.metadata().name(), "dry");
  EXPECT_TRUE(errorOf([&] { get<core::ConfigMap>(*client_, "default", "dry"); }).isNotFound());

  create(*client_, configMap("kept"));
  client_->remove(configMaps(), "default", "kept", {.dry_run = true});
  EXPECT_EQ(get<core::ConfigMap>(*client_, "default", "kept").metadata().name(), "kept");
}

TEST_F(RestClientTest, WarningsOfTheLastCallPerThread) {
  Value object = json(R"({"apiVersion":"v1","kind":"ConfigMap",
      "metadata":{"name":"warned","namespace":"default"},"data":{"a":"b"},"bogus":1})");
  client_->create(configMaps(), "default", object, {.field_validation = "Warn"});
  std::vector<std::string> warnings = client_->lastWarnings();
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("unknown field \"bogus\""));

  std::thread other([&] { EXPECT_TRUE(client_->lastWarnings().empty()); });
  other.join();
  client_->get(configMaps(), "default", "warned");
  EXPECT_TRUE(client_->lastWarnings().empty());

  ApiError strict = errorOf(
      [&] { client_->create(configMaps(), "default", object, {.field_validation = "Strict"}); });
  EXPECT_EQ(strict.code(), 400);
}

TEST_F(RestClientTest, SelectorsAndPagesAreEscapedAndFollowed) {
  for (int i = 0; i < 5; ++i) {
    core::ConfigMap cm = configMap("page-" + std::to_string(i));
    (*cm.mutable_metadata()->mutable_labels())["tier"] = i % 2 == 0 ? "web" : "db";
    create(*client_, cm);
  }
  EXPECT_EQ(list<core::ConfigMap>(*client_, "default", {.limit = 2}).size(), 5u);
  Value first = client_->list(configMaps(), "default", {.limit = 2});
  EXPECT_EQ(first.find("items")->items().size(), 2u);
  EXPECT_FALSE(first.find("metadata")->find("continue")->text().empty());
  EXPECT_EQ(
      list<core::ConfigMap>(*client_, "default", {.label_selector = "tier in (web, x)"}).size(),
      3u);
  EXPECT_EQ(list<core::ConfigMap>(*client_, "default", {.label_selector = "tier!=web"}).size(), 2u);
  EXPECT_EQ(
      list<core::ConfigMap>(*client_, "default", {.field_selector = "metadata.name=page-3"}).size(),
      1u);
}

TEST_F(RestClientTest, RawRequestsReturnErrorsInTheResponse) {
  RawResponse version = client_->raw({.path = "/version"});
  EXPECT_EQ(version.status, 200);
  EXPECT_THAT(version.content_type, HasSubstr("application/json"));
  EXPECT_TRUE(json(version.body).find("gitVersion") != nullptr);
  RawResponse missing = client_->raw({.path = "/api/v1/namespaces/default/configmaps/none"});
  EXPECT_EQ(missing.status, 404);
}

TEST_F(RestClientTest, WatchDeliversEventsAndResumesFromARevision) {
  Value listed = client_->list(configMaps(), "default");
  std::string rv = listed.find("metadata")->find("resourceVersion")->text();
  WatchStreamPtr watch = client_->watch(configMaps(), "default", {.resource_version = rv});
  create(*client_, configMap("w1"));
  client_->patch(configMaps(), "default", "w1", PatchType::kMerge, R"({"data":{"x":"y"}})");
  client_->remove(configMaps(), "default", "w1");

  WatchEvent event;
  ASSERT_TRUE(watch->next(event, 5s));
  EXPECT_EQ(event.type, WatchEvent::Type::kAdded);
  ASSERT_TRUE(watch->next(event, 5s));
  EXPECT_EQ(event.type, WatchEvent::Type::kModified);
  std::string modified_rv = event.object.find("metadata")->find("resourceVersion")->text();
  ASSERT_TRUE(watch->next(event, 5s));
  EXPECT_EQ(event.type, WatchEvent::Type::kDeleted);
  EXPECT_FALSE(watch->next(event, 50ms));
  EXPECT_FALSE(watch->ended());
  watch->cancel();
  EXPECT_TRUE(watch->ended());
  EXPECT_FALSE(watch->error());

  // Resuming from the MODIFIED event's revision replays only what came after it.
  create(*client_, configMap("w2"));
  WatchStreamPtr resumed =
      client_->watch(configMaps(), "default", {.resource_version = modified_rv});
  ASSERT_TRUE(resumed->next(event, 5s));
  EXPECT_EQ(event.type, WatchEvent::Type::kDeleted);
  EXPECT_EQ(event.object.find("metadata")->find("name")->text(), "w1");
  ASSERT_TRUE(resumed->next(event, 5s));
  EXPECT_EQ(event.type, WatchEvent::Type::kAdded);
  EXPECT_EQ(event.object.find("metadata")->find("name")->text(), "w2");

  // Without a revision, the current objects come first as ADDED.
  WatchStreamPtr fresh = client_->watch(configMaps(), "default", {});
  ASSERT_TRUE(fresh->next(event, 5s));
  EXPECT_EQ(event.type, WatchEvent::Type::kAdded);
  EXPECT_EQ(event.object.find("metadata")->find("name")->text(), "w2");
}

TEST_F(RestClientTest, CancelFromAnotherThreadUnblocksAtOnce) {
  WatchStreamPtr watch = client_->watch(configMaps(), "default", {.resource_version = "0"});
  std::thread canceller([&] {
    std::this_thread::sleep_for(100ms);
    watch->cancel();
  });
  auto start = std::chrono::steady_clock::now();
  WatchEvent event;
  while (watch->next(event, 10s)) {
  }
  auto waited = std::chrono::steady_clock::now() - start;
  canceller.join();
  EXPECT_LT(waited, 2s);
  EXPECT_TRUE(watch->ended());
}

TEST_F(RestClientTest, ServerClosedStreamsEndCleanly) {
  WatchStreamPtr watch =
      client_->watch(configMaps(), "default", {.resource_version = "0", .timeout_seconds = 1});
  WatchEvent event;
  auto start = std::chrono::steady_clock::now();
  while (!watch->ended() && std::chrono::steady_clock::now() - start < 10s)
    watch->next(event, 100ms);
  EXPECT_TRUE(watch->ended());
  EXPECT_FALSE(watch->error()) << watch->error()->what();
}

TEST(RestClientWatch, ACompactedRevisionIsGone) {
  TestApiServer server(testing::ServerMode::kPlain);
  ClientPtr client = server.client();
  Value listed = client->list(configMaps(), "default");
  std::string old_rv = listed.find("metadata")->find("resourceVersion")->text();
  create(*client, configMap("c1"));
  create(*client, configMap("c2"));
  server.compact();

  WatchStreamPtr watch = client->watch(configMaps(), "default", {.resource_version = old_rv});
  WatchEvent event;
  ASSERT_TRUE(watch->next(event, 5s));
  EXPECT_EQ(event.type, WatchEvent::Type::kError);
  ASSERT_TRUE(watch->error());
  EXPECT_TRUE(watch->error()->isGone());
  EXPECT_EQ(watch->error()->code(), 410);
}

TEST(RestClientWatch, BookmarksCarryTheRevision) {
  TestApiServer server(testing::ServerMode::kPlain, 1);
  ClientPtr client = server.client();
  create(*client, configMap("b"));
  WatchStreamPtr watch = client->watch(configMaps(), "default", {.resource_version = "0"});
  WatchEvent event;
  ASSERT_TRUE(watch->next(event, 5s));
  EXPECT_EQ(event.type, WatchEvent::Type::kAdded);
  ASSERT_TRUE(watch->next(event, 5s));
  EXPECT_EQ(event.type, WatchEvent::Type::kBookmark);
  EXPECT_FALSE(event.object.find("metadata")->find("resourceVersion")->text().empty());
}

TEST(RestClientTls, AWrongCaIsRefusedAndInsecureSkipsTheCheck) {
  TestApiServer server;
  ClientConfig config = server.config();
  TestApiServer other;  // its own CA
  config.ca_pem = other.config().ca_pem;
  ClientPtr wrong = makeRestClient(config, {.max_retries = 0});
  ApiError e = errorOf([&] { wrong->get(configMaps(), "default", "x"); });
  EXPECT_EQ(e.code(), 0);
  EXPECT_THAT(e.what(), HasSubstr("cannot reach " + server.url()));
  EXPECT_THAT(e.what(), HasSubstr("certificate verify failed"));

  config.ca_pem.clear();
  config.insecure_skip_tls_verify = true;
  ClientPtr insecure = makeRestClient(config);
  EXPECT_TRUE(errorOf([&] { insecure->get(configMaps(), "default", "x"); }).isNotFound());

  // A name the certificate does not hold fails; one it holds passes.
  config = server.config();
  config.tls_server_name = "not-in-the-cert.example";
  ClientPtr misnamed = makeRestClient(config, {.max_retries = 0});
  EXPECT_EQ(errorOf([&] { misnamed->get(configMaps(), "default", "x"); }).code(), 0);
  config.tls_server_name = "localhost";
  ClientPtr named = makeRestClient(config);
  EXPECT_TRUE(errorOf([&] { named->get(configMaps(), "default", "x"); }).isNotFound());
}

// A TLS server that requires a client certificate from its CA and answers with the certificate's
// common name.
class ClientCertServer {
 public:
  ClientCertServer()
      : ca_(apiserver::generateCa("test-ca")),
        tls_(boost::asio::ssl::context::tls_server),
        acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    apiserver::CertKeyPem serving =
        apiserver::issueServingCertificate(ca_, "server", {.ip_addresses = {"127.0.0.1"}});
    tls_.use_certificate_chain(boost::asio::buffer(serving.cert_pem));
    tls_.use_private_key(boost::asio::buffer(serving.key_pem), boost::asio::ssl::context::pem);
    tls_.add_certificate_authority(boost::asio::buffer(ca_.cert_pem));
    tls_.set_verify_mode(boost::asio::ssl::verify_peer |
                         boost::asio::ssl::verify_fail_if_no_peer_cert);
    thread_ = std::thread([this] { run(); });
  }
  ~ClientCertServer() {
    stopping_ = true;
    boost::system::error_code ec;
    boost::asio::ip::tcp::socket poke(io_);
    poke.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
  }
  const apiserver::CertKeyPem& ca() const { return ca_; }
  std::string url() const {
    return "https://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }

 private:
  void run() {
    namespace http = boost::beast::http;
    while (!stopping_) {
      boost::asio::ssl::stream<boost::asio::ip::tcp::socket> stream(io_, tls_);
      boost::system::error_code ec;
      acceptor_.accept(stream.next_layer(), ec);
      if (ec || stopping_) return;
      stream.handshake(boost::asio::ssl::stream_base::server, ec);
      if (ec) continue;
      boost::beast::flat_buffer buffer;
      http::request<http::string_body> req;
      http::read(stream, buffer, req, ec);
      if (ec) continue;
      std::string cn;
      if (X509* peer = SSL_get_peer_certificate(stream.native_handle())) {
        char name[256] = {};
        X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, name,
                                  sizeof(name) - 1);
        cn = name;
        X509_free(peer);
      }
      http::response<http::string_body> res{http::status::ok, 11};
      res.set(http::field::content_type, "application/json");
      res.body() = R"({"metadata":{"name":")" + cn + R"("}})";
      res.keep_alive(false);
      res.prepare_payload();
      http::write(stream, res, ec);
      stream.shutdown(ec);
    }
  }

  apiserver::CertKeyPem ca_;
  boost::asio::io_context io_;
  boost::asio::ssl::context tls_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

TEST(RestClientTls, PresentsTheClientCertificate) {
  ClientCertServer server;
  apiserver::CertKeyPem user = apiserver::issueClientCertificate(server.ca(), "alice", {"dev"});
  ClientPtr client = makeRestClient({.server = server.url(),
                                     .ca_pem = server.ca().cert_pem,
                                     .client_cert_pem = user.cert_pem,
                                     .client_key_pem = user.key_pem});
  Value answer = client->get(configMaps(), "default", "x");
  EXPECT_EQ(answer.find("metadata")->find("name")->text(), "alice");

  ClientPtr without =
      makeRestClient({.server = server.url(), .ca_pem = server.ca().cert_pem}, {.max_retries = 0});
  EXPECT_EQ(errorOf([&] { without->get(configMaps(), "default", "x"); }).code(), 0);
}

TEST(RestClientTls, WithoutATokenTheServerSaysUnauthorized) {
  TestApiServer server;
  ClientConfig config = server.config();
  config.token.clear();
  ClientPtr anonymous = makeRestClient(config);
  EXPECT_EQ(errorOf([&] { anonymous->get(configMaps(), "default", "x"); }).code(), 401);
}

TEST(RestClientPlain, PlainHttpOnLoopback) {
  TestApiServer server(testing::ServerMode::kPlain);
  ClientPtr client = server.client();
  create(*client, configMap("plain"));
  EXPECT_EQ(get<core::ConfigMap>(*client, "default", "plain").metadata().name(), "plain");
}

// ----- against scripted servers -----

class ScriptedServer {
 public:
  explicit ScriptedServer(apiserver::HttpHandler handler) : server_({}, std::move(handler)) {
    server_.start();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_.port()); }
  apiserver::HttpServer& http() { return server_; }

 private:
  apiserver::HttpServer server_;
};

RestClientOptions fast() {
  return {.initial_backoff = 1ms, .max_backoff = 5ms};
}

TEST(RestClientRetry, RetriesTooManyRequestsAndServerErrorsThenSucceeds) {
  std::atomic<int> calls{0};
  ScriptedServer server(
      [&](const apiserver::HttpRequest&, apiserver::HttpResponse& res, const auto&) {
        int n = calls++;
        if (n == 0) {
          res.status = 429;
          res.headers.emplace_back("Retry-After", "0");
          res.body = R"({"kind":"Status","apiVersion":"v1","status":"Failure","code":429})";
        } else if (n == 1) {
          res.status = 500;
          res.body = "oops";
        } else {
          res.body = R"({"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x"}})";
        }
      });
  ClientPtr client = makeRestClient({.server = server.url()}, fast());
  Value got = client->get(configMaps(), "default", "x");
  EXPECT_EQ(got.find("metadata")->find("name")->text(), "x");
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(server.http().openConnections(), 1u);  // one kept-alive connection for all three
}

TEST(RestClientWatch, EventsSplitAcrossChunksAndMalformedEvents) {
  ScriptedServer server([&](const apiserver::HttpRequest& req, apiserver::HttpResponse& res,
                            const auto& start_stream) {
    if (req.path.find("missing") != std::string::npos) {
      res.status = 404;
      res.body = R"({"kind":"Status","apiVersion":"v1","status":"Failure","code":404,
                     "reason":"NotFound","message":"namespaces \"missing\" not found"})";
      return;
    }
    apiserver::ResponseStream& out = start_stream({200, "application/json", {}, ""});
    out.write(R"({"type":"ADDED","obj)");
    std::this_thread::sleep_for(20ms);
    out.write(R"(ect":{"metadata":{"name":"a"}}})"
              "\n\n"
              R"({"type":"DELETED","object":{"metadata":{"name":"a"}}})"
              "\n");
    out.write("this is not an event\n");
    out.write(R"({"type":"ADDED","object":{"metadata":{"name":"never"}}})"
              "\n");
  });
  ClientPtr client = makeRestClient({.server = server.url()}, fast());
  WatchStreamPtr watch = client->watch(configMaps(), "default", {});
  WatchEvent event;
  ASSERT_TRUE(watch->next(event, 5s));
  EXPECT_EQ(event.type, WatchEvent::Type::kAdded);
  EXPECT_EQ(event.object.find("metadata")->find("name")->text(), "a");
  ASSERT_TRUE(watch->next(event, 5s));
  EXPECT_EQ(event.type, WatchEvent::Type::kDeleted);
  EXPECT_FALSE(watch->next(event, 5s));
  EXPECT_TRUE(watch->ended());
  ASSERT_TRUE(watch->error());
  EXPECT_EQ(watch->error()->code(), 0);
  EXPECT_THAT(watch->error()->what(), HasSubstr("malformed event"));

  ApiError missing = errorOf([&] { client->watch(configMaps(), "missing", {}); });
  EXPECT_TRUE(missing.isNotFound());
  EXPECT_THAT(missing.what(), HasSubstr("\"missing\" not found"));
}

TEST(RestClientRetry, HonoursRetryAfter) {
  std::atomic<int> calls{0};
  ScriptedServer server(
      [&](const apiserver::HttpRequest&, apiserver::HttpResponse& res, const auto&) {
        if (calls++ == 0) {
          res.status = 429;
          res.headers.emplace_back("Retry-After", "1");
        }
        res.body = "{}";
      });
  ClientPtr client = makeRestClient({.server = server.url()}, fast());
  auto start = std::chrono::steady_clock::now();
  client->get(configMaps(), "default", "x");
  EXPECT_GE(std::chrono::steady_clock::now() - start, 900ms);
  EXPECT_EQ(calls.load(), 2);
}

TEST(RestClientRetry, GivesUpAfterMaxRetriesWithTheLastAnswer) {
  std::atomic<int> calls{0};
  ScriptedServer server(
      [&](const apiserver::HttpRequest&, apiserver::HttpResponse& res, const auto&) {
        ++calls;
        res.status = 503;
        res.body = R"({"kind":"Status","apiVersion":"v1","status":"Failure","code":503,
                   "reason":"ServiceUnavailable","message":"try later"})";
      });
  RestClientOptions options = fast();
  options.max_retries = 3;
  ClientPtr client = makeRestClient({.server = server.url()}, options);
  ApiError e = errorOf([&] { client->get(configMaps(), "default", "x"); });
  EXPECT_EQ(e.code(), 503);
  EXPECT_STREQ(e.what(), "try later");
  EXPECT_EQ(calls.load(), 4);
}

TEST(RestClientRetry, NonIdempotentRequestsAreRetriedOnlyOn429And503) {
  std::atomic<int> calls{0};
  std::atomic<int> status{500};
  ScriptedServer server(
      [&](const apiserver::HttpRequest&, apiserver::HttpResponse& res, const auto&) {
        int n = calls++;
        res.status = n == 0 ? status.load() : 201;
        res.body = "{}";
      });
  ClientPtr client = makeRestClient({.server = server.url()}, fast());
  Value cm = json(R"({"metadata":{"name":"x"}})");

  // A 500 may have come after the write happened: not resent.
  EXPECT_EQ(errorOf([&] { client->create(configMaps(), "default", cm); }).code(), 500);
  EXPECT_EQ(calls.load(), 1);

  for (int s : {429, 503}) {
    calls = 0;
    status = s;
    client->create(configMaps(), "default", cm);
    EXPECT_EQ(calls.load(), 2) << s;
  }

  // A PATCH with a resourceVersion precondition is safe to resend; one without is not.
  calls = 0;
  status = 500;
  client->patch(configMaps(), "default", "x", PatchType::kMerge,
                R"({"metadata":{"resourceVersion":"7"},"data":{"a":"b"}})");
  EXPECT_EQ(calls.load(), 2);
  calls = 0;
  EXPECT_EQ(errorOf([&] {
              client->patch(configMaps(), "default", "x", PatchType::kMerge,
                            R"({"data":{"a":"b"}})");
            }).code(),
            500);
  EXPECT_EQ(calls.load(), 1);
}

// Accepts connections, reads one request from each, counts it and hangs up without answering.
class HangUpServer {
 public:
  HangUpServer() : acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] { run(); });
  }
  ~HangUpServer() {
    stopping_ = true;
    boost::system::error_code ec;
    boost::asio::ip::tcp::socket poke(io_);
    poke.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }
  int requests() const { return requests_.load(); }

 private:
  void run() {
    namespace http = boost::beast::http;
    while (!stopping_) {
      boost::asio::ip::tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stopping_) return;
      boost::beast::flat_buffer buffer;
      http::request<http::string_body> req;
      http::read(socket, buffer, req, ec);
      if (!ec) ++requests_;
      socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
      socket.close(ec);
    }
  }

  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

TEST(RestClientRetry, APostIsNotResentAfterALostConnection) {
  HangUpServer server;
  RestClientOptions options = fast();
  options.max_retries = 3;
  ClientPtr client = makeRestClient({.server = server.url()}, options);

  ApiError post = errorOf(
      [&] { client->create(configMaps(), "default", json(R"({"metadata":{"name":"x"}})")); });
  EXPECT_EQ(post.code(), 0);
  EXPECT_TRUE(post.isUnreachable());
  EXPECT_THAT(post.what(), HasSubstr(server.url()));
  EXPECT_EQ(server.requests(), 1);

  // A GET is: every attempt reached the server.
  EXPECT_EQ(errorOf([&] { client->get(configMaps(), "default", "x"); }).code(), 0);
  EXPECT_EQ(server.requests(), 1 + 4);
}

TEST(RestClientRetry, UnreachableServersAreNamed) {
  uint16_t port;
  {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  std::string url = "http://127.0.0.1:" + std::to_string(port);
  RestClientOptions options = fast();
  options.max_retries = 2;
  ClientPtr client = makeRestClient({.server = url}, options);
  ApiError e = errorOf([&] { client->get(configMaps(), "default", "x"); });
  EXPECT_EQ(e.code(), 0);
  EXPECT_STREQ(e.what(), ("cannot reach " + url + ": connection refused").c_str());
  EXPECT_EQ(errorOf([&] { client->watch(configMaps(), "", {}); }).code(), 0);
}

TEST(RestClientRetry, SlowAnswersTimeOut) {
  ScriptedServer server(
      [&](const apiserver::HttpRequest&, apiserver::HttpResponse& res, const auto&) {
        std::this_thread::sleep_for(600ms);
        res.body = "{}";
      });
  ClientPtr client =
      makeRestClient({.server = server.url()}, {.max_retries = 0, .request_timeout = 100ms});
  auto start = std::chrono::steady_clock::now();
  ApiError e = errorOf([&] { client->get(configMaps(), "default", "x"); });
  EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms);
  EXPECT_EQ(e.code(), 0);
  EXPECT_THAT(e.what(), HasSubstr("no answer within 100ms"));
}

TEST(RestClientRequests, SendsTokenFromItsFileAndReReadsItWhenItChanges) {
  std::mutex mutex;
  std::vector<std::string> seen;
  ScriptedServer server(
      [&](const apiserver::HttpRequest& req, apiserver::HttpResponse& res, const auto&) {
        std::lock_guard lock(mutex);
        seen.emplace_back(req.header("authorization"));
        seen.emplace_back(req.header("user-agent"));
        seen.emplace_back(req.target);
        res.body = "{}";
      });
  std::string file =
      (std::filesystem::temp_directory_path() / ("skiff-token-" + std::to_string(::getpid())))
          .string();
  std::ofstream(file) << "first\n";
  ClientPtr client = makeRestClient({.server = server.url(), .token = "first", .token_file = file});
  client->list(configMaps(), "team a", {.label_selector = "app in (a,b)", .limit = 3});
  std::this_thread::sleep_for(20ms);
  std::ofstream(file) << "second-token\n";
  client->get(configMaps(), "default", "x");
  std::filesystem::remove(file);
  ASSERT_EQ(seen.size(), 6u);
  EXPECT_EQ(seen[0], "Bearer first");
  EXPECT_THAT(seen[1], HasSubstr("skiff/"));
  EXPECT_EQ(seen[2],
            "/api/v1/namespaces/team%20a/configmaps?labelSelector=app%20in%20%28a%2Cb%29&limit=3");
  EXPECT_EQ(seen[3], "Bearer second-token");
}

TEST(RestClientRequests, ConnectionsAreSharedAcrossThreads) {
  ScriptedServer server([&](const apiserver::HttpRequest&, apiserver::HttpResponse& res,
                            const auto&) { res.body = "{}"; });
  ClientPtr client = makeRestClient({.server = server.url()}, {.max_idle_connections = 4});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i)
        client->get(configMaps(), "default", "x");
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_LE(server.http().openConnections(), 4u);
}

// 32 calls at once (a controller's 16 parallel creates and its other callers), round after round:
// the default pool keeps every connection they used, so no round after the first opens one.
TEST(RestClientRequests, TheDefaultPoolKeepsTheConnectionsOfConcurrentCalls) {
  constexpr int kThreads = 32;
  constexpr int kRounds = 4;
  std::mutex mutex;
  std::condition_variable all_in;
  int arrivals = 0;
  std::set<std::string> peers;  // address:port, one per connection
  ScriptedServer server(
      [&](const apiserver::HttpRequest& req, apiserver::HttpResponse& res, const auto&) {
        std::unique_lock lock(mutex);
        peers.insert(req.remote_address);
        const int group_end = (arrivals / kThreads + 1) * kThreads;
        ++arrivals;
        all_in.notify_all();
        // Held until the whole round is in flight, so the round needs kThreads connections.
        all_in.wait_for(lock, 5s, [&] { return arrivals >= group_end; });
        res.body = "{}";
      });
  ClientPtr client = makeRestClient({.server = server.url()});
  std::barrier round_done(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kRounds; ++i) {
        client->get(configMaps(), "default", "x");
        round_done.arrive_and_wait();
      }
    });
  }
  for (auto& t : threads)
    t.join();
  std::lock_guard lock(mutex);
  EXPECT_EQ(arrivals, kThreads * kRounds);
  EXPECT_EQ(peers.size(), static_cast<size_t>(kThreads));
}

TEST(RestClientRequests, EncodeQuery) {
  EXPECT_EQ(encodeQuery({{"a", "b c"}, {"x/y", "1=2&3"}, {"u", "é~._-"}}),
            "a=b%20c&x%2Fy=1%3D2%263&u=%C3%A9~._-");
}

TEST(RestClientRequests, BadServerUrlsAreRefusedWithTheirSource) {
  try {
    makeRestClient({.server = "ftp://host", .source = "my.kubeconfig"});
    ADD_FAILURE();
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("my.kubeconfig"));
    EXPECT_THAT(e.what(), HasSubstr("ftp://host"));
  }
  EXPECT_THROW(makeRestClient({.server = "http://host:99999"}), std::invalid_argument);
  EXPECT_THROW(makeRestClient({.server = "https://"}), std::invalid_argument);
}

TEST(TypedCalls, DecodeIgnoringUnknownFieldsAndTakeTheNamespaceFromTheObject) {
  testing::MockClient mock;
  EXPECT_CALL(mock, create(::testing::Ref(configMaps()), std::string_view("ns-1"), ::testing::_,
                           ::testing::_))
      .WillOnce(
          [](const api::ResourceType&, std::string_view, const Value& object, const WriteOptions&) {
            Value answer = object;
            answer.set("fieldFromANewerServer", Value::integer(1));
            return answer;
          });
  core::ConfigMap created = create(mock, configMap("m", "ns-1"));
  EXPECT_EQ(created.metadata().name(), "m");
  EXPECT_EQ(toValue(created).find("kind")->text(), "ConfigMap");
}

TEST(RestClientRequests, PathsOfResources) {
  const auto& registry = api::Registry::builtin();
  EXPECT_EQ(resourcePath(*registry.resolve("pods"), "default", "web-1", "log"),
            "/api/v1/namespaces/default/pods/web-1/log");
  EXPECT_EQ(resourcePath(*registry.resolve("deployments"), "default", "web", "scale"),
            "/apis/apps/v1/namespaces/default/deployments/web/scale");
  EXPECT_EQ(resourcePath(*registry.resolve("nodes"), "ignored", "node-1"), "/api/v1/nodes/node-1");
  EXPECT_EQ(resourcePath(*registry.resolve("pods"), ""), "/api/v1/pods");
}

}  // namespace
}  // namespace skiff::client
