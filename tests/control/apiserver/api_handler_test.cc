#include "control/apiserver/api_handler.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <filesystem>
#include <thread>

#include "control/api/json.h"
#include "control/store/sqlite_store.h"

namespace skiff::apiserver {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct Reply {
  int status = 0;
  std::string body;
  std::vector<std::string> warnings;
  std::string content_type;
  api::Value json() const { return api::parseJson(body); }
};

class ApiHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("skiff-api-" + std::to_string(::getpid()) + "-" +
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

  Reply call(http::verb method, const std::string& target, const std::string& body = "",
             const std::string& content_type = "application/json", const std::string& accept = "") {
    asio::io_context io;
    tcp::socket socket(io);
    socket.connect({asio::ip::make_address("127.0.0.1"), server_->port()});
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "localhost");
    if (!body.empty()) req.set(http::field::content_type, content_type);
    if (!accept.empty()) req.set(http::field::accept, accept);
    req.body() = body;
    req.prepare_payload();
    http::write(socket, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(socket, buffer, res);
    Reply r{static_cast<int>(res.result_int()),
            res.body(),
            {},
            std::string(res[http::field::content_type])};
    for (const auto& f : res) {
      if (f.name_string() == "Warning") r.warnings.emplace_back(f.value());
    }
    return r;
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<ApiHandler> handler_;
  std::unique_ptr<HttpServer> server_;
};

const char* kDeployment = R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
  "spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},
  "template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}})";

TEST_F(ApiHandlerTest, CrudOverHttp) {
  Reply created =
      call(http::verb::post, "/apis/apps/v1/namespaces/default/deployments", kDeployment);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.json().find("kind")->text(), "Deployment");
  std::string rv = created.json().find("metadata")->find("resourceVersion")->text();

  Reply got = call(http::verb::get, "/apis/apps/v1/namespaces/default/deployments/web");
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.json().find("spec")->find("replicas")->asInt(), 2);

  Reply list = call(http::verb::get, "/apis/apps/v1/deployments?labelSelector=x%3Dy");
  EXPECT_EQ(list.json().find("kind")->text(), "DeploymentList");
  EXPECT_TRUE(list.json().find("items")->items().empty());
  Reply all = call(http::verb::get, "/apis/apps/v1/namespaces/default/deployments");
  ASSERT_EQ(all.json().find("items")->items().size(), 1u);

  Reply yaml = call(http::verb::put, "/apis/apps/v1/namespaces/default/deployments/web",
                    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"
                    "  resourceVersion: \"" +
                        rv +
                        "\"\nspec:\n  replicas: 3\n  selector: {matchLabels: {app: web}}\n"
                        "  template:\n    metadata: {labels: {app: web}}\n"
                        "    spec: {containers: [{name: c, image: i}]}\n",
                    "application/yaml");
  EXPECT_EQ(yaml.status, 200) << yaml.body;
  EXPECT_EQ(yaml.json().find("metadata")->find("generation")->asInt(), 2);
  Reply stale = call(http::verb::put, "/apis/apps/v1/namespaces/default/deployments/web",
                     "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"
                     "  resourceVersion: \"" +
                         rv + "\"\n",
                     "application/yaml");
  EXPECT_EQ(stale.status, 409);
  EXPECT_EQ(stale.json().find("reason")->text(), "Conflict");

  Reply scale = call(http::verb::get, "/apis/apps/v1/namespaces/default/deployments/web/scale");
  EXPECT_EQ(scale.json().find("kind")->text(), "Scale");
  EXPECT_EQ(scale.json().find("spec")->find("replicas")->asInt(), 3);
  EXPECT_EQ(scale.json().find("status")->find("selector")->text(), "app=web");
  Reply scaled = call(
      http::verb::put, "/apis/apps/v1/namespaces/default/deployments/web/scale",
      R"({"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"web"},"spec":{"replicas":5}})");
  EXPECT_EQ(scaled.json().find("spec")->find("replicas")->asInt(), 5);

  Reply deleted = call(http::verb::delete_, "/apis/apps/v1/namespaces/default/deployments/web");
  EXPECT_EQ(deleted.status, 200);
  EXPECT_EQ(deleted.json().find("status")->text(), "Success");
  EXPECT_EQ(call(http::verb::get, "/apis/apps/v1/namespaces/default/deployments/web").status, 404);
}

TEST_F(ApiHandlerTest, BadInputGetsTheRightStatus) {
  EXPECT_EQ(call(http::verb::post, "/apis/apps/v1/namespaces/nope/deployments", kDeployment).status,
            404);
  Reply strict =
      call(http::verb::post, "/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
           R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"dta":{}})");
  EXPECT_EQ(strict.status, 400);
  EXPECT_EQ(strict.json().find("message")->text(), "strict decoding error: unknown field \"dta\"");
  Reply warn = call(http::verb::post, "/api/v1/namespaces/default/configmaps",
                    R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"},"dta":{}})");
  EXPECT_EQ(warn.status, 201);
  ASSERT_EQ(warn.warnings.size(), 1u);
  EXPECT_EQ(warn.warnings[0], "299 - \"unknown field \\\"dta\\\"\"");
  Reply wrong_type = call(http::verb::post, "/api/v1/namespaces/default/configmaps",
                          R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":5}})");
  EXPECT_EQ(wrong_type.status, 400);
  EXPECT_NE(wrong_type.body.find("metadata.name: expected string"), std::string::npos);
  EXPECT_EQ(
      call(http::verb::post, "/api/v1/namespaces/default/configmaps", "{", "text/plain").status,
      415);
  EXPECT_EQ(call(http::verb::post, "/api/v1/namespaces/default/configmaps", "{").status, 400);
  EXPECT_EQ(call(http::verb::get, "/api/v1/namespaces/default/widgets").status, 404);
  EXPECT_EQ(call(http::verb::get, "/api/v1/pods?fieldSelector=spec.foo%3Dx").status, 400);
  EXPECT_EQ(call(http::verb::get, "/api/v1/pods?labelSelector=%3D%3D").status, 400);
  EXPECT_EQ(
      call(http::verb::post, "/api/v1/namespaces/default/configmaps?dryRun=Some", "{}").status,
      400);
}

