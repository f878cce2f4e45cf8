#include "control/store/sqlite_store.h"

#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <latch>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>
#include <utility>

#include "control/store/sqlite_db.h"
#include "control/store/sqlite_watch.h"

namespace skiff::store {

using sqlite::Connection;
using sqlite::Statement;
using sqlite::StatementScope;

namespace {

using Clock = std::chrono::steady_clock;

// Gives the calling thread `nice` (when not 0); silently keeps the process's without the right.
void raisePriority(int nice) {
  if (nice != 0) ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), nice);
}

constexpr int64_t kApplicationId = 0x536b6966;  // "Skif"
// 1: kv and meta; 2: leases (the lease table, kv.lease); 3: rows apart from revisions (kv.row), so
// that the keys of a revoked lease are deleted at one revision.
constexpr int64_t kSchemaVersion = 3;
// The writer looks for expired leases when the first one is due, at most this often (etcd's
// lessor checks every 500 ms).
constexpr auto kLeaseSweepInterval = std::chrono::milliseconds(100);
constexpr int64_t kVacuumStepPages = 2048;  // pages released per compaction step
// The writer copies what the background checkpoints left in the log itself (so that the log can
// start over) once it is at most this many frames: a stall of a millisecond or two.
constexpr int64_t kCatchUpFrames = 256;
// While its transaction waits for the fsync before it, the writer applies queued writes once this
// many are waiting (rather than being woken by each).
constexpr size_t kWakeAtOpen = 32;
// Sync threads: fdatasyncs of the log that may run at once. A commit of at least kPipelineBatch
// writes made while one fsync runs gets its own fsync on the other thread, which the disk serves
// alongside: under 256 writers the slowest fsyncs (5-13 ms here) no longer hold back the writes
// committed after them, and smaller commits wait for the fsync before them.
constexpr size_t kPipelineBatch = 8;
constexpr int kSyncThreads = 2;
// A sync thread wakes the callers of at most this many writes itself, more through the
// acknowledging thread (so that it can start the next fsync meanwhile).
constexpr size_t kDirectAcks = 4;

// kine's layout: one row per write, `id` its revision (since schema version 3 `row` names the row:
// a lease's deletes share one revision, every other revision has one row). A key's state at
// revision R is its newest row with id <= R, absent when that row is a delete. Unlike kine, a row
// keeps no copy of the value it replaced (old_value): an event's previous value is the key's row at
// prev_revision, which compaction never removes while the row pointing at it is above the
// compaction point. An update writes half the bytes, a delete almost none.
constexpr const char* kSchema = R"sql(
CREATE TABLE kv (
  id INTEGER PRIMARY KEY,
  name BLOB NOT NULL,
  created INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  create_revision INTEGER NOT NULL,
  prev_revision INTEGER NOT NULL,
  value BLOB NOT NULL
);
CREATE INDEX kv_name_id ON kv (name, id, deleted);
CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
-- As etcd, an empty store is at revision 1: a list of it returns a revision to watch from.
INSERT INTO meta VALUES ('revision', 1), ('compact_revision', 0), ('compacted_through', 0);
)sql";

// Version 1 to 2: leases. A row's lease is the lease its key was attached to by that write (0 =
// none); the keys attached to a lease are those whose newest row carries it. `expiry` (Unix
// seconds) is when the lease would expire without keep-alives; keep-alives are not written (as in
// etcd, a lease's remaining TTL is refreshed to its full TTL when the store opens again).
constexpr const char* kMigrationTo2 = R"sql(
ALTER TABLE kv ADD COLUMN lease INTEGER NOT NULL DEFAULT 0;
CREATE INDEX kv_lease ON kv (lease) WHERE lease != 0;
CREATE TABLE lease (id INTEGER PRIMARY KEY, ttl INTEGER NOT NULL, expiry INTEGER NOT NULL);
)sql";

// Version 2 to 3: a row is no longer named by its revision. `id` stays the revision of the write
// (a key has at most one row per revision), `row` names the row and orders the rows of one
// revision: a lease's revoke or expiry deletes all its keys at one revision, as etcd does. The
// table is copied (every row keeps its id as its row).
constexpr const char* kMigrationTo3 = R"sql(
CREATE TABLE kv3 (
  row INTEGER PRIMARY KEY,
  id INTEGER NOT NULL,
  name BLOB NOT NULL,
  created INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  create_revision INTEGER NOT NULL,
  prev_revision INTEGER NOT NULL,
  value BLOB NOT NULL,
  lease INTEGER NOT NULL DEFAULT 0
);
INSERT INTO kv3 (row, id, name, created, deleted, create_revision, prev_revision, value, lease)
  SELECT id, id, name, created, deleted, create_revision, prev_revision, value, lease FROM kv;
DROP TABLE kv;
ALTER TABLE kv3 RENAME TO kv;
CREATE INDEX kv_name_id ON kv (name, id, deleted);
CREATE INDEX kv_id ON kv (id);
CREATE INDEX kv_lease ON kv (lease) WHERE lease != 0;
)sql";

// The keys attached to lease ?1: those whose newest row (at or below revision ?2) carries it.
constexpr const char* kLeaseKeys =
    "SELECT name FROM kv AS k WHERE lease = ?1 AND deleted = 0 AND id <= ?2 AND id = "
    "(SELECT max(id) FROM kv WHERE name = k.name AND id <= ?2) ORDER BY name";

StoreError leaseNotFound(int64_t lease) {
  return StoreError(ErrorCode::kLeaseNotFound,
                    "requested lease not found: lease " + std::to_string(lease));
}

// History rows with their previous value, in revision order (the rows of one revision in the order
// they were written): a range of the revision index (unary + keeps the planner off the name index,
// which would need a sort).
constexpr const char* kReplay =
    "SELECT kv.id, kv.name, kv.created, kv.deleted, kv.create_revision, kv.prev_revision, "
    "kv.value, prev.value FROM kv LEFT JOIN kv AS prev ON prev.name = kv.name AND "
    "prev.id = kv.prev_revision WHERE kv.id > ?1 AND kv.id <= ?2 AND +kv.name >= ?3 ";

// A copy of `error` that shares nothing with it. std::runtime_error keeps its message in a
// reference-counted string: copies handed to several threads would share (and free) one buffer
// through counts that ThreadSanitizer cannot see.
StoreError copyOf(const StoreError& error) {
  return StoreError(error.code(), std::string(error.what()));
}

std::string inQuotes(std::string_view key) {
  std::string text = "'";
  text += key;
  text += "'";
  return text;
}

// Keys under a prefix are [low, high); no high when the prefix is empty or all 0xff bytes.
struct KeyRange {
  std::string_view low;
  std::optional<std::string> high;
};

KeyRange rangeOf(std::string_view prefix) {
  KeyRange range{prefix, std::nullopt};
  std::string high(prefix);
  while (!high.empty() && static_cast<unsigned char>(high.back()) == 0xff) {
    high.pop_back();
  }
  if (!high.empty()) {
    high.back() = static_cast<char>(static_cast<unsigned char>(high.back()) + 1);
    range.high = std::move(high);
  }
  return range;
}

// The event of one history row; the writer builds live events with the same function, so a
// replayed event equals the live one.
Event makeEvent(int64_t revision, std::string key, bool created, bool deleted,
                int64_t create_revision, int64_t prev_revision, std::string value,
                std::string old_value) {
  Event event;
  if (deleted) {
    event.type = Event::Type::kDelete;
    event.prev = KeyValue{key, std::move(old_value), create_revision, prev_revision};
    event.kv = KeyValue{std::move(key), {}, 0, revision};
  } else if (created) {
    event.type = Event::Type::kCreate;
    event.kv = KeyValue{std::move(key), std::move(value), create_revision, revision};
  } else {
    event.type = Event::Type::kUpdate;
    event.prev = KeyValue{key, std::move(old_value), create_revision, prev_revision};
    event.kv = KeyValue{std::move(key), std::move(value), create_revision, revision};
  }
  return event;
}

Event eventFromRow(const Statement& row) {
  return makeEvent(row.columnInt(0), std::string(row.columnBlob(1)), row.columnInt(2) != 0,
                   row.columnInt(3) != 0, row.columnInt(4), row.columnInt(5),
                   std::string(row.columnBlob(6)), std::string(row.columnBlob(7)));
}

// One read connection with its statements.
struct Reader {
  Reader(const std::string& path, size_t cache_bytes) : db(path, false) {
    db.exec("PRAGMA query_only=1; PRAGMA busy_timeout=5000; PRAGMA cache_size=-" +
            std::to_string(std::max<size_t>(cache_bytes / 1024, 1)) + "; PRAGMA temp_store=MEMORY");
    begin = db.prepare("BEGIN");
    end = db.prepare("ROLLBACK");
    meta = db.prepare(
        "SELECT (SELECT value FROM meta WHERE name = 'revision'), "
        "(SELECT value FROM meta WHERE name = 'compact_revision')");
    get = db.prepare(
        "SELECT id, deleted, create_revision, value FROM kv WHERE name = ?1 AND id <= ?2 "
        "ORDER BY id DESC LIMIT 1");
    // Covering scans of the (name, id, deleted) index: the newest row per key at a revision.
    scan = db.prepare(
        "SELECT name, id, deleted FROM kv WHERE name >= ?1 AND name < ?2 AND id <= ?3 "
        "ORDER BY name, id");
    scan_open = db.prepare(
        "SELECT name, id, deleted FROM kv WHERE name >= ?1 AND id <= ?2 ORDER BY name, id");
    fetch = db.prepare("SELECT value, create_revision FROM kv WHERE name = ?1 AND id = ?2");
    // No LIMIT: a page ends between two revisions, never inside one (readEvents).
    replay = db.prepare(std::string(kReplay) + "AND +kv.name < ?4 ORDER BY kv.id, kv.row");
    replay_open = db.prepare(std::string(kReplay) + "ORDER BY kv.id, kv.row");
  }

