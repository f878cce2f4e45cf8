#include "kubelet/images/registry.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <limits>
#include <map>
#include <optional>

#include "control/api/json.h"
#include "control/api/value.h"

namespace skiff::kubelet::images {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr size_t kMaxDocumentBytes = 8 << 20;  // manifests, indexes and token answers
constexpr int kMaxRedirects = 5;

const char* kManifestAccept =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

struct Url {
  bool tls = true;
  std::string host;  // without brackets
  std::string port;
  std::string target;  // path and query

  std::string hostPort() const {
    const bool v6 = host.find(':') != std::string::npos;
    const std::string h = v6 ? "[" + host + "]" : host;
    const bool default_port = (tls && port == "443") || (!tls && port == "80");
    return default_port ? h : h + ":" + port;
  }
  std::string str() const { return (tls ? "https://" : "http://") + hostPort() + target; }
};

Url parseUrl(const std::string& text) {
  Url u;
  std::string rest;
  if (text.starts_with("https://")) {
    rest = text.substr(8);
  } else if (text.starts_with("http://")) {
    u.tls = false;
    rest = text.substr(7);
  } else {
    throw PullError(0, "unsupported URL \"" + text + "\"");
  }
  const size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  u.target = slash == std::string::npos ? "/" : rest.substr(slash);
  u.port = u.tls ? "443" : "80";
  if (authority.starts_with('[')) {
    const size_t close = authority.find(']');
    u.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':') {
      u.port = authority.substr(close + 2);
    }
  } else if (const size_t colon = authority.rfind(':'); colon != std::string::npos) {
    u.host = authority.substr(0, colon);
    u.port = authority.substr(colon + 1);
  } else {
    u.host = authority;
  }
  return u;
}

std::string urlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

bool isLoopbackHost(const std::string& host_port) {
  std::string host = host_port;
  if (host.starts_with('[')) {
    host = host.substr(1, host.find(']') - 1);
  } else if (const size_t colon = host.rfind(':'); colon != std::string::npos) {
    host = host.substr(0, colon);
  }
  return host == "localhost" || host.starts_with("127.") || host == "::1";
}

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;                            // when no file sink was given
  uint64_t body_bytes = 0;

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// One HTTP/1.1 exchange on a fresh connection, with a deadline on every step.
class Exchange {
 public:
  explicit Exchange(std::chrono::seconds timeout) : timeout_(timeout) {}

  // `file_fd` >= 0: a 2xx body goes there; otherwise into Response::body (bounded).
  Response run(const Url& url, const std::map<std::string, std::string>& headers, int file_fd) {
    tcp::resolver resolver(ioc_);
    beast::error_code ec;
    const auto endpoints = resolver.resolve(url.host, url.port, ec);
    if (ec) throw PullError(0, "resolve " + url.host + ": " + ec.message());
    beast::tcp_stream tcp_stream(ioc_);
    tcp_stream.expires_after(timeout_);
    wait(tcp_stream.async_connect(endpoints, asio::use_future));
    if (!url.tls) return exchange(tcp_stream, url, headers, file_fd);

    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.set_default_verify_paths();
    ctx.set_verify_mode(asio::ssl::verify_peer);
    beast::ssl_stream<beast::tcp_stream> tls(std::move(tcp_stream), ctx);
    tls.set_verify_callback(asio::ssl::host_name_verification(url.host));
    if (SSL_ctrl(tls.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 const_cast<char*>(url.host.c_str())) != 1) {
      throw PullError(0, "TLS: cannot set SNI for " + url.host);
    }
    beast::get_lowest_layer(tls).expires_after(timeout_);
    wait(tls.async_handshake(asio::ssl::stream_base::client, asio::use_future));
    return exchange(tls, url, headers, file_fd);
  }

 private:
  template <typename Future>
  auto wait(Future&& f) -> decltype(f.get()) {
    ioc_.restart();
    ioc_.run();
    try {
      return f.get();
    } catch (const boost::system::system_error& e) {
      throw PullError(
          0, e.code() == beast::error::timeout ? std::string("timed out") : e.code().message());
    }
  }

