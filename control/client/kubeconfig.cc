#include "control/client/kubeconfig.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "control/api/yaml.h"

namespace skiff::client {

using api::Diagnostic;
using api::Mark;
using api::Value;

// One named cluster, user or context: where it came from and its body (`cluster:`, `user:` or
// `context:`), which points into `doc`.
struct Kubeconfig::Entry {
  std::string name;
  std::string source;
  std::string dir;   // the directory relative paths in the body are relative to
  std::string path;  // "clusters[0].cluster"
  Mark mark;         // of the list item
  std::shared_ptr<const Value> doc;
  const Value* body = nullptr;  // null when the item has no body
};

struct Kubeconfig::Current {
  std::string name;
  std::string source;
  Mark mark;
};

namespace {

[[noreturn]] void fail(std::string source, Mark mark, std::string path, std::string message) {
  throw api::DecodeError(Diagnostic{std::move(source), mark, std::move(path), std::move(message)});
}

std::string errnoText(int err) {
  return std::strerror(err);
}

// A file's contents; errors carry errno.
bool readFile(const std::string& path, std::string& out, int& err) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    err = errno;
    return false;
  }
  out.clear();
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return true;
}

void writeFileAtomic(const std::string& path, std::string_view content, mode_t mode) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  auto error = [&](int err) {
    return std::runtime_error(path + ": cannot write: " + errnoText(err));
  };
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw error(errno);
  auto failWith = [&](int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw error(err);
  };
  if (::fchmod(fd, mode) != 0) failWith(errno);
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      failWith(errno);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) failWith(errno);
  if (::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw error(err);
  }
}

std::string dirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string resolvePath(const std::string& dir, const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  return dir == "/" ? "/" + path : dir + "/" + path;
}

// ------------------------------------------------------------------------------------- OpenSSL

struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

BioPtr memBio(std::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

// The first certificate of a PEM text (null when there is none), and how many there are.
X509Ptr firstCert(std::string_view pem, int& count) {
  count = 0;
  X509Ptr first;
  auto bio = memBio(pem);
  while (bio) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) break;
    if (!first) first = std::move(cert);
    ++count;
  }
  ERR_clear_error();
  return first;
}

PkeyPtr parseKey(std::string_view pem) {
  auto bio = memBio(pem);
  PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  ERR_clear_error();
  return key;
}

// ------------------------------------------------------------------------------------ parsing

// Structural checks while parsing: every problem is collected.
class Parser {
 public:
  explicit Parser(std::string source) : source_(std::move(source)) {}

  void error(Mark mark, std::string path, std::string message) {
    diagnostics_.push_back(Diagnostic{source_, mark, std::move(path), std::move(message)});
  }
  const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }

  // A string field or "" when absent or null; plain YAML scalars count as strings (a token of
  // digits is still a token).
  std::string string(const Value& object, std::string_view key, const std::string& path) {
    const Value* v = object.find(key);
    if (!v || v->isNull()) return {};
    if (v->isString() || (v->isPlain() && !v->isObject() && !v->isArray())) return v->text();
    error(v->mark(), path, std::string("expected string, got ") + std::string(v->typeName()));
    return {};
  }

 private:
  std::string source_;
  std::vector<Diagnostic> diagnostics_;
};

const Value::Member* member(const Value* object, std::string_view key) {
  if (!object || !object->isObject()) return nullptr;
  for (const auto& m : object->members()) {
    if (m.key == key) return &m;
  }
  return nullptr;
}

// The mark of a field's key, else of its value.
Mark fieldMark(const Value::Member& m) {
  return m.key_mark.known() ? m.key_mark : m.value.mark();
}

std::string joinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out.empty() ? "none" : out;
}

}  // namespace

