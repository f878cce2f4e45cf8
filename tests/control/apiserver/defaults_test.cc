#include "control/apiserver/defaults.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <filesystem>
#include <memory>

#include "control/api/codec.h"
#include "control/api/json.h"
#include "control/apiserver/api_handler.h"
#include "control/apiserver/http_server.h"
#include "control/store/sqlite_store.h"
#include "skiff/api/apps_v1.pb.h"
#include "skiff/api/batch_v1.pb.h"
#include "skiff/api/core_v1.pb.h"
#include "skiff/api/discovery_v1.pb.h"

namespace skiff::apiserver {
namespace {

struct Case {
  std::string name;
  std::function<std::unique_ptr<google::protobuf::Message>()> make;
  std::string input;
  std::string expected;  // the input with Kubernetes' defaults, as JSON
};

template <typename T>
std::function<std::unique_ptr<google::protobuf::Message>()> kind() {
  return [] { return std::make_unique<T>(); };
}

// Both sides go through the codec, so key order and spacing do not matter.
std::string canonical(const Case& c, const std::string& json) {
  auto message = c.make();
  api::decodeJson(json, *message);
  return api::encodeJson(*message);
}

// The pod spec defaults every template gets, for a container "c" of image `image`.
std::string defaultedPodSpec(const std::string& pull_policy) {
  return R"("spec":{"containers":[{"name":"c","image":"i","imagePullPolicy":")" + pull_policy +
         R"(","terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"}],)"
         R"("restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst",)"
         R"("securityContext":{},"schedulerName":"default-scheduler","enableServiceLinks":true})";
}

const char* kTemplate =
    R"("template":{"metadata":{"labels":{"app":"a"}},"spec":{"containers":[{"name":"c","image":"i"}]}})";
const std::string kDefaultedTemplate =
    R"("template":{"metadata":{"labels":{"app":"a"}},)" + defaultedPodSpec("Always") + "}";
const char* kSelector = R"("selector":{"matchLabels":{"app":"a"}})";
// A Job's pods restart OnFailure or Never (ValidateJobSpec).
const char* kJobTemplate =
    R"("template":{"metadata":{"labels":{"app":"a"}},"spec":{"restartPolicy":"Never",)"
    R"("containers":[{"name":"c","image":"i"}]}})";