  // The revision and compaction point of the transaction's snapshot.
  std::pair<int64_t, int64_t> readMeta() {
    StatementScope scope(meta);
    meta.step();
    return {meta.columnInt(0), meta.columnInt(1)};
  }

  Connection db;
  Statement begin, end, meta, get, scan, scan_open, fetch, replay, replay_open;
};

// A read transaction: every statement in it sees the same committed snapshot.
class ReadTransaction {
 public:
  explicit ReadTransaction(Reader& reader) : reader_(reader) {
    StatementScope scope(reader_.begin);
    reader_.begin.run();
  }
  ~ReadTransaction() {
    if (!reader_.db.inTransaction()) return;
    StatementScope scope(reader_.end);
    try {
      reader_.end.run();
    } catch (const StoreError&) {
      // Ending a read transaction releases a snapshot; nothing was written.
    }
  }
  ReadTransaction(const ReadTransaction&) = delete;
  ReadTransaction& operator=(const ReadTransaction&) = delete;

 private:
  Reader& reader_;
};

// Read connections shared by reads and by watches replaying history. Reads never look past the
// visible revision: the writer commits a batch before it is on disk (its fsync runs while the next
// batch is applied), and nobody may see a write that a crash could still take back.
class ReaderPool final : public sqlite::EventHistory {
 public:
  ReaderPool(std::string path, size_t size, size_t cache_bytes, int64_t visible_revision)
      : path_(std::move(path)),
        size_(std::max<size_t>(size, 1)),
        cache_bytes_(cache_bytes),
        visible_(visible_revision) {}

  // The newest revision that is durable (and acknowledged, published to watches).
  int64_t visibleRevision() const { return visible_.load(std::memory_order_acquire); }
  void setVisibleRevision(int64_t revision) { visible_.store(revision, std::memory_order_release); }

  class Lease {
   public:
    Lease(ReaderPool& pool, std::unique_ptr<Reader> reader)
        : pool_(&pool), reader_(std::move(reader)) {}
    ~Lease() {
      if (reader_) pool_->release(std::move(reader_));
    }
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Reader& operator*() { return *reader_; }
    Reader* operator->() { return reader_.get(); }

   private:
    ReaderPool* pool_;
    std::unique_ptr<Reader> reader_;
  };

  Lease acquire() {
    std::unique_lock lock(mu_);
    for (;;) {
      if (closed_)
        throw StoreError(ErrorCode::kUnavailable, "store " + inQuotes(path_) + " is closed");
      if (!idle_.empty()) {
        std::unique_ptr<Reader> reader = std::move(idle_.back());
        idle_.pop_back();
        ++leased_;
        return Lease(*this, std::move(reader));
      }
      if (opened_ < size_) break;
      cv_.wait(lock);
    }
    ++opened_;
    ++leased_;
    lock.unlock();
    try {
      return Lease(*this, std::make_unique<Reader>(path_, cache_bytes_));
    } catch (...) {
      lock.lock();
      --opened_;
      --leased_;
      cv_.notify_all();
      throw;
    }
  }

  // Waits for the readers in use, then closes every connection; acquire() fails from then on.
  void close() {
    std::unique_lock lock(mu_);
    closed_ = true;
    cv_.wait(lock, [&] { return leased_ == 0; });
    idle_.clear();
  }

  Page readEvents(std::string_view prefix, int64_t after_revision, size_t limit) override {
    // Read before the snapshot starts: the snapshot then holds every row up to it.
    const int64_t revision = visibleRevision();
    Lease reader = acquire();
    ReadTransaction transaction(*reader);
    const int64_t compacted = reader->readMeta().second;
    if (after_revision < compacted) {
      throw StoreError(ErrorCode::kCompacted,
                       "watch on " + inQuotes(prefix) + " needs history after revision " +
                           std::to_string(after_revision) + ", compacted up to revision " +
                           std::to_string(compacted));
    }
    Page page;
    page.through_revision = revision;
    KeyRange range = rangeOf(prefix);
    Statement& statement = range.high ? reader->replay : reader->replay_open;
    StatementScope scope(statement);
    statement.bindInt(1, after_revision);
    statement.bindInt(2, revision);
    statement.bindBlob(3, range.low);
    if (range.high) statement.bindBlob(4, *range.high);
    // `limit` events, and the rest of the last one's revision (a lease's deletes share one).
    while (statement.step()) {
      if (page.events.size() >= limit &&
          statement.columnInt(0) != page.events.back().kv.mod_revision) {
        page.through_revision = page.events.back().kv.mod_revision;
        break;
      }
      page.events.push_back(eventFromRow(statement));
    }
    return page;
  }

 private:
  void release(std::unique_ptr<Reader> reader) {
    std::lock_guard lock(mu_);
    --leased_;
    if (closed_) {
      --opened_;
      reader.reset();
    } else {
      idle_.push_back(std::move(reader));
    }
    cv_.notify_all();
  }

  const std::string path_;
  const size_t size_;
  const size_t cache_bytes_;
  std::atomic<int64_t> visible_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Reader>> idle_;
  size_t opened_ = 0;
  size_t leased_ = 0;
  bool closed_ = false;
};

// Wakes a caller when the writer is done with its request. A POSIX semaphore rather than
// std::binary_semaphore, whose waiters spin on sched_yield first (libstdc++ 12): hundreds of
// spinning callers starve the writer thread. POSIX lets it be destroyed as soon as wait() returns.
class Completion {
 public:
  Completion() { ::sem_init(&sem_, 0, 0); }
  ~Completion() { ::sem_destroy(&sem_); }
  Completion(const Completion&) = delete;
  Completion& operator=(const Completion&) = delete;

  void wait() {
    while (::sem_wait(&sem_) != 0) {
      // EINTR: wait again.
    }
  }
  void release() { ::sem_post(&sem_); }

 private:
  sem_t sem_;
};

// A write waiting for the writer thread; lives on the caller's stack until `done` is released.
struct WriteRequest {
  // kExpire: the writer's own revoke of a lease it found expired, done only if the lease is still
  // expired when it is applied (a keep-alive may have come in between).
  enum class Op : uint8_t { kCreate, kUpdate, kRemove, kGrant, kRevoke, kExpire };
  Op op = Op::kCreate;
  std::string_view key;
  std::string_view value;
  int64_t expected = 0;
  int64_t lease = 0;  // create and update: the lease to attach to; revoke/expire: the lease
  int64_t ttl = 0;    // grant
  // Made by the writer (kExpire): nobody waits for it, the acknowledging thread deletes it.
  bool owned = false;
  // Results.
  int64_t revision = 0;
  KeyValue removed;
  bool lease_gone = false;  // revoke/expire: the lease was removed
  std::optional<StoreError> error;
  Completion done;
};

struct CompactRequest {
  int64_t revision = 0;
  std::optional<StoreError> error;
  Completion done;
};

// The writer connection's statements.
struct WriterStatements {
  explicit WriterStatements(Connection& db)
      : begin(db.prepare("BEGIN IMMEDIATE")),
        commit(db.prepare("COMMIT")),
        rollback(db.prepare("ROLLBACK")),
        latest(db.prepare("SELECT id, deleted, create_revision, value FROM kv WHERE name = ?1 "
                          "ORDER BY id DESC LIMIT 1")),
        insert(db.prepare("INSERT INTO kv (id, name, created, deleted, create_revision, "
                          "prev_revision, value, lease) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")),
        set_meta(db.prepare("UPDATE meta SET value = ?2 WHERE name = ?1")),
        // A row whose successor is at or below the compaction point is never read again.
        // (Unary +: the key's row at prev_revision is an equality lookup, not a range of its rows.)
        delete_superseded(db.prepare(
            "DELETE FROM kv WHERE row IN (SELECT prev.row FROM kv JOIN kv AS prev ON prev.name = "
            "kv.name AND prev.id = kv.prev_revision WHERE kv.id > ?1 AND kv.id <= ?2 AND "
            "+kv.prev_revision > 0)")),
        delete_markers(db.prepare("DELETE FROM kv WHERE id > ?1 AND id <= ?2 AND deleted = 1")),
        vacuum_step(
            db.prepare("PRAGMA incremental_vacuum(" + std::to_string(kVacuumStepPages) + ")")),
        freelist(db.prepare("PRAGMA freelist_count")),
        lease_exists(db.prepare("SELECT ttl FROM lease WHERE id = ?1")),
        lease_insert(db.prepare("INSERT INTO lease (id, ttl, expiry) VALUES (?1, ?2, ?3)")),
        lease_delete(db.prepare("DELETE FROM lease WHERE id = ?1")),
        lease_keys(db.prepare(std::string(kLeaseKeys))) {}

  Statement begin, commit, rollback, latest, insert, set_meta, delete_superseded, delete_markers,
      vacuum_step, freelist, lease_exists, lease_insert, lease_delete, lease_keys;
};

int openLockFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw StoreError(ErrorCode::kUnavailable,
                     "cannot open store database " + inQuotes(path) + ": " + std::strerror(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int error = errno;
    ::close(fd);
    if (error == EWOULDBLOCK) {
      throw StoreError(ErrorCode::kUnavailable,
                       "store database " + inQuotes(path) + " is in use by another store (locked)");
    }
    throw StoreError(ErrorCode::kUnavailable,
                     "cannot lock store database " + inQuotes(path) + ": " + std::strerror(error));
  }
  return fd;
}

int64_t fileSize(const std::string& path) {
  std::error_code error;
  auto size = std::filesystem::file_size(path, error);
  return error ? 0 : static_cast<int64_t>(size);
}

}  // namespace

class SqliteStore::Impl {
 public:
  explicit Impl(SqliteOptions options) : options_(std::move(options)) {}

  ~Impl() {
    if (writer_thread_.joinable()) {
      {
        std::lock_guard lock(queue_mu_);
        stopping_ = true;
      }
      queue_cv_.notify_all();
      writer_thread_.join();
    }
    if (!sync_threads_.empty()) {
      {
        std::lock_guard lock(sync_mu_);
        sync_stop_ = true;
      }
      sync_cv_.notify_all();
      for (std::thread& thread : sync_threads_) {
        thread.join();
      }
    }
    if (ack_thread_.joinable()) {
      {
        std::lock_guard lock(ack_mu_);
        ack_stop_ = true;
      }
      ack_cv_.notify_all();
      ack_thread_.join();
    }
    if (checkpoint_thread_.joinable()) {
      {
        std::lock_guard lock(checkpoint_mu_);
        checkpoint_stop_ = true;
      }
      checkpoint_cv_.notify_all();
      checkpoint_thread_.join();
    }
    if (hub_) hub_->close();
    if (readers_) readers_->close();
    checkpoint_db_.reset();
    statements_.reset();
    writer_db_.reset();
    // Closing any descriptor of the file drops SQLite's POSIX locks on it: only after the
    // connections are closed.
    for (int fd : wal_fds_) {
      if (fd >= 0) ::close(fd);
    }
    if (lock_fd_ >= 0) ::close(lock_fd_);
  }

  void open();

  const std::string& path() const { return options_.path; }

  std::optional<KeyValue> get(std::string_view key) {
    const int64_t visible = readers_->visibleRevision();
    auto reader = readers_->acquire();
    Statement& statement = reader->get;
    StatementScope scope(statement);
    statement.bindBlob(1, key);
    statement.bindInt(2, visible);
    if (!statement.step() || statement.columnInt(1) != 0) return std::nullopt;
    return KeyValue{std::string(key), std::string(statement.columnBlob(3)), statement.columnInt(2),
                    statement.columnInt(0)};
  }

  ListResult list(std::string_view prefix, const ListOptions& options);

  int64_t write(WriteRequest& request) {
    if (request.op != WriteRequest::Op::kRemove && request.value.size() > kMaxValueBytes) {
      throw StoreError(ErrorCode::kTooLarge,
                       "value of key " + inQuotes(request.key) + " is " +
                           std::to_string(request.value.size()) + " bytes, above the limit of " +
                           std::to_string(kMaxValueBytes) + " bytes (1.5 MiB)");
    }
    bool wake = false;
    {
      std::lock_guard lock(queue_mu_);
      if (stopping_) throw closedError();
      queue_.push_back(&request);
      if (writer_idle_ && queue_.size() >= writer_wake_at_) {
        wake = true;
        writer_idle_ = false;
      }
    }
    if (wake) queue_cv_.notify_one();
    request.done.wait();
    if (request.error) throw *request.error;
    return request.revision;
  }

  WatchPtr watch(std::string_view prefix, int64_t start_revision) {
    int64_t from = start_revision;
    if (from <= 0) {
      from = hub_->lastRevision();
    } else if (int64_t compacted = compacted_.load(); from < compacted) {
      throw StoreError(ErrorCode::kCompacted,
                       "watch on " + inQuotes(prefix) + " from revision " + std::to_string(from) +
                           ": history is compacted up to revision " + std::to_string(compacted));
    }
    return sqlite::WatchHub::watch(hub_, readers_, std::string(prefix), from);
  }

  void compact(int64_t revision) {
    CompactRequest request;
    request.revision = revision;
    {
      std::lock_guard lock(queue_mu_);
      if (stopping_) throw closedError();
      compact_queue_.push_back(&request);
      writer_idle_ = false;
    }
    queue_cv_.notify_one();
    request.done.wait();
    if (request.error) throw *request.error;
  }

  int64_t currentRevision() const { return readers_->visibleRevision(); }
  int64_t compactedRevision() const { return compacted_.load(std::memory_order_acquire); }

  int64_t keepAlive(int64_t lease) {
    std::lock_guard lock(lease_mu_);
    auto it = leases_.find(lease);
    const auto now = Clock::now();
    if (it == leases_.end() || it->second.expiry <= now) throw leaseNotFound(lease);
    it->second.expiry = now + std::chrono::seconds(it->second.ttl);
    return it->second.ttl;
  }

  LeaseStatus timeToLive(int64_t lease, bool with_keys) {
    LeaseStatus status;
    status.id = lease;
    {
      std::lock_guard lock(lease_mu_);
      auto it = leases_.find(lease);
      const auto now = Clock::now();
      if (it == leases_.end() || it->second.expiry <= now) throw leaseNotFound(lease);
      status.granted_ttl = it->second.ttl;
      const auto left = it->second.expiry - now;
      status.ttl = std::chrono::ceil<std::chrono::seconds>(left).count();
    }
    if (!with_keys) return status;
    const int64_t visible = readers_->visibleRevision();
    auto reader = readers_->acquire();
    Statement keys = reader->db.prepare(kLeaseKeys);
    keys.bindInt(1, lease);
    keys.bindInt(2, visible);
    while (keys.step()) {
      status.keys.emplace_back(keys.columnBlob(0));
    }
    return status;
  }

  SqliteStats stats();
  std::vector<std::string> integrityCheck();

 private:
  StoreError closedError() const {
    return StoreError(ErrorCode::kUnavailable, "store " + inQuotes(options_.path) + " is closed");
  }

  // Writer thread.
  void writerLoop();
  // Applies `requests` in the open transaction (beginning one when none is open). When one fails
  // to apply, the transaction is rolled back and every write in it fails.
  void applyOpen(std::vector<WriteRequest*>& requests);
  // Commits the open transaction and hands it to the sync thread.
  void commitOpen();
  // Fails every write of the open transaction (already rolled back) with `error`.
  void failOpen(const StoreError& error);
  // Whether the open transaction may commit now (queue_mu_ held): when the log's last fsync is
  // done, or when only one commit waits for the fsync under way and this one is large enough to
  // be worth its own (its commit then overlaps that fsync instead of following it).
  bool mayCommit(size_t writes) const {
    return commits_in_sync_ == 0 || (commits_in_sync_ < kSyncThreads && writes >= kPipelineBatch);
  }
  // Hands a finished batch to the acknowledging thread (and leaves `batch` empty).
  void acknowledge(std::vector<WriteRequest*>& batch);
  void ackLoop();
  // Wakes the callers of `batch` (and deletes the writer's own requests).
  static void release(const std::vector<WriteRequest*>& batch);
  // The sync threads: make committed batches durable, then publish and acknowledge them.
  void syncLoop(int wal_fd);
  // Publishes and acknowledges, in revision order, the batches whose fsync returned (sync_mu_
  // not held); done by one sync thread at a time.
  void publishSettled();
  std::optional<StoreError> fatal() {
    std::lock_guard lock(fatal_mu_);
    if (!fatal_) return std::nullopt;
    return copyOf(*fatal_);
  }
  void setFatal(const StoreError& error) {
    std::lock_guard lock(fatal_mu_);
    if (!fatal_) fatal_ = copyOf(error);
  }
  void apply(WriteRequest& request, int64_t& revision, sqlite::EventBatch& events);
  void applyLease(WriteRequest& request, int64_t& revision, sqlite::EventBatch& events);
  bool leaseExists(int64_t lease);
  // After a batch committed (or failed): the lease table's changes reach leases_.
  void afterBatch(const std::vector<WriteRequest*>& batch, bool committed);
  // Queues a kExpire for every lease that has expired and sets next_sweep_ (writer thread, with
  // queue_mu_ held).
  void sweepLeases(std::vector<WriteRequest*>& batch);
  template <typename Body>
  void inTransaction(Body&& body);
  void rollback();
  void setMeta(std::string_view name, int64_t value);
  void handleCompact(CompactRequest& request);
  void startCompaction(int64_t revision);
  bool compactionPending() const {
    return !compaction_paused_ && (compacted_through_ < compact_target_ || vacuum_pending_);
  }
  void compactionStep();
  void finishCompactionWaiters();
  void failCompactionWaiters(const StoreError& error);
  void periodicTick();
  void maybeCheckpoint();
  static int walHook(void* arg, sqlite3* db, const char* name, int frames);

  // Checkpoint thread.
  void checkpointLoop();

  const SqliteOptions options_;
  int lock_fd_ = -1;
  std::unique_ptr<Connection> writer_db_;
  std::unique_ptr<WriterStatements> statements_;
  std::unique_ptr<Connection> checkpoint_db_;
  std::shared_ptr<ReaderPool> readers_;
  std::shared_ptr<sqlite::WatchHub> hub_;
  int64_t page_size_ = 4096;
  // Counted down by the ack, sync and writer threads once named and at their priority: open()
  // returns after that.
  std::latch started_{2 + kSyncThreads};
  bool incremental_vacuum_ = false;

