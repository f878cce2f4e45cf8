#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "control/apiserver/encryption/encryption_config.h"
#include "control/store/store.h"

namespace skiff::apiserver::encryption {

// A Store that encrypts the values of the configured resources on their way in and decrypts them
// on their way out (gets, lists, the value a delete returns, and watch events with their previous
// values), so the inner store (SQLite file, etcd) holds ciphertext and every reader above (the
// resource storage, the watch caches, the auth indexes) sees plaintext. Keys not covered by the
// configuration pass unchanged. A value no configured provider can read (wrong key, damaged
// data, an encrypted value with identity alone) fails the read with kInternal naming the key; a
// watch ends with that error. Thread-safe as the inner store. The configuration can be replaced
// while it serves (setConfig: kube-apiserver's automatic reload); each operation uses the one it
// started with.
class EncryptingStore final : public store::Store {
 public:
  EncryptingStore(store::Store& inner, EncryptionConfig config);

  std::optional<store::KeyValue> get(std::string_view key) override;
  store::ListResult list(std::string_view prefix, const store::ListOptions& options) override;
  int64_t create(std::string_view key, std::string_view value) override;
  int64_t update(std::string_view key, std::string_view value,
                 int64_t expected_mod_revision) override;
  store::KeyValue remove(std::string_view key, int64_t expected_mod_revision) override;
  store::WatchPtr watch(std::string_view prefix, int64_t start_revision) override;
  void compact(int64_t revision) override { inner_.compact(revision); }
  int64_t currentRevision() override { return inner_.currentRevision(); }
  int64_t compactedRevision() override { return inner_.compactedRevision(); }

  int64_t grantLease(int64_t ttl_seconds) override { return inner_.grantLease(ttl_seconds); }
  void revokeLease(int64_t lease) override { inner_.revokeLease(lease); }
  int64_t keepAliveLease(int64_t lease) override { return inner_.keepAliveLease(lease); }
  store::LeaseStatus leaseTimeToLive(int64_t lease, bool with_keys) override {
    return inner_.leaseTimeToLive(lease, with_keys);
  }
  int64_t createWithLease(std::string_view key, std::string_view value, int64_t lease) override;
  int64_t updateWithLease(std::string_view key, std::string_view value,
                          int64_t expected_mod_revision, int64_t lease) override;

  std::shared_ptr<const EncryptionConfig> config() const { return config_.load(); }
  // From now on, writes are sealed and reads opened with `config`.
  void setConfig(EncryptionConfig config);

  // The stored form of `value` at `key`, and back (StoreError kInternal when unreadable).
  std::string seal(std::string_view key, std::string_view value) const;
  void open(store::KeyValue& kv) const;

 private:
  store::Store& inner_;
  std::atomic<std::shared_ptr<const EncryptionConfig>> config_;
};

}  // namespace skiff::apiserver::encryption
