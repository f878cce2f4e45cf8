#include "control/certificates/x509.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <memory>
#include <utility>

#include "control/certificates/openssl_ptr.h"

namespace skiff::certificates {
namespace {

void freeGeneralNames(GENERAL_NAMES* names) {
  GENERAL_NAMES_free(names);
}
using GeneralNames = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES, freeGeneralNames>>;
void freeExtensions(STACK_OF(X509_EXTENSION) * exts) {
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
}

// The OpenSSL error queue as text (emptied), or `fallback`.
std::string sslError(const char* fallback) {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return fallback;
  std::array<char, 256> buf{};
  ERR_error_string_n(code, buf.data(), buf.size());
  return std::string(fallback) + " (" + buf.data() + ")";
}

Bio memory(std::string_view text) {
  return Bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string bioText(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

// The DER of the first PEM block of `pem`, which must be of type `type`.
std::string firstBlock(std::string_view pem, std::string_view type) {
  Bio in = memory(pem);
  char* name = nullptr;
  char* header = nullptr;
  unsigned char* data = nullptr;
  long length = 0;
  if (PEM_read_bio(in.get(), &name, &header, &data, &length) != 1) {
    ERR_clear_error();
    throw CertError("PEM block type must be " + std::string(type));
  }
  std::string block_type = name;
  std::string der(reinterpret_cast<const char*>(data), static_cast<size_t>(length));
  OPENSSL_free(name);
  OPENSSL_free(header);
  OPENSSL_free(data);
  if (block_type != type) throw CertError("PEM block type must be " + std::string(type));
  return der;
}

Req parseRequestDer(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  Req req(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
  if (!req) throw CertError(sslError("the CERTIFICATE REQUEST does not parse as PKCS#10"));
  EVP_PKEY* key = X509_REQ_get0_pubkey(req.get());
  if (key == nullptr || X509_REQ_verify(req.get(), key) != 1) {
    throw CertError(sslError("the CERTIFICATE REQUEST's signature does not verify"));
  }
  return req;
}

Req parseRequestPem(std::string_view pem) {
  return parseRequestDer(firstBlock(pem, "CERTIFICATE REQUEST"));
}

Cert parseCertPem(std::string_view pem) {
  Bio in = memory(pem);
  Cert cert(PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr));
  if (!cert) throw CertError(sslError("no CERTIFICATE PEM block"));
  return cert;
}

std::string asn1Text(const ASN1_STRING* s) {
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, s);
  if (n < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

std::vector<std::string> nameEntries(const X509_NAME* name, int nid) {
  std::vector<std::string> out;
  int i = -1;
  while ((i = X509_NAME_get_index_by_NID(name, nid, i)) >= 0) {
    out.push_back(asn1Text(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i))));
  }
  return out;
}

std::string firstEntry(const X509_NAME* name, int nid) {
  auto all = nameEntries(name, nid);
  return all.empty() ? std::string() : all.front();
}

std::string ipText(const ASN1_OCTET_STRING* ip) {
  std::array<char, INET6_ADDRSTRLEN> buf{};
  const unsigned char* data = ASN1_STRING_get0_data(ip);
  int len = ASN1_STRING_length(ip);
  if (len == 4) return inet_ntop(AF_INET, data, buf.data(), buf.size());
  if (len == 16) return inet_ntop(AF_INET6, data, buf.data(), buf.size());
  return "<bad IP>";
}

struct Sans {
  std::vector<std::string> dns, ip, email, uri;
};
Sans sansOf(const GENERAL_NAMES* names) {
  Sans out;
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
    switch (g->type) {
      case GEN_DNS:
        out.dns.push_back(asn1Text(g->d.dNSName));
        break;
      case GEN_IPADD:
        out.ip.push_back(ipText(g->d.iPAddress));
        break;
      case GEN_EMAIL:
        out.email.push_back(asn1Text(g->d.rfc822Name));
        break;
      case GEN_URI:
        out.uri.push_back(asn1Text(g->d.uniformResourceIdentifier));
        break;
      default:
        break;
    }
  }
  return out;
}

// The request's subjectAltName extension (owned), or nullptr.
GeneralNames requestSans(X509_REQ* req) {
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req);
  if (exts == nullptr) return nullptr;
  GeneralNames names(
      static_cast<GENERAL_NAMES*>(X509V3_get_d2i(exts, NID_subject_alt_name, nullptr, nullptr)));
  freeExtensions(exts);
  return names;
}

struct UsageBits {
  const char* usage;
  const char* key_usage;  // X509v3 config name, or nullptr
  const char* ext_usage;  // or nullptr
};
// certificates.k8s.io/v1 KeyUsage values and what Kubernetes' keyUsagesFromStrings makes of them.
constexpr std::array<UsageBits, 23> kUsages = {{
    {"signing", "digitalSignature", nullptr},
    {"digital signature", "digitalSignature", nullptr},
    {"content commitment", "nonRepudiation", nullptr},
    {"key encipherment", "keyEncipherment", nullptr},
    {"key agreement", "keyAgreement", nullptr},
    {"data encipherment", "dataEncipherment", nullptr},
    {"cert sign", "keyCertSign", nullptr},
    {"crl sign", "cRLSign", nullptr},
    {"encipher only", "encipherOnly", nullptr},
    {"decipher only", "decipherOnly", nullptr},
    {"any", nullptr, "anyExtendedKeyUsage"},
    {"server auth", nullptr, "serverAuth"},
    {"client auth", nullptr, "clientAuth"},
    {"code signing", nullptr, "codeSigning"},
    {"email protection", nullptr, "emailProtection"},
    {"s/mime", nullptr, "emailProtection"},
    {"ipsec end system", nullptr, "ipsecEndSystem"},
    {"ipsec tunnel", nullptr, "ipsecTunnel"},
    {"ipsec user", nullptr, "ipsecUser"},
    {"timestamping", nullptr, "timeStamping"},
    {"ocsp signing", nullptr, "OCSPSigning"},
    {"microsoft sgc", nullptr, "msSGC"},
    {"netscape sgc", nullptr, "nsSGC"},
}};

const UsageBits* usageBits(std::string_view usage) {
  for (const auto& u : kUsages) {
    if (usage == u.usage) return &u;
  }
  return nullptr;
}

void addExtension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str());
  if (ext == nullptr) throw CertError(sslError(("cannot make the extension " + value).c_str()));
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (ok != 1) throw CertError(sslError("cannot add an extension"));
}

