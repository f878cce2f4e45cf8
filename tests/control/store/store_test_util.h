#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "control/store/store.h"

namespace skiff::store::testing {

// A directory under /tmp, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/skiff-store-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code error;
    std::filesystem::remove_all(path_, error);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// The StoreError `body` throws; a failure (and kInternal) when it throws none.
template <typename Body>
StoreError storeErrorOf(Body&& body) {
  try {
    body();
  } catch (const StoreError& e) {
    return e;
  }
  ADD_FAILURE() << "expected a StoreError, none was thrown";
  return StoreError(ErrorCode::kInternal, "<no error thrown>");
}

#define EXPECT_STORE_ERROR(expected_code, statement)                                       \
  EXPECT_EQ(::skiff::store::errorCodeName(                                                 \
                ::skiff::store::testing::storeErrorOf([&] { (void)(statement); }).code()), \
            ::skiff::store::errorCodeName(expected_code))

// Reads from `watch` until `count` events arrived, the watch ended or `timeout` passed.
inline std::vector<Event> readEvents(Watch& watch, size_t count,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  std::vector<Event> events;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (events.size() < count && std::chrono::steady_clock::now() < deadline) {
    if (!watch.next(events, std::chrono::milliseconds(100))) break;
  }
  return events;
}

inline std::string typeName(Event::Type type) {
  switch (type) {
    case Event::Type::kCreate:
      return "create";
    case Event::Type::kUpdate:
      return "update";
    case Event::Type::kDelete:
      return "delete";
  }
  return "?";
}

// "type key@revision" for readable failures.
inline std::string describe(const Event& event) {
  return typeName(event.type) + " " + event.kv.key + "@" + std::to_string(event.kv.mod_revision);
}

}  // namespace skiff::store::testing
