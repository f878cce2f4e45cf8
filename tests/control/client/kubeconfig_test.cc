#include "control/client/kubeconfig.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

namespace skiff::client {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct CertKey {
  std::string cert;
  std::string key;
};

std::string bioText(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

// A self-signed EC certificate and its key, PEM.
CertKey selfSigned(const std::string& cn) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  EXPECT_TRUE(key && cert);
  X509_set_version(cert.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key.get());
  EXPECT_GT(X509_sign(cert.get(), key.get(), EVP_sha256()), 0);
  std::unique_ptr<BIO, decltype(&BIO_free)> cb(BIO_new(BIO_s_mem()), BIO_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> kb(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_X509(cb.get(), cert.get());
  PEM_write_bio_PrivateKey(kb.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  return {bioText(cb.get()), bioText(kb.get())};
}

const CertKey& ca() {
  static const CertKey ca = selfSigned("test-ca");
  return ca;
}
const CertKey& client() {
  static const CertKey c = selfSigned("admin");
  return c;
}

class KubeconfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "skiff-kubeconfig-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path, std::ios::trunc) << text;
    return path;
  }

  // Expects `f` to throw a DecodeError whose message is exactly `message`.
  template <typename F>
  static std::string errorOf(F f) {
    try {
      f();
    } catch (const api::DecodeError& e) {
      return e.what();
    }
    return "no error";
  }

  KubeconfigSpec spec() const {
    KubeconfigSpec s;
    s.server = "https://127.0.0.1:6443";
    s.ca_pem = ca().cert;
    s.token = "0123456789abcdef";
    return s;
  }

  std::string dir_;
};

TEST(Base64, RoundTrip) {
  for (std::string s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", "abcde",
                                                std::string("\0\xff\x10", 3)}) {
    EXPECT_EQ(base64Decode(base64Encode(s)), s);
  }
  EXPECT_EQ(base64Encode("abcd"), "YWJjZA==");
  EXPECT_EQ(base64Decode("YWJj\nZA=="), "abcd");
  EXPECT_EQ(base64Decode("YWJjZA"), "abcd");
  EXPECT_EQ(base64Decode("YWJjZ"), std::nullopt);
  EXPECT_EQ(base64Decode("YW*j"), std::nullopt);
  EXPECT_EQ(base64Decode("YQ==YQ=="), std::nullopt);
}

TEST_F(KubeconfigTest, WriteReadRoundTrip) {
  std::string path = dir_ + "/admin.kubeconfig";
  KubeconfigSpec s = spec();
  s.default_namespace = "web";
  writeKubeconfig(path, s);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  ClientConfig c = loadClientConfig({.kubeconfig = path});
  EXPECT_EQ(c.context_name, "skiff");
  EXPECT_EQ(c.cluster_name, "skiff");
  EXPECT_EQ(c.user_name, "admin");
  EXPECT_EQ(c.server, "https://127.0.0.1:6443");
  EXPECT_EQ(c.ca_pem, ca().cert);
  EXPECT_EQ(c.token, "0123456789abcdef");
  EXPECT_EQ(c.token_file, "");
  EXPECT_EQ(c.default_namespace, "web");
  EXPECT_FALSE(c.insecure_skip_tls_verify);
  EXPECT_TRUE(c.client_cert_pem.empty());
  EXPECT_EQ(c.source, path);

  // Rewriting replaces the file and keeps it private even if it was readable before.
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  s.client_cert_pem = client().cert;
  s.client_key_pem = client().key;
  s.default_namespace.clear();
  writeKubeconfig(path, s);
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  c = loadClientConfig({.kubeconfig = path});
  EXPECT_EQ(c.client_cert_pem, client().cert);
  EXPECT_EQ(c.client_key_pem, client().key);
  EXPECT_EQ(c.default_namespace, "default");

  // A token of digits only is still a string after the YAML round trip.
  s.token = "12345";
  writeKubeconfig(path, s);
  EXPECT_EQ(loadClientConfig({.kubeconfig = path}).token, "12345");
}

TEST_F(KubeconfigTest, RelativeFilesAndTokenFile) {
  write("conf/pki/ca.crt", ca().cert);
  write("conf/pki/admin.crt", client().cert);
  write("conf/pki/admin.key", client().key);
  write("conf/token", "  secret-token\n");
  std::string path = write("conf/config", R"(apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://10.0.0.1:6443
    certificate-authority: pki/ca.crt
    tls-server-name: kubernetes
users:
- name: u
  user:
    tokenFile: token
    client-certificate: pki/admin.crt
    client-key: )" + dir_ + R"(/conf/pki/admin.key
contexts:
- name: ctx
  context: {cluster: c, user: u, namespace: kube-system}
current-context: ctx
)");
  ClientConfig c = Kubeconfig::loadFile(path).resolve();
  EXPECT_EQ(c.ca_pem, ca().cert);
  EXPECT_EQ(c.token, "secret-token");
  EXPECT_EQ(c.token_file, dir_ + "/conf/token");
  EXPECT_EQ(c.client_cert_pem, client().cert);
  EXPECT_EQ(c.client_key_pem, client().key);
  EXPECT_EQ(c.tls_server_name, "kubernetes");
  EXPECT_EQ(c.default_namespace, "kube-system");
}

TEST_F(KubeconfigTest, TokenWinsOverTokenFileAndAnonymousUser) {
  std::string path = write("config", R"(clusters:
- name: c
  cluster: {server: "http://127.0.0.1:8080", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: tok, tokenFile: /nonexistent}
contexts:
- name: a
  context: {cluster: c, user: u}
- name: anon
  context: {cluster: c}
current-context: a
)");
  Kubeconfig config = Kubeconfig::loadFile(path);
  ClientConfig c = config.resolve();
  EXPECT_EQ(c.token, "tok");
  EXPECT_TRUE(c.insecure_skip_tls_verify);
  EXPECT_TRUE(c.ca_pem.empty());
  ClientConfig anon = config.resolve("anon");
  EXPECT_EQ(anon.user_name, "");
  EXPECT_EQ(anon.token, "");
  EXPECT_THAT(config.contextNames(), ElementsAre("a", "anon"));
  EXPECT_EQ(config.currentContext(), "a");
}

TEST_F(KubeconfigTest, MissingReferencesNameFileLineAndField) {
  std::string path = write("admin.kubeconfig", R"(apiVersion: v1
kind: Config
clusters:
- name: skiff
  cluster:
    server: https://127.0.0.1:6443
contexts:
- context:
    cluster: foo
    user: admin
  name: skiff
- context:
    cluster: skiff
    user: nobody
  name: other
- name: bare
current-context: skiff
users: []
)");
  Kubeconfig config = Kubeconfig::loadFile(path);
  EXPECT_EQ(errorOf([&] { config.resolve(); }),
            path + ":9:5: contexts[0].context.cluster: cluster \"foo\" not found");
  EXPECT_EQ(errorOf([&] { config.resolve("other"); }),
            path + ":14:5: contexts[1].context.user: user \"nobody\" not found");
  EXPECT_EQ(errorOf([&] { config.resolve("bare"); }),
            path + ":16:3: contexts[2].context: context \"bare\" names no cluster");
  EXPECT_EQ(errorOf([&] { config.resolve("nope"); }),
            path + ": context \"nope\" not found (contexts: skiff, other, bare)");

  std::string no_ctx = write("no-ctx", "current-context: gone\ncontexts: []\n");
  EXPECT_EQ(errorOf([&] { Kubeconfig::loadFile(no_ctx).resolve(); }),
            no_ctx + ":1:18: current-context: context \"gone\" not found");
  std::string empty = write("empty", "");
  EXPECT_THAT(errorOf([&] { Kubeconfig::loadFile(empty).resolve(); }),
              HasSubstr("no current context is set"));
}

TEST_F(KubeconfigTest, BadFieldsNameFileLineAndField) {
  auto resolveText = [&](const std::string& user, const std::string& cluster_extra = "") {
    std::string path = write("bad", "clusters:\n- name: c\n  cluster:\n    server: https://h\n" +
                                        cluster_extra + "users:\n- name: u\n  user:\n" + user +
                                        "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                                        "current-context: x\n");
    return errorOf([&] { Kubeconfig::loadFile(path).resolve(); });
  };
  std::string bad = dir_ + "/bad";
  EXPECT_EQ(resolveText("    token: t\n", "    certificate-authority-data: '!!'\n"),
            bad + ":5:5: clusters[0].cluster.certificate-authority-data: invalid base64");
  EXPECT_EQ(resolveText("    token: t\n", "    certificate-authority-data: aGVsbG8=\n"),
            bad + ":5:5: clusters[0].cluster.certificate-authority-data: no PEM certificate found");
  EXPECT_EQ(resolveText("    token: t\n", "    certificate-authority: nothere.crt\n"),
            bad + ":5:5: clusters[0].cluster.certificate-authority: cannot read " + dir_ +
                "/nothere.crt: No such file or directory");
  std::string ca_data = "    certificate-authority-data: " + base64Encode(ca().cert) + "\n";
  EXPECT_THAT(resolveText("    token: t\n", ca_data + "    insecure-skip-tls-verify: true\n"),
              HasSubstr(":6:5: clusters[0].cluster.insecure-skip-tls-verify: a certificate "
                        "authority and insecure-skip-tls-verify are both set"));
  EXPECT_THAT(resolveText("    token: t\n", ca_data + "    certificate-authority: x\n"),
              HasSubstr(":5:5: clusters[0].cluster.certificate-authority-data: "
                        "certificate-authority-data and certificate-authority are both set"));
  EXPECT_EQ(resolveText("    client-certificate-data: " + base64Encode(client().cert) + "\n"),
            bad +
                ":8:5: users[0].user.client-certificate-data: a client certificate without a "
                "key (client-key-data or client-key)");
  EXPECT_EQ(resolveText("    client-certificate-data: " + base64Encode(client().cert) +
                        "\n    client-key-data: " + base64Encode(ca().key) + "\n"),
            bad +
                ":9:5: users[0].user.client-key-data: the private key does not match the "
                "client certificate");
  EXPECT_EQ(resolveText("    tokenFile: empty-token\n"),
            bad + ":8:5: users[0].user.tokenFile: cannot read " + dir_ +
                "/empty-token: No such file or directory");
  write("empty-token", "\n");
  EXPECT_EQ(
      resolveText("    tokenFile: empty-token\n"),
      bad + ":8:5: users[0].user.tokenFile: the token file " + dir_ + "/empty-token is empty");
  EXPECT_EQ(resolveText("    exec: {command: aws}\n"),
            bad + ":8:5: users[0].user.exec: exec credential plugins are not supported");
  EXPECT_EQ(resolveText("    token: [a]\n"),
            bad + ":8:5: users[0].user.token: expected string, got array");
  EXPECT_EQ(resolveText("    token: t\n", "    insecure-skip-tls-verify: maybe\n"),
            bad +
                ":5:5: clusters[0].cluster.insecure-skip-tls-verify: expected boolean, got "
                "string");
}

TEST_F(KubeconfigTest, StructuralErrorsAreAllReported) {
  std::string path = write("broken", R"(kind: Pod
clusters: {}
users:
- user: {token: t}
- name: u
  user: [x]
contexts:
- name: a
- name: a
)");
  try {
    Kubeconfig::loadFile(path);
    FAIL() << "expected DecodeError";
  } catch (const api::DecodeError& e) {
    std::vector<std::string> messages;
    for (const auto& d : e.diagnostics())
      messages.push_back(d.toString());
    EXPECT_THAT(messages, ElementsAre(path + ":1:7: kind: expected \"Config\", got \"Pod\"",
                                      path + ":2:11: clusters: expected array, got object",
                                      path + ":4:3: users[0].name: required value",
                                      path + ":6:9: users[1].user: expected object, got array",
                                      path + ":9:9: contexts[1].name: duplicate name \"a\""));
  }
  EXPECT_EQ(errorOf([&] { Kubeconfig::loadFile(dir_ + "/missing"); }),
            dir_ + "/missing: cannot read: No such file or directory");
  std::string yaml = write("yaml", "clusters: [\n");
  EXPECT_THAT(errorOf([&] { Kubeconfig::loadFile(yaml); }), HasSubstr(yaml + ":"));
}

TEST_F(KubeconfigTest, KubeconfigEnvMergesFilesInOrder) {
  std::string first = write("one", R"(clusters:
- name: shared
  cluster: {server: "https://one:6443"}
users:
- name: u1
  user: {token: one}
contexts:
- name: c1
  context: {cluster: shared, user: u1}
)");
  std::string second = write("two", R"(clusters:
- name: shared
  cluster: {server: "https://two:6443"}
- name: only-two
  cluster: {server: "https://only-two:6443"}
users:
- name: u2
  user: {token: two}
contexts:
- name: c1
  context: {cluster: only-two, user: u2}
- name: c2
  context: {cluster: only-two, user: u2}
current-context: c2
)");
  std::string env = first + "::" + dir_ + "/does-not-exist:" + second;
  EXPECT_THAT(kubeconfigPaths({.kubeconfig_env = env}),
              ElementsAre(first, dir_ + "/does-not-exist", second));

  // current-context comes from the second file; the first file's c1 and "shared" win.
  ClientConfig c = loadClientConfig({.kubeconfig_env = env});
  EXPECT_EQ(c.context_name, "c2");
  EXPECT_EQ(c.server, "https://only-two:6443");
  EXPECT_EQ(c.token, "two");
  EXPECT_EQ(c.source, second);
  ClientConfig c1 = loadClientConfig({.context = "c1", .kubeconfig_env = env});
  EXPECT_EQ(c1.server, "https://one:6443");
  EXPECT_EQ(c1.token, "one");

  // --kubeconfig wins over $KUBECONFIG; $KUBECONFIG over ~/.kube/config.
  EXPECT_THAT(kubeconfigPaths({.kubeconfig = second, .kubeconfig_env = env}), ElementsAre(second));
  EXPECT_THAT(kubeconfigPaths({.kubeconfig_env = "", .home = "/home/me"}),
              ElementsAre("/home/me/.kube/config"));
  EXPECT_EQ(errorOf([&] { loadClientConfig({.kubeconfig_env = dir_ + "/a:" + dir_ + "/b"}); }),
            "$KUBECONFIG: none of its files exist: " + dir_ + "/a, " + dir_ + "/b");

  // The real environment is read when no override is given.
  write("home/.kube/config", renderKubeconfig(spec()));
  ::setenv("KUBECONFIG", "", 1);
  ::setenv("HOME", (dir_ + "/home").c_str(), 1);
  EXPECT_EQ(loadClientConfig().token, "0123456789abcdef");
  ::setenv("KUBECONFIG", second.c_str(), 1);
  EXPECT_EQ(loadClientConfig().token, "two");
  ::unsetenv("KUBECONFIG");
}

// Runs a command and returns its stdout; `status` gets the exit status.
std::string run(const std::string& command, int& status) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) {
    status = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0)
    out.append(buf, n);
  int rc = ::pclose(pipe);
  status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return out;
}