std::chrono::system_clock::time_point timeOf(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return {};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string listText(const std::set<std::string>& s) {
  std::string out = "[";
  for (const auto& x : s)
    out += (out.size() > 1 ? " " : "") + x;
  return out + "]";
}

}  // namespace

bool knownUsage(std::string_view usage) {
  return usageBits(usage) != nullptr;
}

CertificateRequest parseCertificateRequest(std::string_view pem) {
  Req req = parseRequestPem(pem);
  CertificateRequest out;
  const X509_NAME* subject = X509_REQ_get_subject_name(req.get());
  out.common_name = firstEntry(subject, NID_commonName);
  out.organizations = nameEntries(subject, NID_organizationName);
  GeneralNames names = requestSans(req.get());
  Sans sans = sansOf(names.get());
  out.dns_names = std::move(sans.dns);
  out.ip_addresses = std::move(sans.ip);
  out.email_addresses = std::move(sans.email);
  out.uris = std::move(sans.uri);
  switch (EVP_PKEY_get_base_id(X509_REQ_get0_pubkey(req.get()))) {
    case EVP_PKEY_RSA:
      out.key_type = "RSA";
      break;
    case EVP_PKEY_EC:
      out.key_type = "EC";
      break;
    case EVP_PKEY_ED25519:
      out.key_type = "ED25519";
      break;
    default:
      out.key_type = "other";
  }
  return out;
}

std::string kubeletClientProblem(const CertificateRequest& request,
                                 const std::set<std::string>& usages) {
  if (request.organizations != std::vector<std::string>{std::string(kNodesGroup)}) {
    return "subject organization is not system:nodes";
  }
  if (!request.dns_names.empty()) return "DNS subjectAltNames are not allowed";
  if (!request.email_addresses.empty()) return "Email subjectAltNames are not allowed";
  if (!request.ip_addresses.empty()) return "IP subjectAltNames are not allowed";
  if (!request.uris.empty()) return "URI subjectAltNames are not allowed";
  if (!request.common_name.starts_with(kNodeUserPrefix)) {
    return "subject common name does not begin with system:node:";
  }
  const std::set<std::string> required = {"client auth", "digital signature", "key encipherment"};
  const std::set<std::string> required_no_rsa = {"client auth", "digital signature"};
  if (usages != required && usages != required_no_rsa) {
    return "usages did not match " + listText(required);
  }
  return "";
}

std::string kubeletServingProblem(const CertificateRequest& request,
                                  const std::set<std::string>& usages) {
  if (request.organizations != std::vector<std::string>{std::string(kNodesGroup)}) {
    return "subject organization is not system:nodes";
  }
  if (request.dns_names.empty() && request.ip_addresses.empty()) {
    return "DNS or IP subjectAltName is required";
  }
  if (!request.email_addresses.empty()) return "Email subjectAltNames are not allowed";
  if (!request.uris.empty()) return "URI subjectAltNames are not allowed";
  const std::set<std::string> required = {"digital signature", "key encipherment", "server auth"};
  const std::set<std::string> required_no_rsa = {"digital signature", "server auth"};
  if (usages != required && usages != required_no_rsa) {
    return "usages did not match " + listText(required);
  }
  if (!request.common_name.starts_with(kNodeUserPrefix)) {
    return "subject common name does not begin with system:node:";
  }
  return "";
}