std::vector<Case> cases() {
  return {
      {"PodMinimal", kind<api::core::v1::Pod>(),
       R"({"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}})",
       R"({"metadata":{"name":"p"},)" + defaultedPodSpec("Always") + "}"},
      {"PodKeepsWhatItSetsEvenZeroes", kind<api::core::v1::Pod>(),
       R"({"spec":{"containers":[{"name":"c","image":"i","imagePullPolicy":"Never",)"
       R"("terminationMessagePath":"/t","terminationMessagePolicy":"FallbackToLogsOnError"}],)"
       R"("restartPolicy":"Never","terminationGracePeriodSeconds":0,"dnsPolicy":"Default",)"
       R"("securityContext":{"runAsUser":1},"schedulerName":"s","enableServiceLinks":false}})",
       R"({"spec":{"containers":[{"name":"c","image":"i","imagePullPolicy":"Never",)"
       R"("terminationMessagePath":"/t","terminationMessagePolicy":"FallbackToLogsOnError"}],)"
       R"("restartPolicy":"Never","terminationGracePeriodSeconds":0,"dnsPolicy":"Default",)"
       R"("securityContext":{"runAsUser":1},"schedulerName":"s","enableServiceLinks":false}})"},
      {"PodContainersPortsProbesVolumes", kind<api::core::v1::Pod>(),
       R"({"spec":{"hostNetwork":true,"initContainers":[{"name":"i","image":"reg:5000/init"}],)"
       R"("containers":[{"name":"c","image":"reg:5000/app:1.2",)"
       R"("ports":[{"containerPort":80},{"containerPort":53,"protocol":"UDP","hostPort":5353}],)"
       R"("env":[{"name":"N","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}}],)"
       R"("resources":{"limits":{"cpu":"1","memory":"1Gi"},"requests":{"cpu":"500m"}},)"
       R"("livenessProbe":{"httpGet":{"port":8080}},"readinessProbe":{"tcpSocket":{"port":80},)"
       R"("periodSeconds":5},"startupProbe":{"grpc":{"port":9}}},)"
       R"({"name":"d","image":"app@sha256:0123"}],)"
       R"("volumes":[{"name":"e"},{"name":"s","secret":{"secretName":"s"}},)"
       R"({"name":"m","configMap":{"name":"m","defaultMode":256}},{"name":"h","hostPath":{"path":"/x"}},)"
       R"({"name":"p","projected":{"sources":[{"serviceAccountToken":{"path":"t"}}]}}]}})",
       R"({"spec":{"hostNetwork":true,"initContainers":[{"name":"i","image":"reg:5000/init",)"
       R"("imagePullPolicy":"Always","terminationMessagePath":"/dev/termination-log",)"
       R"("terminationMessagePolicy":"File"}],)"
       R"("containers":[{"name":"c","image":"reg:5000/app:1.2","imagePullPolicy":"IfNotPresent",)"
       R"("terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File",)"
       R"("ports":[{"containerPort":80,"hostPort":80,"protocol":"TCP"},)"
       R"({"containerPort":53,"protocol":"UDP","hostPort":5353}],)"
       R"("env":[{"name":"N","valueFrom":{"fieldRef":{"apiVersion":"v1","fieldPath":"metadata.name"}}}],)"
       R"("resources":{"limits":{"cpu":"1","memory":"1Gi"},"requests":{"cpu":"500m","memory":"1Gi"}},)"
       R"("livenessProbe":{"httpGet":{"port":8080,"path":"/","scheme":"HTTP"},"timeoutSeconds":1,)"
       R"("periodSeconds":10,"successThreshold":1,"failureThreshold":3},)"
       R"("readinessProbe":{"tcpSocket":{"port":80},"timeoutSeconds":1,"periodSeconds":5,)"
       R"("successThreshold":1,"failureThreshold":3},)"
       R"("startupProbe":{"grpc":{"port":9,"service":""},"timeoutSeconds":1,"periodSeconds":10,)"
       R"("successThreshold":1,"failureThreshold":3}},)"
       R"({"name":"d","image":"app@sha256:0123","imagePullPolicy":"IfNotPresent",)"
       R"("terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"}],)"
       R"("volumes":[{"name":"e","emptyDir":{}},{"name":"s","secret":{"secretName":"s","defaultMode":420}},)"
       R"({"name":"m","configMap":{"name":"m","defaultMode":256}},)"
       R"({"name":"h","hostPath":{"path":"/x","type":""}},)"
       R"({"name":"p","projected":{"defaultMode":420,"sources":[{"serviceAccountToken":)"
       R"({"path":"t","expirationSeconds":3600}}]}}],)"
       R"("restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst",)"
       R"("securityContext":{},"schedulerName":"default-scheduler","enableServiceLinks":true}})"},
      {"DeploymentMinimal", kind<api::apps::v1::Deployment>(),
       std::string(R"({"spec":{)") + kSelector + "," + kTemplate + "}}",
       std::string(R"({"spec":{"replicas":1,)") + kSelector + "," + kDefaultedTemplate +
           R"(,"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%",)"
           R"("maxSurge":"25%"}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600}})"},
      {"DeploymentRecreateGetsNoRollingUpdate", kind<api::apps::v1::Deployment>(),
       std::string(R"({"spec":{"replicas":0,"strategy":{"type":"Recreate"},)") + kSelector + "," +
           kTemplate + "}}",
       std::string(R"({"spec":{"replicas":0,"strategy":{"type":"Recreate"},)") + kSelector + "," +
           kDefaultedTemplate + R"(,"revisionHistoryLimit":10,"progressDeadlineSeconds":600}})"},
      {"ReplicaSet", kind<api::apps::v1::ReplicaSet>(),
       std::string(R"({"spec":{)") + kSelector + "," + kTemplate + "}}",
       std::string(R"({"spec":{"replicas":1,)") + kSelector + "," + kDefaultedTemplate + "}}"},
      {"DaemonSet", kind<api::apps::v1::DaemonSet>(),
       std::string(R"({"spec":{)") + kSelector + "," + kTemplate + "}}",
       std::string(R"({"spec":{)") + kSelector + "," + kDefaultedTemplate +
           R"(,"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":1,)"
           R"("maxSurge":0}},"revisionHistoryLimit":10}})"},
      {"StatefulSet", kind<api::apps::v1::StatefulSet>(),
       std::string(R"({"spec":{"serviceName":"s",)") + kSelector + "," + kTemplate +
           R"(,"volumeClaimTemplates":[{"metadata":{"name":"d"},"spec":{"accessModes":["ReadWriteOnce"]}}]}})",
       std::string(R"({"spec":{"replicas":1,"serviceName":"s",)") + kSelector + "," +
           kDefaultedTemplate +
           R"(,"volumeClaimTemplates":[{"metadata":{"name":"d"},"spec":{"accessModes":["ReadWriteOnce"],)"
           R"("volumeMode":"Filesystem"},"status":{"phase":"Pending"}}],)"
           R"("podManagementPolicy":"OrderedReady",)"
           R"("updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":0}},)"
           R"("revisionHistoryLimit":10,"persistentVolumeClaimRetentionPolicy":)"
           R"({"whenDeleted":"Retain","whenScaled":"Retain"}}})"},
      {"StatefulSetOnDeleteGetsNoRollingUpdate", kind<api::apps::v1::StatefulSet>(),
       std::string(R"({"spec":{"replicas":3,"updateStrategy":{"type":"OnDelete"},)"
                   R"("persistentVolumeClaimRetentionPolicy":{"whenDeleted":"Delete"},)") +
           kSelector + "," + kTemplate + "}}",
       std::string(R"({"spec":{"replicas":3,"updateStrategy":{"type":"OnDelete"},)"
                   R"("persistentVolumeClaimRetentionPolicy":{"whenDeleted":"Delete",)"
                   R"("whenScaled":"Retain"},)") +
           kSelector + "," + kDefaultedTemplate +
           R"(,"podManagementPolicy":"OrderedReady","revisionHistoryLimit":10}})"},
      {"JobMinimalTakesItsTemplatesLabels", kind<api::batch::v1::Job>(),
       std::string(R"({"spec":{)") + kTemplate + "}}",
       std::string(R"({"metadata":{"labels":{"app":"a"}},"spec":{"parallelism":1,"completions":1,)"
                   R"("backoffLimit":6,"completionMode":"NonIndexed","suspend":false,)"
                   R"("podReplacementPolicy":"TerminatingOrFailed",)") +
           kDefaultedTemplate + "}}"},
      {"JobWithParallelismOnlyHasNoCompletions", kind<api::batch::v1::Job>(),
       std::string(R"({"metadata":{"labels":{"own":"x"}},"spec":{"parallelism":3,)"
                   R"("podFailurePolicy":{"rules":[{"action":"Ignore","onPodConditions":)"
                   R"([{"type":"DisruptionTarget"}]}]},)") +
           kTemplate + "}}",
       std::string(R"({"metadata":{"labels":{"own":"x"}},"spec":{"parallelism":3,)"
                   R"("podFailurePolicy":{"rules":[{"action":"Ignore","onPodConditions":)"
                   R"([{"type":"DisruptionTarget","status":"True"}]}]},)"
                   R"("backoffLimit":6,"completionMode":"NonIndexed","suspend":false,)"
                   R"("podReplacementPolicy":"Failed",)") +
           kDefaultedTemplate + "}}"},
      {"JobWithCompletionsOnlyRunsOneAtATime", kind<api::batch::v1::Job>(),
       std::string(R"({"spec":{"completions":5,"backoffLimitPerIndex":1,)"
                   R"("completionMode":"Indexed",)") +
           kTemplate + "}}",
       std::string(R"({"metadata":{"labels":{"app":"a"}},"spec":{"completions":5,"parallelism":1,)"
                   R"("backoffLimitPerIndex":1,"backoffLimit":2147483647,)"
                   R"("completionMode":"Indexed","suspend":false,)"
                   R"("podReplacementPolicy":"TerminatingOrFailed",)") +
           kDefaultedTemplate + "}}"},
      {"NamespaceIsLabelledWithItsName", kind<api::core::v1::Namespace>(),
       R"({"metadata":{"name":"team","labels":{"kubernetes.io/metadata.name":"other"}}})",
       R"({"metadata":{"name":"team","labels":{"kubernetes.io/metadata.name":"team"}},)"
       R"("status":{"phase":"Active"}})"},
      {"NodeAllocatableIsItsCapacity", kind<api::core::v1::Node>(),
       R"({"metadata":{"name":"n"},"status":{"capacity":{"cpu":"2","pods":"110"}}})",
       R"({"metadata":{"name":"n"},"status":{"capacity":{"cpu":"2","pods":"110"},)"
       R"("allocatable":{"cpu":"2","pods":"110"}}})"},
      {"EndpointSlicePorts", kind<api::discovery::v1::EndpointSlice>(),
       R"({"addressType":"IPv4","ports":[{"port":80},{"name":"dns","port":53,"protocol":"UDP"}]})",
       R"({"addressType":"IPv4","ports":[{"name":"","port":80,"protocol":"TCP"},)"
       R"({"name":"dns","port":53,"protocol":"UDP"}]})"},
      {"PersistentVolumeClaim", kind<api::core::v1::PersistentVolumeClaim>(),
       R"({"spec":{"accessModes":["ReadWriteOnce"]}})",
       R"({"spec":{"accessModes":["ReadWriteOnce"],"volumeMode":"Filesystem"},)"
       R"("status":{"phase":"Pending"}})"},
      {"KindsWithoutDefaultsStayAsTheyAre", kind<api::core::v1::ConfigMap>(),
       R"({"metadata":{"name":"c"},"data":{"k":"v"}})",
       R"({"metadata":{"name":"c"},"data":{"k":"v"}})"},
  };
}

