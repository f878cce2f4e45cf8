#include "control/apiserver/encryption/transformer.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>

namespace skiff::apiserver::encryption {
namespace {

constexpr size_t kBlock = 16;     // AES block, CBC's IV
constexpr size_t kGcmNonce = 12;  // Go's cipher.NewGCM standard nonce
constexpr size_t kGcmTag = 16;

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

Ctx newCtx() {
  Ctx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) throw std::runtime_error("encryption: out of memory for a cipher context");
  return ctx;
}

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}
unsigned char* bytes(std::string& s) {
  return reinterpret_cast<unsigned char*>(s.data());
}

std::string randomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(bytes(out), static_cast<int>(n)) != 1) {
    throw std::runtime_error("encryption: the random generator failed");
  }
  return out;
}

void checkKey(const std::string& key, const char* name) {
  if (key.size() != 16 && key.size() != 24 && key.size() != 32) {
    throw std::invalid_argument(std::string(name) + " key must be 16, 24 or 32 bytes, got " +
                                std::to_string(key.size()));
  }
}

class AesCbc final : public Cipher {
 public:
  explicit AesCbc(std::string key) : key_(std::move(key)) {
    checkKey(key_, "aescbc");
    cipher_ = key_.size() == 16   ? EVP_aes_128_cbc()
              : key_.size() == 24 ? EVP_aes_192_cbc()
                                  : EVP_aes_256_cbc();
  }

  std::string encrypt(std::string_view plaintext, std::string_view) const override {
    std::string out = randomBytes(kBlock);
    out.resize(kBlock + plaintext.size() + kBlock);
    Ctx ctx = newCtx();
    int n = 0, final_n = 0;
    if (EVP_EncryptInit_ex(ctx.get(), cipher_, nullptr, bytes(key_), bytes(out)) != 1 ||
        EVP_EncryptUpdate(ctx.get(), bytes(out) + kBlock, &n, bytes(plaintext),
                          static_cast<int>(plaintext.size())) != 1 ||
        EVP_EncryptFinal_ex(ctx.get(), bytes(out) + kBlock + n, &final_n) != 1) {
      throw std::runtime_error("aescbc: encryption failed");
    }
    out.resize(kBlock + static_cast<size_t>(n + final_n));
    return out;
  }

  std::string decrypt(std::string_view data, std::string_view) const override {
    if (data.size() < 2 * kBlock) throw TransformError("the data is too short for AES-CBC");
    if (data.size() % kBlock != 0) {
      throw TransformError("the data is not a multiple of the AES block size");
    }
    std::string_view iv = data.substr(0, kBlock);
    std::string_view body = data.substr(kBlock);
    std::string out(body.size() + kBlock, '\0');
    Ctx ctx = newCtx();
    int n = 0, final_n = 0;
    if (EVP_DecryptInit_ex(ctx.get(), cipher_, nullptr, bytes(key_), bytes(iv)) != 1 ||
        EVP_DecryptUpdate(ctx.get(), bytes(out), &n, bytes(body), static_cast<int>(body.size())) !=
            1) {
      throw TransformError("AES-CBC decryption failed");
    }
    // A wrong key or damaged data shows as bad PKCS#7 padding (Kubernetes: "invalid padding").
    if (EVP_DecryptFinal_ex(ctx.get(), bytes(out) + n, &final_n) != 1) {
      throw TransformError("invalid PKCS#7 padding (wrong key or damaged data)");
    }
    out.resize(static_cast<size_t>(n + final_n));
    return out;
  }

 private:
  std::string key_;
  const EVP_CIPHER* cipher_;
};

class AesGcm final : public Cipher {
 public:
  explicit AesGcm(std::string key) : key_(std::move(key)) {
    checkKey(key_, "aesgcm");
    cipher_ = key_.size() == 16   ? EVP_aes_128_gcm()
              : key_.size() == 24 ? EVP_aes_192_gcm()
                                  : EVP_aes_256_gcm();
  }

