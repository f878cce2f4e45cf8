#include "control/client/rest_client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/stat.h>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <functional>
#include <limits>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "control/api/codec.h"
#include "control/api/json.h"
#include "control/api/yaml.h"
#include "skiff/version.h"

namespace skiff::client {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using api::Value;

// ---------------------------------------------------------------------------------------------
// URLs, queries, messages.

struct ServerUrl {
  bool tls = true;
  std::string host;  // without brackets
  std::string port;
  std::string prefix;  // a path prefix without the trailing slash ("" mostly)
  std::string host_header;
  std::string text;  // scheme://host:port, for messages
};

ServerUrl parseServerUrl(const std::string& server, const std::string& source) {
  auto fail = [&](const std::string& why) {
    return std::invalid_argument((source.empty() ? std::string() : source + ": ") + "server \"" +
                                 server + "\": " + why);
  };
  ServerUrl url;
  std::string_view rest = server;
  if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    url.tls = false;
    rest.remove_prefix(7);
  } else {
    throw fail("expected an https:// or http:// URL");
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    url.prefix = std::string(rest.substr(slash));
    while (!url.prefix.empty() && url.prefix.back() == '/')
      url.prefix.pop_back();
  }
  if (authority.empty()) throw fail("no host");
  if (authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) throw fail("unterminated IPv6 address");
    url.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') throw fail("unexpected text after the IPv6 address");
      url.port = std::string(after.substr(1));
    }
  } else {
    size_t colon = authority.rfind(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) url.port = std::string(authority.substr(colon + 1));
  }
  if (url.host.empty()) throw fail("no host");
  if (url.port.empty()) url.port = url.tls ? "443" : "80";
  if (!std::all_of(url.port.begin(), url.port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      url.port.size() > 5 || std::stoi(url.port) > 65535 || std::stoi(url.port) == 0) {
    throw fail("invalid port \"" + url.port + "\"");
  }
  bool v6 = url.host.find(':') != std::string::npos;
  url.host_header = (v6 ? "[" + url.host + "]" : url.host) + ":" + url.port;
  url.text = std::string(url.tls ? "https://" : "http://") + url.host_header;
  return url;
}

void appendEscaped(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : text) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '.' || c == '_' || c == '~';
    if (plain) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
}

std::string lowerFirst(std::string text) {
  if (!text.empty() && text[0] >= 'A' && text[0] <= 'Z') text[0] = static_cast<char>(text[0] + 32);
  return text;
}

std::string describe(const beast::error_code& ec) {
  if (ec == beast::error::timeout) return "timed out";
  if (ec == http::error::end_of_stream || ec == asio::error::eof ||
      ec == asio::ssl::error::stream_truncated) {
    return "the server closed the connection";
  }
  return lowerFirst(ec.message());
}

// Warning: 299 - "unknown field \"spec.foo\"" -> unknown field "spec.foo"
std::string warningText(std::string_view header) {
  size_t open = header.find('"');
  if (open == std::string_view::npos) return std::string(header);
  std::string out;
  for (size_t i = open + 1; i < header.size(); ++i) {
    char c = header[i];
    if (c == '\\' && i + 1 < header.size()) {
      out += header[++i];
    } else if (c == '"') {
      break;
    } else {
      out += c;
    }
  }
  return out;
}

std::string reasonForCode(int code) {
  switch (code) {
    case 400:
      return "BadRequest";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "NotFound";
    case 405:
      return "MethodNotAllowed";
    case 406:
      return "NotAcceptable";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 413:
      return "RequestEntityTooLarge";
    case 415:
      return "UnsupportedMediaType";
    case 422:
      return "Invalid";
    case 429:
      return "TooManyRequests";
    case 500:
      return "InternalError";
    case 503:
      return "ServiceUnavailable";
    case 504:
      return "Timeout";
    default:
      return "";
  }
}

// The ApiError of an answer that is not 2xx: its Status when it sent one.
ApiError errorFromStatus(int http_status, const std::string& body, const std::string& what) {
  Value status;
  try {
    status = api::parseJson(body);
  } catch (const std::exception&) {
    status = Value();
  }
  if (status.isObject()) {
    const Value* kind = status.find("kind");
    if (kind != nullptr && kind->isString() && kind->text() == "Status") {
      int code = http_status;
      if (const Value* c = status.find("code"); c != nullptr && c->isInteger() && c->asInt() > 0)
        code = static_cast<int>(c->asInt());
      std::string reason;
      if (const Value* r = status.find("reason"); r != nullptr && r->isString()) reason = r->text();
      if (reason.empty()) reason = reasonForCode(code);
      std::string message;
      if (const Value* m = status.find("message"); m != nullptr && m->isString())
        message = m->text();
      if (message.empty()) message = what + ": the server answered HTTP " + std::to_string(code);
      return ApiError(code, std::move(reason), message, std::move(status));
    }
  }
  std::string text = body.size() > 512 ? body.substr(0, 512) + "..." : body;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.pop_back();
  std::string message = what + ": the server answered HTTP " + std::to_string(http_status);
  if (!text.empty()) message += ": " + text;
  return ApiError(http_status, reasonForCode(http_status), message);
}

