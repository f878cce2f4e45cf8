// envFrom and valueFrom resolution (configMapKeyRef, secretKeyRef, fieldRef), and that the result
// goes through applyContainerSpec in Kubernetes' order: image env, envFrom, then env with $(VAR).

#include "kubelet/pods/container_env.h"

#include <gtest/gtest.h>

#include "control/api/codec.h"
#include "kubelet/runtime/container_spec.h"

namespace skiff::kubelet {
namespace {
namespace core = api::core::v1;

class Sources final : public volumes::VolumeSourceFetcher {
 public:
  std::optional<core::ConfigMap> getConfigMap(const std::string& ns,
                                              const std::string& name) override {
    if (ns != "prod" || name != "settings") return std::nullopt;
    core::ConfigMap cm;
    (*cm.mutable_data())["LEVEL"] = "debug";
    (*cm.mutable_data())["PORT"] = "8080";
    return cm;
  }
  std::optional<core::Secret> getSecret(const std::string& ns, const std::string& name) override {
    if (ns != "prod" || name != "db") return std::nullopt;
    core::Secret s;
    (*s.mutable_data())["password"] = "pa$(ss)";
    return s;
  }
};

core::Pod pod() {
  core::Pod p;
  api::decodeYaml(R"(
metadata: {name: web-1, namespace: prod, uid: u-1, labels: {app: web}, annotations: {team: blue}}
spec: {nodeName: node-7, serviceAccountName: builder, containers: [{name: c}]}
)",
                  p);
  return p;
}

core::Container container(const std::string& yaml) {
  core::Container c;
  api::decodeYaml(yaml, c);
  return c;
}

TEST(ContainerEnvTest, ResolvesEverySourceInKubernetesOrder) {
  Sources sources;
  const core::Container c = container(R"yaml(
name: c
envFrom:
- configMapRef: {name: settings}
- prefix: DB_
  secretRef: {name: db}
- configMapRef: {name: absent, optional: true}
env:
- {name: PORT, value: "9090"}
- {name: URL, value: "http://$(POD_IP):$(PORT)"}
- {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
- {name: NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
- {name: NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
- {name: APP, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}}
- {name: TEAM, valueFrom: {fieldRef: {fieldPath: "metadata.annotations['team']"}}}
- {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
- {name: HOST, valueFrom: {fieldRef: {fieldPath: status.hostIP}}}
- {name: PW, valueFrom: {secretKeyRef: {name: db, key: password}}}
- {name: LVL, valueFrom: {configMapKeyRef: {name: settings, key: LEVEL}}}
- {name: GONE, valueFrom: {configMapKeyRef: {name: settings, key: nope, optional: true}}}
- {name: SAW_IP, value: "$(POD_IP)"}
)yaml");
  const ResolvedEnv env =
      resolveContainerEnv(pod(), c, &sources, {"10.1.2.3", "192.168.1.7"}, "spec.containers[0]");
  EXPECT_EQ(env.env_from, (std::vector<std::pair<std::string, std::string>>{
                              {"LEVEL", "debug"}, {"PORT", "8080"}, {"DB_password", "pa$(ss)"}}));
  images::ImageConfig image;
  image.env = {"PATH=/bin", "LEVEL=info"};
  image.cmd = {"/bin/sh"};
  ContainerConfig out;
  applyContainerSpec(pod().spec(), env.container, image, "/nonexistent", "spec.containers[0]", out,
                     env.env_from);
  EXPECT_EQ(out.env, (std::vector<std::string>{
                         "PATH=/bin", "LEVEL=debug", "PORT=9090", "DB_password=pa$(ss)",
                         // POD_IP is defined after URL, so $(POD_IP) stays as written there.
                         "URL=http://$(POD_IP):9090", "POD_IP=10.1.2.3", "NAME=web-1", "NS=prod",
                         "APP=web", "TEAM=blue", "NODE=node-7", "HOST=192.168.1.7", "PW=pa$(ss)",
                         "LVL=debug", "SAW_IP=10.1.2.3"}));
}

TEST(ContainerEnvTest, MissingSourcesNameTheField) {
  Sources sources;
  auto error = [&](const std::string& yaml) {
    try {
      resolveContainerEnv(pod(), container(yaml), &sources, {}, "spec.containers[1]");
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error("{name: c, envFrom: [{configMapRef: {name: nope}}]}"),
            "spec.containers[1].envFrom[0]: configmap \"nope\" not found");
  EXPECT_EQ(error("{name: c, env: [{name: X, valueFrom: {secretKeyRef: {name: db, key: user}}}]}"),
            "spec.containers[1].env[0].valueFrom: couldn't find key user in secret \"db\"");
  EXPECT_EQ(error("{name: c, env: [{name: X, valueFrom: {fieldRef: {fieldPath: spec.bogus}}}]}"),
            "spec.containers[1].env[0].valueFrom.fieldRef.fieldPath: \"spec.bogus\" is not a "
            "supported field");
  EXPECT_NE(error("{name: c, env: [{name: X, valueFrom: {resourceFieldRef: {resource: "
                  "limits.cpu}}}]}")
                .find("only fieldRef"),
            std::string::npos);
  // Without API access, a reference is an error, not an empty variable.
  EXPECT_THROW(
      resolveContainerEnv(pod(), container("{name: c, envFrom: [{configMapRef: {name: x}}]}"),
                          nullptr, {}, "f"),
      std::invalid_argument);
}

}  // namespace
}  // namespace skiff::kubelet
