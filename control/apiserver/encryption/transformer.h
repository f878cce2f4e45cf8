#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

// Value transformers of Secrets (and other resources) at rest, as kube-apiserver's
// k8s.io/apiserver/pkg/storage/value: every stored value carries a prefix naming the provider and
// key that wrote it (`k8s:enc:aescbc:v1:key1:` + ciphertext), so the first provider of a resource
// encrypts and every listed provider and key decrypts; `identity` writes and reads plaintext.
//
//   aescbc: AES-CBC with PKCS#7 padding: prefix + IV (16 random bytes) + ciphertext.
//   aesgcm: AES-GCM: prefix + nonce (12 random bytes) + ciphertext + tag (16 bytes); the store key
//           is the additional authenticated data, so a value moved to another key does not read.
//
// Threading: const methods may be called from any thread at once (each call has its own OpenSSL
// context).

namespace skiff::apiserver::encryption {

// A value that no listed provider can read (wrong key, damaged data, no provider for its prefix).
class TransformError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Every encrypted value starts with this (identity refuses to read such values).
inline constexpr std::string_view kEncryptedPrefix = "k8s:enc:";

// One key of one provider: encrypts and decrypts the bytes after its prefix.
class Cipher {
 public:
  virtual ~Cipher() = default;
  // `context` is the store key (authenticated by AEAD ciphers, ignored by others).
  virtual std::string encrypt(std::string_view plaintext, std::string_view context) const = 0;
  virtual std::string decrypt(std::string_view ciphertext, std::string_view context) const = 0;
};
using CipherPtr = std::unique_ptr<Cipher>;

// `key` must be 16, 24 or 32 bytes (AES-128/192/256); std::invalid_argument otherwise.
CipherPtr makeAesCbc(std::string key);
CipherPtr makeAesGcm(std::string key);

// The providers of one resource, in configuration order.
class Transformer {
 public:
  // Adds a provider key; `prefix` is "" for identity (cipher ignored, may be null).
  void add(std::string prefix, CipherPtr cipher);
  bool empty() const { return entries_.empty(); }

  // The value as stored: the first entry's prefix and ciphertext (plaintext for identity).
  std::string toStorage(std::string_view plaintext, std::string_view context) const;
  // The plaintext; TransformError naming every provider tried when none reads it.
  std::string fromStorage(std::string_view stored, std::string_view context) const;

 private:
  struct Entry {
    std::string prefix;
    CipherPtr cipher;  // null: identity
  };
  std::vector<Entry> entries_;
};

}  // namespace skiff::apiserver::encryption