TEST_F(ApiHandlerTest, DiscoveryVersionAndHealth) {
  Reply api = call(http::verb::get, "/api");
  EXPECT_EQ(api.json().find("versions")->items()[0].text(), "v1");
  Reply groups = call(http::verb::get, "/apis");
  bool apps = false;
  api::Value group_list = groups.json();  // kept alive: the loop reads into it
  for (const auto& g : group_list.find("groups")->items())
    apps = apps || g.find("name")->text() == "apps";
  EXPECT_TRUE(apps);
  Reply v1 = call(http::verb::get, "/api/v1");
  bool pods = false, pods_binding = false;
  api::Value resources = v1.json();
  for (const auto& r : resources.find("resources")->items()) {
    if (r.find("name")->text() == "pods") {
      pods = true;
      EXPECT_EQ(r.find("shortNames")->items()[0].text(), "po");
    }
    pods_binding = pods_binding || r.find("name")->text() == "pods/binding";
  }
  EXPECT_TRUE(pods && pods_binding);
  EXPECT_EQ(call(http::verb::get, "/apis/apps").json().find("kind")->text(), "APIGroup");
  EXPECT_EQ(call(http::verb::get, "/version").json().find("major")->text(), "1");
  EXPECT_EQ(call(http::verb::get, "/healthz").body, "ok");
  EXPECT_EQ(call(http::verb::get, "/api/v1/namespaces/kube-system").status, 200);
}

TEST_F(ApiHandlerTest, AggregatedDiscoveryAnswersEveryGroupAtOnce) {
  // kubectl v1.32's Accept header for /api and /apis.
  const std::string kubectl_accept =
      "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
      "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
      "application/json";
  auto resourceOf = [](const api::Value& group, const std::string& name) -> const api::Value* {
    for (const auto& r : group.find("versions")->items()[0].find("resources")->items()) {
      if (r.find("resource")->text() == name) return &r;
    }
    return nullptr;
  };
  auto subresourceOf = [](const api::Value& r, const std::string& name) -> const api::Value* {
    if (r.find("subresources") == nullptr) return nullptr;
    for (const auto& s : r.find("subresources")->items()) {
      if (s.find("subresource")->text() == name) return &s;
    }
    return nullptr;
  };

  Reply apis = call(http::verb::get, "/apis", "", "", kubectl_accept);
  ASSERT_EQ(apis.status, 200);
  EXPECT_EQ(apis.content_type,
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList");
  api::Value list = apis.json();
  EXPECT_EQ(list.find("kind")->text(), "APIGroupDiscoveryList");
  EXPECT_EQ(list.find("apiVersion")->text(), "apidiscovery.k8s.io/v2");
  const api::Value* apps = nullptr;
  for (const auto& item : list.find("items")->items()) {
    ASSERT_NE(item.find("metadata")->find("name"), nullptr) << "the core group is /api's";
    if (item.find("metadata")->find("name")->text() == "apps") apps = &item;
  }
  ASSERT_NE(apps, nullptr);
  const api::Value* deployments = resourceOf(*apps, "deployments");
  ASSERT_NE(deployments, nullptr);
  EXPECT_EQ(deployments->find("scope")->text(), "Namespaced");
  EXPECT_EQ(deployments->find("responseKind")->find("kind")->text(), "Deployment");
  EXPECT_EQ(deployments->find("shortNames")->items()[0].text(), "deploy");
  const api::Value* scale = subresourceOf(*deployments, "scale");
  ASSERT_NE(scale, nullptr);
  EXPECT_EQ(scale->find("responseKind")->find("group")->text(), "autoscaling");
  EXPECT_EQ(scale->find("responseKind")->find("kind")->text(), "Scale");

  Reply core = call(http::verb::get, "/api", "", "", kubectl_accept);
  api::Value core_list = core.json();
  ASSERT_EQ(core_list.find("items")->items().size(), 1u);
  const api::Value& v1 = core_list.find("items")->items()[0];
  EXPECT_EQ(v1.find("metadata")->find("name"), nullptr);
  ASSERT_NE(resourceOf(v1, "nodes"), nullptr);
  EXPECT_EQ(resourceOf(v1, "nodes")->find("scope")->text(), "Cluster");
  ASSERT_NE(resourceOf(v1, "pods"), nullptr);
  EXPECT_NE(subresourceOf(*resourceOf(v1, "pods"), "binding"), nullptr);

  // Only v2beta1 accepted: the same document under that version. Plain JSON, or aggregated
  // discovery in protobuf only: the legacy lists.
  Reply beta = call(http::verb::get, "/apis", "", "",
                    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList");
  EXPECT_EQ(beta.json().find("apiVersion")->text(), "apidiscovery.k8s.io/v2beta1");
  EXPECT_EQ(call(http::verb::get, "/apis", "", "", "application/json").json().find("kind")->text(),
            "APIGroupList");
  EXPECT_EQ(call(http::verb::get, "/apis", "", "",
                 "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;"
                 "as=APIGroupDiscoveryList,application/json")
                .json()
                .find("kind")
                ->text(),
            "APIGroupList");
}

TEST_F(ApiHandlerTest, BindingAssignsANodeOnce) {
  ASSERT_EQ(
      call(
          http::verb::post, "/api/v1/namespaces/default/pods",
          R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}})")
          .status,
      201);
  std::string binding =
      R"({"apiVersion":"v1","kind":"Binding","metadata":{"name":"p"},"target":{"kind":"Node","name":"n1"}})";
  EXPECT_EQ(call(http::verb::post, "/api/v1/namespaces/default/pods/p/binding", binding).status,
            201);
  EXPECT_EQ(call(http::verb::get, "/api/v1/namespaces/default/pods/p")
                .json()
                .find("spec")
                ->find("nodeName")
                ->text(),
            "n1");
  EXPECT_EQ(call(http::verb::post, "/api/v1/namespaces/default/pods/p/binding", binding).status,
            409);
}