class DefaultsTableTest : public ::testing::TestWithParam<Case> {};

TEST_P(DefaultsTableTest, AppliesKubernetesDefaults) {
  const Case& c = GetParam();
  auto message = c.make();
  api::decodeJson(c.input, *message);
  applyDefaults(*message);
  EXPECT_EQ(api::encodeJson(*message), canonical(c, c.expected));
  // Defaulting twice changes nothing more (updates default objects that were defaulted before).
  std::string once = api::encodeJson(*message);
  applyDefaults(*message);
  EXPECT_EQ(api::encodeJson(*message), once);
}

INSTANTIATE_TEST_SUITE_P(Kinds, DefaultsTableTest, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& param) {
                           return param.param.name;
                         });

TEST(PrepareForCreateTest, JobGetsAGeneratedSelectorUnlessManual) {
  api::batch::v1::Job job;
  api::decodeJson(R"({"metadata":{"name":"pi","uid":"u-1"},"spec":{"template":{"metadata":)"
                  R"({"labels":{"job-name":"mine"}}}}})",
                  job);
  prepareForCreate(job);
  EXPECT_EQ(api::encodeJson(job),
            R"({"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"pi","uid":"u-1"},)"
            R"("spec":{"selector":{"matchLabels":)"
            R"({"batch.kubernetes.io/controller-uid":"u-1"}},"template":{"metadata":{"labels":)"
            R"({"batch.kubernetes.io/controller-uid":"u-1","batch.kubernetes.io/job-name":"pi",)"
            R"("controller-uid":"u-1","job-name":"mine"}}}}})");

  api::batch::v1::Job manual;
  const char* manual_json =
      R"({"metadata":{"name":"m","uid":"u-2"},"spec":{"manualSelector":true,"selector":)"
      R"({"matchLabels":{"x":"y"}},"template":{"metadata":{"labels":{"x":"y"}}}}})";
  api::decodeJson(manual_json, manual);
  prepareForCreate(manual);
  EXPECT_EQ(api::encodeJson(manual), api::encodeJson([&] {
              api::batch::v1::Job j;
              api::decodeJson(manual_json, j);
              return j;
            }()));
}

