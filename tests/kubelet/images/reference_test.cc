#include "kubelet/images/reference.h"

#include <gtest/gtest.h>

#include "kubelet/images/digest.h"
#include "kubelet/images/image_store.h"

namespace skiff::kubelet::images {
namespace {

TEST(ReferenceTest, NormalizesLikeDocker) {
  struct Case {
    const char* in;
    const char* domain;
    const char* repository;
    const char* tag;
    const char* str;
  };
  const Case cases[] = {
      {"busybox", "docker.io", "library/busybox", "latest", "docker.io/library/busybox:latest"},
      {"busybox:1.35", "docker.io", "library/busybox", "1.35", "docker.io/library/busybox:1.35"},
      {"user/app", "docker.io", "user/app", "latest", "docker.io/user/app:latest"},
      {"index.docker.io/library/nginx:1", "docker.io", "library/nginx", "1",
       "docker.io/library/nginx:1"},
      {"127.0.0.1:5000/test/busybox:v1", "127.0.0.1:5000", "test/busybox", "v1",
       "127.0.0.1:5000/test/busybox:v1"},
      {"localhost/app", "localhost", "app", "latest", "localhost/app:latest"},
      {"ghcr.io/a/b/c:x-1_2.3", "ghcr.io", "a/b/c", "x-1_2.3", "ghcr.io/a/b/c:x-1_2.3"},
  };
  for (const auto& c : cases) {
    const Reference r = Reference::parse(c.in);
    EXPECT_EQ(r.domain, c.domain) << c.in;
    EXPECT_EQ(r.repository, c.repository) << c.in;
    EXPECT_EQ(r.tag, c.tag) << c.in;
    EXPECT_EQ(r.str(), c.str) << c.in;
  }
  EXPECT_EQ(Reference::parse("busybox").registryHost(), "registry-1.docker.io");
  EXPECT_EQ(Reference::parse("127.0.0.1:5000/x").registryHost(), "127.0.0.1:5000");
}

TEST(ReferenceTest, Digests) {
  const std::string d = "sha256:" + std::string(64, 'a');
  const Reference r = Reference::parse("busybox@" + d);
  EXPECT_EQ(r.tag, "");
  EXPECT_EQ(r.digest, d);
  EXPECT_EQ(r.str(), "docker.io/library/busybox@" + d);
  EXPECT_FALSE(r.isLatest());
  const Reference both = Reference::parse("busybox:1@" + d);
  EXPECT_EQ(both.str(), "docker.io/library/busybox:1@" + d);
}

TEST(ReferenceTest, RejectsWhatDockerRejects) {
  for (const char* bad : {"", "Busybox", "busybox:", "a//b", "-a/b", "a/b:-x", "busybox@sha256:12",
                          "busybox@md5:"
                          "0123456789abcdef0123456789abcdef",
                          "a b", "a/b..c"}) {
    EXPECT_THROW(Reference::parse(bad), std::invalid_argument) << bad;
  }
  try {
    Reference::parse("Busybox");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("\"Busybox\""), std::string::npos) << e.what();
  }
}

TEST(DigestTest, Sha256) {
  EXPECT_EQ(sha256Of("").str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 h;
  h.update("ab");
  h.update("c");
  EXPECT_EQ(h.finish().hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::string error;
  EXPECT_FALSE(Digest::parse("sha256:ABC", &error));
  EXPECT_NE(error.find("64 hex"), std::string::npos);
  EXPECT_FALSE(Digest::parse("sha512:" + std::string(128, 'a'), &error));
  EXPECT_NE(error.find("only sha256"), std::string::npos);
  EXPECT_FALSE(Digest::parse("sha256:" + std::string(63, 'a') + "G"));
}

TEST(PullPolicyTest, KubernetesDefaults) {
  const Reference latest = Reference::parse("busybox");
  const Reference tagged = Reference::parse("busybox:1.35");
  const Reference pinned = Reference::parse("busybox@sha256:" + std::string(64, 'b'));
  EXPECT_EQ(parsePullPolicy("", latest), PullPolicy::kAlways);
  EXPECT_EQ(parsePullPolicy("", Reference::parse("busybox:latest")), PullPolicy::kAlways);
  EXPECT_EQ(parsePullPolicy("", tagged), PullPolicy::kIfNotPresent);
  EXPECT_EQ(parsePullPolicy("", pinned), PullPolicy::kIfNotPresent);
  EXPECT_EQ(parsePullPolicy("Never", latest), PullPolicy::kNever);
  EXPECT_THROW(parsePullPolicy("Sometimes", tagged), std::invalid_argument);

  EXPECT_EQ(decidePull(PullPolicy::kAlways, true), PullDecision::kPull);
  EXPECT_EQ(decidePull(PullPolicy::kIfNotPresent, true), PullDecision::kUsePresent);
  EXPECT_EQ(decidePull(PullPolicy::kIfNotPresent, false), PullDecision::kPull);
  EXPECT_EQ(decidePull(PullPolicy::kNever, true), PullDecision::kUsePresent);
  EXPECT_EQ(decidePull(PullPolicy::kNever, false), PullDecision::kNeverPullMissing);
}

}  // namespace
}  // namespace skiff::kubelet::images