// A PATCH that carries metadata.resourceVersion (or a JSON patch that tests it) fails with 409 if
// it was applied once already, so it is safe to resend.
bool patchHasPrecondition(PatchType type, std::string_view body) {
  try {
    if (type == PatchType::kJson) {
      Value ops = api::parseJson(body);
      if (!ops.isArray()) return false;
      for (const auto& op : ops.items()) {
        const Value* name = op.find("op");
        const Value* path = op.find("path");
        if (name != nullptr && path != nullptr && name->isString() && path->isString() &&
            name->text() == "test" && path->text() == "/metadata/resourceVersion") {
          return true;
        }
      }
      return false;
    }
    std::vector<Value> docs = api::parseDocuments(body);
    if (docs.size() != 1 || !docs[0].isObject()) return false;
    const Value* meta = docs[0].find("metadata");
    const Value* rv = meta != nullptr ? meta->find("resourceVersion") : nullptr;
    return rv != nullptr && rv->isString() && !rv->text().empty();
  } catch (const std::exception&) {
    return false;
  }
}

std::string_view contentTypeOf(PatchType type) {
  switch (type) {
    case PatchType::kJson:
      return "application/json-patch+json";
    case PatchType::kMerge:
      return "application/merge-patch+json";
    case PatchType::kStrategicMerge:
      return "application/strategic-merge-patch+json";
    case PatchType::kApply:
      return "application/apply-patch+yaml";
  }
  return "application/merge-patch+json";
}

std::string metadataField(const Value& object, std::string_view field) {
  const Value* meta = object.find("metadata");
  const Value* v = meta != nullptr ? meta->find(field) : nullptr;
  return v != nullptr && v->isString() ? v->text() : std::string();
}

// ---------------------------------------------------------------------------------------------
// Connections.

// One HTTP/1.1 connection with its own io_context: each operation runs the context on the calling
// thread until it completes or the deadline closes the socket (beast::tcp_stream's timeouts).
class Connection {
 public:
  explicit Connection(ssl::context* tls) {
    if (tls != nullptr) {
      secure_ = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc_, *tls);
    } else {
      plain_ = std::make_unique<beast::tcp_stream>(ioc_);
    }
  }

  asio::io_context& ioc() { return ioc_; }
  beast::tcp_stream& lowest() { return secure_ ? beast::get_lowest_layer(*secure_) : *plain_; }
  beast::flat_buffer& buffer() { return buffer_; }
  bool tls() const { return secure_ != nullptr; }
  beast::ssl_stream<beast::tcp_stream>& secure() { return *secure_; }
  Clock::time_point idleSince() const { return idle_since_; }
  void markIdle() { idle_since_ = Clock::now(); }

  template <class F>
  auto visit(F&& f) {
    if (secure_) return f(*secure_);
    return f(*plain_);
  }

  // Runs one asynchronous operation to completion, with a deadline (none: nullopt).
  template <class Start>
  beast::error_code run(std::optional<Clock::time_point> deadline, Start&& start) {
    beast::error_code result = asio::error::would_block;
    if (deadline) {
      lowest().expires_at(*deadline);
    } else {
      lowest().expires_never();
    }
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    ioc_.restart();
    ioc_.run();
    return result;
  }

  // An idle connection whose peer closed it (or sent something unasked) is not reused.
  bool stillUsable() {
    if (!lowest().socket().is_open()) return false;
    if (buffer_.size() != 0) return false;
    pollfd p{lowest().socket().native_handle(), POLLIN | POLLRDHUP, 0};
    int n = ::poll(&p, 1, 0);
    return n == 0;
  }

  void close() {
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest().socket().close(ec);
  }

 private:
  asio::io_context ioc_;
  std::unique_ptr<beast::tcp_stream> plain_;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure_;
  beast::flat_buffer buffer_;
  Clock::time_point idle_since_ = Clock::now();
};

using ConnectionPtr = std::unique_ptr<Connection>;

// The bearer token: from the kubeconfig, or its tokenFile, re-read whenever the file changes.
class TokenSource {
 public:
  TokenSource(std::string token, std::string file)
      : token_(std::move(token)), file_(std::move(file)) {}

