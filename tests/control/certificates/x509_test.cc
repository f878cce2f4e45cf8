// control/certificates: requests made and parsed back, the kubelet signers' rules, and certificates
// signed with a CA from the apiserver's PKI, read back with OpenSSL itself (issuer, subject,
// SANs, key usages, validity).
#include "control/certificates/x509.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <memory>

#include "control/apiserver/pki.h"

namespace skiff::certificates {
namespace {

using namespace std::chrono_literals;

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
std::unique_ptr<X509, X509Free> readCert(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return std::unique_ptr<X509, X509Free>(x);
}

std::string oneLine(const X509_NAME* name) {
  char buf[512];
  X509_NAME_oneline(name, buf, sizeof(buf));
  return buf;
}

time_t asTimeT(const ASN1_TIME* t) {
  struct tm tm {};
  ASN1_TIME_to_tm(t, &tm);
  return timegm(&tm);
}

TEST(CertificateRequest, MadeAndParsedBack) {
  auto made = generateKeyAndRequest("system:node:n1", {"system:nodes"}, {"n1.local"}, {"10.0.0.5"});
  EXPECT_NE(made.key_pem.find("BEGIN PRIVATE KEY"), std::string::npos);
  auto r = parseCertificateRequest(made.request_pem);
  EXPECT_EQ(r.common_name, "system:node:n1");
  EXPECT_EQ(r.organizations, std::vector<std::string>{"system:nodes"});
  EXPECT_EQ(r.dns_names, std::vector<std::string>{"n1.local"});
  EXPECT_EQ(r.ip_addresses, std::vector<std::string>{"10.0.0.5"});
  EXPECT_EQ(r.key_type, "EC");
}

TEST(CertificateRequest, WrongBlockOrBrokenSignatureIsRefused) {
  auto made = generateKeyAndRequest("alice", {});
  EXPECT_THROW(parseCertificateRequest("not pem"), CertError);
  auto ca = apiserver::generateCa("ca");
  try {
    parseCertificateRequest(ca.cert_pem);
    FAIL() << "a CERTIFICATE was taken for a request";
  } catch (const CertError& e) {
    EXPECT_STREQ(e.what(), "PEM block type must be CERTIFICATE REQUEST");
  }
  // One character of the base64 body changed: the DER no longer verifies (or parses).
  std::string broken = made.request_pem;
  size_t body = broken.find('\n') + 40;
  broken[body] = broken[body] == 'A' ? 'B' : 'A';
  EXPECT_THROW(parseCertificateRequest(broken), CertError);
}

TEST(KubeletSigners, ClientAndServingRules) {
  const std::set<std::string> client = {"digital signature", "client auth"};
  const std::set<std::string> client_rsa = {"digital signature", "key encipherment", "client auth"};
  CertificateRequest node{.common_name = "system:node:n1", .organizations = {"system:nodes"}};
  EXPECT_EQ(kubeletClientProblem(node, client), "");
  EXPECT_EQ(kubeletClientProblem(node, client_rsa), "");
  EXPECT_EQ(kubeletClientProblem(node, {"client auth"}),
            "usages did not match [client auth digital signature key encipherment]");
  EXPECT_EQ(kubeletClientProblem(node, {"digital signature", "client auth", "server auth"}),
            "usages did not match [client auth digital signature key encipherment]");
  CertificateRequest bad = node;
  bad.organizations = {"system:nodes", "system:masters"};
  EXPECT_EQ(kubeletClientProblem(bad, client), "subject organization is not system:nodes");
  bad = node;
  bad.common_name = "alice";
  EXPECT_EQ(kubeletClientProblem(bad, client),
            "subject common name does not begin with system:node:");
  bad = node;
  bad.dns_names = {"n1"};
  EXPECT_EQ(kubeletClientProblem(bad, client), "DNS subjectAltNames are not allowed");
  bad = node;
  bad.ip_addresses = {"10.0.0.1"};
  EXPECT_EQ(kubeletClientProblem(bad, client), "IP subjectAltNames are not allowed");

  const std::set<std::string> serving = {"digital signature", "server auth"};
  EXPECT_EQ(kubeletServingProblem(node, serving), "DNS or IP subjectAltName is required");
  CertificateRequest server = node;
  server.ip_addresses = {"10.0.0.1"};
  EXPECT_EQ(kubeletServingProblem(server, serving), "");
  EXPECT_EQ(kubeletServingProblem(server, client),
            "usages did not match [digital signature key encipherment server auth]");

  EXPECT_EQ(apiServerClientProblem({"client auth"}), "");
  EXPECT_EQ(apiServerClientProblem({"digital signature", "key encipherment", "client auth"}), "");
  EXPECT_EQ(apiServerClientProblem({"digital signature"}),
            "missing required usage for client certificate: client auth");
  EXPECT_EQ(apiServerClientProblem({"client auth", "server auth"}),
            "invalid usage for client certificate: server auth");
}

TEST(Sign, TheCertificateSaysWhatTheRequestAndPolicyAsk) {
  auto ca = apiserver::generateCa("skiff-ca");
  auto made = generateKeyAndRequest("system:node:n1", {"system:nodes"});
  auto now = std::chrono::system_clock::from_time_t(1'800'000'000);
  SigningPolicy policy{.usages = {"digital signature", "client auth"}, .ttl = 24h};
  std::string pem = signRequest(ca.cert_pem, ca.key_pem, made.request_pem, policy, now);

  auto cert = readCert(pem);
  ASSERT_TRUE(cert);
  EXPECT_EQ(oneLine(X509_get_subject_name(cert.get())), "/O=system:nodes/CN=system:node:n1");
  EXPECT_EQ(oneLine(X509_get_issuer_name(cert.get())),
            oneLine(X509_get_subject_name(readCert(ca.cert_pem).get())));
  // Backdated 5 minutes; a TTL of at least 8 hours loses the backdate at the end too.
  EXPECT_EQ(asTimeT(X509_get0_notBefore(cert.get())), 1'800'000'000 - 300);
  EXPECT_EQ(asTimeT(X509_get0_notAfter(cert.get())), 1'800'000'000 + 24 * 3600 - 300);
  EXPECT_EQ(X509_get_key_usage(cert.get()), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_EQ(X509_get_extended_key_usage(cert.get()), static_cast<uint32_t>(XKU_SSL_CLIENT));
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  // The key usage extension is critical, as Go's x509 writes it.
  int ku = X509_get_ext_by_NID(cert.get(), NID_key_usage, -1);
  ASSERT_GE(ku, 0);
  EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(cert.get(), ku)), 1);
  // The public key is the request's.
  auto key_bio = BIO_new_mem_buf(made.key_pem.data(), static_cast<int>(made.key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr);
  BIO_free(key_bio);
  EXPECT_EQ(X509_check_private_key(cert.get(), key), 1);
  EVP_PKEY_free(key);

  auto info = inspectCertificate(pem);
  EXPECT_EQ(info.issuer_common_name, "skiff-ca");
  EXPECT_EQ(info.usages, (std::set<std::string>{"digital signature", "client auth"}));
  EXPECT_FALSE(signedBy(pem, apiserver::generateCa("other").cert_pem));
  EXPECT_TRUE(validCertificateBlocks(pem));
  EXPECT_FALSE(validCertificateBlocks(made.request_pem));
  EXPECT_FALSE(validCertificateBlocks(""));
}

TEST(Sign, ShortLifetimesKeepTheirEndAndNeverOutliveTheCa) {
  auto ca = apiserver::generateCa("skiff-ca", 48h);
  auto made = generateKeyAndRequest("system:node:n1", {"system:nodes"}, {"n1"}, {"10.0.0.7"});
  auto now = std::chrono::system_clock::now();
  int64_t now_s = std::chrono::system_clock::to_time_t(now);
  SigningPolicy short_policy{.usages = {"digital signature", "key encipherment", "server auth"},
                             .ttl = 600s};
  auto cert = readCert(signRequest(ca.cert_pem, ca.key_pem, made.request_pem, short_policy, now));
  EXPECT_EQ(asTimeT(X509_get0_notAfter(cert.get())), now_s + 600);
  EXPECT_EQ(X509_get_key_usage(cert.get()),
            static_cast<uint32_t>(KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT));
  EXPECT_EQ(X509_get_extended_key_usage(cert.get()), static_cast<uint32_t>(XKU_SSL_SERVER));
  auto info =
      inspectCertificate(signRequest(ca.cert_pem, ca.key_pem, made.request_pem, short_policy, now));
  EXPECT_EQ(info.dns_names, std::vector<std::string>{"n1"});
  EXPECT_EQ(info.ip_addresses, std::vector<std::string>{"10.0.0.7"});

  SigningPolicy long_policy{.usages = {"client auth"}, .ttl = 24h * 365};
  auto capped = readCert(signRequest(ca.cert_pem, ca.key_pem, made.request_pem, long_policy, now));
  EXPECT_EQ(asTimeT(X509_get0_notAfter(capped.get())),
            asTimeT(X509_get0_notAfter(readCert(ca.cert_pem).get())));

  SigningPolicy unknown{.usages = {"client auth", "world domination"}};
  EXPECT_THROW(signRequest(ca.cert_pem, ca.key_pem, made.request_pem, unknown, now), CertError);
  auto other = apiserver::generateCa("other");
  EXPECT_THROW(signRequest(ca.cert_pem, other.key_pem, made.request_pem, long_policy, now),
               CertError);
}

}  // namespace
}  // namespace skiff::certificates
