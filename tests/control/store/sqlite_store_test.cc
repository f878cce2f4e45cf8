#include "control/store/sqlite_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/control/store/store_test_util.h"

extern char** environ;

namespace skiff::store {
namespace {

using testing::readEvents;
using testing::storeErrorOf;
using testing::TempDir;
using namespace std::chrono_literals;

class SqliteStoreTest : public ::testing::Test {
 protected:
  SqliteOptions options() const {
    SqliteOptions options;
    options.path = dir_.file("store.db");
    options.fsync = false;
    return options;
  }

  TempDir dir_;
};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Runs a raw SQL statement on a database file, outside the store.
void rawSql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
      << (error ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
}

// The nice value of each of this process's threads named `name`.
std::vector<int> niceOfThreads(const std::string& name) {
  std::vector<int> values;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string line;
    std::getline(comm, line);
    if (line != name) continue;
    errno = 0;
    const int nice =
        ::getpriority(PRIO_PROCESS, static_cast<id_t>(std::stoi(task.path().filename())));
    if (errno == 0) values.push_back(nice);
  }
  return values;
}

// The threads every write goes through run at commit_thread_nice (here above the caller's: allowed
// without CAP_SYS_NICE); the callers' threads keep theirs.
TEST_F(SqliteStoreTest, CommitThreadsRunAtTheirNiceValue) {
  const int caller_nice = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
  SqliteOptions o = options();
  o.commit_thread_nice = caller_nice + 3;
  auto store = SqliteStore::open(o);
  store->create("/k", "v");  // every thread of the pipeline has run
  for (const char* name : {"store-writer", "store-sync", "store-sync2", "store-ack"}) {
    EXPECT_EQ(niceOfThreads(name), std::vector<int>{caller_nice + 3}) << name;
  }
  EXPECT_EQ(::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid())), caller_nice);
}

TEST_F(SqliteStoreTest, PageCachesStayWithinTheirBytes) {
  // A database of ~6 MB of history, read through every connection: SQLite's memory stays within
  // the writer's and the readers' cache sizes (plus schemas and statements), not the database's.
  SqliteOptions o = options();
  o.writer_cache_bytes = 1u << 20;
  o.reader_cache_bytes = 512u << 10;
  o.read_connections = 4;
  auto store = SqliteStore::open(o);
  const std::string value(1024, 'v');
  for (int i = 0; i < 3000; ++i) {
    const std::string key = "/registry/configmaps/default/c" + std::to_string(i);
    const int64_t revision = store->create(key, value);
    store->update(key, value + "2", revision);
  }
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round) {
        EXPECT_EQ(store->list("/registry/configmaps/").kvs.size(), 3000u);
        for (int i = t; i < 3000; i += 7)
          EXPECT_TRUE(store->get("/registry/configmaps/default/c" + std::to_string(i)));
      }
    });
  }
  for (auto& r : readers)
    r.join();
  const SqliteStats stats = store->stats();
  ASSERT_GT(stats.page_count * stats.page_size, int64_t{6} << 20);
  // 1 MiB + 4 x 512 KiB of caches, and 2 MiB for the rest.
  EXPECT_LT(sqlite3_memory_used(), int64_t{5} << 20);
}

TEST_F(SqliteStoreTest, MissingDirectoryIsAClearError) {
  SqliteOptions options = this->options();
  options.path = dir_.file("no/such/dir/store.db");
  StoreError error = storeErrorOf([&] { SqliteStore::open(options); });
  EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(contains(error.what(), options.path)) << error.what();
  EXPECT_TRUE(contains(error.what(), "does not exist")) << error.what();
  EXPECT_FALSE(std::filesystem::exists(dir_.file("no")));
}

TEST_F(SqliteStoreTest, DirectoryAsDatabaseIsAClearError) {
  SqliteOptions options = this->options();
  options.path = dir_.path().string();
  StoreError error = storeErrorOf([&] { SqliteStore::open(options); });
  EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(contains(error.what(), "is a directory")) << error.what();
}

