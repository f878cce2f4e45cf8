// Exec end to end in one process: a real busybox container under runc (a private --root), the
// kubelet server over HTTPS with a cluster-CA-signed certificate, the apiserver's pods/exec proxy
// verifying it, and `skiff exec` (runExec) speaking WebSocket v5.channel.k8s.io to the apiserver.
// Output, stderr apart, exit codes, stdin with its end, and the bad-input errors. Root only.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "control/apiserver/pki.h"
#include "control/cli/exec_command.h"
#include "kubelet/images/image_store.h"
#include "kubelet/runtime/runc_runtime.h"
#include "kubelet/server/kubelet_server.h"
#include "kubelet/server/websocket_channel.h"
#include "tests/kubelet/server/kubelet_api_cluster.h"

namespace skiff::kubelet {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;

const char* kUid = "5e1f-exec";

int call(uint16_t port, http::verb method, const std::string& target, const std::string& body,
         std::string* answer = nullptr,
         const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), port});
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "localhost");
  for (const auto& [name, value] : headers)
    req.set(name, value);
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  http::write(socket, req);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  http::read(socket, buffer, parser);
  if (answer) *answer = parser.get().body();
  return static_cast<int>(parser.get().result_int());
}

class ExecProxyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (runc)";
    char tmpl[] = "/tmp/skiff-exec-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    const std::string script =
        std::string(SKIFF_SOURCE_DIR) + "/tests/fixtures/images/make-busybox-image.sh";
    ASSERT_EQ(std::system((script + " " + dir_ + "/layout v1 >/dev/null 2>&1").c_str()), 0);
    store_ = new images::ImageStore(dir_ + "/images");
    store_->importPath(dir_ + "/layout", "example.com/test/busybox:v1");
    cgroup_parent_ = "/skiff-test-exec-" + std::to_string(::getpid());
    runtime_ = new RuncRuntime(
        RuncOptions{.root = dir_ + "/runc", .state_dir = dir_ + "/state", .shim = SKIFF_SHIM_PATH});
    // The container as the pod worker names it: <pod uid>_<container>_<attempt>.
    id_ = std::string(kUid) + "_app_0";
    const std::string bundle = dir_ + "/bundles/" + id_;
    fs::create_directories(bundle);
    ContainerConfig c;
    c.id = id_;
    c.bundle_dir = bundle;
    c.rootfs =
        store_->prepareRootfs(*store_->find("example.com/test/busybox:v1"), id_, bundle).path;
    c.args = {"/bin/busybox", "sleep", "3600"};
    c.env = {"PATH=/bin"};
    c.hostname = "web";
    c.cgroups_path = cgroup_parent_ + "/" + id_;
    c.log_path = dir_ + "/logs/default_web_" + kUid + "/app/0.log";
    runtime_->create(c);
    runtime_->start(id_);
  }
  static void TearDownTestSuite() {
    if (runtime_) {
      try {
        runtime_->remove(id_);
        store_->releaseRootfs(id_, dir_ + "/bundles/" + id_);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "cleanup: " << e.what();
      }
    }
    delete runtime_;
    delete store_;
    runtime_ = nullptr;
    store_ = nullptr;
    for (const char* h : {"unified", "memory", "cpu", "cpuacct", "cpu,cpuacct", "pids", "cpuset",
                          "blkio", "devices", "freezer", "net_cls,net_prio", "perf_event",
                          "hugetlb", "misc", "rdma", "systemd"}) {
      ::rmdir(("/sys/fs/cgroup/" + std::string(h) + cgroup_parent_).c_str());
    }
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (runc)";
    work_ = dir_ + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(work_);
    // A real apiserver; the kubelet authenticates its client certificate and authorizes it with
    // a SubjectAccessReview, as skiff agent's does.
    cluster_ = std::make_unique<testutil::KubeletApiCluster>(work_ + "/server");
    KubeletServerOptions kubelet_options = cluster_->kubeletOptions(dir_ + "/logs");
    kubelet_options.runtime = runtime_;
    kubelet_ = std::make_unique<KubeletServer>(kubelet_options);
    kubelet_->start();
    cluster_->registerNode(kubelet_->port());
    const testutil::Reply pod =
        cluster_->api(http::verb::post, "/api/v1/namespaces/default/pods",
                      R"({"metadata":{"name":"web"},"spec":{"nodeName":"n1","containers":[)"
                      R"({"name":"app","image":"busybox"}]}})");
    ASSERT_EQ(pod.status, 201) << pod.body;
    kubeconfig_ = cluster_->adminKubeconfig();
  }
  void TearDown() override {
    kubelet_.reset();
    cluster_.reset();
  }

  struct Result {
    int code = -1;
    std::string out, err;
  };
  Result exec(cli::ExecOptions options, const std::string& input = "") {
    options.pod = options.pod.empty() ? "web" : options.pod;
    int fds[2];
    EXPECT_EQ(::pipe(fds), 0);
    EXPECT_EQ(::write(fds[1], input.data(), input.size()), static_cast<ssize_t>(input.size()));
    ::close(fds[1]);
    cli::CliContext context(cli::GlobalOptions{.kubeconfig = kubeconfig_});
    std::ostringstream out, err;
    Result r;
    r.code = cli::runExec(context, options, fds[0], out, err);
    ::close(fds[0]);
    r.out = out.str();
    r.err = err.str();
    return r;
  }

  static inline std::string dir_;
  static inline std::string id_;
  static inline std::string cgroup_parent_;
  static inline images::ImageStore* store_ = nullptr;
  static inline RuncRuntime* runtime_ = nullptr;
  std::string work_;
  std::string kubeconfig_;
  std::unique_ptr<testutil::KubeletApiCluster> cluster_;
  std::unique_ptr<KubeletServer> kubelet_;
};

