#include "kubelet/images/oci.h"

#include <gtest/gtest.h>

namespace skiff::kubelet::images {
namespace {

const std::string kA = "sha256:" + std::string(64, 'a');
const std::string kB = "sha256:" + std::string(64, 'b');
const std::string kC = "sha256:" + std::string(64, 'c');

std::string what(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

TEST(OciTest, OciAndDockerManifests) {
  const std::string oci =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
    "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
      kA + R"(","size":7},
    "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":")" +
      kB + R"(","size":100,"annotations":{"x":"y"}}]})";
  const Manifest m = parseManifest(oci, "m");
  EXPECT_EQ(m.media_type, media::kOciManifest);
  EXPECT_EQ(m.config.digest.str(), kA);
  EXPECT_EQ(m.config.size, 7);
  ASSERT_EQ(m.layers.size(), 1u);
  EXPECT_EQ(layerCompression(m.layers[0].media_type), Compression::kGzip);
  EXPECT_EQ(m.layers[0].annotations.at("x"), "y");

  const std::string docker =
      R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
    "config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":")" +
      kA + R"(","size":7},
    "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":")" +
      kB + R"(","size":100}]})";
  EXPECT_EQ(parseManifest(docker, "m").media_type, media::kDockerManifest);

  // Round trip through writeManifest.
  const Manifest again = parseManifest(writeManifest(m), "again");
  EXPECT_EQ(again.layers[0].digest, m.layers[0].digest);
  EXPECT_EQ(again.config.size, 7);
}

TEST(OciTest, ManifestErrorsNameTheField) {
  EXPECT_NE(what([] { parseManifest("[1]", "m"); }).find("expected a JSON object"),
            std::string::npos);
  EXPECT_NE(what([] { parseManifest(R"({"schemaVersion":1})", "m"); }).find("schemaVersion"),
            std::string::npos);
  const std::string bad_digest =
      R"({"schemaVersion":2,"config":{"digest":"sha256:xyz","size":1},"layers":[]})";
  EXPECT_NE(what([&] { parseManifest(bad_digest, "m"); }).find("m: config.digest"),
            std::string::npos);
  const std::string bad_layer = R"({"schemaVersion":2,"config":{"digest":")" + kA +
                                R"(","size":1},"layers":[{"mediaType":"text/plain","digest":")" +
                                kB + R"(","size":1}]})";
  EXPECT_NE(what([&] { parseManifest(bad_layer, "m"); }).find("layers[0].mediaType"),
            std::string::npos);
  const std::string neg =
      R"({"schemaVersion":2,"config":{"digest":")" + kA + R"(","size":-1},"layers":[]})";
  EXPECT_NE(what([&] { parseManifest(neg, "m"); }).find("config.size"), std::string::npos);
  EXPECT_NE(what([] { parseManifest("{", "m"); }).find("m:"), std::string::npos);
}

TEST(OciTest, IndexSelectsThisPlatform) {
  const std::string index =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
    {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
      kA +
      R"(","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
    {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
      kB + R"(","size":1,"platform":{"os":"linux","architecture":"amd64"}}]})";
  const Index i = parseIndex(index, "i");
  ASSERT_EQ(i.manifests.size(), 2u);
  const Descriptor* d = selectPlatform(i);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->digest.str(), hostPlatform().architecture == "amd64" ? kB : kA);

  const std::string other =
      R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
      kA + R"(","size":1,"platform":{"os":"windows","architecture":"amd64"}}]})";
  EXPECT_EQ(selectPlatform(parseIndex(other, "i")), nullptr);
  // A manifest is not an index.
  EXPECT_NE(
      what([] {
        parseIndex(
            R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","manifests":[]})",
            "i");
      }).find("not an image index"),
      std::string::npos);
}

TEST(OciTest, ImageConfig) {
  const std::string config =
      R"({"architecture":"amd64","os":"linux","created":"2026-01-01T00:00:00Z",
    "config":{"User":"1000:1000","Env":["PATH=/bin","A=b"],"Entrypoint":["/bin/app"],"Cmd":["--flag"],
      "WorkingDir":"/srv","ExposedPorts":{"80/tcp":{}},"Labels":{"k":"v"},"StopSignal":"SIGINT"},
    "rootfs":{"type":"layers","diff_ids":[")" +
      kC + R"("]}})";
  const ImageConfig c = parseImageConfig(config, "c");
  EXPECT_EQ(c.user, "1000:1000");
  EXPECT_EQ(c.env, (std::vector<std::string>{"PATH=/bin", "A=b"}));
  EXPECT_EQ(c.entrypoint, std::vector<std::string>{"/bin/app"});
  EXPECT_EQ(c.cmd, std::vector<std::string>{"--flag"});
  EXPECT_EQ(c.working_dir, "/srv");
  EXPECT_EQ(c.exposed_ports, std::vector<std::string>{"80/tcp"});
  EXPECT_EQ(c.labels.at("k"), "v");
  EXPECT_EQ(c.stop_signal, "SIGINT");
  ASSERT_EQ(c.diff_ids.size(), 1u);
  EXPECT_EQ(c.diff_ids[0].str(), kC);

  EXPECT_NE(what([] {
              parseImageConfig(
                  R"({"config":{"Env":"PATH=/bin"},"rootfs":{"type":"layers","diff_ids":[]}})",
                  "c");
            }).find("config.Env"),
            std::string::npos);
  EXPECT_NE(what([] { parseImageConfig(R"({"config":{}})", "c"); }).find("rootfs"),
            std::string::npos);
  EXPECT_NE(what([] {
              parseImageConfig(R"({"rootfs":{"type":"layers","diff_ids":["sha256:1"]}})", "c");
            }).find("rootfs.diff_ids[0]"),
            std::string::npos);
}

}  // namespace
}  // namespace skiff::kubelet::images