TEST_F(SqliteStoreTest, FileThatIsNotADatabaseIsCorrupt) {
  SqliteOptions options = this->options();
  {
    std::ofstream out(options.path);
    for (int i = 0; i < 200; ++i) {
      out << "this is a text file, not a database\n";
    }
  }
  StoreError error = storeErrorOf([&] { SqliteStore::open(options); });
  EXPECT_EQ(error.code(), ErrorCode::kCorrupt);
  EXPECT_TRUE(contains(error.what(), options.path)) << error.what();
}

TEST_F(SqliteStoreTest, DamagedDatabaseIsCorrupt) {
  SqliteOptions options = this->options();
  {
    auto store = SqliteStore::open(options);
    for (int i = 0; i < 400; ++i) {
      store->create("/d/" + std::to_string(i), std::string(1000, 'v'));
    }
  }
  ASSERT_FALSE(std::filesystem::exists(options.path + "-wal")) << "closing checkpoints the log";
  const auto size = std::filesystem::file_size(options.path);
  {
    std::fstream file(options.path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(size / 4));
    std::string garbage(size / 4, '\xa5');
    file.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  StoreError error = storeErrorOf([&] { SqliteStore::open(options); });
  EXPECT_EQ(error.code(), ErrorCode::kCorrupt);
  EXPECT_TRUE(contains(error.what(), options.path)) << error.what();
}

TEST_F(SqliteStoreTest, ForeignSqliteDatabaseIsRejected) {
  SqliteOptions options = this->options();
  rawSql(options.path, "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);");
  StoreError error = storeErrorOf([&] { SqliteStore::open(options); });
  EXPECT_EQ(error.code(), ErrorCode::kCorrupt);
  EXPECT_TRUE(contains(error.what(), "not a Skiff store")) << error.what();
}

TEST_F(SqliteStoreTest, OnlyOneStoreOpensAFile) {
  auto first = SqliteStore::open(options());
  first->create("/k", "v");
  StoreError error = storeErrorOf([&] { SqliteStore::open(options()); });
  EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(contains(error.what(), "in use")) << error.what();
  first.reset();
  auto second = SqliteStore::open(options());
  EXPECT_EQ(second->get("/k")->value, "v");
}

// A database as the builds before leases wrote it (schema version 1) opens, keeps its data and
// history, and takes leases.
TEST_F(SqliteStoreTest, DatabaseOfSchemaVersionOneIsMigrated) {
  const std::string path = dir_.file("store.db");
  rawSql(path, R"sql(
    CREATE TABLE kv (id INTEGER PRIMARY KEY, name BLOB NOT NULL, created INTEGER NOT NULL,
      deleted INTEGER NOT NULL, create_revision INTEGER NOT NULL, prev_revision INTEGER NOT NULL,
      value BLOB NOT NULL);
    CREATE INDEX kv_name_id ON kv (name, id, deleted);
    CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO meta VALUES ('revision', 3), ('compact_revision', 0), ('compacted_through', 0);
    INSERT INTO kv VALUES (2, CAST('/old/a' AS BLOB), 1, 0, 2, 0, CAST('one' AS BLOB));
    INSERT INTO kv VALUES (3, CAST('/old/a' AS BLOB), 0, 0, 2, 2, CAST('two' AS BLOB));
    PRAGMA application_id=1399548262; PRAGMA user_version=1;
  )sql");
  {
    auto store = SqliteStore::open(options());
    EXPECT_EQ(store->currentRevision(), 3);
    auto kv = store->get("/old/a");
    ASSERT_TRUE(kv.has_value());
    EXPECT_EQ(kv->value, "two");
    EXPECT_EQ(kv->create_revision, 2);
    auto watch = store->watch("/old/", 2);
    auto events = readEvents(*watch, 1);
    ASSERT_EQ(events.size(), 1u);
    ASSERT_TRUE(events[0].prev.has_value());
    EXPECT_EQ(events[0].prev->value, "one");
    const int64_t lease = store->grantLease(60);
    EXPECT_EQ(store->updateWithLease("/old/a", "three", 0, lease), 4);
    EXPECT_EQ(store->leaseTimeToLive(lease, true).keys, std::vector<std::string>{"/old/a"});
    EXPECT_TRUE(store->integrityCheck().empty());
  }
  auto store = SqliteStore::open(options());
  EXPECT_EQ(store->get("/old/a")->value, "three");
  EXPECT_EQ(store->currentRevision(), 4);
}

// An expired lease's deletes go through the writer like any write: they land in order with the
// writes around them, and a watcher sees every event once.
TEST_F(SqliteStoreTest, LeaseExpiryUnderConcurrentWritesKeepsWatchOrder) {
  auto store = SqliteStore::open(options());
  auto watch = store->watch("/x/", store->currentRevision());
  const int64_t lease = store->grantLease(1);
  for (int i = 0; i < 50; ++i) {
    store->createWithLease("/x/leased-" + std::to_string(i), "v", lease);
  }
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      store->create("/x/plain-" + std::to_string(i), "v");
      std::this_thread::sleep_for(1ms);
    }
  });
  for (int i = 0; i < 200 && store->get("/x/leased-49").has_value(); ++i) {
    std::this_thread::sleep_for(50ms);
  }
  stop = true;
  writer.join();
  EXPECT_FALSE(store->get("/x/leased-0").has_value());
  const int64_t last = store->currentRevision();
  std::vector<Event> events;
  while (events.empty() || events.back().kv.mod_revision < last) {
    const size_t before = events.size();
    watch->next(events, 1s);
    ASSERT_GT(events.size(), before) << "the watch stopped before revision " << last;
  }
  // Every revision once, in order, but the expiry's: its 50 deletes share one revision (as etcd's),
  // one after the other with nothing in between.
  for (size_t i = 1; i < events.size(); ++i) {
    if (events[i].kv.mod_revision == events[i - 1].kv.mod_revision) {
      EXPECT_EQ(events[i].type, Event::Type::kDelete) << events[i].kv.key;
      EXPECT_EQ(events[i - 1].type, Event::Type::kDelete) << events[i - 1].kv.key;
    } else {
      EXPECT_EQ(events[i].kv.mod_revision, events[i - 1].kv.mod_revision + 1);
    }
  }
  int deletes = 0;
  int64_t delete_revision = 0;
  for (const Event& event : events) {
    if (event.type == Event::Type::kDelete) {
      ++deletes;
      EXPECT_TRUE(event.kv.key.starts_with("/x/leased-")) << event.kv.key;
      if (delete_revision == 0) delete_revision = event.kv.mod_revision;
      EXPECT_EQ(event.kv.mod_revision, delete_revision) << event.kv.key;
    }
  }
  EXPECT_EQ(deletes, 50);
  EXPECT_EQ(store->list("/x/leased-").count, 0);
}