TEST_F(KubeconfigTest, RealKubectlReadsWhatWeWrite) {
  int status = 0;
  run("kubectl version --client >/dev/null 2>&1", status);
  if (status != 0) GTEST_SKIP() << "kubectl is not installed";

  std::string path = dir_ + "/admin.kubeconfig";
  KubeconfigSpec s = spec();
  s.client_cert_pem = client().cert;
  s.client_key_pem = client().key;
  s.default_namespace = "web";
  writeKubeconfig(path, s);
  std::string kubectl =
      "HOME=" + dir_ + " kubectl --kubeconfig " + path + " config view --raw --minify -o jsonpath=";
  auto field = [&](const std::string& jsonpath) {
    std::string out = run(kubectl + "'" + jsonpath + "' 2>&1", status);
    EXPECT_EQ(status, 0) << out;
    return out;
  };
  EXPECT_EQ(field("{.current-context}"), "skiff");
  EXPECT_EQ(field("{.clusters[0].cluster.server}"), "https://127.0.0.1:6443");
  EXPECT_EQ(field("{.clusters[0].cluster.certificate-authority-data}"), base64Encode(ca().cert));
  EXPECT_EQ(field("{.users[0].name}"), "admin");
  EXPECT_EQ(field("{.users[0].user.token}"), "0123456789abcdef");
  EXPECT_EQ(field("{.users[0].user.client-certificate-data}"), base64Encode(client().cert));
  EXPECT_EQ(field("{.users[0].user.client-key-data}"), base64Encode(client().key));
  EXPECT_EQ(field("{.contexts[0].context.namespace}"), "web");
  // kubectl's own validation of the context (cluster, user, CA data) passes.
  std::string out =
      run("HOME=" + dir_ + " kubectl --kubeconfig " + path + " config get-contexts -o name 2>&1",
          status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(out, "skiff\n");

  // What kubectl writes back (after editing the file) is still readable here.
  out = run("HOME=" + dir_ + " kubectl --kubeconfig " + path +
                " config set-context --current --namespace=other 2>&1",
            status);
  EXPECT_EQ(status, 0) << out;
  ClientConfig c = loadClientConfig({.kubeconfig = path});
  EXPECT_EQ(c.default_namespace, "other");
  EXPECT_EQ(c.token, "0123456789abcdef");
  EXPECT_EQ(c.ca_pem, ca().cert);
}

}  // namespace
}  // namespace skiff::client
