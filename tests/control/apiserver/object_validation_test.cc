// Per-kind validation: Kubernetes' field paths and messages for metadata, pod specs, the apps
// workloads, Nodes, EndpointSlices, Leases, Events and Namespaces, from the function and as a
// create through the handler answers them (422, nothing stored).
#include "control/apiserver/object_validation.h"

#include <gtest/gtest.h>

#include "control/api/codec.h"
#include "control/api/registry.h"
#include "skiff/api/apps_v1.pb.h"
#include "skiff/api/batch_v1.pb.h"
#include "skiff/api/coordination_v1.pb.h"
#include "skiff/api/discovery_v1.pb.h"
#include "skiff/api/rbac_v1.pb.h"

namespace skiff::apiserver {
namespace {

template <class T>
T decode(const std::string& yaml) {
  T out;
  api::decodeYaml(yaml, out);
  return out;
}

template <class T>
const api::ResourceType& typeOf() {
  return *api::Registry::builtin().byDescriptor(T::descriptor());
}

template <class T>
std::vector<std::string> createMessages(const T& object) {
  std::vector<std::string> out;
  for (const auto& c : createCauses(object, typeOf<T>()))
    out.push_back(c.field + ": " + c.detail);
  return out;
}

template <class T>
std::vector<std::string> updateMessages(const T& old, const T& next) {
  std::vector<std::string> out;
  for (const auto& c : updateCauses(old, next, typeOf<T>()))
    out.push_back(c.field + ": " + c.detail);
  return out;
}

using Messages = std::vector<std::string>;

constexpr const char* kDeployment = R"(
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      restartPolicy: Always
      containers:
      - name: web
        image: busybox
        ports: [{name: http, containerPort: 80, protocol: TCP}]
        env: [{name: MODE, value: x}]
        volumeMounts: [{name: data, mountPath: /data}]
        resources: {requests: {cpu: 100m}, limits: {cpu: 200m}}
        readinessProbe: {httpGet: {path: /, port: 80}}
      volumes: [{name: data, emptyDir: {}}]
)";

TEST(ObjectValidation, ValidObjectsHaveNoCauses) {
  EXPECT_EQ(createMessages(decode<api::apps::v1::Deployment>(kDeployment)), Messages{});
  auto role = decode<api::rbac::v1::ClusterRole>(
      "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
      "metadata: {name: 'system:controller:x'}\n");
  EXPECT_EQ(createMessages(role), Messages{}) << "RBAC names are path segments";
  auto pod = decode<api::core::v1::Pod>(
      "apiVersion: v1\nkind: Pod\nmetadata: {generateName: web-}\n"
      "spec: {containers: [{name: c, image: busybox}]}\n");
  EXPECT_EQ(createMessages(pod), Messages{}) << "generateName may end in '-'";
}

TEST(ObjectValidation, NamesByKind) {
  auto pod = decode<api::core::v1::Pod>(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\n"
      "spec: {containers: [{name: c, image: busybox}]}\n");
  EXPECT_EQ(createMessages(pod),
            Messages{"metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain "
                     "must consist of lower case alphanumeric characters, '-' or '.', and must "
                     "start and end with an alphanumeric character (e.g. 'example.com', regex "
                     "used for validation is "
                     "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"});
  auto ns =
      decode<api::core::v1::Namespace>("apiVersion: v1\nkind: Namespace\nmetadata: {name: a.b}\n");
  ASSERT_EQ(createMessages(ns).size(), 1u);
  EXPECT_EQ(createMessages(ns)[0].rfind("metadata.name: Invalid value: \"a.b\": a lowercase RFC "
                                        "1123 label must consist of",
                                        0),
            0u);
  auto svc = decode<api::core::v1::Service>(
      "apiVersion: v1\nkind: Service\nmetadata: {name: 1web}\nspec: {ports: [{port: 80}]}\n");
  ASSERT_EQ(createMessages(svc).size(), 1u);
  EXPECT_NE(createMessages(svc)[0].find("a DNS-1035 label must consist of"), std::string::npos);
  auto role = decode<api::rbac::v1::Role>(
      "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: 'a/b'}\n");
  EXPECT_EQ(createMessages(role), Messages{"metadata.name: Invalid value: \"a/b\": may not "
                                           "contain '/'"});
}

TEST(ObjectValidation, MetadataLabelsAnnotationsOwnersFinalizers) {
  auto pod = decode<api::core::v1::Pod>(R"(
apiVersion: v1
kind: Pod
metadata:
  name: p
  labels: {"bad key": x, ok: "-bad"}
  annotations: {"a/b/c": x}
  finalizers: ["-x"]
  ownerReferences:
  - {apiVersion: apps/v1, kind: ReplicaSet, name: a, uid: "1", controller: true}
  - {apiVersion: apps/v1, kind: ReplicaSet, name: b, uid: "", controller: true}
spec: {containers: [{name: c, image: busybox}]}
)");
  Messages m = createMessages(pod);
  ASSERT_EQ(m.size(), 6u) << ::testing::PrintToString(m);
  EXPECT_EQ(m[0].rfind("metadata.labels: Invalid value: \"bad key\": name part must consist of", 0),
            0u);
  EXPECT_EQ(m[1].rfind("metadata.labels: Invalid value: \"-bad\": a valid label must be an empty "
                       "string or consist of",
                       0),
            0u);
  EXPECT_EQ(m[2].rfind("metadata.annotations: Invalid value: \"a/b/c\": a qualified name", 0), 0u);
  EXPECT_EQ(m[3], "metadata.ownerReferences.uid: Invalid value: \"\": uid must not be empty");
  EXPECT_EQ(m[4],
            "metadata.ownerReferences: Invalid value: 2 references: Only one reference can have "
            "Controller set to true. Found \"true\" in references for ReplicaSet/a, ReplicaSet/b");
  EXPECT_EQ(m[5].rfind("metadata.finalizers: Invalid value: \"-x\": name part must consist", 0),
            0u);
  pod.mutable_metadata()->clear_labels();
  pod.mutable_metadata()->clear_annotations();
  pod.mutable_metadata()->clear_finalizers();
  pod.mutable_metadata()->clear_owner_references();
  (*pod.mutable_metadata()->mutable_annotations())["big"] = std::string(256 * 1024, 'x');
  EXPECT_EQ(createMessages(pod),
            Messages{"metadata.annotations: Too long: must have at most 262144 bytes"});
}

TEST(ObjectValidation, PodSpecContainersVolumesAndPolicies) {
  auto pod = decode<api::core::v1::Pod>(R"(
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  restartPolicy: Sometimes
  dnsPolicy: Fancy
  initContainers: [{name: web, image: busybox}]
  containers:
  - name: web
    ports:
    - {name: http, containerPort: 0}
    - {name: http, containerPort: 70000, hostPort: -1, protocol: tcp}
    - {name: "--", containerPort: 81}
    env: [{name: "A=B"}, {name: ""}]
    volumeMounts: [{name: missing, mountPath: /a}, {name: data, mountPath: /a}]
    resources: {requests: {cpu: "2"}, limits: {cpu: "1"}}
    livenessProbe: {initialDelaySeconds: 1}
    imagePullPolicy: Sometimes
  volumes: [{name: data, emptyDir: {}, configMap: {name: c}}, {name: data}]
)");
  EXPECT_EQ(
      createMessages(pod),
      (Messages{
          "spec.volumes[0].configMap: Forbidden: may not specify more than 1 volume type",
          "spec.volumes[1].name: Duplicate value: \"data\"",
          "spec.volumes[1]: Required value: must specify a volume type",
          "spec.containers[0].name: Duplicate value: \"web\"",
          "spec.containers[0].image: Required value",
          "spec.containers[0].ports[0].containerPort: Required value",
          "spec.containers[0].ports[1].name: Duplicate value: \"http\"",
          "spec.containers[0].ports[1].containerPort: Invalid value: 70000: must be between 1 "
          "and 65535, inclusive",
          "spec.containers[0].ports[1].hostPort: Invalid value: -1: must be between 1 and 65535, "
          "inclusive",
          "spec.containers[0].ports[1].protocol: Unsupported value: \"tcp\": supported values: "
          "\"SCTP\", \"TCP\", \"UDP\"",
          "spec.containers[0].ports[2].name: Invalid value: \"--\": must contain at least one "
          "letter (a-z); must not contain consecutive hyphens; must not begin or end with a "
          "hyphen",
          "spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable "
          "name must consist only of printable ASCII characters other than '='",
          "spec.containers[0].env[1].name: Required value",
          "spec.containers[0].volumeMounts[0].name: Not found: \"missing\"",
          "spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/a\": must be unique",
          "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or "
          "equal to cpu limit of 1",
          "spec.containers[0].livenessProbe: Required value: must specify a handler type",
          "spec.containers[0].imagePullPolicy: Unsupported value: \"Sometimes\": supported "
          "values: \"Always\", \"IfNotPresent\", \"Never\"",
          "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", "
          "\"OnFailure\", \"Never\"",
          "spec.dnsPolicy: Unsupported value: \"Fancy\": supported values: "
          "\"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\""}));
  auto empty = decode<api::core::v1::Pod>("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n");
  EXPECT_EQ(createMessages(empty), Messages{"spec.containers: Required value"});
}

TEST(ObjectValidation, Deployments) {
  auto d = decode<api::apps::v1::Deployment>(kDeployment);
  d.mutable_spec()->set_replicas(-1);
  (*d.mutable_spec()->mutable_template_()->mutable_metadata()->mutable_labels())["app"] = "other";
  d.mutable_spec()->mutable_template_()->mutable_spec()->set_restart_policy("Never");
  auto* ru = d.mutable_spec()->mutable_strategy()->mutable_rolling_update();
  ru->mutable_max_unavailable()->set_int_val(0);
  ru->mutable_max_surge()->set_int_val(0);
  d.mutable_spec()->set_min_ready_seconds(10);
  d.mutable_spec()->set_progress_deadline_seconds(5);
  EXPECT_EQ(createMessages(d),
            (Messages{"spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                      "spec.template.metadata.labels: Invalid value: "
                      "map[string]string{\"app\":\"other\"}: `selector` does not match template "
                      "`labels`",
                      "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported "
                      "values: \"Always\"",
                      "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 "
                      "when `maxSurge` is 0",
                      "spec.progressDeadlineSeconds: Invalid value: 5: must be greater than "
                      "minReadySeconds"}));

  auto no_selector = decode<api::apps::v1::Deployment>(kDeployment);
  no_selector.mutable_spec()->clear_selector();
  EXPECT_EQ(createMessages(no_selector), Messages{"spec.selector: Required value"});
  no_selector.mutable_spec()->mutable_selector();
  EXPECT_EQ(createMessages(no_selector),
            Messages{"spec.selector: Invalid value: v1.LabelSelector{\"\"}: empty selector is "
                     "invalid for deployment"});
  auto percent = decode<api::apps::v1::Deployment>(kDeployment);
  auto* p = percent.mutable_spec()->mutable_strategy()->mutable_rolling_update();
  p->mutable_max_unavailable()->set_type(api::runtime::IntOrString::STRING);
  p->mutable_max_unavailable()->set_str_val("150%");
  EXPECT_EQ(createMessages(percent),
            Messages{"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"150%\": must "
                     "not be greater than 100%"});
}

TEST(ObjectValidation, SelectorsAreImmutable) {
  auto old = decode<api::apps::v1::Deployment>(kDeployment);
  auto next = old;
  next.mutable_spec()->set_replicas(5);
  EXPECT_EQ(updateMessages(old, next), Messages{});
  (*next.mutable_spec()->mutable_selector()->mutable_match_labels())["tier"] = "x";
  (*next.mutable_spec()->mutable_template_()->mutable_metadata()->mutable_labels())["tier"] = "x";
  EXPECT_EQ(updateMessages(old, next),
            Messages{"spec.selector: Invalid value: v1.LabelSelector{\"app=web,tier=x\"}: field "
                     "is immutable"});
}

// Equal selectors whose labels were inserted in other orders are the same selector: a
// serialized proto map has no fixed order, and comparing bytes refused the deployment
// controller's updates of its ReplicaSets.
TEST(ObjectValidation, SelectorsWithTheirLabelsInAnotherOrderAreTheSame) {
  auto old = decode<api::apps::v1::ReplicaSet>(R"(
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web-1, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: i}]}
)");
  std::vector<std::pair<std::string, std::string>> labels;
  for (int i = 0; i < 32; ++i)
    labels.emplace_back("label-" + std::to_string(i), "v" + std::to_string(i));
  auto fill = [&](api::apps::v1::ReplicaSet& rs, bool reversed) {
    auto& selector = *rs.mutable_spec()->mutable_selector()->mutable_match_labels();
    auto& template_labels =
        *rs.mutable_spec()->mutable_template_()->mutable_metadata()->mutable_labels();
    selector.clear();
    template_labels.clear();
    for (size_t n = 0; n < labels.size(); ++n) {
      const auto& [k, v] = labels[reversed ? labels.size() - 1 - n : n];
      selector[k] = v;
      template_labels[k] = v;
    }
  };
  fill(old, false);
  // Through the bytes, as the store has it: a decoded map is built in the order it was written.
  api::apps::v1::ReplicaSet stored;
  ASSERT_TRUE(stored.ParseFromString(old.SerializeAsString()));
  auto next = old;
  fill(next, true);
  next.mutable_spec()->set_replicas(3);
  EXPECT_EQ(updateMessages(stored, next), Messages{});
  EXPECT_EQ(updateMessages(old, next), Messages{});
}

