// The apiserver on the etcd backend: objects written through the API live in etcd (under
// Kubernetes' keys) and a second apiserver with an empty data directory serves them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "control/api/json.h"
#include "control/apiserver/server.h"
#include "control/client/rest_client.h"
#include "control/client/typed.h"
#include "control/store/etcd_cluster.h"
#include "control/store/etcd_store.h"
#include "skiff/api/core_v1.pb.h"

namespace skiff::apiserver {
namespace {

class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(std::filesystem::temp_directory_path() /
              ("skiff-apiserver-etcd-" + std::to_string(::getpid()) + "-" + name)) {
    std::filesystem::remove_all(path_);
  }
  ~TempDir() {
    std::error_code error;
    std::filesystem::remove_all(path_, error);
  }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

TEST(ApiServerOnEtcd, ServesWhatItStoresInEtcd) {
  store::LocalEtcdCluster cluster({.members = 1});
  const auto& configMaps = client::resourceTypeOf<api::core::v1::ConfigMap>();
  TempDir first_dir("first");
  std::string uid;
  {
    ApiServer server({.data_dir = first_dir.str(),
                      .port = 0,
                      .plain_http = true,
                      .etcd_endpoints = cluster.endpoints()});
    server.start();
    auto client = client::makeRestClient({.server = server.url()});
    api::Value created = client->create(configMaps, "default",
                                        api::parseJson(R"({"apiVersion":"v1","kind":"ConfigMap",
                           "metadata":{"name":"settings"},"data":{"mode":"etcd"}})"));
    uid = created.find("metadata")->find("uid")->text();
    api::Value got = client->get(configMaps, "default", "settings");
    EXPECT_EQ(got.find("data")->find("mode")->text(), "etcd");
    EXPECT_EQ(got.find("metadata")->find("uid")->text(), uid);
  }
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(first_dir.str()) / "state.db"));

  // In etcd, at the object's key.
  auto etcd = store::EtcdStore::open({.endpoints = cluster.endpoints()});
  auto kv = etcd->get(store::objectKey("configmaps", "default", "settings"));
  ASSERT_TRUE(kv.has_value());
  EXPECT_NE(kv->value.find("etcd"), std::string::npos);

  // Another apiserver, another (empty) data directory, the same etcd: the same object.
  TempDir second_dir("second");
  ApiServer second({.data_dir = second_dir.str(),
                    .port = 0,
                    .plain_http = true,
                    .etcd_endpoints = cluster.endpoints()});
  second.start();
  auto client = client::makeRestClient({.server = second.url()});
  api::Value got = client->get(configMaps, "default", "settings");
  EXPECT_EQ(got.find("metadata")->find("uid")->text(), uid);
  EXPECT_EQ(got.find("metadata")->find("resourceVersion")->text(),
            std::to_string(kv->mod_revision));
}

TEST(ApiServerOnEtcd, UnreachableEtcdFailsStartNamingIt) {
  TempDir dir("unreachable");
  ApiServer server({.data_dir = dir.str(),
                    .port = 0,
                    .plain_http = true,
                    .etcd_endpoints = {"http://127.0.0.1:1"}});
  try {
    server.start();
    ADD_FAILURE() << "started without etcd";
  } catch (const store::StoreError& e) {
    EXPECT_EQ(e.code(), store::ErrorCode::kUnavailable);
    EXPECT_NE(std::string(e.what()).find("http://127.0.0.1:1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace skiff::apiserver
