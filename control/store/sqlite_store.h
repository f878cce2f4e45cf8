#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "control/store/store.h"

namespace skiff::store {

struct SqliteOptions {
  // The database file; its directory must exist. Created when missing, with its `-wal` and `-shm`
  // companions next to it.
  std::string path;
  // Acknowledged writes survive a power loss: each group commit is fdatasync'ed before it is
  // acknowledged (with PRAGMA synchronous=NORMAL for SQLite's own checkpoint syncs). false = no
  // fsync at all (synchronous=OFF): writes survive a crash of the process but not of the machine.
  // Tests only.
  bool fsync = true;
  // Periodic compaction: every `compaction_interval` (0 = never), the history older than
  // `compaction_retention` is forgotten (compaction to the revision that was current then).
  std::chrono::milliseconds compaction_interval = std::chrono::minutes(5);
  std::chrono::milliseconds compaction_retention = std::chrono::minutes(5);
  // Revisions compacted per transaction: writes wait at most one such step.
  int64_t compaction_step_revisions = 2000;
  // Group commit: at most this many writes, and value bytes, in one transaction.
  size_t max_batch_writes = 1024;
  size_t max_batch_bytes = 32u << 20;
  // Read connections; more concurrent reads wait for a free one.
  size_t read_connections = 4;
  // SQLite's page caches, private memory of the process (PRAGMA cache_size): the writer's and each
  // read connection's. They fill as the database grows with the history kept until the next
  // compaction; what they do not hold is read from the OS page cache (as etcd leaves its reads to
  // the kernel). Under bench soak 16 MiB + 4 x 4 MiB were the largest part of the server's growing
  // heap (jemalloc heap profile: SQLite's allocations 7.8 -> 19.4 MB in 180 s).
  size_t writer_cache_bytes = 4u << 20;
  size_t reader_cache_bytes = 1u << 20;
  // The in-memory event log watchers share; a watcher that falls further behind is ended with
  // kCompacted (a watcher still replaying history from the database is not).
  size_t watch_window_events = 20000;
  size_t watch_window_bytes = 128u << 20;
  // The largest database file; writes beyond it fail with kUnavailable until a compaction frees
  // space (etcd's quota-backend-bytes). 0 = no limit.
  int64_t quota_bytes = 0;
  // A background thread copies the write-ahead log into the database once it holds this much.
  int64_t checkpoint_wal_bytes = 32 << 20;
  // The nice value of the writer, sync and acknowledging threads: every write goes through them,
  // so under load they should not wait for the CPU behind hundreds of callers (a write's latency
  // is theirs). Below 0 needs CAP_SYS_NICE; without it they keep the process's. 0 = unchanged.
  int commit_thread_nice = -10;
  // Runs PRAGMA quick_check when opening an existing database (time grows with its size).
  bool check_on_open = true;
};

struct SqliteStats {
  int64_t revision = 0;
  int64_t compacted_revision = 0;
  int64_t rows = 0;  // history rows kept (one per write; a lease's deletes share a revision)
  int64_t page_size = 0;
  int64_t page_count = 0;      // the database's size in pages
  int64_t freelist_count = 0;  // pages in it that are unused
  int64_t db_file_bytes = 0;
  int64_t wal_file_bytes = 0;
  uint64_t commits = 0;         // write transactions committed (group commits)
  uint64_t syncs = 0;           // fsyncs of the log (one covers every commit before it)
  uint64_t writes = 0;          // writes acknowledged as applied
  uint64_t failed_batches = 0;  // transactions rolled back on an I/O or database error
  uint64_t wal_frames = 0;      // pages appended to the write-ahead log by commits
  // The writer's catch-up checkpoints (the log can start over after one), and the time they held
  // the writer (it applies no write meanwhile: an fsync of the log and one of the database file).
  uint64_t catch_ups = 0;
  uint64_t catch_up_us = 0;
  size_t watches = 0;  // open watches
};

// The embedded store: one SQLite database in WAL mode, kine's one-row-per-write layout.
//
// Writes are queued to one writer thread, which applies them as they come into one open
// transaction (group commit: each write's precondition checked in order, each success taking the
// next revision) and commits it when the log's last fsync is done, or, large enough, while one
// fsync runs: then a second sync thread fsyncs it alongside. An fdatasync of the log makes every
// transaction committed before it durable; the sync threads then publish their events to the
// watches and have them acknowledged, in revision order. A failed transaction is rolled back whole
// and every write in it fails. Reads use a small pool of read connections and never see past the
// last durable revision. A background thread copies the log into the database file
// (checkpoints); the writer compacts history in small steps between transactions.
class SqliteStore final : public Store {
 public:
  // Opens the database at `options.path`, creating it when missing. Throws StoreError:
  // kUnavailable when its directory is missing, the file cannot be opened or another store holds
  // it; kCorrupt when it is not a Skiff store database or fails its check.
  static std::unique_ptr<SqliteStore> open(const SqliteOptions& options);
  // Applies the writes already queued, ends every watch (kUnavailable) and closes the database.
  ~SqliteStore() override;

  std::optional<KeyValue> get(std::string_view key) override;
  ListResult list(std::string_view prefix, const ListOptions& options = {}) override;
  int64_t create(std::string_view key, std::string_view value) override;
  int64_t update(std::string_view key, std::string_view value,
                 int64_t expected_mod_revision) override;
  KeyValue remove(std::string_view key, int64_t expected_mod_revision) override;
  WatchPtr watch(std::string_view prefix, int64_t start_revision) override;
  // Returns once the history before `revision` is deleted and its pages released. Compacting at
  // or below the current compaction point does nothing; above the current revision is
  // kFutureRevision.
  void compact(int64_t revision) override;
  int64_t currentRevision() override;
  int64_t compactedRevision() override;

  // Leases live in the database (a lease table; each history row names the lease its write
  // attached the key to). A revoke, or the writer at most ~100 ms after an expiry, deletes every
  // key of the lease in one transaction at one revision, as etcd does (one DELETE event per key, in
  // key order, all with that revision). Keep-alives are not written: when the store opens again,
  // every lease starts over with its full TTL (as etcd does on a leader change).
  int64_t grantLease(int64_t ttl_seconds) override;
  void revokeLease(int64_t lease) override;
  int64_t keepAliveLease(int64_t lease) override;
  LeaseStatus leaseTimeToLive(int64_t lease, bool with_keys) override;
  int64_t createWithLease(std::string_view key, std::string_view value, int64_t lease) override;
  int64_t updateWithLease(std::string_view key, std::string_view value,
                          int64_t expected_mod_revision, int64_t lease) override;

  // Sizes and counters; `rows` counts the history table (time grows with its size).
  SqliteStats stats();
  // PRAGMA integrity_check: the problems found, none when the database is sound.
  std::vector<std::string> integrityCheck();
  const std::string& path() const;

 private:
  class Impl;

  explicit SqliteStore(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::store
