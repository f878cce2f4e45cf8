// The kubelet server and the apiserver's pods/log proxy end to end: real CRI log files in a temp
// dir, a real apiserver (HTTPS, RBAC) with a Node at 127.0.0.1 and the kubelet server's port; the
// apiserver reaches the kubelet over HTTPS with its client certificate, which the kubelet checks
// against the cluster CA and authorizes with a SubjectAccessReview.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "control/api/json.h"
#include "control/cli/logs_command.h"
#include "kubelet/server/kubelet_server.h"
#include "tests/kubelet/server/kubelet_api_cluster.h"

namespace skiff::kubelet {
namespace {

namespace fs = std::filesystem;
namespace http = boost::beast::http;
using testutil::KubeletApiCluster;
using testutil::Reply;

class LogsProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("skiff-logsproxy-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    app_dir_ = dir_ / "logs" / "default_web_1234-abcd" / "app";
    fs::create_directories(app_dir_);
    fs::create_directories(dir_ / "logs" / "default_web_1234-abcd" / "sidecar");
    cluster_ = std::make_unique<KubeletApiCluster>(dir_ / "server");
    kubelet_ = std::make_unique<KubeletServer>(cluster_->kubeletOptions((dir_ / "logs").string()));
    kubelet_->start();
    cluster_->registerNode(kubelet_->port());
    createPod("web", "n1", {"app", "sidecar"});
    createPod("single", "n1", {"app"});
    createPod("pending", "", {"app"});
  }
  void TearDown() override {
    kubelet_.reset();
    cluster_.reset();
    fs::remove_all(dir_);
  }

  Reply apiCall(http::verb method, const std::string& target, const std::string& body = "") {
    return cluster_->api(method, target, body);
  }
  void createPod(const std::string& name, const std::string& node,
                 const std::vector<std::string>& containers) {
    std::string list;
    for (const auto& c : containers)
      list += std::string(list.empty() ? "" : ",") + R"({"name":")" + c + R"(","image":"busybox"})";
    const std::string body = R"({"metadata":{"name":")" + name + R"("},"spec":{)" +
                             (node.empty() ? "" : R"("nodeName":")" + node + R"(",)") +
                             R"("containers":[)" + list + "]}}";
    Reply r = apiCall(http::verb::post, "/api/v1/namespaces/default/pods", body);
    ASSERT_EQ(r.status, 201) << r.body;
  }
  void append(const fs::path& file, const std::string& text) {
    std::ofstream out(file, std::ios::app | std::ios::binary);
    out << text;
  }

  fs::path dir_;
  fs::path app_dir_;
  std::unique_ptr<KubeletApiCluster> cluster_;
  std::unique_ptr<KubeletServer> kubelet_;
};

TEST_F(LogsProxyTest, PodLogOverHttpsVerifiedAgainstTheClusterCa) {
  append(app_dir_ / "0.log", "2026-01-01T00:00:01.000000000Z stdout F over tls\n");
  Reply r = apiCall(http::verb::get, "/api/v1/namespaces/default/pods/web/log?container=app");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "over tls\n");
  // Plain HTTP to a TLS port fails; the kubelet never answers in the clear.
  EXPECT_THROW(
      testutil::httpCall(kubelet_->port(), http::verb::get, "/containerLogs/default/web/app",
                         {.tls = false, .token = cluster_->adminToken()}),
      std::exception);
  // Without a reviewer the kubelet API does not start: it is never open.
  KubeletServerOptions open = cluster_->kubeletOptions((dir_ / "logs").string());
  open.reviewer = nullptr;
  EXPECT_THROW(KubeletServer(open).start(), std::runtime_error);
}

TEST_F(LogsProxyTest, PodLogThroughTheApiserver) {
  append(app_dir_ / "0.log", "2026-01-01T00:00:01.000000000Z stdout F first run\n");
  append(app_dir_ / "1.log",
         "2026-01-01T00:00:05.000000000Z stdout F one\n"
         "2026-01-01T00:00:06.000000000Z stderr F two\n");
  Reply all = apiCall(http::verb::get, "/api/v1/namespaces/default/pods/web/log?container=app");
  EXPECT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(all.body, "one\ntwo\n");
  Reply tail = apiCall(http::verb::get,
                       "/api/v1/namespaces/default/pods/web/log?container=app&tailLines=1"
                       "&timestamps=true");
  EXPECT_EQ(tail.body, "2026-01-01T00:00:06.000000000Z two\n");
  Reply previous = apiCall(http::verb::get,
                           "/api/v1/namespaces/default/pods/web/log?container=app&previous=true");
  EXPECT_EQ(previous.body, "first run\n");

  Reply choose = apiCall(http::verb::get, "/api/v1/namespaces/default/pods/web/log");
  EXPECT_EQ(choose.status, 400);
  EXPECT_EQ(api::parseJson(choose.body).find("message")->text(),
            "a container name must be specified for pod web, choose one of: [app sidecar]");
  Reply invalid =
      apiCall(http::verb::get, "/api/v1/namespaces/default/pods/web/log?container=nope");
  EXPECT_EQ(invalid.status, 400);
  EXPECT_EQ(api::parseJson(invalid.body).find("message")->text(),
            "container nope is not valid for pod web");
  Reply no_node = apiCall(http::verb::get, "/api/v1/namespaces/default/pods/pending/log");
  EXPECT_EQ(no_node.status, 400);
  EXPECT_EQ(api::parseJson(no_node.body).find("message")->text(),
            "pod pending does not have a host assigned");
  Reply no_logs = apiCall(http::verb::get, "/api/v1/namespaces/default/pods/single/log");
  EXPECT_EQ(no_logs.status, 404) << no_logs.body;
  EXPECT_NE(api::parseJson(no_logs.body).find("message")->text().find("default/single"),
            std::string::npos)
      << no_logs.body;
  EXPECT_EQ(apiCall(http::verb::get, "/api/v1/namespaces/default/pods/ghost/log").status, 404);
}

