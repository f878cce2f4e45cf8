#pragma once

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "control/api/value.h"

// Compact JWS (RFC 7515) with ES256: ECDSA P-256 over SHA-256, the signature as R||S (64 bytes),
// every part base64url without padding. The header carries `kid`, the base64url SHA-256 of the
// public key's DER (as kube-apiserver names its keys). Signing and verifying only: what the
// claims mean is service_account_token.h's business.

namespace skiff::apiserver::auth {

// A token that is not well-formed or whose signature does not verify; the message says which.
class JwtError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string base64UrlEncode(std::string_view data);
// nullopt for characters outside the base64url alphabet or a bad length.
std::optional<std::string> base64UrlDecode(std::string_view text);

// An EC P-256 private key in PKCS#8 PEM, new from the CSPRNG.
std::string generateSigningKeyPem();
// The key at `path`, made (mode 0600, written atomically) when the file does not exist. A file
// that exists but holds no EC P-256 private key is an error naming it; it is never overwritten.
std::string ensureSigningKey(const std::string& path);

class JwtSigner {
 public:
  // Throws JwtError when the PEM is not an EC P-256 private key.
  explicit JwtSigner(std::string_view private_key_pem);
  ~JwtSigner();
  JwtSigner(JwtSigner&&) noexcept;
  JwtSigner& operator=(JwtSigner&&) noexcept;

  // header.claims.signature
  std::string sign(const api::Value& claims) const;
  const std::string& keyId() const { return key_id_; }
  std::string publicKeyPem() const;

 private:
  struct Key;
  std::unique_ptr<Key> key_;
  std::string key_id_;
};

class JwtVerifier {
 public:
  // Throws JwtError when the PEM is not an EC P-256 public key (SubjectPublicKeyInfo).
  explicit JwtVerifier(std::string_view public_key_pem);
  ~JwtVerifier();
  JwtVerifier(JwtVerifier&&) noexcept;
  JwtVerifier& operator=(JwtVerifier&&) noexcept;

  // The claims of a token whose header says ES256 (and, when it names one, this key's kid) and
  // whose signature verifies; JwtError otherwise. Claims are not interpreted here.
  api::Value verify(std::string_view token) const;
  const std::string& keyId() const { return key_id_; }

 private:
  struct Key;
  std::unique_ptr<Key> key_;
  std::string key_id_;
};

// True when `token` has the shape of a compact JWS (three base64url parts): the bearer tokens
// the service account authenticator looks at.
bool looksLikeJwt(std::string_view token);

}  // namespace skiff::apiserver::auth