TEST_F(ApiHandlerTest, WatchStreamsInitialStateThenChanges) {
  call(http::verb::post, "/api/v1/namespaces/default/configmaps",
       R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","labels":{"x":"1"}}})");
  std::thread writer([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    call(http::verb::post, "/api/v1/namespaces/default/configmaps",
         R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b","labels":{"x":"1"}}})");
    call(http::verb::put, "/api/v1/namespaces/default/configmaps/a",
         R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","labels":{"x":"2"}}})");
    call(http::verb::delete_, "/api/v1/namespaces/default/configmaps/b");
  });
  Reply watch =
      call(http::verb::get,
           "/api/v1/namespaces/default/configmaps?watch=true&labelSelector=x%3D1&timeoutSeconds=2");
  writer.join();
  std::vector<std::string> seen;
  size_t start = 0;
  while (start < watch.body.size()) {
    size_t nl = watch.body.find('\n', start);
    api::Value e = api::parseJson(watch.body.substr(start, nl - start));
    seen.push_back(e.find("type")->text() + " " +
                   e.find("object")->find("metadata")->find("name")->text());
    start = nl + 1;
  }
  // a leaves the selector's view when relabelled, so the watcher sees it deleted.
  EXPECT_EQ(seen, (std::vector<std::string>{"ADDED a", "ADDED b", "DELETED a", "DELETED b"}));
}

TEST_F(ApiHandlerTest, WatchFromACompactedVersionIsGone) {
  for (int i = 0; i < 3; ++i) {
    call(http::verb::post, "/api/v1/namespaces/default/configmaps",
         R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c)" + std::to_string(i) +
             R"("}})");
  }
  store_->compact(store_->currentRevision());
  Reply watch =
      call(http::verb::get,
           "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=2&timeoutSeconds=1");
  api::Value e = api::parseJson(watch.body.substr(0, watch.body.find('\n')));
  EXPECT_EQ(e.find("type")->text(), "ERROR");
  EXPECT_EQ(e.find("object")->find("code")->asInt(), 410);
}

TEST_F(ApiHandlerTest, ListAtRevisionZeroComesWholeFromTheCacheAndBookmarksFollowIt) {
  for (int i = 0; i < 3; ++i) {
    call(http::verb::post, "/api/v1/namespaces/default/configmaps",
         R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c)" + std::to_string(i) +
             R"("}})");
  }
  // The cache applies the writes a moment later; Kubernetes ignores limit at resourceVersion=0.
  api::Value cached;
  for (int i = 0; i < 500; ++i) {
    cached =
        call(http::verb::get, "/api/v1/namespaces/default/configmaps?resourceVersion=0&limit=1")
            .json();
    if (cached.find("items")->items().size() == 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(cached.find("items")->items().size(), 3u);
  EXPECT_EQ(cached.find("metadata")->find("continue"), nullptr);
  // Without a resourceVersion the store pages the list.
  api::Value paged = call(http::verb::get, "/api/v1/namespaces/default/configmaps?limit=1").json();
  EXPECT_EQ(paged.find("items")->items().size(), 1u);
  EXPECT_NE(paged.find("metadata")->find("continue"), nullptr);

  std::string rv = paged.find("metadata")->find("resourceVersion")->text();
  Reply watch = call(http::verb::get,
                     "/api/v1/namespaces/default/configmaps?watch=true&allowWatchBookmarks=true&"
                     "resourceVersion=" +
                         rv + "&timeoutSeconds=2");
  api::Value first = api::parseJson(watch.body.substr(0, watch.body.find('\n')));
  EXPECT_EQ(first.find("type")->text(), "BOOKMARK");
  EXPECT_EQ(first.find("object")->find("metadata")->find("resourceVersion")->text(),
            std::to_string(store_->currentRevision()));
  EXPECT_EQ(first.find("object")->find("kind")->text(), "ConfigMap");
}

TEST_F(ApiHandlerTest, NamespaceTerminatesUntilBothFinalizerListsAreEmpty) {
  Reply created = call(http::verb::post, "/api/v1/namespaces",
                       R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team"}})");
  ASSERT_EQ(created.status, 201) << created.body;
  api::Value ns = created.json();
  EXPECT_EQ(api::writeJson(*ns.find("spec")), R"({"finalizers":["kubernetes"]})");
  EXPECT_EQ(ns.find("status")->find("phase")->text(), "Active");
  // An ordinary update cannot drop spec.finalizers.
  Reply updated =
      call(http::verb::put, "/api/v1/namespaces/team",
           R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team","labels":{"a":"b"}},)"
           R"("spec":{"finalizers":[]}})");
  ASSERT_EQ(updated.status, 200) << updated.body;
  EXPECT_EQ(updated.json().find("spec")->find("finalizers")->items().size(), 1u);

  Reply deleted = call(http::verb::delete_, "/api/v1/namespaces/team");
  ASSERT_EQ(deleted.status, 200) << deleted.body;
  api::Value terminating = call(http::verb::get, "/api/v1/namespaces/team").json();
  EXPECT_EQ(terminating.find("status")->find("phase")->text(), "Terminating");
  EXPECT_NE(terminating.find("metadata")->find("deletionTimestamp"), nullptr);
  // A second delete while spec.finalizers remain is refused, as Kubernetes does.
  EXPECT_EQ(call(http::verb::delete_, "/api/v1/namespaces/team").status, 409);

  Reply refused = call(http::verb::post, "/api/v1/namespaces/team/configmaps",
                       R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"late"}})");
  EXPECT_EQ(refused.status, 403);
  api::Value status = refused.json();
  EXPECT_EQ(status.find("reason")->text(), "Forbidden");
  EXPECT_EQ(status.find("message")->text(),
            "configmaps \"late\" is forbidden: unable to create new content in namespace team "
            "because it is being terminated");
  EXPECT_EQ(status.find("details")->find("causes")->items().at(0).find("reason")->text(),
            "NamespaceTerminating");

  // The namespace controller's finalize, with a metadata finalizer still holding it.
  std::string rv = terminating.find("metadata")->find("resourceVersion")->text();
  Reply held = call(http::verb::put, "/api/v1/namespaces/team",
                    R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team",)"
                    R"("finalizers":["example.com/hold"]}})");
  ASSERT_EQ(held.status, 200) << held.body;
  Reply finalized =
      call(http::verb::put, "/api/v1/namespaces/team/finalize",
           R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team"},"spec":{}})");
  ASSERT_EQ(finalized.status, 200) << finalized.body;
  EXPECT_EQ(finalized.json().find("spec")->find("finalizers"), nullptr);
  EXPECT_EQ(call(http::verb::get, "/api/v1/namespaces/team").status, 200);
  // The last metadata finalizer goes: so does the namespace.
  Reply released = call(http::verb::put, "/api/v1/namespaces/team",
                        R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team",)"
                        R"("finalizers":[]}})");
  ASSERT_EQ(released.status, 200) << released.body;
  EXPECT_EQ(call(http::verb::get, "/api/v1/namespaces/team").status, 404);
  EXPECT_EQ(call(http::verb::get, "/api/v1/namespaces/default/finalize").status, 405);
}