  template <typename Stream>
  Response exchange(Stream& stream, const Url& url,
                    const std::map<std::string, std::string>& headers, int file_fd) {
    http::request<http::empty_body> req{http::verb::get, url.target, 11};
    req.set(http::field::host, url.hostPort());
    req.set(http::field::user_agent, "skiff-kubelet");
    for (const auto& [k, v] : headers)
      req.set(k, v);
    beast::get_lowest_layer(stream).expires_after(timeout_);
    wait(http::async_write(stream, req, asio::use_future));

    beast::flat_buffer buffer;
    http::response_parser<http::buffer_body> parser;
    // Not boost::none: Beast 1.74 compares the length with the optional, and nothing is > none.
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    beast::get_lowest_layer(stream).expires_after(timeout_);
    wait(http::async_read_header(stream, buffer, parser, asio::use_future));
    Response out;
    out.status = static_cast<int>(parser.get().result_int());
    for (const auto& field : parser.get()) {
      std::string name(field.name_string());
      for (auto& c : name)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers[name] = std::string(field.value());
    }
    const bool to_file = file_fd >= 0 && out.status / 100 == 2;
    std::vector<char> chunk(1 << 16);
    while (!parser.is_done()) {
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      beast::get_lowest_layer(stream).expires_after(timeout_);
      auto f = http::async_read(stream, buffer, parser, asio::use_future);
      ioc_.restart();
      ioc_.run();
      try {
        f.get();
      } catch (const boost::system::system_error& e) {
        if (e.code() != http::error::need_buffer) {
          throw PullError(0, "reading " + url.str() + ": " +
                                 (e.code() == beast::error::timeout ? std::string("timed out")
                                                                    : e.code().message()));
        }
      }
      const size_t n = chunk.size() - parser.get().body().size;
      out.body_bytes += n;
      if (to_file) {
        for (size_t off = 0; off < n;) {
          const ssize_t w = ::write(file_fd, chunk.data() + off, n - off);
          if (w < 0 && errno == EINTR) continue;
          if (w < 0) throw PullError(0, std::string("writing blob: ") + std::strerror(errno));
          off += static_cast<size_t>(w);
        }
      } else {
        if (out.body.size() + n > kMaxDocumentBytes) {
          throw PullError(0, url.str() + ": answer larger than " +
                                 std::to_string(kMaxDocumentBytes) + " bytes");
        }
        out.body.append(chunk.data(), n);
      }
    }
    return out;
  }

  asio::io_context ioc_;
  std::chrono::seconds timeout_;
};

// `Bearer realm="...",service="...",scope="..."` into its parameters.
std::map<std::string, std::string> parseChallenge(const std::string& header) {
  std::map<std::string, std::string> params;
  size_t i = header.find(' ');
  if (i == std::string::npos) return params;
  while (i < header.size()) {
    while (i < header.size() && (header[i] == ' ' || header[i] == ','))
      ++i;
    const size_t eq = header.find('=', i);
    if (eq == std::string::npos) break;
    std::string key = header.substr(i, eq - i);
    for (auto& c : key)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    i = eq + 1;
    std::string value;
    if (i < header.size() && header[i] == '"') {
      ++i;
      while (i < header.size() && header[i] != '"') {
        if (header[i] == '\\' && i + 1 < header.size()) ++i;
        value.push_back(header[i++]);
      }
      ++i;
    } else {
      while (i < header.size() && header[i] != ',')
        value.push_back(header[i++]);
    }
    params[key] = value;
  }
  return params;
}

class Session {
 public:
  Session(const RegistryOptions& options, const Reference& ref) : options_(options), ref_(ref) {
    const std::string host = ref.registryHost();
    bool insecure = isLoopbackHost(host);
    for (const auto& h : options.insecure_registries)
      insecure = insecure || h == host;
    base_ = std::string(insecure ? "http://" : "https://") + host;
  }

