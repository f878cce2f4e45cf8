// The ServiceAccount admission of pods: the default name, the 403 for a missing ServiceAccount
// (and the retries for "default"), automountServiceAccountToken on pod and ServiceAccount, the
// kube-api-access-* projected volume and its mounts, imagePullSecrets; and the same through the
// ApiHandler on a real store.

#include "control/apiserver/pod_admission.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <filesystem>

#include "control/api/codec.h"
#include "control/api/json.h"
#include "control/apiserver/api_handler.h"
#include "control/apiserver/errors.h"
#include "control/store/sqlite_store.h"

namespace skiff::apiserver {
namespace {

namespace core = api::core::v1;

core::Pod pod(const std::string& yaml) {
  core::Pod p;
  api::decodeYaml(yaml, p);
  return p;
}

class ServiceAccountAdmissionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.lookup = [this](const std::string& ns,
                             const std::string& name) -> std::optional<core::ServiceAccount> {
      ++lookups_;
      if (lookups_ <= missing_for_) return std::nullopt;
      auto it = accounts_.find(ns + "/" + name);
      if (it == accounts_.end()) return std::nullopt;
      return it->second;
    };
    options_.retry_min = std::chrono::milliseconds(0);
    options_.suffix = [] { return std::string("x7b2k"); };
    core::ServiceAccount sa;
    sa.mutable_metadata()->set_name("default");
    accounts_["team/default"] = sa;
  }

  std::string admitError(core::Pod& p) {
    try {
      admitServiceAccount(p, "team", options_);
    } catch (const ApiError& e) {
      return std::to_string(e.code()) + " " + e.what();
    }
    return "admitted";
  }

  ServiceAccountAdmissionOptions options_;
  std::map<std::string, core::ServiceAccount> accounts_;
  int lookups_ = 0;
  int missing_for_ = 0;  // lookups that find nothing before the cache "catches up"
};

TEST_F(ServiceAccountAdmissionTest, DefaultServiceAccountAndTheProjectedVolumeInEveryContainer) {
  core::Pod p = pod(R"(
metadata: {name: web}
spec:
  initContainers: [{name: init, image: busybox}]
  containers:
  - {name: app, image: busybox, volumeMounts: [{name: data, mountPath: /data}]}
  - name: own
    image: busybox
    volumeMounts: [{name: data, mountPath: /var/run/secrets/kubernetes.io/serviceaccount}]
  volumes: [{name: data, emptyDir: {}}]
)");
  EXPECT_EQ(admitError(p), "admitted");
  EXPECT_EQ(p.spec().service_account_name(), "default");
  EXPECT_EQ(p.spec().service_account(), "default");
  ASSERT_EQ(p.spec().volumes_size(), 2);
  EXPECT_EQ(
      api::encodeJson(p.spec().volumes(1)),
      R"({"name":"kube-api-access-x7b2k","projected":{"sources":[)"
      R"({"serviceAccountToken":{"expirationSeconds":3607,"path":"token"}},)"
      R"({"configMap":{"name":"kube-root-ca.crt","items":[{"key":"ca.crt","path":"ca.crt"}]}},)"
      R"({"downwardAPI":{"items":[{"path":"namespace","fieldRef":{"apiVersion":"v1",)"
      R"("fieldPath":"metadata.namespace"}}]}}],"defaultMode":420}})");
  const std::string mount = R"({"name":"kube-api-access-x7b2k","readOnly":true,)"
                            R"("mountPath":"/var/run/secrets/kubernetes.io/serviceaccount"})";
  ASSERT_EQ(p.spec().init_containers(0).volume_mounts_size(), 1);
  EXPECT_EQ(api::encodeJson(p.spec().init_containers(0).volume_mounts(0)), mount);
  ASSERT_EQ(p.spec().containers(0).volume_mounts_size(), 2);
  EXPECT_EQ(api::encodeJson(p.spec().containers(0).volume_mounts(1)), mount);
  // A container with something at the path keeps it and gets no token.
  ASSERT_EQ(p.spec().containers(1).volume_mounts_size(), 1);
  EXPECT_EQ(p.spec().containers(1).volume_mounts(0).name(), "data");
}

TEST_F(ServiceAccountAdmissionTest, AutomountFalseOnThePodOrTheServiceAccount) {
  core::ServiceAccount quiet;
  quiet.mutable_metadata()->set_name("quiet");
  quiet.set_automount_service_account_token(false);
  accounts_["team/quiet"] = quiet;
  const char* cases[][3] = {
      // pod's serviceAccountName, pod's automountServiceAccountToken, volumes after admission
      {"default", "", "1"},   {"default", "false", "0"}, {"quiet", "", "0"},
      {"quiet", "true", "1"}, {"default", "true", "1"},
  };
  for (const auto& c : cases) {
    std::string yaml = std::string("metadata: {name: p}\nspec:\n  serviceAccountName: ") + c[0] +
                       "\n  containers: [{name: c, image: i}]\n";
    if (*c[1] != '\0') yaml += std::string("  automountServiceAccountToken: ") + c[1] + "\n";
    core::Pod p = pod(yaml);
    EXPECT_EQ(admitError(p), "admitted");
    EXPECT_EQ(p.spec().volumes_size(), std::stoi(c[2])) << c[0] << " " << c[1];
    EXPECT_EQ(p.spec().containers(0).volume_mounts_size(), std::stoi(c[2])) << c[0] << " " << c[1];
  }
}

