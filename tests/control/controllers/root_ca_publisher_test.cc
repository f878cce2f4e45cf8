// The root CA publisher: the pure decision (create, put back, leave alone, skip terminating
// namespaces) as a table, and the shell on hand-fed informers and a mock Client: a new namespace
// gets kube-root-ca.crt, a deleted one is made again, an edited one is put back.

#include "control/controllers/root_ca_publisher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "control/api/codec.h"
#include "tests/mocks/fake_informer.h"
#include "tests/mocks/mock_client.h"

namespace skiff::controllers {
namespace {

using api::core::v1::ConfigMap;
using api::core::v1::Namespace;
using client::testing::FakeInformer;
using client::testing::MockClient;
using ::testing::_;
using ::testing::Invoke;
using ::testing::NiceMock;

constexpr const char* kCa = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

Namespace ns(const std::string& yaml) {
  Namespace n;
  api::decodeYaml(yaml, n);
  return n;
}

ConfigMap configMap(const std::string& yaml) {
  ConfigMap cm;
  api::decodeYaml(yaml, cm);
  return cm;
}

TEST(RootCaConfigMapAction, Table) {
  const Namespace active = ns("metadata: {name: team}\nstatus: {phase: Active}\n");
  const std::string right =
      std::string(
          "metadata: {name: kube-root-ca.crt, namespace: team, resourceVersion: '5', "
          "annotations: {kubernetes.io/description: any text}}\ndata: {ca.crt: ") +
      "\"" + "-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n" + "\"}\n";
  struct Case {
    std::string name;
    Namespace ns;
    std::optional<ConfigMap> existing;
    std::string want;  // "none", "create", "update"
  } cases[] = {
      {"missing", active, std::nullopt, "create"},
      {"right", active, configMap(right), "none"},
      {"edited", active,
       configMap("metadata: {name: kube-root-ca.crt, namespace: team, resourceVersion: '5', "
                 "annotations: {kubernetes.io/description: d}}\ndata: {ca.crt: forged}\n"),
       "update"},
      {"extra key", active,
       configMap("metadata: {name: kube-root-ca.crt, namespace: team, resourceVersion: '5', "
                 "annotations: {kubernetes.io/description: d}}\ndata: {ca.crt: x, more: y}\n"),
       "update"},
      {"no description", active,
       configMap(std::string("metadata: {name: kube-root-ca.crt, namespace: team}\n") +
                 "data: {ca.crt: \"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END "
                 "CERTIFICATE-----\\n\"}\n"),
       "update"},
      {"terminating", ns("metadata: {name: team}\nstatus: {phase: Terminating}\n"), std::nullopt,
       "none"},
  };
  for (const auto& c : cases) {
    auto action = rootCaConfigMapAction(c.ns, c.existing ? &*c.existing : nullptr, kCa);
    const std::string got = !action ? "none" : action->create ? "create" : "update";
    ASSERT_EQ(got, c.want) << c.name;
    if (!action) continue;
    const ConfigMap& cm = action->config_map;
    EXPECT_EQ(cm.metadata().name(), "kube-root-ca.crt") << c.name;
    EXPECT_EQ(cm.metadata().namespace_(), "team") << c.name;
    ASSERT_EQ(cm.data_size(), 1) << c.name;
    EXPECT_EQ(cm.data().at("ca.crt"), kCa) << c.name;
    EXPECT_EQ(cm.metadata().annotations().at("kubernetes.io/description").substr(0, 30),
              "Contains a CA bundle that can ")
        << c.name;
    // An update is of the object read: its resourceVersion guards against lost writes.
    if (!action->create) {
      EXPECT_EQ(cm.metadata().resource_version(), c.existing->metadata().resource_version());
    }
  }
}

class RootCaPublisherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ON_CALL(client_, create(_, _, _, _))
        .WillByDefault(Invoke([this](const api::ResourceType& type, std::string_view ns,
                                     const api::Value& obj, const client::WriteOptions&) {
          EXPECT_EQ(type.plural, "configmaps");
          ConfigMap cm;
          api::decode(obj, cm);
          created_.push_back(std::string(ns) + "/" + cm.metadata().name());
          cm.mutable_metadata()->set_namespace_(std::string(ns));
          config_maps_.put(cm);
          return obj;
        }));
    ON_CALL(client_, update(_, _, _, _))
        .WillByDefault(Invoke([this](const api::ResourceType&, std::string_view ns,
                                     const api::Value& obj, const client::WriteOptions&) {
          ConfigMap cm;
          api::decode(obj, cm);
          updated_.push_back(std::string(ns) + "/" + cm.data().at("ca.crt"));
          config_maps_.put(cm);
          return obj;
        }));
  }

  NiceMock<MockClient> client_;
  FakeInformer namespaces_ = FakeInformer::of<Namespace>();
  FakeInformer config_maps_ = FakeInformer::of<ConfigMap>();
  std::vector<std::string> created_, updated_;
};

TEST_F(RootCaPublisherTest, EveryNamespaceGetsItAndItIsKeptRight) {
  RootCaPublisher publisher(client_, namespaces_, config_maps_, kCa);
  namespaces_.put(ns("metadata: {name: default}\nstatus: {phase: Active}\n"));
  namespaces_.put(ns("metadata: {name: team}\nstatus: {phase: Active}\n"));
  EXPECT_EQ(publisher.drain(), 2);
  EXPECT_EQ(publisher.errors(), 0u);
  EXPECT_EQ(created_,
            (std::vector<std::string>{"default/kube-root-ca.crt", "team/kube-root-ca.crt"}));
  EXPECT_EQ(publisher.drain(), 0);  // the creates seen by the informer change nothing

  // Deleted: made again.
  config_maps_.erase("team/kube-root-ca.crt");
  EXPECT_EQ(publisher.drain(), 1);
  ASSERT_EQ(created_.size(), 3u);
  EXPECT_EQ(created_[2], "team/kube-root-ca.crt");

  // Edited: put back. Other ConfigMaps are not its business.
  ConfigMap edited = *std::static_pointer_cast<const ConfigMap>(
      config_maps_.cache().get("team", "kube-root-ca.crt"));
  (*edited.mutable_data())["ca.crt"] = "forged";
  config_maps_.put(edited);
  config_maps_.put(configMap("metadata: {name: other, namespace: team}\ndata: {a: b}\n"));
  // The sync that puts it back, and one more for the update coming back through the informer.
  EXPECT_EQ(publisher.drain(), 2);
  EXPECT_EQ(updated_, (std::vector<std::string>{std::string("team/") + kCa}));
  EXPECT_EQ(publisher.drain(), 0);
}

TEST_F(RootCaPublisherTest, TerminatingOrGoneNamespacesAreLeftAlone) {
  RootCaPublisher publisher(client_, namespaces_, config_maps_, kCa);
  EXPECT_CALL(client_, create(_, "gone", _, _))
      .WillOnce(
          ::testing::Throw(client::ApiError(404, "NotFound", "namespaces \"gone\" not found")));
  namespaces_.put(ns("metadata: {name: doomed}\nstatus: {phase: Terminating}\n"));
  namespaces_.put(ns("metadata: {name: gone}\nstatus: {phase: Active}\n"));
  EXPECT_EQ(publisher.drain(), 2);
  EXPECT_EQ(publisher.errors(), 0u);
  EXPECT_TRUE(created_.empty());
}

}  // namespace
}  // namespace skiff::controllers