// A revoke deletes all of a lease's keys at one revision, more of them than a page of replayed
// history: a watch replaying from the database gets every delete, in key order, at that revision
// (a page never ends inside a revision). Compaction past it forgets the deleted keys and keeps a
// key created again after the revoke.
TEST_F(SqliteStoreTest, RevokeOfManyKeysIsOneRevisionInReplayAndCompaction) {
  SqliteOptions options = this->options();
  options.watch_window_events = 64;  // older events come from the database
  auto store = SqliteStore::open(options);
  constexpr int kKeys = 1500;  // above the watch's replay page of 1000
  const int64_t lease = store->grantLease(60);
  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i) {
    char name[32];
    std::snprintf(name, sizeof(name), "/m/%05d", i);
    keys.emplace_back(name);
    store->createWithLease(keys.back(), "v" + std::to_string(i), lease);
  }
  store->create("/m/plain", "p");
  const int64_t before = store->currentRevision();
  store->revokeLease(lease);
  EXPECT_EQ(store->currentRevision(), before + 1);
  const int64_t again = store->create(keys[0], "again");
  EXPECT_EQ(again, before + 2);
  for (int i = 0; i < 100; ++i) {
    store->create("/other/" + std::to_string(i), "x");  // pushes the revoke out of the window
  }

  WatchPtr watch = store->watch("/m/", before);
  std::vector<Event> events = readEvents(*watch, kKeys + 1, 30s);
  ASSERT_EQ(events.size(), static_cast<size_t>(kKeys + 1))
      << (watch->error() ? watch->error()->what() : "");
  for (int i = 0; i < kKeys; ++i) {
    const Event& event = events[static_cast<size_t>(i)];
    EXPECT_EQ(event.type, Event::Type::kDelete);
    EXPECT_EQ(event.kv.key, keys[static_cast<size_t>(i)]);
    EXPECT_EQ(event.kv.mod_revision, before + 1);
    ASSERT_TRUE(event.prev.has_value());
    EXPECT_EQ(event.prev->value, "v" + std::to_string(i));
  }
  EXPECT_EQ(events.back().type, Event::Type::kCreate);
  EXPECT_EQ(events.back().kv.key, keys[0]);
  EXPECT_EQ(events.back().kv.mod_revision, again);
  EXPECT_EQ(store->list("/m/", {.revision = before + 1}).count, 1);

  store->compact(again);
  EXPECT_EQ(store->list("/m/").count, 2);
  EXPECT_EQ(store->get(keys[0])->value, "again");
  EXPECT_FALSE(store->get(keys[1]).has_value());
  EXPECT_FALSE(store->get(keys.back()).has_value());
  // What is left: /m/plain, the key created again, the 100 others.
  EXPECT_EQ(store->stats().rows, 102);
  EXPECT_TRUE(store->integrityCheck().empty());
}

