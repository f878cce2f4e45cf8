#include "control/apiserver/pki.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <set>

namespace skiff::apiserver {
namespace {

// ------------------------------------------------------------------------------ OpenSSL owners

struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct ExtFree {
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
struct NamesFree {
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
};
struct StoreFree {
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
};
struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
struct EkuFree {
  void operator()(EXTENDED_KEY_USAGE* p) const { EXTENDED_KEY_USAGE_free(p); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, ExtFree>;
using NamesPtr = std::unique_ptr<GENERAL_NAMES, NamesFree>;
using StorePtr = std::unique_ptr<X509_STORE, StoreFree>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, StoreCtxFree>;
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;

// The OpenSSL error queue as text (and cleared).
std::string sslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

[[noreturn]] void fail(std::string_view what) {
  throw PkiError(std::string(what) + ": " + sslErrors());
}

void check(int rc, std::string_view what) {
  if (rc <= 0) fail(what);
}

BioPtr memBio(std::string_view data) {
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!bio) fail("BIO_new_mem_buf");
  return bio;
}

std::string bioString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

X509Ptr parseCert(std::string_view pem, std::string_view source) {
  ERR_clear_error();
  auto bio = memBio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    throw PkiError(std::string(source) + ": not a PEM certificate (" + sslErrors() + ")");
  }
  return cert;
}

PkeyPtr parseKey(std::string_view pem, std::string_view source) {
  ERR_clear_error();
  auto bio = memBio(pem);
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) throw PkiError(std::string(source) + ": not a PEM private key (" + sslErrors() + ")");
  return key;
}

std::string certPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_X509(bio.get(), cert), "PEM_write_bio_X509");
  return bioString(bio.get());
}

std::string keyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr),
        "PEM_write_bio_PrivateKey");
  return bioString(bio.get());
}

PkeyPtr newKey() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) fail("generating an EC P-256 key");
  return key;
}

std::string toLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Canonical text of an IP address, or nullopt when `s` is not one.
std::optional<std::string> canonicalIp(std::string_view s) {
  std::string str(s);
  unsigned char buf[16];
  char out[INET6_ADDRSTRLEN];
  if (inet_pton(AF_INET, str.c_str(), buf) == 1) {
    return std::string(inet_ntop(AF_INET, buf, out, sizeof(out)));
  }
  if (inet_pton(AF_INET6, str.c_str(), buf) == 1) {
    return std::string(inet_ntop(AF_INET6, buf, out, sizeof(out)));
  }
  return std::nullopt;
}

bool validDnsName(std::string_view s) {
  if (s.empty() || s.size() > 253 || s.front() == '.' || s.back() == '.') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '*' || c == '_';
  });
}

void addSan(SubjectAltNames& sans, std::string_view name) {
  if (auto ip = canonicalIp(name)) {
    sans.ip_addresses.push_back(*ip);
  } else if (validDnsName(name)) {
    sans.dns_names.push_back(toLower(name));
  } else {
    throw PkiError("invalid subject alternative name \"" + std::string(name) +
                   "\": neither an IP address nor a DNS name");
  }
}

void sortUnique(std::vector<std::string>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

std::chrono::system_clock::time_point asn1Time(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) fail("ASN1_TIME_to_tm");
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string utf8(const ASN1_STRING* s) {
  unsigned char* out = nullptr;
  int n = ASN1_STRING_to_UTF8(&out, s);
  if (n < 0) return {};
  std::string result(reinterpret_cast<char*>(out), static_cast<size_t>(n));
  OPENSSL_free(out);
  return result;
}

std::string hex(const unsigned char* data, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 15];
  }
  return out;
}

void addExtension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  if (!ext) fail(std::string("making extension ") + OBJ_nid2sn(nid) + "=" + value);
  check(X509_add_ext(cert, ext.get(), -1), "X509_add_ext");
}