  std::string current() {
    std::lock_guard lock(mutex_);
    if (file_.empty()) return token_;
    struct stat st {};
    if (::stat(file_.c_str(), &st) == 0) {
      bool changed = st.st_mtim.tv_sec != mtime_.tv_sec || st.st_mtim.tv_nsec != mtime_.tv_nsec ||
                     st.st_size != size_ || st.st_ino != inode_;
      if (changed) {
        std::ifstream in(file_, std::ios::binary);
        std::stringstream text;
        text << in.rdbuf();
        if (in) {
          std::string token = text.str();
          while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back())))
            token.pop_back();
          size_t start = 0;
          while (start < token.size() && std::isspace(static_cast<unsigned char>(token[start])))
            ++start;
          token_ = token.substr(start);
          mtime_ = st.st_mtim;
          size_ = st.st_size;
          inode_ = st.st_ino;
        }
      }
    }
    return token_;
  }

 private:
  std::mutex mutex_;
  std::string token_;
  std::string file_;
  timespec mtime_{};
  off_t size_ = -1;
  ino_t inode_ = 0;
};

// Warnings of the last call, per thread and client.
std::atomic<uint64_t> g_next_client_id{1};
thread_local std::unordered_map<uint64_t, std::vector<std::string>> t_warnings;

// ---------------------------------------------------------------------------------------------
// Watch streams.

WatchEvent::Type eventType(std::string_view name, bool& known) {
  known = true;
  if (name == "ADDED") return WatchEvent::Type::kAdded;
  if (name == "MODIFIED") return WatchEvent::Type::kModified;
  if (name == "DELETED") return WatchEvent::Type::kDeleted;
  if (name == "BOOKMARK") return WatchEvent::Type::kBookmark;
  if (name == "ERROR") return WatchEvent::Type::kError;
  known = false;
  return WatchEvent::Type::kError;
}

class RestWatch : public WatchStream {
 public:
  using Parser = http::response_parser<http::empty_body>;

  RestWatch(ConnectionPtr connection, std::unique_ptr<Parser> parser, std::string what)
      : connection_(std::move(connection)), parser_(std::move(parser)), what_(std::move(what)) {
    reader_ = std::thread([this] { read(); });
  }

  ~RestWatch() override {
    cancel();
    if (reader_.joinable()) reader_.join();
  }

  bool next(WatchEvent& event, std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return !events_.empty() || finished_ || cancelled_; });
    if (cancelled_ || events_.empty()) return false;
    event = std::move(events_.front());
    events_.pop_front();
    return true;
  }

  bool ended() const override {
    std::lock_guard lock(mutex_);
    return cancelled_ || (finished_ && events_.empty());
  }

  std::optional<ApiError> error() const override {
    std::lock_guard lock(mutex_);
    return error_;
  }

  void cancel() override {
    {
      std::lock_guard lock(mutex_);
      if (cancelled_) return;
      cancelled_ = true;
    }
    cv_.notify_all();
    Connection* c = connection_.get();
    asio::post(c->ioc(), [c] { c->close(); });
  }

 private:
  void read() {
    beast::error_code ec;
    if (parser_->chunked()) {
      on_chunk_ = [this](std::uint64_t, beast::string_view body, beast::error_code& e) {
        if (!consume(std::string_view(body.data(), body.size()))) e = http::error::bad_chunk;
        return body.size();
      };
      parser_->on_chunk_body(on_chunk_);
      ec = connection_->run(std::nullopt, [&](auto handler) {
        connection_->visit([&](auto& stream) {
          http::async_read(stream, connection_->buffer(), *parser_, std::move(handler));
        });
      });
    } else {
      // A stream without chunking (only when something in between rewrote it): read it whole.
      http::response_parser<http::string_body> whole(std::move(*parser_));
      whole.body_limit(std::numeric_limits<std::uint64_t>::max());
      ec = connection_->run(std::nullopt, [&](auto handler) {
        connection_->visit([&](auto& stream) {
          http::async_read(stream, connection_->buffer(), whole, std::move(handler));
        });
      });
      if (!ec) consume(whole.get().body());
    }
    if (!ec && !pending_.empty()) consume("\n");
    {
      std::lock_guard lock(mutex_);
      if (ec && !cancelled_ && !error_ && !bad_event_) {
        error_ = ApiError(0, "", "watch " + what_ + ": " + describe(ec));
      }
      finished_ = true;
    }
    cv_.notify_all();
    connection_->close();
  }

  // Splits the stream into lines, each one event. False on a malformed event (the stream ends).
  bool consume(std::string_view data) {
    pending_.append(data.data(), data.size());
    size_t start = 0;
    while (true) {
      size_t nl = pending_.find('\n', start);
      if (nl == std::string::npos) break;
      std::string_view line(pending_.data() + start, nl - start);
      start = nl + 1;
      if (line.find_first_not_of(" \r\t") == std::string_view::npos) continue;
      if (!deliver(line)) {
        pending_.clear();
        return false;
      }
    }
    pending_.erase(0, start);
    return true;
  }

  bool deliver(std::string_view line) {
    WatchEvent event;
    std::string problem;
    try {
      Value v = api::parseJson(line);
      const Value* type = v.find("type");
      Value* object = v.find("object");
      bool known = false;
      if (type == nullptr || !type->isString() || object == nullptr || !object->isObject()) {
        problem = "an event without type or object";
      } else {
        event.type = eventType(type->text(), known);
        if (!known) problem = "unknown event type \"" + type->text() + "\"";
        event.object = std::move(*object);
      }
    } catch (const std::exception& e) {
      problem = e.what();
    }
    std::lock_guard lock(mutex_);
    if (!problem.empty()) {
      bad_event_ = true;
      error_ = ApiError(0, "", "watch " + what_ + ": malformed event: " + problem);
      return false;
    }
    if (event.type == WatchEvent::Type::kError && !error_) {
      const Value& status = event.object;
      int code = 500;
      if (const Value* c = status.find("code"); c != nullptr && c->isInteger()) {
        code = static_cast<int>(c->asInt());
      }
      std::string reason;
      if (const Value* r = status.find("reason"); r != nullptr && r->isString()) reason = r->text();
      std::string message = "watch " + what_ + " failed";
      if (const Value* m = status.find("message"); m != nullptr && m->isString()) {
        message = m->text();
      }
      error_ = ApiError(code, std::move(reason), message, status);
    }
    events_.push_back(std::move(event));
    cv_.notify_one();
    return true;
  }

  ConnectionPtr connection_;
  std::unique_ptr<Parser> parser_;
  std::string what_;
  std::string pending_;  // reader thread only
  std::function<std::size_t(std::uint64_t, beast::string_view, beast::error_code&)> on_chunk_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<WatchEvent> events_;
  bool finished_ = false;
  bool cancelled_ = false;
  bool bad_event_ = false;
  std::optional<ApiError> error_;
  std::thread reader_;
};