TEST_F(SqliteStoreTest, GroupCommitPutsConcurrentWritesInOneTransaction) {
  SqliteOptions options = this->options();
  options.fsync = true;
  auto store = SqliteStore::open(options);
  constexpr int kThreads = 32;
  constexpr int kWrites = 20;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kWrites; ++i) {
        store->create("/g/" + std::to_string(t) + "/" + std::to_string(i), "v");
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  SqliteStats stats = store->stats();
  EXPECT_EQ(stats.writes, uint64_t{kThreads * kWrites});
  EXPECT_EQ(stats.revision, 1 + kThreads * kWrites);  // an empty store is at revision 1
  EXPECT_LT(stats.commits, stats.writes) << "no two writes shared a transaction";
  EXPECT_EQ(store->list("/g/").count, kThreads * kWrites);
}

// Writes until the database is full: each batch commits whole or not at all.
TEST_F(SqliteStoreTest, FullDatabaseFailsWholeBatchesAndKeepsAcknowledgedWrites) {
  SqliteOptions options = this->options();
  options.quota_bytes = 1 << 20;
  std::mutex mu;
  std::map<std::string, std::string> acknowledged;
  std::set<std::string> failed;
  std::vector<std::string> errors;
  {
    auto store = SqliteStore::open(options);
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0, failures = 0; failures < 3 && i < 1000; ++i) {
          const std::string key = "/q/" + std::to_string(t) + "/" + std::to_string(i);
          const std::string value(8000 + t, static_cast<char>('a' + t));
          try {
            store->create(key, value);
            std::lock_guard lock(mu);
            acknowledged[key] = value;
          } catch (const StoreError& e) {
            std::lock_guard lock(mu);
            failed.insert(key);
            if (e.code() != ErrorCode::kUnavailable || !contains(e.what(), "full")) {
              errors.push_back(e.what());
            }
            ++failures;
          }
        }
      });
    }
    for (auto& thread : threads) {
      thread.join();
    }
    EXPECT_TRUE(errors.empty()) << errors.front();
    EXPECT_FALSE(failed.empty());
    EXPECT_GT(acknowledged.size(), 10u);
    SqliteStats stats = store->stats();
    EXPECT_GE(stats.failed_batches, 1u);
    EXPECT_EQ(stats.writes, acknowledged.size());
    EXPECT_EQ(store->list("/q/").count, static_cast<int64_t>(acknowledged.size()));
    EXPECT_TRUE(store->integrityCheck().empty());
  }
  options.quota_bytes = 0;
  auto store = SqliteStore::open(options);
  for (const auto& [key, value] : acknowledged) {
    auto kv = store->get(key);
    ASSERT_TRUE(kv.has_value()) << key;
    EXPECT_TRUE(kv->value == value) << key;
  }
  for (const std::string& key : failed) {
    EXPECT_FALSE(store->get(key).has_value()) << key;
  }
  store->create("/q/after", std::string(100000, 'x'));
}

