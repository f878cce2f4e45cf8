// The node authorizer as a table: which requests of system:node:a (group system:nodes) it allows,
// denies or leaves to RBAC, given pods bound to nodes a and b; what a pod references; and
// NodeRestriction's checks of written bodies.
#include "control/apiserver/auth/node_authorizer.h"

#include <gtest/gtest.h>

#include <map>

#include "control/api/codec.h"
#include "control/apiserver/errors.h"
#include "skiff/api/coordination_v1.pb.h"

namespace skiff::apiserver::auth {
namespace {

namespace core = api::core::v1;
using Verdict = NodeAuthorizer::Verdict;

template <typename T>
T from(std::string_view json) {
  T out;
  api::decodeJson(json, out, {.unknown_fields = api::UnknownFields::kStrict});
  return out;
}

// Pod on node a in "team": every kind of reference; pod on node b: its own secret.
const char* kPodA = R"({"metadata":{"name":"web","namespace":"team"},"spec":{
  "nodeName":"a","serviceAccountName":"web-sa",
  "imagePullSecrets":[{"name":"pull"}],
  "volumes":[{"name":"v1","secret":{"secretName":"vol-secret"}},
             {"name":"v2","configMap":{"name":"vol-cm"}},
             {"name":"v3","persistentVolumeClaim":{"claimName":"data"}},
             {"name":"v4","projected":{"sources":[{"secret":{"name":"proj-secret"}},
                                                  {"configMap":{"name":"proj-cm"}}]}}],
  "initContainers":[{"name":"init","image":"busybox",
                     "envFrom":[{"secretRef":{"name":"init-envfrom"}}]}],
  "containers":[{"name":"c","image":"busybox",
    "envFrom":[{"configMapRef":{"name":"envfrom-cm"}},{"secretRef":{"name":"envfrom-secret"}}],
    "env":[{"name":"A","valueFrom":{"secretKeyRef":{"name":"env-secret","key":"k"}}},
           {"name":"B","valueFrom":{"configMapKeyRef":{"name":"env-cm","key":"k"}}}]}]}})";
const char* kPodB = R"({"metadata":{"name":"db","namespace":"team"},"spec":{"nodeName":"b",
  "volumes":[{"name":"v","secret":{"secretName":"b-only"}}],
  "containers":[{"name":"c","image":"busybox"}]}})";

// A skiff.io/local-path volume made for node a ("pv-local-a") or b.
core::PersistentVolume localVolume(const std::string& name) {
  return from<core::PersistentVolume>(
      R"({"metadata":{"name":")" + name +
      R"(","finalizers":["skiff.io/local-path-data"],"annotations":{)"
      R"("pv.kubernetes.io/provisioned-by":"skiff.io/local-path",)"
      R"("local.path.provisioner/selected-node":")" +
      name.substr(name.size() - 1) + R"("}},"spec":{"local":{"path":"/srv/)" + name + R"("}}})");
}

class NodeAuthorizerTest : public ::testing::Test {
 protected:
  NodeAuthorizerTest()
      : authorizer_(
            [this](std::string_view node) {
              std::vector<ObjectPtr> out;
              for (const auto& [key, pod] : pods_) {
                if (pod->spec().node_name() == node) out.push_back(pod);
              }
              ++node_lookups_;
              return out;
            },
            [this](std::string_view ns, std::string_view name) -> ObjectPtr {
              auto it = pods_.find(std::string(ns) + "/" + std::string(name));
              return it == pods_.end() ? nullptr : it->second;
            },
            [](std::string_view ns, std::string_view name) -> ObjectPtr {
              // The claim web mounts is bound to pv-data.
              if (ns != "team" || name != "data") return nullptr;
              auto claim = std::make_shared<core::PersistentVolumeClaim>();
              claim->mutable_spec()->set_volume_name("pv-data");
              return claim;
            },
            [](std::string_view name) -> ObjectPtr {
              if (name != "pv-local-a" && name != "pv-local-b") return nullptr;
              return std::make_shared<core::PersistentVolume>(localVolume(std::string(name)));
            }) {
    add(kPodA);
    add(kPodB);
  }
  void add(const char* json) {
    auto pod = std::make_shared<core::Pod>(from<core::Pod>(json));
    pods_[pod->metadata().namespace_() + "/" + pod->metadata().name()] = pod;
  }
  Verdict verdict(UserInfo user, std::string verb, std::string group, std::string resource,
                  std::string ns, std::string name, std::string subresource = "") const {
    Attributes a;
    a.user = std::move(user);
    a.verb = std::move(verb);
    a.resource_request = true;
    a.api_group = std::move(group);
    a.api_version = "v1";
    a.resource = std::move(resource);
    a.namespace_ = std::move(ns);
    a.name = std::move(name);
    a.subresource = std::move(subresource);
    return authorizer_.authorize(a).verdict;
  }