void addSanExtension(X509* cert, const SubjectAltNames& sans) {
  NamesPtr names(GENERAL_NAMES_new());
  if (!names) fail("GENERAL_NAMES_new");
  auto push = [&](int type, ASN1_STRING* value) {
    GENERAL_NAME* name = GENERAL_NAME_new();
    if (!name || !value) {
      GENERAL_NAME_free(name);
      ASN1_STRING_free(value);
      fail("making a subject alternative name");
    }
    GENERAL_NAME_set0_value(name, type, value);
    if (sk_GENERAL_NAME_push(names.get(), name) <= 0) {
      GENERAL_NAME_free(name);
      fail("sk_GENERAL_NAME_push");
    }
  };
  for (const auto& dns : sans.dns_names) {
    ASN1_IA5STRING* s = ASN1_IA5STRING_new();
    if (s && ASN1_STRING_set(s, dns.data(), static_cast<int>(dns.size())) != 1) {
      ASN1_STRING_free(s);
      s = nullptr;
    }
    push(GEN_DNS, s);
  }
  for (const auto& ip : sans.ip_addresses) {
    ASN1_OCTET_STRING* s = a2i_IPADDRESS(ip.c_str());
    if (!s) throw PkiError("invalid IP address \"" + ip + "\"");
    push(GEN_IPADD, s);
  }
  check(X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT),
        "adding subjectAltName");
}

struct Subject {
  std::string_view common_name;
  const std::vector<std::string>* organizations = nullptr;
};

// A certificate for `key` with a random 127-bit serial, valid from five minutes ago (clock skew)
// for `validity`, issued by `issuer` (self-issued when null); the caller adds extensions and signs.
X509Ptr newCert(const Subject& subject, EVP_PKEY* key, std::chrono::seconds validity,
                X509* issuer) {
  X509Ptr cert(X509_new());
  if (!cert) fail("X509_new");
  check(X509_set_version(cert.get(), X509_VERSION_3), "X509_set_version");
  BnPtr serial(BN_new());
  if (!serial) fail("BN_new");
  check(BN_rand(serial.get(), 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY), "BN_rand");
  if (!BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get()))) fail("serial");

  X509_NAME* name = X509_get_subject_name(cert.get());
  auto addEntry = [&](const char* field, std::string_view value) {
    check(X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                     reinterpret_cast<const unsigned char*>(value.data()),
                                     static_cast<int>(value.size()), -1, 0),
          "X509_NAME_add_entry_by_txt");
  };
  if (subject.organizations) {
    for (const auto& o : *subject.organizations)
      addEntry("O", o);
  }
  addEntry("CN", subject.common_name);
  check(X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name),
        "X509_set_issuer_name");

  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), -300)) fail("notBefore");
  long days = static_cast<long>(validity.count() / 86400);
  long seconds = static_cast<long>(validity.count() % 86400);
  if (!X509_time_adj_ex(X509_getm_notAfter(cert.get()), static_cast<int>(days), seconds, nullptr)) {
    fail("notAfter");
  }
  check(X509_set_pubkey(cert.get(), key), "X509_set_pubkey");
  return cert;
}

void sign(X509* cert, EVP_PKEY* key) {
  if (X509_sign(cert, key, EVP_sha256()) <= 0) fail("signing the certificate");
}

CertKeyPem issueLeaf(const CertKeyPem& ca, const Subject& subject, const char* eku,
                     const SubjectAltNames* sans, std::chrono::seconds validity) {
  X509Ptr ca_cert = parseCert(ca.cert_pem, "CA certificate");
  PkeyPtr ca_key = parseKey(ca.key_pem, "CA key");
  PkeyPtr key = newKey();
  X509Ptr cert = newCert(subject, key.get(), validity, ca_cert.get());
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca_cert.get(), cert.get(), nullptr, nullptr, 0);
  addExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
  addExtension(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature");
  addExtension(cert.get(), &ctx, NID_ext_key_usage, eku);
  addExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  addExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
  if (sans) addSanExtension(cert.get(), *sans);
  sign(cert.get(), ca_key.get());
  return {certPem(cert.get()), keyPem(key.get())};
}

// ------------------------------------------------------------------------------------- files

std::string errnoText(int err) {
  return std::strerror(err);
}

// The file's contents, or nullopt when it does not exist. Other errors throw, naming the file.
std::optional<std::string> readFileIfExists(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw PkiError(path + ": cannot read: " + errnoText(errno));
  }
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      throw PkiError(path + ": cannot read: " + errnoText(err));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

