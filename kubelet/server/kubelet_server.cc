#include "kubelet/server/kubelet_server.h"

#include <openssl/crypto.h>

#include <chrono>
#include <stdexcept>
#include <vector>

#include "kubelet/server/log_reader.h"

namespace skiff::kubelet {
namespace {

using apiserver::HttpRequest;
using apiserver::HttpResponse;

void textError(HttpResponse& response, int status, std::string message) {
  response.status = status;
  response.content_type = "text/plain; charset=utf-8";
  response.body = std::move(message) + "\n";
}

std::vector<std::string> splitPath(std::string_view path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > start)
      out.push_back(apiserver::percentDecode(path.substr(start, slash - start), false));
    start = slash + 1;
  }
  return out;
}

// A non-negative integer query parameter, or nullopt when absent; throws on anything else.
std::optional<int64_t> intParam(const HttpRequest& request, const std::string& name) {
  auto it = request.query.find(name);
  if (it == request.query.end() || it->second.empty()) return std::nullopt;
  size_t used = 0;
  int64_t value = -1;
  try {
    value = std::stoll(it->second, &used);
  } catch (const std::exception&) {
  }
  if (used != it->second.size() || value < 0)
    throw std::invalid_argument("query parameter " + name + "=" + it->second +
                                ": want a non-negative integer");
  return value;
}

bool boolParam(const HttpRequest& request, const std::string& name) {
  auto it = request.query.find(name);
  return it != request.query.end() && apiserver::queryTrue(it->second);
}

bool tokenMatches(std::string_view header, const std::string& token) {
  constexpr std::string_view kBearer = "Bearer ";
  if (header.substr(0, kBearer.size()) != kBearer) return false;
  const std::string_view given = header.substr(kBearer.size());
  return given.size() == token.size() &&
         CRYPTO_memcmp(given.data(), token.data(), given.size()) == 0;
}

}  // namespace

KubeletServer::KubeletServer(KubeletServerOptions options) : options_(std::move(options)) {}

KubeletServer::~KubeletServer() {
  stop();
}

void KubeletServer::start() {
  if (options_.bearer_token.empty())
    throw std::runtime_error("kubelet server: no bearer token configured; refusing to serve open");
  apiserver::HttpServerOptions http;
  http.bind_address = options_.bind_address;
  http.port = options_.port;
  http.cert_file = options_.cert_file;
  http.key_file = options_.key_file;
  http.idle_timeout_seconds = 3600;  // a follow may be idle for long between lines
  server_ = std::make_unique<apiserver::HttpServer>(
      http, [this](const HttpRequest& request, HttpResponse& response, const auto& start_stream) {
        handle(request, response, start_stream);
      });
  server_->start();
}

void KubeletServer::stop() {
  if (server_) server_->stop();
}

uint16_t KubeletServer::port() const {
  return server_ ? server_->port() : 0;
}

void KubeletServer::handle(
    const HttpRequest& request, HttpResponse& response,
    const std::function<apiserver::ResponseStream&(const HttpResponse&)>& start_stream) const {
  if (!tokenMatches(request.header("authorization"), options_.bearer_token))
    return textError(response, 401, "Unauthorized");
  const auto parts = splitPath(request.path);
  if (parts.size() == 1 && parts[0] == "healthz") {
    response.content_type = "text/plain";
    response.body = "ok";
    return;
  }
  if (parts.empty() || parts[0] != "containerLogs")
    return textError(response, 404, "404 page not found: " + request.path);
  if (request.method != "GET") return textError(response, 405, "method not allowed");
  if (parts.size() != 4)
    return textError(response, 400,
                     "want /containerLogs/{namespace}/{pod}/{container}, got " + request.path);
  LogOptions options;
  try {
    options.follow = boolParam(request, "follow");
    options.timestamps = boolParam(request, "timestamps");
    options.previous = boolParam(request, "previous");
    options.tail_lines = intParam(request, "tailLines");
    options.since_seconds = intParam(request, "sinceSeconds");
    options.limit_bytes = intParam(request, "limitBytes");
  } catch (const std::invalid_argument& e) {
    return textError(response, 400, e.what());
  }
  std::string file;
  try {
    file = findContainerLog(options_.log_dir, parts[1], parts[2], parts[3], options.previous);
  } catch (const LogNotFound& e) {
    return textError(response, 404, e.what());
  }
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  HttpResponse head;
  head.content_type = "text/plain";
  auto& stream = start_stream(head);
  try {
    streamContainerLog(
        file, options, [&](std::string_view chunk) { return stream.write(chunk); },
        [&] { return stream.alive(); }, now);
  } catch (const LogNotFound&) {
    // The file went between finding and opening it (the pod was removed): end the stream.
  }
}

}  // namespace skiff::kubelet