constexpr const char* kStatefulSet = R"(
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: default}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: busybox}]}
)";

TEST(ObjectValidation, StatefulSets) {
  auto ss = decode<api::apps::v1::StatefulSet>(kStatefulSet);
  EXPECT_EQ(createMessages(ss), Messages{});
  ss.mutable_spec()->set_pod_management_policy("Random");
  EXPECT_EQ(createMessages(ss),
            Messages{"spec.podManagementPolicy: Unsupported value: \"Random\": supported values: "
                     "\"OrderedReady\", \"Parallel\""});
  auto old = decode<api::apps::v1::StatefulSet>(kStatefulSet);
  auto next = old;
  next.mutable_spec()->set_replicas(3);
  next.mutable_spec()->mutable_template_()->mutable_spec()->mutable_containers(0)->set_image("x");
  EXPECT_EQ(updateMessages(old, next), Messages{});
  next.mutable_spec()->set_service_name("other");
  EXPECT_EQ(updateMessages(old, next),
            Messages{"spec: Forbidden: updates to statefulset spec for fields other than "
                     "'replicas', 'ordinals', 'template', 'updateStrategy', "
                     "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are "
                     "forbidden"});
}

TEST(ObjectValidation, StatefulSetContainersMountTheirClaimTemplates) {
  auto ss = decode<api::apps::v1::StatefulSet>(kStatefulSet);
  auto* c = ss.mutable_spec()->mutable_template_()->mutable_spec()->mutable_containers(0);
  auto* mount = c->add_volume_mounts();
  mount->set_name("data");
  mount->set_mount_path("/data");
  EXPECT_EQ(createMessages(ss), Messages{"spec.template.spec.containers[0].volumeMounts[0].name: "
                                         "Not found: \"data\""});
  ss.mutable_spec()->add_volume_claim_templates()->mutable_metadata()->set_name("data");
  EXPECT_EQ(createMessages(ss), Messages{});
}

