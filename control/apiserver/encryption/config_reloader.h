#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "control/apiserver/encryption/encrypting_store.h"

// kube-apiserver's --encryption-provider-config-automatic-reload: the EncryptionConfiguration file
// is read again every `interval` (Kubernetes: once a minute) and, when its content changed and it
// parses, the EncryptingStore switches to it without a restart: a new key added first encrypts
// every write from then on, the keys after it still read. A file that no longer parses (or cannot
// be read) keeps the configuration in use; the error is kept and logged once per content, and the
// next good content is taken. So a key rotation is: add the new key first, wait for the reload,
// rewrite the Secrets, drop the old key.

namespace skiff::apiserver::encryption {

struct ReloadStatus {
  uint64_t reloads = 0;    // contents taken since start
  uint64_t failures = 0;   // contents refused (ConfigError, unreadable)
  std::string last_error;  // empty after a good reload
  std::chrono::system_clock::time_point last_reload{};
};

class ConfigReloader {
 public:
  // `loaded_text`: the file's content the store's configuration was made from.
  ConfigReloader(std::string path, std::string loaded_text, EncryptingStore& store,
                 std::chrono::milliseconds interval = std::chrono::minutes(1));
  ~ConfigReloader();
  ConfigReloader(const ConfigReloader&) = delete;
  ConfigReloader& operator=(const ConfigReloader&) = delete;

  // Polls on a thread of its own until stop() (or the destructor).
  void start();
  void stop();

  // One check now: true when a new configuration was taken.
  bool check();
  ReloadStatus status() const;

 private:
  const std::string path_;
  EncryptingStore& store_;
  const std::chrono::milliseconds interval_;
  mutable std::mutex mu_;
  std::string current_text_;  // the content in use
  std::string refused_text_;  // the last content refused (not logged again)
  ReloadStatus status_;
  std::jthread thread_;
};

}  // namespace skiff::apiserver::encryption
