#include "control/apiserver/encryption/config_reloader.h"

#include <condition_variable>
#include <fstream>
#include <iostream>
#include <sstream>

namespace skiff::apiserver::encryption {
namespace {

std::optional<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return out.str();
}

}  // namespace

ConfigReloader::ConfigReloader(std::string path, std::string loaded_text, EncryptingStore& store,
                               std::chrono::milliseconds interval)
    : path_(std::move(path)),
      store_(store),
      interval_(interval),
      current_text_(std::move(loaded_text)) {}

ConfigReloader::~ConfigReloader() {
  stop();
}

void ConfigReloader::start() {
  thread_ = std::jthread([this](std::stop_token stop) {
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    while (!cv.wait_for(lock, stop, interval_, [] { return false; })) {
      if (stop.stop_requested()) return;
      check();
    }
  });
}

void ConfigReloader::stop() {
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
  }
}

bool ConfigReloader::check() {
  std::lock_guard lock(mu_);
  std::optional<std::string> text = readFile(path_);
  std::string error;
  if (!text) {
    error = "cannot read " + path_;
  } else if (*text == current_text_) {
    return false;
  } else {
    try {
      store_.setConfig(parseEncryptionConfig(*text, path_));
      current_text_ = *text;
      refused_text_.clear();
      ++status_.reloads;
      status_.last_error.clear();
      status_.last_reload = std::chrono::system_clock::now();
      std::cerr << "skiff apiserver: encryption configuration reloaded from " << path_ << ": ";
      const auto summary = store_.config()->summary();
      for (size_t i = 0; i < summary.size(); ++i)
        std::cerr << (i ? "; " : "") << summary[i];
      std::cerr << std::endl;
      return true;
    } catch (const ConfigError& e) {
      error = e.what();
    }
  }
  // Refused: the configuration in use stays. One log line and count per bad content.
  const std::string refused = text ? *text : std::string("\0unreadable", 11);
  if (refused != refused_text_) {
    refused_text_ = refused;
    ++status_.failures;
    status_.last_error = error;
    std::cerr << "skiff apiserver: encryption configuration not reloaded, keeping the one in use: "
              << error << std::endl;
  }
  return false;
}

ReloadStatus ConfigReloader::status() const {
  std::lock_guard lock(mu_);
  return status_;
}

}  // namespace skiff::apiserver::encryption
