#include "kubelet/images/digest.h"

#include <openssl/evp.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace skiff::kubelet::images {

std::optional<Digest> Digest::parse(std::string_view text, std::string* error) {
  auto fail = [&](std::string message) -> std::optional<Digest> {
    if (error) *error = std::move(message);
    return std::nullopt;
  };
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    return fail("digest \"" + std::string(text) + "\" has no algorithm (want sha256:<hex>)");
  }
  const std::string_view algorithm = text.substr(0, colon);
  const std::string_view hex = text.substr(colon + 1);
  if (algorithm != "sha256") {
    return fail("digest \"" + std::string(text) + "\": unsupported algorithm \"" +
                std::string(algorithm) + "\" (only sha256)");
  }
  if (hex.size() != 64) {
    return fail("digest \"" + std::string(text) + "\": want 64 hex digits, got " +
                std::to_string(hex.size()));
  }
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return fail("digest \"" + std::string(text) + "\": not lower-case hex");
    }
  }
  return Digest{std::string(algorithm), std::string(hex)};
}

Digest Digest::parseOrThrow(std::string_view text, std::string_view what) {
  std::string error;
  auto digest = parse(text, &error);
  if (!digest) throw std::invalid_argument(std::string(what) + ": " + error);
  return *digest;
}

struct Sha256::Ctx {
  EVP_MD_CTX* md = nullptr;
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
  ctx_->md = EVP_MD_CTX_new();
  if (ctx_->md == nullptr || EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("sha256: cannot initialise OpenSSL digest");
  }
}

Sha256::~Sha256() {
  if (ctx_->md) EVP_MD_CTX_free(ctx_->md);
}

void Sha256::update(const void* data, size_t size) {
  if (size == 0) return;
  EVP_DigestUpdate(ctx_->md, data, size);
  bytes_ += size;
}

Digest Sha256::finish() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_->md, out, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(kHex[out[i] >> 4]);
    hex.push_back(kHex[out[i] & 0xf]);
  }
  return Digest{"sha256", std::move(hex)};
}

Digest sha256Of(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.finish();
}

Digest sha256OfFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
  Sha256 h;
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h.update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) throw std::runtime_error("error reading " + path);
  return h.finish();
}

}  // namespace skiff::kubelet::images
