#include "control/apiserver/kubernetes_service.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "control/api/codec.h"
#include "control/apiserver/errors.h"
#include "control/store/sqlite_store.h"

namespace skiff::apiserver {
namespace {

namespace core = api::core::v1;
namespace discovery = api::discovery::v1;

constexpr const char* kService = "/api/v1/namespaces/default/services/kubernetes";
constexpr const char* kSlice =
    "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes";

class KubernetesServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("skiff-ksvc-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    store_ = store::SqliteStore::open({.path = (dir_ / "db").string(), .fsync = false});
    handler_ = std::make_unique<ApiHandler>(
        *store_, ApiHandlerOptions{.services = {.service_cidr = "10.96.0.0/16"}});
    handler_->ensureSystemNamespaces();
  }
  void TearDown() override {
    handler_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  KubernetesServiceOptions options(const std::string& address) {
    return {.cluster_ip = "10.96.0.1", .advertise_address = address, .secure_port = 6443};
  }

  // {status, body}; errors come back as their code.
  std::pair<int, std::string> call(const std::string& method, const std::string& path,
                                   const std::string& body = {}) {
    HttpRequest request;
    request.method = method;
    request.target = request.path = path;
    request.body = body;
    if (!body.empty()) request.headers.emplace_back("content-type", "application/json");
    HttpResponse response;
    try {
      handler_->handle(request, response, [](const HttpResponse&) -> ResponseStream& {
        throw std::logic_error("no streams here");
      });
    } catch (const ApiError& e) {
      return {e.code(), e.what()};
    }
    return {response.status, response.body};
  }
  template <class T>
  T get(const std::string& path) {
    auto [status, body] = call("GET", path);
    EXPECT_EQ(status, 200) << path << ": " << body;
    T out;
    api::decodeJson(body, out, {.unknown_fields = api::UnknownFields::kIgnore});
    return out;
  }
  std::vector<std::string> sliceAddresses() {
    std::vector<std::string> out;
    const auto slice = get<discovery::EndpointSlice>(kSlice);
    for (const auto& e : slice.endpoints())
      for (const auto& a : e.addresses())
        out.push_back(a);
    return out;
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<ApiHandler> handler_;
};

TEST_F(KubernetesServiceTest, MakesTheServiceAndTheEndpointSliceAsKubeApiserver) {
  KubernetesServiceController controller(*handler_, *store_, options("10.244.0.1"));
  controller.reconcileOnce();
  auto svc = get<core::Service>(kService);
  EXPECT_EQ(svc.spec().cluster_ip(), "10.96.0.1");
  EXPECT_EQ(svc.spec().type(), "ClusterIP");
  EXPECT_TRUE(svc.spec().selector().empty());
  ASSERT_EQ(svc.spec().ports_size(), 1);
  EXPECT_EQ(svc.spec().ports(0).name(), "https");
  EXPECT_EQ(svc.spec().ports(0).port(), 443);
  EXPECT_EQ(svc.spec().ports(0).protocol(), "TCP");
  EXPECT_EQ(svc.spec().ports(0).target_port().int_val(), 6443);
  EXPECT_EQ(svc.metadata().labels().at("component"), "apiserver");
  EXPECT_EQ(svc.metadata().labels().at("provider"), "kubernetes");

  auto slice = get<discovery::EndpointSlice>(kSlice);
  EXPECT_EQ(slice.metadata().labels().at("kubernetes.io/service-name"), "kubernetes");
  EXPECT_EQ(slice.metadata().labels().count("endpointslice.kubernetes.io/managed-by"), 0u);
  EXPECT_EQ(slice.address_type(), "IPv4");
  ASSERT_EQ(slice.endpoints_size(), 1);
  EXPECT_EQ(slice.endpoints(0).addresses(0), "10.244.0.1");
  EXPECT_TRUE(slice.endpoints(0).conditions().ready());
  ASSERT_EQ(slice.ports_size(), 1);
  EXPECT_EQ(slice.ports(0).name(), "https");
  EXPECT_EQ(slice.ports(0).port(), 6443);

  // A second pass with nothing changed writes nothing.
  const std::string rv = slice.metadata().resource_version();
  const std::string svc_rv = svc.metadata().resource_version();
  controller.reconcileOnce();
  EXPECT_EQ(get<discovery::EndpointSlice>(kSlice).metadata().resource_version(), rv);
  EXPECT_EQ(get<core::Service>(kService).metadata().resource_version(), svc_rv);
}

TEST_F(KubernetesServiceTest, RecreatesWhatWasDeletedAndRepairsWhatWasChanged) {
  KubernetesServiceController controller(*handler_, *store_, options("10.244.0.1"));
  controller.reconcileOnce();
  ASSERT_EQ(call("DELETE", kService).first, 200);
  ASSERT_EQ(call("DELETE", kSlice).first, 200);
  controller.reconcileOnce();
  EXPECT_EQ(get<core::Service>(kService).spec().cluster_ip(), "10.96.0.1");
  EXPECT_EQ(sliceAddresses(), std::vector<std::string>{"10.244.0.1"});

  // Someone changes the port, adds a selector, and points the slice elsewhere.
  auto svc = get<core::Service>(kService);
  svc.mutable_spec()->mutable_ports(0)->set_port(8443);
  (*svc.mutable_spec()->mutable_selector())["app"] = "evil";
  ASSERT_EQ(call("PUT", kService, api::encodeJson(svc)).first, 200);
  auto slice = get<discovery::EndpointSlice>(kSlice);
  slice.mutable_endpoints(0)->set_addresses(0, "192.0.2.66");
  slice.mutable_ports(0)->set_port(1);
  ASSERT_EQ(call("PUT", kSlice, api::encodeJson(slice)).first, 200);
  controller.reconcileOnce();
  svc = get<core::Service>(kService);
  EXPECT_EQ(svc.spec().ports(0).port(), 443);
  EXPECT_TRUE(svc.spec().selector().empty());
  EXPECT_EQ(sliceAddresses(), std::vector<std::string>{"10.244.0.1"});
  EXPECT_EQ(get<discovery::EndpointSlice>(kSlice).ports(0).port(), 6443);
}

TEST_F(KubernetesServiceTest, SeveralApiserversShareTheSliceAndLeaveItWhenTheyStop) {
  KubernetesServiceController a(*handler_, *store_, options("10.0.0.1"));
  KubernetesServiceController b(*handler_, *store_, options("10.0.0.2"));
  a.reconcileOnce();
  b.reconcileOnce();
  a.reconcileOnce();
  EXPECT_EQ(sliceAddresses(), (std::vector<std::string>{"10.0.0.1", "10.0.0.2"}));
  b.removeOwnAddress();
  EXPECT_EQ(sliceAddresses(), std::vector<std::string>{"10.0.0.1"});
  a.reconcileOnce();
  EXPECT_EQ(sliceAddresses(), std::vector<std::string>{"10.0.0.1"});
}

TEST_F(KubernetesServiceTest, ACrashedApiserverDropsOutWhenItsLeaseExpires) {
  KubernetesServiceController a(*handler_, *store_, options("10.0.0.1"));
  auto crashed_options = options("10.0.0.2");
  crashed_options.lease_ttl_seconds = 1;
  {
    KubernetesServiceController crashed(*handler_, *store_, crashed_options);
    crashed.reconcileOnce();  // never stopped: its key stays until the lease expires
  }
  a.reconcileOnce();
  EXPECT_EQ(sliceAddresses(), (std::vector<std::string>{"10.0.0.1", "10.0.0.2"}));
  for (int i = 0; i < 50 && store_->get(std::string(kMasterLeasePrefix) + "10.0.0.2:6443"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  a.reconcileOnce();
  EXPECT_EQ(sliceAddresses(), std::vector<std::string>{"10.0.0.1"});
}

TEST_F(KubernetesServiceTest, StartReconcilesAtOnceAndStopRemovesTheAddress) {
  auto o = options("10.244.0.1");
  o.interval = std::chrono::milliseconds(50);
  KubernetesServiceController controller(*handler_, *store_, o);
  controller.start();
  for (int i = 0; i < 100 && call("GET", kSlice).first != 200; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(sliceAddresses(), std::vector<std::string>{"10.244.0.1"});
  ASSERT_EQ(call("DELETE", kService).first, 200);
  for (int i = 0; i < 100 && call("GET", kService).first != 200; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(call("GET", kService).first, 200);
  controller.stop();
  EXPECT_TRUE(sliceAddresses().empty());
}

TEST_F(KubernetesServiceTest, ApiserversOnDifferentPortsAgreeOnOneAndStopRewriting) {
  auto first = options("127.0.0.1");
  first.secure_port = 7001;
  auto second = options("127.0.0.1");
  second.secure_port = 7002;
  KubernetesServiceController a(*handler_, *store_, second);
  KubernetesServiceController b(*handler_, *store_, first);
  a.reconcileOnce();
  b.reconcileOnce();
  a.reconcileOnce();
  auto slice = get<discovery::EndpointSlice>(kSlice);
  auto svc = get<core::Service>(kService);
  EXPECT_EQ(slice.ports(0).port(), 7001);  // the first key's
  EXPECT_EQ(svc.spec().ports(0).target_port().int_val(), 7001);
  EXPECT_EQ(sliceAddresses(), std::vector<std::string>{"127.0.0.1"});
  b.reconcileOnce();
  a.reconcileOnce();
  EXPECT_EQ(get<discovery::EndpointSlice>(kSlice).metadata().resource_version(),
            slice.metadata().resource_version());
  EXPECT_EQ(get<core::Service>(kService).metadata().resource_version(),
            svc.metadata().resource_version());
  // The one on 7001 stops: the other's port takes over.
  b.removeOwnAddress();
  a.reconcileOnce();
  EXPECT_EQ(get<discovery::EndpointSlice>(kSlice).ports(0).port(), 7002);
  EXPECT_EQ(get<core::Service>(kService).spec().ports(0).target_port().int_val(), 7002);
}

TEST(KubernetesServiceRepairTest, KeepsTheClusterIpAndOtherLabels) {
  KubernetesServiceOptions o{.cluster_ip = "10.96.0.1", .advertise_address = "10.0.0.1"};
  core::Service desired = desiredKubernetesService(o);
  core::Service existing = desired;
  EXPECT_FALSE(repairKubernetesService(existing, desired));
  existing.mutable_spec()->set_cluster_ip("10.96.0.9");
  (*existing.mutable_metadata()->mutable_labels())["extra"] = "kept";
  existing.mutable_spec()->set_type("NodePort");
  EXPECT_TRUE(repairKubernetesService(existing, desired));
  EXPECT_EQ(existing.spec().cluster_ip(), "10.96.0.9");
  EXPECT_EQ(existing.spec().type(), "ClusterIP");
  EXPECT_EQ(existing.metadata().labels().at("extra"), "kept");
}

}  // namespace
}  // namespace skiff::apiserver