TEST(ObjectValidation, JobTemplatesRestartOnFailureOrNever) {
  auto job = decode<api::batch::v1::Job>(R"(
apiVersion: batch/v1
kind: Job
metadata: {name: pi, namespace: default}
spec:
  template:
    spec: {restartPolicy: Always, containers: [{name: c, image: busybox}]}
)");
  EXPECT_EQ(createMessages(job), Messages{"spec.template.spec.restartPolicy: Required value: "
                                          "valid values: [\"OnFailure\" \"Never\"]"});
  job.mutable_spec()->mutable_template_()->mutable_spec()->set_restart_policy("Sometimes");
  // The pod spec's own rule and the Job's, both, as Kubernetes reports them.
  EXPECT_EQ(createMessages(job),
            (Messages{"spec.template.spec.restartPolicy: Unsupported value: \"Sometimes\": "
                      "supported values: \"Always\", \"OnFailure\", \"Never\"",
                      "spec.template.spec.restartPolicy: Unsupported value: \"Sometimes\": "
                      "supported values: \"OnFailure\", \"Never\""}));
  job.mutable_spec()->mutable_template_()->mutable_spec()->set_restart_policy("OnFailure");
  EXPECT_EQ(createMessages(job), Messages{});
}

TEST(ObjectValidation, ConfigMapsAndSecrets) {
  auto cm = decode<api::core::v1::ConfigMap>(
      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
      "data: {ok.key: x, 'bad key': y, '..x': z}\n");
  Messages m = createMessages(cm);
  ASSERT_EQ(m.size(), 2u) << ::testing::PrintToString(m);
  EXPECT_EQ(m[0], "data[..x]: Invalid value: \"..x\": must not start with '..'");
  EXPECT_EQ(m[1].rfind("data[bad key]: Invalid value: \"bad key\": a valid config key must "
                       "consist of alphanumeric characters",
                       0),
            0u);
  auto tls = decode<api::core::v1::Secret>(
      "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: kubernetes.io/tls\n"
      "data: {tls.crt: eA==}\n");
  EXPECT_EQ(createMessages(tls), Messages{"data[tls.key]: Required value"});
  auto basic = decode<api::core::v1::Secret>(
      "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: kubernetes.io/basic-auth\n");
  EXPECT_EQ(createMessages(basic),
            (Messages{"data[username]: Required value", "data[password]: Required value"}));
  auto old = decode<api::core::v1::Secret>(
      "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nimmutable: true\n"
      "data: {a: eA==}\n");
  auto next = old;
  EXPECT_EQ(updateMessages(old, next), Messages{});
  (*next.mutable_data())["a"] = "y";
  next.set_type("Other");
  EXPECT_EQ(updateMessages(old, next),
            (Messages{"type: Invalid value: \"Other\": field is immutable",
                      "data: Forbidden: field is immutable when `immutable` is set"}));
}