TEST_F(SqliteStoreTest, CompactionKeepsTheDatabaseBounded) {
  SqliteOptions options = this->options();
  options.compaction_step_revisions = 500;
  options.checkpoint_wal_bytes = 2 << 20;
  auto store = SqliteStore::open(options);
  constexpr int kKeys = 10;
  constexpr int kCycles = 4;
  constexpr int kWritesPerCycle = 2000;
  const std::string filler(4096, 'f');
  int64_t first_peak = 0;
  int64_t written = 0;
  int64_t largest_db_file = 0;
  int64_t largest_wal_file = 0;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    for (int i = 0; i < kWritesPerCycle; ++i) {
      const std::string key = "/churn/" + std::to_string(i % kKeys);
      const std::string value = std::to_string(cycle * kWritesPerCycle + i) + filler;
      if (cycle == 0 && i < kKeys) {
        store->create(key, value);
      } else {
        store->update(key, value, 0);
      }
      written += static_cast<int64_t>(value.size()) * 2;
    }
    SqliteStats before = store->stats();
    largest_db_file = std::max(largest_db_file, before.db_file_bytes);
    largest_wal_file = std::max(largest_wal_file, before.wal_file_bytes);
    EXPECT_EQ(before.rows, (cycle == 0 ? 0 : kKeys) + kWritesPerCycle);
    store->compact(store->currentRevision());
    SqliteStats after = store->stats();
    largest_db_file = std::max(largest_db_file, after.db_file_bytes);
    largest_wal_file = std::max(largest_wal_file, after.wal_file_bytes);
    EXPECT_EQ(after.rows, kKeys);
    EXPECT_EQ(after.compacted_revision, after.revision);
    EXPECT_LT(after.page_count * 4, before.page_count) << "pages were not released";
    EXPECT_LT(after.freelist_count, 16);
    if (cycle == 0) {
      first_peak = before.page_count;
    } else {
      EXPECT_LE(before.page_count, first_peak + first_peak / 4) << "cycle " << cycle;
    }
  }
  ListResult result = store->list("/churn/");
  ASSERT_EQ(result.count, kKeys);
  for (int k = 0; k < kKeys; ++k) {
    EXPECT_EQ(
        result.kvs[k].value,
        std::to_string((kCycles - 1) * kWritesPerCycle + kWritesPerCycle - kKeys + k) + filler);
  }
  // The files too: the database file never holds much more than one cycle's history, the log
  // is cut back after checkpoints; together far below the bytes written.
  EXPECT_LE(largest_db_file, first_peak * store->stats().page_size * 5 / 4 + (1 << 20));
  EXPECT_LE(largest_wal_file, 5 * options.checkpoint_wal_bytes);
  EXPECT_LT(largest_db_file + largest_wal_file, written / 2);
  store.reset();
  EXPECT_LT(std::filesystem::file_size(options.path), 1u << 20);
}