TEST_F(ApiHandlerTest, FinalizeRemovesATerminatingNamespaceWithoutMetadataFinalizers) {
  call(http::verb::post, "/api/v1/namespaces",
       R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"gone"}})");
  ASSERT_EQ(call(http::verb::delete_, "/api/v1/namespaces/gone").status, 200);
  Reply finalized =
      call(http::verb::put, "/api/v1/namespaces/gone/finalize",
           R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"gone"},"spec":{}})");
  ASSERT_EQ(finalized.status, 200) << finalized.body;
  EXPECT_EQ(call(http::verb::get, "/api/v1/namespaces/gone").status, 404);
}

TEST_F(ApiHandlerTest, PodsGetDefaultTolerationSecondsAndBindingMarksThemScheduled) {
  Reply created = call(
      http::verb::post, "/api/v1/namespaces/default/pods",
      R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"busybox"}],)"
      R"("tolerations":[{"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute","tolerationSeconds":60}]}})");
  ASSERT_EQ(created.status, 201) << created.body;
  api::Value pod_json = created.json();
  const auto& tolerations = pod_json.find("spec")->find("tolerations")->items();
  ASSERT_EQ(tolerations.size(), 2u);
  EXPECT_EQ(tolerations[0].find("tolerationSeconds")->asInt(), 60);  // the pod's own stays
  EXPECT_EQ(api::writeJson(tolerations[1]),
            R"({"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute",)"
            R"("tolerationSeconds":300})");

  Reply bound = call(http::verb::post, "/api/v1/namespaces/default/pods/p/binding",
                     R"({"apiVersion":"v1","kind":"Binding","metadata":{"name":"p",)"
                     R"("annotations":{"a":"b"}},"target":{"kind":"Node","name":"n1"}})");
  ASSERT_EQ(bound.status, 201) << bound.body;
  api::Value pod = call(http::verb::get, "/api/v1/namespaces/default/pods/p").json();
  EXPECT_EQ(pod.find("spec")->find("nodeName")->text(), "n1");
  EXPECT_EQ(pod.find("metadata")->find("annotations")->find("a")->text(), "b");
  const auto& conditions = pod.find("status")->find("conditions")->items();
  ASSERT_EQ(conditions.size(), 1u);
  EXPECT_EQ(conditions[0].find("type")->text(), "PodScheduled");
  EXPECT_EQ(conditions[0].find("status")->text(), "True");
  EXPECT_NE(conditions[0].find("lastTransitionTime"), nullptr);
}

TEST_F(ApiHandlerTest, NodeKeepsItsStatusOnCreateAndEventsKeepMicroseconds) {
  Reply node =
      call(http::verb::post, "/api/v1/nodes",
           R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"},)"
           R"("status":{"capacity":{"cpu":"4"},"conditions":[{"type":"Ready","status":"True"}]}})");
  ASSERT_EQ(node.status, 201) << node.body;
  api::Value stored = call(http::verb::get, "/api/v1/nodes/n1").json();
  EXPECT_EQ(stored.find("status")->find("capacity")->find("cpu")->text(), "4");
  EXPECT_EQ(stored.find("status")->find("conditions")->items().size(), 1u);

  Reply event = call(
      http::verb::post, "/api/v1/namespaces/default/events",
      R"({"apiVersion":"v1","kind":"Event","metadata":{"name":"e"},"involvedObject":{"kind":"Pod","name":"p"},)"
      R"("reason":"Scheduled","eventTime":"2026-12-01T10:00:00.123456Z","reportingComponent":"s",)"
      R"("reportingInstance":"s-1","action":"Binding","firstTimestamp":"2026-12-01T10:00:00Z"})");
  ASSERT_EQ(event.status, 201) << event.body;
  api::Value e = call(http::verb::get, "/api/v1/namespaces/default/events/e").json();
  EXPECT_EQ(e.find("eventTime")->text(), "2026-12-01T10:00:00.123456Z");
  EXPECT_EQ(e.find("firstTimestamp")->text(), "2026-12-01T10:00:00Z");  // a Time: seconds
}