TEST(ObjectValidation, RbacRulesAndBindings) {
  auto role = decode<api::rbac::v1::Role>(R"(
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: r, namespace: default}
rules:
- {verbs: [get], apiGroups: [""], resources: [pods]}
- {resources: [pods]}
- {verbs: [get], nonResourceURLs: [/healthz]}
)");
  EXPECT_EQ(createMessages(role),
            (Messages{"rules[1].verbs: Required value: verbs must contain at least one value",
                      "rules[1].apiGroups: Required value: resource rules must supply at least "
                      "one api group",
                      "rules[2].nonResourceURLs: Invalid value: []string{\"/healthz\"}: "
                      "namespaced rules cannot apply to non-resource URLs"}));
  auto binding = decode<api::rbac::v1::ClusterRoleBinding>(R"(
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: b}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: view}
subjects:
- {kind: ServiceAccount, name: default}
- {kind: User, name: alice, apiGroup: rbac.authorization.k8s.io}
- {kind: Robot, name: r2}
)");
  EXPECT_EQ(createMessages(binding),
            (Messages{"roleRef.kind: Unsupported value: \"Role\": supported values: "
                      "\"ClusterRole\"",
                      "subjects[0].namespace: Required value",
                      "subjects[2].kind: Unsupported value: \"Robot\": supported values: "
                      "\"ServiceAccount\", \"User\", \"Group\""}));
  binding.mutable_role_ref()->set_kind("ClusterRole");
  binding.mutable_subjects(0)->set_namespace_("default");
  binding.mutable_subjects()->RemoveLast();
  EXPECT_EQ(createMessages(binding), Messages{});
  auto changed = binding;
  changed.mutable_role_ref()->set_name("edit");
  EXPECT_EQ(updateMessages(binding, changed),
            Messages{"roleRef: Invalid value: {ClusterRole edit}: cannot change roleRef"});
}