// Writes `content` to a temporary file with `mode` (whatever the umask), syncs it and renames it
// over `path`.
void writeFileAtomic(const std::string& path, std::string_view content, mode_t mode) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw PkiError(path + ": cannot write: " + errnoText(errno));
  auto failWith = [&](int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw PkiError(path + ": cannot write: " + errnoText(err));
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
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw PkiError(path + ": cannot write: " + errnoText(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw PkiError(path + ": cannot write: " + errnoText(err));
  }
}

void makeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) == 0 || errno == EEXIST) return;
  throw PkiError(path + ": cannot create directory: " + errnoText(errno));
}

void writePair(const std::string& cert_path, const std::string& key_path, const CertKeyPem& pair) {
  writeFileAtomic(key_path, pair.key_pem, 0600);
  writeFileAtomic(cert_path, pair.cert_pem, 0644);
}

std::string formatTime(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  struct tm tm {};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Why an existing leaf certificate must be reissued, or empty when it can stay.
std::string staleReason(const CertKeyPem& ca, const CertKeyPem& leaf, CertPurpose purpose,
                        std::chrono::seconds renew_before, const std::string& cert_path,
                        const std::string& key_path) {
  X509Ptr cert = parseCert(leaf.cert_pem, cert_path);
  PkeyPtr key = parseKey(leaf.key_pem, key_path);
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return "key does not match the certificate";
  }
  std::string why = verifyCertificate(ca.cert_pem, leaf.cert_pem, purpose);
  if (!why.empty()) return "does not verify against the CA: " + why;
  CertificateInfo info = inspectCertificate(leaf.cert_pem, cert_path);
  if (info.not_after - std::chrono::system_clock::now() < renew_before) {
    return "expires " + formatTime(info.not_after);
  }
  return {};
}

}  // namespace

// --------------------------------------------------------------------------------- certificates

CertKeyPem generateCa(std::string_view common_name, std::chrono::seconds validity) {
  PkeyPtr key = newKey();
  X509Ptr cert = newCert({common_name, nullptr}, key.get(), validity, nullptr);
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  addExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE");
  addExtension(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature,keyCertSign,cRLSign");
  addExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  sign(cert.get(), key.get());
  return {certPem(cert.get()), keyPem(key.get())};
}

CertKeyPem issueServingCertificate(const CertKeyPem& ca, std::string_view common_name,
                                   const SubjectAltNames& sans, std::chrono::seconds validity) {
  return issueLeaf(ca, {common_name, nullptr}, "serverAuth", &sans, validity);
}

CertKeyPem issueClientCertificate(const CertKeyPem& ca, std::string_view common_name,
                                  const std::vector<std::string>& groups,
                                  std::chrono::seconds validity) {
  return issueLeaf(ca, {common_name, &groups}, "clientAuth", nullptr, validity);
}

CertificateInfo inspectCertificate(std::string_view cert_pem, std::string_view source) {
  X509Ptr cert = parseCert(cert_pem, source);
  CertificateInfo info;
  X509_NAME* subject = X509_get_subject_name(cert.get());
  for (int i = 0; i < X509_NAME_entry_count(subject); ++i) {
    X509_NAME_ENTRY* entry = X509_NAME_get_entry(subject, i);
    int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry));
    if (nid == NID_commonName) info.common_name = utf8(X509_NAME_ENTRY_get_data(entry));
    if (nid == NID_organizationName) {
      info.organizations.push_back(utf8(X509_NAME_ENTRY_get_data(entry)));
    }
  }
  NamesPtr names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));
  if (names) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
      if (name->type == GEN_DNS) {
        info.sans.dns_names.push_back(utf8(name->d.dNSName));
      } else if (name->type == GEN_IPADD) {
        const ASN1_OCTET_STRING* ip = name->d.iPAddress;
        char out[INET6_ADDRSTRLEN];
        int len = ASN1_STRING_length(ip);
        int family = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
        if (family && inet_ntop(family, ASN1_STRING_get0_data(ip), out, sizeof(out))) {
          info.sans.ip_addresses.emplace_back(out);
        }
      }
    }
  }
  uint32_t flags = X509_get_extension_flags(cert.get());
  info.is_ca = (flags & EXFLAG_CA) != 0;
  info.key_cert_sign =
      (flags & EXFLAG_KUSAGE) && (X509_get_key_usage(cert.get()) & KU_KEY_CERT_SIGN);
  uint32_t xku = (flags & EXFLAG_XKUSAGE) ? X509_get_extended_key_usage(cert.get()) : 0;
  info.server_auth = (xku & XKU_SSL_SERVER) != 0;
  info.client_auth = (xku & XKU_SSL_CLIENT) != 0;
  info.not_before = asn1Time(X509_get0_notBefore(cert.get()));
  info.not_after = asn1Time(X509_get0_notAfter(cert.get()));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (!X509_digest(cert.get(), EVP_sha256(), md, &md_len)) fail("X509_digest");
  info.sha256_fingerprint = hex(md, md_len);
  return info;
}