TEST_F(SqliteStoreTest, InterruptedCompactionResumesAtOpen) {
  SqliteOptions options = this->options();
  {
    auto store = SqliteStore::open(options);
    store->create("/i/k", "0");
    for (int i = 1; i < 300; ++i) {
      store->update("/i/k", std::to_string(i), 0);
    }
  }
  // As if the process stopped right after moving the compaction point.
  // Revisions: the create is 2, update i is i + 2.
  rawSql(options.path, "UPDATE meta SET value = 250 WHERE name = 'compact_revision'");
  auto store = SqliteStore::open(options);
  EXPECT_EQ(store->compactedRevision(), 250);
  EXPECT_STORE_ERROR(ErrorCode::kCompacted, store->list("/i/", {.revision = 249}));
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (store->stats().rows != 52 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(store->stats().rows, 52);  // revisions 250 to 301
  EXPECT_EQ(store->list("/i/", {.revision = 250}).kvs.at(0).value, "248");
  EXPECT_EQ(store->get("/i/k")->value, "299");
}

TEST_F(SqliteStoreTest, PeriodicCompactionFollowsTheRetentionWindow) {
  SqliteOptions options = this->options();
  options.compaction_interval = 50ms;
  options.compaction_retention = 200ms;
  auto store = SqliteStore::open(options);
  const int64_t early = store->create("/p/k", "0");
  for (int i = 1; i < 20; ++i) {
    store->update("/p/k", std::to_string(i), 0);
  }
  const int64_t settled = store->currentRevision();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (store->compactedRevision() < settled && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(store->compactedRevision(), settled);
  EXPECT_GT(store->compactedRevision(), early);
  // What was written just now stays readable for a retention window.
  const int64_t fresh = store->update("/p/k", "fresh", 0);
  EXPECT_LT(store->compactedRevision(), fresh);
  EXPECT_EQ(store->list("/p/", {.revision = settled}).kvs.at(0).value, "19");
}

TEST_F(SqliteStoreTest, WatcherThatFallsBehindIsEndedWithCompacted) {
  SqliteOptions options = this->options();
  options.watch_window_events = 50;
  auto store = SqliteStore::open(options);
  WatchPtr slow = store->watch("/s/", 0);
  std::vector<Event> events;
  ASSERT_TRUE(slow->next(events, 1ms));  // joined the live stream
  for (int i = 0; i < 200; ++i) {
    store->create("/s/" + std::to_string(i), "v");
  }
  EXPECT_FALSE(slow->next(events, 100ms));
  EXPECT_TRUE(events.empty());
  ASSERT_TRUE(slow->error().has_value());
  EXPECT_EQ(slow->error()->code(), ErrorCode::kCompacted);
  EXPECT_TRUE(contains(slow->error()->what(), "behind")) << slow->error()->what();
  // What the watcher does next: relist, watch from the list's revision.
  ListResult relist = store->list("/s/");
  EXPECT_EQ(relist.count, 200);
  WatchPtr again = store->watch("/s/", relist.revision);
  store->create("/s/next", "v");
  events = readEvents(*again, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kv.key, "/s/next");
}

TEST_F(SqliteStoreTest, WatchBehindTheWindowReplaysFromTheDatabaseThenFollows) {
  SqliteOptions options = this->options();
  options.watch_window_events = 64;
  auto store = SqliteStore::open(options);
  const int64_t start = store->currentRevision();
  for (int i = 0; i < 2500; ++i) {
    store->create("/h/" + std::to_string(i), std::to_string(i));
  }
  for (int i = 0; i < 500; ++i) {
    store->create("/other/" + std::to_string(i), "x");
  }
  WatchPtr watch = store->watch("/h/", start);
  std::thread writer([&] {
    for (int i = 2500; i < 2600; ++i) {
      store->create("/h/" + std::to_string(i), std::to_string(i));
      std::this_thread::sleep_for(1ms);
    }
  });
  std::vector<Event> events = readEvents(*watch, 2600, 30s);
  writer.join();
  ASSERT_EQ(events.size(), 2600u) << (watch->error() ? watch->error()->what() : "");
  int64_t previous = start;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_GT(events[i].kv.mod_revision, previous);
    previous = events[i].kv.mod_revision;
    EXPECT_EQ(events[i].kv.key, "/h/" + std::to_string(i));
  }
  EXPECT_EQ(watch->progressRevision(), store->currentRevision());
}

TEST_F(SqliteStoreTest, ReplayedEventsEqualLiveEvents) {
  SqliteOptions options = this->options();
  auto store = SqliteStore::open(options);
  const int64_t start = store->create("/e/seed", "s");
  WatchPtr live = store->watch("/e/", start);
  store->create("/e/a", "a1");
  store->update("/e/a", "a2", 0);
  store->create("/e/b", std::string(70000, 'b'));
  store->remove("/e/a", 0);
  store->create("/e/a", "a3");
  store->update("/e/b", "b2", 0);
  store->remove("/e/seed", 0);
  std::vector<Event> expected = readEvents(*live, 7);
  ASSERT_EQ(expected.size(), 7u);
  live.reset();
  store.reset();
  store = SqliteStore::open(options);  // the in-memory log is empty: history comes from the file
  WatchPtr replay = store->watch("/e/", start);
  std::vector<Event> replayed = readEvents(*replay, 7);
  ASSERT_EQ(replayed.size(), 7u);
  for (size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE(testing::describe(expected[i]));
    EXPECT_EQ(replayed[i].type, expected[i].type);
    EXPECT_EQ(replayed[i].kv.key, expected[i].kv.key);
    EXPECT_EQ(replayed[i].kv.value, expected[i].kv.value);
    EXPECT_EQ(replayed[i].kv.create_revision, expected[i].kv.create_revision);
    EXPECT_EQ(replayed[i].kv.mod_revision, expected[i].kv.mod_revision);
    ASSERT_EQ(replayed[i].prev.has_value(), expected[i].prev.has_value());
    if (expected[i].prev) {
      EXPECT_EQ(replayed[i].prev->key, expected[i].prev->key);
      EXPECT_EQ(replayed[i].prev->value, expected[i].prev->value);
      EXPECT_EQ(replayed[i].prev->create_revision, expected[i].prev->create_revision);
      EXPECT_EQ(replayed[i].prev->mod_revision, expected[i].prev->mod_revision);
    }
  }
}

TEST_F(SqliteStoreTest, WatchOutlivesTheStore) {
  auto store = SqliteStore::open(options());
  WatchPtr watch = store->watch("/", 0);
  std::thread closer([&] {
    std::this_thread::sleep_for(50ms);
    store.reset();
  });
  std::vector<Event> events;
  bool alive = true;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (alive && std::chrono::steady_clock::now() < deadline) {
    alive = watch->next(events, 1s);
  }
  closer.join();
  EXPECT_FALSE(alive);
  ASSERT_TRUE(watch->error().has_value());
  EXPECT_EQ(watch->error()->code(), ErrorCode::kUnavailable);
}

TEST_F(SqliteStoreTest, ReadsSeeConsistentSnapshotsWhileWritesGoOn) {
  auto store = SqliteStore::open(options());
  constexpr int kKeys = 400;
  auto keyOf = [](int i) {
    char buffer[16];
    std::snprintf(buffer, sizeof(buffer), "/s/%04d", i);
    return std::string(buffer);
  };
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < kKeys; ++i) {
      store->create(keyOf(i), std::to_string(i));
    }
    done = true;
  });
  std::vector<std::thread> readers;
  std::atomic<int> lists{0};
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      int64_t last_count = 0;
      while (!done.load()) {
        ListResult result = store->list("/s/");
        ++lists;
        // Keys are created in order: a snapshot holds exactly the first `count` of them.
        ASSERT_EQ(static_cast<int64_t>(result.kvs.size()), result.count);
        ASSERT_GE(result.count, last_count);
        last_count = result.count;
        for (int64_t i = 0; i < result.count; ++i) {
          ASSERT_EQ(result.kvs[i].key, keyOf(static_cast<int>(i)));
          ASSERT_LE(result.kvs[i].mod_revision, result.revision);
        }
        if (result.count > 0) {
          EXPECT_EQ(result.kvs.back().mod_revision, result.revision);
        }
      }
    });
  }
  writer.join();
  for (auto& reader : readers) {
    reader.join();
  }
  EXPECT_GT(lists.load(), 3);
  EXPECT_EQ(store->list("/s/").count, kKeys);
}