TEST(ObjectValidation, NodePodCidrsAndTaints) {
  auto node = decode<api::core::v1::Node>(R"(
apiVersion: v1
kind: Node
metadata: {name: node-1}
spec:
  podCIDR: 10.244.1.0/24
  podCIDRs: [10.244.1.0/24, fd00:1::/64]
  unschedulable: true
  taints:
  - {key: node.kubernetes.io/not-ready, effect: NoSchedule}
  - {key: node.kubernetes.io/not-ready, effect: NoExecute}
  - {key: dedicated, value: gpu, effect: PreferNoSchedule}
)");
  EXPECT_EQ(createMessages(node), Messages{}) << "one CIDR per family, taints unique by effect";
  auto single = decode<api::core::v1::Node>(
      "apiVersion: v1\nkind: Node\nmetadata: {name: n}\nspec: {podCIDR: 10.244.0.0/33}\n");
  EXPECT_EQ(createMessages(single),
            Messages{"spec.podCIDRs[0]: Invalid value: \"10.244.0.0/33\": must be a valid CIDR "
                     "value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"})
      << "podCIDR alone is the internal API's podCIDRs[0]";
  auto two_v4 = decode<api::core::v1::Node>(
      "apiVersion: v1\nkind: Node\nmetadata: {name: n}\n"
      "spec: {podCIDRs: [10.0.0.0/24, 10.0.0.0/24, 'fd00::/64']}\n");
  EXPECT_EQ(createMessages(two_v4),
            (Messages{"spec.podCIDRs: Invalid value: []string{\"10.0.0.0/24\", \"10.0.0.0/24\", "
                      "\"fd00::/64\"}: may specify no more than one CIDR for each IP family",
                      "spec.podCIDRs[1]: Duplicate value: \"10.0.0.0/24\""}));
  auto bad_cidr = decode<api::core::v1::Node>(
      "apiVersion: v1\nkind: Node\nmetadata: {name: n}\n"
      "spec: {podCIDRs: [10.0.0.0, 10.1.0.0/16]}\n");
  EXPECT_EQ(createMessages(bad_cidr),
            (Messages{"spec.podCIDRs[0]: Invalid value: \"10.0.0.0\": must be a valid CIDR value, "
                      "(e.g. 10.9.8.0/24 or 2001:db8::/64)",
                      "spec.podCIDRs: Invalid value: []string{\"10.0.0.0\", \"10.1.0.0/16\"}: may "
                      "specify no more than one CIDR for each IP family"}));
  auto taints = decode<api::core::v1::Node>(R"(
apiVersion: v1
kind: Node
metadata: {name: n}
spec:
  taints:
  - {key: -bad, effect: NoSchedule}
  - {key: a, value: -x, effect: Sometimes}
  - {key: b}
  - {key: a, value: y, effect: Sometimes}
)");
  EXPECT_EQ(
      createMessages(taints),
      (Messages{
          "metadata.taints[0].key: Invalid value: \"-bad\": name part must consist of alphanumeric "
          "characters, '-', '_' or '.', and must start and end with an alphanumeric character "
          "(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
          "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
          "metadata.taints[1].value: Invalid value: \"-x\": a valid label must be an empty string "
          "or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
          "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
          "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
          "metadata.taints[1].effect: Unsupported value: \"Sometimes\": supported values: "
          "\"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
          "metadata.taints[2].effect: Required value",
          "metadata.taints[3].effect: Unsupported value: \"Sometimes\": supported values: "
          "\"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
          "metadata.taints[3]: Duplicate value: core.Taint{Key:\"a\", Value:\"y\", "
          "Effect:\"Sometimes\", TimeAdded:<nil>}: taints must be unique by key and effect "
          "pair"}));
}