  std::atomic<int64_t> compacted_{0};
  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> syncs_{0};
  std::atomic<uint64_t> writes_{0};
  std::atomic<uint64_t> failed_batches_{0};
  std::atomic<uint64_t> wal_frames_written_{0};
  std::atomic<uint64_t> catch_ups_{0};
  std::atomic<uint64_t> catch_up_us_{0};

  // The queue the writer takes its batches from.
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<WriteRequest*> queue_;
  std::vector<CompactRequest*> compact_queue_;
  bool stopping_ = false;
  // The writer waits for the queue to hold writer_wake_at_ requests (or for the sync thread):
  // 1 when nothing is open, kWakeAtOpen while a transaction waits for the fsync before it.
  bool writer_idle_ = false;
  size_t writer_wake_at_ = 1;
  // Commits handed to the sync threads whose fsync has not returned yet. The writer commits its
  // open transaction when this is 0, or when it is large and a sync thread is free (see
  // mayCommit): about one commit per fsync, everything that came in meanwhile in the next.
  int commits_in_sync_ = 0;
  std::thread writer_thread_;

  // After a failed rollback or fsync the store takes no more writes (the outcome of the last ones
  // is unknown until the database is opened again).
  std::mutex fatal_mu_;
  std::optional<StoreError> fatal_;

  // Writer-thread state.
  int64_t committed_ = 0;  // the revision of the last commit, durable or not yet
  // The open transaction: the writes applied in it, their events, its revision.
  bool open_ = false;
  std::vector<WriteRequest*> open_batch_;
  std::shared_ptr<sqlite::EventBatch> open_events_;
  int64_t open_revision_ = 0;
  size_t open_bytes_ = 0;
  int64_t compact_target_ = 0;     // the compaction point readers see
  int64_t compacted_through_ = 0;  // rows up to here are compacted
  bool vacuum_pending_ = false;
  bool compaction_paused_ = false;  // after an error, until the next request or tick
  std::vector<CompactRequest*> compact_waiters_;
  std::deque<std::pair<Clock::time_point, int64_t>> revision_samples_;
  Clock::time_point next_tick_;
  int64_t vacuum_pages_left_ = 0;
  int64_t wal_frames_ = 0;  // frames in the log after the last commit
  // When the writer looks for expired leases next: the earliest expiry it knows of (keep-alives
  // only move expiries later), max() with no lease.
  Clock::time_point next_sweep_ = Clock::time_point::max();
  std::mt19937_64 lease_ids_{std::random_device{}()};

  // The leases (the lease table's rows) with their expiry: the writer adds and removes them after
  // its commits, keep-alives move their expiry.
  struct LeaseState {
    int64_t ttl = 0;
    Clock::time_point expiry;
    bool expiring = false;  // a kExpire for it is queued
  };
  std::mutex lease_mu_;
  std::unordered_map<int64_t, LeaseState> leases_;

  // Committed batches waiting for their fsync, then to be published and acknowledged, in revision
  // order. An fdatasync of the write-ahead log covers every batch committed before it was called.
  // Two sync threads: a commit made while one fsync runs gets its own, which the disk can serve
  // alongside (a slow fsync then holds back only the writes it covers).
  struct Committed {
    std::vector<WriteRequest*> requests;
    std::shared_ptr<sqlite::EventBatch> events;
    int64_t revision = 0;
    uint64_t seq = 0;  // commits are numbered 1, 2, ... (a revision may not change)
  };
  uint64_t commit_seq_ = 0;  // writer thread
  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  std::deque<Committed> sync_queue_;
  uint64_t sync_taken_ = 0;    // the newest commit an fsync was started for
  uint64_t sync_settled_ = 0;  // the newest commit an fsync returned for (succeeded or not)
  uint64_t sync_durable_ = 0;  // the newest commit a successful fsync covers
  std::optional<StoreError> sync_failure_;  // once the log could not be synced
  bool sync_publishing_ = false;            // a sync thread publishes and acknowledges
  bool sync_stop_ = false;
  std::vector<std::thread> sync_threads_;
  // The log, opened once per sync thread: a write-back error is then reported to each of their
  // fdatasyncs, not only to the first (errors are reported once per open file).
  std::vector<int> wal_fds_;

  // Waking hundreds of callers takes a while: a thread of its own does it while the writer goes
  // on with the next batch.
  std::mutex ack_mu_;
  std::condition_variable ack_cv_;
  std::deque<std::vector<WriteRequest*>> ack_queue_;
  bool ack_stop_ = false;
  std::thread ack_thread_;

  // Background checkpoints.
  std::mutex checkpoint_mu_;
  std::condition_variable checkpoint_cv_;
  std::condition_variable checkpoint_idle_cv_;
  bool checkpoint_requested_ = false;
  bool checkpoint_running_ = false;
  std::atomic<int64_t> checkpointed_frames_{0};  // frames copied by the last round
  bool checkpoint_stop_ = false;
  std::thread checkpoint_thread_;
};

void SqliteStore::Impl::open() {
  const std::string& path = options_.path;
  if (path.empty()) throw StoreError(ErrorCode::kInternal, "SqliteOptions.path is empty");
  std::filesystem::path file(path);
  std::filesystem::path directory = file.has_parent_path() ? file.parent_path() : ".";
  std::error_code error;
  if (!std::filesystem::is_directory(directory, error)) {
    throw StoreError(ErrorCode::kUnavailable, "cannot open store database " + inQuotes(path) +
                                                  ": directory " + inQuotes(directory.string()) +
                                                  " does not exist");
  }
  if (std::filesystem::is_directory(file, error)) {
    throw StoreError(ErrorCode::kUnavailable,
                     "cannot open store database " + inQuotes(path) + ": it is a directory");
  }
  lock_fd_ = openLockFile(path);

  writer_db_ = std::make_unique<Connection>(path, true);
  Connection& db = *writer_db_;
  // The first read of the file: a file that is not a database fails here with kCorrupt.
  const bool fresh = db.queryInt("PRAGMA page_count") == 0;
  if (fresh) db.exec("PRAGMA auto_vacuum=INCREMENTAL");
  if (std::string mode = db.queryText("PRAGMA journal_mode=WAL"); mode != "wal") {
    throw StoreError(ErrorCode::kUnavailable, "store database " + inQuotes(path) +
                                                  " cannot use WAL mode (got " + mode + ")");
  }
  // NORMAL: SQLite syncs around checkpoints and on reuse of the log, never at commit; the sync
  // thread makes each commit durable itself (fdatasync of the log) before acknowledging it.
  const std::string synchronous =
      std::string("PRAGMA synchronous=") + (options_.fsync ? "NORMAL" : "OFF");
  db.exec(synchronous);
  // Page caches are private memory that fills as the database grows (the history until the next
  // compaction): SqliteOptions::writer_cache_bytes here, reader_cache_bytes per reader.
  db.exec("PRAGMA busy_timeout=5000; PRAGMA wal_autocheckpoint=0; PRAGMA cache_size=-" +
          std::to_string(std::max<size_t>(options_.writer_cache_bytes / 1024, 1)) +
          "; PRAGMA temp_store=MEMORY; PRAGMA journal_size_limit=" +
          std::to_string(options_.checkpoint_wal_bytes * 4));
  page_size_ = db.queryInt("PRAGMA page_size");
  if (options_.quota_bytes > 0) {
    db.exec("PRAGMA max_page_count=" +
            std::to_string(std::max<int64_t>(options_.quota_bytes / page_size_, 1)));
  }

  if (!fresh && options_.check_on_open) {
    Statement check = db.prepare("PRAGMA quick_check(5)");
    std::string problems;
    while (check.step()) {
      std::string line = check.columnText(0);
      if (line == "ok") continue;
      if (!problems.empty()) problems += "; ";
      problems += line;
    }
    if (!problems.empty()) {
      throw StoreError(ErrorCode::kCorrupt,
                       "store database " + inQuotes(path) + " is corrupt: " + problems);
    }
  }

  const int64_t application_id = db.queryInt("PRAGMA application_id");
  if (application_id == 0 && db.queryInt("SELECT count(*) FROM sqlite_schema") == 0) {
    db.exec("BEGIN IMMEDIATE");
    try {
      db.exec(kSchema);
      db.exec("PRAGMA application_id=" + std::to_string(kApplicationId) +
              "; PRAGMA user_version=1");
      db.exec("COMMIT");
    } catch (...) {
      if (db.inTransaction()) db.exec("ROLLBACK");
      throw;
    }
  } else if (application_id != kApplicationId) {
    throw StoreError(ErrorCode::kCorrupt, "store database " + inQuotes(path) +
                                              " is a SQLite database but not a Skiff store");
  } else if (int64_t version = db.queryInt("PRAGMA user_version");
             version < 1 || version > kSchemaVersion) {
    throw StoreError(ErrorCode::kInternal, "store database " + inQuotes(path) +
                                               " has schema version " + std::to_string(version) +
                                               ", this build reads 1 to " +
                                               std::to_string(kSchemaVersion));
  }
  if (db.queryInt("PRAGMA user_version") == 1) {
    // A database of an older build: add what leases need (quick: ALTER TABLE ADD COLUMN with a
    // constant default rewrites no rows).
    db.exec("BEGIN IMMEDIATE");
    try {
      db.exec(kMigrationTo2);
      db.exec("PRAGMA user_version=2");
      db.exec("COMMIT");
    } catch (...) {
      if (db.inTransaction()) db.exec("ROLLBACK");
      throw;
    }
  }
  if (db.queryInt("PRAGMA user_version") == 2) {
    // Copies the history table (a new database's is empty; an old one's is bounded by
    // compaction).
    db.exec("BEGIN IMMEDIATE");
    try {
      db.exec(kMigrationTo3);
      db.exec("PRAGMA user_version=3");
      db.exec("COMMIT");
    } catch (...) {
      if (db.inTransaction()) db.exec("ROLLBACK");
      throw;
    }
  }
  incremental_vacuum_ = db.queryInt("PRAGMA auto_vacuum") == 2;

  {
    Statement meta = db.prepare("SELECT name, value FROM meta");
    while (meta.step()) {
      std::string name = meta.columnText(0);
      if (name == "revision") committed_ = meta.columnInt(1);
      if (name == "compact_revision") compact_target_ = meta.columnInt(1);
      if (name == "compacted_through") compacted_through_ = meta.columnInt(1);
    }
  }
  committed_ = std::max(committed_, db.queryInt("SELECT max(id) FROM kv"));
  compacted_.store(compact_target_);
  {
    // Every lease gets its full TTL again (etcd does the same on a leader change).
    const auto now = Clock::now();
    Statement leases = db.prepare("SELECT id, ttl FROM lease");
    while (leases.step()) {
      const int64_t ttl = leases.columnInt(1);
      leases_[leases.columnInt(0)] = LeaseState{ttl, now + std::chrono::seconds(ttl), false};
    }
    if (!leases_.empty()) next_sweep_ = now;
  }

  // The log exists since the first read above. Its descriptor is ours (SQLite takes no POSIX lock
  // on it, so closing it is harmless); the directory is synced once, for a log just created.
  for (int i = 0; i < kSyncThreads; ++i) {
    const int fd = ::open((path + "-wal").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) break;
    wal_fds_.push_back(fd);
  }
  if (wal_fds_.size() != static_cast<size_t>(kSyncThreads)) {
    throw StoreError(ErrorCode::kUnavailable,
                     "store database " + inQuotes(path) +
                         ": cannot open its write-ahead log: " + std::strerror(errno));
  }
  if (options_.fsync) {
    int directory_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (directory_fd >= 0) {
      ::fsync(directory_fd);
      ::close(directory_fd);
    }
  }

  statements_ = std::make_unique<WriterStatements>(db);
  readers_ = std::make_shared<ReaderPool>(path, options_.read_connections,
                                          options_.reader_cache_bytes, committed_);
  hub_ = std::make_shared<sqlite::WatchHub>(
      committed_, sqlite::WatchHub::Limits{std::max<size_t>(options_.watch_window_events, 1),
                                           options_.watch_window_bytes});
  sqlite3_wal_hook(db.handle(), &Impl::walHook, this);

  next_tick_ = Clock::now() + options_.compaction_interval;
  // Opened here so that a failure reaches the caller.
  checkpoint_db_ = std::make_unique<Connection>(path, false);
  checkpoint_db_->exec(synchronous);
  checkpoint_thread_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "store-ckpt");
    checkpointLoop();
  });
  ack_thread_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "store-ack");
    raisePriority(options_.commit_thread_nice);
    started_.count_down();
    ackLoop();
  });
  static_assert(kSyncThreads == 2);
  for (int i = 0; i < kSyncThreads; ++i) {
    sync_threads_.emplace_back([this, i] {
      ::pthread_setname_np(::pthread_self(), i == 0 ? "store-sync" : "store-sync2");
      raisePriority(options_.commit_thread_nice);
      started_.count_down();
      syncLoop(wal_fds_[static_cast<size_t>(i)]);
    });
  }
  writer_thread_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "store-writer");
    raisePriority(options_.commit_thread_nice);
    started_.count_down();
    writerLoop();
  });
  started_.wait();
}