// A child process running store_crash_writer, its stdout on a pipe.
struct Child {
  pid_t pid = -1;
  int out = -1;
};

Child spawnWriter(const std::string& db, int round, const char* mode) {
  int fds[2];
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  std::string program = STORE_CRASH_WRITER;
  std::string round_text = std::to_string(round);
  std::string mode_text = mode;
  std::string db_text = db;
  char* argv[] = {program.data(), db_text.data(), round_text.data(), mode_text.data(), nullptr};
  Child child;
  EXPECT_EQ(posix_spawn(&child.pid, program.c_str(), &actions, nullptr, argv, environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  child.out = fds[0];
  return child;
}

// Reads the child's complete lines until `deadline`, its end of output, or `enough` lines.
void readLines(int fd, std::string& pending, std::vector<std::string>& lines,
               std::chrono::steady_clock::time_point deadline, size_t enough = SIZE_MAX) {
  char buffer[65536];
  while (lines.size() < enough) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready <= 0) continue;
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n <= 0) return;
    pending.append(buffer, static_cast<size_t>(n));
    size_t end;
    while ((end = pending.find('\n')) != std::string::npos) {
      lines.push_back(pending.substr(0, end));
      pending.erase(0, end + 1);
    }
  }
}

struct Outcome {
  std::map<std::string, int64_t> created;  // acknowledged creates
  std::set<std::string> removing;          // removes asked for (maybe applied)
  std::map<std::string, int64_t> removed;  // acknowledged removes
  std::map<std::string, std::string> failed;
  int64_t max_revision = 0;
};

