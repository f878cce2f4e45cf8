#include "control/controllers/garbage_collector.h"

#include <gtest/gtest.h>

#include "tests/control/controllers/builders.h"

namespace skiff::controllers {
namespace {

using namespace testing;  // NOLINT
using api::apps::v1::ReplicaSet;
using api::core::v1::Pod;
using api::meta::v1::OwnerReference;
using State = GcOwner::State;

OwnerReference ref(const std::string& uid, bool block = true) {
  OwnerReference r;
  r.set_api_version("apps/v1");
  r.set_kind("ReplicaSet");
  r.set_name("rs-" + uid);
  r.set_uid(uid);
  r.set_controller(true);
  r.set_block_owner_deletion(block);
  return r;
}

Pod podOwnedBy(const std::string& name, const std::vector<OwnerReference>& refs) {
  Pod pod = makePod({.name = name});
  for (const auto& r : refs)
    *pod.mutable_metadata()->add_owner_references() = r;
  return pod;
}

ReplicaSet deletingOwner(const std::string& finalizer) {
  ReplicaSet rs = makeReplicaSet(3);
  rs.mutable_metadata()->set_uid("owner");
  setTime(*rs.mutable_metadata()->mutable_deletion_timestamp(), kNow);
  rs.mutable_metadata()->add_finalizers(finalizer);
  return rs;
}

GcResult run(const google::protobuf::Message& object, std::vector<GcOwner> owners,
             const std::vector<const Pod*>& dependents = {}) {
  GcInput in;
  in.type = object.GetDescriptor() == Pod::descriptor() ? &typeOf<Pod>() : &typeOf<ReplicaSet>();
  in.object = &object;
  in.owners = std::move(owners);
  for (const auto* d : dependents)
    in.dependents.push_back({&typeOf<Pod>(), d});
  return reconcileGarbage(in);
}

TEST(GarbageCollector, DependentOfAGoneOwnerIsDeletedInTheBackground) {
  Pod pod = podOwnedBy("p", {ref("a")});
  auto r = run(pod, {{ref("a"), State::kAbsent}});
  ASSERT_EQ(r.actions.size(), 1u);
  EXPECT_EQ(r.actions[0].verb, Action::Verb::kDelete);
  EXPECT_EQ(r.actions[0].name, "p");
  EXPECT_EQ(r.actions[0].precondition_uid, "uid-p");
  EXPECT_EQ(r.actions[0].propagation_policy, "Background");
  ASSERT_EQ(r.verify_absent.size(), 1u);
  EXPECT_EQ(r.verify_absent[0].uid(), "a");
}

TEST(GarbageCollector, TableOfOwnerStates) {
  struct Case {
    std::string name;
    std::vector<std::pair<std::string, State>> owners;
    std::vector<std::string> finalizers;
    enum Dependents { kNone, kOne, kOneWaiting } dependents;
    std::vector<Action::Verb> verbs;
    std::string policy;                  // of the delete
    std::vector<std::string> refs_left;  // on the update
  };
  const Case cases[] = {
      {"no owners", {}, {}, Case::kNone, {}, "", {}},
      {"owner present", {{"a", State::kPresent}}, {}, Case::kNone, {}, "", {}},
      {"owner kind unknown", {{"a", State::kUnknown}}, {}, Case::kNone, {}, "", {}},
      {"one of two gone",
       {{"a", State::kPresent}, {"b", State::kAbsent}},
       {},
       Case::kNone,
       {Action::Verb::kUpdate},
       "",
       {"a"}},
      {"one gone, one waiting, one present",
       {{"a", State::kAbsent}, {"b", State::kDeletingForeground}, {"c", State::kPresent}},
       {},
       Case::kNone,
       {Action::Verb::kUpdate},
       "",
       {"c"}},
      {"all gone",
       {{"a", State::kAbsent}, {"b", State::kAbsent}},
       {},
       Case::kNone,
       {Action::Verb::kDelete},
       "Background",
       {}},
      {"owner waits, no dependents of its own",
       {{"a", State::kDeletingForeground}},
       {},
       Case::kNone,
       {Action::Verb::kDelete},
       "Background",
       {}},
      {"owner waits, has dependents: foreground, still blocking the owner",
       {{"a", State::kDeletingForeground}},
       {},
       Case::kOne,
       {Action::Verb::kDelete},
       "Foreground",
       {}},
      {"owner waits, a dependent waits too (a possible cycle): unblock, then foreground",
       {{"a", State::kDeletingForeground}},
       {},
       Case::kOneWaiting,
       {Action::Verb::kUpdate, Action::Verb::kDelete},
       "Foreground",
       {"a"}},
      {"own orphan finalizer kept",
       {{"a", State::kAbsent}},
       {"orphan"},
       Case::kNone,
       {Action::Verb::kDelete},
       "Orphan",
       {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<OwnerReference> refs;
    std::vector<GcOwner> owners;
    for (const auto& [uid, state] : c.owners) {
      refs.push_back(ref(uid));
      owners.push_back({ref(uid), state});
    }
    Pod pod = podOwnedBy("p", refs);
    for (const auto& f : c.finalizers)
      pod.mutable_metadata()->add_finalizers(f);
    Pod child = podOwnedBy("child", {});
    if (c.dependents == Case::kOneWaiting) {
      setTime(*child.mutable_metadata()->mutable_deletion_timestamp(), kNow);
      child.mutable_metadata()->add_finalizers("foregroundDeletion");
    }
    std::vector<const Pod*> deps;
    if (c.dependents != Case::kNone) deps.push_back(&child);
    auto r = run(pod, owners, deps);
    ASSERT_EQ(r.actions.size(), c.verbs.size());
    for (size_t i = 0; i < c.verbs.size(); ++i) {
      EXPECT_EQ(r.actions[i].verb, c.verbs[i]);
      if (c.verbs[i] == Action::Verb::kDelete) {
        EXPECT_EQ(r.actions[i].propagation_policy, c.policy);
      }
      if (c.verbs[i] == Action::Verb::kUpdate) {
        const auto& m = static_cast<const Pod&>(*r.actions[i].object).metadata();
        std::vector<std::string> left;
        for (const auto& o : m.owner_references())
          left.push_back(o.uid());
        EXPECT_EQ(left, c.refs_left);
        for (const auto& o : m.owner_references()) {
          if (c.policy == "Foreground") {
            EXPECT_FALSE(o.block_owner_deletion());
          }
        }
      }
    }
  }
}

TEST(GarbageCollector, OrphanStripsReferencesThenTheFinalizer) {
  ReplicaSet owner = deletingOwner("orphan");
  Pod a = podOwnedBy("a", {ref("owner"), ref("other")});
  Pod b = podOwnedBy("b", {ref("owner")});
  auto r = run(owner, {}, {&a, &b});
  ASSERT_EQ(r.actions.size(), 3u);
  const auto& ma = static_cast<const Pod&>(*r.actions[0].object).metadata();
  ASSERT_EQ(ma.owner_references_size(), 1);
  EXPECT_EQ(ma.owner_references(0).uid(), "other");
  EXPECT_EQ(static_cast<const Pod&>(*r.actions[1].object).metadata().owner_references_size(), 0);
  const auto& mo = static_cast<const ReplicaSet&>(*r.actions[2].object).metadata();
  EXPECT_EQ(r.actions[2].verb, Action::Verb::kUpdate);
  EXPECT_EQ(mo.finalizers_size(), 0);
  EXPECT_EQ(r.actions[2].type->kind, "ReplicaSet");
}

TEST(GarbageCollector, ForegroundWaitsForBlockingDependents) {
  ReplicaSet owner = deletingOwner("foregroundDeletion");
  owner.mutable_metadata()->add_finalizers("example.com/keep");
  Pod blocking = podOwnedBy("a", {ref("owner", true)});
  Pod loose = podOwnedBy("b", {ref("owner", false)});
  EXPECT_TRUE(run(owner, {}, {&blocking, &loose}).actions.empty());
  auto r = run(owner, {}, {&loose});
  ASSERT_EQ(r.actions.size(), 1u);
  const auto& m = static_cast<const ReplicaSet&>(*r.actions[0].object).metadata();
  ASSERT_EQ(m.finalizers_size(), 1);
  EXPECT_EQ(m.finalizers(0), "example.com/keep");
}

TEST(GarbageCollector, SomeoneElsesDeletionIsLeftAlone) {
  Pod pod = podOwnedBy("p", {ref("a")});
  setTime(*pod.mutable_metadata()->mutable_deletion_timestamp(), kNow);
  EXPECT_TRUE(run(pod, {{ref("a"), State::kAbsent}}).actions.empty());
}

}  // namespace
}  // namespace skiff::controllers