std::string verifyCertificate(std::string_view ca_pem, std::string_view cert_pem,
                              CertPurpose purpose) {
  X509Ptr ca = parseCert(ca_pem, "CA certificate");
  X509Ptr cert = parseCert(cert_pem, "certificate");
  StorePtr store(X509_STORE_new());
  if (!store) fail("X509_STORE_new");
  check(X509_STORE_add_cert(store.get(), ca.get()), "X509_STORE_add_cert");
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx) fail("X509_STORE_CTX_new");
  check(X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr), "X509_STORE_CTX_init");
  check(X509_STORE_CTX_set_purpose(ctx.get(), purpose == CertPurpose::kServer
                                                  ? X509_PURPOSE_SSL_SERVER
                                                  : X509_PURPOSE_SSL_CLIENT),
        "X509_STORE_CTX_set_purpose");
  if (X509_verify_cert(ctx.get()) == 1) return {};
  std::string why = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
  ERR_clear_error();
  return why;
}

std::vector<std::string> firstServiceIps(std::string_view service_cidrs) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= service_cidrs.size()) {
    size_t comma = service_cidrs.find(',', start);
    if (comma == std::string_view::npos) comma = service_cidrs.size();
    std::string_view cidr = service_cidrs.substr(start, comma - start);
    start = comma + 1;
    if (cidr.empty()) continue;
    auto bad = [&](std::string_view why) {
      return PkiError("invalid service CIDR \"" + std::string(cidr) + "\": " + std::string(why));
    };
    size_t slash = cidr.find('/');
    if (slash == std::string_view::npos) throw bad("no prefix length");
    std::string addr(cidr.substr(0, slash));
    std::string_view prefix_text = cidr.substr(slash + 1);
    int prefix = -1;
    auto [ptr, ec] =
        std::from_chars(prefix_text.data(), prefix_text.data() + prefix_text.size(), prefix);
    if (ec != std::errc() || ptr != prefix_text.data() + prefix_text.size() ||
        prefix_text.empty()) {
      throw bad("bad prefix length");
    }
    unsigned char bytes[16] = {};
    int family = AF_INET;
    int bits = 32;
    if (inet_pton(AF_INET, addr.c_str(), bytes) != 1) {
      if (inet_pton(AF_INET6, addr.c_str(), bytes) != 1) throw bad("bad address");
      family = AF_INET6;
      bits = 128;
    }
    if (prefix < 0 || prefix > bits - 2) throw bad("prefix length out of range");
    int len = bits / 8;
    for (int i = 0; i < len; ++i) {  // the network address
      int keep = std::clamp(prefix - i * 8, 0, 8);
      bytes[i] &= static_cast<unsigned char>(0xff00u >> keep);
    }
    for (int i = len - 1; i >= 0; --i) {  // + 1
      if (++bytes[i] != 0) break;
    }
    char text[INET6_ADDRSTRLEN];
    out.emplace_back(inet_ntop(family, bytes, text, sizeof(text)));
  }
  if (out.empty()) throw PkiError("empty service CIDR");
  return out;
}

// ----------------------------------------------------------------------------------- tokens