ListResult SqliteStore::Impl::list(std::string_view prefix, const ListOptions& options) {
  const int64_t current = readers_->visibleRevision();  // before the snapshot starts
  auto reader = readers_->acquire();
  ReadTransaction transaction(*reader);
  const int64_t compacted = reader->readMeta().second;
  const int64_t at = options.revision > 0 ? options.revision : current;
  if (at > current) {
    throw StoreError(ErrorCode::kFutureRevision,
                     "list of " + inQuotes(prefix) + " at revision " + std::to_string(at) +
                         ": the store is at revision " + std::to_string(current));
  }
  if (at < compacted) {
    throw StoreError(ErrorCode::kCompacted,
                     "list of " + inQuotes(prefix) + " at revision " + std::to_string(at) +
                         ": history is compacted up to revision " + std::to_string(compacted));
  }
  ListResult result;
  result.revision = at;
  const size_t limit = options.limit > 0 ? static_cast<size_t>(options.limit) : SIZE_MAX;

  // One pass over the index: the newest row of each key at `at` decides whether it exists; the
  // count covers every page, the page itself starts after start_after.
  std::vector<std::pair<std::string, int64_t>> page;  // key, revision of its row
  size_t after_start = 0;
  {
    KeyRange range = rangeOf(prefix);
    Statement& scan = range.high ? reader->scan : reader->scan_open;
    StatementScope scope(scan);
    scan.bindBlob(1, range.low);
    if (range.high) {
      scan.bindBlob(2, *range.high);
      scan.bindInt(3, at);
    } else {
      scan.bindInt(2, at);
    }
    std::string key;
    int64_t id = 0;
    bool deleted = true;
    bool have = false;
    auto finishKey = [&] {
      if (!have || deleted) return;
      ++result.count;
      if (!options.start_after.empty() && key <= options.start_after) return;
      ++after_start;
      if (!options.count_only && page.size() < limit) page.emplace_back(key, id);
    };
    while (scan.step()) {
      std::string_view name = scan.columnBlob(0);
      if (!have || name != key) {
        finishKey();
        key.assign(name);
        have = true;
      }
      id = scan.columnInt(1);
      deleted = scan.columnInt(2) != 0;
    }
    finishKey();
  }
  if (options.count_only) return result;

  result.more = after_start > page.size();
  result.kvs.reserve(page.size());
  Statement& fetch = reader->fetch;
  for (auto& [key, id] : page) {
    StatementScope scope(fetch);
    fetch.bindBlob(1, key);
    fetch.bindInt(2, id);
    if (!fetch.step()) {
      throw StoreError(ErrorCode::kInternal, "store " + inQuotes(options_.path) + ": row " +
                                                 std::to_string(id) + " vanished during a list");
    }
    result.kvs.push_back(
        KeyValue{std::move(key), std::string(fetch.columnBlob(0)), fetch.columnInt(1), id});
  }
  return result;
}

SqliteStats SqliteStore::Impl::stats() {
  SqliteStats stats;
  {
    auto reader = readers_->acquire();
    ReadTransaction transaction(*reader);
    stats.compacted_revision = reader->readMeta().second;
    stats.rows = reader->db.queryInt("SELECT count(*) FROM kv");
    stats.page_size = reader->db.queryInt("PRAGMA page_size");
    stats.page_count = reader->db.queryInt("PRAGMA page_count");
    stats.freelist_count = reader->db.queryInt("PRAGMA freelist_count");
  }
  stats.revision = readers_->visibleRevision();
  stats.db_file_bytes = fileSize(options_.path);
  stats.wal_file_bytes = fileSize(options_.path + "-wal");
  stats.commits = commits_.load();
  stats.syncs = syncs_.load();
  stats.writes = writes_.load();
  stats.failed_batches = failed_batches_.load();
  stats.wal_frames = wal_frames_written_.load();
  stats.catch_ups = catch_ups_.load();
  stats.catch_up_us = catch_up_us_.load();
  stats.watches = hub_->watchCount();
  return stats;
}

std::vector<std::string> SqliteStore::Impl::integrityCheck() {
  auto reader = readers_->acquire();
  Statement check = reader->db.prepare("PRAGMA integrity_check");
  std::vector<std::string> problems;
  while (check.step()) {
    std::string line = check.columnText(0);
    if (line != "ok") problems.push_back(std::move(line));
  }
  return problems;
}

