#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include "control/apiserver/api_handler.h"
#include "control/apiserver/http_server.h"
#include "control/apiserver/server.h"
#include "control/client/kubeconfig.h"
#include "control/client/rest_client.h"
#include "control/store/sqlite_store.h"

// A real apiserver in this process, on the embedded store in a temporary directory, on a free
// loopback port:
// - kHttps: apiserver::ApiServer as `skiff apiserver` runs it, with its generated CA and admin
//   token (clients use its admin kubeconfig);
// - kPlain: the same REST handler and HTTP server over plain HTTP, composed here so that tests
//   reach the store under it (to compact history) and set the bookmark interval.
namespace skiff::client::testing {

enum class ServerMode { kHttps, kPlain };

class TestApiServer {
 public:
  explicit TestApiServer(ServerMode mode = ServerMode::kHttps, int bookmark_interval_seconds = 60) {
    static std::atomic<int> counter{0};
    dir_ = std::filesystem::temp_directory_path() /
           ("skiff-client-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    if (mode == ServerMode::kHttps) {
      server_ = std::make_unique<apiserver::ApiServer>(
          apiserver::ApiServerOptions{.data_dir = dir_.string(), .port = 0, .fsync = false});
      server_->start();
      url_ = server_->url();
      return;
    }
    store_ = store::SqliteStore::open({.path = (dir_ / "state.db").string(), .fsync = false});
    handler_ = std::make_unique<apiserver::ApiHandler>(
        *store_,
        apiserver::ApiHandlerOptions{.bookmark_interval_seconds = bookmark_interval_seconds});
    handler_->ensureSystemNamespaces();
    http_ = serve(0);
    port_ = http_->port();
    url_ = "http://127.0.0.1:" + std::to_string(port_);
  }
  ~TestApiServer() {
    server_.reset();
    side_.reset();
    http_.reset();
    handler_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  TestApiServer(const TestApiServer&) = delete;
  TestApiServer& operator=(const TestApiServer&) = delete;

  // The admin kubeconfig resolved (kHttps), or just the URL (kPlain).
  ClientConfig config() const {
    if (!server_) return ClientConfig{.server = url_};
    return loadClientConfig({.kubeconfig = server_->adminKubeconfig()});
  }
  ClientPtr client(RestClientOptions options = {}) const {
    return makeRestClient(config(), std::move(options));
  }
  const std::string& url() const { return url_; }
  // kPlain only.
  store::Store& store() { return *store_; }
  // Forgets all history: watches from any earlier revision get 410 Gone.
  void compact() { store_->compact(store_->currentRevision()); }
  // Stops serving on url() (kPlain): clients see connection refused until resumeServing().
  void stopServing() { http_.reset(); }
  void resumeServing() { http_ = serve(port_); }
  // A second address for the same API (kPlain), that stays up across stopServing().
  std::string sideUrl() {
    if (!side_) side_ = serve(0);
    return "http://127.0.0.1:" + std::to_string(side_->port());
  }

 private:
  std::filesystem::path dir_;
  std::string url_;
  std::unique_ptr<apiserver::ApiServer> server_;
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<apiserver::ApiHandler> handler_;
  std::unique_ptr<apiserver::HttpServer> http_;
  std::unique_ptr<apiserver::HttpServer> side_;
  uint16_t port_ = 0;

  std::unique_ptr<apiserver::HttpServer> serve(uint16_t port) {
    auto http = std::make_unique<apiserver::HttpServer>(
        apiserver::HttpServerOptions{.port = port},
        [this](const apiserver::HttpRequest& req, apiserver::HttpResponse& res,
               const auto& stream) { handler_->handle(req, res, stream); });
    http->start();
    return http;
  }
};

}  // namespace skiff::client::testing