  std::map<std::string, std::shared_ptr<const core::Pod>> pods_;
  mutable int node_lookups_ = 0;
  NodeAuthorizer authorizer_;
};

const UserInfo kNodeA{"system:node:a", "", {"system:nodes", "system:authenticated"}};

TEST_F(NodeAuthorizerTest, Table) {
  struct Case {
    const char* what;
    const char* verb;
    const char* group;
    const char* resource;
    const char* ns;
    const char* name;
    const char* subresource;
    Verdict want;
  };
  const Case cases[] = {
      // Secrets: only those a pod of node a references, get (or list/watch of one by name).
      {"volume secret", "get", "", "secrets", "team", "vol-secret", "", Verdict::kAllow},
      {"projected secret", "get", "", "secrets", "team", "proj-secret", "", Verdict::kAllow},
      {"envFrom secret", "get", "", "secrets", "team", "envfrom-secret", "", Verdict::kAllow},
      {"init envFrom secret", "get", "", "secrets", "team", "init-envfrom", "", Verdict::kAllow},
      {"env valueFrom secret", "get", "", "secrets", "team", "env-secret", "", Verdict::kAllow},
      {"imagePullSecret", "get", "", "secrets", "team", "pull", "", Verdict::kAllow},
      {"watch one by name", "watch", "", "secrets", "team", "vol-secret", "", Verdict::kAllow},
      {"node b's secret", "get", "", "secrets", "team", "b-only", "", Verdict::kDeny},
      {"unreferenced secret", "get", "", "secrets", "team", "other", "", Verdict::kDeny},
      {"same name, other namespace", "get", "", "secrets", "prod", "vol-secret", "",
       Verdict::kDeny},
      {"list a namespace", "list", "", "secrets", "team", "", "", Verdict::kDeny},
      {"list the cluster", "list", "", "secrets", "", "", "", Verdict::kDeny},
      {"watch the cluster", "watch", "", "secrets", "", "", "", Verdict::kDeny},
      {"update referenced", "update", "", "secrets", "team", "vol-secret", "", Verdict::kDeny},
      {"delete referenced", "delete", "", "secrets", "team", "vol-secret", "", Verdict::kDeny},
      {"create", "create", "", "secrets", "team", "", "", Verdict::kDeny},
      // ConfigMaps alike; a secret's name as a configmap is not a reference.
      {"volume configmap", "get", "", "configmaps", "team", "vol-cm", "", Verdict::kAllow},
      {"projected configmap", "get", "", "configmaps", "team", "proj-cm", "", Verdict::kAllow},
      {"envFrom configmap", "get", "", "configmaps", "team", "envfrom-cm", "", Verdict::kAllow},
      {"env valueFrom configmap", "get", "", "configmaps", "team", "env-cm", "", Verdict::kAllow},
      {"secret name as configmap", "get", "", "configmaps", "team", "vol-secret", "",
       Verdict::kDeny},
      {"list configmaps", "list", "", "configmaps", "team", "", "", Verdict::kDeny},
      // PersistentVolumeClaims: get of a mounted claim.
      {"mounted claim", "get", "", "persistentvolumeclaims", "team", "data", "", Verdict::kAllow},
      {"other claim", "get", "", "persistentvolumeclaims", "team", "logs", "", Verdict::kDeny},
      {"list claims", "list", "", "persistentvolumeclaims", "team", "", "", Verdict::kDeny},
      // PersistentVolumes: get of the volume a mounted claim is bound to.
      {"mounted claim's volume", "get", "", "persistentvolumes", "", "pv-data", "",
       Verdict::kAllow},
      {"other volume", "get", "", "persistentvolumes", "", "pv-other", "", Verdict::kDeny},
      {"list volumes", "list", "", "persistentvolumes", "", "", "", Verdict::kDeny},
      {"update a volume", "update", "", "persistentvolumes", "", "pv-data", "", Verdict::kDeny},
      // ... and its own local-path volumes: get, and update (admission: finalizers only).
      {"own local-path volume", "get", "", "persistentvolumes", "", "pv-local-a", "",
       Verdict::kAllow},
      {"update own local-path volume", "update", "", "persistentvolumes", "", "pv-local-a", "",
       Verdict::kAllow},
      {"delete own local-path volume", "delete", "", "persistentvolumes", "", "pv-local-a", "",
       Verdict::kDeny},
      {"other node's local-path volume", "get", "", "persistentvolumes", "", "pv-local-b", "",
       Verdict::kDeny},
      // Service account tokens: for a service account its pods run as.
      {"token of its pod's SA", "create", "", "serviceaccounts", "team", "web-sa", "token",
       Verdict::kAllow},
      {"token of another SA", "create", "", "serviceaccounts", "team", "default", "token",
       Verdict::kDeny},
      {"get a service account", "get", "", "serviceaccounts", "team", "web-sa", "",
       Verdict::kNoOpinion},
      // Nodes: writes only to its own.
      {"own node status", "update", "", "nodes", "", "a", "status", Verdict::kNoOpinion},
      {"own node patch", "patch", "", "nodes", "", "a", "", Verdict::kNoOpinion},
      {"other node status", "update", "", "nodes", "", "b", "status", Verdict::kDeny},
      {"delete other node", "delete", "", "nodes", "", "b", "", Verdict::kDeny},
      {"read other node", "get", "", "nodes", "", "b", "", Verdict::kNoOpinion},
      {"create (body checked)", "create", "", "nodes", "", "", "", Verdict::kNoOpinion},
      // Pods: status and delete of its own; no spec updates.
      {"own pod status", "update", "", "pods", "team", "web", "status", Verdict::kAllow},
      {"own pod status patch", "patch", "", "pods", "team", "web", "status", Verdict::kAllow},
      {"delete own pod", "delete", "", "pods", "team", "web", "", Verdict::kAllow},
      {"other node's pod status", "update", "", "pods", "team", "db", "status", Verdict::kDeny},
      {"delete other node's pod", "delete", "", "pods", "team", "db", "", Verdict::kDeny},
      {"update own pod spec", "update", "", "pods", "team", "web", "", Verdict::kDeny},
      {"delete a gone pod", "delete", "", "pods", "team", "gone", "", Verdict::kNoOpinion},
      {"evict", "create", "", "pods", "team", "db", "eviction", Verdict::kDeny},
      {"watch pods", "watch", "", "pods", "", "", "", Verdict::kNoOpinion},
      // Leases: its own in kube-node-lease.
      {"own lease", "update", "coordination.k8s.io", "leases", "kube-node-lease", "a", "",
       Verdict::kNoOpinion},
      {"other lease", "update", "coordination.k8s.io", "leases", "kube-node-lease", "b", "",
       Verdict::kDeny},
      {"lease elsewhere", "get", "coordination.k8s.io", "leases", "team", "a", "", Verdict::kDeny},
      // Everything else is RBAC's.
      {"services", "list", "", "services", "", "", "", Verdict::kNoOpinion},
      {"secrets of another group", "get", "example.com", "secrets", "team", "b-only", "",
       Verdict::kNoOpinion},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(verdict(kNodeA, c.verb, c.group, c.resource, c.ns, c.name, c.subresource), c.want)
        << c.what;
  }
}

