#include "control/apiserver/pki.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace skiff::apiserver {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::IsSupersetOf;
using ::testing::UnorderedElementsAre;

class PkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "skiff-pki-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    options_.data_dir = dir_;
    options_.hostname = "node-1";
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::string read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  static void write(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::trunc) << text;
  }
  static unsigned mode(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 0777;
  }

  std::string dir_;
  PkiOptions options_;
};

template <typename Duration>
double days(Duration d) {
  return std::chrono::duration<double>(d).count() / 86400.0;
}

TEST_F(PkiTest, EnsureCreatesCaServingCertAndToken) {
  PkiState state = ensurePki(options_);
  EXPECT_TRUE(state.ca_created);
  EXPECT_TRUE(state.serving_issued);
  EXPECT_EQ(state.serving_reason, "missing");
  const PkiPaths& p = state.paths;
  EXPECT_EQ(p.dir, dir_ + "/pki");
  EXPECT_EQ(mode(p.ca_key), 0600u);
  EXPECT_EQ(mode(p.serving_key), 0600u);
  EXPECT_EQ(mode(p.tokens), 0600u);
  EXPECT_EQ(mode(p.ca_cert), 0644u);
  EXPECT_EQ(mode(p.serving_cert), 0644u);
  EXPECT_EQ(mode(p.dir), 0700u);
  EXPECT_EQ(read(p.ca_cert), state.ca_cert_pem);

  auto now = std::chrono::system_clock::now();
  CertificateInfo ca = inspectCertificate(state.ca_cert_pem);
  EXPECT_TRUE(ca.is_ca);
  EXPECT_TRUE(ca.key_cert_sign);
  EXPECT_THAT(ca.common_name, HasSubstr("skiff-ca@"));
  EXPECT_NEAR(days(ca.not_after - now), 3650, 1);
  EXPECT_LE(ca.not_before, now);
  EXPECT_EQ(ca.sha256_fingerprint, state.ca_fingerprint);
  EXPECT_EQ(ca.sha256_fingerprint.size(), 64u);
  EXPECT_EQ(verifyCertificate(state.ca_cert_pem, state.ca_cert_pem, CertPurpose::kServer), "");

  std::string serving_pem = read(p.serving_cert);
  CertificateInfo serving = inspectCertificate(serving_pem);
  EXPECT_FALSE(serving.is_ca);
  EXPECT_TRUE(serving.server_auth);
  EXPECT_FALSE(serving.client_auth);
  EXPECT_NEAR(days(serving.not_after - now), 365, 1);
  EXPECT_THAT(serving.sans.dns_names,
              UnorderedElementsAre("localhost", "kubernetes", "kubernetes.default",
                                   "kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
                                   "node-1"));
  EXPECT_THAT(serving.sans.ip_addresses, UnorderedElementsAre("127.0.0.1", "::1", "10.96.0.1"));
  EXPECT_EQ(verifyCertificate(state.ca_cert_pem, serving_pem, CertPurpose::kServer), "");
  // serverAuth only: not usable as a client certificate.
  EXPECT_NE(verifyCertificate(state.ca_cert_pem, serving_pem, CertPurpose::kClient), "");
  // Another CA does not vouch for it.
  CertKeyPem other = generateCa("other");
  EXPECT_NE(verifyCertificate(other.cert_pem, serving_pem, CertPurpose::kServer), "");

  ASSERT_EQ(state.admin_token.size(), 64u);
  TokenFile tokens = TokenFile::load(p.tokens);
  const TokenEntry* admin = tokens.authenticate(state.admin_token);
  ASSERT_NE(admin, nullptr);
  EXPECT_EQ(admin->user, "admin");
  EXPECT_THAT(admin->groups, UnorderedElementsAre("system:masters"));
}

TEST_F(PkiTest, SecondEnsureReusesEverything) {
  PkiState first = ensurePki(options_);
  std::string ca_key = read(first.paths.ca_key);
  std::string serving = read(first.paths.serving_cert);
  std::string serving_key = read(first.paths.serving_key);

  PkiState second = ensurePki(options_);
  EXPECT_FALSE(second.ca_created);
  EXPECT_FALSE(second.serving_issued) << second.serving_reason;
  EXPECT_EQ(second.ca_fingerprint, first.ca_fingerprint);
  EXPECT_EQ(second.admin_token, first.admin_token);
  EXPECT_EQ(read(first.paths.ca_key), ca_key);
  EXPECT_EQ(read(first.paths.serving_cert), serving);
  EXPECT_EQ(read(first.paths.serving_key), serving_key);
  EXPECT_EQ(TokenFile::load(first.paths.tokens).entries().size(), 1u);
}

