// The image store on a real image: built with umoci from busybox-static by the fixture script,
// imported as an OCI layout directory, an OCI tarball and a `docker save` tarball (made by
// skopeo), unpacked with its whiteouts, and mounted as overlayfs and as a copy.

#include "kubelet/images/image_store.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace skiff::kubelet::images {
namespace {
namespace fs = std::filesystem;

bool sh(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

bool isMountPoint(const std::string& path) {
  const std::string mounts = readFile("/proc/self/mountinfo");
  return mounts.find(" " + path + " ") != std::string::npos;
}

class ImageStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/skiff-image-fixture-XXXXXX";
    fixture_ = ::mkdtemp(tmpl);
    const std::string script =
        std::string(SKIFF_SOURCE_DIR) + "/tests/fixtures/images/make-busybox-image.sh";
    ASSERT_TRUE(sh(script + " " + fixture_ + "/layout v1")) << "fixture image build failed";
    ASSERT_TRUE(sh("tar -C " + fixture_ + "/layout -cf " + fixture_ + "/oci.tar ."));
    ASSERT_TRUE(sh("skopeo copy oci:" + fixture_ + "/layout:v1 docker-archive:" + fixture_ +
                   "/docker.tar:example.com/test/busybox:saved"));
  }
  static void TearDownTestSuite() { fs::remove_all(fixture_); }

  void SetUp() override {
    char tmpl[] = "/tmp/skiff-image-store-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    store_ = std::make_unique<ImageStore>(dir_ + "/store");
  }
  void TearDown() override {
    for (const auto& c : containers_) {
      ::umount2((c + "/rootfs").c_str(), MNT_DETACH);
    }
    store_.reset();
    fs::remove_all(dir_);
  }

  std::string containerDir(const std::string& name) {
    const std::string d = dir_ + "/containers/" + name;
    fs::create_directories(d);
    containers_.push_back(d);
    return d;
  }

  void expectImageFiles(const std::string& rootfs) {
    EXPECT_TRUE(fs::is_regular_file(rootfs + "/bin/busybox"));
    EXPECT_TRUE(fs::is_symlink(rootfs + "/bin/sh"));
    EXPECT_EQ(fs::read_symlink(rootfs + "/bin/sh"), "busybox");
    EXPECT_EQ(readFile(rootfs + "/removed/kept"), "kept\n");
    EXPECT_FALSE(fs::exists(fs::symlink_status(rootfs + "/removed/file"))) << "whiteout ignored";
    EXPECT_EQ(readFile(rootfs + "/opaque/new"), "new\n");
    EXPECT_FALSE(fs::exists(fs::symlink_status(rootfs + "/opaque/old"))) << "opaque dir ignored";
    struct stat st;
    ASSERT_EQ(::stat((rootfs + "/tmp").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 01777u);
    ASSERT_EQ(::stat((rootfs + "/bin/busybox").c_str(), &st), 0);
    EXPECT_TRUE(st.st_mode & S_IXUSR);
  }

  static inline std::string fixture_;
  std::string dir_;
  std::unique_ptr<ImageStore> store_;
  std::vector<std::string> containers_;
};

TEST_F(ImageStoreTest, ImportsAnOciLayoutDirectory) {
  const auto records = store_->importPath(fixture_ + "/layout", "127.0.0.1:5000/test/busybox:v1");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].name, "127.0.0.1:5000/test/busybox:v1");
  EXPECT_GT(records[0].size, 500'000);  // busybox itself

  const auto listed = store_->list();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].manifest, records[0].manifest);

  auto image = store_->find("127.0.0.1:5000/test/busybox:v1");
  ASSERT_TRUE(image);
  EXPECT_EQ(image->config.cmd, std::vector<std::string>{"/bin/sh"});
  EXPECT_EQ(image->config.env, std::vector<std::string>{"PATH=/bin"});
  EXPECT_EQ(image->config.labels.at("skiff.test"), "busybox");
  EXPECT_EQ(image->manifest.layers.size(), image->config.diff_ids.size());
  // By image ID prefix and by digest.
  ASSERT_TRUE(store_->find(records[0].config.shortHex()));
  ASSERT_TRUE(store_->find(records[0].manifest.str()));
  EXPECT_FALSE(store_->find("127.0.0.1:5000/test/busybox:v2"));
  // Blobs are stored under their digests.
  EXPECT_TRUE(store_->hasBlob(records[0].manifest));
  EXPECT_EQ(sha256OfFile(store_->blobPath(records[0].config)), records[0].config);
}