TEST_F(NodeAuthorizerTest, OnlyNodeIdentitiesAreNarrowed) {
  // Not in system:nodes, or no node name: not a node.
  EXPECT_EQ(verdict({"system:node:a", "", {"system:authenticated"}}, "get", "", "secrets", "team",
                    "b-only"),
            Verdict::kNoOpinion);
  EXPECT_EQ(verdict({"jane", "", {"system:nodes"}}, "get", "", "secrets", "team", "b-only"),
            Verdict::kNoOpinion);
  EXPECT_EQ(verdict({"system:node:", "", {"system:nodes"}}, "get", "", "secrets", "team", "x"),
            Verdict::kNoOpinion);
  // Node b reads its own secret and not node a's.
  UserInfo b{"system:node:b", "", {"system:nodes"}};
  EXPECT_EQ(verdict(b, "get", "", "secrets", "team", "b-only"), Verdict::kAllow);
  EXPECT_EQ(verdict(b, "get", "", "secrets", "team", "vol-secret"), Verdict::kDeny);
}

TEST_F(NodeAuthorizerTest, ReadsOnlyTheNodesOwnPods) {
  for (int i = 0; i < 100; ++i) {
    add((R"({"metadata":{"name":"p)" + std::to_string(i) +
         R"(","namespace":"team"},"spec":{"nodeName":"b","containers":[{"name":"c","image":"x"}]}})")
            .c_str());
  }
  node_lookups_ = 0;
  EXPECT_EQ(verdict(kNodeA, "get", "", "secrets", "team", "vol-secret"), Verdict::kAllow);
  EXPECT_EQ(node_lookups_, 1);  // one index lookup for node a, not the 102 pods
}