TEST_F(PkiTest, ChangedSansReissueOnlyTheServingCert) {
  PkiState first = ensurePki(options_);
  std::string ca_key = read(first.paths.ca_key);
  std::string serving = read(first.paths.serving_cert);

  options_.extra_sans = {"10.0.0.5", "API.Example.com", "fd00::0:1"};
  PkiState second = ensurePki(options_);
  EXPECT_FALSE(second.ca_created);
  EXPECT_TRUE(second.serving_issued);
  EXPECT_THAT(second.serving_reason, HasSubstr("does not cover"));
  EXPECT_EQ(second.ca_fingerprint, first.ca_fingerprint);
  EXPECT_EQ(read(first.paths.ca_key), ca_key);
  std::string reissued = read(first.paths.serving_cert);
  EXPECT_NE(reissued, serving);
  CertificateInfo info = inspectCertificate(reissued);
  EXPECT_THAT(info.sans.ip_addresses, IsSupersetOf({"10.0.0.5", "fd00::1", "127.0.0.1"}));
  EXPECT_THAT(info.sans.dns_names, IsSupersetOf({"api.example.com", "localhost"}));
  EXPECT_EQ(verifyCertificate(second.ca_cert_pem, reissued, CertPurpose::kServer), "");

  // Same names written differently: nothing to do. Fewer names: still covered.
  options_.extra_sans = {"fd00:0::1", "api.example.com"};
  EXPECT_FALSE(ensurePki(options_).serving_issued);
  options_.extra_sans.clear();
  EXPECT_FALSE(ensurePki(options_).serving_issued);
  // A new service CIDR moves the kubernetes Service IP.
  options_.service_cidr = "10.43.0.0/16";
  PkiState moved = ensurePki(options_);
  EXPECT_TRUE(moved.serving_issued);
  EXPECT_EQ(moved.serving_reason, "does not cover IP 10.43.0.1");
}

TEST_F(PkiTest, ServingCertNearExpiryIsReissued) {
  options_.serving_validity = std::chrono::hours(24 * 10);
  PkiState first = ensurePki(options_);
  EXPECT_TRUE(first.serving_issued);
  options_.serving_validity = kServingValidity;
  PkiState second = ensurePki(options_);
  EXPECT_TRUE(second.serving_issued);
  EXPECT_THAT(second.serving_reason, HasSubstr("expires"));
  EXPECT_FALSE(second.ca_created);
  CertificateInfo info = inspectCertificate(read(first.paths.serving_cert));
  EXPECT_NEAR(days(info.not_after - std::chrono::system_clock::now()), 365, 1);
}

TEST_F(PkiTest, ServingCertFromAnotherCaIsReissued) {
  PkiState first = ensurePki(options_);
  CertKeyPem other = generateCa("other");
  CertKeyPem foreign =
      issueServingCertificate(other, "kube-apiserver", requiredServingSans(options_));
  write(first.paths.serving_cert, foreign.cert_pem);
  write(first.paths.serving_key, foreign.key_pem);
  PkiState second = ensurePki(options_);
  EXPECT_TRUE(second.serving_issued);
  EXPECT_THAT(second.serving_reason, HasSubstr("does not verify against the CA"));
  EXPECT_EQ(
      verifyCertificate(second.ca_cert_pem, read(first.paths.serving_cert), CertPurpose::kServer),
      "");
}

TEST_F(PkiTest, CorruptOrHalfCaIsAnErrorAndNeverOverwritten) {
  PkiState first = ensurePki(options_);
  std::string ca_key = read(first.paths.ca_key);

  write(first.paths.ca_cert, "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n");
  try {
    ensurePki(options_);
    FAIL() << "expected PkiError";
  } catch (const PkiError& e) {
    EXPECT_THAT(e.what(), HasSubstr(first.paths.ca_cert + ": not a PEM certificate"));
  }
  EXPECT_EQ(read(first.paths.ca_key), ca_key);

  fs::remove(first.paths.ca_cert);
  try {
    ensurePki(options_);
    FAIL() << "expected PkiError";
  } catch (const PkiError& e) {
    EXPECT_THAT(e.what(), HasSubstr(first.paths.ca_cert + ": missing while"));
  }
  EXPECT_EQ(read(first.paths.ca_key), ca_key);

  // A CA key that belongs to another certificate.
  CertKeyPem other = generateCa("other");
  write(first.paths.ca_cert, other.cert_pem);
  EXPECT_THROW(
      {
        try {
          ensurePki(options_);
        } catch (const PkiError& e) {
          EXPECT_THAT(e.what(), HasSubstr(first.paths.ca_key + ": does not match"));
          throw;
        }
      },
      PkiError);
  EXPECT_EQ(read(first.paths.ca_key), ca_key);
}