// Fields that are set once (a Node's podCIDRs and providerID) or immutable (an EndpointSlice's
// addressType) are checked against what is stored, over the API as in the validation tables.
TEST_F(ApiHandlerTest, SetOnceAndImmutableFieldsOfNodesAndEndpointSlicesHold) {
  ASSERT_EQ(call(http::verb::post, "/api/v1/nodes",
                 R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"},)"
                 R"("spec":{"podCIDR":"10.244.1.0/24","podCIDRs":["10.244.1.0/24"]}})")
                .status,
            201);
  api::Value node = call(http::verb::get, "/api/v1/nodes/n1").json();
  node.find("spec")->set("podCIDRs", api::parseJson(R"(["10.244.2.0/24"])"));
  node.find("spec")->set("podCIDR", api::Value::string("10.244.2.0/24"));
  Reply changed = call(http::verb::put, "/api/v1/nodes/n1", api::writeJson(node));
  EXPECT_EQ(changed.status, 422) << changed.body;
  EXPECT_NE(changed.body.find("spec.podCIDRs"), std::string::npos) << changed.body;
  // Unchanged CIDRs, with a label added: fine.
  node = call(http::verb::get, "/api/v1/nodes/n1").json();
  node.find("metadata")->set("labels", api::parseJson(R"({"zone":"a"})"));
  EXPECT_EQ(call(http::verb::put, "/api/v1/nodes/n1", api::writeJson(node)).status, 200);

  ASSERT_EQ(call(http::verb::post, "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
                 R"({"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice",)"
                 R"("metadata":{"name":"s"},"addressType":"IPv4",)"
                 R"("endpoints":[{"addresses":["10.0.0.1"]}]})")
                .status,
            201);
  api::Value slice =
      call(http::verb::get, "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/s").json();
  slice.set("addressType", api::Value::string("IPv6"));
  slice.set("endpoints", api::parseJson(R"([{"addresses":["fd00::1"]}])"));
  Reply retyped =
      call(http::verb::put, "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/s",
           api::writeJson(slice));
  EXPECT_EQ(retyped.status, 422) << retyped.body;
  EXPECT_NE(retyped.body.find("addressType"), std::string::npos) << retyped.body;
}

// A create without metadata.namespace takes the request's before it is checked (an Event's
// involvedObject must be in it); one naming another namespace is refused.
TEST_F(ApiHandlerTest, CreateTakesTheRequestsNamespaceBeforeValidation) {
  Reply event = call(http::verb::post, "/api/v1/namespaces/default/events",
                     R"({"apiVersion":"v1","kind":"Event","metadata":{"name":"e"},)"
                     R"("involvedObject":{"kind":"Pod","name":"p","namespace":"default"},)"
                     R"("reason":"Started"})");
  EXPECT_EQ(event.status, 201) << event.body;
  Reply elsewhere = call(http::verb::post, "/api/v1/namespaces/default/configmaps",
                         R"({"apiVersion":"v1","kind":"ConfigMap",)"
                         R"("metadata":{"name":"c","namespace":"kube-system"}})");
  EXPECT_EQ(elsewhere.status, 400) << elsewhere.body;
  EXPECT_NE(elsewhere.body.find("does not match the namespace sent on the request"),
            std::string::npos);
}