std::string generateToken() {
  unsigned char bytes[32];
  if (RAND_priv_bytes(bytes, sizeof(bytes)) != 1) fail("RAND_priv_bytes");
  std::string token = hex(bytes, sizeof(bytes));
  OPENSSL_cleanse(bytes, sizeof(bytes));
  return token;
}

namespace {

std::array<unsigned char, 32> sha256(std::string_view s) {
  std::array<unsigned char, 32> md{};
  unsigned int n = 0;
  if (EVP_Digest(s.data(), s.size(), md.data(), &n, EVP_sha256(), nullptr) != 1) fail("sha256");
  return md;
}

// Go's encoding/csv as kube-apiserver reads the token file: fields separated by commas, quoted
// fields may hold commas, newlines and doubled quotes, blank lines are skipped.
std::vector<std::pair<size_t, std::vector<std::string>>> parseCsv(std::string_view text,
                                                                  std::string_view source) {
  std::vector<std::pair<size_t, std::vector<std::string>>> records;
  size_t line = 1;
  size_t i = 0;
  auto error = [&](std::string_view why) {
    return PkiError(std::string(source) + ":" + std::to_string(line) + ": " + std::string(why));
  };
  while (i < text.size()) {
    if (text[i] == '\n' || (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) {
      i += text[i] == '\r' ? 2 : 1;
      ++line;
      continue;
    }
    size_t record_line = line;
    std::vector<std::string> fields;
    for (;;) {
      std::string field;
      if (i < text.size() && text[i] == '"') {
        ++i;
        for (;;) {
          if (i >= text.size()) throw error("unterminated quoted field");
          char c = text[i++];
          if (c == '"') {
            if (i < text.size() && text[i] == '"') {
              field += '"';
              ++i;
              continue;
            }
            break;
          }
          if (c == '\n') ++line;
          field += c;
        }
        if (i < text.size() && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
          throw error("extraneous character after a quoted field");
        }
      } else {
        while (i < text.size() && text[i] != ',' && text[i] != '\n' &&
               !(text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) {
          if (text[i] == '"') throw error("bare \" in a non-quoted field");
          field += text[i++];
        }
      }
      fields.push_back(std::move(field));
      if (i < text.size() && text[i] == ',') {
        ++i;
        continue;
      }
      break;
    }
    records.emplace_back(record_line, std::move(fields));
  }
  return records;
}

void appendCsvField(std::string& out, std::string_view field) {
  if (field.find_first_of(",\"\r\n") == std::string_view::npos && !field.empty()) {
    out += field;
    return;
  }
  out += '"';
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

std::string joinGroups(const std::vector<std::string>& groups) {
  std::string out;
  for (const auto& g : groups) {
    if (!out.empty()) out += ',';
    out += g;
  }
  return out;
}

}  // namespace

TokenFile TokenFile::parse(std::string_view text, std::string_view source) {
  TokenFile file;
  for (auto& [line, record] : parseCsv(text, source)) {
    std::string where = std::string(source) + ":" + std::to_string(line) + ": ";
    if (record.size() < 3) {
      throw PkiError(where +
                     "a token needs at least 3 columns (token, user name, user uid), found " +
                     std::to_string(record.size()));
    }
    if (record[0].empty()) continue;
    TokenEntry entry{record[0], record[1], record[2], {}};
    if (record.size() >= 4 && !record[3].empty()) {
      size_t start = 0;
      for (;;) {
        size_t comma = record[3].find(',', start);
        entry.groups.push_back(record[3].substr(start, comma - start));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    }
    if (file.authenticate(entry.token)) throw PkiError(where + "duplicate token");
    file.add(std::move(entry));
  }
  return file;
}

TokenFile TokenFile::load(const std::string& path) {
  auto text = readFileIfExists(path);
  if (!text) return {};
  return parse(*text, path);
}

std::string TokenFile::serialize() const {
  std::string out;
  for (const auto& e : entries_) {
    appendCsvField(out, e.token);
    out += ',';
    appendCsvField(out, e.user);
    out += ',';
    appendCsvField(out, e.uid);
    if (!e.groups.empty()) {
      out += ",\"";
      for (char c : joinGroups(e.groups)) {
        if (c == '"') out += '"';
        out += c;
      }
      out += '"';
    }
    out += '\n';
  }
  return out;
}

void TokenFile::save(const std::string& path) const {
  writeFileAtomic(path, serialize(), 0600);
}

const TokenEntry* TokenFile::authenticate(std::string_view token) const {
  if (token.empty()) return nullptr;
  auto digest = sha256(token);
  size_t found = entries_.size();
  for (size_t i = 0; i < digests_.size(); ++i) {
    // Every entry is compared; the match is selected without an early exit.
    size_t equal = CRYPTO_memcmp(digest.data(), digests_[i].data(), digest.size()) == 0;
    found = equal * i + (1 - equal) * found;
  }
  return found < entries_.size() ? &entries_[found] : nullptr;
}

const TokenEntry* TokenFile::findUser(std::string_view user) const {
  for (const auto& e : entries_) {
    if (e.user == user) return &e;
  }
  return nullptr;
}

void TokenFile::add(TokenEntry entry) {
  if (entry.token.empty()) throw PkiError("empty token");
  if (authenticate(entry.token)) throw PkiError("duplicate token for user \"" + entry.user + "\"");
  digests_.push_back(sha256(entry.token));
  entries_.push_back(std::move(entry));
}

// --------------------------------------------------------------------------------- bootstrap

PkiPaths pkiPaths(std::string_view data_dir) {
  std::string dir = std::string(data_dir);
  while (dir.size() > 1 && dir.back() == '/')
    dir.pop_back();
  dir += "/pki";
  return {dir,
          dir + "/ca.crt",
          dir + "/ca.key",
          dir + "/apiserver.crt",
          dir + "/apiserver.key",
          dir + "/tokens.csv",
          dir + "/kubelet-client.crt",
          dir + "/kubelet-client.key",
          dir + "/nodes"};
}

SubjectAltNames requiredServingSans(const PkiOptions& options) {
  SubjectAltNames sans;
  std::string hostname = options.hostname;
  if (hostname.empty()) {
    char buf[256] = {};
    if (::gethostname(buf, sizeof(buf) - 1) != 0) {
      throw PkiError(std::string("gethostname: ") + errnoText(errno));
    }
    hostname = buf;
  }
  const std::string& domain = options.cluster_domain;
  for (std::string_view name :
       {std::string_view("localhost"), std::string_view("kubernetes"),
        std::string_view("kubernetes.default"), std::string_view("kubernetes.default.svc")}) {
    addSan(sans, name);
  }
  if (!domain.empty()) addSan(sans, "kubernetes.default.svc." + domain);
  if (!hostname.empty()) addSan(sans, hostname);
  addSan(sans, "127.0.0.1");
  addSan(sans, "::1");
  for (const auto& ip : firstServiceIps(options.service_cidr))
    addSan(sans, ip);
  for (const auto& extra : options.extra_sans)
    addSan(sans, extra);
  sortUnique(sans.dns_names);
  sortUnique(sans.ip_addresses);
  return sans;
}

namespace {

// Loads the CA, or creates it when neither file exists. Anything else is an error: the CA key is
// never overwritten.
CertKeyPem ensureCa(const PkiPaths& paths, bool& created) {
  auto cert = readFileIfExists(paths.ca_cert);
  auto key = readFileIfExists(paths.ca_key);
  created = false;
  if (!cert && !key) {
    CertKeyPem ca = generateCa("skiff-ca@" + std::to_string(std::time(nullptr)));
    writePair(paths.ca_cert, paths.ca_key, ca);
    created = true;
    return ca;
  }
  if (!cert) {
    throw PkiError(paths.ca_cert + ": missing while " + paths.ca_key +
                   " exists; restore it, or remove both to create a new cluster CA");
  }
  if (!key) {
    throw PkiError(paths.ca_key + ": missing while " + paths.ca_cert +
                   " exists; restore it, or remove both to create a new cluster CA");
  }
  X509Ptr x509 = parseCert(*cert, paths.ca_cert);
  PkeyPtr pkey = parseKey(*key, paths.ca_key);
  if (X509_check_private_key(x509.get(), pkey.get()) != 1) {
    ERR_clear_error();
    throw PkiError(paths.ca_key + ": does not match the certificate in " + paths.ca_cert);
  }
  CertificateInfo info = inspectCertificate(*cert, paths.ca_cert);
  if (!info.is_ca || !info.key_cert_sign) {
    throw PkiError(paths.ca_cert + ": not a CA certificate (needs CA:TRUE and keyCertSign)");
  }
  if (info.not_after <= std::chrono::system_clock::now()) {
    throw PkiError(paths.ca_cert + ": the cluster CA expired " + formatTime(info.not_after));
  }
  return {std::move(*cert), std::move(*key)};
}

bool covers(const std::vector<std::string>& have, const std::vector<std::string>& want,
            std::string& missing) {
  std::set<std::string> set(have.begin(), have.end());
  for (const auto& w : want) {
    if (!set.count(w)) {
      missing = w;
      return false;
    }
  }
  return true;
}

}  // namespace

namespace {
CertKeyPem ensureClientPair(const PkiPaths& paths, const std::string& base, std::string_view user,
                            const std::vector<std::string>& groups);
}  // namespace

PkiState ensurePki(const PkiOptions& options) {
  if (options.data_dir.empty()) throw PkiError("no data directory given for the PKI");
  PkiState state;
  state.paths = pkiPaths(options.data_dir);
  const PkiPaths& paths = state.paths;
  SubjectAltNames want = requiredServingSans(options);
  makeDir(paths.dir);

  CertKeyPem ca = ensureCa(paths, state.ca_created);
  state.ca_cert_pem = ca.cert_pem;
  state.ca_fingerprint = inspectCertificate(ca.cert_pem, paths.ca_cert).sha256_fingerprint;

  auto cert = readFileIfExists(paths.serving_cert);
  auto key = readFileIfExists(paths.serving_key);
  std::string reason;
  if (!cert || !key) {
    reason = "missing";
  } else {
    CertKeyPem existing{*cert, *key};
    reason = staleReason(ca, existing, CertPurpose::kServer, options.renew_before,
                         paths.serving_cert, paths.serving_key);
    if (reason.empty()) {
      CertificateInfo info = inspectCertificate(*cert, paths.serving_cert);
      for (auto& d : info.sans.dns_names)
        d = toLower(d);
      std::string missing;
      if (!covers(info.sans.dns_names, want.dns_names, missing)) {
        reason = "does not cover DNS " + missing;
      } else if (!covers(info.sans.ip_addresses, want.ip_addresses, missing)) {
        reason = "does not cover IP " + missing;
      }
    }
  }
  if (!reason.empty()) {
    CertKeyPem serving =
        issueServingCertificate(ca, "kube-apiserver", want, options.serving_validity);
    writePair(paths.serving_cert, paths.serving_key, serving);
    state.serving_issued = true;
    state.serving_reason = reason;
  }

  if (!options.admin_user.empty()) {
    TokenFile tokens = TokenFile::load(paths.tokens);
    if (const TokenEntry* admin = tokens.findUser(options.admin_user)) {
      state.admin_token = admin->token;
    } else {
      state.admin_token = generateToken();
      tokens.add({state.admin_token, options.admin_user, options.admin_user, options.admin_groups});
      tokens.save(paths.tokens);
    }
  }
  // The apiserver's identity at kubelets: no groups (system:masters would make it an admin
  // here too), RBAC grants it system:kubelet-api-admin. A DIR/pki/kubelet-client.token of an
  // older version is no longer read.
  ensureClientPair(paths, paths.dir + "/kubelet-client", kKubeletClientUser, {});
  return state;
}

namespace {

// BASE.crt and BASE.key: a client certificate for CN=user, O=groups from the CA of `paths`,
// reissued when missing, for another subject, not chaining to the CA or expiring soon.
CertKeyPem ensureClientPair(const PkiPaths& paths, const std::string& base, std::string_view user,
                            const std::vector<std::string>& groups) {
  auto ca_cert = readFileIfExists(paths.ca_cert);
  auto ca_key = readFileIfExists(paths.ca_key);
  if (!ca_cert || !ca_key) {
    throw PkiError((ca_cert ? paths.ca_key : paths.ca_cert) + ": missing (run ensurePki first)");
  }
  CertKeyPem ca{*ca_cert, *ca_key};
  parseKey(ca.key_pem, paths.ca_key);
  parseCert(ca.cert_pem, paths.ca_cert);
  std::string cert_path = base + ".crt";
  std::string key_path = base + ".key";
  auto cert = readFileIfExists(cert_path);
  auto key = readFileIfExists(key_path);
  if (cert && key) {
    CertKeyPem existing{*cert, *key};
    if (staleReason(ca, existing, CertPurpose::kClient, kRenewBefore, cert_path, key_path)
            .empty()) {
      CertificateInfo info = inspectCertificate(*cert, cert_path);
      if (info.common_name == user && info.organizations == groups) return existing;
    }
  }
  CertKeyPem issued = issueClientCertificate(ca, user, groups);
  writePair(cert_path, key_path, issued);
  return issued;
}

}  // namespace

CertKeyPem ensureClientCertificate(std::string_view data_dir, std::string_view name,
                                   std::string_view user, const std::vector<std::string>& groups) {
  PkiPaths paths = pkiPaths(data_dir);
  if (name.empty() || name.find('/') != std::string_view::npos || name == "ca" ||
      name == "apiserver") {
    throw PkiError("invalid client certificate name \"" + std::string(name) + "\"");
  }
  return ensureClientPair(paths, paths.dir + "/" + std::string(name), user, groups);
}

bool validNodeName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(name.front()) || !alnum(name.back())) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (alnum(c) || c == '-') continue;
    // Each dot-separated label starts and ends alphanumeric.
    if (c == '.' && alnum(name[i - 1]) && alnum(name[i + 1])) continue;
    return false;
  }
  return true;
}

NodeCertificate ensureNodeCertificate(std::string_view data_dir, std::string_view node) {
  if (!validNodeName(node)) {
    throw PkiError("invalid node name \"" + std::string(node) +
                   "\": a lower-case DNS-1123 subdomain (a-z, 0-9, '-', '.') is expected");
  }
  PkiPaths paths = pkiPaths(data_dir);
  makeDir(paths.nodes_dir);
  NodeCertificate out;
  const std::string base = paths.nodes_dir + "/" + std::string(node);
  out.cert_file = base + ".crt";
  out.key_file = base + ".key";
  out.pem = ensureClientPair(paths, base, std::string(kNodeUserPrefix) + std::string(node),
                             {std::string(kNodesGroup)});
  out.ca_cert_pem = *readFileIfExists(paths.ca_cert);
  return out;
}

NodeCertificate issueKubeletServingCertificate(std::string_view data_dir, std::string_view node,
                                               const std::vector<std::string>& ips) {
  if (!validNodeName(node)) {
    throw PkiError("invalid node name \"" + std::string(node) +
                   "\": a lower-case DNS-1123 subdomain (a-z, 0-9, '-', '.') is expected");
  }
  PkiPaths paths = pkiPaths(data_dir);
  auto ca_cert = readFileIfExists(paths.ca_cert);
  auto ca_key = readFileIfExists(paths.ca_key);
  if (!ca_cert || !ca_key) {
    throw PkiError((ca_cert ? paths.ca_key : paths.ca_cert) + ": missing (run ensurePki first)");
  }
  SubjectAltNames sans{.dns_names = {std::string(node), "localhost"}, .ip_addresses = {}};
  for (const auto& ip : ips) {
    auto canonical = canonicalIp(ip);
    if (!canonical) throw PkiError("invalid node IP \"" + ip + "\"");
    sans.ip_addresses.push_back(*canonical);
  }
  sans.ip_addresses.push_back("127.0.0.1");
  sortUnique(sans.dns_names);
  sortUnique(sans.ip_addresses);
  makeDir(paths.nodes_dir);
  NodeCertificate out;
  const std::string base = paths.nodes_dir + "/" + std::string(node) + "-kubelet";
  out.cert_file = base + ".crt";
  out.key_file = base + ".key";
  out.pem = issueServingCertificate({*ca_cert, *ca_key},
                                    std::string(kNodeUserPrefix) + std::string(node), sans);
  writePair(out.cert_file, out.key_file, out.pem);
  out.ca_cert_pem = *ca_cert;
  return out;
}

}  // namespace skiff::apiserver