TEST_F(PkiTest, CorruptServingKeyNamesTheFile) {
  PkiState first = ensurePki(options_);
  write(first.paths.serving_key, "not a key\n");
  try {
    ensurePki(options_);
    FAIL() << "expected PkiError";
  } catch (const PkiError& e) {
    EXPECT_THAT(e.what(), HasSubstr(first.paths.serving_key + ": not a PEM private key"));
  }
}

TEST_F(PkiTest, UnreadableCaKeyNamesTheFile) {
  PkiState first = ensurePki(options_);
  // A directory in place of the key: unreadable for root too.
  fs::remove(first.paths.ca_key);
  fs::create_directory(first.paths.ca_key);
  try {
    ensurePki(options_);
    FAIL() << "expected PkiError";
  } catch (const PkiError& e) {
    EXPECT_THAT(e.what(), HasSubstr(first.paths.ca_key + ": cannot read: Is a directory"));
  }
  EXPECT_TRUE(fs::is_directory(first.paths.ca_key));
}

TEST_F(PkiTest, ClientCertificates) {
  PkiState state = ensurePki(options_);
  CertKeyPem admin = ensureClientCertificate(dir_, "admin", "admin", {"system:masters"});
  EXPECT_EQ(mode(state.paths.dir + "/admin.key"), 0600u);
  CertificateInfo info = inspectCertificate(admin.cert_pem);
  EXPECT_EQ(info.common_name, "admin");
  EXPECT_THAT(info.organizations, UnorderedElementsAre("system:masters"));
  EXPECT_TRUE(info.client_auth);
  EXPECT_FALSE(info.server_auth);
  EXPECT_FALSE(info.is_ca);
  EXPECT_TRUE(info.sans.dns_names.empty());
  EXPECT_EQ(verifyCertificate(state.ca_cert_pem, admin.cert_pem, CertPurpose::kClient), "");
  EXPECT_NE(verifyCertificate(state.ca_cert_pem, admin.cert_pem, CertPurpose::kServer), "");

  // Reused while the subject is the same; reissued for another one.
  EXPECT_EQ(ensureClientCertificate(dir_, "admin", "admin", {"system:masters"}).cert_pem,
            admin.cert_pem);
  CertKeyPem kubelet =
      ensureClientCertificate(dir_, "admin", "system:node:node-1", {"system:nodes"});
  EXPECT_NE(kubelet.cert_pem, admin.cert_pem);
  EXPECT_EQ(inspectCertificate(kubelet.cert_pem).common_name, "system:node:node-1");
  EXPECT_THROW(ensureClientCertificate(dir_, "../x", "u", {}), PkiError);
}