TEST_F(ImageStoreTest, LayoutWithOnlyATagNeedsAName) {
  try {
    store_->importPath(fixture_ + "/layout");
    FAIL() << "imported an image without a name";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("--name"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(store_->list().empty());
  EXPECT_THROW(store_->importPath(fixture_ + "/layout", "Bad Name"), std::invalid_argument);
  EXPECT_THROW(store_->importPath(fixture_ + "/missing.tar", "x/y"), std::runtime_error);
}

TEST_F(ImageStoreTest, ImportsTarballs) {
  const auto oci = store_->importPath(fixture_ + "/oci.tar", "example.com/oci/busybox:v1");
  ASSERT_EQ(oci.size(), 1u);
  const auto docker = store_->importPath(fixture_ + "/docker.tar");
  ASSERT_EQ(docker.size(), 1u);
  EXPECT_EQ(docker[0].name, "example.com/test/busybox:saved");
  // The same image, whichever way it came: same config digest (image ID).
  EXPECT_EQ(oci[0].config, docker[0].config);
  EXPECT_EQ(store_->list().size(), 2u);
  auto image = store_->find("example.com/test/busybox:saved");
  ASSERT_TRUE(image);
  const auto dirs = store_->unpack(*image);
  EXPECT_EQ(dirs.size(), image->config.diff_ids.size());
  // A gzip'ed tar of the layout imports too.
  ASSERT_EQ(std::system(("gzip -c " + fixture_ + "/oci.tar > " + dir_ + "/oci.tar.gz").c_str()), 0);
  EXPECT_EQ(store_->importPath(dir_ + "/oci.tar.gz", "example.com/gz/busybox:v1").size(), 1u);
}

TEST_F(ImageStoreTest, CorruptBlobIsRefusedAndNothingIsNamed) {
  ASSERT_TRUE(sh("cp -a " + fixture_ + "/layout " + dir_ + "/bad"));
  // Flip the content of the largest blob (the busybox layer) without changing its size.
  std::string largest;
  uintmax_t size = 0;
  for (const auto& e : fs::directory_iterator(dir_ + "/bad/blobs/sha256")) {
    if (e.file_size() > size) {
      size = e.file_size();
      largest = e.path();
    }
  }
  {
    std::fstream f(largest, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('X');
  }
  try {
    store_->importPath(dir_ + "/bad", "example.com/bad/busybox:v1");
    FAIL() << "corrupt blob accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("does not match"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(store_->list().empty());
}

TEST_F(ImageStoreTest, LayersAreUnpackedOnceInOverlayFormat) {
  store_->importPath(fixture_ + "/layout", "example.com/test/busybox:v1");
  auto image = store_->find("example.com/test/busybox:v1");
  ASSERT_TRUE(image);
  const auto dirs = store_->unpack(*image);
  ASSERT_EQ(dirs.size(), image->config.diff_ids.size());
  bool saw_whiteout = false;
  bool saw_opaque = false;
  for (const auto& d : dirs) {
    ASSERT_TRUE(fs::is_directory(d)) << d;
    struct stat st;
    if (::lstat((d + "/removed/file").c_str(), &st) == 0 && S_ISCHR(st.st_mode) &&
        st.st_rdev == makedev(0, 0)) {
      saw_whiteout = true;
    }
    char v[2] = {};
    if (::lgetxattr((d + "/opaque").c_str(), "trusted.overlay.opaque", v, sizeof v) == 1 &&
        v[0] == 'y') {
      saw_opaque = true;
    }
  }
  EXPECT_TRUE(saw_whiteout);
  EXPECT_TRUE(saw_opaque);
  // A second unpack reuses the directories (the marker file survives).
  { std::ofstream(dirs[0] + "/.marker") << "x"; }
  EXPECT_EQ(store_->unpack(*image), dirs);
  EXPECT_TRUE(fs::exists(dirs[0] + "/.marker"));
  fs::remove(dirs[0] + "/.marker");
}

TEST_F(ImageStoreTest, OverlayRootfsSharesLayersAndKeepsWritesPrivate) {
  store_->importPath(fixture_ + "/layout", "example.com/test/busybox:v1");
  auto image = store_->find("example.com/test/busybox:v1");
  ASSERT_TRUE(image);
  const std::string a = containerDir("a");
  const std::string b = containerDir("b");
  const auto ra = store_->prepareRootfs(*image, "a", a, RootfsMode::kOverlay);
  const auto rb = store_->prepareRootfs(*image, "b", b, RootfsMode::kOverlay);
  EXPECT_TRUE(ra.overlay);
  EXPECT_TRUE(isMountPoint(ra.path));
  expectImageFiles(ra.path);
  expectImageFiles(rb.path);
  { std::ofstream(ra.path + "/tmp/written-by-a") << "a"; }
  fs::remove(ra.path + "/removed/kept");
  EXPECT_TRUE(fs::exists(a + "/upper/tmp/written-by-a"));
  EXPECT_FALSE(fs::exists(rb.path + "/tmp/written-by-a"));
  EXPECT_TRUE(fs::exists(rb.path + "/removed/kept"));
  for (const auto& d : store_->unpack(*image))
    EXPECT_FALSE(fs::exists(d + "/tmp/written-by-a"));

  store_->releaseRootfs("a", a);
  EXPECT_FALSE(isMountPoint(ra.path));
  EXPECT_FALSE(fs::exists(a + "/rootfs"));
  EXPECT_FALSE(fs::exists(a + "/upper"));
  store_->releaseRootfs("a", a);  // idempotent
  store_->releaseRootfs("b", b);
}

TEST_F(ImageStoreTest, CopyRootfs) {
  store_->importPath(fixture_ + "/layout", "example.com/test/busybox:v1");
  auto image = store_->find("example.com/test/busybox:v1");
  ASSERT_TRUE(image);
  const std::string c = containerDir("c");
  const auto r = store_->prepareRootfs(*image, "c", c, RootfsMode::kCopy);
  EXPECT_FALSE(r.overlay);
  EXPECT_FALSE(isMountPoint(r.path));
  expectImageFiles(r.path);
  // A symlink in the image that points out of the rootfs is copied as a link, not followed.
  store_->releaseRootfs("c", c);
  EXPECT_FALSE(fs::exists(c + "/rootfs"));
}

TEST_F(ImageStoreTest, RemoveAndGarbageCollectKeepLeasedImages) {
  const auto rec = store_->importPath(fixture_ + "/layout", "example.com/test/busybox:v1");
  store_->importPath(fixture_ + "/layout", "example.com/test/busybox:other");
  auto image = store_->find("example.com/test/busybox:v1");
  ASSERT_TRUE(image);
  const std::string c = containerDir("leased");
  store_->prepareRootfs(*image, "leased", c);

  EXPECT_TRUE(store_->untag("example.com/test/busybox:v1"));
  EXPECT_FALSE(store_->untag("example.com/test/busybox:v1"));
  EXPECT_EQ(store_->list().size(), 1u);
  EXPECT_TRUE(store_->untag("example.com/test/busybox:other"));
  EXPECT_TRUE(store_->list().empty());
  // The container still uses the image: nothing is collected.
  EXPECT_EQ(store_->garbageCollect(), 0u);
  EXPECT_TRUE(store_->hasBlob(rec[0].manifest));
  expectImageFiles(c + "/rootfs");

  store_->releaseRootfs("leased", c);
  EXPECT_GT(store_->garbageCollect(), 0u);
  EXPECT_FALSE(store_->hasBlob(rec[0].manifest));
  EXPECT_TRUE(fs::is_empty(store_->root() + "/blobs/sha256"));
  EXPECT_TRUE(fs::is_empty(store_->root() + "/layers"));
}

TEST_F(ImageStoreTest, UnsafeLayerIsRefused) {
  // A layer whose entry climbs out with "..": the tar is hand-made with GNU tar.
  const std::string src = dir_ + "/evil";
  fs::create_directories(src + "/sub");
  { std::ofstream(src + "/sub/x") << "x"; }
  ASSERT_TRUE(
      sh("tar -C " + src + " -cf " + dir_ + "/evil.tar --transform 's,^sub/x,../escaped,' sub/x"));
  const std::string dest = dir_ + "/unpacked";
  fs::create_directories(dest);
  EXPECT_THROW(unpackLayer(dir_ + "/evil.tar", Compression::kNone, dest), std::runtime_error);
  EXPECT_FALSE(fs::exists(dir_ + "/escaped"));
  // A symlink to / followed by a file through it.
  const std::string src2 = dir_ + "/evil2";
  fs::create_directories(src2 + "/link");
  { std::ofstream(src2 + "/link/passwd-owned") << "x"; }
  fs::create_directories(dir_ + "/evil2b");
  fs::create_symlink(dir_ + "/outside", dir_ + "/evil2b/link");
  ASSERT_TRUE(sh("tar -C " + dir_ + "/evil2b -cf " + dir_ + "/evil2.tar link && tar -C " + src2 +
                 " -rf " + dir_ + "/evil2.tar link/passwd-owned"));
  const std::string dest2 = dir_ + "/unpacked2";
  fs::create_directories(dest2);
  fs::create_directories(dir_ + "/outside");
  // libarchive removes the symlink instead of writing through it.
  unpackLayer(dir_ + "/evil2.tar", Compression::kNone, dest2);
  EXPECT_FALSE(fs::exists(dir_ + "/outside/passwd-owned"));
  EXPECT_FALSE(fs::is_symlink(dest2 + "/link"));
  EXPECT_TRUE(fs::is_regular_file(dest2 + "/link/passwd-owned"));
}

}  // namespace
}  // namespace skiff::kubelet::images