Outcome parse(const std::vector<std::string>& lines) {
  Outcome outcome;
  for (const std::string& line : lines) {
    std::istringstream in(line);
    std::string kind, key, rest;
    in >> kind >> key >> rest;
    if (kind == "C") {
      outcome.created[key] = std::stoll(rest);
    } else if (kind == "R") {
      outcome.removing.insert(key);
    } else if (kind == "D") {
      outcome.removed[key] = std::stoll(rest);
    } else if (kind == "F") {
      outcome.failed[key] = rest;
    } else {
      ADD_FAILURE() << "unexpected line from the writer: " << line;
      continue;
    }
    if (kind == "C" || kind == "D") {
      outcome.max_revision = std::max<int64_t>(outcome.max_revision, std::stoll(rest));
    }
  }
  return outcome;
}

void expectAcknowledgedWritesPresent(SqliteStore& store, const Outcome& outcome) {
  EXPECT_TRUE(store.integrityCheck().empty());
  EXPECT_GE(store.currentRevision(), outcome.max_revision);
  for (const auto& [key, revision] : outcome.created) {
    if (outcome.removed.count(key) != 0) {
      EXPECT_FALSE(store.get(key).has_value()) << key << " was removed";
    } else if (outcome.removing.count(key) == 0) {
      auto kv = store.get(key);
      ASSERT_TRUE(kv.has_value()) << "acknowledged create lost: " << key;
      EXPECT_EQ(kv->create_revision, revision) << key;
      EXPECT_EQ(kv->value.rfind("v" + key + "-", 0), 0u) << key;
    }
  }
  for (const auto& [key, code] : outcome.failed) {
    EXPECT_FALSE(store.get(key).has_value()) << "failed create applied: " << key;
  }
}

TEST_F(SqliteStoreTest, AcknowledgedWritesSurviveSigkill) {
  const std::string db = dir_.file("crash.db");
  std::random_device device;
  const unsigned seed = device();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 random(seed);
  std::uniform_int_distribution<int> delay_ms(50, 400);
  size_t total = 0;
  for (int round = 0; round < 8; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    Child child = spawnWriter(db, round, "crash");
    std::string pending;
    std::vector<std::string> lines;
    // Kill once the writer is writing, at a random moment.
    readLines(child.out, pending, lines, std::chrono::steady_clock::now() + 5s, 1);
    readLines(child.out, pending, lines,
              std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms(random)));
    ::kill(child.pid, SIGKILL);
    readLines(child.out, pending, lines, std::chrono::steady_clock::now() + 5s);
    ::close(child.out);
    int status = 0;
    ASSERT_EQ(::waitpid(child.pid, &status, 0), child.pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the writer ended by itself, status " << status;
    Outcome outcome = parse(lines);
    total += outcome.created.size();

    SqliteOptions options;
    options.path = db;
    auto store = SqliteStore::open(options);
    expectAcknowledgedWritesPresent(*store, outcome);
  }
  EXPECT_GT(total, 100u);
}

TEST_F(SqliteStoreTest, IoErrorsFailWritesWithoutHalfAppliedBatches) {
  const std::string db = dir_.file("fsize.db");
  {
    SqliteOptions options;
    options.path = db;
    SqliteStore::open(options)->create("/before", "v");
  }
  Child child = spawnWriter(db, 0, "fsize");
  std::string pending;
  std::vector<std::string> lines;
  readLines(child.out, pending, lines, std::chrono::steady_clock::now() + 20s);
  ::close(child.out);
  int status = 0;
  ASSERT_EQ(::waitpid(child.pid, &status, 0), child.pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  Outcome outcome = parse(lines);
  EXPECT_FALSE(outcome.created.empty());
  ASSERT_FALSE(outcome.failed.empty());
  for (const auto& [key, code] : outcome.failed) {
    EXPECT_TRUE(code == errorCodeName(ErrorCode::kUnavailable) ||
                code == errorCodeName(ErrorCode::kInternal))
        << key << ": " << code;
  }
  SqliteOptions options;
  options.path = db;
  auto store = SqliteStore::open(options);
  expectAcknowledgedWritesPresent(*store, outcome);
  EXPECT_TRUE(store->get("/before").has_value());
  store->create("/after", std::string(100000, 'x'));
}

}  // namespace
}  // namespace skiff::store
