#include "control/apiserver/encryption/encrypting_store.h"

#include <mutex>
#include <utility>
#include <vector>

namespace skiff::apiserver::encryption {
namespace {

// The inner watch's events with their values decrypted. A value that cannot be decrypted ends the
// watch with the error (the watch cache relists and reports it), never a garbled event.
class DecryptingWatch final : public store::Watch {
 public:
  DecryptingWatch(const EncryptingStore& store, store::WatchPtr inner)
      : store_(store), inner_(std::move(inner)) {}

  bool next(std::vector<store::Event>& out, std::chrono::milliseconds timeout) override {
    {
      std::lock_guard lock(mu_);
      if (error_) return false;
    }
    std::vector<store::Event> batch;
    bool alive = inner_->next(batch, timeout);
    try {
      for (auto& e : batch) {
        if (e.type != store::Event::Type::kDelete) store_.open(e.kv);
        if (e.prev) store_.open(*e.prev);
      }
    } catch (const store::StoreError& err) {
      std::lock_guard lock(mu_);
      error_ = err;
      inner_->cancel();
      return false;
    }
    for (auto& e : batch)
      out.push_back(std::move(e));
    return alive;
  }
  int64_t progressRevision() const override { return inner_->progressRevision(); }
  void cancel() override { inner_->cancel(); }
  std::optional<store::StoreError> error() const override {
    std::lock_guard lock(mu_);
    if (error_) return error_;
    return inner_->error();
  }

 private:
  const EncryptingStore& store_;
  store::WatchPtr inner_;
  mutable std::mutex mu_;
  std::optional<store::StoreError> error_;
};

}  // namespace

EncryptingStore::EncryptingStore(store::Store& inner, EncryptionConfig config)
    : inner_(inner), config_(std::make_shared<const EncryptionConfig>(std::move(config))) {}

void EncryptingStore::setConfig(EncryptionConfig config) {
  config_.store(std::make_shared<const EncryptionConfig>(std::move(config)));
}

std::string EncryptingStore::seal(std::string_view key, std::string_view value) const {
  const std::shared_ptr<const EncryptionConfig> config = config_.load();
  const Transformer* t = config->forKey(key);
  if (t == nullptr) return std::string(value);
  return t->toStorage(value, key);
}

void EncryptingStore::open(store::KeyValue& kv) const {
  const std::shared_ptr<const EncryptionConfig> config = config_.load();
  const Transformer* t = config->forKey(kv.key);
  if (t == nullptr) return;
  try {
    kv.value = t->fromStorage(kv.value, kv.key);
  } catch (const TransformError& e) {
    throw store::StoreError(store::ErrorCode::kInternal,
                            "cannot decrypt " + kv.key + " from storage: " + e.what());
  }
}

std::optional<store::KeyValue> EncryptingStore::get(std::string_view key) {
  auto kv = inner_.get(key);
  if (kv) open(*kv);
  return kv;
}

store::ListResult EncryptingStore::list(std::string_view prefix,
                                        const store::ListOptions& options) {
  store::ListResult result = inner_.list(prefix, options);
  if (!options.count_only) {
    for (auto& kv : result.kvs)
      open(kv);
  }
  return result;
}

int64_t EncryptingStore::create(std::string_view key, std::string_view value) {
  return inner_.create(key, seal(key, value));
}

int64_t EncryptingStore::update(std::string_view key, std::string_view value,
                                int64_t expected_mod_revision) {
  return inner_.update(key, seal(key, value), expected_mod_revision);
}

int64_t EncryptingStore::createWithLease(std::string_view key, std::string_view value,
                                         int64_t lease) {
  return inner_.createWithLease(key, seal(key, value), lease);
}

int64_t EncryptingStore::updateWithLease(std::string_view key, std::string_view value,
                                         int64_t expected_mod_revision, int64_t lease) {
  return inner_.updateWithLease(key, seal(key, value), expected_mod_revision, lease);
}

store::KeyValue EncryptingStore::remove(std::string_view key, int64_t expected_mod_revision) {
  store::KeyValue kv = inner_.remove(key, expected_mod_revision);
  // The delete happened; an unreadable old value must not make it look failed.
  try {
    if (!kv.value.empty()) open(kv);
  } catch (const store::StoreError&) {
    kv.value.clear();
  }
  return kv;
}

store::WatchPtr EncryptingStore::watch(std::string_view prefix, int64_t start_revision) {
  return std::make_unique<DecryptingWatch>(*this, inner_.watch(prefix, start_revision));
}

}  // namespace skiff::apiserver::encryption