TEST_F(ServiceAccountAdmissionTest, MissingServiceAccountIsForbiddenAfterRetriesForDefault) {
  core::Pod named =
      pod("metadata: {name: web}\nspec:\n  serviceAccountName: builder\n"
          "  containers: [{name: c, image: i}]\n");
  EXPECT_EQ(admitError(named),
            "403 pods \"web\" is forbidden: error looking up service account team/builder: "
            "serviceaccount \"builder\" not found");
  EXPECT_EQ(lookups_, 1);  // only "default" is waited for

  lookups_ = 0;
  core::Pod generated =
      pod("metadata: {generateName: web-}\nspec:\n  containers: [{name: c, image: i}]\n");
  missing_for_ = 100;
  EXPECT_EQ(admitError(generated),
            "403 pods \"web-\" is forbidden: error looking up service account team/default: "
            "serviceaccount \"default\" not found");
  EXPECT_EQ(lookups_, 10);

  // The serviceaccount controller makes "default" while the admission waits.
  lookups_ = 0;
  missing_for_ = 3;
  core::Pod late = pod("metadata: {name: late}\nspec:\n  containers: [{name: c, image: i}]\n");
  EXPECT_EQ(admitError(late), "admitted");
  EXPECT_EQ(lookups_, 4);
  EXPECT_EQ(late.spec().volumes_size(), 1);
}

TEST_F(ServiceAccountAdmissionTest, ExistingVolumeDeprecatedFieldMirrorPodsAndPullSecrets) {
  // A kube-api-access-* volume already there (a pod made from another's spec) is reused.
  core::Pod copy = pod(R"(
metadata: {name: copy}
spec:
  containers: [{name: c, image: i}]
  volumes: [{name: kube-api-access-abcde, emptyDir: {}}]
)");
  EXPECT_EQ(admitError(copy), "admitted");
  ASSERT_EQ(copy.spec().volumes_size(), 1);
  EXPECT_EQ(copy.spec().containers(0).volume_mounts(0).name(), "kube-api-access-abcde");

  core::ServiceAccount puller;
  puller.mutable_metadata()->set_name("puller");
  puller.add_image_pull_secrets()->set_name("registry");
  accounts_["team/puller"] = puller;
  core::Pod old =
      pod("metadata: {name: old}\nspec:\n  serviceAccount: puller\n"
          "  containers: [{name: c, image: i}]\n");
  EXPECT_EQ(admitError(old), "admitted");
  EXPECT_EQ(old.spec().service_account_name(), "puller");
  ASSERT_EQ(old.spec().image_pull_secrets_size(), 1);
  EXPECT_EQ(old.spec().image_pull_secrets(0).name(), "registry");

  core::Pod mirror =
      pod("metadata: {name: m, annotations: {kubernetes.io/config.mirror: x}}\n"
          "spec:\n  serviceAccountName: nobody\n  containers: [{name: c, image: i}]\n");
  EXPECT_EQ(admitError(mirror), "admitted");
  EXPECT_EQ(mirror.spec().volumes_size(), 0);
}

// Through the handler, as `skiff apiserver` runs it.
TEST(ServiceAccountAdmissionHandlerTest, PodCreatesAreAdmittedAgainstTheStore) {
  namespace asio = boost::asio;
  namespace http = boost::beast::http;
  const auto dir =
      std::filesystem::temp_directory_path() / ("skiff-sa-admission-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto store = store::SqliteStore::open({.path = (dir / "db").string(), .fsync = false});
  ApiHandler handler(*store, ApiHandlerOptions{.server_address = "127.0.0.1:0",
                                               .service_account_admission = true});
  handler.ensureSystemNamespaces();
  HttpServer server(HttpServerOptions{},
                    [&](const HttpRequest& req, HttpResponse& res, const auto& stream) {
                      handler.handle(req, res, stream);
                    });
  server.start();
  auto post = [&](const std::string& target, const std::string& body) {
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    socket.connect({asio::ip::make_address("127.0.0.1"), server.port()});
    http::request<http::string_body> req{http::verb::post, target, 11};
    req.set(http::field::host, "localhost");
    req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    http::write(socket, req);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(socket, buffer, res);
    return std::make_pair(static_cast<int>(res.result_int()), res.body());
  };
  const std::string pod_body =
      R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},)"
      R"("spec":{"serviceAccountName":"builder","containers":[{"name":"c","image":"i"}]}})";
  auto [refused, why] = post("/api/v1/namespaces/default/pods", pod_body);
  EXPECT_EQ(refused, 403);
  EXPECT_EQ(api::parseJson(why).find("message")->text(),
            "pods \"p\" is forbidden: error looking up service account default/builder: "
            "serviceaccount \"builder\" not found");
  auto [made, sa] =
      post("/api/v1/namespaces/default/serviceaccounts",
           R"({"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"builder"}})");
  ASSERT_EQ(made, 201) << sa;
  auto [created, body] = post("/api/v1/namespaces/default/pods", pod_body);
  ASSERT_EQ(created, 201) << body;
  core::Pod stored;
  api::decodeJson(body, stored, {.unknown_fields = api::UnknownFields::kIgnore});
  ASSERT_EQ(stored.spec().volumes_size(), 1);
  EXPECT_TRUE(stored.spec().volumes(0).name().starts_with("kube-api-access-"));
  EXPECT_EQ(stored.spec().volumes(0).name().size(), std::string("kube-api-access-").size() + 5);
  EXPECT_EQ(stored.spec().containers(0).volume_mounts(0).mount_path(),
            kServiceAccountTokenMountPath);
  server.stop();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace skiff::apiserver
