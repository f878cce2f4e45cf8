#include "control/apiserver/server.h"

#include <filesystem>
#include <stdexcept>

#include "control/store/sqlite_store.h"

namespace skiff::apiserver {

ApiServer::ApiServer(ApiServerOptions options) : options_(std::move(options)) {}

ApiServer::~ApiServer() {
  stop();
}

void ApiServer::start() {
  std::error_code ec;
  std::filesystem::create_directories(options_.data_dir, ec);
  if (ec) {
    throw std::runtime_error("cannot create data directory " + options_.data_dir + ": " +
                             ec.message());
  }
  store_ = store::SqliteStore::open(
      {.path = (std::filesystem::path(options_.data_dir) / "state.db").string(),
       .fsync = options_.fsync});
  http_ = std::make_unique<HttpServer>(
      HttpServerOptions{.bind_address = options_.bind_address,
                        .port = options_.port,
                        .cert_file = options_.cert_file,
                        .key_file = options_.key_file},
      [this](const HttpRequest& request, HttpResponse& response, const auto& start_stream) {
        handler_->handle(request, response, start_stream);
      });
  handler_ = std::make_unique<ApiHandler>(*store_, ApiHandlerOptions{});
  handler_->ensureSystemNamespaces();
  http_->start();
}

void ApiServer::stop() {
  if (http_) http_->stop();
  http_.reset();
  handler_.reset();
  store_.reset();
}

uint16_t ApiServer::port() const {
  return http_ ? http_->port() : 0;
}

std::string ApiServer::url() const {
  std::string host = options_.bind_address == "0.0.0.0" ? "127.0.0.1" : options_.bind_address;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return std::string(http_ && http_->tls() ? "https://" : "http://") + host + ":" +
         std::to_string(port());
}

}  // namespace skiff::apiserver