// ---------------------------------------------------------------------------------------------
// The client.

struct Request {
  std::string method = "GET";
  std::string path;
  std::vector<std::pair<std::string, std::string>> query;
  std::string body;
  std::string content_type;
  std::string accept = "application/json";
  bool idempotent = true;
};

class RestClient : public Client {
 public:
  RestClient(const ClientConfig& config, RestClientOptions options)
      : config_(config),
        options_(std::move(options)),
        url_(parseServerUrl(config.server, config.source)),
        token_(config.token, config.token_file),
        id_(g_next_client_id.fetch_add(1)) {
    if (options_.user_agent.empty()) options_.user_agent = std::string("skiff/") + kVersion;
    if (options_.max_retries < 0) options_.max_retries = 0;
    if (url_.tls) makeTlsContext();
  }

  ~RestClient() override {
    std::lock_guard lock(pool_mutex_);
    for (auto& c : idle_)
      c->close();
  }

  // ----- Client -----

  Value get(const api::ResourceType& type, std::string_view ns, std::string_view name) override {
    return call({.path = resourcePath(type, ns, name)});
  }

  Value list(const api::ResourceType& type, std::string_view ns,
             const ListOptions& options) override {
    Request r{.path = resourcePath(type, ns)};
    addListQuery(r.query, options);
    return call(r);
  }

  Value create(const api::ResourceType& type, std::string_view ns, const Value& object,
               const WriteOptions& options) override {
    Request r{.method = "POST",
              .path = resourcePath(type, namespaceFor(type, ns, object)),
              .body = api::writeJson(object),
              .content_type = "application/json",
              .idempotent = false};
    addWriteQuery(r.query, options, false);
    return call(r);
  }

  Value update(const api::ResourceType& type, std::string_view ns, const Value& object,
               const WriteOptions& options) override {
    return put(type, ns, object, options, "");
  }

  Value updateStatus(const api::ResourceType& type, std::string_view ns, const Value& object,
                     const WriteOptions& options) override {
    return put(type, ns, object, options, "status");
  }

  Value patch(const api::ResourceType& type, std::string_view ns, std::string_view name,
              PatchType patch_type, std::string_view body, const WriteOptions& options,
              std::string_view subresource) override {
    requireName(type, name, "patch");
    Request r{.method = "PATCH",
              .path = resourcePath(type, ns, name, subresource),
              .body = std::string(body),
              .content_type = std::string(contentTypeOf(patch_type)),
              .idempotent = patchHasPrecondition(patch_type, body)};
    addWriteQuery(r.query, options, patch_type == PatchType::kApply);
    return call(r);
  }

  Value remove(const api::ResourceType& type, std::string_view ns, std::string_view name,
               const DeleteOptions& options) override {
    requireName(type, name, "delete");
    Request r{.method = "DELETE",
              .path = resourcePath(type, ns, name),
              .body = deleteBody(options),
              .content_type = "application/json"};
    if (options.dry_run) r.query.emplace_back("dryRun", "All");
    return call(r);
  }