Kubeconfig::Kubeconfig() = default;
Kubeconfig::~Kubeconfig() = default;
Kubeconfig::Kubeconfig(Kubeconfig&&) noexcept = default;
Kubeconfig& Kubeconfig::operator=(Kubeconfig&&) noexcept = default;
Kubeconfig::Kubeconfig(const Kubeconfig& other)
    : sources_(other.sources_),
      clusters_(other.clusters_),
      users_(other.users_),
      contexts_(other.contexts_),
      current_(other.current_ ? std::make_unique<Current>(*other.current_) : nullptr) {}
Kubeconfig& Kubeconfig::operator=(const Kubeconfig& other) {
  if (this != &other) *this = Kubeconfig(other);
  return *this;
}

Kubeconfig Kubeconfig::parse(std::string_view text, const std::string& source) {
  Kubeconfig config;
  config.sources_.push_back(source);
  api::YamlParseOptions options;
  options.source = source;
  std::vector<Value> docs = api::parseYamlDocuments(text, options);
  if (docs.empty()) return config;
  Parser parser(source);
  if (docs.size() > 1) {
    parser.error(docs[1].mark(), "", "a kubeconfig holds one YAML document");
    throw api::DecodeError(parser.diagnostics());
  }
  auto doc = std::make_shared<const Value>(std::move(docs.front()));
  if (doc->isNull()) return config;
  if (!doc->isObject()) {
    parser.error(doc->mark(), "",
                 std::string("expected object, got ") + std::string(doc->typeName()));
    throw api::DecodeError(parser.diagnostics());
  }
  if (std::string kind = parser.string(*doc, "kind", "kind"); !kind.empty() && kind != "Config") {
    parser.error(doc->find("kind")->mark(), "kind", "expected \"Config\", got \"" + kind + "\"");
  }
  if (std::string version = parser.string(*doc, "apiVersion", "apiVersion");
      !version.empty() && version != "v1") {
    parser.error(doc->find("apiVersion")->mark(), "apiVersion",
                 "expected \"v1\", got \"" + version + "\"");
  }
  std::string dir = dirOf(source);

  auto readList = [&](std::string_view list, std::string_view body_key, std::vector<Entry>& out) {
    const Value* items = doc->find(list);
    if (!items || items->isNull()) return;
    std::string list_path(list);
    if (!items->isArray()) {
      parser.error(items->mark(), list_path,
                   std::string("expected array, got ") + std::string(items->typeName()));
      return;
    }
    for (size_t i = 0; i < items->items().size(); ++i) {
      const Value& item = items->items()[i];
      std::string item_path = list_path + "[" + std::to_string(i) + "]";
      if (!item.isObject()) {
        parser.error(item.mark(), item_path,
                     std::string("expected object, got ") + std::string(item.typeName()));
        continue;
      }
      Entry entry;
      entry.name = parser.string(item, "name", item_path + ".name");
      entry.source = source;
      entry.dir = dir;
      entry.path = item_path + "." + std::string(body_key);
      entry.mark = item.mark();
      entry.doc = doc;
      if (entry.name.empty()) {
        parser.error(item.mark(), item_path + ".name", "required value");
        continue;
      }
      const Value* body = item.find(body_key);
      if (body && !body->isNull()) {
        if (!body->isObject()) {
          parser.error(body->mark(), entry.path,
                       std::string("expected object, got ") + std::string(body->typeName()));
          continue;
        }
        entry.body = body;
      }
      bool duplicate = false;
      for (const auto& e : out)
        duplicate = duplicate || e.name == entry.name;
      if (duplicate) {
        parser.error(item.find("name")->mark(), item_path + ".name",
                     "duplicate name \"" + entry.name + "\"");
        continue;
      }
      out.push_back(std::move(entry));
    }
  };
  readList("clusters", "cluster", config.clusters_);
  readList("users", "user", config.users_);
  readList("contexts", "context", config.contexts_);
  std::string current = parser.string(*doc, "current-context", "current-context");
  if (!current.empty()) {
    const Value::Member* m = member(doc.get(), "current-context");
    config.current_ = std::make_unique<Current>(Current{current, source, m->value.mark()});
  }
  if (!parser.diagnostics().empty()) throw api::DecodeError(parser.diagnostics());
  return config;
}

