#include "kubelet/runtime/container_spec.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "control/api/json.h"
#include "kubelet/runtime/oci_spec.h"

namespace skiff::kubelet {
namespace {

using Strings = std::vector<std::string>;

images::ImageConfig image(Strings entrypoint, Strings cmd) {
  images::ImageConfig c;
  c.entrypoint = std::move(entrypoint);
  c.cmd = std::move(cmd);
  c.env = {"PATH=/usr/bin:/bin", "IMAGE_ONLY=1", "SHARED=image"};
  c.working_dir = "/srv";
  return c;
}

core::Container container(Strings command, Strings args) {
  core::Container c;
  c.set_name("app");
  for (auto& s : command)
    c.add_command(s);
  for (auto& s : args)
    c.add_args(s);
  return c;
}

ContainerConfig apply(const core::Container& c, const images::ImageConfig& img,
                      const core::PodSpec& pod = {}, const std::string& rootfs = "/nonexistent") {
  ContainerConfig out;
  applyContainerSpec(pod, c, img, rootfs, "spec.containers[0]", out);
  return out;
}

TEST(ContainerSpecTest, CommandAndArgsMergeAsKubernetesDoes) {
  struct Case {
    Strings entrypoint, cmd, command, args, want;
  };
  const Case cases[] = {
      {{"/ep"}, {"cmd"}, {}, {}, {"/ep", "cmd"}},                    // image as is
      {{"/ep"}, {"cmd"}, {}, {"a1"}, {"/ep", "a1"}},                 // args replace Cmd
      {{"/ep"}, {"cmd"}, {"/c"}, {}, {"/c"}},                        // command drops both
      {{"/ep"}, {"cmd"}, {"/c"}, {"a1", "a2"}, {"/c", "a1", "a2"}},  // command + args
      {{}, {"/bin/sh"}, {}, {}, {"/bin/sh"}},                        // Cmd only
      {{}, {"/bin/sh"}, {}, {"x"}, {"x"}},                           // args replace Cmd
  };
  for (const auto& c : cases) {
    EXPECT_EQ(apply(container(c.command, c.args), image(c.entrypoint, c.cmd)).args, c.want);
  }
  EXPECT_THROW(apply(container({}, {}), image({}, {})), std::invalid_argument);
}

TEST(ContainerSpecTest, EnvAndExpansion) {
  core::Container c = container({"/bin/echo", "$(GREETING)", "$$(GREETING)", "$(UNKNOWN)"}, {});
  auto* e1 = c.add_env();
  e1->set_name("NAME");
  e1->set_value("world");
  auto* e2 = c.add_env();
  e2->set_name("GREETING");
  e2->set_value("hello $(NAME) $(LATER)");
  auto* e3 = c.add_env();
  e3->set_name("SHARED");
  e3->set_value("container");
  auto* e4 = c.add_env();
  e4->set_name("LATER");
  e4->set_value("x");
  const ContainerConfig out = apply(c, image({}, {"/bin/sh"}));
  EXPECT_EQ(out.args, (Strings{"/bin/echo", "hello world $(LATER)", "$(GREETING)", "$(UNKNOWN)"}));
  EXPECT_EQ(out.env, (Strings{"PATH=/usr/bin:/bin", "IMAGE_ONLY=1", "SHARED=container",
                              "NAME=world", "GREETING=hello world $(LATER)", "LATER=x"}));
  EXPECT_EQ(out.cwd, "/srv");
  c.set_working_dir("/work");
  EXPECT_EQ(apply(c, image({}, {"/bin/sh"})).cwd, "/work");
  c.set_working_dir("relative");
  EXPECT_THROW(apply(c, image({}, {"/bin/sh"})), std::invalid_argument);
  EXPECT_EQ(expandVars("a$b$$c$(", {}), "a$b$c$(");
}

TEST(ContainerSpecTest, UsersFromSecurityContextAndImage) {
  const std::string rootfs = ::testing::TempDir() + "/spec-rootfs";
  std::filesystem::create_directories(rootfs + "/etc");
  std::ofstream(rootfs + "/etc/passwd")
      << "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/:/bin/sh\n";
  std::ofstream(rootfs + "/etc/group") << "root:x:0:\nstaff:x:50:\n";
  core::Container c = container({"/x"}, {});
  images::ImageConfig img = image({}, {});
  img.user = "app";
  ContainerConfig out = apply(c, img, {}, rootfs);
  EXPECT_EQ(out.uid, 1000u);
  EXPECT_EQ(out.gid, 1001u);
  img.user = "app:staff";
  EXPECT_EQ(apply(c, img, {}, rootfs).gid, 50u);
  img.user = "1234:5";
  out = apply(c, img, {}, rootfs);
  EXPECT_EQ(out.uid, 1234u);
  EXPECT_EQ(out.gid, 5u);
  img.user = "ghost";
  EXPECT_THROW(apply(c, img, {}, rootfs), std::invalid_argument);

  core::PodSpec pod;
  pod.mutable_security_context()->set_run_as_user(2000);
  pod.mutable_security_context()->add_supplemental_groups(7);
  img.user = "app";
  out = apply(c, img, pod, rootfs);
  EXPECT_EQ(out.uid, 2000u);
  EXPECT_EQ(out.additional_gids, std::vector<uint32_t>{7});
  c.mutable_security_context()->set_run_as_user(1000);
  c.mutable_security_context()->set_run_as_group(3);
  out = apply(c, img, pod, rootfs);
  EXPECT_EQ(out.uid, 1000u);
  EXPECT_EQ(out.gid, 3u);
  c.mutable_security_context()->set_run_as_user(0);
  c.mutable_security_context()->set_run_as_non_root(true);
  try {
    apply(c, img, pod, rootfs);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("spec.containers[0].securityContext.runAsNonRoot"),
              std::string::npos);
  }
}

TEST(ContainerSpecTest, ResourcesAndSecurityIntoTheRuntimeSpec) {
  core::Container c = container({"/x"}, {});
  (*c.mutable_resources()->mutable_limits())["cpu"].set_string("500m");
  (*c.mutable_resources()->mutable_limits())["memory"].set_string("64Mi");
  (*c.mutable_resources()->mutable_requests())["cpu"].set_string("250m");
  auto* sc = c.mutable_security_context();
  sc->set_read_only_root_filesystem(true);
  sc->set_allow_privilege_escalation(false);
  sc->mutable_capabilities()->add_drop("ALL");
  sc->mutable_capabilities()->add_add("NET_BIND_SERVICE");
  ContainerConfig out = apply(c, image({}, {}));
  EXPECT_EQ(out.resources.cpu_shares, 256u);
  EXPECT_EQ(out.resources.cpu_quota_us, 50000);
  EXPECT_EQ(out.resources.memory_limit, 64 << 20);
  out.id = "x";
  out.rootfs = "/r";
  const std::string spec = api::writeJson(makeRuntimeSpec(out));
  EXPECT_NE(spec.find(R"("readonly":true)"), std::string::npos);
  EXPECT_NE(spec.find(R"("noNewPrivileges":true)"), std::string::npos);
  EXPECT_NE(spec.find(R"("bounding":["CAP_NET_BIND_SERVICE"])"), std::string::npos) << spec;
  EXPECT_NE(spec.find(R"("memory":{"limit":67108864})"), std::string::npos);
  EXPECT_NE(spec.find(R"("cpu":{"shares":256,"quota":50000,"period":100000})"), std::string::npos);
  sc->mutable_capabilities()->add_add("NOT_A_CAP");
  out = apply(c, image({}, {}));
  out.rootfs = "/r";
  EXPECT_THROW(makeRuntimeSpec(out), std::invalid_argument);
}

}  // namespace
}  // namespace skiff::kubelet