  Value removeCollection(const api::ResourceType& type, std::string_view ns,
                         const ListOptions& list_options, const DeleteOptions& options) override {
    Request r{.method = "DELETE",
              .path = resourcePath(type, ns),
              .body = deleteBody(options),
              .content_type = "application/json"};
    addListQuery(r.query, list_options);
    if (options.dry_run) r.query.emplace_back("dryRun", "All");
    return call(r);
  }

  WatchStreamPtr watch(const api::ResourceType& type, std::string_view ns,
                       const WatchOptions& options) override {
    Request r{.path = resourcePath(type, ns)};
    r.query.emplace_back("watch", "true");
    if (!options.label_selector.empty())
      r.query.emplace_back("labelSelector", options.label_selector);
    if (!options.field_selector.empty())
      r.query.emplace_back("fieldSelector", options.field_selector);
    if (!options.resource_version.empty())
      r.query.emplace_back("resourceVersion", options.resource_version);
    if (options.allow_bookmarks) r.query.emplace_back("allowWatchBookmarks", "true");
    if (options.timeout_seconds > 0)
      r.query.emplace_back("timeoutSeconds", std::to_string(options.timeout_seconds));
    return openWatch(r);
  }

  Value getScale(const api::ResourceType& type, std::string_view ns,
                 std::string_view name) override {
    requireName(type, name, "get the scale of");
    return call({.path = resourcePath(type, ns, name, "scale")});
  }

  Value updateScale(const api::ResourceType& type, std::string_view ns,
                    const Value& scale) override {
    std::string name = metadataField(scale, "name");
    requireName(type, name, "update the scale of");
    Request r{.method = "PUT",
              .path = resourcePath(type, ns, name, "scale"),
              .body = api::writeJson(scale),
              .content_type = "application/json"};
    return call(r);
  }

  void bind(std::string_view ns, std::string_view pod_name, std::string_view node_name) override {
    const api::ResourceType* pods = api::Registry::builtin().byResource("", "v1", "pods");
    Value binding = Value::object();
    binding.append("apiVersion", Value::string("v1"));
    binding.append("kind", Value::string("Binding"));
    Value meta = Value::object();
    meta.append("name", Value::string(std::string(pod_name)));
    meta.append("namespace", Value::string(std::string(ns)));
    binding.append("metadata", std::move(meta));
    Value target = Value::object();
    target.append("apiVersion", Value::string("v1"));
    target.append("kind", Value::string("Node"));
    target.append("name", Value::string(std::string(node_name)));
    binding.append("target", std::move(target));
    Request r{.method = "POST",
              .path = resourcePath(*pods, ns, pod_name, "binding"),
              .body = api::writeJson(binding),
              .content_type = "application/json",
              .idempotent = false};
    call(r);
  }

  RawResponse raw(const RawRequest& request) override {
    Request r{.method = request.method,
              .path = request.path,
              .query = request.query,
              .body = request.body,
              .content_type = request.content_type,
              .accept = request.accept};
    r.idempotent = r.method == "GET" || r.method == "HEAD" || r.method == "PUT" ||
                   r.method == "DELETE" || r.method == "OPTIONS";
    return execute(r);
  }

  std::vector<std::string> lastWarnings() const override {
    auto it = t_warnings.find(id_);
    return it == t_warnings.end() ? std::vector<std::string>{} : it->second;
  }

 private:
  // ----- request building -----

  std::string namespaceFor(const api::ResourceType& type, std::string_view ns,
                           const Value& object) const {
    if (!type.namespaced) return "";
    if (!ns.empty()) return std::string(ns);
    std::string from_object = metadataField(object, "namespace");
    return from_object.empty() ? config_.default_namespace : from_object;
  }

  static void requireName(const api::ResourceType& type, std::string_view name,
                          std::string_view verb) {
    if (name.empty()) {
      throw std::invalid_argument("cannot " + std::string(verb) + " a " + type.kind +
                                  " without a name");
    }
  }

  Value put(const api::ResourceType& type, std::string_view ns, const Value& object,
            const WriteOptions& options, std::string_view subresource) {
    std::string name = metadataField(object, "name");
    requireName(type, name, "update");
    Request r{.method = "PUT",
              .path = resourcePath(type, namespaceFor(type, ns, object), name, subresource),
              .body = api::writeJson(object),
              .content_type = "application/json"};
    addWriteQuery(r.query, options, false);
    return call(r);
  }

  static void addListQuery(std::vector<std::pair<std::string, std::string>>& q,
                           const ListOptions& o) {
    if (!o.label_selector.empty()) q.emplace_back("labelSelector", o.label_selector);
    if (!o.field_selector.empty()) q.emplace_back("fieldSelector", o.field_selector);
    if (o.limit > 0) q.emplace_back("limit", std::to_string(o.limit));
    if (!o.continue_token.empty()) q.emplace_back("continue", o.continue_token);
    if (!o.resource_version.empty()) q.emplace_back("resourceVersion", o.resource_version);
    if (!o.resource_version_match.empty())
      q.emplace_back("resourceVersionMatch", o.resource_version_match);
  }

