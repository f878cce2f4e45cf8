#include "kubelet/server/log_reader.h"

#include <chrono>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

namespace skiff::kubelet {
namespace {

namespace fs = std::filesystem;

// The restart numbers of the `<n>.log` files in a container's log directory, ascending.
std::vector<int64_t> restarts(const fs::path& dir) {
  std::vector<int64_t> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() < 5 || name.substr(name.size() - 4) != ".log") continue;
    const std::string stem = name.substr(0, name.size() - 4);
    if (stem.empty() || stem.find_first_not_of("0123456789") != std::string::npos) continue;
    out.push_back(std::stoll(stem));
  }
  std::sort(out.begin(), out.end());
  return out;
}

int64_t restartOf(const fs::path& file) {
  const std::string stem = file.stem().string();
  return stem.find_first_not_of("0123456789") == std::string::npos && !stem.empty()
             ? std::stoll(stem)
             : -1;
}

// Formats and sends log lines, counting bytes against limitBytes.
class LineWriter {
 public:
  LineWriter(const LogOptions& options, const std::function<bool(std::string_view)>& sink,
             std::string since)
      : options_(options), sink_(sink), since_(std::move(since)) {}

  // False once the sink is gone or limitBytes is reached.
  bool line(std::string_view raw) {
    auto parsed = parseCriLogLine(raw);
    if (!parsed) return true;  // not a CRI line (a torn write): skipped, like kubelet
    if (!since_.empty() && parsed->timestamp < since_) return true;
    std::string out;
    if (options_.timestamps) {
      out.append(parsed->timestamp);
      out.push_back(' ');
    }
    out.append(parsed->text);
    if (!parsed->partial) out.push_back('\n');
    if (options_.limit_bytes) {
      const int64_t left = *options_.limit_bytes - sent_;
      if (left <= 0) return false;
      if (static_cast<int64_t>(out.size()) > left) out.resize(static_cast<size_t>(left));
    }
    sent_ += static_cast<int64_t>(out.size());
    if (!sink_(out)) return false;
    return !options_.limit_bytes || sent_ < *options_.limit_bytes;
  }

 private:
  const LogOptions& options_;
  const std::function<bool(std::string_view)>& sink_;
  std::string since_;
  int64_t sent_ = 0;
};

}  // namespace

std::optional<CriLogLine> parseCriLogLine(std::string_view line) {
  CriLogLine out;
  const size_t a = line.find(' ');
  if (a == std::string_view::npos || a == 0) return std::nullopt;
  const size_t b = line.find(' ', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  out.timestamp = line.substr(0, a);
  out.stream = line.substr(a + 1, b - a - 1);
  if (out.stream != "stdout" && out.stream != "stderr") return std::nullopt;
  if (b + 1 >= line.size()) return std::nullopt;
  const char tag = line[b + 1];
  if (tag != 'F' && tag != 'P') return std::nullopt;
  out.partial = tag == 'P';
  if (b + 2 < line.size()) {
    if (line[b + 2] != ' ') return std::nullopt;
    out.text = line.substr(b + 3);
  }
  return out;
}

std::string criTimestamp(int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000000000Z", &tm);
  return buf;
}

std::string findContainerLog(const std::string& log_dir, std::string_view ns, std::string_view pod,
                             std::string_view container, bool previous) {
  const std::string prefix = std::string(ns) + "_" + std::string(pod) + "_";
  std::error_code ec;
  fs::path pod_dir;
  for (const auto& entry : fs::directory_iterator(log_dir, ec)) {
    const std::string name = entry.path().filename().string();
    // The uid has no '_', so the pod's directory is the one whose remainder has none either.
    if (name.rfind(prefix, 0) == 0 && name.find('_', prefix.size()) == std::string::npos) {
      pod_dir = entry.path();
      break;
    }
  }
  if (pod_dir.empty())
    throw LogNotFound("pod " + std::string(ns) + "/" + std::string(pod) +
                      " has no logs on this node (no " + prefix + "<uid> under " + log_dir + ")");
  const fs::path dir = pod_dir / std::string(container);
  const auto numbers = restarts(dir);
  if (numbers.empty())
    throw LogNotFound("container " + std::string(container) + " in pod " + std::string(ns) + "/" +
                      std::string(pod) + " has no logs on this node");
  if (previous && numbers.size() < 2)
    throw LogNotFound("previous terminated container " + std::string(container) + " in pod " +
                      std::string(ns) + "/" + std::string(pod) + " not found");
  const int64_t n = numbers[numbers.size() - (previous ? 2 : 1)];
  return (dir / (std::to_string(n) + ".log")).string();
}

void streamContainerLog(const std::string& file, const LogOptions& options,
                        const std::function<bool(std::string_view)>& sink,
                        const std::function<bool()>& keepFollowing, int64_t now_unix_seconds) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw LogNotFound("cannot open log file " + file);
  LineWriter writer(options, sink,
                    options.since_seconds ? criTimestamp(now_unix_seconds - *options.since_seconds)
                                          : std::string());
  std::string line;
  if (options.tail_lines) {
    std::deque<std::string> last;
    while (std::getline(in, line)) {
      if (in.eof()) break;  // no newline yet: the shim is mid-write, follow picks it up
      last.push_back(line);
      if (static_cast<int64_t>(last.size()) > *options.tail_lines) last.pop_front();
    }
    for (const auto& l : last)
      if (!writer.line(l)) return;
  } else {
    while (std::getline(in, line)) {
      if (in.eof()) break;
      if (!writer.line(line)) return;
    }
  }
  if (!options.follow) return;
  // Re-read from the start of an unfinished line: getline consumed it without a newline.
  std::string pending = in.eof() ? line : std::string();
  in.clear();
  const fs::path path(file);
  const int64_t restart = restartOf(path);
  char buf[64 * 1024];
  while (true) {
    in.read(buf, sizeof buf);
    const std::streamsize got = in.gcount();
    if (got > 0) {
      pending.append(buf, static_cast<size_t>(got));
      size_t start = 0;
      for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1)
        if (!writer.line(std::string_view(pending).substr(start, nl - start))) return;
      pending.erase(0, start);
    }
    in.clear();
    if (got > 0) continue;
    if (!keepFollowing()) return;
    const auto numbers = restarts(path.parent_path());
    if (restart < 0 || numbers.empty() || numbers.back() > restart) return;  // restarted or gone
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace skiff::kubelet