TEST(ObjectValidation, NodeUpdateKeepsPodCidrsAndProviderId) {
  auto old =
      decode<api::core::v1::Node>("apiVersion: v1\nkind: Node\nmetadata: {name: n}\nspec: {}\n");
  auto next = old;
  next.mutable_spec()->set_pod_cidr("10.244.3.0/24");
  next.mutable_spec()->set_provider_id("skiff://n");
  next.mutable_spec()->set_unschedulable(true);
  EXPECT_EQ(updateMessages(old, next), Messages{}) << "set once, from empty";
  auto changed = next;
  changed.mutable_spec()->set_pod_cidr("10.244.4.0/24");
  changed.mutable_spec()->set_provider_id("skiff://m");
  EXPECT_EQ(updateMessages(next, changed),
            (Messages{"spec.podCIDRs: Forbidden: node updates may not change podCIDR except "
                      "from \"\" to valid",
                      "spec.providerID: Forbidden: node updates may not change providerID except "
                      "from \"\" to valid"}));
  auto added = next;
  added.mutable_spec()->add_pod_cidrs("10.244.3.0/24");
  added.mutable_spec()->add_pod_cidrs("fd00:3::/64");
  EXPECT_EQ(updateMessages(next, added),
            Messages{"spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "
                     "\"\" to valid"});
  auto invalid_first = old;
  invalid_first.mutable_spec()->set_pod_cidr("10.244.3.0");
  EXPECT_EQ(updateMessages(old, invalid_first),
            Messages{"spec.podCIDRs[0]: Invalid value: \"10.244.3.0\": must be a valid CIDR "
                     "value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"});
  auto tainted = next;
  auto* t = tainted.mutable_spec()->add_taints();
  t->set_key("k");
  t->set_effect("NoExecute");
  *tainted.mutable_spec()->add_taints() = *t;
  EXPECT_EQ(updateMessages(next, tainted),
            Messages{"metadata.taints[1]: Duplicate value: core.Taint{Key:\"k\", Value:\"\", "
                     "Effect:\"NoExecute\", TimeAdded:<nil>}: taints must be unique by key and "
                     "effect pair"});
}

TEST(ObjectValidation, EndpointSlices) {
  auto slice = decode<api::discovery::v1::EndpointSlice>(R"(
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-abc, namespace: default}
addressType: IPv4
endpoints:
- {addresses: [10.1.0.5], nodeName: node-1, hostname: web-0, conditions: {ready: true}}
- {addresses: [127.0.0.1]}
ports:
- {name: http, protocol: TCP, port: 80}
- {name: '', protocol: UDP, port: 53}
)");
  EXPECT_EQ(createMessages(slice), Messages{});
  auto bad = decode<api::discovery::v1::EndpointSlice>(R"(
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-abc, namespace: default}
addressType: IPv4
endpoints:
- {addresses: []}
- {addresses: ['fd00::1', 10.0.0.300, 0.0.0.0, 169.254.1.1, 224.0.0.5], nodeName: Node_1, hostname: web.0}
ports:
- {name: HTTP, protocol: TCP, port: 80}
- {name: dns, protocol: ICMP, port: 70000}
- {name: dns}
)");
  EXPECT_EQ(
      createMessages(bad),
      (Messages{
          "endpoints[0].addresses: Required value: must contain at least 1 address",
          "endpoints[1].addresses[0]: Invalid value: \"fd00::1\": must be a valid IPv4 address",
          "endpoints[1].addresses[1]: Invalid value: \"10.0.0.300\": must be a valid IPv4 address",
          "endpoints[1].addresses[2]: Invalid value: \"0.0.0.0\": may not be unspecified "
          "(0.0.0.0)",
          "endpoints[1].addresses[3]: Invalid value: \"169.254.1.1\": may not be in the "
          "link-local range (169.254.0.0/16, fe80::/10)",
          "endpoints[1].addresses[4]: Invalid value: \"224.0.0.5\": may not be in the link-local "
          "multicast range (224.0.0.0/24, ff02::/10)",
          "endpoints[1].nodeName: Invalid value: \"Node_1\": a lowercase RFC 1123 subdomain must "
          "consist of lower case alphanumeric characters, '-' or '.', and must start and end "
          "with an alphanumeric character (e.g. 'example.com', regex used for validation is "
          "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
          "endpoints[1].hostname: Invalid value: \"web.0\": a lowercase RFC 1123 label must "
          "consist of lower case alphanumeric characters or '-', and must start and end with an "
          "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
          "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
          "ports[0].name: Invalid value: \"HTTP\": a lowercase RFC 1123 label must consist of "
          "lower case alphanumeric characters or '-', and must start and end with an "
          "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
          "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
          "ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", "
          "\"UDP\"",
          "ports[1].port: Invalid value: 70000: must be between 0 and 65535, inclusive",
          "ports[2].name: Duplicate value: \"dns\"", "ports[2].protocol: Required value"}));
  auto v6 = decode<api::discovery::v1::EndpointSlice>(R"(
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: s, namespace: default}
addressType: IPv6
endpoints: [{addresses: ['fd00::5', 10.0.0.1, 'fe80::1']}]
)");
  EXPECT_EQ(createMessages(v6),
            (Messages{"endpoints[0].addresses[1]: Invalid value: \"10.0.0.1\": must be a valid "
                      "IPv6 address",
                      "endpoints[0].addresses[2]: Invalid value: \"fe80::1\": may not be in the "
                      "link-local range (169.254.0.0/16, fe80::/10)"}));
  auto fqdn = decode<api::discovery::v1::EndpointSlice>(R"(
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: s, namespace: default}
addressType: FQDN
endpoints: [{addresses: [db.example.com., localhost, Bad.example.com]}]
)");
  EXPECT_EQ(createMessages(fqdn),
            (Messages{"endpoints[0].addresses[1]: Invalid value: \"localhost\": should be a "
                      "domain with at least two segments separated by dots",
                      "endpoints[0].addresses[2]: Invalid value: \"Bad.example.com\": a lowercase "
                      "RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                      "'-' or '.', and must start and end with an alphanumeric character (e.g. "
                      "'example.com', regex used for validation is "
                      "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"}));
  auto untyped = decode<api::discovery::v1::EndpointSlice>(
      "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
      "metadata: {name: s, namespace: default}\naddressType: IPv5\n"
      "endpoints: [{addresses: [x]}]\n");
  EXPECT_EQ(createMessages(untyped),
            Messages{"addressType: Unsupported value: \"IPv5\": supported values: \"FQDN\", "
                     "\"IPv4\", \"IPv6\""})
      << "addresses of an unknown type are not checked";
  untyped.clear_address_type();
  EXPECT_EQ(createMessages(untyped), Messages{"addressType: Required value"});

  auto many = slice;
  many.clear_endpoints();
  for (int i = 0; i < 1001; ++i)
    many.add_endpoints()->add_addresses("10.1.0." + std::to_string(i % 250 + 1));
  EXPECT_EQ(createMessages(many),
            Messages{"endpoints: Too many: 1001: must have at most 1000 items"});
  many.mutable_endpoints()->RemoveLast();
  EXPECT_EQ(createMessages(many), Messages{});
  auto* crowded = many.mutable_endpoints(0);
  for (int i = 0; i < 100; ++i)
    crowded->add_addresses("10.2.0." + std::to_string(i + 1));
  EXPECT_EQ(createMessages(many),
            Messages{"endpoints[0].addresses: Too many: 101: must have at most 100 items"});

  auto moved = slice;
  moved.set_address_type("IPv6");
  moved.clear_endpoints();
  moved.add_endpoints()->add_addresses("fd00::9");
  EXPECT_EQ(updateMessages(slice, moved),
            Messages{"addressType: Invalid value: \"IPv6\": field is immutable"});
  EXPECT_EQ(updateMessages(slice, slice), Messages{});
}

