// VolumeBinding as a table: what a pod's claims allow, over fake lookups of claims, volumes and
// classes.
#include "scheduler/plugins/volume_binding.h"

#include <gtest/gtest.h>

#include <map>

#include "control/api/codec.h"
#include "tests/scheduler/test_objects.h"

namespace skiff::scheduler::plugins {
namespace {

using api::core::v1::PersistentVolume;
using api::core::v1::PersistentVolumeClaim;
using api::storage::v1::StorageClass;
using testing::NodeBuilder;
using testing::PodBuilder;

template <class T>
T fromYaml(const std::string& yaml) {
  T out;
  api::decodeYaml(yaml, out);
  return out;
}

class VolumeBindingTest : public ::testing::Test {
 protected:
  VolumeBindingTest() {
    claims_["bound"] = fromYaml<PersistentVolumeClaim>(
        "metadata: {name: bound, namespace: default}\nspec: {volumeName: pv-a}");
    claims_["free"] = fromYaml<PersistentVolumeClaim>(
        "metadata: {name: free, namespace: default}\nspec: {volumeName: pv-any}");
    claims_["late"] = fromYaml<PersistentVolumeClaim>(
        "metadata: {name: late, namespace: default}\nspec: {storageClassName: local-path}");
    claims_["now"] = fromYaml<PersistentVolumeClaim>(
        "metadata: {name: now, namespace: default}\nspec: {storageClassName: manual}");
    claims_["lost"] = fromYaml<PersistentVolumeClaim>(
        "metadata: {name: lost, namespace: default}\nspec: {volumeName: pv-gone}");
    claims_["going"] = fromYaml<PersistentVolumeClaim>(
        "metadata: {name: going, namespace: default, deletionTimestamp: "
        "\"2026-12-03T10:00:00Z\"}\nspec: {volumeName: pv-a}");
    volumes_["pv-a"] = fromYaml<PersistentVolume>(R"(
metadata: {name: pv-a}
spec:
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [node-a]}]
)");
    volumes_["pv-any"] = fromYaml<PersistentVolume>("metadata: {name: pv-any}");
    classes_["local-path"] = fromYaml<StorageClass>(
        "metadata: {name: local-path}\nvolumeBindingMode: WaitForFirstConsumer");
    classes_["manual"] =
        fromYaml<StorageClass>("metadata: {name: manual}\nvolumeBindingMode: Immediate");
    VolumeLookups lookups;
    lookups.claim = [this](std::string_view, std::string_view name) {
      auto it = claims_.find(std::string(name));
      return it == claims_.end() ? nullptr
                                 : std::make_shared<const PersistentVolumeClaim>(it->second);
    };
    lookups.volume = [this](std::string_view name) {
      auto it = volumes_.find(std::string(name));
      return it == volumes_.end() ? nullptr : std::make_shared<const PersistentVolume>(it->second);
    };
    lookups.storage_class = [this](std::string_view name) {
      auto it = classes_.find(std::string(name));
      return it == classes_.end() ? nullptr : std::make_shared<const StorageClass>(it->second);
    };
    plugin_ = std::make_unique<VolumeBinding>(std::move(lookups));
  }

  // PreFilter then Filter on `node` for a pod mounting `claims`.
  Status run(const std::vector<std::string>& claims, const std::string& node) {
    PodBuilder builder("p");
    for (const auto& c : claims) {
      auto* v = builder.mut().mutable_spec()->add_volumes();
      v->set_name("v-" + c);
      v->mutable_persistent_volume_claim()->set_claim_name(c);
    }
    auto pod = PodInfo::make(builder.ptr());
    auto info = std::make_shared<NodeInfo>(NodeBuilder(node).ptr());
    Snapshot snap = Snapshot::fromNodes({info});
    CycleState state;
    Status s = plugin_->preFilter(state, *pod, snap);
    if (s.isSkip()) return {};
    if (!s.ok()) return s;
    return plugin_->filter(state, *pod, *info);
  }

  std::map<std::string, PersistentVolumeClaim> claims_;
  std::map<std::string, PersistentVolume> volumes_;
  std::map<std::string, StorageClass> classes_;
  std::unique_ptr<VolumeBinding> plugin_;
};

TEST_F(VolumeBindingTest, Table) {
  struct Case {
    const char* what;
    std::vector<std::string> claims;
    const char* node;
    Code code;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"no claims", {}, "node-b", Code::kSuccess, ""},
      {"bound volume on this node", {"bound"}, "node-a", Code::kSuccess, ""},
      {"bound volume elsewhere",
       {"bound"},
       "node-b",
       Code::kUnschedulableAndUnresolvable,
       "node(s) had volume node affinity conflict"},
      {"bound volume without affinity", {"free"}, "node-b", Code::kSuccess, ""},
      {"unbound WaitForFirstConsumer", {"late"}, "node-b", Code::kSuccess, ""},
      {"unbound Immediate",
       {"now"},
       "node-a",
       Code::kUnschedulableAndUnresolvable,
       "pod has unbound immediate PersistentVolumeClaims"},
      {"missing claim",
       {"nope"},
       "node-a",
       Code::kUnschedulableAndUnresolvable,
       "persistentvolumeclaim \"nope\" not found"},
      {"claim being deleted",
       {"going"},
       "node-a",
       Code::kUnschedulableAndUnresolvable,
       "persistentvolumeclaim \"going\" is being deleted"},
      {"volume missing",
       {"lost"},
       "node-a",
       Code::kUnschedulableAndUnresolvable,
       "pvc(s) bound to non-existent pv(s)"},
      {"every claim counts",
       {"late", "bound"},
       "node-b",
       Code::kUnschedulableAndUnresolvable,
       "node(s) had volume node affinity conflict"},
  };
  for (const auto& c : cases) {
    Status s = run(c.claims, c.node);
    EXPECT_EQ(s.code(), c.code) << c.what << ": " << s.message();
    EXPECT_EQ(s.message(), c.reason) << c.what;
  }
}

}  // namespace
}  // namespace skiff::scheduler::plugins
