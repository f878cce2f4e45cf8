// Pulls from a real OCI distribution registry: Debian's docker-registry (registry 2) on a loopback
// port with its storage in a temp dir, holding the fixture image pushed by skopeo in OCI and in
// Docker schema 2 form.

#include "kubelet/images/registry.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

namespace skiff::kubelet::images {
namespace {
namespace fs = std::filesystem;

bool sh(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
}

int freePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

class RegistryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/skiff-registry-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    port_ = freePort();
    host_ = "127.0.0.1:" + std::to_string(port_);
    std::ofstream(dir_ + "/config.yml")
        << "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: "
        << dir_ << "/data\nhttp:\n  addr: " << host_ << "\n";
    registry_ = ::fork();
    if (registry_ == 0) {
      const std::string log = dir_ + "/registry.log";
      freopen(log.c_str(), "w", stdout);
      freopen(log.c_str(), "a", stderr);
      const std::string config = dir_ + "/config.yml";
      ::execlp("docker-registry", "docker-registry", "serve", config.c_str(), nullptr);
      ::_exit(127);
    }
    bool up = false;
    for (int i = 0; i < 100 && !up; ++i) {
      up = sh("curl -sf http://" + host_ + "/v2/");
      if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(up) << "docker-registry did not come up; see " << dir_ << "/registry.log";
    const std::string script =
        std::string(SKIFF_SOURCE_DIR) + "/tests/fixtures/images/make-busybox-image.sh";
    ASSERT_TRUE(sh(script + " " + dir_ + "/layout v1"));
    ASSERT_TRUE(sh("skopeo copy --dest-tls-verify=false oci:" + dir_ + "/layout:v1 docker://" +
                   host_ + "/test/busybox:v1"));
    ASSERT_TRUE(sh("skopeo copy --format v2s2 --dest-tls-verify=false oci:" + dir_ +
                   "/layout:v1 docker://" + host_ + "/test/busybox:docker"));
  }

  static void TearDownTestSuite() {
    if (registry_ > 0) {
      ::kill(registry_, SIGTERM);
      ::waitpid(registry_, nullptr, 0);
    }
    fs::remove_all(dir_);
  }

  void SetUp() override {
    store_dir_ = dir_ + "/store-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    store_ = std::make_unique<ImageStore>(store_dir_);
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(store_dir_);
  }

  static inline std::string dir_;
  static inline int port_ = 0;
  static inline std::string host_;
  static inline pid_t registry_ = -1;
  std::string store_dir_;
  std::unique_ptr<ImageStore> store_;
};

TEST_F(RegistryTest, PullsAnOciImage) {
  RegistryClient client;
  const auto rec = client.pull(*store_, Reference::parse(host_ + "/test/busybox:v1"));
  EXPECT_EQ(rec.name, host_ + "/test/busybox:v1");
  auto image = store_->find(host_ + "/test/busybox:v1");
  ASSERT_TRUE(image);
  EXPECT_EQ(image->manifest.media_type, media::kOciManifest);
  EXPECT_EQ(image->config.cmd, std::vector<std::string>{"/bin/sh"});
  const auto dirs = store_->unpack(*image);
  ASSERT_FALSE(dirs.empty());
  bool busybox = false;
  for (const auto& d : dirs)
    busybox = busybox || fs::is_regular_file(d + "/bin/busybox");
  EXPECT_TRUE(busybox);

  // Pulling again finds every blob present and names the same manifest.
  const auto again = client.pull(*store_, Reference::parse(host_ + "/test/busybox:v1"));
  EXPECT_EQ(again.manifest, rec.manifest);

  // By digest.
  const auto pinned =
      client.pull(*store_, Reference::parse(host_ + "/test/busybox@" + rec.manifest.str()));
  EXPECT_EQ(pinned.manifest, rec.manifest);
  EXPECT_TRUE(store_->find(host_ + "/test/busybox@" + rec.manifest.str()));
}

TEST_F(RegistryTest, PullsADockerSchema2Image) {
  RegistryClient client;
  const auto rec = client.pull(*store_, Reference::parse(host_ + "/test/busybox:docker"));
  auto image = store_->find(rec.name);
  ASSERT_TRUE(image);
  EXPECT_EQ(image->manifest.media_type, media::kDockerManifest);
  EXPECT_EQ(store_->unpack(*image).size(), image->config.diff_ids.size());
}

TEST_F(RegistryTest, MissingImagesSayNotFound) {
  RegistryClient client;
  try {
    client.pull(*store_, Reference::parse(host_ + "/test/busybox:nope"));
    FAIL();
  } catch (const PullError& e) {
    EXPECT_TRUE(e.notFound()) << e.what();
    EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos) << e.what();
  }
  try {
    client.pull(*store_, Reference::parse(host_ + "/no/such:v1"));
    FAIL();
  } catch (const PullError& e) {
    EXPECT_TRUE(e.notFound()) << e.what();
  }
  EXPECT_TRUE(store_->list().empty());
  // Nothing listens there: a transport error, quickly.
  RegistryClient closed({.timeout = std::chrono::seconds(5)});
  try {
    closed.pull(*store_, Reference::parse("127.0.0.1:" + std::to_string(freePort()) + "/a:b"));
    FAIL();
  } catch (const PullError& e) {
    EXPECT_EQ(e.httpStatus(), 0) << e.what();
  }
}

}  // namespace
}  // namespace skiff::kubelet::images