  void addWriteQuery(std::vector<std::pair<std::string, std::string>>& q, const WriteOptions& o,
                     bool apply) const {
    if (o.dry_run) q.emplace_back("dryRun", "All");
    q.emplace_back("fieldManager",
                   o.field_manager.empty() ? options_.field_manager : o.field_manager);
    if (!o.field_validation.empty()) q.emplace_back("fieldValidation", o.field_validation);
    if (apply && o.force) q.emplace_back("force", "true");
  }

  static std::string deleteBody(const DeleteOptions& o) {
    Value body = Value::object();
    body.append("kind", Value::string("DeleteOptions"));
    body.append("apiVersion", Value::string("v1"));
    if (!o.propagation_policy.empty())
      body.append("propagationPolicy", Value::string(o.propagation_policy));
    if (o.grace_period_seconds)
      body.append("gracePeriodSeconds", Value::integer(*o.grace_period_seconds));
    if (!o.precondition_uid.empty() || !o.precondition_resource_version.empty()) {
      Value pre = Value::object();
      if (!o.precondition_uid.empty()) pre.append("uid", Value::string(o.precondition_uid));
      if (!o.precondition_resource_version.empty())
        pre.append("resourceVersion", Value::string(o.precondition_resource_version));
      body.append("preconditions", std::move(pre));
    }
    if (o.dry_run) {
      Value all = Value::array();
      all.push(Value::string("All"));
      body.append("dryRun", std::move(all));
    }
    return api::writeJson(body);
  }

  std::string target(const Request& r) const {
    std::string t = url_.prefix + r.path;
    if (!r.query.empty()) t += "?" + encodeQuery(r.query);
    return t;
  }

  std::string what(const Request& r) const {
    return r.method + " " + url_.text + url_.prefix + r.path;
  }

  // ----- the transport -----

  // A 2xx answer's body as a Value; anything else throws.
  Value call(const Request& r) {
    RawResponse response = execute(r);
    if (response.status < 200 || response.status >= 300) {
      throw errorFromStatus(response.status, response.body, what(r));
    }
    if (response.body.empty()) return Value::object();
    try {
      return api::parseJson(response.body);
    } catch (const std::exception& e) {
      throw ApiError(0, "", what(r) + ": the server sent a body that is not JSON: " + e.what());
    }
  }

  enum class Failure { kNone, kNotSent, kMaybeSent };

  struct Attempt {
    Failure failure = Failure::kNone;
    std::string message;
    RawResponse response;
  };

  // Sends `r` with the retry policy; throws ApiError(0) when no answer came.
  RawResponse execute(const Request& r) {
    std::vector<std::string>& warnings = t_warnings[id_];
    warnings.clear();
    for (int attempt = 0;; ++attempt) {
      Attempt a = once(r);
      bool last = attempt >= options_.max_retries;
      if (a.failure == Failure::kNone) {
        int s = a.response.status;
        bool retry = s == 429 || s == 503 || (s >= 500 && r.idempotent);
        if (!retry || last) {
          warnings = a.response.warnings;
          return std::move(a.response);
        }
        pause(attempt, retryAfter(a.response));
        continue;
      }
      bool retry = a.failure == Failure::kNotSent || r.idempotent;
      if (!retry || last) throw ApiError(0, "", a.message);
      pause(attempt, std::nullopt);
    }
  }

  static std::optional<std::chrono::milliseconds> retryAfter(const RawResponse& response) {
    for (const auto& [name, value] : response.headers) {
      if (name != "retry-after") continue;
      try {
        size_t used = 0;
        long seconds = std::stol(value, &used);
        if (used == value.size() && seconds >= 0) {
          return std::chrono::milliseconds(std::min<long>(seconds, 60) * 1000);
        }
      } catch (const std::exception&) {
      }
    }
    return std::nullopt;
  }

  void pause(int attempt, std::optional<std::chrono::milliseconds> told) {
    std::chrono::milliseconds delay;
    if (told) {
      delay = *told;
    } else {
      double base = static_cast<double>(options_.initial_backoff.count()) *
                    std::pow(2.0, std::min(attempt, 30));
      base = std::min(base, static_cast<double>(options_.max_backoff.count()));
      thread_local std::mt19937_64 rng{std::random_device{}()};
      std::uniform_real_distribution<double> jitter(0.5, 1.0);
      delay = std::chrono::milliseconds(static_cast<int64_t>(base * jitter(rng)));
    }
    std::this_thread::sleep_for(delay);
  }

  ConnectionPtr takeIdle() {
    std::lock_guard lock(pool_mutex_);
    while (!idle_.empty()) {
      ConnectionPtr c = std::move(idle_.back());
      idle_.pop_back();
      // The apiserver closes idle connections after two minutes: never race it.
      if (Clock::now() - c->idleSince() < std::chrono::seconds(90) && c->stillUsable()) return c;
      c->close();
    }
    return nullptr;
  }