TEST_F(ExecProxyTest, OutputStderrAndExitCodes) {
  Result r = exec({.command = {"sh", "-c", "hostname; echo oops >&2"}});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "web\n");
  EXPECT_EQ(r.err, "oops\n");
  r = exec({.command = {"sh", "-c", "exit 3"}});
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(r.err, "command terminated with exit code 3\n");
  // Enough output to cross many frames and TLS records.
  r = exec(
      {.command = {"sh", "-c", "i=0; while [ $i -lt 20000 ]; do echo line$i; i=$((i+1)); done"}});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 20000);
  EXPECT_TRUE(r.out.ends_with("line19999\n"));
}

TEST_F(ExecProxyTest, StdinAndItsEnd) {
  // cat ends only when the end of stdin reaches it ([255, 0] on v5).
  Result r =
      exec({.container = "app", .pass_stdin = true, .command = {"sh", "-c", "cat; echo done"}},
           "one\ntwo\n");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "one\ntwo\ndone\n");
}

TEST_F(ExecProxyTest, Terminal) {
  // A terminal in the container (its output has the terminal's \r\n); the exit code still comes.
  Result r = exec({.tty = true, .command = {"sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo a-tty"}});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "a-tty\r\n");
  r = exec({.tty = true, .command = {"sh", "-c", "exit 5"}});
  EXPECT_EQ(r.code, 5) << r.err;
}

TEST_F(ExecProxyTest, BadInput) {
  Result r = exec({.pod = "nosuch", .command = {"true"}});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "Error from server (NotFound): pods \"nosuch\" not found\n");
  r = exec({.container = "nosuch", .command = {"true"}});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "Error from server (BadRequest): container nosuch is not valid for pod web\n");
  r = exec({.command = {"/bin/nosuch"}});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("error: exec /bin/nosuch in container " + id_), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no such file or directory"), std::string::npos) << r.err;
}