Kubeconfig Kubeconfig::loadFile(const std::string& path) {
  std::string text;
  int err = 0;
  if (!readFile(path, text, err)) fail(path, {}, "", "cannot read: " + errnoText(err));
  return parse(text, path);
}

void Kubeconfig::merge(const Kubeconfig& other) {
  sources_.insert(sources_.end(), other.sources_.begin(), other.sources_.end());
  auto mergeList = [&](std::vector<Entry>& mine, const std::vector<Entry>& theirs) {
    for (const auto& e : theirs) {
      if (!find(mine, e.name)) mine.push_back(e);
    }
  };
  mergeList(clusters_, other.clusters_);
  mergeList(users_, other.users_);
  mergeList(contexts_, other.contexts_);
  if (!current_ && other.current_) current_ = std::make_unique<Current>(*other.current_);
}

const Kubeconfig::Entry* Kubeconfig::find(const std::vector<Entry>& entries,
                                          std::string_view name) const {
  for (const auto& e : entries) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

std::string Kubeconfig::currentContext() const {
  return current_ ? current_->name : "";
}

std::vector<std::string> Kubeconfig::contextNames() const {
  std::vector<std::string> names;
  for (const auto& c : contexts_)
    names.push_back(c.name);
  return names;
}

namespace {

// Field access on one entry's body; errors point at the field.
class EntryReader {
 public:
  EntryReader(const std::string& name, const std::string& source, const std::string& dir,
              const std::string& path, Mark mark, const Value* body)
      : name_(name), source_(source), dir_(dir), path_(path), mark_(mark), body_(body) {}

  const Value::Member* field(std::string_view key) const {
    const Value::Member* m = member(body_, key);
    return m && !m->value.isNull() ? m : nullptr;
  }
  std::string fieldPath(std::string_view key) const { return path_ + "." + std::string(key); }

  [[noreturn]] void failAt(std::string_view key, const std::string& message) const {
    const Value::Member* m = member(body_, key);
    fail(source_, m ? fieldMark(*m) : mark_, key.empty() ? path_ : fieldPath(key), message);
  }
  [[noreturn]] void failEntry(const std::string& message) const {
    fail(source_, mark_, path_, message);
  }

  std::string string(std::string_view key) const {
    const Value::Member* m = field(key);
    if (!m) return {};
    const Value& v = m->value;
    if (v.isString() || (v.isPlain() && !v.isObject() && !v.isArray())) return v.text();
    failAt(key, "expected string, got " + std::string(v.typeName()));
  }

  bool boolean(std::string_view key) const {
    const Value::Member* m = field(key);
    if (!m) return false;
    if (!m->value.isBool())
      failAt(key, "expected boolean, got " + std::string(m->value.typeName()));
    return m->value.asBool();
  }

  // A `<key>-data` field decoded from base64, or "" when absent.
  std::string data(std::string_view key) const {
    std::string text = string(key);
    if (text.empty()) return {};
    auto decoded = base64Decode(text);
    if (!decoded) failAt(key, "invalid base64");
    return *decoded;
  }

  // The contents of the file a field names (relative to the kubeconfig's directory); `resolved`
  // gets the path read.
  std::string file(std::string_view key, std::string* resolved = nullptr) const {
    std::string path = resolvePath(dir_, string(key));
    if (path.empty()) return {};
    std::string out;
    int err = 0;
    if (!readFile(path, out, err)) failAt(key, "cannot read " + path + ": " + errnoText(err));
    if (resolved) *resolved = path;
    return out;
  }

  const std::string& name() const { return name_; }

 private:
  const std::string& name_;
  const std::string& source_;
  const std::string& dir_;
  const std::string& path_;
  Mark mark_;
  const Value* body_;
};

std::string trimSpace(std::string s) {
  size_t start = s.find_first_not_of(" \t\r\n");
  if (start == std::string::npos) return {};
  size_t end = s.find_last_not_of(" \t\r\n");
  return s.substr(start, end - start + 1);
}

// The -data field or the file field (both set is an error, as in kubectl).
std::string dataOrFile(const EntryReader& r, std::string_view data_key, std::string_view file_key) {
  if (r.field(data_key) && r.field(file_key)) {
    r.failAt(data_key,
             std::string(data_key) + " and " + std::string(file_key) + " are both set; set one");
  }
  if (r.field(data_key)) return r.data(data_key);
  return r.file(file_key);
}

// The key whose value was used, for messages.
std::string_view usedKey(const EntryReader& r, std::string_view data_key,
                         std::string_view file_key) {
  return r.field(data_key) ? data_key : file_key;
}

}  // namespace

ClientConfig Kubeconfig::resolve(std::string_view context) const {
  std::string first_source = sources_.empty() ? "kubeconfig" : sources_.front();
  ClientConfig out;
  const Entry* ctx = nullptr;
  if (!context.empty()) {
    ctx = find(contexts_, context);
    if (!ctx) {
      fail(first_source, {}, "",
           "context \"" + std::string(context) +
               "\" not found (contexts: " + joinNames(contextNames()) + ")");
    }
  } else {
    if (!current_) {
      fail(first_source, {}, "current-context",
           "no current context is set; choose one with --context (contexts: " +
               joinNames(contextNames()) + ")");
    }
    ctx = find(contexts_, current_->name);
    if (!ctx) {
      fail(current_->source, current_->mark, "current-context",
           "context \"" + current_->name + "\" not found");
    }
  }
  EntryReader c(ctx->name, ctx->source, ctx->dir, ctx->path, ctx->mark, ctx->body);
  out.context_name = ctx->name;
  out.source = ctx->source;
  out.cluster_name = c.string("cluster");
  if (out.cluster_name.empty()) c.failEntry("context \"" + ctx->name + "\" names no cluster");
  out.user_name = c.string("user");
  if (std::string ns = c.string("namespace"); !ns.empty()) out.default_namespace = ns;

  // The cluster.
  const Entry* cluster = find(clusters_, out.cluster_name);
  if (!cluster) c.failAt("cluster", "cluster \"" + out.cluster_name + "\" not found");
  EntryReader cl(cluster->name, cluster->source, cluster->dir, cluster->path, cluster->mark,
                 cluster->body);
  out.server = cl.string("server");
  if (out.server.empty()) cl.failEntry("cluster \"" + cluster->name + "\" has no server");
  if (out.server.rfind("https://", 0) != 0 && out.server.rfind("http://", 0) != 0) {
    cl.failAt("server", "\"" + out.server + "\" is not an http:// or https:// URL");
  }
  out.insecure_skip_tls_verify = cl.boolean("insecure-skip-tls-verify");
  out.tls_server_name = cl.string("tls-server-name");
  out.ca_pem = dataOrFile(cl, "certificate-authority-data", "certificate-authority");
  if (!out.ca_pem.empty()) {
    std::string_view key = usedKey(cl, "certificate-authority-data", "certificate-authority");
    int count = 0;
    if (!firstCert(out.ca_pem, count)) cl.failAt(key, "no PEM certificate found");
    if (out.insecure_skip_tls_verify) {
      cl.failAt("insecure-skip-tls-verify",
                "a certificate authority and insecure-skip-tls-verify are both set; "
                "specifying a root certificates file with the insecure flag is not allowed");
    }
  }

  // The user (none: anonymous).
  if (out.user_name.empty()) return out;
  const Entry* user = find(users_, out.user_name);
  if (!user) c.failAt("user", "user \"" + out.user_name + "\" not found");
  EntryReader u(user->name, user->source, user->dir, user->path, user->mark, user->body);
  if (u.field("exec")) u.failAt("exec", "exec credential plugins are not supported");
  if (u.field("auth-provider")) u.failAt("auth-provider", "auth providers are not supported");
  if (u.field("username") || u.field("password")) {
    u.failAt(u.field("username") ? "username" : "password",
             "basic authentication is not supported; use a token or a client certificate");
  }
  out.token = u.string("token");
  if (out.token.empty() && u.field("tokenFile")) {
    out.token = trimSpace(u.file("tokenFile", &out.token_file));
    if (out.token.empty()) u.failAt("tokenFile", "the token file " + out.token_file + " is empty");
  }
  out.client_cert_pem = dataOrFile(u, "client-certificate-data", "client-certificate");
  out.client_key_pem = dataOrFile(u, "client-key-data", "client-key");
  if (out.client_cert_pem.empty() != out.client_key_pem.empty()) {
    u.failAt(out.client_cert_pem.empty()
                 ? usedKey(u, "client-key-data", "client-key")
                 : usedKey(u, "client-certificate-data", "client-certificate"),
             out.client_cert_pem.empty()
                 ? "a client key without a client certificate (client-certificate-data or "
                   "client-certificate)"
                 : "a client certificate without a key (client-key-data or client-key)");
  }
  if (!out.client_cert_pem.empty()) {
    std::string_view cert_key = usedKey(u, "client-certificate-data", "client-certificate");
    std::string_view key_key = usedKey(u, "client-key-data", "client-key");
    int count = 0;
    X509Ptr cert = firstCert(out.client_cert_pem, count);
    if (!cert) u.failAt(cert_key, "no PEM certificate found");
    PkeyPtr key = parseKey(out.client_key_pem);
    if (!key) u.failAt(key_key, "no PEM private key found");
    if (X509_check_private_key(cert.get(), key.get()) != 1) {
      ERR_clear_error();
      u.failAt(key_key, "the private key does not match the client certificate");
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------ loading

std::vector<std::string> kubeconfigPaths(const LoadOptions& options) {
  if (!options.kubeconfig.empty()) return {options.kubeconfig};
  std::string env;
  if (options.kubeconfig_env) {
    env = *options.kubeconfig_env;
  } else if (const char* e = std::getenv("KUBECONFIG")) {
    env = e;
  }
  std::vector<std::string> paths;
  size_t start = 0;
  while (start <= env.size() && !env.empty()) {
    size_t colon = env.find(':', start);
    if (colon == std::string::npos) colon = env.size();
    std::string path = env.substr(start, colon - start);
    if (!path.empty() && std::find(paths.begin(), paths.end(), path) == paths.end()) {
      paths.push_back(path);
    }
    start = colon + 1;
  }
  if (!paths.empty()) return paths;
  std::string home;
  if (options.home) {
    home = *options.home;
  } else if (const char* h = std::getenv("HOME")) {
    home = h;
  }
  if (home.empty()) home = ".";
  return {home + "/.kube/config"};
}

ClientConfig loadClientConfig(const LoadOptions& options) {
  std::vector<std::string> paths = kubeconfigPaths(options);
  bool from_env =
      options.kubeconfig.empty() && paths.size() >= 1 &&
      (options.kubeconfig_env ? !options.kubeconfig_env->empty()
                              : std::getenv("KUBECONFIG") && *std::getenv("KUBECONFIG") != '\0');
  if (!from_env) {
    return Kubeconfig::loadFile(paths.front()).resolve(options.context);
  }
  std::optional<Kubeconfig> merged;
  for (const auto& path : paths) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) continue;  // as kubectl: skipped
    Kubeconfig one = Kubeconfig::loadFile(path);
    if (merged) {
      merged->merge(one);
    } else {
      merged = std::move(one);
    }
  }
  if (!merged) {
    std::string list;
    for (const auto& p : paths)
      list += (list.empty() ? "" : ", ") + p;
    fail("$KUBECONFIG", {}, "", "none of its files exist: " + list);
  }
  return merged->resolve(options.context);
}

// ------------------------------------------------------------------------------------ writing

std::string renderKubeconfig(const KubeconfigSpec& spec) {
  Value cluster = Value::object();
  if (!spec.ca_pem.empty()) {
    cluster.append("certificate-authority-data", Value::string(base64Encode(spec.ca_pem)));
  }
  cluster.append("server", Value::string(spec.server));
  Value cluster_item = Value::object();
  cluster_item.append("cluster", std::move(cluster));
  cluster_item.append("name", Value::string(spec.cluster_name));

  Value context = Value::object();
  context.append("cluster", Value::string(spec.cluster_name));
  if (!spec.default_namespace.empty()) {
    context.append("namespace", Value::string(spec.default_namespace));
  }
  context.append("user", Value::string(spec.user_name));
  Value context_item = Value::object();
  context_item.append("context", std::move(context));
  context_item.append("name", Value::string(spec.context_name));

  Value user = Value::object();
  if (!spec.client_cert_pem.empty()) {
    user.append("client-certificate-data", Value::string(base64Encode(spec.client_cert_pem)));
  }
  if (!spec.client_key_pem.empty()) {
    user.append("client-key-data", Value::string(base64Encode(spec.client_key_pem)));
  }
  if (!spec.token.empty()) user.append("token", Value::string(spec.token));
  Value user_item = Value::object();
  user_item.append("name", Value::string(spec.user_name));
  user_item.append("user", std::move(user));

  Value root = Value::object();
  root.append("apiVersion", Value::string("v1"));
  root.append("kind", Value::string("Config"));
  root.append("clusters", Value::array()).push(std::move(cluster_item));
  root.append("contexts", Value::array()).push(std::move(context_item));
  root.append("current-context", Value::string(spec.context_name));
  root.append("preferences", Value::object());
  root.append("users", Value::array()).push(std::move(user_item));
  return api::writeYaml(root);
}

void writeKubeconfig(const std::string& path, const KubeconfigSpec& spec) {
  if (spec.server.empty()) throw std::runtime_error(path + ": a kubeconfig needs a server URL");
  if (spec.client_cert_pem.empty() != spec.client_key_pem.empty()) {
    throw std::runtime_error(path + ": a client certificate needs its key and the other way round");
  }
  writeFileAtomic(path, renderKubeconfig(spec), 0600);
}

// ------------------------------------------------------------------------------------- base64

namespace {
constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}  // namespace

std::string base64Encode(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(data[k])); };
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t n = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out += kBase64[(n >> 18) & 63];
    out += kBase64[(n >> 12) & 63];
    out += kBase64[(n >> 6) & 63];
    out += kBase64[n & 63];
  }
  if (data.size() - i == 1) {
    uint32_t n = byte(i) << 16;
    out += kBase64[(n >> 18) & 63];
    out += kBase64[(n >> 12) & 63];
    out += "==";
  } else if (data.size() - i == 2) {
    uint32_t n = byte(i) << 16 | byte(i + 1) << 8;
    out += kBase64[(n >> 18) & 63];
    out += kBase64[(n >> 12) & 63];
    out += kBase64[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

std::optional<std::string> base64Decode(std::string_view text) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  size_t symbols = 0;
  size_t padding = 0;
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    if (padding) return std::nullopt;  // data after padding
    const char* p = std::strchr(kBase64, c);
    if (c == '\0' || !p) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(p - kBase64);
    bits += 6;
    ++symbols;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  if (symbols % 4 == 1 || padding > 2) return std::nullopt;
  if (padding && (symbols + padding) % 4 != 0) return std::nullopt;
  return out;
}

}  // namespace skiff::client