TEST(PrepareForCreateTest, PodsStartPendingWithTheirQosClassAndPriority) {
  struct QosCase {
    const char* spec;
    const char* qos_class;
  };
  for (const QosCase& c : std::vector<QosCase>{
           {R"({"containers":[{"name":"c"}]})", "BestEffort"},
           {R"({"containers":[{"name":"c","resources":{"requests":{"cpu":"0"}}}]})", "BestEffort"},
           {R"({"containers":[{"name":"c","resources":{"limits":{"cpu":"1","memory":"1Gi"},)"
            R"("requests":{"cpu":"1000m","memory":"1024Mi"}}}]})",
            "Guaranteed"},
           {R"({"containers":[{"name":"c","resources":{"limits":{"cpu":"1","memory":"1Gi"},)"
            R"("requests":{"cpu":"1000m","memory":"1024Mi"}}}],)"
            R"("initContainers":[{"name":"i","resources":{"limits":{"cpu":"1"}}}]})",
            "Burstable"},
           {R"({"containers":[{"name":"c","resources":{"limits":{"cpu":"2","memory":"1Gi"},)"
            R"("requests":{"cpu":"1","memory":"1Gi"}}}]})",
            "Burstable"},
           {R"({"containers":[{"name":"c","resources":{"requests":{"memory":"1Gi"}}}]})",
            "Burstable"},
       }) {
    api::core::v1::Pod pod;
    api::decodeJson(std::string(R"({"spec":)") + c.spec + R"(,"status":{"phase":"Running"}})", pod);
    prepareForCreate(pod);
    EXPECT_EQ(pod.status().phase(), "Pending") << c.spec;
    EXPECT_EQ(pod.status().qos_class(), c.qos_class) << c.spec;
    EXPECT_TRUE(pod.spec().has_priority());
    EXPECT_EQ(pod.spec().priority(), 0);
    EXPECT_EQ(pod.spec().preemption_policy(), "PreemptLowerPriority");
  }
  api::core::v1::Pod critical;
  critical.mutable_spec()->set_priority_class_name("system-node-critical");
  critical.mutable_spec()->set_preemption_policy("Never");
  prepareForCreate(critical);
  EXPECT_EQ(critical.spec().priority(), 2000001000);
  EXPECT_EQ(critical.spec().preemption_policy(), "Never");
}

