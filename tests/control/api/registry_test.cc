#include "control/api/registry.h"

#include <gtest/gtest.h>

#include "skiff/api/apps_v1.pb.h"

namespace skiff::api {
namespace {

TEST(Registry, KnowsEveryBuiltinKind) {
  const auto& r = Registry::builtin();
  for (auto [api_version, kind] :
       std::vector<std::pair<std::string, std::string>>{{"v1", "Namespace"},
                                                        {"v1", "Pod"},
                                                        {"v1", "Service"},
                                                        {"v1", "Node"},
                                                        {"v1", "ConfigMap"},
                                                        {"v1", "Secret"},
                                                        {"v1", "ServiceAccount"},
                                                        {"v1", "Event"},
                                                        {"v1", "Binding"},
                                                        {"apps/v1", "Deployment"},
                                                        {"apps/v1", "ReplicaSet"},
                                                        {"apps/v1", "DaemonSet"},
                                                        {"apps/v1", "StatefulSet"},
                                                        {"apps/v1", "ControllerRevision"},
                                                        {"batch/v1", "Job"},
                                                        {"discovery.k8s.io/v1", "EndpointSlice"},
                                                        {"coordination.k8s.io/v1", "Lease"},
                                                        {"autoscaling/v1", "Scale"}}) {
    const ResourceType* t = r.byKind(api_version, kind);
    ASSERT_NE(t, nullptr) << api_version << " " << kind;
    EXPECT_EQ(t->apiVersion(), api_version);
    EXPECT_EQ(t->descriptor->name(), kind);
  }
  EXPECT_EQ(r.byKind("v1", "Deployment"), nullptr);
}

TEST(Registry, ResourcesAndScope) {
  const auto& r = Registry::builtin();
  const ResourceType* deploy = r.byResource("apps", "v1", "deployments");
  ASSERT_NE(deploy, nullptr);
  EXPECT_TRUE(deploy->namespaced);
  EXPECT_EQ(deploy->descriptor, apps::v1::Deployment::descriptor());
  EXPECT_FALSE(r.byResource("", "v1", "nodes")->namespaced);
  EXPECT_FALSE(r.byResource("", "v1", "namespaces")->namespaced);
  EXPECT_EQ(r.byDescriptor(apps::v1::Deployment::descriptor()), deploy);
  auto msg = deploy->newMessage();
  EXPECT_EQ(msg->GetDescriptor(), apps::v1::Deployment::descriptor());
}

TEST(Registry, ResolvesWhatUsersType) {
  const auto& r = Registry::builtin();
  EXPECT_EQ(r.resolve("deploy")->kind, "Deployment");
  EXPECT_EQ(r.resolve("Deployments")->kind, "Deployment");
  EXPECT_EQ(r.resolve("deployment.apps")->kind, "Deployment");
  EXPECT_EQ(r.resolve("po")->kind, "Pod");
  EXPECT_EQ(r.resolve("svc")->kind, "Service");
  EXPECT_EQ(r.resolve("endpointslices.discovery.k8s.io")->kind, "EndpointSlice");
  EXPECT_EQ(r.resolve("endpointslice.discovery")->kind, "EndpointSlice");
  EXPECT_EQ(r.resolve("pods.apps"), nullptr);
  EXPECT_EQ(r.resolve("widgets"), nullptr);
}

}  // namespace
}  // namespace skiff::api