std::string apiServerClientProblem(const std::vector<std::string>& usages) {
  bool client_auth = false;
  for (const auto& u : usages) {
    if (u == "digital signature" || u == "key encipherment") continue;  // optional
    if (u == "client auth") {
      client_auth = true;
      continue;
    }
    return "invalid usage for client certificate: " + u;
  }
  if (!client_auth) return "missing required usage for client certificate: client auth";
  return "";
}

KeyAndRequest generateKeyAndRequest(std::string_view common_name,
                                    const std::vector<std::string>& organizations,
                                    const std::vector<std::string>& dns_names,
                                    const std::vector<std::string>& ip_addresses) {
  Key key(EVP_EC_gen("P-256"));
  if (!key) throw CertError(sslError("cannot make an EC P-256 key"));
  Req req(X509_REQ_new());
  X509_REQ_set_version(req.get(), 0);
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  for (const auto& o : organizations) {
    X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(o.c_str()), -1, -1, 0);
  }
  std::string cn(common_name);
  X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  std::string san;
  for (const auto& d : dns_names)
    san += (san.empty() ? "" : ",") + ("DNS:" + d);
  for (const auto& ip : ip_addresses)
    san += (san.empty() ? "" : ",") + ("IP:" + ip);
  if (!san.empty()) {
    STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str());
    if (ext == nullptr) {
      freeExtensions(exts);
      throw CertError(sslError("bad subjectAltNames"));
    }
    sk_X509_EXTENSION_push(exts, ext);
    X509_REQ_add_extensions(req.get(), exts);
    freeExtensions(exts);
  }
  X509_REQ_set_pubkey(req.get(), key.get());
  if (X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0) {
    throw CertError(sslError("cannot sign the certificate request"));
  }
  KeyAndRequest out;
  Bio key_out(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(key_out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  out.key_pem = bioText(key_out.get());
  Bio req_out(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(req_out.get(), req.get());
  out.request_pem = bioText(req_out.get());
  return out;
}

std::string signRequest(std::string_view ca_cert_pem, std::string_view ca_key_pem,
                        std::string_view request_pem, const SigningPolicy& policy,
                        std::chrono::system_clock::time_point now) {
  Cert ca = parseCertPem(ca_cert_pem);
  Bio key_in = memory(ca_key_pem);
  Key ca_key(PEM_read_bio_PrivateKey(key_in.get(), nullptr, nullptr, nullptr));
  if (!ca_key) throw CertError(sslError("the CA key does not parse"));
  if (X509_check_private_key(ca.get(), ca_key.get()) != 1) {
    throw CertError(sslError("the CA key does not match the CA certificate"));
  }
  Req req = parseRequestPem(request_pem);

  std::string key_usage;
  std::string ext_usage;
  for (const auto& u : policy.usages) {
    const UsageBits* bits = usageBits(u);
    if (bits == nullptr) throw CertError("unknown key usage \"" + u + "\"");
    auto add = [](std::string& list, const char* item) {
      if (item == nullptr || list.find(item) != std::string::npos) return;
      list += (list.empty() ? "" : ",") + std::string(item);
    };
    add(key_usage, bits->key_usage);
    add(ext_usage, bits->ext_usage);
  }

  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  std::array<unsigned char, 16> serial_bytes{};
  if (RAND_bytes(serial_bytes.data(), serial_bytes.size()) != 1) {
    throw CertError(sslError("no random serial"));
  }
  serial_bytes[0] &= 0x7f;  // positive
  BIGNUM* serial = BN_bin2bn(serial_bytes.data(), serial_bytes.size(), nullptr);
  BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert.get()));
  BN_free(serial);
  X509_set_subject_name(cert.get(), X509_REQ_get_subject_name(req.get()));
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca.get()));
  X509_set_pubkey(cert.get(), X509_REQ_get0_pubkey(req.get()));

  auto not_before = now - policy.backdate;
  auto not_after =
      policy.ttl < policy.short_ttl ? now + policy.ttl : now + policy.ttl - policy.backdate;
  auto ca_not_after = timeOf(X509_get0_notAfter(ca.get()));
  if (not_after >= ca_not_after) not_after = ca_not_after;
  ASN1_TIME_set(X509_getm_notBefore(cert.get()), std::chrono::system_clock::to_time_t(not_before));
  ASN1_TIME_set(X509_getm_notAfter(cert.get()), std::chrono::system_clock::to_time_t(not_after));

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca.get(), cert.get(), nullptr, nullptr, 0);
  addExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
  if (!key_usage.empty()) addExtension(cert.get(), &ctx, NID_key_usage, "critical," + key_usage);
  if (!ext_usage.empty()) addExtension(cert.get(), &ctx, NID_ext_key_usage, ext_usage);
  if (X509_get0_subject_key_id(ca.get()) != nullptr) {
    addExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
  }
  if (GeneralNames sans = requestSans(req.get())) {
    if (X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, sans.get(), 0, 0) != 1) {
      throw CertError(sslError("cannot copy the subjectAltNames"));
    }
  }
  if (X509_sign(cert.get(), ca_key.get(), EVP_sha256()) <= 0) {
    throw CertError(sslError("cannot sign the certificate"));
  }
  Bio out(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(out.get(), cert.get());
  return bioText(out.get());
}

