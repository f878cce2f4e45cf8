#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace skiff::kubelet {

// The query of `GET /containerLogs/...` (and of the apiserver's pods/log), as kubelet reads it.
struct LogOptions {
  bool follow = false;
  bool timestamps = false;  // prefix each line with its RFC3339Nano time and a space
  bool previous = false;    // the log of the restart before the current one
  std::optional<int64_t> tail_lines;
  std::optional<int64_t> since_seconds;
  std::optional<int64_t> limit_bytes;
};

// One line of a CRI log file: `2026-01-01T00:00:00.000000000Z stdout F text`.
struct CriLogLine {
  std::string_view timestamp;
  std::string_view stream;  // "stdout" or "stderr"
  bool partial = false;     // "P": the text continues in the next line
  std::string_view text;
};

// Parses one line (without its newline); nullopt when it is not in the CRI format.
std::optional<CriLogLine> parseCriLogLine(std::string_view line);

// No such pod, container or restart under the log dir; the message says which.
class LogNotFound : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// LOG_DIR/<ns>_<pod>_<uid>/<container>/<restart>.log of the newest restart (or the one before it
// when `previous`); throws LogNotFound naming what is missing.
std::string findContainerLog(const std::string& log_dir, std::string_view ns, std::string_view pod,
                             std::string_view container, bool previous);

// Sends the log's text to `sink` as the options ask (the CRI prefix removed). With `follow`, keeps
// reading what the container appends until `sink` returns false, `keepFollowing` returns false,
// or a newer restart's file appears next to it (the container exited and was restarted).
// `since_unix_seconds_now` is the time sinceSeconds counts back from.
void streamContainerLog(const std::string& file, const LogOptions& options,
                        const std::function<bool(std::string_view)>& sink,
                        const std::function<bool()>& keepFollowing, int64_t now_unix_seconds);

// The RFC3339Nano UTC form the shim writes, for a Unix time in seconds (nanoseconds zero).
std::string criTimestamp(int64_t unix_seconds);

}  // namespace skiff::kubelet
