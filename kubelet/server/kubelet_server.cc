#include "kubelet/server/kubelet_server.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "kubelet/server/exec_session.h"
#include "kubelet/server/log_reader.h"
#include "kubelet/server/websocket_channel.h"

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

// stdin=true (kubectl's parameter names) or input=1 (kube-apiserver's to kubelets).
bool streamParam(const HttpRequest& request, const std::string& name, const std::string& alias) {
  return boolParam(request, name) || boolParam(request, alias);
}

bool headerHasToken(std::string_view header, std::string_view token) {
  std::string lower(header);
  for (auto& c : lower)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  size_t start = 0;
  while (start <= lower.size()) {
    size_t comma = lower.find(',', start);
    if (comma == std::string::npos) comma = lower.size();
    std::string_view item = std::string_view(lower).substr(start, comma - start);
    while (!item.empty() && item.front() == ' ')
      item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ')
      item.remove_suffix(1);
    if (item == token) return true;
    start = comma + 1;
  }
  return false;
}

std::string readFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error(std::string("kubelet server: cannot read ") + what + " " + path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

KubeletServer::KubeletServer(KubeletServerOptions options) : options_(std::move(options)) {}

KubeletServer::~KubeletServer() {
  stop();
}

void KubeletServer::start() {
  if (!options_.reviewer)
    throw std::runtime_error(
        "kubelet server: no TokenReview/SubjectAccessReview client configured; refusing to serve "
        "open");
  KubeletAuthOptions auth = options_.auth;
  auth.node_name = options_.node_name;
  const bool tls = !options_.cert_file.empty();
  if (tls && !options_.client_ca_file.empty())
    auth.client_ca_pem = readFile(options_.client_ca_file, "client CA");
  auth_ = std::make_unique<KubeletAuth>(std::move(auth), options_.reviewer);
  apiserver::HttpServerOptions http;
  http.bind_address = options_.bind_address;
  http.port = options_.port;
  http.cert_file = options_.cert_file;
  http.key_file = options_.key_file;
  if (tls) http.client_ca_file = options_.client_ca_file;  // optional: tokens are served too
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

void KubeletServer::setServingCertificate(const std::string& cert_pem, const std::string& key_pem) {
  if (!server_) throw std::runtime_error("kubelet API: not started");
  server_->setCertificate(cert_pem, key_pem);
}

uint16_t KubeletServer::port() const {
  return server_ ? server_->port() : 0;
}

void KubeletServer::handle(
    const HttpRequest& request, HttpResponse& response,
    const std::function<apiserver::ResponseStream&(const HttpResponse&)>& start_stream) const {
  const auto parts = splitPath(request.path);
  if (parts.size() == 1 && parts[0] == "healthz") {
    // Open, as the kubelet's healthz port (10248) is.
    response.content_type = "text/plain";
    response.body = "ok";
    return;
  }
  if (!auth_) return textError(response, 500, "kubelet server: not started");
  const KubeletAuth::Result allowed = auth_->check(request);
  if (allowed.status != 200) return textError(response, allowed.status, allowed.message);
  if (!parts.empty() && parts[0] == "exec") return handleExec(request, parts, response);
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

std::string KubeletServer::runningContainer(const std::string& ns, const std::string& pod,
                                            const std::string& container, std::string& why) const {
  namespace fs = std::filesystem;
  // Pod log directories are LOG_DIR/<ns>_<pod>_<uid>; names and namespaces have no '_'.
  const std::string prefix = ns + "_" + pod + "_";
  std::vector<std::string> uids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(options_.log_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(prefix) && name.size() > prefix.size())
      uids.push_back(name.substr(prefix.size()));
  }
  if (uids.empty()) {
    why = "pod " + ns + "/" + pod + " is not on this node";
    return "";
  }
  const std::vector<std::string> ids = options_.runtime->list();
  for (const auto& uid : uids) {
    const std::string id_prefix = uid + "_" + container + "_";
    std::vector<std::pair<long, std::string>> attempts;
    for (const auto& id : ids) {
      if (!id.starts_with(id_prefix)) continue;
      const std::string n = id.substr(id_prefix.size());
      if (n.empty() || !std::all_of(n.begin(), n.end(), [](char c) {
            return std::isdigit(static_cast<unsigned char>(c)) != 0;
          }))
        continue;
      attempts.emplace_back(std::stol(n), id);
    }
    std::sort(attempts.rbegin(), attempts.rend());  // the newest first
    for (const auto& [attempt, id] : attempts) {
      if (options_.runtime->status(id).state == ContainerState::kRunning) return id;
    }
  }
  why = "container " + container + " of pod " + ns + "/" + pod + " is not running";
  return "";
}

void KubeletServer::handleExec(const HttpRequest& request, const std::vector<std::string>& parts,
                               HttpResponse& response) const {
  if (request.method != "GET" && request.method != "POST")
    return textError(response, 405, "method not allowed");
  if (parts.size() != 4)
    return textError(response, 400,
                     "want /exec/{namespace}/{pod}/{container}?command=..., got " + request.path);
  std::vector<std::string> argv;
  for (auto [it, end] = request.query.equal_range("command"); it != end; ++it)
    argv.push_back(it->second);
  if (argv.empty()) return textError(response, 400, "you must specify at least 1 command");
  ExecStreamOptions streams;
  streams.with_stdin = streamParam(request, "stdin", "input");
  streams.with_stdout = streamParam(request, "stdout", "output");
  streams.with_stderr = streamParam(request, "stderr", "error");
  streams.tty = boolParam(request, "tty");
  if (streams.tty) streams.with_stderr = false;  // a terminal carries both on stdout
  if (!streams.with_stdin && !streams.with_stdout && !streams.with_stderr)
    return textError(response, 400, "you must specify at least one of stdin, stdout, stderr");

  // Before the protocol checks: kubectl retries a failed WebSocket upgrade with SPDY, and the
  // answer it shows is the second one's.
  if (!options_.runtime)
    return textError(response, 501, "exec is not available: this kubelet runs no containers");
  std::string why;
  const std::string id = runningContainer(parts[1], parts[2], parts[3], why);
  if (id.empty()) return textError(response, 404, why);

  // Only WebSocket (what kubectl 1.30+ speaks first); SPDY clients fall back to nothing.
  if (!headerHasToken(request.header("upgrade"), "websocket") ||
      !headerHasToken(request.header("connection"), "upgrade"))
    return textError(response, 400,
                     "exec needs a WebSocket upgrade (Upgrade: websocket, Connection: Upgrade) "
                     "with subprotocol v5.channel.k8s.io or v4.channel.k8s.io; SPDY is not "
                     "supported");
  const std::string key(request.header("sec-websocket-key"));
  if (key.empty() || request.header("sec-websocket-version") != "13")
    return textError(response, 400, "exec: want Sec-WebSocket-Key and Sec-WebSocket-Version: 13");
  const std::string protocol = ws::chooseProtocol(request.header("sec-websocket-protocol"));
  if (protocol.empty())
    return textError(response, 400,
                     "exec: no supported subprotocol in Sec-WebSocket-Protocol \"" +
                         std::string(request.header("sec-websocket-protocol")) +
                         "\": want v5.channel.k8s.io or v4.channel.k8s.io");

  response.status = 101;
  response.content_type.clear();
  response.headers = {{"Upgrade", "websocket"},
                      {"Connection", "Upgrade"},
                      {"Sec-WebSocket-Accept", ws::acceptKey(key)},
                      {"Sec-WebSocket-Protocol", protocol}};
  ContainerRuntime* runtime = options_.runtime;
  response.upgrade = [runtime, id, argv, streams, protocol](apiserver::ByteStream& stream) {
    runExecSession(*runtime, id, argv, streams, protocol, stream);
  };
}

}  // namespace skiff::kubelet
