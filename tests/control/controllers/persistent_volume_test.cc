#include "control/controllers/persistent_volume.h"

#include <gtest/gtest.h>

#include <map>

#include "control/controllers/local_path_provisioner.h"
#include "tests/control/controllers/builders.h"

namespace skiff::controllers {
namespace {

using namespace testing;  // NOLINT
using api::core::v1::Node;
using api::core::v1::PersistentVolume;
using api::core::v1::PersistentVolumeClaim;
using api::core::v1::Pod;
using api::storage::v1::StorageClass;

PersistentVolume pv(const std::string& name, const std::string& size,
                    const std::string& extra = "") {
  return fromYaml<PersistentVolume>(R"(
apiVersion: v1
kind: PersistentVolume
metadata: {name: )" + name + R"(, uid: uid-)" +
                                    name +
                                    R"(, labels: {tier: fast}}
spec:
  capacity: {storage: )" + size + R"(}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: manual
  volumeMode: Filesystem
  hostPath: {path: /data/)" + name +
                                    R"(}
)" + extra + R"(
status: {phase: Available}
)");
}

PersistentVolumeClaim pvc(const std::string& name, const std::string& size,
                          const std::string& cls = "manual") {
  return fromYaml<PersistentVolumeClaim>(R"(
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: )" + name + R"(, namespace: default, uid: uid-)" +
                                         name + R"(, resourceVersion: "7"}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: )" + size +
                                         R"(}}
  storageClassName: ")" + cls + R"("
  volumeMode: Filesystem
status: {phase: Pending}
)");
}

StorageClass storageClass(const std::string& name, const std::string& provisioner,
                          const std::string& mode) {
  StorageClass sc;
  sc.mutable_metadata()->set_name(name);
  sc.set_provisioner(provisioner);
  sc.set_volume_binding_mode(mode);
  sc.set_reclaim_policy("Delete");
  return sc;
}

Node node(const std::string& name) {
  Node n;
  n.mutable_metadata()->set_name(name);
  (*n.mutable_metadata()->mutable_labels())["kubernetes.io/hostname"] = name;
  return n;
}

std::string affinityTo(const std::string& host) {
  return R"(  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [)" +
         host + "]}]";
}

// ------------------------------------------------------------ findMatchingVolume

struct MatchCase {
  std::string name;
  std::function<PersistentVolumeClaim()> claim;
  std::vector<PersistentVolume> volumes;
  std::string want;  // "" = none
  const char* node = nullptr;
  bool delay = false;
};

class MatchTable : public ::testing::TestWithParam<MatchCase> {};

TEST_P(MatchTable, PicksTheVolume) {
  const MatchCase& c = GetParam();
  std::vector<const PersistentVolume*> volumes;
  for (const auto& v : c.volumes)
    volumes.push_back(&v);
  Node n;
  if (c.node != nullptr) n = node(c.node);
  PersistentVolumeClaim claim = c.claim();
  const PersistentVolume* got =
      findMatchingVolume(claim, volumes, c.node != nullptr ? &n : nullptr, c.delay);
  EXPECT_EQ(got == nullptr ? "" : got->metadata().name(), c.want);
}

PersistentVolume boundTo(PersistentVolume v, const std::string& claim, const std::string& uid) {
  auto* ref = v.mutable_spec()->mutable_claim_ref();
  ref->set_namespace_("default");
  ref->set_name(claim);
  ref->set_uid(uid);
  v.mutable_status()->set_phase(uid.empty() ? "Available" : "Bound");
  return v;
}

PersistentVolume withModes(PersistentVolume v, std::vector<std::string> modes) {
  v.mutable_spec()->clear_access_modes();
  for (const auto& m : modes)
    v.mutable_spec()->add_access_modes(m);
  return v;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MatchTable,
    ::testing::Values(
        MatchCase{"SmallestThatFits",
                  [] { return pvc("c", "2Gi"); },
                  {pv("big", "10Gi"), pv("small", "1Gi"), pv("fits", "5Gi"), pv("fits2", "3Gi")},
                  "fits2"},
        MatchCase{"ExactSize", [] { return pvc("c", "1Gi"); }, {pv("a", "1024Mi")}, "a"},
        MatchCase{"TooSmall", [] { return pvc("c", "2Gi"); }, {pv("a", "1Gi")}, ""},
        MatchCase{"OtherClass", [] { return pvc("c", "1Gi", "gold"); }, {pv("a", "1Gi")}, ""},
        MatchCase{"NoClassOnlyMatchesNoClass",
                  [] { return pvc("c", "1Gi", ""); },
                  {pv("a", "1Gi"),
                   [] {
                     auto v = pv("b", "5Gi");
                     v.mutable_spec()->set_storage_class_name("");
                     return v;
                   }()},
                  "b"},
        MatchCase{
            "AccessModesAreASubset",
            [] {
              auto c = pvc("c", "1Gi");
              c.mutable_spec()->add_access_modes("ReadOnlyMany");
              return c;
            },
            {pv("rwo", "1Gi"), withModes(pv("both", "2Gi"), {"ReadWriteOnce", "ReadOnlyMany"})},
            "both"},
        MatchCase{"VolumeModeMustMatch",
                  [] {
                    auto c = pvc("c", "1Gi");
                    c.mutable_spec()->set_volume_mode("Block");
                    return c;
                  },
                  {pv("a", "1Gi")},
                  ""},
        MatchCase{"SelectorOnLabels",
                  [] {
                    auto c = pvc("c", "1Gi");
                    (*c.mutable_spec()->mutable_selector()->mutable_match_labels())["tier"] =
                        "slow";
                    return c;
                  },
                  {pv("a", "1Gi"),
                   [] {
                     auto v = pv("b", "9Gi");
                     (*v.mutable_metadata()->mutable_labels())["tier"] = "slow";
                     return v;
                   }()},
                  "b"},
        MatchCase{"BoundElsewhereIsSkipped",
                  [] { return pvc("c", "1Gi"); },
                  {boundTo(pv("a", "1Gi"), "other", "uid-other"), pv("b", "2Gi")},
                  "b"},
        MatchCase{"NotAvailableIsSkipped",
                  [] { return pvc("c", "1Gi"); },
                  {[] {
                    auto v = pv("a", "1Gi");
                    v.mutable_status()->set_phase("Released");
                    return v;
                  }()},
                  ""},
        MatchCase{"PreBoundWinsOverSmaller",
                  [] { return pvc("c", "1Gi"); },
                  {pv("small", "1Gi"), boundTo(pv("mine", "8Gi"), "c", "")},
                  "mine"},
        MatchCase{"PreBoundTooSmallIsNotTaken",
                  [] { return pvc("c", "4Gi"); },
                  {boundTo(pv("mine", "1Gi"), "c", "")},
                  ""},
        MatchCase{"DelayedWithoutNodeTakesNothing",
                  [] { return pvc("c", "1Gi"); },
                  {pv("a", "1Gi")},
                  "",
                  nullptr,
                  true},
        MatchCase{
            "DelayedTakesTheNodesVolume",
            [] { return pvc("c", "1Gi"); },
            {pv("elsewhere", "1Gi", affinityTo("node-2")), pv("here", "2Gi", affinityTo("node-1"))},
            "here",
            "node-1",
            true}),
    [](const auto& case_info) { return case_info.param.name; });

// ------------------------------------------------------------ syncClaim

struct World {
  std::vector<PersistentVolume> volumes;
  std::vector<PersistentVolumeClaim> claims;
  std::vector<StorageClass> classes;
  std::vector<Node> nodes;
  std::vector<Pod> pods;