TEST_F(ExecProxyTest, KubeletChecksTokenUpgradeAndContainer) {
  const std::string target = "/exec/default/web/app?command=true&stdout=true";
  const std::vector<std::pair<std::string, std::string>> upgrade = {
      {"authorization", "Bearer " + cluster_->adminToken()},
      {"upgrade", "websocket"},
      {"connection", "Upgrade"},
      {"sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="},
      {"sec-websocket-version", "13"},
      {"sec-websocket-protocol", "v4.channel.k8s.io"}};
  // The kubelet serves TLS only: use it through a plain-HTTP kubelet on loopback, which takes
  // bearer tokens (TokenReview) alone.
  KubeletServerOptions plain_options = cluster_->kubeletOptions(dir_ + "/logs", /*tls=*/false);
  plain_options.runtime = runtime_;
  KubeletServer plain(plain_options);
  plain.start();
  std::string answer;
  EXPECT_EQ(call(plain.port(), http::verb::get, target, "", &answer,
                 {upgrade.begin() + 1, upgrade.end()}),
            401);
  auto without = [&](const std::string& name) {
    std::vector<std::pair<std::string, std::string>> h;
    for (const auto& kv : upgrade)
      if (kv.first != name) h.push_back(kv);
    return h;
  };
  EXPECT_EQ(call(plain.port(), http::verb::get, target, "", &answer, without("upgrade")), 400);
  EXPECT_NE(answer.find("SPDY is not supported"), std::string::npos) << answer;
  auto old_protocol = without("sec-websocket-protocol");
  old_protocol.emplace_back("sec-websocket-protocol", "channel.k8s.io");
  EXPECT_EQ(call(plain.port(), http::verb::get, target, "", &answer, old_protocol), 400);
  EXPECT_NE(answer.find("want v5.channel.k8s.io or v4.channel.k8s.io"), std::string::npos);
  EXPECT_EQ(call(plain.port(), http::verb::get, "/exec/default/web/other?command=true&stdout=true",
                 "", &answer, upgrade),
            404);
  EXPECT_EQ(answer, "container other of pod default/web is not running\n");
  EXPECT_EQ(call(plain.port(), http::verb::get, "/exec/default/gone/app?command=true&stdout=true",
                 "", &answer, upgrade),
            404);
  EXPECT_EQ(answer, "pod default/gone is not on this node\n");

  // v4 (no close channel) with a raw WebSocket client: the 101, output, and the Status.
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), plain.port()});
  http::request<http::empty_body> req{http::verb::get,
                                      "/exec/default/web/app?command=sh&command=-c&command=echo%20"
                                      "v4%3B%20exit%207&stdout=true",
                                      11};
  req.set(http::field::host, "localhost");
  for (const auto& [name, value] : upgrade)
    req.set(name, value);
  http::write(socket, req);
  beast::flat_buffer buffer;
  http::response_parser<http::empty_body> parser;
  http::read_header(socket, buffer, parser);
  ASSERT_EQ(parser.get().result_int(), 101u);
  EXPECT_EQ(parser.get()[http::field::sec_websocket_accept], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_EQ(parser.get()[http::field::sec_websocket_protocol], "v4.channel.k8s.io");
  ws::FrameDecoder decoder(/*expect_masked=*/false);
  decoder.feed(beast::buffers_to_string(buffer.data()));
  std::string out, status;
  bool closed = false;
  while (!closed) {
    while (auto m = decoder.next()) {
      if (m->opcode == ws::Opcode::kClose) {
        closed = true;
        break;
      }
      ASSERT_EQ(m->opcode, ws::Opcode::kBinary);
      ASSERT_FALSE(m->payload.empty());
      (m->payload[0] == ws::kStdout ? out : status) += m->payload.substr(1);
    }
    if (closed) break;
    char chunk[4096];
    beast::error_code ec;
    const size_t n = socket.read_some(asio::buffer(chunk), ec);
    ASSERT_FALSE(ec) << ec.message();
    decoder.feed(std::string_view(chunk, n));
  }
  socket.write_some(asio::buffer(ws::encodeFrame(ws::Opcode::kClose, "\x03\xe8", true)));
  EXPECT_EQ(out, "v4\n");
  std::string message;
  EXPECT_EQ(ws::statusExitCode(status, message), 7) << status;
}

}  // namespace
}  // namespace skiff::kubelet