void SqliteStore::Impl::writerLoop() {
  const bool periodic = options_.compaction_interval.count() > 0;
  const size_t max_writes = std::max<size_t>(options_.max_batch_writes, 1);
  std::vector<WriteRequest*> taken;
  taken.reserve(max_writes);
  open_batch_.reserve(max_writes);
  std::vector<CompactRequest*> compacts;
  for (;;) {
    bool tick = false;
    bool stop = false;
    bool commit = false;
    {
      std::unique_lock lock(queue_mu_);
      // With a transaction open: until the fsync before it is done (then it commits), or until
      // enough writes are queued to be worth applying meanwhile. Otherwise: until there is work.
      while (compact_queue_.empty() && !stopping_ &&
             (open_ ? !mayCommit(open_batch_.size()) && queue_.size() < kWakeAtOpen
                    : queue_.empty() && !compactionPending())) {
        writer_idle_ = true;
        writer_wake_at_ = open_ ? kWakeAtOpen : 1;
        const auto deadline =
            open_ ? Clock::time_point::max()
                  : std::min(periodic ? next_tick_ : Clock::time_point::max(), next_sweep_);
        if (deadline == Clock::time_point::max()) {
          queue_cv_.wait(lock);
        } else if (Clock::now() >= deadline) {
          break;
        } else {
          queue_cv_.wait_until(lock, deadline);
        }
      }
      writer_idle_ = false;
      const auto now = Clock::now();
      tick = periodic && now >= next_tick_;
      // Group commit: everything queued joins the open transaction, up to the batch limits.
      size_t count = open_batch_.size();
      size_t bytes = open_bytes_;
      while (!queue_.empty() && count < max_writes &&
             (count == 0 || bytes + queue_.front()->value.size() <= options_.max_batch_bytes)) {
        bytes += queue_.front()->value.size();
        taken.push_back(queue_.front());
        queue_.pop_front();
        ++count;
      }
      compacts.swap(compact_queue_);
      stop = stopping_ && queue_.empty();
      if (now >= next_sweep_) sweepLeases(taken);
      // Commit when the log's last fsync is done, when the batch is full (more is queued than
      // it takes), and before anything that needs its own transaction.
      commit = mayCommit(count) || !queue_.empty() || stopping_ || !compacts.empty() || tick;
    }
    if (!taken.empty()) {
      applyOpen(taken);
      taken.clear();
    }
    if (open_ && commit) commitOpen();
    if (open_) continue;
    for (CompactRequest* request : compacts) {
      handleCompact(*request);
    }
    compacts.clear();
    if (stop) break;
    if (tick) periodicTick();
    maybeCheckpoint();
    if (compactionPending()) compactionStep();
  }
  // A compaction cut short resumes at the next open (meta keeps how far it went).
  failCompactionWaiters(closedError());
}

void SqliteStore::Impl::applyOpen(std::vector<WriteRequest*>& requests) {
  const size_t first = open_batch_.size();
  open_batch_.insert(open_batch_.end(), requests.begin(), requests.end());
  std::optional<StoreError> failure = fatal();
  if (!failure) {
    try {
      if (!open_) {
        WriterStatements& w = *statements_;
        StatementScope scope(w.begin);
        w.begin.run();
        open_ = true;
        open_revision_ = committed_;
        open_bytes_ = 0;
        open_events_ = std::make_shared<sqlite::EventBatch>();
        // Only what is applied now: a batch stays in the watch hub's log after its commit,
        // and a reserve of max_batch_writes events there (~200 KiB) outweighs its few events.
        open_events_->events.reserve(open_batch_.size() - first);
      }
      for (size_t i = first; i < open_batch_.size(); ++i) {
        apply(*open_batch_[i], open_revision_, *open_events_);
        open_bytes_ += open_batch_[i]->value.size();
      }
      return;
    } catch (const StoreError& e) {
      failure = e;
    } catch (const std::exception& e) {
      failure = StoreError(ErrorCode::kInternal,
                           "store " + inQuotes(options_.path) + ": write failed: " + e.what());
    }
    rollback();
  }
  failOpen(*failure);
}

void SqliteStore::Impl::failOpen(const StoreError& error) {
  // Rolled back as a whole: nobody in the transaction was applied, whatever their own outcome.
  open_ = false;
  open_events_.reset();
  open_bytes_ = 0;
  failed_batches_.fetch_add(1, std::memory_order_relaxed);
  for (WriteRequest* request : open_batch_) {
    request->error = copyOf(error);
  }
  afterBatch(open_batch_, false);
  acknowledge(open_batch_);
  open_batch_.reserve(std::max<size_t>(options_.max_batch_writes, 1));
}

void SqliteStore::Impl::commitOpen() {
  std::optional<StoreError> failure = fatal();
  if (!failure) {
    try {
      if (open_revision_ != committed_) setMeta("revision", open_revision_);
      WriterStatements& w = *statements_;
      StatementScope scope(w.commit);
      w.commit.run();
    } catch (const StoreError& e) {
      failure = e;
    }
  }
  if (failure) {
    rollback();
    failOpen(*failure);
    return;
  }
  open_ = false;
  afterBatch(open_batch_, true);
  std::shared_ptr<sqlite::EventBatch> events = std::move(open_events_);
  events->first_revision = committed_ + 1;
  events->last_revision = open_revision_;
  committed_ = open_revision_;
  commits_.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard lock(queue_mu_);
    ++commits_in_sync_;
  }
  {
    std::lock_guard lock(sync_mu_);
    Committed& committed = sync_queue_.emplace_back();
    committed.requests.swap(open_batch_);
    committed.events = std::move(events);
    committed.revision = committed_;
    committed.seq = ++commit_seq_;
  }
  sync_cv_.notify_one();
  open_batch_.reserve(std::max<size_t>(options_.max_batch_writes, 1));
}

void SqliteStore::Impl::syncLoop(int wal_fd) {
  for (;;) {
    uint64_t target = 0;
    bool failed = false;
    {
      std::unique_lock lock(sync_mu_);
      auto untaken = [&] { return !sync_queue_.empty() && sync_queue_.back().seq > sync_taken_; };
      sync_cv_.wait(lock, [&] { return untaken() || sync_stop_; });
      if (!untaken()) return;  // stopping, and nothing left to sync
      target = sync_queue_.back().seq;
      sync_taken_ = target;
      failed = sync_failure_.has_value();
    }
    // Every commit up to `target` was written to the log before this call.
    std::optional<StoreError> error;
    if (!failed && options_.fsync) {
      syncs_.fetch_add(1, std::memory_order_relaxed);
      if (::fdatasync(wal_fd) != 0) {
        error = StoreError(ErrorCode::kUnavailable,
                           "store " + inQuotes(options_.path) +
                               ": syncing the write-ahead log failed (" + std::strerror(errno) +
                               "): the last writes may or may not be on disk; the store takes no "
                               "more writes until it is opened again");
        setFatal(*error);
      }
    }
    int settled = 0;
    {
      std::lock_guard lock(sync_mu_);
      if (error && !sync_failure_) sync_failure_ = copyOf(*error);
      if (!error && !failed) sync_durable_ = std::max(sync_durable_, target);
      for (const Committed& committed : sync_queue_) {
        if (committed.seq > sync_settled_ && committed.seq <= target) ++settled;
      }
      sync_settled_ = std::max(sync_settled_, target);
    }
    // The writer may commit its next transaction now (a failed fsync fails it at once).
    bool wake_writer = false;
    {
      std::lock_guard lock(queue_mu_);
      commits_in_sync_ -= settled;
      if (writer_idle_) {
        writer_idle_ = false;
        wake_writer = true;
      }
    }
    if (wake_writer) queue_cv_.notify_one();
    publishSettled();
  }
}

void SqliteStore::Impl::publishSettled() {
  std::vector<Committed> ready;
  std::unique_lock lock(sync_mu_);
  if (sync_publishing_) return;  // the thread publishing takes these too
  sync_publishing_ = true;
  for (;;) {
    while (!sync_queue_.empty() && (sync_queue_.front().seq <= sync_durable_ ||
                                    (sync_failure_ && sync_queue_.front().seq <= sync_settled_))) {
      ready.push_back(std::move(sync_queue_.front()));
      sync_queue_.pop_front();
    }
    if (ready.empty()) break;
    const uint64_t durable = sync_durable_;
    std::optional<StoreError> failure;
    if (sync_failure_) failure = copyOf(*sync_failure_);
    lock.unlock();
    size_t requests = 0;
    for (const Committed& committed : ready) {
      requests += committed.requests.size();
    }
    for (Committed& committed : ready) {
      if (committed.seq > durable) {
        failed_batches_.fetch_add(1, std::memory_order_relaxed);
        for (WriteRequest* request : committed.requests) {
          request->error = copyOf(*failure);
        }
      } else {
        // Visible, published, then acknowledged: a read or a watch opened after a write returns
        // sees it.
        readers_->setVisibleRevision(committed.revision);
        if (!committed.events->events.empty()) {
          writes_.fetch_add(committed.events->events.size(), std::memory_order_relaxed);
          hub_->publish(std::move(committed.events));
        }
      }
      if (requests <= kDirectAcks) {
        // A few callers: woken from here, without a hop through the acknowledging thread.
        release(committed.requests);
      } else {
        acknowledge(committed.requests);
      }
    }
    ready.clear();
    lock.lock();
  }
  sync_publishing_ = false;
}

void SqliteStore::Impl::release(const std::vector<WriteRequest*>& batch) {
  for (WriteRequest* request : batch) {
    if (request->owned) {
      delete request;  // NOLINT(cppcoreguidelines-owning-memory): the writer's own kExpire
    } else {
      request->done.release();
    }
  }
}

void SqliteStore::Impl::acknowledge(std::vector<WriteRequest*>& batch) {
  bool wake = false;
  {
    std::lock_guard lock(ack_mu_);
    wake = ack_queue_.empty();
    ack_queue_.emplace_back().swap(batch);
  }
  if (wake) ack_cv_.notify_one();
}

void SqliteStore::Impl::ackLoop() {
  std::deque<std::vector<WriteRequest*>> batches;
  for (;;) {
    {
      std::unique_lock lock(ack_mu_);
      ack_cv_.wait(lock, [&] { return !ack_queue_.empty() || ack_stop_; });
      if (ack_queue_.empty()) return;  // stopping, and nothing left
      batches.swap(ack_queue_);
    }
    for (auto& batch : batches) {
      release(batch);
    }
    batches.clear();
  }
}

