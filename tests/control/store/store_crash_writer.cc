// A child process for the SQLite store's failure tests. Writes from several threads and reports
// on stdout, one write(2) per line (atomic on a pipe), after each write returns:
//   C <key> <revision>   created (acknowledged)
//   R <key>              about to remove (the outcome is unknown until D)
//   D <key> <revision>   removed (acknowledged)
//   F <key> <error code> a write failed
// Usage: store_crash_writer DB ROUND crash|fsize
//   crash: writes until killed (fsync on).
//   fsize: caps the size of files it may write (RLIMIT_FSIZE) so that writes fail with I/O
//          errors, stops after a few failures per thread, closes the store and exits 0.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "control/store/sqlite_store.h"

namespace {

using skiff::store::SqliteOptions;
using skiff::store::SqliteStore;
using skiff::store::StoreError;

void emit(const std::string& line) {
  std::string text = line + "\n";
  if (::write(STDOUT_FILENO, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    std::_Exit(3);
  }
}

std::string valueFor(const std::string& key, size_t size) {
  std::string value = "v" + key + "-";
  while (value.size() < size) {
    value += static_cast<char>('a' + value.size() % 26);
  }
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s DB ROUND crash|fsize\n", argv[0]);
    return 2;
  }
  const std::string path = argv[1];
  const std::string round = argv[2];
  const std::string mode = argv[3];
  const bool crash = mode == "crash";
  if (!crash && mode != "fsize") return 2;

  SqliteOptions options;
  options.path = path;
  options.fsync = true;
  std::unique_ptr<SqliteStore> store;
  try {
    store = SqliteStore::open(options);
  } catch (const StoreError& e) {
    std::fprintf(stderr, "open: %s\n", e.what());
    return 1;
  }
  if (!crash) {
    // Files may grow 512 KiB beyond what they hold now; past that, write(2) fails with EFBIG.
    std::error_code error;
    auto size = [&](const std::string& file) {
      auto bytes = std::filesystem::file_size(file, error);
      return error ? 0 : bytes;
    };
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{};
    limit.rlim_cur = size(path) + size(path + "-wal") + (512 << 10);
    limit.rlim_max = RLIM_INFINITY;
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 4;
  }

  constexpr int kThreads = 4;
  const size_t value_size = crash ? 200 : 16 << 10;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      int failures = 0;
      for (int n = 0; crash || failures < 3; ++n) {
        const std::string key =
            "/crash/" + round + "/" + std::to_string(t) + "/" + std::to_string(n);
        try {
          int64_t revision = store->create(key, valueFor(key, value_size));
          emit("C " + key + " " + std::to_string(revision));
        } catch (const StoreError& e) {
          emit("F " + key + " " + std::string(skiff::store::errorCodeName(e.code())));
          ++failures;
          continue;
        }
        if (crash && n % 5 == 4) {
          const std::string old =
              "/crash/" + round + "/" + std::to_string(t) + "/" + std::to_string(n - 3);
          emit("R " + old);
          int64_t revision = store->remove(old, 0).mod_revision;
          emit("D " + old + " " + std::to_string(revision));
        }
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  store.reset();
  return 0;
}
