#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

// Content digests as OCI writes them ("sha256:<64 lower-case hex digits>"), computed with
// OpenSSL. Only sha256 is accepted: it is what every registry and image tool produces.

namespace skiff::kubelet::images {

struct Digest {
  std::string algorithm;  // "sha256"
  std::string hex;        // 64 lower-case hex digits

  // Parses "sha256:<hex>"; nullopt (and `error` set) for anything else.
  static std::optional<Digest> parse(std::string_view text, std::string* error = nullptr);
  // Like parse(), but throws std::invalid_argument naming `what` ("manifest config digest").
  static Digest parseOrThrow(std::string_view text, std::string_view what);

  std::string str() const { return algorithm + ":" + hex; }
  // The first 12 hex digits, as `docker images` shows an image ID.
  std::string shortHex() const { return hex.substr(0, 12); }
  bool empty() const { return hex.empty(); }
  friend bool operator==(const Digest&, const Digest&) = default;
  friend auto operator<=>(const Digest&, const Digest&) = default;
};

// Incremental sha256.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  // The digest of everything fed so far; the hasher cannot be used afterwards.
  Digest finish();
  uint64_t bytes() const { return bytes_; }

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
  uint64_t bytes_ = 0;
};

Digest sha256Of(std::string_view data);
// The digest of a file's content; throws std::runtime_error when it cannot be read.
Digest sha256OfFile(const std::string& path);

}  // namespace skiff::kubelet::images