TEST(PrepareForCreateTest, ClaimsStartPending) {
  api::core::v1::PersistentVolumeClaim pvc;
  prepareForCreate(pvc);
  EXPECT_EQ(pvc.status().phase(), "Pending");
}

// ------------------------------------------------------------ through the apiserver's handler

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

class DefaultsApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("skiff-defaults-" + std::to_string(::getpid()) + "-" +
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

  std::pair<int, api::Value> call(http::verb method, const std::string& target,
                                  const std::string& body = "") {
    asio::io_context io;
    tcp::socket socket(io);
    socket.connect({asio::ip::make_address("127.0.0.1"), server_->port()});
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "localhost");
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    http::write(socket, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(socket, buffer, res);
    return {static_cast<int>(res.result_int()), api::parseJson(res.body())};
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<ApiHandler> handler_;
  std::unique_ptr<HttpServer> server_;
};

std::string deployment(const std::string& extra_metadata) {
  return R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web")" +
         extra_metadata + R"(},"spec":{)" + kSelector + "," + kTemplate + "}}";
}

void expectDeploymentDefaults(const api::Value& d) {
  const api::Value* spec = d.find("spec");
  ASSERT_NE(spec, nullptr) << api::writeJson(d);
  EXPECT_EQ(spec->find("replicas")->asInt(), 1);
  EXPECT_EQ(spec->find("revisionHistoryLimit")->asInt(), 10);
  EXPECT_EQ(spec->find("progressDeadlineSeconds")->asInt(), 600);
  EXPECT_EQ(
      api::writeJson(*spec->find("strategy")),
      R"({"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}})");
  const api::Value* pod = spec->find("template")->find("spec");
  EXPECT_EQ(pod->find("dnsPolicy")->text(), "ClusterFirst");
  EXPECT_EQ(pod->find("containers")->items()[0].find("imagePullPolicy")->text(), "Always");
}