TEST(ObjectValidation, Leases) {
  auto lease = decode<api::coordination::v1::Lease>(R"(
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: kube-scheduler, namespace: kube-system}
spec: {holderIdentity: 'host-1_3f2b c', leaseDurationSeconds: 15, leaseTransitions: 0}
)");
  EXPECT_EQ(createMessages(lease), Messages{}) << "holderIdentity is free text";
  auto bad = lease;
  bad.mutable_spec()->set_lease_duration_seconds(0);
  bad.mutable_spec()->set_lease_transitions(-1);
  bad.mutable_spec()->set_preferred_holder("host-2");
  EXPECT_EQ(createMessages(bad),
            (Messages{"spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
                      "spec.leaseTransitions: Invalid value: -1: must be greater than or equal "
                      "to 0",
                      "spec.preferredHolder: Forbidden: may only be specified if `strategy` is "
                      "defined"}));
  EXPECT_EQ(updateMessages(lease, bad).size(), 3u);
  bad.mutable_spec()->set_lease_duration_seconds(10);
  bad.mutable_spec()->clear_lease_transitions();
  bad.mutable_spec()->set_strategy("Newest");
  EXPECT_EQ(createMessages(bad),
            Messages{"spec.strategy.strategy: Unsupported value: \"Newest\": supported values: "
                     "\"OldestEmulationVersion\""});
  bad.mutable_spec()->set_strategy("OldestEmulationVersion");
  EXPECT_EQ(createMessages(bad), Messages{});
}