  std::string encrypt(std::string_view plaintext, std::string_view context) const override {
    std::string out = randomBytes(kGcmNonce);
    out.resize(kGcmNonce + plaintext.size() + kGcmTag);
    Ctx ctx = newCtx();
    int n = 0, aad_n = 0, final_n = 0;
    if (EVP_EncryptInit_ex(ctx.get(), cipher_, nullptr, nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kGcmNonce, nullptr) != 1 ||
        EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key_), bytes(out)) != 1 ||
        EVP_EncryptUpdate(ctx.get(), nullptr, &aad_n, bytes(context),
                          static_cast<int>(context.size())) != 1 ||
        EVP_EncryptUpdate(ctx.get(), bytes(out) + kGcmNonce, &n, bytes(plaintext),
                          static_cast<int>(plaintext.size())) != 1 ||
        EVP_EncryptFinal_ex(ctx.get(), bytes(out) + kGcmNonce + n, &final_n) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kGcmTag,
                            bytes(out) + kGcmNonce + n + final_n) != 1) {
      throw std::runtime_error("aesgcm: encryption failed");
    }
    out.resize(kGcmNonce + static_cast<size_t>(n + final_n) + kGcmTag);
    return out;
  }

  std::string decrypt(std::string_view data, std::string_view context) const override {
    if (data.size() < kGcmNonce + kGcmTag) {
      throw TransformError("the data is too short for AES-GCM");
    }
    std::string_view nonce = data.substr(0, kGcmNonce);
    std::string_view body = data.substr(kGcmNonce, data.size() - kGcmNonce - kGcmTag);
    std::string tag(data.substr(data.size() - kGcmTag));
    std::string out(body.size() + kBlock, '\0');
    Ctx ctx = newCtx();
    int n = 0, aad_n = 0, final_n = 0;
    if (EVP_DecryptInit_ex(ctx.get(), cipher_, nullptr, nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kGcmNonce, nullptr) != 1 ||
        EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key_), bytes(nonce)) != 1 ||
        EVP_DecryptUpdate(ctx.get(), nullptr, &aad_n, bytes(context),
                          static_cast<int>(context.size())) != 1 ||
        EVP_DecryptUpdate(ctx.get(), bytes(out), &n, bytes(body), static_cast<int>(body.size())) !=
            1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kGcmTag, bytes(tag)) != 1) {
      throw TransformError("AES-GCM decryption failed");
    }
    if (EVP_DecryptFinal_ex(ctx.get(), bytes(out) + n, &final_n) != 1) {
      throw TransformError(
          "message authentication failed (wrong key, damaged data or a value "
          "moved from another key)");
    }
    out.resize(static_cast<size_t>(n + final_n));
    return out;
  }

 private:
  std::string key_;
  const EVP_CIPHER* cipher_;
};

}  // namespace

CipherPtr makeAesCbc(std::string key) {
  return std::make_unique<AesCbc>(std::move(key));
}

CipherPtr makeAesGcm(std::string key) {
  return std::make_unique<AesGcm>(std::move(key));
}

void Transformer::add(std::string prefix, CipherPtr cipher) {
  entries_.push_back({std::move(prefix), std::move(cipher)});
}

std::string Transformer::toStorage(std::string_view plaintext, std::string_view context) const {
  if (entries_.empty()) return std::string(plaintext);
  const Entry& first = entries_.front();
  if (!first.cipher) return std::string(plaintext);  // identity
  return first.prefix + first.cipher->encrypt(plaintext, context);
}

std::string Transformer::fromStorage(std::string_view stored, std::string_view context) const {
  std::string errors;
  bool matched = false;
  for (const Entry& e : entries_) {
    if (!e.cipher) {
      // identity reads whatever no encryption wrote; encrypted data is for the providers below.
      if (stored.starts_with(kEncryptedPrefix)) continue;
      return std::string(stored);
    }
    if (!stored.starts_with(e.prefix)) continue;
    matched = true;
    try {
      return e.cipher->decrypt(stored.substr(e.prefix.size()), context);
    } catch (const TransformError& err) {
      if (!errors.empty()) errors += "; ";
      errors += e.prefix + " " + err.what();
    }
  }
  if (matched) throw TransformError("no provider could decrypt the value: " + errors);
  if (stored.starts_with(kEncryptedPrefix)) {
    // k8s:enc:PROVIDER:v1:KEY: (five colons), cut short when it is not there.
    size_t end = 0;
    for (int colons = 0; colons < 5 && end < stored.size() && end < 64; ++end)
      colons += stored[end] == ':' ? 1 : 0;
    throw TransformError("no configured provider and key for the value's prefix \"" +
                         std::string(stored.substr(0, end)) + "\"");
  }
  throw TransformError(
      "the value is not encrypted and the identity provider is not configured for it");
}

}  // namespace skiff::apiserver::encryption