  // GET base + path, authenticating and following redirects. `file_fd` as for Exchange::run.
  Response get(const std::string& path, const std::string& accept, int file_fd) {
    Url url = parseUrl(base_ + path);
    const std::string registry_host = url.host;
    bool retried_auth = false;
    for (int redirects = 0;;) {
      std::map<std::string, std::string> headers;
      if (!accept.empty()) headers["Accept"] = accept;
      if (!token_.empty() && url.host == registry_host) {
        headers["Authorization"] = "Bearer " + token_;
      }
      if (file_fd >= 0 && (::ftruncate(file_fd, 0) != 0 || ::lseek(file_fd, 0, SEEK_SET) != 0)) {
        throw PullError(0, std::string("truncate blob file: ") + std::strerror(errno));
      }
      Exchange exchange(options_.timeout);
      Response r;
      try {
        r = exchange.run(url, headers, file_fd);
      } catch (const PullError& e) {
        throw PullError(e.httpStatus(), "GET " + url.str() + ": " + e.what());
      }
      if (r.status == 401 && !retried_auth && url.host == registry_host) {
        retried_auth = true;
        authenticate(r.header("www-authenticate"));
        continue;
      }
      if (r.status >= 300 && r.status < 400 && r.headers.contains("location")) {
        if (++redirects > kMaxRedirects)
          throw PullError(r.status, "GET " + url.str() + ": too many redirects");
        const std::string location = r.header("location");
        if (location.starts_with("http://") || location.starts_with("https://")) {
          url = parseUrl(location);
        } else {
          url.target = location;
        }
        continue;
      }
      return r;
    }
  }

  const std::string& base() const { return base_; }

 private:
  void authenticate(const std::string& challenge) {
    if (!challenge.starts_with("Bearer ") && !challenge.starts_with("bearer ")) {
      throw PullError(401, "registry " + ref_.registryHost() + " wants authentication (" +
                               (challenge.empty() ? std::string("no challenge") : challenge) +
                               "); only anonymous bearer tokens are supported");
    }
    auto params = parseChallenge(challenge);
    if (params["realm"].empty())
      throw PullError(401, "bearer challenge without realm: " + challenge);
    std::string url = params["realm"];
    std::string sep = url.find('?') == std::string::npos ? "?" : "&";
    if (!params["service"].empty()) {
      url += sep + "service=" + urlEncode(params["service"]);
      sep = "&";
    }
    const std::string scope =
        params["scope"].empty() ? "repository:" + ref_.repository + ":pull" : params["scope"];
    url += sep + "scope=" + urlEncode(scope);
    Exchange exchange(options_.timeout);
    Response r;
    try {
      r = exchange.run(parseUrl(url), {{"Accept", "application/json"}}, -1);
    } catch (const PullError& e) {
      throw PullError(0, "token from " + url + ": " + e.what());
    }
    if (r.status != 200) {
      throw PullError(r.status, "token from " + url + ": HTTP " + std::to_string(r.status));
    }
    const api::Value doc = api::parseJson(r.body, {.source = "token answer"});
    const api::Value* token = doc.find("token");
    if (token == nullptr || !token->isString()) token = doc.find("access_token");
    if (token == nullptr || !token->isString() || token->text().empty()) {
      throw PullError(401, "token answer from " + url + " has no token");
    }
    token_ = token->text();
  }

  const RegistryOptions& options_;
  const Reference& ref_;
  std::string base_;
  std::string token_;
};

std::string registryError(const Response& r) {
  // {"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}
  try {
    const api::Value doc = api::parseJson(r.body);
    if (const api::Value* errors = doc.find("errors");
        errors && errors->isArray() && !errors->items().empty()) {
      const api::Value& e = errors->items()[0];
      const api::Value* code = e.find("code");
      const api::Value* message = e.find("message");
      std::string out = code && code->isString() ? code->text() : "";
      if (message && message->isString()) out += (out.empty() ? "" : ": ") + message->text();
      if (!out.empty()) return out;
    }
  } catch (const std::exception&) {
  }
  return "HTTP " + std::to_string(r.status);
}

std::string mediaTypeOf(const Response& r) {
  std::string t = r.header("content-type");
  if (const size_t semi = t.find(';'); semi != std::string::npos) t.resize(semi);
  while (!t.empty() && t.back() == ' ')
    t.pop_back();
  return t;
}

}  // namespace

