// lbServicesFromManifests: the manifests -> services step of `skiff lb apply`, with the errors
// that keep a bad file from being applied at all.

#include "control/cli/lb_apply.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace skiff::cli {
namespace {

constexpr const char* kService = R"(apiVersion: v1
kind: Service
metadata: {name: web, namespace: lb}
spec:
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
)";

constexpr const char* kSlice = R"(apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: lb
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
- addresses: [10.0.0.1]
- addresses: [10.0.0.2]
  conditions: {ready: false}
)";

class LbApplyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("skiff-lb-apply-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  dataplane::Result<std::vector<dataplane::Service>> fromText(const std::string& text) {
    const std::string path = (dir_ / "lb.yaml").string();
    std::ofstream(path) << text;
    return lbServicesFromManifests(loadManifestObjects({.files = {path}}));
  }

  std::filesystem::path dir_;
};

TEST_F(LbApplyTest, ServiceWithItsSliceBecomesOneServicePerPort) {
  auto got = fromText(std::string(kService) + "---\n" + kSlice);
  ASSERT_TRUE(got.ok()) << got.message();
  ASSERT_EQ(got->size(), 1U);
  const dataplane::Service& s = (*got)[0];
  EXPECT_EQ(s.id, "lb/web:http");
  ASSERT_EQ(s.frontends.size(), 1U);
  EXPECT_EQ(s.frontends[0].key.port, 80);
  ASSERT_EQ(s.backends.size(), 2U);
  EXPECT_EQ(s.backends[0].port, 8080);
  EXPECT_TRUE(s.backends[0].ready);
  EXPECT_FALSE(s.backends[1].ready);  // listed: its established flows keep going
}

TEST_F(LbApplyTest, ServiceWithoutSliceHasNoBackends) {
  auto got = fromText(kService);
  ASSERT_TRUE(got.ok()) << got.message();
  ASSERT_EQ(got->size(), 1U);
  EXPECT_TRUE((*got)[0].backends.empty());
}

TEST_F(LbApplyTest, OtherKindsAreRefusedWithTheirPlace) {
  auto got = fromText(std::string(kService) +
                      "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n");
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.message().find("lb.yaml:8:1: kind: ConfigMap"), std::string::npos) << got.message();
}

TEST_F(LbApplyTest, SliceWithoutItsServiceIsRefused) {
  auto got = fromText(kSlice);
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.message().find("lb.yaml:1:1: metadata.labels[\"kubernetes.io/service-name\"]"),
            std::string::npos)
      << got.message();
  EXPECT_NE(got.message().find("lb/web"), std::string::npos) << got.message();
}

TEST_F(LbApplyTest, SliceWithoutLabelIsRefused) {
  std::string slice = kSlice;
  slice.replace(slice.find("  labels:"), slice.find("addressType") - slice.find("  labels:"), "");
  auto got = fromText(std::string(kService) + "---\n" + slice);
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.message().find("names no service"), std::string::npos) << got.message();
}

TEST_F(LbApplyTest, BadClusterIpNamesFileAndField) {
  std::string service = kService;
  service.replace(service.find("10.96.0.10"), 10, "10.96.0.999");
  auto got = fromText(service);
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.message().find("lb.yaml:1:1:"), std::string::npos) << got.message();
  EXPECT_NE(got.message().find("clusterIP"), std::string::npos) << got.message();
}

TEST_F(LbApplyTest, UnparsableEndpointRefusesTheFile) {
  std::string slice = kSlice;
  slice.replace(slice.find("10.0.0.2"), 8, "10.0.0.x");
  auto got = fromText(std::string(kService) + "---\n" + slice);
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.message().find("10.0.0.x"), std::string::npos) << got.message();
}

TEST_F(LbApplyTest, TwoServicesOnOneFrontendAreRefused) {
  std::string other = kService;
  other.replace(other.find("name: web"), 9, "name: two");
  auto got = fromText(std::string(kService) + "---\n" + other);
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.message().find("10.96.0.10:80"), std::string::npos) << got.message();
}

TEST_F(LbApplyTest, SameServiceTwiceIsRefused) {
  auto got = fromText(std::string(kService) + "---\n" + kService);
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.message().find("twice"), std::string::npos) << got.message();
}

}  // namespace
}  // namespace skiff::cli
