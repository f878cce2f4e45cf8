#pragma once

// Success or an error message, for code that must not throw (the data paths and what programs
// them). GCC 12 has no std::expected, so Skiff's data plane carries its own two small types.

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace skiff::dataplane {

// Ok, or failed with a message meant for a log line or a CLI ("service \"ns/a:http\": ...").
class [[nodiscard]] Status {
 public:
  // Ok.
  Status() = default;

  static Status failure(std::string message) { return Status(std::move(message)); }

  bool ok() const { return !message_.has_value(); }
  explicit operator bool() const { return ok(); }
  // Empty when ok().
  const std::string& message() const {
    static const std::string kEmpty;
    return message_ ? *message_ : kEmpty;
  }

  friend bool operator==(const Status&, const Status&) = default;

 private:
  explicit Status(std::string message) : message_(std::move(message)) {}

  std::optional<std::string> message_;
};

// A value, or the failed Status that explains why there is none.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  // `status` must have failed: a Result without a value has to say why.
  Result(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!status_.ok());
  }

  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Status& status() const { return status_; }
  // Empty when ok().
  const std::string& message() const { return status_.message(); }

  // Only when ok().
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T& value() & {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace skiff::dataplane