TEST_F(ApiHandlerTest, KubeletWatchOfItsNodesPodsComesFromTheCache) {
  auto pod = [](const std::string& name, const std::string& node) {
    return R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")" + name +
           R"("},"spec":{"nodeName":")" + node +
           R"(","containers":[{"name":"c","image":"busybox"}]}})";
  };
  ASSERT_EQ(call(http::verb::post, "/api/v1/namespaces/default/pods", pod("a", "n1")).status, 201);
  ASSERT_EQ(call(http::verb::post, "/api/v1/namespaces/default/pods", pod("b", "n2")).status, 201);
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    call(http::verb::post, "/api/v1/namespaces/default/pods", pod("c", "n1"));
    call(http::verb::post, "/api/v1/namespaces/default/pods", pod("d", "n2"));
    call(http::verb::delete_, "/api/v1/namespaces/default/pods/a?gracePeriodSeconds=0");
  });
  Reply watch = call(http::verb::get,
                     "/api/v1/pods?watch=true&fieldSelector=spec.nodeName%3Dn1&timeoutSeconds=2");
  writer.join();
  std::vector<std::string> seen;
  size_t start = 0;
  while (start < watch.body.size()) {
    size_t nl = watch.body.find('\n', start);
    api::Value e = api::parseJson(watch.body.substr(start, nl - start));
    seen.push_back(e.find("type")->text() + " " +
                   e.find("object")->find("metadata")->find("name")->text());
    start = nl + 1;
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"ADDED a", "ADDED c", "DELETED a"}));
  // The same from the cache's index, as a list at resourceVersion 0.
  api::Value listed;
  for (int i = 0; i < 200; ++i) {
    listed =
        call(http::verb::get, "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1&resourceVersion=0")
            .json();
    if (listed.find("items")->items().size() == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(listed.find("items")->items().size(), 1u);
  EXPECT_EQ(listed.find("items")->items()[0].find("metadata")->find("name")->text(), "c");
}

TEST_F(ApiHandlerTest, ServicesGetAddressesOnceAndGiveThemBack) {
  auto svc = [](const std::string& name, const std::string& extra) {
    return R"({"apiVersion":"v1","kind":"Service","metadata":{"name":")" + name + R"("},"spec":{)" +
           extra + R"(}})";
  };
  Reply a = call(http::verb::post, "/api/v1/namespaces/default/services",
                 svc("a", R"("ports":[{"port":80}])"));
  ASSERT_EQ(a.status, 201) << a.body;
  api::Value spec = *a.json().find("spec");
  std::string ip = spec.find("clusterIP")->text();
  EXPECT_TRUE(ip.starts_with("10.96.")) << ip;
  EXPECT_EQ(spec.find("clusterIPs")->items()[0].text(), ip);
  EXPECT_EQ(spec.find("type")->text(), "ClusterIP");
  EXPECT_EQ(spec.find("ports")->items()[0].find("targetPort")->asInt(), 80);
  EXPECT_EQ(spec.find("ports")->items()[0].find("protocol")->text(), "TCP");

  // The same ClusterIP or NodePort cannot be had twice.
  Reply same_ip = call(http::verb::post, "/api/v1/namespaces/default/services",
                       svc("b", R"("clusterIP":")" + ip + R"(","ports":[{"port":80}])"));
  EXPECT_EQ(same_ip.status, 422);
  EXPECT_NE(same_ip.body.find("provided IP is already allocated"), std::string::npos);
  Reply np = call(http::verb::post, "/api/v1/namespaces/default/services",
                  svc("np", R"("type":"NodePort","ports":[{"port":80,"nodePort":30080}])"));
  ASSERT_EQ(np.status, 201) << np.body;
  EXPECT_EQ(call(http::verb::post, "/api/v1/namespaces/default/services",
                 svc("np2", R"("type":"NodePort","ports":[{"port":80,"nodePort":30080}])"))
                .status,
            422);
  Reply auto_port = call(http::verb::post, "/api/v1/namespaces/default/services",
                         svc("np3", R"("type":"NodePort","ports":[{"port":81}])"));
  int allocated = static_cast<int>(
      auto_port.json().find("spec")->find("ports")->items()[0].find("nodePort")->asInt());
  EXPECT_GE(allocated, 30000);
  EXPECT_LE(allocated, 32767);

  // Deleting gives the port back; clusterIP may not change.
  EXPECT_EQ(call(http::verb::delete_, "/api/v1/namespaces/default/services/np").status, 200);
  EXPECT_EQ(call(http::verb::post, "/api/v1/namespaces/default/services",
                 svc("np2", R"("type":"NodePort","ports":[{"port":80,"nodePort":30080}])"))
                .status,
            201);
  Reply moved = call(http::verb::put, "/api/v1/namespaces/default/services/a",
                     svc("a", R"("clusterIP":"10.96.9.9","ports":[{"port":80}])"));
  EXPECT_EQ(moved.status, 422);
  Reply kept = call(http::verb::put, "/api/v1/namespaces/default/services/a",
                    svc("a", R"("ports":[{"port":8080}])"));
  EXPECT_EQ(kept.json().find("spec")->find("clusterIP")->text(), ip);

  Reply bad =
      call(http::verb::post, "/api/v1/namespaces/default/services",
           svc("bad", R"("ports":[{"port":70000,"protocol":"XTP"},{"port":1,"nodePort":5}])"));
  EXPECT_EQ(bad.status, 422);
  EXPECT_EQ(bad.json().find("details")->find("causes")->items().size(), 5u) << bad.body;
}

TEST_F(ApiHandlerTest, ServerSideApplyTracksOwnershipConflictsAndForce) {
  const std::string path = "/apis/apps/v1/namespaces/default/deployments/web";
  const std::string apply = "application/apply-patch+yaml";
  const std::string config =
      "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n"
      "  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n"
      "    spec:\n      containers:\n      - {name: c, image: i}\n";
  Reply missing = call(http::verb::patch, path, config, apply);
  EXPECT_EQ(missing.status, 422);
  EXPECT_EQ(missing.json().find("message")->text(),
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required "
            "for apply patch");
  // A dry run creates nothing; then apply creates the object, owning what it applied.
  EXPECT_EQ(call(http::verb::patch, path + "?fieldManager=a&dryRun=All", config, apply).status,
            201);
  EXPECT_EQ(call(http::verb::get, path).status, 404);
  Reply created = call(http::verb::patch, path + "?fieldManager=a", config, apply);
  ASSERT_EQ(created.status, 201) << created.body;
  api::Value created_json = created.json();
  const api::Value* managed = created_json.find("metadata")->find("managedFields");
  ASSERT_NE(managed, nullptr);
  ASSERT_EQ(managed->items().size(), 1u);
  const api::Value& entry = managed->items()[0];
  EXPECT_EQ(entry.find("manager")->text(), "a");
  EXPECT_EQ(entry.find("operation")->text(), "Apply");
  EXPECT_EQ(entry.find("apiVersion")->text(), "apps/v1");
  EXPECT_EQ(entry.find("fieldsType")->text(), "FieldsV1");
  EXPECT_NE(entry.find("time"), nullptr);
  EXPECT_EQ(api::writeJson(*entry.find("fieldsV1")),
            R"({"f:spec":{"f:replicas":{},"f:selector":{},"f:template":{"f:metadata":{"f:labels":)"
            R"({"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"c\"}":{".":{},"f:image":{},)"
            R"("f:name":{}}}}}}})");
  // Another manager's merge patch takes the replicas (an Update entry); the apply then conflicts.
  Reply patched = call(http::verb::patch, path + "?fieldManager=b", R"({"spec":{"replicas":4}})",
                       "application/merge-patch+json");
  ASSERT_EQ(patched.status, 200) << patched.body;
  api::Value patched_json = patched.json();
  managed = patched_json.find("metadata")->find("managedFields");
  ASSERT_EQ(managed->items().size(), 2u);
  EXPECT_EQ(managed->items()[1].find("manager")->text(), "b");
  EXPECT_EQ(managed->items()[1].find("operation")->text(), "Update");
  EXPECT_EQ(api::writeJson(*managed->items()[1].find("fieldsV1")),
            R"({"f:spec":{"f:replicas":{}}})");
  Reply conflict = call(http::verb::patch, path + "?fieldManager=a", config, apply);
  EXPECT_EQ(conflict.status, 409);
  EXPECT_EQ(conflict.json().find("reason")->text(), "Conflict");
  EXPECT_EQ(conflict.json().find("message")->text(),
            "Apply failed with 1 conflict: conflict with \"b\" using apps/v1: .spec.replicas");
  api::Value conflict_json = conflict.json();
  const api::Value& cause = conflict_json.find("details")->find("causes")->items().at(0);
  EXPECT_EQ(cause.find("reason")->text(), "FieldManagerConflict");
  EXPECT_EQ(cause.find("message")->text(), "conflict with \"b\" using apps/v1");
  EXPECT_EQ(cause.find("field")->text(), ".spec.replicas");
  EXPECT_EQ(call(http::verb::get, path).json().find("spec")->find("replicas")->asInt(), 4);
  // force=true takes the field back: "b" owned nothing else and is gone.
  Reply forced = call(http::verb::patch, path + "?fieldManager=a&force=true", config, apply);
  ASSERT_EQ(forced.status, 200) << forced.body;
  EXPECT_EQ(forced.json().find("spec")->find("replicas")->asInt(), 2);
  EXPECT_EQ(forced.json().find("metadata")->find("managedFields")->items().size(), 1u);
  // A field the manager no longer applies goes (and is defaulted again).
  std::string without_replicas = config;
  without_replicas.erase(without_replicas.find("  replicas: 2\n"), 14);
  Reply smaller = call(http::verb::patch, path + "?fieldManager=a", without_replicas, apply);
  ASSERT_EQ(smaller.status, 200) << smaller.body;
  EXPECT_EQ(smaller.json().find("spec")->find("replicas")->asInt(), 1);
  // Bad apply requests.
  EXPECT_EQ(call(http::verb::patch, path + "?fieldManager=a",
                 "apiVersion: apps/v2\nkind: Deployment\nmetadata: {name: web}\n", apply)
                .status,
            400);
  EXPECT_EQ(call(http::verb::patch, path + "?fieldManager=a",
                 "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: other}\n", apply)
                .status,
            400);
  EXPECT_EQ(
      call(http::verb::patch, path + "?force=true", "{}", "application/merge-patch+json").status,
      422);
  // A create records its manager's Update entry, defaults included.
  Reply cm =
      call(http::verb::post, "/api/v1/namespaces/default/configmaps?fieldManager=creator",
           R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"m"},"data":{"k":"v"}})");
  ASSERT_EQ(cm.status, 201);
  api::Value cm_json = cm.json();
  const api::Value& cm_entry = cm_json.find("metadata")->find("managedFields")->items().at(0);
  EXPECT_EQ(cm_entry.find("manager")->text(), "creator");
  EXPECT_EQ(cm_entry.find("operation")->text(), "Update");
  EXPECT_NE(api::writeJson(*cm_entry.find("fieldsV1")).find(R"("f:k":{})"), std::string::npos);
}