TEST(NodeAuthorizerReferences, WhatAPodReferences) {
  auto pod = from<core::Pod>(kPodA);
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  EXPECT_EQ(sorted(NodeAuthorizer::references(pod, "secrets")),
            (std::vector<std::string>{"env-secret", "envfrom-secret", "init-envfrom", "proj-secret",
                                      "pull", "vol-secret"}));
  EXPECT_EQ(sorted(NodeAuthorizer::references(pod, "configmaps")),
            (std::vector<std::string>{"env-cm", "envfrom-cm", "proj-cm", "vol-cm"}));
  EXPECT_EQ(NodeAuthorizer::references(pod, "persistentvolumeclaims"),
            (std::vector<std::string>{"data"}));
  EXPECT_EQ(NodeAuthorizer::references(pod, "serviceaccounts"),
            (std::vector<std::string>{"web-sa"}));
  EXPECT_EQ(NodeAuthorizer::references(from<core::Pod>(kPodB), "serviceaccounts"),
            (std::vector<std::string>{"default"}));
}

TEST_F(NodeAuthorizerTest, AdmissionOfWrittenBodies) {
  auto node_a = from<core::Node>(R"({"metadata":{"name":"a"}})");
  auto node_b = from<core::Node>(R"({"metadata":{"name":"b"}})");
  EXPECT_NO_THROW(authorizer_.admit(kNodeA, "", node_a, nullptr));
  EXPECT_THROW(authorizer_.admit(kNodeA, "", node_b, nullptr), ApiError);
  auto pod_a = from<core::Pod>(kPodA);
  auto pod_b = from<core::Pod>(kPodB);
  EXPECT_NO_THROW(authorizer_.admit(kNodeA, "team", pod_a, nullptr));
  EXPECT_THROW(authorizer_.admit(kNodeA, "team", pod_b, nullptr), ApiError);
  // Moving another node's pod onto itself is refused too.
  auto moved = pod_b;
  moved.mutable_spec()->set_node_name("a");
  EXPECT_THROW(authorizer_.admit(kNodeA, "team", moved, &pod_b), ApiError);
  auto lease = from<api::coordination::v1::Lease>(R"({"metadata":{"name":"a"}})");
  EXPECT_NO_THROW(authorizer_.admit(kNodeA, "kube-node-lease", lease, nullptr));
  EXPECT_THROW(authorizer_.admit(kNodeA, "default", lease, nullptr), ApiError);
  try {
    authorizer_.admit(kNodeA, "", node_b, nullptr);
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), 403);
    EXPECT_NE(std::string(e.what()).find("node 'a' cannot modify node 'b'"), std::string::npos)
        << e.what();
  }
  // Of its local-path volumes a node changes only the finalizers.
  auto local = localVolume("pv-local-a");
  auto released = local;
  released.mutable_metadata()->clear_finalizers();
  EXPECT_NO_THROW(authorizer_.admit(kNodeA, "", released, &local));
  auto moved_path = released;
  moved_path.mutable_spec()->mutable_local()->set_path("/etc");
  EXPECT_THROW(authorizer_.admit(kNodeA, "", moved_path, &local), ApiError);
  auto theirs = localVolume("pv-local-b");
  auto theirs_released = theirs;
  theirs_released.mutable_metadata()->clear_finalizers();
  EXPECT_THROW(authorizer_.admit(kNodeA, "", theirs_released, &theirs), ApiError);
  // Other users are not this admission's.
  EXPECT_NO_THROW(authorizer_.admit({"admin", "", {"system:masters"}}, "", node_b, nullptr));
}

}  // namespace
}  // namespace skiff::apiserver::auth
