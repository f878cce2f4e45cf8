// Pod update validation: which spec changes Kubernetes' ValidatePodUpdate allows.

#include "control/apiserver/pod_validation.h"

#include <gtest/gtest.h>

namespace skiff::apiserver {
namespace {

using api::core::v1::Pod;

Pod basePod() {
  Pod pod;
  pod.mutable_metadata()->set_name("web");
  auto* spec = pod.mutable_spec();
  auto* c = spec->add_containers();
  c->set_name("app");
  c->set_image("nginx:1.0");
  spec->add_volumes()->set_name("kube-api-access-abcde");
  spec->add_tolerations()->set_key("a");
  spec->set_active_deadline_seconds(100);
  spec->set_node_name("node-1");
  return pod;
}

bool forbidden(const Pod& old, const Pod& next) {
  for (const auto& c : podUpdateCauses(old, next))
    if (c.field == "spec" && c.detail.rfind("Forbidden: pod updates may not change fields", 0) == 0)
      return true;
  return false;
}

TEST(PodValidation, ImageChangeAllowed) {
  Pod old = basePod(), next = old;
  next.mutable_spec()->mutable_containers(0)->set_image("nginx:2.0");
  EXPECT_TRUE(podUpdateCauses(old, next).empty());
  EXPECT_NO_THROW(validatePodUpdate(old, next));
}

TEST(PodValidation, ContainerAddForbidden) {
  Pod old = basePod(), next = old;
  next.mutable_spec()->add_containers()->set_name("sidecar");
  EXPECT_TRUE(forbidden(old, next));
  EXPECT_THROW(validatePodUpdate(old, next), ApiError);
}

TEST(PodValidation, CommandChangeForbidden) {
  Pod old = basePod(), next = old;
  next.mutable_spec()->mutable_containers(0)->add_command("sleep");
  EXPECT_TRUE(forbidden(old, next));
}

TEST(PodValidation, VolumeRemovalForbidden) {
  Pod old = basePod(), next = old;
  next.mutable_spec()->clear_volumes();
  EXPECT_TRUE(forbidden(old, next));
}

TEST(PodValidation, TolerationAddAllowedRemoveForbidden) {
  Pod old = basePod(), next = old;
  next.mutable_spec()->add_tolerations()->set_key("b");
  EXPECT_TRUE(podUpdateCauses(old, next).empty());
  Pod removed = old;
  removed.mutable_spec()->clear_tolerations();
  EXPECT_TRUE(forbidden(old, removed));
}

TEST(PodValidation, ActiveDeadlineLowerAllowedRaiseForbidden) {
  Pod old = basePod(), lower = old, raise = old, unset = old;
  lower.mutable_spec()->set_active_deadline_seconds(50);
  EXPECT_TRUE(podUpdateCauses(old, lower).empty());
  raise.mutable_spec()->set_active_deadline_seconds(200);
  auto causes = podUpdateCauses(old, raise);
  ASSERT_EQ(causes.size(), 1u);
  EXPECT_EQ(causes[0].field, "spec.activeDeadlineSeconds");
  unset.mutable_spec()->clear_active_deadline_seconds();
  EXPECT_FALSE(podUpdateCauses(old, unset).empty());
}

TEST(PodValidation, NodeNameImmutable) {
  Pod old = basePod(), next = old;
  next.mutable_spec()->set_node_name("node-2");
  EXPECT_TRUE(forbidden(old, next));
}

}  // namespace
}  // namespace skiff::apiserver