CertificateInfo inspectCertificate(std::string_view pem) {
  Cert cert = parseCertPem(pem);
  CertificateInfo out;
  const X509_NAME* subject = X509_get_subject_name(cert.get());
  out.subject_common_name = firstEntry(subject, NID_commonName);
  out.subject_organizations = nameEntries(subject, NID_organizationName);
  out.issuer_common_name = firstEntry(X509_get_issuer_name(cert.get()), NID_commonName);
  GeneralNames names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));
  Sans sans = sansOf(names.get());
  out.dns_names = std::move(sans.dns);
  out.ip_addresses = std::move(sans.ip);
  uint32_t ku = X509_get_key_usage(cert.get());
  if (ku != UINT32_MAX) {
    const std::pair<uint32_t, const char*> bits[] = {{KU_DIGITAL_SIGNATURE, "digital signature"},
                                                     {KU_NON_REPUDIATION, "content commitment"},
                                                     {KU_KEY_ENCIPHERMENT, "key encipherment"},
                                                     {KU_DATA_ENCIPHERMENT, "data encipherment"},
                                                     {KU_KEY_AGREEMENT, "key agreement"},
                                                     {KU_KEY_CERT_SIGN, "cert sign"},
                                                     {KU_CRL_SIGN, "crl sign"},
                                                     {KU_ENCIPHER_ONLY, "encipher only"},
                                                     {KU_DECIPHER_ONLY, "decipher only"}};
    for (const auto& [bit, name] : bits) {
      if ((ku & bit) != 0) out.usages.insert(name);
    }
  }
  uint32_t xku = X509_get_extended_key_usage(cert.get());
  if (xku != UINT32_MAX) {
    const std::pair<uint32_t, const char*> bits[] = {{XKU_SSL_SERVER, "server auth"},
                                                     {XKU_SSL_CLIENT, "client auth"},
                                                     {XKU_SMIME, "email protection"},
                                                     {XKU_CODE_SIGN, "code signing"},
                                                     {XKU_OCSP_SIGN, "ocsp signing"},
                                                     {XKU_TIMESTAMP, "timestamping"},
                                                     {XKU_ANYEKU, "any"}};
    for (const auto& [bit, name] : bits) {
      if ((xku & bit) != 0) out.usages.insert(name);
    }
  }
  out.is_ca = X509_check_ca(cert.get()) != 0;
  out.not_before = timeOf(X509_get0_notBefore(cert.get()));
  out.not_after = timeOf(X509_get0_notAfter(cert.get()));
  return out;
}

bool validCertificateBlocks(std::string_view pem) {
  Bio in = memory(pem);
  int blocks = 0;
  for (;;) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long length = 0;
    if (PEM_read_bio(in.get(), &name, &header, &data, &length) != 1) break;
    bool ok = std::string_view(name) == "CERTIFICATE" && std::string_view(header).empty();
    const unsigned char* p = data;
    X509* cert = ok ? d2i_X509(nullptr, &p, length) : nullptr;
    ok = cert != nullptr;
    X509_free(cert);
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    if (!ok) {
      ERR_clear_error();
      return false;
    }
    ++blocks;
  }
  ERR_clear_error();
  return blocks > 0;
}

bool signedBy(std::string_view cert_pem, std::string_view ca_pem) {
  Cert cert;
  Cert ca;
  try {
    cert = parseCertPem(cert_pem);
    ca = parseCertPem(ca_pem);
  } catch (const CertError&) {
    return false;
  }
  std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>> store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca.get());
  std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>> ctx(
      X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr);
  bool ok = X509_verify_cert(ctx.get()) == 1;
  ERR_clear_error();
  return ok;
}

}  // namespace skiff::certificates
