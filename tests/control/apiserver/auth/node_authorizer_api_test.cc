// The node authorizer through the real apiserver (HTTPS, tokens): node a reads the secret and
// configmap its pod uses and not the secret only node b's pod uses; it cannot list secrets; it
// writes the status of its own pod and node and not node b's; it registers itself, not node b.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "control/api/json.h"
#include "control/apiserver/server.h"
#include "control/client/kubeconfig.h"
#include "control/client/rest_client.h"
#include "control/client/typed.h"
#include "skiff/api/core_v1.pb.h"

namespace skiff::apiserver {
namespace {

namespace core = api::core::v1;

// The HTTP status a call ends with (200 for success).
template <typename F>
int status(F&& call) {
  try {
    call();
    return 200;
  } catch (const client::ApiError& e) {
    return e.code();
  }
}

template <typename F>
std::string message(F&& call) {
  try {
    call();
  } catch (const client::ApiError& e) {
    return e.what();
  }
  return "";
}

TEST(NodeAuthorizerApi, NodesReadOnlyWhatTheirPodsUseAndWriteOnlyTheirOwn) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("skiff-node-authorizer-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "pki");
  std::ofstream(dir / "pki" / "tokens.csv")
      << "node-a-token,system:node:a,uid-a,\"system:nodes\"\n"
         "node-b-token,system:node:b,uid-b,\"system:nodes\"\n";
  {
    ApiServer server({.data_dir = dir.string(), .port = 0, .fsync = false});
    server.start();
    client::ClientConfig admin_config =
        client::loadClientConfig({.kubeconfig = server.adminKubeconfig()});
    auto admin = client::makeRestClient(admin_config);
    auto as = [&](const std::string& token) {
      client::ClientConfig c = admin_config;
      c.token = token;
      return client::makeRestClient(c, {.max_retries = 0});
    };
    auto node_a = as("node-a-token");
    auto node_b = as("node-b-token");
    const auto& secrets = client::resourceTypeOf<core::Secret>();
    const auto& config_maps = client::resourceTypeOf<core::ConfigMap>();
    const auto& pods = client::resourceTypeOf<core::Pod>();
    const auto& nodes = client::resourceTypeOf<core::Node>();

    for (const char* name : {"a-secret", "b-secret", "unused"}) {
      admin->create(secrets, "default",
                    api::parseJson(std::string(R"({"apiVersion":"v1","kind":"Secret",
                        "metadata":{"name":")") +
                                   name + R"("},"stringData":{"k":"v"}})"));
    }
    admin->create(config_maps, "default", api::parseJson(R"({"apiVersion":"v1",
        "kind":"ConfigMap","metadata":{"name":"a-config"},"data":{"k":"v"}})"));
    admin->create(pods, "default", api::parseJson(R"({"apiVersion":"v1","kind":"Pod",
        "metadata":{"name":"on-a"},"spec":{"nodeName":"a",
        "volumes":[{"name":"s","secret":{"secretName":"a-secret"}}],
        "containers":[{"name":"c","image":"busybox",
                       "envFrom":[{"configMapRef":{"name":"a-config"}}]}]}})"));
    admin->create(pods, "default", api::parseJson(R"({"apiVersion":"v1","kind":"Pod",
        "metadata":{"name":"on-b"},"spec":{"nodeName":"b",
        "containers":[{"name":"c","image":"busybox",
          "env":[{"name":"X","valueFrom":{"secretKeyRef":{"name":"b-secret","key":"k"}}}]}]}})"));

    // Reads: its own pod's secret and configmap, nothing else.
    EXPECT_EQ(status([&] { node_a->get(secrets, "default", "a-secret"); }), 200);
    EXPECT_EQ(status([&] { node_a->get(config_maps, "default", "a-config"); }), 200);
    EXPECT_EQ(status([&] { node_a->get(secrets, "default", "b-secret"); }), 403);
    EXPECT_EQ(status([&] { node_a->get(secrets, "default", "unused"); }), 403);
    EXPECT_EQ(status([&] { node_b->get(secrets, "default", "b-secret"); }), 200);
    EXPECT_EQ(status([&] { node_b->get(secrets, "default", "a-secret"); }), 403);
    std::string why = message([&] { node_a->get(secrets, "default", "b-secret"); });
    EXPECT_NE(why.find("User \"system:node:a\" cannot get resource \"secrets\""), std::string::npos)
        << why;
    EXPECT_NE(why.find("no relationship found between node 'a' and this object"), std::string::npos)
        << why;
    EXPECT_EQ(status([&] { node_a->list(secrets, "default"); }), 403);
    EXPECT_EQ(status([&] { node_a->list(secrets, ""); }), 403);
    // Pods stay readable through RBAC's system:node role (the kubelet's watch of its pods).
    EXPECT_EQ(status([&] { node_a->list(pods, ""); }), 200);

    // Nodes: each registers itself only.
    auto node = [](const std::string& name) {
      return api::parseJson(R"({"apiVersion":"v1","kind":"Node","metadata":{"name":")" + name +
                            R"("}})");
    };
    EXPECT_EQ(status([&] { node_a->create(nodes, "", node("b")); }), 403);
    EXPECT_EQ(status([&] { node_a->create(nodes, "", node("a")); }), 200);
    EXPECT_EQ(status([&] { node_b->create(nodes, "", node("b")); }), 200);
    api::Value b = admin->get(nodes, "", "b");
    EXPECT_EQ(status([&] { node_a->updateStatus(nodes, "", b); }), 403);
    EXPECT_EQ(status([&] { node_b->updateStatus(nodes, "", b); }), 200);
    EXPECT_EQ(status([&] { node_a->update(nodes, "", admin->get(nodes, "", "a")); }), 200);

    // Pods: status of its own only; no spec updates.
    api::Value on_a = admin->get(pods, "default", "on-a");
    api::Value on_b = admin->get(pods, "default", "on-b");
    EXPECT_EQ(status([&] { node_a->updateStatus(pods, "default", on_b); }), 403);
    EXPECT_EQ(status([&] { node_a->updateStatus(pods, "default", on_a); }), 200);
    EXPECT_EQ(status([&] { node_a->update(pods, "default", admin->get(pods, "default", "on-a")); }),
              403);
    EXPECT_EQ(status([&] { node_a->remove(pods, "default", "on-b"); }), 403);
    server.stop();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace skiff::apiserver