  void giveBack(ConnectionPtr c) {
    c->markIdle();
    std::lock_guard lock(pool_mutex_);
    if (idle_.size() >= options_.max_idle_connections) {
      c->close();
      return;
    }
    idle_.push_back(std::move(c));
  }

  // A new connection, or nullptr with `message` set.
  ConnectionPtr connect(Clock::time_point deadline, std::string& message) {
    auto c = std::make_unique<Connection>(tls_.get());
    auto unreachable = [&](const std::string& why) {
      message = "cannot reach " + url_.text + ": " + why;
      return nullptr;
    };
    tcp::resolver resolver(c->ioc());
    beast::error_code ec;
    auto endpoints = resolver.resolve(url_.host, url_.port, ec);
    if (ec) return unreachable("cannot resolve " + url_.host + ": " + describe(ec));
    ec = c->run(deadline,
                [&](auto handler) { c->lowest().async_connect(endpoints, std::move(handler)); });
    if (ec) return unreachable(describe(ec));
    c->lowest().socket().set_option(tcp::no_delay(true), ec);
    // A watch waits on its socket without a deadline: TCP keep-alives notice a server that
    // vanished without closing (about a minute), so the stream ends and is resumed elsewhere.
    c->lowest().socket().set_option(asio::socket_base::keep_alive(true), ec);
    int fd = c->lowest().socket().native_handle();
    int idle = 30, interval = 10, count = 3;
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
    if (c->tls()) {
      SSL* ssl = c->secure().native_handle();
      std::string name = config_.tls_server_name.empty() ? url_.host : config_.tls_server_name;
      boost::system::error_code address_ec;
      asio::ip::make_address(name, address_ec);
      bool is_ip = !address_ec;
      if (!is_ip) {
        // SSL_set_tlsext_host_name, without the macro's C cast.
        SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 const_cast<char*>(name.c_str()));
      }
      if (!config_.insecure_skip_tls_verify) {
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                       : X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
        if (ok != 1) return unreachable("cannot verify the server name \"" + name + "\"");
      }
      ec = c->run(deadline, [&](auto handler) {
        c->secure().async_handshake(ssl::stream_base::client, std::move(handler));
      });
      if (ec) {
        std::string why = describe(ec);
        long verify = SSL_get_verify_result(ssl);
        if (verify != X509_V_OK) {
          why = std::string("TLS: certificate verify failed: ") +
                X509_verify_cert_error_string(verify);
        } else {
          why = "TLS handshake failed: " + why;
        }
        return unreachable(why);
      }
    }
    return c;
  }

  http::request<http::string_body> buildRequest(const Request& r) {
    http::verb verb = http::string_to_verb(r.method);
    http::request<http::string_body> req;
    if (verb == http::verb::unknown) {
      req.method_string(r.method);
    } else {
      req.method(verb);
    }
    req.version(11);
    req.target(target(r));
    req.set(http::field::host, url_.host_header);
    req.set(http::field::user_agent, options_.user_agent);
    if (!r.accept.empty()) req.set(http::field::accept, r.accept);
    std::string token = token_.current();
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    if (!r.content_type.empty()) req.set(http::field::content_type, r.content_type);
    req.body() = r.body;
    req.keep_alive(true);
    req.prepare_payload();
    return req;
  }

  // Writes the request on a pooled or new connection; nullptr when that failed.
  ConnectionPtr send(const Request& r, Clock::time_point deadline, Attempt& a) {
    ConnectionPtr c = takeIdle();
    if (!c) {
      c = connect(deadline, a.message);
      if (!c) {
        a.failure = Failure::kNotSent;
        return nullptr;
      }
    }
    auto req = buildRequest(r);
    beast::error_code ec = c->run(deadline, [&](auto handler) {
      c->visit([&](auto& stream) { http::async_write(stream, req, std::move(handler)); });
    });
    if (ec) {
      a.failure = Failure::kMaybeSent;
      a.message =
          "request to " + url_.text + " failed: " + r.method + " " + r.path + ": " + describe(ec);
      return nullptr;
    }
    return c;
  }

  template <class Parser>
  void fillResponse(const Parser& parser, RawResponse& out) {
    const auto& res = parser.get();
    out.status = static_cast<int>(res.result_int());
    for (const auto& field : res) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
      std::string value(field.value());
      if (name == "content-type") out.content_type = value;
      if (name == "warning") out.warnings.push_back(warningText(value));
      out.headers.emplace_back(std::move(name), std::move(value));
    }
  }

  Attempt once(const Request& r) {
    Attempt a;
    Clock::time_point deadline = Clock::now() + options_.request_timeout;
    ConnectionPtr c = send(r, deadline, a);
    if (!c) return a;
    http::response_parser<http::string_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    if (r.method == "HEAD") parser.skip(true);
    beast::error_code ec = c->run(deadline, [&](auto handler) {
      c->visit(
          [&](auto& stream) { http::async_read(stream, c->buffer(), parser, std::move(handler)); });
    });
    if (ec) {
      a.failure = Failure::kMaybeSent;
      a.message =
          "request to " + url_.text + " failed: " + r.method + " " + r.path + ": " +
          (ec == beast::error::timeout
               ? "no answer within " + std::to_string(options_.request_timeout.count()) + "ms"
               : describe(ec));
      return a;
    }
    fillResponse(parser, a.response);
    a.response.body = std::move(parser.get().body());
    if (parser.get().keep_alive()) {
      giveBack(std::move(c));
    } else {
      c->close();
    }
    return a;
  }

  WatchStreamPtr openWatch(const Request& r) {
    std::vector<std::string>& warnings = t_warnings[id_];
    warnings.clear();
    for (int attempt = 0;; ++attempt) {
      bool last = attempt >= options_.max_retries;
      Attempt a;
      Clock::time_point deadline = Clock::now() + options_.request_timeout;
      ConnectionPtr c = send(r, deadline, a);
      if (c) {
        auto parser = std::make_unique<RestWatch::Parser>();
        parser->body_limit(std::numeric_limits<std::uint64_t>::max());
        beast::error_code ec = c->run(deadline, [&](auto handler) {
          c->visit([&](auto& stream) {
            http::async_read_header(stream, c->buffer(), *parser, std::move(handler));
          });
        });
        if (ec) {
          a.failure = Failure::kMaybeSent;
          a.message = "watch " + what(r) + ": " + describe(ec);
        } else if (parser->get().result_int() == 200) {
          fillResponse(*parser, a.response);
          warnings = a.response.warnings;
          return std::make_unique<RestWatch>(std::move(c), std::move(parser), what(r));
        } else {
          http::response_parser<http::string_body> rest(std::move(*parser));
          rest.body_limit(std::numeric_limits<std::uint64_t>::max());
          ec = c->run(deadline, [&](auto handler) {
            c->visit([&](auto& stream) {
              http::async_read(stream, c->buffer(), rest, std::move(handler));
            });
          });
          if (ec) {
            a.failure = Failure::kMaybeSent;
            a.message = "watch " + what(r) + ": " + describe(ec);
          } else {
            fillResponse(rest, a.response);
            a.response.body = std::move(rest.get().body());
            if (rest.get().keep_alive()) {
              giveBack(std::move(c));
            } else {
              c->close();
            }
            int s = a.response.status;
            if ((s == 429 || s >= 500) && !last) {
              pause(attempt, retryAfter(a.response));
              continue;
            }
            warnings = a.response.warnings;
            throw errorFromStatus(s, a.response.body, "watch " + what(r));
          }
        }
      }
      if (last) throw ApiError(0, "", a.message);
      pause(attempt, std::nullopt);
    }
  }

  void makeTlsContext() {
    tls_ = std::make_unique<ssl::context>(ssl::context::tls_client);
    tls_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                      ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    std::string where = config_.source.empty() ? std::string("kubeconfig") : config_.source;
    try {
      if (config_.insecure_skip_tls_verify) {
        tls_->set_verify_mode(ssl::verify_none);
      } else {
        tls_->set_verify_mode(ssl::verify_peer);
        if (!config_.ca_pem.empty()) {
          tls_->add_certificate_authority(asio::buffer(config_.ca_pem));
        } else {
          tls_->set_default_verify_paths();
        }
      }
    } catch (const boost::system::system_error& e) {
      throw std::invalid_argument(where + ": certificate-authority: " + e.what());
    }
    if (!config_.client_cert_pem.empty() || !config_.client_key_pem.empty()) {
      try {
        tls_->use_certificate_chain(asio::buffer(config_.client_cert_pem));
        tls_->use_private_key(asio::buffer(config_.client_key_pem), ssl::context::pem);
      } catch (const boost::system::system_error& e) {
        throw std::invalid_argument(where + ": client certificate or key: " + e.what());
      }
    }
  }

  ClientConfig config_;
  RestClientOptions options_;
  ServerUrl url_;
  TokenSource token_;
  uint64_t id_;
  std::unique_ptr<ssl::context> tls_;
  std::mutex pool_mutex_;
  std::vector<ConnectionPtr> idle_;
};

}  // namespace

std::string encodeQuery(const std::vector<std::pair<std::string, std::string>>& query) {
  std::string out;
  for (const auto& [name, value] : query) {
    if (!out.empty()) out += '&';
    appendEscaped(out, name);
    out += '=';
    appendEscaped(out, value);
  }
  return out;
}

ClientPtr makeRestClient(const ClientConfig& config, RestClientOptions options) {
  return std::make_unique<RestClient>(config, std::move(options));
}

}  // namespace skiff::client