TEST(ObjectValidation, CoreEvents) {
  auto event = decode<api::core::v1::Event>(R"(
apiVersion: v1
kind: Event
metadata: {name: web.1, namespace: default}
involvedObject: {kind: Pod, namespace: default, name: web}
reason: Scheduled
type: Normal
reportingComponent: default-scheduler
)");
  EXPECT_EQ(createMessages(event), Messages{});
  auto node_event = event;
  node_event.mutable_involved_object()->set_kind("Node");
  node_event.mutable_involved_object()->clear_namespace_();
  EXPECT_EQ(createMessages(node_event), Messages{}) << "cluster-scoped objects' events: default";
  node_event.mutable_metadata()->set_namespace_("kube-system");
  EXPECT_EQ(createMessages(node_event),
            Messages{"involvedObject.namespace: Invalid value: \"\": does not match "
                     "event.namespace"});
  auto elsewhere = event;
  elsewhere.mutable_involved_object()->set_namespace_("other");
  EXPECT_EQ(updateMessages(event, elsewhere),
            Messages{"involvedObject.namespace: Invalid value: \"other\": does not match "
                     "event.namespace"});
  // With eventTime set, the new-style fields are required (legacyValidateEvent; v1 requests
  // name the controller reportingComponent).
  auto timed = event;
  timed.mutable_event_time()->set_seconds(1700000000);
  timed.clear_reason();
  timed.set_reporting_component("bad controller");
  EXPECT_EQ(
      createMessages(timed),
      (Messages{"reportingComponent: Invalid value: \"bad controller\": name part must consist "
                "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
                "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
                "reportingInstance: Required value", "action: Required value",
                "reason: Required value"}));
  timed.set_reporting_component("skiff.io/scheduler");
  timed.set_reporting_instance("scheduler-host-1");
  timed.set_action("Binding");
  timed.set_reason(std::string(129, 'r'));
  EXPECT_EQ(createMessages(timed),
            Messages{"reason: Invalid value: \"\": can have at most 128 characters"});
  timed.set_reason("Scheduled");
  timed.set_type("Unusual");
  EXPECT_EQ(createMessages(timed), Messages{})
      << "type is checked for events.k8s.io requests only, as in kube-apiserver";
}

TEST(ObjectValidation, NamespaceFinalizers) {
  auto ns = decode<api::core::v1::Namespace>(
      "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n"
      "spec: {finalizers: [kubernetes, example.com/cleanup]}\n");
  EXPECT_EQ(createMessages(ns), Messages{});
  ns.mutable_spec()->add_finalizers("cleanup");
  ns.mutable_spec()->add_finalizers("-x/y");
  EXPECT_EQ(createMessages(ns),
            (Messages{"spec.finalizers: Invalid value: \"cleanup\": name is neither a standard "
                      "finalizer name nor is it fully qualified",
                      "spec.finalizers: Invalid value: \"-x/y\": prefix part a lowercase RFC 1123 "
                      "subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                      "and must start and end with an alphanumeric character (e.g. "
                      "'example.com', regex used for validation is "
                      "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"}));
  auto old = ns;
  old.mutable_spec()->clear_finalizers();
  EXPECT_EQ(updateMessages(old, ns).size(), 2u);
}

TEST(ObjectValidation, ValidateCreateThrowsKubernetesInvalid) {
  auto d = decode<api::apps::v1::Deployment>(kDeployment);
  d.mutable_spec()->set_replicas(-1);
  d.mutable_spec()->mutable_template_()->mutable_spec()->mutable_containers(0)->clear_image();
  try {
    validateCreate(d, typeOf<api::apps::v1::Deployment>());
    FAIL() << "no error";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), 422);
    EXPECT_STREQ(e.what(),
                 "Deployment.apps \"web\" is invalid: [spec.replicas: Invalid value: -1: must be "
                 "greater than or equal to 0, spec.template.spec.containers[0].image: Required "
                 "value]");
  }
}

TEST(ObjectValidation, NewKindsAnswer422WithCauses) {
  auto lease = decode<api::coordination::v1::Lease>(
      "apiVersion: coordination.k8s.io/v1\nkind: Lease\n"
      "metadata: {name: node-1, namespace: kube-node-lease}\nspec: {leaseDurationSeconds: -5}\n");
  try {
    validateCreate(lease, typeOf<api::coordination::v1::Lease>());
    FAIL() << "no error";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), 422);
    EXPECT_STREQ(e.what(),
                 "Lease.coordination.k8s.io \"node-1\" is invalid: spec.leaseDurationSeconds: "
                 "Invalid value: -5: must be greater than 0");
  }
  auto slice = decode<api::discovery::v1::EndpointSlice>(
      "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
      "metadata: {name: web-1, namespace: default}\naddressType: IPv4\n"
      "endpoints: [{addresses: [10.0.0.1]}]\n");
  auto next = slice;
  next.set_address_type("FQDN");
  next.mutable_endpoints(0)->set_addresses(0, "web.example.com");
  try {
    validateUpdate(slice, next, typeOf<api::discovery::v1::EndpointSlice>());
    FAIL() << "no error";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), 422);
    EXPECT_STREQ(e.what(),
                 "EndpointSlice.discovery.k8s.io \"web-1\" is invalid: addressType: Invalid "
                 "value: \"FQDN\": field is immutable");
  }
}

}  // namespace
}  // namespace skiff::apiserver