TEST_F(ApiHandlerTest, ServerSideApplyToScaleOwnsParentReplicasWithConflictsAndForce) {
  const std::string path = "/apis/apps/v1/namespaces/default/deployments/web";
  const std::string apply = "application/apply-patch+yaml";
  const std::string config =
      "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n"
      "  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n"
      "    spec:\n      containers:\n      - {name: c, image: i}\n";
  const std::string scale5 =
      "apiVersion: autoscaling/v1\nkind: Scale\nmetadata: {name: web}\n"
      "spec: {replicas: 5}\n";
  // Nothing to scale yet.
  EXPECT_EQ(call(http::verb::patch, path + "/scale?fieldManager=s", scale5, apply).status, 404);
  ASSERT_EQ(call(http::verb::patch, path + "?fieldManager=a", config, apply).status, 201);
  // Bad scale applies.
  Reply no_manager = call(http::verb::patch, path + "/scale", scale5, apply);
  EXPECT_EQ(no_manager.status, 422);
  Reply wrong_version =
      call(http::verb::patch, path + "/scale?fieldManager=s",
           "apiVersion: apps/v1\nkind: Scale\nmetadata: {name: web}\nspec: {replicas: 5}\n", apply);
  EXPECT_EQ(wrong_version.status, 400);
  EXPECT_EQ(wrong_version.json().find("message")->text(),
            "Incorrect version specified in apply patch. Specified patch version: apps/v1, "
            "expected: autoscaling/v1");
  EXPECT_EQ(call(http::verb::patch, path + "/scale?fieldManager=s",
                 "apiVersion: autoscaling/v1\nkind: Scale\nmetadata: {name: other}\n", apply)
                .status,
            400);
  // "a" owns .spec.replicas: the Scale's apply conflicts with it, and the object is unchanged.
  Reply conflict = call(http::verb::patch, path + "/scale?fieldManager=s", scale5, apply);
  ASSERT_EQ(conflict.status, 409) << conflict.body;
  EXPECT_EQ(conflict.json().find("message")->text(),
            "Apply failed with 1 conflict: conflict with \"a\": .spec.replicas");
  api::Value conflict_json = conflict.json();
  const api::Value& cause = conflict_json.find("details")->find("causes")->items().at(0);
  EXPECT_EQ(cause.find("reason")->text(), "FieldManagerConflict");
  EXPECT_EQ(cause.find("field")->text(), ".spec.replicas");
  EXPECT_EQ(call(http::verb::get, path).json().find("spec")->find("replicas")->asInt(), 2);
  // Forced: the replicas are the Scale's; "a" keeps the rest, "s" has an Apply entry for scale.
  Reply forced = call(http::verb::patch, path + "/scale?fieldManager=s&force=true", scale5, apply);
  ASSERT_EQ(forced.status, 200) << forced.body;
  EXPECT_EQ(forced.json().find("kind")->text(), "Scale");
  EXPECT_EQ(forced.json().find("spec")->find("replicas")->asInt(), 5);
  api::Value parent = call(http::verb::get, path).json();
  EXPECT_EQ(parent.find("spec")->find("replicas")->asInt(), 5);
  const api::Value* managed = parent.find("metadata")->find("managedFields");
  ASSERT_NE(managed, nullptr);
  ASSERT_EQ(managed->items().size(), 2u) << api::writeJson(*managed);
  const api::Value* a = nullptr;
  const api::Value* s = nullptr;
  for (const auto& e : managed->items()) {
    if (e.find("manager")->text() == "a") a = &e;
    if (e.find("manager")->text() == "s") s = &e;
  }
  ASSERT_NE(a, nullptr);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(api::writeJson(*a->find("fieldsV1")).find("f:replicas"), std::string::npos);
  EXPECT_NE(api::writeJson(*a->find("fieldsV1")).find("f:selector"), std::string::npos);
  EXPECT_EQ(s->find("operation")->text(), "Apply");
  EXPECT_EQ(s->find("apiVersion")->text(), "apps/v1");
  ASSERT_NE(s->find("subresource"), nullptr);
  EXPECT_EQ(s->find("subresource")->text(), "scale");
  EXPECT_EQ(api::writeJson(*s->find("fieldsV1")), R"({"f:spec":{"f:replicas":{}}})");
  // Applying the same Scale again is no conflict; the main resource's apply now conflicts with
  // the Scale's manager.
  EXPECT_EQ(call(http::verb::patch, path + "/scale?fieldManager=s", scale5, apply).status, 200);
  Reply back = call(http::verb::patch, path + "?fieldManager=a", config, apply);
  EXPECT_EQ(back.status, 409);
  EXPECT_EQ(back.json().find("message")->text(),
            "Apply failed with 1 conflict: conflict with \"s\" with subresource \"scale\": "
            ".spec.replicas");
  // An update of the replicas by another manager conflicts with the next Scale apply.
  ASSERT_EQ(call(http::verb::patch, path + "?fieldManager=b", R"({"spec":{"replicas":3}})",
                 "application/merge-patch+json")
                .status,
            200);
  Reply updated = call(http::verb::patch, path + "/scale?fieldManager=s", scale5, apply);
  EXPECT_EQ(updated.status, 409);
  EXPECT_EQ(updated.json().find("message")->text(),
            "Apply failed with 1 conflict: conflict with \"b\" using apps/v1: .spec.replicas");
  Reply retaken = call(http::verb::patch, path + "/scale?fieldManager=s&force=true", scale5, apply);
  ASSERT_EQ(retaken.status, 200) << retaken.body;
  api::Value after = call(http::verb::get, path).json();
  EXPECT_EQ(after.find("spec")->find("replicas")->asInt(), 5);
  for (const auto& e : after.find("metadata")->find("managedFields")->items())
    EXPECT_NE(e.find("manager")->text(), "b");  // it owned only the replicas
}