  VolumeWorld view() const {
    VolumeWorld w;
    for (const auto& v : volumes)
      w.volumes.push_back(&v);
    w.claim = [this](std::string_view ns, std::string_view name) -> const PersistentVolumeClaim* {
      for (const auto& c : claims) {
        if (c.metadata().namespace_() == ns && c.metadata().name() == name) return &c;
      }
      return nullptr;
    };
    w.storage_class = [this](std::string_view name) -> const StorageClass* {
      for (const auto& c : classes) {
        if (c.metadata().name() == name) return &c;
      }
      return nullptr;
    };
    w.node = [this](std::string_view name) -> const Node* {
      for (const auto& n : nodes) {
        if (n.metadata().name() == name) return &n;
      }
      return nullptr;
    };
    for (const auto& p : pods)
      w.pods.push_back(&p);
    return w;
  }
};

// "verb Kind/name" for each action.
std::vector<std::string> verbs(const VolumeSyncResult& r) {
  std::vector<std::string> out;
  for (const auto& a : r.actions)
    out.push_back(std::string(toString(a.verb)) + " " + a.type->kind + "/" + a.name);
  return out;
}

std::vector<std::string> reasons(const VolumeSyncResult& r) {
  std::vector<std::string> out;
  for (const auto& e : r.events)
    out.push_back(e.reason);
  return out;
}

template <class T>
const T& object(const VolumeSyncResult& r, size_t i) {
  return static_cast<const T&>(*r.actions.at(i).object);
}

Pod podUsing(const std::string& claim, const std::string& node_name, const std::string& phase) {
  Pod p = makePod({.name = "user", .phase = phase, .node = node_name});
  auto* v = p.mutable_spec()->add_volumes();
  v->set_name("data");
  v->mutable_persistent_volume_claim()->set_claim_name(claim);
  return p;
}

TEST(SyncClaimTest, BindsTheBestVolumeOnBothSides) {
  World world;
  world.volumes = {pv("a", "10Gi"), pv("b", "2Gi")};
  PersistentVolumeClaim claim = pvc("data", "1Gi");
  auto r = syncClaim(claim, world.view());
  ASSERT_EQ(verbs(r),
            (std::vector<std::string>{
                "update PersistentVolume/b", "update status PersistentVolume/b",
                "update PersistentVolumeClaim/data", "update status PersistentVolumeClaim/data"}));
  const auto& volume = object<PersistentVolume>(r, 0);
  EXPECT_EQ(volume.spec().claim_ref().name(), "data");
  EXPECT_EQ(volume.spec().claim_ref().namespace_(), "default");
  EXPECT_EQ(volume.spec().claim_ref().uid(), "uid-data");
  EXPECT_EQ(volume.spec().claim_ref().kind(), "PersistentVolumeClaim");
  EXPECT_EQ(volume.metadata().annotations().at(std::string(kAnnBoundByController)), "yes");
  EXPECT_EQ(object<PersistentVolume>(r, 1).status().phase(), "Bound");
  const auto& bound = object<PersistentVolumeClaim>(r, 2);
  EXPECT_EQ(bound.spec().volume_name(), "b");
  EXPECT_EQ(bound.metadata().annotations().at(std::string(kAnnBindCompleted)), "yes");
  EXPECT_EQ(bound.metadata().annotations().at(std::string(kAnnBoundByController)), "yes");
  const auto& status = object<PersistentVolumeClaim>(r, 3).status();
  EXPECT_EQ(status.phase(), "Bound");
  EXPECT_EQ(status.capacity().at("storage").string(), "2Gi");
  ASSERT_EQ(status.access_modes_size(), 1);
  EXPECT_EQ(status.access_modes(0), "ReadWriteOnce");
}

TEST(SyncClaimTest, ABoundPairWritesNothing) {
  World world;
  PersistentVolumeClaim claim = pvc("data", "1Gi");
  PersistentVolume volume = boundTo(pv("b", "2Gi"), "data", "uid-data");
  claim.mutable_spec()->set_volume_name("b");
  (*claim.mutable_metadata()->mutable_annotations())[std::string(kAnnBindCompleted)] = "yes";
  claim.mutable_status()->set_phase("Bound");
  *claim.mutable_status()->mutable_capacity() = volume.spec().capacity();
  *claim.mutable_status()->mutable_access_modes() = volume.spec().access_modes();
  world.volumes = {volume};
  EXPECT_TRUE(syncClaim(claim, world.view()).actions.empty());
  world.claims = {claim};
  EXPECT_TRUE(syncVolume(volume, world.view()).actions.empty());
}

TEST(SyncClaimTest, UserPreBoundClaimTakesItsVolumeWithoutTheControllerMark) {
  World world;
  world.volumes = {pv("small", "1Gi"), pv("named", "5Gi")};
  PersistentVolumeClaim claim = pvc("data", "1Gi");
  claim.mutable_spec()->set_volume_name("named");
  auto r = syncClaim(claim, world.view());
  ASSERT_EQ(r.actions.size(), 4u);
  EXPECT_EQ(r.actions[0].name, "named");
  // The claim chose the volume: only the volume says the controller bound it (its claimRef).
  EXPECT_FALSE(object<PersistentVolumeClaim>(r, 2).metadata().annotations().contains(
      std::string(kAnnBoundByController)));
}

TEST(SyncClaimTest, PreBoundToAVolumeOfAnotherClaimWaits) {
  World world;
  world.volumes = {boundTo(pv("taken", "5Gi"), "other", "uid-other")};
  PersistentVolumeClaim claim = pvc("data", "1Gi");
  claim.mutable_spec()->set_volume_name("taken");
  auto r = syncClaim(claim, world.view());
  EXPECT_TRUE(r.actions.empty());
  EXPECT_EQ(reasons(r), std::vector<std::string>{"FailedBinding"});
}

TEST(SyncClaimTest, WithoutVolumeAndProvisionerItStaysPending) {
  World world;
  world.volumes = {pv("small", "1Gi")};
  auto r = syncClaim(pvc("data", "5Gi", ""), world.view());
  EXPECT_TRUE(r.actions.empty());
  EXPECT_EQ(reasons(r), std::vector<std::string>{"FailedBinding"});
  // A class that does not exist is reported as Kubernetes' provisioning does.
  r = syncClaim(pvc("data", "5Gi", "manual"), world.view());
  EXPECT_TRUE(r.actions.empty());
  EXPECT_EQ(reasons(r), std::vector<std::string>{"ProvisioningFailed"});
}

TEST(SyncClaimTest, ImmediateClassWithProvisionerIsHandedToIt) {
  World world;
  world.classes = {storageClass("fast", "example.com/fast", "Immediate")};
  auto r = syncClaim(pvc("data", "5Gi", "fast"), world.view());
  ASSERT_EQ(verbs(r), std::vector<std::string>{"update PersistentVolumeClaim/data"});
  const auto& a = object<PersistentVolumeClaim>(r, 0).metadata().annotations();
  EXPECT_EQ(a.at(std::string(kAnnStorageProvisioner)), "example.com/fast");
  EXPECT_EQ(a.at(std::string(kAnnBetaStorageProvisioner)), "example.com/fast");
  EXPECT_EQ(reasons(r), std::vector<std::string>{"ExternalProvisioning"});
}

TEST(SyncClaimTest, WaitForFirstConsumerWaitsThenTakesTheScheduledPodsNode) {
  World world;
  world.classes = {storageClass("local-path", "skiff.io/local-path", "WaitForFirstConsumer")};
  world.volumes = {pv("a", "5Gi")};
  PersistentVolumeClaim claim = pvc("data", "1Gi", "local-path");
  auto r = syncClaim(claim, world.view());
  EXPECT_TRUE(r.actions.empty());
  EXPECT_EQ(reasons(r), std::vector<std::string>{"WaitForFirstConsumer"});
  // A pod that is not scheduled yet does not choose; one bound to node-3 does.
  world.pods = {podUsing("data", "", "Pending")};
  EXPECT_TRUE(syncClaim(claim, world.view()).actions.empty());
  world.pods.push_back(podUsing("data", "node-3", "Pending"));
  r = syncClaim(claim, world.view());
  ASSERT_EQ(verbs(r), std::vector<std::string>{"update PersistentVolumeClaim/data"});
  EXPECT_EQ(object<PersistentVolumeClaim>(r, 0).metadata().annotations().at(
                std::string(kAnnSelectedNode)),
            "node-3");
}

TEST(SyncClaimTest, SelectedNodeBindsOnlyThatNodesVolumesElseProvisions) {
  World world;
  world.classes = {storageClass("local", "skiff.io/local-path", "WaitForFirstConsumer")};
  world.nodes = {node("node-1"), node("node-2")};
  auto local = [](const std::string& name, const std::string& host) {
    auto v = pv(name, "5Gi", affinityTo(host));
    v.mutable_spec()->set_storage_class_name("local");
    return v;
  };
  world.volumes = {local("on-2", "node-2")};
  PersistentVolumeClaim claim = pvc("data", "1Gi", "local");
  (*claim.mutable_metadata()->mutable_annotations())[std::string(kAnnSelectedNode)] = "node-1";
  auto r = syncClaim(claim, world.view());
  ASSERT_EQ(verbs(r), std::vector<std::string>{"update PersistentVolumeClaim/data"});
  EXPECT_EQ(object<PersistentVolumeClaim>(r, 0).metadata().annotations().at(
                std::string(kAnnStorageProvisioner)),
            "skiff.io/local-path");
  world.volumes.push_back(local("on-1", "node-1"));
  r = syncClaim(claim, world.view());
  ASSERT_FALSE(r.actions.empty());
  EXPECT_EQ(r.actions[0].name, "on-1");
}

TEST(SyncClaimTest, BoundClaimWhoseVolumeVanishedIsLost) {
  World world;
  PersistentVolumeClaim claim = pvc("data", "1Gi");
  claim.mutable_spec()->set_volume_name("gone");
  (*claim.mutable_metadata()->mutable_annotations())[std::string(kAnnBindCompleted)] = "yes";
  claim.mutable_status()->set_phase("Bound");
  auto r = syncClaim(claim, world.view());
  ASSERT_EQ(verbs(r), std::vector<std::string>{"update status PersistentVolumeClaim/data"});
  EXPECT_EQ(object<PersistentVolumeClaim>(r, 0).status().phase(), "Lost");
  EXPECT_EQ(reasons(r), std::vector<std::string>{"ClaimLost"});
}

TEST(ProtectionTest, ClaimFinalizerStaysWhileARunningPodUsesIt) {
  World world;
  PersistentVolumeClaim claim = pvc("data", "1Gi");
  claim.mutable_metadata()->add_finalizers(std::string(kPvcProtectionFinalizer));
  setTime(*claim.mutable_metadata()->mutable_deletion_timestamp(), kNow);
  world.pods = {podUsing("data", "node-1", "Running")};
  EXPECT_TRUE(syncClaim(claim, world.view()).actions.empty());
  world.pods = {podUsing("data", "node-1", "Succeeded"), podUsing("other", "node-1", "Running")};
  auto r = syncClaim(claim, world.view());
  ASSERT_EQ(verbs(r), std::vector<std::string>{"update PersistentVolumeClaim/data"});
  EXPECT_EQ(object<PersistentVolumeClaim>(r, 0).metadata().finalizers_size(), 0);
}

TEST(ProtectionTest, VolumeFinalizerStaysWhileBound) {
  World world;
  PersistentVolume volume = boundTo(pv("a", "1Gi"), "data", "uid-data");
  volume.mutable_metadata()->add_finalizers(std::string(kPvProtectionFinalizer));
  setTime(*volume.mutable_metadata()->mutable_deletion_timestamp(), kNow);
  PersistentVolumeClaim claim = pvc("data", "1Gi");
  claim.mutable_spec()->set_volume_name("a");
  world.claims = {claim};
  EXPECT_TRUE(syncVolume(volume, world.view()).actions.empty());
  // Its claim gone, it is Released first, then the finalizer goes.
  world.claims.clear();
  auto released = syncVolume(volume, world.view());
  ASSERT_EQ(verbs(released), std::vector<std::string>{"update status PersistentVolume/a"});
  EXPECT_EQ(object<PersistentVolume>(released, 0).status().phase(), "Released");
  volume.mutable_status()->set_phase("Released");
  auto r = syncVolume(volume, world.view());
  ASSERT_EQ(verbs(r), std::vector<std::string>{"update PersistentVolume/a"});
  EXPECT_EQ(object<PersistentVolume>(r, 0).metadata().finalizers_size(), 0);
}

// ------------------------------------------------------------ syncVolume

struct VolumeCase {
  std::string name;
  std::function<PersistentVolume()> volume;
  std::vector<PersistentVolumeClaim> claims;
  std::vector<std::string> verbs;
  std::string phase;  // of the last status write ("" = none)
  std::vector<std::string> reasons;
};

class VolumeTable : public ::testing::TestWithParam<VolumeCase> {};

TEST_P(VolumeTable, Syncs) {
  const VolumeCase& c = GetParam();
  World world;
  world.claims = c.claims;
  PersistentVolume volume = c.volume();
  auto r = syncVolume(volume, world.view());
  EXPECT_EQ(verbs(r), c.verbs);
  std::string phase;
  for (const auto& a : r.actions) {
    if (a.verb == Action::Verb::kUpdateStatus)
      phase = static_cast<const PersistentVolume&>(*a.object).status().phase();
  }
  EXPECT_EQ(phase, c.phase);
  EXPECT_EQ(reasons(r), c.reasons);
}

PersistentVolume released(std::string policy, bool provisioned = false) {
  auto v = boundTo(pv("a", "1Gi"), "data", "uid-data");
  v.mutable_spec()->set_persistent_volume_reclaim_policy(policy);
  if (provisioned)
    (*v.mutable_metadata()->mutable_annotations())[std::string(kAnnProvisionedBy)] = "x.io/p";
  return v;
}

PersistentVolumeClaim boundClaim(const std::string& volume) {
  auto c = pvc("data", "1Gi");
  c.mutable_spec()->set_volume_name(volume);
  return c;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, VolumeTable,
    ::testing::Values(
        VolumeCase{"NewVolumeBecomesAvailable",
                   [] {
                     auto v = pv("a", "1Gi");
                     v.mutable_status()->set_phase("Pending");
                     return v;
                   },
                   {},
                   {"update status PersistentVolume/a"},
                   "Available",
                   {}},
        VolumeCase{"AvailableStaysAvailable", [] { return pv("a", "1Gi"); }, {}, {}, "", {}},
        VolumeCase{"ClaimGoneRetainIsReleased",
                   [] { return released("Retain"); },
                   {},
                   {"update status PersistentVolume/a"},
                   "Released",
                   {}},
        VolumeCase{"ClaimRecreatedWithAnotherUidIsReleased",
                   [] { return released("Retain"); },
                   {[] {
                     auto c = pvc("data", "1Gi");
                     c.mutable_metadata()->set_uid("uid-new");
                     return c;
                   }()},
                   {"update status PersistentVolume/a"},
                   "Released",
                   {}},
        VolumeCase{"ReleasedRetainStays",
                   [] {
                     auto v = released("Retain");
                     v.mutable_status()->set_phase("Released");
                     return v;
                   },
                   {},
                   {},
                   "",
                   {}},
        VolumeCase{"StaticDeleteFails",
                   [] { return released("Delete"); },
                   {},
                   {"update status PersistentVolume/a"},
                   "Failed",
                   {"VolumeFailedDelete"}},
        VolumeCase{"ProvisionedDeleteWaitsForItsProvisioner",
                   [] { return released("Delete", true); },
                   {},
                   {"update status PersistentVolume/a"},
                   "Released",
                   {"ExternalDeleting"}},
        VolumeCase{"RecycleFails",
                   [] { return released("Recycle"); },
                   {},
                   {"update status PersistentVolume/a"},
                   "Failed",
                   {"VolumeFailedRecycle"}},
        VolumeCase{"BoundClaimMakesItBound",
                   [] {
                     auto v = released("Retain");
                     v.mutable_status()->set_phase("Available");
                     return v;
                   },
                   {boundClaim("a")},
                   {"update status PersistentVolume/a"},
                   "Bound",
                   {}},
        VolumeCase{"ClaimBindingIsLeftToSyncClaim",
                   [] { return released("Retain"); },
                   {boundClaim("")},
                   {},
                   "",
                   {}},
        VolumeCase{
            "ClaimTookAnotherVolumeUnbindsOurs",
            [] {
              auto v = released("Retain");
              (*v.mutable_metadata()->mutable_annotations())[std::string(kAnnBoundByController)] =
                  "yes";
              return v;
            },
            {boundClaim("other")},
            {"update PersistentVolume/a", "update status PersistentVolume/a"},
            "Available",
            {}},
        VolumeCase{"ClaimTookAnotherVolumeLeavesAUserBinding",
                   [] { return released("Retain"); },
                   {boundClaim("other")},
                   {},
                   "",
                   {}}),
    [](const auto& case_info) { return case_info.param.name; });

// ------------------------------------------------------------ the local-path provisioner

TEST(LocalPathTest, ProvisionsOnTheSelectedNodeUnderItsStorageDir) {
  StorageClass sc = localPathStorageClass();
  PersistentVolumeClaim claim = pvc("data", "3Gi", "local-path");
  auto& a = *claim.mutable_metadata()->mutable_annotations();
  a[std::string(kAnnStorageProvisioner)] = "skiff.io/local-path";
  // Not for a node yet: nothing (WaitForFirstConsumer).
  Provisioning p = provisionLocalPath(claim, &sc, nullptr, false);
  EXPECT_FALSE(p.volume.has_value());
  EXPECT_TRUE(p.event_reason.empty());
  a[std::string(kAnnSelectedNode)] = "node-1";
  Node n = node("node-1");
  (*n.mutable_metadata()->mutable_labels())["kubernetes.io/hostname"] = "host-1";
  (*n.mutable_metadata()->mutable_annotations())[std::string(kLocalStorageDirAnnotation)] =
      "/srv/volumes/";
  p = provisionLocalPath(claim, &sc, &n, false);
  ASSERT_TRUE(p.volume.has_value());
  const PersistentVolume& v = *p.volume;
  EXPECT_EQ(v.metadata().name(), "pvc-uid-data");
  EXPECT_EQ(v.spec().local().path(), "/srv/volumes/pvc-uid-data_default_data");
  EXPECT_EQ(v.spec().capacity().at("storage").string(), "3Gi");
  EXPECT_EQ(v.spec().persistent_volume_reclaim_policy(), "Delete");
  EXPECT_EQ(v.spec().storage_class_name(), "local-path");
  EXPECT_EQ(v.spec().claim_ref().uid(), "uid-data");
  EXPECT_EQ(v.metadata().annotations().at(std::string(kAnnProvisionedBy)), "skiff.io/local-path");
  const auto& term = v.spec().node_affinity().required().node_selector_terms(0);
  EXPECT_EQ(term.match_expressions(0).key(), "kubernetes.io/hostname");
  EXPECT_EQ(term.match_expressions(0).values(0), "host-1");
  // The binder binds it: pre-bound to the claim, it matches the node it was made for.
  std::vector<const PersistentVolume*> volumes = {&v};
  EXPECT_EQ(findMatchingVolume(claim, volumes, &n, true), &v);
  Node other = node("node-2");
  EXPECT_EQ(findMatchingVolume(claim, volumes, &other, true), nullptr);
  // Once there, it is not made again.
  EXPECT_FALSE(provisionLocalPath(claim, &sc, &n, true).volume.has_value());
}

TEST(LocalPathTest, RefusesWhatItCannotServe) {
  StorageClass sc = localPathStorageClass();
  sc.set_volume_binding_mode("Immediate");
  PersistentVolumeClaim claim = pvc("data", "1Gi", "local-path");
  (*claim.mutable_metadata()->mutable_annotations())[std::string(kAnnStorageProvisioner)] =
      "skiff.io/local-path";
  EXPECT_EQ(provisionLocalPath(claim, &sc, nullptr, false).event_reason, "ProvisioningFailed");
  sc = localPathStorageClass();
  (*claim.mutable_metadata()->mutable_annotations())[std::string(kAnnSelectedNode)] = "node-1";
  claim.mutable_spec()->add_access_modes("ReadWriteMany");
  Provisioning p = provisionLocalPath(claim, &sc, nullptr, false);
  EXPECT_FALSE(p.volume.has_value());
  EXPECT_EQ(p.event_reason, "ProvisioningFailed");
  // Another provisioner's claim is not ours.
  PersistentVolumeClaim foreign = pvc("x", "1Gi", "local-path");
  (*foreign.mutable_metadata()->mutable_annotations())[std::string(kAnnStorageProvisioner)] =
      "example.com/other";
  (*foreign.mutable_metadata()->mutable_annotations())[std::string(kAnnSelectedNode)] = "node-1";
  p = provisionLocalPath(foreign, &sc, nullptr, false);
  EXPECT_FALSE(p.volume.has_value());
  EXPECT_TRUE(p.event_reason.empty());
}

TEST(LocalPathTest, DeletesOnlyItsOwnReleasedDeleteVolumes) {
  PersistentVolume v = pv("a", "1Gi");
  v.mutable_status()->set_phase("Released");
  v.mutable_spec()->set_persistent_volume_reclaim_policy("Delete");
  EXPECT_FALSE(deletesLocalPathVolume(v));
  (*v.mutable_metadata()->mutable_annotations())[std::string(kAnnProvisionedBy)] =
      "skiff.io/local-path";
  EXPECT_TRUE(deletesLocalPathVolume(v));
  v.mutable_spec()->set_persistent_volume_reclaim_policy("Retain");
  EXPECT_FALSE(deletesLocalPathVolume(v));
}

}  // namespace
}  // namespace skiff::controllers