void SqliteStore::Impl::apply(WriteRequest& request, int64_t& revision,
                              sqlite::EventBatch& events) {
  using Op = WriteRequest::Op;
  if (request.op == Op::kGrant || request.op == Op::kRevoke || request.op == Op::kExpire) {
    applyLease(request, revision, events);
    return;
  }
  WriterStatements& w = *statements_;
  bool live = false;
  int64_t id = 0;
  int64_t create_revision = 0;
  std::string old_value;
  {
    StatementScope scope(w.latest);
    w.latest.bindBlob(1, request.key);
    if (w.latest.step()) {
      id = w.latest.columnInt(0);
      live = w.latest.columnInt(1) == 0;
      create_revision = w.latest.columnInt(2);
      if (live && request.op != Op::kCreate) old_value.assign(w.latest.columnBlob(3));
    }
  }
  if (request.op == Op::kCreate) {
    if (live) {
      request.error = StoreError(
          ErrorCode::kAlreadyExists,
          "key " + inQuotes(request.key) + " already exists (revision " + std::to_string(id) + ")");
      return;
    }
  } else {
    if (!live) {
      request.error =
          StoreError(ErrorCode::kNotFound, "key " + inQuotes(request.key) + " not found");
      return;
    }
    if (request.expected != 0 && request.expected != id) {
      request.error =
          StoreError(ErrorCode::kConflict, "key " + inQuotes(request.key) + " is at revision " +
                                               std::to_string(id) + ", not the expected revision " +
                                               std::to_string(request.expected));
      return;
    }
  }
  if (request.op != Op::kRemove && request.lease != 0 && !leaseExists(request.lease)) {
    request.error = leaseNotFound(request.lease);
    return;
  }

  const int64_t next = revision + 1;
  const bool create = request.op == Op::kCreate;
  const bool remove = request.op == Op::kRemove;
  const int64_t key_create_revision = create ? next : create_revision;
  const std::string_view value = remove ? std::string_view() : request.value;
  {
    StatementScope scope(w.insert);
    w.insert.bindInt(1, next);
    w.insert.bindBlob(2, request.key);
    w.insert.bindInt(3, create ? 1 : 0);
    w.insert.bindInt(4, remove ? 1 : 0);
    w.insert.bindInt(5, key_create_revision);
    w.insert.bindInt(6, id);
    w.insert.bindBlob(7, value);
    w.insert.bindInt(8, remove ? 0 : request.lease);
    w.insert.run();
  }
  revision = next;
  request.revision = next;
  Event event = makeEvent(next, std::string(request.key), create, remove, key_create_revision, id,
                          std::string(value), std::move(old_value));
  if (remove)
    request.removed = KeyValue{event.prev->key, event.prev->value, key_create_revision, next};
  events.bytes += sqlite::eventBytes(event);
  events.events.push_back(std::move(event));
}

bool SqliteStore::Impl::leaseExists(int64_t lease) {
  Statement& statement = statements_->lease_exists;
  StatementScope scope(statement);
  statement.bindInt(1, lease);
  return statement.step();
}

void SqliteStore::Impl::applyLease(WriteRequest& request, int64_t& revision,
                                   sqlite::EventBatch& events) {
  using Op = WriteRequest::Op;
  WriterStatements& w = *statements_;
  if (request.op == Op::kGrant) {
    int64_t id = 0;
    do {
      id = static_cast<int64_t>(lease_ids_() >> 1);  // positive, as etcd's ids
    } while (id == 0 || leaseExists(id));
    const auto expiry = std::chrono::system_clock::now() + std::chrono::seconds(request.ttl);
    StatementScope scope(w.lease_insert);
    w.lease_insert.bindInt(1, id);
    w.lease_insert.bindInt(2, request.ttl);
    w.lease_insert.bindInt(
        3, std::chrono::duration_cast<std::chrono::seconds>(expiry.time_since_epoch()).count());
    w.lease_insert.run();
    request.lease = id;
    return;
  }
  if (!leaseExists(request.lease)) {
    if (request.op == Op::kRevoke) request.error = leaseNotFound(request.lease);
    return;
  }
  if (request.op == Op::kExpire) {
    std::lock_guard lock(lease_mu_);
    auto it = leases_.find(request.lease);
    if (it != leases_.end() && it->second.expiry > Clock::now()) return;  // kept alive meanwhile
  }
  std::vector<std::string> keys;
  {
    StatementScope scope(w.lease_keys);
    w.lease_keys.bindInt(1, request.lease);
    w.lease_keys.bindInt(2, INT64_MAX);
    while (w.lease_keys.step()) {
      keys.emplace_back(w.lease_keys.columnBlob(0));
    }
  }
  // One delete per key, all at the next revision, in this transaction (as etcd's revoke): watchers
  // see them together, in key order, with nothing in between.
  const int64_t base = revision;
  for (const std::string& key : keys) {
    WriteRequest remove;
    remove.op = Op::kRemove;
    remove.key = key;
    revision = base;
    apply(remove, revision, events);
    if (remove.error) throw *remove.error;  // cannot happen: the key is live in this transaction
  }
  StatementScope scope(w.lease_delete);
  w.lease_delete.bindInt(1, request.lease);
  w.lease_delete.run();
  request.lease_gone = true;
}

void SqliteStore::Impl::afterBatch(const std::vector<WriteRequest*>& batch, bool committed) {
  using Op = WriteRequest::Op;
  const bool leases = std::any_of(batch.begin(), batch.end(), [](const WriteRequest* request) {
    return request->op == Op::kGrant || request->op == Op::kRevoke || request->op == Op::kExpire;
  });
  if (!leases) return;
  std::lock_guard lock(lease_mu_);
  const auto now = Clock::now();
  for (const WriteRequest* request : batch) {
    if (request->op == Op::kGrant && committed && !request->error) {
      const auto expiry = now + std::chrono::seconds(request->ttl);
      leases_[request->lease] = LeaseState{request->ttl, expiry, false};
      next_sweep_ = std::min(next_sweep_, expiry);
    } else if ((request->op == Op::kRevoke || request->op == Op::kExpire) && committed &&
               request->lease_gone) {
      leases_.erase(request->lease);
    } else if (request->op == Op::kExpire) {
      // Kept alive meanwhile, or the transaction failed: looked at again when due.
      if (auto it = leases_.find(request->lease); it != leases_.end()) {
        it->second.expiring = false;
        next_sweep_ = std::min(next_sweep_, std::max(it->second.expiry, now + kLeaseSweepInterval));
      }
    }
  }
}

void SqliteStore::Impl::sweepLeases(std::vector<WriteRequest*>& batch) {
  std::lock_guard lock(lease_mu_);
  const auto now = Clock::now();
  auto next = Clock::time_point::max();
  for (auto& [id, lease] : leases_) {
    if (lease.expiring) continue;
    if (lease.expiry > now) {
      next = std::min(next, lease.expiry);
      continue;
    }
    lease.expiring = true;
    auto* request = new WriteRequest;  // NOLINT(cppcoreguidelines-owning-memory): see owned
    request->op = WriteRequest::Op::kExpire;
    request->lease = id;
    request->owned = true;
    batch.push_back(request);
  }
  // Leases expiring close together are swept together.
  next_sweep_ = next == Clock::time_point::max() ? next : std::max(next, now + kLeaseSweepInterval);
}

template <typename Body>
void SqliteStore::Impl::inTransaction(Body&& body) {
  WriterStatements& w = *statements_;
  {
    StatementScope scope(w.begin);
    w.begin.run();
  }
  try {
    body();
    StatementScope scope(w.commit);
    w.commit.run();
  } catch (...) {
    rollback();
    throw;
  }
}

void SqliteStore::Impl::rollback() {
  if (!writer_db_->inTransaction()) return;  // SQLite already rolled back
  WriterStatements& w = *statements_;
  StatementScope scope(w.rollback);
  try {
    w.rollback.run();
  } catch (const StoreError& e) {
    setFatal(StoreError(ErrorCode::kUnavailable, "store " + inQuotes(options_.path) +
                                                     " stopped writing after a failed rollback (" +
                                                     e.what() + "): reopen it"));
  }
}

void SqliteStore::Impl::setMeta(std::string_view name, int64_t value) {
  Statement& statement = statements_->set_meta;
  StatementScope scope(statement);
  statement.bindText(1, name);
  statement.bindInt(2, value);
  statement.run();
}

void SqliteStore::Impl::handleCompact(CompactRequest& request) {
  if (std::optional<StoreError> failure = fatal()) {
    request.error = copyOf(*failure);
    request.done.release();
    return;
  }
  // Only durable revisions may be compacted to: the history kept must cover what readers see.
  const int64_t visible = readers_->visibleRevision();
  if (request.revision > visible) {
    request.error = StoreError(ErrorCode::kFutureRevision,
                               "compaction at revision " + std::to_string(request.revision) +
                                   ": the store is at revision " + std::to_string(visible));
    request.done.release();
    return;
  }
  if (request.revision > compact_target_) {
    try {
      startCompaction(request.revision);
    } catch (const StoreError& e) {
      request.error = copyOf(e);
      request.done.release();
      return;
    }
  }
  compaction_paused_ = false;
  compact_waiters_.push_back(&request);
  finishCompactionWaiters();
}

void SqliteStore::Impl::startCompaction(int64_t revision) {
  // Readers refuse revisions below the new point from this commit on; rows go afterwards, in
  // steps, so that writes are never held up for long.
  inTransaction([&] { setMeta("compact_revision", revision); });
  compact_target_ = revision;
  compacted_.store(revision, std::memory_order_release);
  compaction_paused_ = false;
}