ImageRecord RegistryClient::pull(ImageStore& store, const Reference& ref) {
  Session session(options_, ref);
  const std::string what = "pull " + ref.str() + " from " + session.base();

  // Fetches a manifest or index, stores it, and returns its descriptor.
  auto fetchManifest = [&](const std::string& tag_or_digest, const std::string& want_digest) {
    const Response r =
        session.get("/v2/" + ref.repository + "/manifests/" + tag_or_digest, kManifestAccept, -1);
    if (r.status == 404) {
      throw PullError(
          404, what + ": manifest " + tag_or_digest + " not found (" + registryError(r) + ")");
    }
    if (r.status != 200) {
      throw PullError(r.status, what + ": manifest " + tag_or_digest + ": " + registryError(r));
    }
    Descriptor d;
    d.digest = sha256Of(r.body);
    d.size = static_cast<int64_t>(r.body.size());
    if (!want_digest.empty() && d.digest.str() != want_digest) {
      throw PullError(
          0, what + ": manifest has digest " + d.digest.str() + ", asked for " + want_digest);
    }
    const std::string header_digest = r.header("docker-content-digest");
    if (want_digest.empty() && header_digest.starts_with("sha256:") &&
        header_digest != d.digest.str()) {
      throw PullError(0, what + ": manifest has digest " + d.digest.str() + ", the registry says " +
                             header_digest);
    }
    d.media_type = mediaTypeOf(r);
    if (!isManifestType(d.media_type) && !isIndexType(d.media_type)) {
      d.media_type = sniffMediaType(r.body, "manifest " + tag_or_digest);
    }
    try {
      if (isIndexType(d.media_type)) {
        parseIndex(r.body, "index " + d.digest.str(), d.media_type);
      } else {
        parseManifest(r.body, "manifest " + d.digest.str(), d.media_type);
      }
    } catch (const std::invalid_argument& e) {
      throw PullError(0, what + ": " + e.what());
    }
    store.putBlob(r.body, &d);
    return std::make_pair(d, r.body);
  };

  auto fetchBlob = [&](const Descriptor& d) {
    if (store.hasBlob(d.digest)) return;
    const std::string tmp = store.tempPath("pull");
    const int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw PullError(0, what + ": create " + tmp + ": " + std::strerror(errno));
    Response r;
    try {
      r = session.get("/v2/" + ref.repository + "/blobs/" + d.digest.str(), "", fd);
    } catch (...) {
      ::close(fd);
      ::unlink(tmp.c_str());
      throw;
    }
    ::close(fd);
    if (r.status != 200) {
      ::unlink(tmp.c_str());
      throw PullError(r.status, what + ": blob " + d.digest.str() + ": " + registryError(r));
    }
    try {
      store.commitBlob(tmp, d);
    } catch (const std::runtime_error& e) {
      throw PullError(0, what + ": " + e.what());
    }
  };

  auto [top, body] = fetchManifest(ref.digest.empty() ? ref.tag : ref.digest, ref.digest);
  Descriptor manifest_desc = top;
  std::string manifest_body = body;
  if (isIndexType(top.media_type)) {
    const Index index = parseIndex(body, "index " + top.digest.str(), top.media_type);
    const Descriptor* m = selectPlatform(index);
    if (m == nullptr) {
      throw PullError(0, what + ": the image index has no image for " + hostPlatform().os + "/" +
                             hostPlatform().architecture);
    }
    auto [desc, mbody] = fetchManifest(m->digest.str(), m->digest.str());
    manifest_desc = desc;
    manifest_body = mbody;
  }
  Manifest manifest;
  try {
    manifest = parseManifest(manifest_body, "manifest " + manifest_desc.digest.str(),
                             manifest_desc.media_type);
  } catch (const std::invalid_argument& e) {
    throw PullError(0, what + ": " + e.what());
  }
  fetchBlob(manifest.config);
  for (const auto& layer : manifest.layers)
    fetchBlob(layer);
  try {
    parseImageConfig(store.readBlob(manifest.config.digest),
                     "image config " + manifest.config.digest.str());
    return store.tag(ref, top.digest);
  } catch (const std::exception& e) {
    throw PullError(0, what + ": " + e.what());
  }
}

}  // namespace skiff::kubelet::images