TEST_F(ApiHandlerTest, MoreThanTenUpdateManagersMergeIntoAncientChanges) {
  const std::string path = "/api/v1/namespaces/default/configmaps/m";
  ASSERT_EQ(call(http::verb::post, "/api/v1/namespaces/default/configmaps?fieldManager=creator",
                 R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"m"}})")
                .status,
            201);
  for (int i = 0; i < 11; ++i) {
    std::string n = std::to_string(i);
    Reply r = call(http::verb::patch, path + "?fieldManager=u" + n,
                   R"({"data":{"k)" + n + R"(":"v"}})", "application/merge-patch+json");
    ASSERT_EQ(r.status, 200) << r.body;
  }
  api::Value object = call(http::verb::get, path).json();
  const api::Value* managed = object.find("metadata")->find("managedFields");
  ASSERT_NE(managed, nullptr);
  // u0..u10 are 11 Update entries (the creator owns nothing): the two oldest merged into one.
  EXPECT_EQ(managed->items().size(), 10u) << api::writeJson(*managed);
  size_t ancient = 0;
  for (const auto& e : managed->items()) {
    EXPECT_EQ(e.find("operation")->text(), "Update");
    if (e.find("manager")->text() != "ancient-changes") continue;
    ++ancient;
    EXPECT_EQ(api::writeJson(*e.find("fieldsV1")), R"({"f:data":{".":{},"f:k0":{},"f:k1":{}}})");
  }
  EXPECT_EQ(ancient, 1u);
}

}  // namespace
}  // namespace skiff::apiserver