void SqliteStore::Impl::compactionStep() {
  WriterStatements& w = *statements_;
  try {
    if (compacted_through_ < compact_target_) {
      const int64_t low = compacted_through_;
      const int64_t high =
          std::min(compact_target_, low + std::max<int64_t>(options_.compaction_step_revisions, 1));
      inTransaction([&] {
        for (Statement* statement : {&w.delete_superseded, &w.delete_markers}) {
          StatementScope scope(*statement);
          statement->bindInt(1, low);
          statement->bindInt(2, high);
          statement->run();
        }
        setMeta("compacted_through", high);
      });
      compacted_through_ = high;
      if (high == compact_target_ && incremental_vacuum_) {
        StatementScope scope(w.freelist);
        vacuum_pages_left_ = w.freelist.step() ? w.freelist.columnInt(0) : 0;
        vacuum_pending_ = vacuum_pages_left_ > 0;
      }
    } else if (vacuum_pending_) {
      // Give the freed pages back to the file system, a step at a time.
      inTransaction([&] {
        StatementScope scope(w.vacuum_step);
        w.vacuum_step.run();
      });
      vacuum_pages_left_ -= kVacuumStepPages;
      vacuum_pending_ = vacuum_pages_left_ > 0;
    }
  } catch (const StoreError& e) {
    compaction_paused_ = true;
    failCompactionWaiters(e);
    return;
  }
  finishCompactionWaiters();
}

void SqliteStore::Impl::finishCompactionWaiters() {
  std::vector<CompactRequest*> finished;
  std::erase_if(compact_waiters_, [&](CompactRequest* request) {
    if (request->revision > compacted_through_ || vacuum_pending_) return false;
    finished.push_back(request);
    return true;
  });
  for (CompactRequest* request : finished) {
    request->done.release();
  }
}

void SqliteStore::Impl::failCompactionWaiters(const StoreError& error) {
  std::vector<CompactRequest*> waiters;
  waiters.swap(compact_waiters_);
  for (CompactRequest* request : waiters) {
    request->error = copyOf(error);
    request->done.release();
  }
}

void SqliteStore::Impl::periodicTick() {
  const auto now = Clock::now();
  next_tick_ = now + options_.compaction_interval;
  revision_samples_.emplace_back(now, readers_->visibleRevision());
  // The newest sample at least one retention window old is the compaction target.
  const auto horizon = now - options_.compaction_retention;
  std::optional<int64_t> target;
  while (!revision_samples_.empty() && revision_samples_.front().first <= horizon) {
    target = revision_samples_.front().second;
    if (revision_samples_.size() < 2 || revision_samples_[1].first > horizon) break;
    revision_samples_.pop_front();
  }
  compaction_paused_ = false;
  if (!target || *target <= compact_target_ || fatal()) return;
  try {
    startCompaction(*target);
  } catch (const StoreError&) {
    // Tried again at the next tick.
  }
}

int SqliteStore::Impl::walHook(void* arg, sqlite3* /*db*/, const char* /*name*/, int frames) {
  Impl& impl = *static_cast<Impl*>(arg);
  // The log starts over after a checkpoint that copied all of it.
  const int64_t added = frames >= impl.wal_frames_ ? frames - impl.wal_frames_ : frames;
  impl.wal_frames_written_.fetch_add(static_cast<uint64_t>(added), std::memory_order_relaxed);
  impl.wal_frames_ = frames;
  return SQLITE_OK;
}

// Checkpoints copy the log into the database file. A background thread does it in rounds of
// `checkpoint_wal_bytes`, while the writer goes on appending: copying in rounds rather than after
// every commit writes a page changed by many commits once. The log starts over from its
// beginning only after a checkpoint that caught up with it entirely, which under constant load
// never happens by itself: past two rounds, background rounds follow each other (each has less to
// copy than the one before) until little is left, which the writer then copies itself.
void SqliteStore::Impl::maybeCheckpoint() {
  const int64_t round_frames = std::max<int64_t>(options_.checkpoint_wal_bytes / page_size_, 1);
  int64_t copied = checkpointed_frames_.load(std::memory_order_acquire);
  if (copied > wal_frames_) copied = 0;  // the log started over since that round
  const int64_t pending = wal_frames_ - copied;
  if (pending <= 0) return;
  {
    std::unique_lock lock(checkpoint_mu_);
    if (wal_frames_ >= 4 * round_frames) {
      // Four rounds long (the journal_size_limit): the log must stay bounded, so the writer
      // waits for the round under way and copies what is left itself.
      checkpoint_idle_cv_.wait(lock, [&] { return !checkpoint_running_; });
      checkpoint_requested_ = false;
    } else if (pending >= round_frames ||
               (wal_frames_ >= 2 * round_frames && pending > kCatchUpFrames)) {
      // A round; past two rounds, rounds one after the other until little is left.
      if (checkpoint_running_) return;
      checkpoint_requested_ = true;
      lock.unlock();
      checkpoint_cv_.notify_one();
      return;
    } else if (wal_frames_ < 2 * round_frames || checkpoint_running_) {
      return;
    }
  }
  // No write is applied meanwhile: it syncs the log and the database file.
  const auto start = Clock::now();
  int frames = 0;
  int done = 0;
  if (sqlite3_wal_checkpoint_v2(writer_db_->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &frames,
                                &done) == SQLITE_OK) {
    checkpointed_frames_.store(done, std::memory_order_release);
  }
  catch_ups_.fetch_add(1, std::memory_order_relaxed);
  catch_up_us_.fetch_add(
      static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count()),
      std::memory_order_relaxed);
}

void SqliteStore::Impl::checkpointLoop() {
  for (;;) {
    {
      std::unique_lock lock(checkpoint_mu_);
      checkpoint_cv_.wait(lock, [&] { return checkpoint_requested_ || checkpoint_stop_; });
      if (checkpoint_stop_) return;
      checkpoint_requested_ = false;
      checkpoint_running_ = true;
    }
    // A failure (the writer checkpointing, an I/O error) leaves the frames in the log; the writer
    // asks again after its next commit.
    int frames = 0;
    int done = 0;
    if (sqlite3_wal_checkpoint_v2(checkpoint_db_->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                  &frames, &done) == SQLITE_OK) {
      checkpointed_frames_.store(done, std::memory_order_release);
    }
    {
      std::lock_guard lock(checkpoint_mu_);
      checkpoint_running_ = false;
    }
    checkpoint_idle_cv_.notify_all();
  }
}

SqliteStore::SqliteStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SqliteStore::~SqliteStore() = default;

std::unique_ptr<SqliteStore> SqliteStore::open(const SqliteOptions& options) {
  auto impl = std::make_unique<Impl>(options);
  impl->open();
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(impl)));
}

std::optional<KeyValue> SqliteStore::get(std::string_view key) {
  return impl_->get(key);
}

ListResult SqliteStore::list(std::string_view prefix, const ListOptions& options) {
  return impl_->list(prefix, options);
}

int64_t SqliteStore::create(std::string_view key, std::string_view value) {
  return createWithLease(key, value, 0);
}

int64_t SqliteStore::update(std::string_view key, std::string_view value,
                            int64_t expected_mod_revision) {
  return updateWithLease(key, value, expected_mod_revision, 0);
}

int64_t SqliteStore::createWithLease(std::string_view key, std::string_view value, int64_t lease) {
  WriteRequest request;
  request.op = WriteRequest::Op::kCreate;
  request.key = key;
  request.value = value;
  request.lease = lease;
  return impl_->write(request);
}

int64_t SqliteStore::updateWithLease(std::string_view key, std::string_view value,
                                     int64_t expected_mod_revision, int64_t lease) {
  WriteRequest request;
  request.op = WriteRequest::Op::kUpdate;
  request.key = key;
  request.value = value;
  request.expected = expected_mod_revision;
  request.lease = lease;
  return impl_->write(request);
}

int64_t SqliteStore::grantLease(int64_t ttl_seconds) {
  WriteRequest request;
  request.op = WriteRequest::Op::kGrant;
  request.ttl = std::max<int64_t>(ttl_seconds, 1);
  impl_->write(request);
  return request.lease;
}

void SqliteStore::revokeLease(int64_t lease) {
  WriteRequest request;
  request.op = WriteRequest::Op::kRevoke;
  request.lease = lease;
  impl_->write(request);
}

int64_t SqliteStore::keepAliveLease(int64_t lease) {
  return impl_->keepAlive(lease);
}

LeaseStatus SqliteStore::leaseTimeToLive(int64_t lease, bool with_keys) {
  return impl_->timeToLive(lease, with_keys);
}

KeyValue SqliteStore::remove(std::string_view key, int64_t expected_mod_revision) {
  WriteRequest request;
  request.op = WriteRequest::Op::kRemove;
  request.key = key;
  request.expected = expected_mod_revision;
  impl_->write(request);
  return std::move(request.removed);
}

WatchPtr SqliteStore::watch(std::string_view prefix, int64_t start_revision) {
  return impl_->watch(prefix, start_revision);
}

void SqliteStore::compact(int64_t revision) {
  impl_->compact(revision);
}

int64_t SqliteStore::currentRevision() {
  return impl_->currentRevision();
}

int64_t SqliteStore::compactedRevision() {
  return impl_->compactedRevision();
}

SqliteStats SqliteStore::stats() {
  return impl_->stats();
}

std::vector<std::string> SqliteStore::integrityCheck() {
  return impl_->integrityCheck();
}

const std::string& SqliteStore::path() const {
  return impl_->path();
}

}  // namespace skiff::store