TEST_F(DefaultsApiTest, CreateUpdateAndDryRunAllDefault) {
  const std::string path = "/apis/apps/v1/namespaces/default/deployments";
  auto [dry_status, dry] = call(http::verb::post, path + "?dryRun=All", deployment(""));
  ASSERT_EQ(dry_status, 201) << api::writeJson(dry);
  expectDeploymentDefaults(dry);
  EXPECT_EQ(call(http::verb::get, path + "/web").first, 404);

  auto [status, created] = call(http::verb::post, path, deployment(""));
  ASSERT_EQ(status, 201) << api::writeJson(created);
  expectDeploymentDefaults(created);
  auto [get_status, stored] = call(http::verb::get, path + "/web");
  ASSERT_EQ(get_status, 200);
  expectDeploymentDefaults(stored);

  // A PUT that leaves the defaulted fields out gets them again, as a decode in Kubernetes would.
  std::string rv = stored.find("metadata")->find("resourceVersion")->text();
  auto [put_status, updated] =
      call(http::verb::put, path + "/web", deployment(R"(,"resourceVersion":")" + rv + "\""));
  ASSERT_EQ(put_status, 200) << api::writeJson(updated);
  expectDeploymentDefaults(updated);
  expectDeploymentDefaults(call(http::verb::get, path + "/web").second);
}

TEST_F(DefaultsApiTest, JobsGetTheirSelectorAndPodsStartPending) {
  auto [status, job] = call(
      http::verb::post, "/apis/batch/v1/namespaces/default/jobs",
      std::string(R"({"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"pi"},"spec":{)") +
          kJobTemplate + "}}");
  ASSERT_EQ(status, 201) << api::writeJson(job);
  std::string uid = job.find("metadata")->find("uid")->text();
  ASSERT_FALSE(uid.empty());
  const api::Value* spec = job.find("spec");
  EXPECT_EQ(spec->find("selector")
                ->find("matchLabels")
                ->find("batch.kubernetes.io/controller-uid")
                ->text(),
            uid);
  const api::Value* labels = spec->find("template")->find("metadata")->find("labels");
  EXPECT_EQ(labels->find("controller-uid")->text(), uid);
  EXPECT_EQ(labels->find("batch.kubernetes.io/job-name")->text(), "pi");
  EXPECT_EQ(spec->find("backoffLimit")->asInt(), 6);

  auto [pod_status, pod] = call(http::verb::post, "/api/v1/namespaces/default/pods",
                                R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},)"
                                R"("spec":{"containers":[{"name":"c","image":"busybox:1.36"}]}})");
  ASSERT_EQ(pod_status, 201) << api::writeJson(pod);
  EXPECT_EQ(pod.find("status")->find("phase")->text(), "Pending");
  EXPECT_EQ(pod.find("status")->find("qosClass")->text(), "BestEffort");
  EXPECT_EQ(pod.find("spec")->find("containers")->items()[0].find("imagePullPolicy")->text(),
            "IfNotPresent");
}

}  // namespace
}  // namespace skiff::apiserver