TEST_F(PkiTest, NodeCertificatesAndTheKubeletClientCertificate) {
  PkiState state = ensurePki(options_);
  // The apiserver's client certificate at kubelets: CN kube-apiserver-kubelet-client, no groups
  // (not system:masters), clientAuth, from the cluster CA; kept across starts.
  EXPECT_EQ(state.paths.kubelet_client_cert, state.paths.dir + "/kubelet-client.crt");
  EXPECT_EQ(mode(state.paths.kubelet_client_key), 0600u);
  auto read = [](const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string client_pem = read(state.paths.kubelet_client_cert);
  CertificateInfo client = inspectCertificate(client_pem);
  EXPECT_EQ(client.common_name, "kube-apiserver-kubelet-client");
  EXPECT_TRUE(client.organizations.empty());
  EXPECT_TRUE(client.client_auth);
  EXPECT_EQ(verifyCertificate(state.ca_cert_pem, client_pem, CertPurpose::kClient), "");
  EXPECT_EQ(read(ensurePki(options_).paths.kubelet_client_cert), client_pem);
  // A data dir from before the certificate (only kubelet-client.token) gets it on upgrade.
  fs::remove(state.paths.kubelet_client_cert);
  fs::remove(state.paths.kubelet_client_key);
  std::ofstream(state.paths.dir + "/kubelet-client.token") << "old-token\n";
  ensurePki(options_);
  EXPECT_EQ(inspectCertificate(read(state.paths.kubelet_client_cert)).common_name,
            "kube-apiserver-kubelet-client");

  NodeCertificate node = ensureNodeCertificate(dir_, "node-1.example");
  EXPECT_EQ(node.cert_file, state.paths.dir + "/nodes/node-1.example.crt");
  EXPECT_EQ(node.key_file, state.paths.dir + "/nodes/node-1.example.key");
  EXPECT_EQ(mode(node.key_file), 0600u);
  EXPECT_EQ(node.ca_cert_pem, state.ca_cert_pem);
  CertificateInfo info = inspectCertificate(node.pem.cert_pem);
  EXPECT_EQ(info.common_name, "system:node:node-1.example");
  EXPECT_THAT(info.organizations, UnorderedElementsAre("system:nodes"));
  EXPECT_EQ(verifyCertificate(state.ca_cert_pem, node.pem.cert_pem, CertPurpose::kClient), "");
  EXPECT_EQ(ensureNodeCertificate(dir_, "node-1.example").pem.cert_pem, node.pem.cert_pem);
  EXPECT_NE(ensureNodeCertificate(dir_, "node-2").pem.cert_pem, node.pem.cert_pem);

  for (const char* bad : {"", "Node-1", "-a", "a-", "a..b", "a/b", "../x", "a_b", ".a", "a."}) {
    EXPECT_FALSE(validNodeName(bad)) << bad;
    EXPECT_THROW(ensureNodeCertificate(dir_, bad), PkiError) << bad;
  }
  NodeCertificate serving = issueKubeletServingCertificate(dir_, "node-2", {"10.0.0.7"});
  EXPECT_EQ(serving.cert_file, state.paths.dir + "/nodes/node-2-kubelet.crt");
  EXPECT_EQ(verifyCertificate(state.ca_cert_pem, serving.pem.cert_pem, CertPurpose::kServer), "");
  CertificateInfo served = inspectCertificate(serving.pem.cert_pem);
  EXPECT_THAT(served.sans.ip_addresses, UnorderedElementsAre("10.0.0.7", "127.0.0.1"));
  EXPECT_THAT(served.sans.dns_names, UnorderedElementsAre("node-2", "localhost"));
  EXPECT_THROW(issueKubeletServingCertificate(dir_, "node-2", {"not-an-ip"}), PkiError);
  EXPECT_TRUE(validNodeName("a"));
  EXPECT_TRUE(validNodeName("ip-10-0-0-1.ec2.internal"));
  EXPECT_FALSE(validNodeName(std::string(254, 'a')));
}

TEST(Pki, FirstServiceIps) {
  EXPECT_THAT(firstServiceIps("10.96.0.0/12"), UnorderedElementsAre("10.96.0.1"));
  EXPECT_THAT(firstServiceIps("10.100.7.9/12"), UnorderedElementsAre("10.96.0.1"));
  EXPECT_THAT(firstServiceIps("10.43.0.0/16,fd00:10:96::/108"),
              UnorderedElementsAre("10.43.0.1", "fd00:10:96::1"));
}

TEST(Pki, BadServiceCidrs) {
  EXPECT_THROW(firstServiceIps("10.96.0.0"), PkiError);
  EXPECT_THROW(firstServiceIps("10.96.0.0/33"), PkiError);
  EXPECT_THROW(firstServiceIps("10.96.0.0/31"), PkiError);
  EXPECT_THROW(firstServiceIps("ten/8"), PkiError);
  EXPECT_THROW(firstServiceIps(""), PkiError);
}

TEST(Pki, InvalidExtraSanIsRejected) {
  PkiOptions options;
  options.hostname = "h";
  options.extra_sans = {"bad name,with comma"};
  EXPECT_THROW(requiredServingSans(options), PkiError);
}

TEST(PkiTokens, GeneratedTokensAreRandomHex) {
  std::string a = generateToken();
  std::string b = generateToken();
  EXPECT_EQ(a.size(), 64u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(PkiTokens, ParseAsKubeApiserver) {
  TokenFile file = TokenFile::parse(
      "t1,alice,uid-1,\"system:masters,dev\"\n"
      "\n"
      "t2,bob,uid-2\r\n"
      ",nobody,uid-0\n"  // empty token: skipped
      "\"t,3\",\"carol \"\"c\"\"\",uid-3,ops\n",
      "tokens.csv");
  ASSERT_EQ(file.entries().size(), 3u);
  const TokenEntry* alice = file.authenticate("t1");
  ASSERT_NE(alice, nullptr);
  EXPECT_EQ(alice->user, "alice");
  EXPECT_EQ(alice->uid, "uid-1");
  EXPECT_THAT(alice->groups, UnorderedElementsAre("system:masters", "dev"));
  ASSERT_NE(file.authenticate("t2"), nullptr);
  EXPECT_TRUE(file.authenticate("t2")->groups.empty());
  const TokenEntry* carol = file.authenticate("t,3");
  ASSERT_NE(carol, nullptr);
  EXPECT_EQ(carol->user, "carol \"c\"");
  EXPECT_EQ(file.authenticate("t"), nullptr);
  EXPECT_EQ(file.authenticate("t1 "), nullptr);
  EXPECT_EQ(file.authenticate(""), nullptr);
  EXPECT_EQ(file.findUser("bob")->token, "t2");
  EXPECT_EQ(file.findUser("dave"), nullptr);

  // Round trip through the text form.
  TokenFile again = TokenFile::parse(file.serialize());
  ASSERT_EQ(again.entries().size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(again.entries()[i].token, file.entries()[i].token);
    EXPECT_EQ(again.entries()[i].user, file.entries()[i].user);
    EXPECT_EQ(again.entries()[i].uid, file.entries()[i].uid);
    EXPECT_EQ(again.entries()[i].groups, file.entries()[i].groups);
  }
  EXPECT_EQ(TokenFile::parse("t1,alice,uid-1,\"system:masters,dev\"\n").serialize(),
            "t1,alice,uid-1,\"system:masters,dev\"\n");
}

TEST(PkiTokens, ParseErrorsNameTheLine) {
  try {
    TokenFile::parse("t1,a,u\nt2,b\n", "/x/tokens.csv");
    FAIL();
  } catch (const PkiError& e) {
    EXPECT_THAT(e.what(), HasSubstr("/x/tokens.csv:2: a token needs at least 3 columns"));
  }
  try {
    TokenFile::parse("t1,a,u\nt1,b,v\n", "tokens.csv");
    FAIL();
  } catch (const PkiError& e) {
    EXPECT_THAT(e.what(), HasSubstr("tokens.csv:2: duplicate token"));
  }
  EXPECT_THROW(TokenFile::parse("\"t1,a,u\n"), PkiError);
  EXPECT_THROW(TokenFile::parse("t\"1,a,u\n"), PkiError);
}

TEST_F(PkiTest, TokensRoundTripThroughTheFile) {
  fs::create_directories(dir_ + "/pki");
  std::string path = dir_ + "/pki/tokens.csv";
  EXPECT_TRUE(TokenFile::load(path).entries().empty());  // missing: empty
  TokenFile file;
  std::string token = generateToken();
  file.add({token, "system:node:n1", "n1", {"system:nodes"}});
  file.add({generateToken(), "admin", "admin", {"system:masters", "dev"}});
  EXPECT_THROW(file.add({token, "x", "x", {}}), PkiError);
  file.save(path);
  EXPECT_EQ(mode(path), 0600u);
  TokenFile loaded = TokenFile::load(path);
  ASSERT_EQ(loaded.entries().size(), 2u);
  ASSERT_NE(loaded.authenticate(token), nullptr);
  EXPECT_EQ(loaded.authenticate(token)->user, "system:node:n1");
  EXPECT_EQ(loaded.findUser("admin")->groups, (std::vector<std::string>{"system:masters", "dev"}));
  EXPECT_THAT(read(path), HasSubstr(",admin,admin,\"system:masters,dev\"\n"));

  // ensurePki keeps existing tokens and adds the admin's only when missing.
  PkiState state = ensurePki(options_);
  EXPECT_EQ(state.admin_token, loaded.findUser("admin")->token);
  EXPECT_EQ(TokenFile::load(path).entries().size(), 2u);
}

}  // namespace
}  // namespace skiff::apiserver
