#include "control/apiserver/auth/jwt.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "control/api/json.h"

namespace skiff::apiserver::auth {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

std::string opensslError() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

bool isP256(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return false;
  char name[64] = {};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name, &len) !=
      1) {
    return false;
  }
  return std::string_view(name, len) == "prime256v1" || std::string_view(name, len) == "P-256";
}

std::string publicDer(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(key, &der);
  if (n <= 0) throw JwtError("cannot encode the public key: " + opensslError());
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  return out;
}

std::string keyIdOf(EVP_PKEY* key) {
  std::string der = publicDer(key);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(der.data()), der.size(), digest);
  return base64UrlEncode(std::string_view(reinterpret_cast<char*>(digest), sizeof digest));
}

PkeyPtr readPrivate(std::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  PkeyPtr key(PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  if (!key) throw JwtError("not a PEM private key: " + opensslError());
  if (!isP256(key.get())) throw JwtError("the signing key is not an EC P-256 key");
  return key;
}

PkeyPtr readPublic(std::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  PkeyPtr key(PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  if (!key) throw JwtError("not a PEM public key: " + opensslError());
  if (!isP256(key.get())) throw JwtError("the verification key is not an EC P-256 key");
  return key;
}

std::string sha256Sign(EVP_PKEY* key, std::string_view data) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  std::string der;
  bool ok = EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()),
                           data.size()) == 1;
  if (ok) {
    der.resize(len);
    ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(der.data()), &len,
                        reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
    der.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  if (!ok) throw JwtError("signing failed: " + opensslError());
  // DER ECDSA-Sig-Value to JWS's fixed-width R||S.
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  if (sig == nullptr) throw JwtError("signing failed: " + opensslError());
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(sig);
  return raw;
}

bool sha256Verify(EVP_PKEY* key, std::string_view data, std::string_view raw) {
  if (raw.size() != 64) return false;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
  ECDSA_SIG_set0(sig, r, s);
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  if (der_len <= 0) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestVerify(ctx, der, static_cast<size_t>(der_len),
                             reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  ERR_clear_error();
  return ok;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

std::string base64UrlEncode(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    uint32_t v = (static_cast<unsigned char>(data[i]) << 16) |
                 (static_cast<unsigned char>(data[i + 1]) << 8) |
                 static_cast<unsigned char>(data[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (data.size() - i == 1) {
    uint32_t v = static_cast<unsigned char>(data[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (data.size() - i == 2) {
    uint32_t v = (static_cast<unsigned char>(data[i]) << 16) |
                 (static_cast<unsigned char>(data[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

std::optional<std::string> base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    size_t v = kAlphabet.find(c);
    if (v == std::string_view::npos) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  // Leftover bits must be zero (a canonical encoding).
  if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

bool looksLikeJwt(std::string_view token) {
  size_t first = token.find('.');
  if (first == std::string_view::npos || first == 0) return false;
  size_t second = token.find('.', first + 1);
  if (second == std::string_view::npos || second == first + 1) return false;
  return token.find('.', second + 1) == std::string_view::npos;
}

std::string generateSigningKeyPem() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) throw JwtError("cannot generate an EC P-256 key: " + opensslError());
  BIO* bio = BIO_new(BIO_s_mem());
  if (PEM_write_bio_PrivateKey(bio, key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    BIO_free(bio);
    throw JwtError("cannot encode the key: " + opensslError());
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  return pem;
}

std::string ensureSigningKey(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    std::string pem = readFile(path);
    try {
      readPrivate(pem);
    } catch (const JwtError& e) {
      throw JwtError(path + ": " + e.what());
    }
    return pem;
  }
  std::string pem = generateSigningKeyPem();
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw JwtError(path + ": cannot write: " + std::strerror(errno));
  bool ok = ::fchmod(fd, 0600) == 0 &&
            ::write(fd, pem.data(), pem.size()) == static_cast<ssize_t>(pem.size()) &&
            ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  // link() fails when another apiserver on this data dir made the key meanwhile: use theirs.
  if (!ok || (::link(tmp.c_str(), path.c_str()) != 0 && errno != EEXIST)) {
    if (ok) err = errno;
    ::unlink(tmp.c_str());
    throw JwtError(path + ": cannot write: " + std::strerror(err));
  }
  ::unlink(tmp.c_str());
  return readFile(path);
}

// ------------------------------------------------------------------------------------- signer

struct JwtSigner::Key {
  PkeyPtr pkey;
};

JwtSigner::JwtSigner(std::string_view private_key_pem)
    : key_(std::make_unique<Key>(Key{readPrivate(private_key_pem)})),
      key_id_(keyIdOf(key_->pkey.get())) {}
JwtSigner::~JwtSigner() = default;
JwtSigner::JwtSigner(JwtSigner&&) noexcept = default;
JwtSigner& JwtSigner::operator=(JwtSigner&&) noexcept = default;

std::string JwtSigner::sign(const api::Value& claims) const {
  api::Value header = api::Value::object();
  header.append("alg", api::Value::string("ES256"));
  header.append("kid", api::Value::string(key_id_));
  std::string input =
      base64UrlEncode(api::writeJson(header)) + "." + base64UrlEncode(api::writeJson(claims));
  return input + "." + base64UrlEncode(sha256Sign(key_->pkey.get(), input));
}

std::string JwtSigner::publicKeyPem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, key_->pkey.get());
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  return pem;
}

// ----------------------------------------------------------------------------------- verifier

struct JwtVerifier::Key {
  PkeyPtr pkey;
};

JwtVerifier::JwtVerifier(std::string_view public_key_pem)
    : key_(std::make_unique<Key>(Key{readPublic(public_key_pem)})),
      key_id_(keyIdOf(key_->pkey.get())) {}
JwtVerifier::~JwtVerifier() = default;
JwtVerifier::JwtVerifier(JwtVerifier&&) noexcept = default;
JwtVerifier& JwtVerifier::operator=(JwtVerifier&&) noexcept = default;

api::Value JwtVerifier::verify(std::string_view token) const {
  if (!looksLikeJwt(token)) throw JwtError("not a compact JWS (header.payload.signature)");
  size_t first = token.find('.');
  size_t second = token.find('.', first + 1);
  auto header_text = base64UrlDecode(token.substr(0, first));
  auto payload_text = base64UrlDecode(token.substr(first + 1, second - first - 1));
  auto signature = base64UrlDecode(token.substr(second + 1));
  if (!header_text || !payload_text || !signature) throw JwtError("malformed base64url");
  api::Value header, claims;
  try {
    header = api::parseJson(*header_text);
    claims = api::parseJson(*payload_text);
  } catch (const api::DecodeError& e) {
    throw JwtError(std::string("malformed JSON: ") + e.what());
  }
  if (!header.isObject() || !claims.isObject()) throw JwtError("header and claims must be objects");
  const api::Value* alg = header.find("alg");
  if (alg == nullptr || !alg->isString() || alg->text() != "ES256") {
    throw JwtError("unsupported algorithm (only ES256 is accepted)");
  }
  if (const api::Value* kid = header.find("kid"); kid != nullptr) {
    if (!kid->isString() || kid->text() != key_id_) throw JwtError("signed by an unknown key");
  }
  if (!sha256Verify(key_->pkey.get(), token.substr(0, second), *signature)) {
    throw JwtError("invalid signature");
  }
  return claims;
}

}  // namespace skiff::apiserver::auth