TEST_F(LogsProxyTest, FollowStreamsNewLinesUntilTheContainerRestarts) {
  append(app_dir_ / "0.log", "2026-01-01T00:00:01.000000000Z stdout F before\n");
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    append(app_dir_ / "0.log", "2026-01-01T00:00:02.000000000Z stdout F after\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    append(app_dir_ / "1.log", "2026-01-01T00:00:03.000000000Z stdout F next run\n");
  });
  const auto start = std::chrono::steady_clock::now();
  Reply follow =
      apiCall(http::verb::get, "/api/v1/namespaces/default/pods/web/log?container=app&follow=true");
  writer.join();
  EXPECT_EQ(follow.status, 200);
  EXPECT_EQ(follow.body, "before\nafter\n");
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(550));
}

TEST_F(LogsProxyTest, SkiffLogs) {
  append(app_dir_ / "0.log", "2026-01-01T00:00:01.000000000Z stdout F first run\n");
  append(app_dir_ / "1.log",
         "2026-01-01T00:00:05.000000000Z stdout F one\n"
         "2026-01-01T00:00:06.000000000Z stderr F two\n");
  const std::string kubeconfig = cluster_->adminKubeconfig();
  auto run = [&](cli::LogsOptions options, std::string& err) {
    cli::CliContext context(cli::GlobalOptions{.kubeconfig = kubeconfig, .ns = "default"});
    std::ostringstream out, error;
    const int rc = cli::runLogs(context, options, out, error);
    err = error.str();
    return rc == 0 ? out.str() : "rc=" + std::to_string(rc);
  };
  std::string err;
  EXPECT_EQ(run({.target = "web", .container = "app"}, err), "one\ntwo\n") << err;
  EXPECT_EQ(run({.target = "pod/web", .container = "app", .tail = 1, .timestamps = true}, err),
            "2026-01-01T00:00:06.000000000Z two\n")
      << err;
  EXPECT_EQ(run({.target = "web", .container = "app", .previous = true}, err), "first run\n")
      << err;
  EXPECT_EQ(run({.target = "web"}, err), "rc=1");
  EXPECT_NE(err.find("a container name must be specified for pod web, choose one of: [app "
                     "sidecar]"),
            std::string::npos)
      << err;

  Reply deployment =
      apiCall(http::verb::post, "/apis/apps/v1/namespaces/default/deployments",
              R"({"metadata":{"name":"d"},"spec":{"selector":{"matchLabels":{"app":"single"}},)"
              R"("template":{"metadata":{"labels":{"app":"single"}},)"
              R"("spec":{"containers":[{"name":"app","image":"busybox"}]}}}})");
  ASSERT_EQ(deployment.status, 201) << deployment.body;
  for (const std::string name : {"d-b", "d-a"}) {
    Reply pod = apiCall(http::verb::post, "/api/v1/namespaces/default/pods",
                        R"({"metadata":{"name":")" + name +
                            R"(","labels":{"app":"single"}},"spec":{"nodeName":"n1",)"
                            R"("containers":[{"name":"app","image":"busybox"}]}})");
    ASSERT_EQ(pod.status, 201) << pod.body;
    fs::create_directories(dir_ / "logs" / ("default_" + name + "_u1") / "app");
    append(dir_ / "logs" / ("default_" + name + "_u1") / "app" / "0.log",
           "2026-01-01T00:00:01.000000000Z stdout F from " + name + "\n");
  }
  EXPECT_EQ(run({.target = "deploy/d"}, err), "from d-a\n") << err;
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    append(app_dir_ / "1.log", "2026-01-01T00:00:07.000000000Z stdout F three\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    append(app_dir_ / "2.log", "2026-01-01T00:00:08.000000000Z stdout F next run\n");
  });
  EXPECT_EQ(run({.target = "web", .container = "app", .follow = true}, err), "one\ntwo\nthree\n")
      << err;
  writer.join();
  EXPECT_EQ(run({.target = "web", .container = "nope", .follow = true}, err), "rc=1");
  EXPECT_NE(err.find("container nope is not valid for pod web"), std::string::npos) << err;
  EXPECT_EQ(run({.target = "deploy/nope"}, err), "rc=1");
  EXPECT_NE(err.find("nope"), std::string::npos) << err;
}

}  // namespace
}  // namespace skiff::kubelet
