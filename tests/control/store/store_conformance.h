#pragma once

// The behaviour every Store backend must have, as a typed GoogleTest suite. A backend joins with a
// fixture type:
//
//   struct MyBackend {
//     MyBackend();      // an empty store to test (a temporary directory, a server, ...)
//     StorePtr open();  // a client of it; called again after the previous one was destroyed, it
//                       // must see the same data
//   };
//   INSTANTIATE_TYPED_TEST_SUITE_P(My, StoreConformance, ::testing::Types<MyBackend>);
//
// Tests never assume where revisions start, only that every successful write makes the next one.
// A lease's revoke or expiry deletes every key of it at one revision, as etcd does. Lease tests end
// with no lease left that could expire during a later test.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "control/store/store.h"
#include "tests/control/store/store_test_util.h"

namespace skiff::store::testing {

// Waits up to `timeout` for `key` to be gone.
inline bool waitGone(Store& store, std::string_view key, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (store.get(key).has_value()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

template <typename Backend>
class StoreConformance : public ::testing::Test {
 protected:
  void SetUp() override { store_ = backend_.open(); }
  void TearDown() override { store_.reset(); }

  Store& store() { return *store_; }
  void reopen() {
    store_.reset();
    store_ = backend_.open();
  }

  Backend backend_;
  StorePtr store_;
};

TYPED_TEST_SUITE_P(StoreConformance);

TYPED_TEST_P(StoreConformance, CreateThenGet) {
  Store& store = this->store();
  const int64_t before = store.currentRevision();
  const int64_t revision = store.create("/registry/pods/default/a", "value-a");
  EXPECT_EQ(revision, before + 1);
  EXPECT_EQ(store.currentRevision(), revision);
  auto kv = store.get("/registry/pods/default/a");
  ASSERT_TRUE(kv.has_value());
  EXPECT_EQ(kv->key, "/registry/pods/default/a");
  EXPECT_EQ(kv->value, "value-a");
  EXPECT_EQ(kv->create_revision, revision);
  EXPECT_EQ(kv->mod_revision, revision);
  EXPECT_FALSE(store.get("/registry/pods/default/b").has_value());
  EXPECT_FALSE(store.get("/registry/pods/default/").has_value());
}

TYPED_TEST_P(StoreConformance, CreateOfAnExistingKeyFails) {
  Store& store = this->store();
  const int64_t revision = store.create("/k", "one");
  EXPECT_STORE_ERROR(ErrorCode::kAlreadyExists, store.create("/k", "two"));
  EXPECT_EQ(store.get("/k")->value, "one");
  EXPECT_EQ(store.currentRevision(), revision);
}

TYPED_TEST_P(StoreConformance, FailedWritesMakeNoRevision) {
  Store& store = this->store();
  const int64_t first = store.create("/k", "v");
  EXPECT_STORE_ERROR(ErrorCode::kAlreadyExists, store.create("/k", "v"));
  EXPECT_STORE_ERROR(ErrorCode::kNotFound, store.update("/missing", "v", 0));
  EXPECT_STORE_ERROR(ErrorCode::kConflict, store.update("/k", "v", first + 100));
  EXPECT_STORE_ERROR(ErrorCode::kNotFound, store.remove("/missing", 0));
  EXPECT_STORE_ERROR(ErrorCode::kConflict, store.remove("/k", first + 100));
  EXPECT_EQ(store.currentRevision(), first);
  EXPECT_EQ(store.update("/k", "w", first), first + 1);
  EXPECT_EQ(store.create("/k2", "v"), first + 2);
  EXPECT_EQ(store.remove("/k2", 0).mod_revision, first + 3);
}

TYPED_TEST_P(StoreConformance, UpdateComparesTheModRevision) {
  Store& store = this->store();
  const int64_t created = store.create("/k", "v1");
  const int64_t updated = store.update("/k", "v2", created);
  EXPECT_GT(updated, created);
  // The revision the caller read is stale now.
  EXPECT_STORE_ERROR(ErrorCode::kConflict, store.update("/k", "v3", created));
  EXPECT_EQ(store.get("/k")->value, "v2");
  // 0 = unconditional.
  const int64_t forced = store.update("/k", "v4", 0);
  auto kv = store.get("/k");
  EXPECT_EQ(kv->value, "v4");
  EXPECT_EQ(kv->mod_revision, forced);
  EXPECT_EQ(kv->create_revision, created);
  EXPECT_STORE_ERROR(ErrorCode::kNotFound, store.update("/other", "v", 0));
  EXPECT_STORE_ERROR(ErrorCode::kNotFound, store.update("/other", "v", created));
}

TYPED_TEST_P(StoreConformance, RemoveChecksPreconditionsAndReturnsTheValue) {
  Store& store = this->store();
  const int64_t created = store.create("/k", "v1");
  const int64_t updated = store.update("/k", "v2", 0);
  EXPECT_STORE_ERROR(ErrorCode::kConflict, store.remove("/k", created));
  EXPECT_TRUE(store.get("/k").has_value());
  KeyValue removed = store.remove("/k", updated);
  EXPECT_EQ(removed.key, "/k");
  EXPECT_EQ(removed.value, "v2");
  EXPECT_EQ(removed.create_revision, created);
  EXPECT_EQ(removed.mod_revision, updated + 1);
  EXPECT_EQ(store.currentRevision(), updated + 1);
  EXPECT_FALSE(store.get("/k").has_value());
  EXPECT_STORE_ERROR(ErrorCode::kNotFound, store.remove("/k", 0));
  EXPECT_STORE_ERROR(ErrorCode::kNotFound, store.update("/k", "v", 0));
}

TYPED_TEST_P(StoreConformance, RecreatedKeyStartsANewLife) {
  Store& store = this->store();
  store.create("/k", "old");
  store.remove("/k", 0);
  const int64_t recreated = store.create("/k", "new");
  auto kv = store.get("/k");
  ASSERT_TRUE(kv.has_value());
  EXPECT_EQ(kv->value, "new");
  EXPECT_EQ(kv->create_revision, recreated);
  EXPECT_EQ(kv->mod_revision, recreated);
}

TYPED_TEST_P(StoreConformance, ConcurrentCompareAndSwapLosesNoUpdate) {
  Store& store = this->store();
  store.create("/counter", "0");
  constexpr int kThreads = 4;
  constexpr int kIncrements = 25;
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIncrements; ++i) {
        for (;;) {
          auto kv = store.get("/counter");
          try {
            store.update("/counter", std::to_string(std::stoi(kv->value) + 1), kv->mod_revision);
            break;
          } catch (const StoreError& e) {
            if (e.code() != ErrorCode::kConflict) {
              ADD_FAILURE() << e.what();
              return;
            }
            ++conflicts;
          }
        }
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(store.get("/counter")->value, std::to_string(kThreads * kIncrements));
}

TYPED_TEST_P(StoreConformance, ListsAPrefixInKeyOrder) {
  Store& store = this->store();
  for (const char* key : {"/a/c", "/a/a", "/ab", "/a/b/x", "/b/a", "/a"}) {
    store.create(key, key);
  }
  ListResult result = store.list("/a/");
  std::vector<std::string> keys;
  for (const KeyValue& kv : result.kvs) {
    keys.push_back(kv.key);
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"/a/a", "/a/b/x", "/a/c"}));
  EXPECT_EQ(result.count, 3);
  EXPECT_FALSE(result.more);
  EXPECT_EQ(result.revision, store.currentRevision());
  EXPECT_EQ(result.kvs[1].value, "/a/b/x");
  EXPECT_EQ(store.list("/c/").count, 0);
  EXPECT_TRUE(store.list("/c/").kvs.empty());
  EXPECT_EQ(store.list("").count, 6);
}

TYPED_TEST_P(StoreConformance, ListsPrefixesEndingInHighBytes) {
  Store& store = this->store();
  const std::string high = "/h\xff";
  store.create(high + "a", "1");
  store.create(high + "\xff", "2");
  store.create("/h\xfe", "3");
  store.create("/i", "4");
  ListResult result = store.list(high);
  ASSERT_EQ(result.kvs.size(), 2u);
  EXPECT_EQ(result.kvs[0].key, high + "a");
  EXPECT_EQ(result.kvs[1].key, high + "\xff");
  EXPECT_EQ(store.list("/h").count, 3);
}

TYPED_TEST_P(StoreConformance, ListsAtAnOldRevision) {
  Store& store = this->store();
  const int64_t r1 = store.create("/p/a", "a1");
  const int64_t r2 = store.update("/p/a", "a2", 0);
  const int64_t r3 = store.create("/p/b", "b1");
  const int64_t r4 = store.remove("/p/a", 0).mod_revision;
  auto at = [&](int64_t revision) {
    ListResult result = store.list("/p/", {.revision = revision});
    EXPECT_EQ(result.revision, revision);
    EXPECT_EQ(result.count, static_cast<int64_t>(result.kvs.size()));
    std::vector<std::string> entries;
    for (const KeyValue& kv : result.kvs) {
      entries.push_back(kv.key + "=" + kv.value + "@" + std::to_string(kv.mod_revision));
    }
    return entries;
  };
  using Entries = std::vector<std::string>;
  EXPECT_EQ(at(r1), (Entries{"/p/a=a1@" + std::to_string(r1)}));
  EXPECT_EQ(at(r2), (Entries{"/p/a=a2@" + std::to_string(r2)}));
  EXPECT_EQ(at(r3), (Entries{"/p/a=a2@" + std::to_string(r2), "/p/b=b1@" + std::to_string(r3)}));
  EXPECT_EQ(at(r4), (Entries{"/p/b=b1@" + std::to_string(r3)}));
  EXPECT_EQ(store.list("/p/", {.revision = r1}).kvs[0].create_revision, r1);
}

TYPED_TEST_P(StoreConformance, ListAtAFutureRevisionFails) {
  Store& store = this->store();
  store.create("/k", "v");
  EXPECT_STORE_ERROR(ErrorCode::kFutureRevision,
                     store.list("/", {.revision = store.currentRevision() + 1}));
}

TYPED_TEST_P(StoreConformance, CountsWithoutValues) {
  Store& store = this->store();
  for (int i = 0; i < 5; ++i) {
    store.create("/n/" + std::to_string(i), "v");
  }
  store.remove("/n/3", 0);
  ListResult result = store.list("/n/", {.count_only = true});
  EXPECT_EQ(result.count, 4);
  EXPECT_TRUE(result.kvs.empty());
  EXPECT_EQ(store.list("/n/", {.limit = 2, .count_only = true}).count, 4);
}

TYPED_TEST_P(StoreConformance, PagesAreConsistentAtOneRevisionWhileWritesGoOn) {
  Store& store = this->store();
  constexpr int kKeys = 120;
  auto keyOf = [](int i) {
    char buffer[32];
    std::snprintf(buffer, sizeof(buffer), "/pg/%04d", i);
    return std::string(buffer);
  };
  for (int i = 0; i < kKeys; i += 2) {
    store.create(keyOf(i), "v0");
  }

  // Writes land everywhere in the key space while the pages are read.
  std::atomic<bool> stop{false};
  std::atomic<int> writes{0};
  std::thread writer([&] {
    for (int round = 0; !stop.load(); ++round) {
      for (int i = 1; i < kKeys && !stop.load(); i += 2) {
        const std::string key = keyOf(i);
        if (round % 2 == 0) {
          store.create(key, "new");
        } else {
          store.remove(key, 0);
        }
        store.update(keyOf(i - 1), "v" + std::to_string(round + 1), 0);
        writes += 2;
      }
    }
  });
  while (writes.load() < 10) {
    std::this_thread::yield();
  }

  ListResult first = store.list("/pg/", {.limit = 7});
  const int64_t revision = first.revision;
  std::vector<KeyValue> paged = first.kvs;
  bool more = first.more;
  int pages = 1;
  auto letWritesHappen = [&] {
    const int seen = writes.load();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (writes.load() < seen + 2 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
  };
  while (more) {
    letWritesHappen();
    ListResult page =
        store.list("/pg/", {.limit = 7, .start_after = paged.back().key, .revision = revision});
    EXPECT_EQ(page.revision, revision);
    EXPECT_EQ(page.count, first.count);
    EXPECT_LE(page.kvs.size(), 7u);
    paged.insert(paged.end(), page.kvs.begin(), page.kvs.end());
    more = page.more;
    ++pages;
    ASSERT_LT(pages, 100);
  }
  ListResult whole = store.list("/pg/", {.revision = revision});
  stop = true;
  writer.join();

  EXPECT_GT(store.currentRevision(), revision) << "the writes did not overlap the pages";
  EXPECT_EQ(static_cast<int64_t>(paged.size()), first.count);
  ASSERT_EQ(paged.size(), whole.kvs.size());
  for (size_t i = 0; i < paged.size(); ++i) {
    EXPECT_EQ(paged[i].key, whole.kvs[i].key);
    EXPECT_EQ(paged[i].value, whole.kvs[i].value);
    EXPECT_EQ(paged[i].mod_revision, whole.kvs[i].mod_revision);
    EXPECT_LE(paged[i].mod_revision, revision);
  }
}

TYPED_TEST_P(StoreConformance, WatchDeliversEventsWithPreviousValues) {
  Store& store = this->store();
  WatchPtr watch = store.watch("/w/", 0);
  const int64_t created = store.create("/w/a", "v1");
  const int64_t updated = store.update("/w/a", "v2", created);
  const int64_t removed = store.remove("/w/a", updated).mod_revision;
  std::vector<Event> events = readEvents(*watch, 3);
  ASSERT_EQ(events.size(), 3u);

  EXPECT_EQ(events[0].type, Event::Type::kCreate);
  EXPECT_EQ(events[0].kv.key, "/w/a");
  EXPECT_EQ(events[0].kv.value, "v1");
  EXPECT_EQ(events[0].kv.create_revision, created);
  EXPECT_EQ(events[0].kv.mod_revision, created);
  EXPECT_FALSE(events[0].prev.has_value());

  EXPECT_EQ(events[1].type, Event::Type::kUpdate);
  EXPECT_EQ(events[1].kv.value, "v2");
  EXPECT_EQ(events[1].kv.create_revision, created);
  EXPECT_EQ(events[1].kv.mod_revision, updated);
  ASSERT_TRUE(events[1].prev.has_value());
  EXPECT_EQ(events[1].prev->value, "v1");
  EXPECT_EQ(events[1].prev->mod_revision, created);

  EXPECT_EQ(events[2].type, Event::Type::kDelete);
  EXPECT_EQ(events[2].kv.key, "/w/a");
  EXPECT_TRUE(events[2].kv.value.empty());
  EXPECT_EQ(events[2].kv.mod_revision, removed);
  ASSERT_TRUE(events[2].prev.has_value());
  EXPECT_EQ(events[2].prev->key, "/w/a");
  EXPECT_EQ(events[2].prev->value, "v2");
  EXPECT_EQ(events[2].prev->create_revision, created);
  EXPECT_EQ(events[2].prev->mod_revision, updated);
  EXPECT_EQ(watch->progressRevision(), removed);
}

TYPED_TEST_P(StoreConformance, WatchFiltersByPrefixAndStillReportsProgress) {
  Store& store = this->store();
  WatchPtr watch = store.watch("/x/", 0);
  for (int i = 0; i < 5; ++i) {
    store.create("/y/" + std::to_string(i), "v");
  }
  const int64_t last = store.currentRevision();
  std::vector<Event> events;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (watch->progressRevision() < last && std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(watch->next(events, std::chrono::milliseconds(50)));
  }
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(watch->progressRevision(), last);
  const int64_t mine = store.create("/x/a", "v");
  events = readEvents(*watch, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kv.key, "/x/a");
  EXPECT_EQ(events[0].kv.mod_revision, mine);
}

TYPED_TEST_P(StoreConformance, WatchNextReturnsAfterItsTimeout) {
  Store& store = this->store();
  WatchPtr watch = store.watch("/idle/", 0);
  std::vector<Event> events;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(watch->next(events, std::chrono::milliseconds(150)));
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(events.empty());
  EXPECT_GE(waited, std::chrono::milliseconds(140));
  EXPECT_LT(waited, std::chrono::seconds(3));
  EXPECT_FALSE(watch->error().has_value());
}

TYPED_TEST_P(StoreConformance, WatchFromAnOldRevisionReplaysThenFollows) {
  Store& store = this->store();
  std::vector<int64_t> revisions;
  revisions.push_back(store.create("/o/k", "0"));
  for (int i = 1; i < 20; ++i) {
    revisions.push_back(store.update("/o/k", std::to_string(i), 0));
  }
  const int64_t start = revisions[4];
  WatchPtr watch = store.watch("/o/", start);
  std::thread writer([&] {
    for (int i = 20; i < 40; ++i) {
      store.update("/o/k", std::to_string(i), 0);
    }
  });
  std::vector<Event> events = readEvents(*watch, 35);
  writer.join();
  std::vector<Event> extra;  // anything beyond the 35 would be a duplicate
  EXPECT_TRUE(watch->next(extra, std::chrono::milliseconds(200)));
  EXPECT_TRUE(extra.empty()) << describe(extra.at(0));
  ASSERT_EQ(events.size(), 35u);
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].kv.mod_revision, start + 1 + static_cast<int64_t>(i))
        << describe(events[i]);
    EXPECT_EQ(events[i].kv.value, std::to_string(i + 5));
    ASSERT_TRUE(events[i].prev.has_value());
    EXPECT_EQ(events[i].prev->value, std::to_string(i + 4));
  }
}

TYPED_TEST_P(StoreConformance, WatchOrderUnderConcurrentWriters) {
  Store& store = this->store();
  constexpr int kThreads = 4;
  constexpr int kKeys = 40;
  const int64_t start = store.currentRevision();
  WatchPtr watch = store.watch("/c/", start);
  std::mutex mu;
  std::vector<int64_t> acknowledged;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<int64_t> mine;
      for (int i = 0; i < kKeys; ++i) {
        const std::string key = "/c/" + std::to_string(t) + "/" + std::to_string(i);
        mine.push_back(store.create(key, "1"));
        mine.push_back(store.update(key, "2", mine.back()));
        if (i % 4 == 0) mine.push_back(store.remove(key, mine.back()).mod_revision);
      }
      std::lock_guard lock(mu);
      acknowledged.insert(acknowledged.end(), mine.begin(), mine.end());
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  const size_t total = acknowledged.size();
  std::vector<Event> events = readEvents(*watch, total);
  ASSERT_EQ(events.size(), total);
  std::sort(acknowledged.begin(), acknowledged.end());
  std::map<std::string, std::vector<Event::Type>> per_key;
  for (size_t i = 0; i < total; ++i) {
    // Strictly increasing, no gap, exactly the acknowledged revisions.
    EXPECT_EQ(events[i].kv.mod_revision, start + 1 + static_cast<int64_t>(i))
        << describe(events[i]);
    EXPECT_EQ(events[i].kv.mod_revision, acknowledged[i]);
    per_key[events[i].kv.key].push_back(events[i].type);
  }
  for (const auto& [key, types] : per_key) {
    ASSERT_GE(types.size(), 2u) << key;
    EXPECT_EQ(types[0], Event::Type::kCreate) << key;
    EXPECT_EQ(types[1], Event::Type::kUpdate) << key;
    if (types.size() == 3) {
      EXPECT_EQ(types[2], Event::Type::kDelete) << key;
    }
  }
}

TYPED_TEST_P(StoreConformance, ManyWatchersSeeTheSameEvents) {
  Store& store = this->store();
  std::vector<WatchPtr> watches;
  for (int i = 0; i < 10; ++i) {
    watches.push_back(store.watch("/m/", 0));
  }
  for (int i = 0; i < 30; ++i) {
    store.create("/m/" + std::to_string(i), std::to_string(i));
  }
  std::vector<Event> reference = readEvents(*watches[0], 30);
  ASSERT_EQ(reference.size(), 30u);
  for (size_t w = 1; w < watches.size(); ++w) {
    std::vector<Event> events = readEvents(*watches[w], 30);
    ASSERT_EQ(events.size(), 30u);
    for (size_t i = 0; i < events.size(); ++i) {
      EXPECT_EQ(events[i].kv.key, reference[i].kv.key);
      EXPECT_EQ(events[i].kv.value, reference[i].kv.value);
      EXPECT_EQ(events[i].kv.mod_revision, reference[i].kv.mod_revision);
    }
  }
}

TYPED_TEST_P(StoreConformance, CancelEndsABlockedNext) {
  Store& store = this->store();
  WatchPtr watch = store.watch("/q/", 0);
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    watch->cancel();
  });
  std::vector<Event> events;
  const auto start = std::chrono::steady_clock::now();
  bool alive = true;
  while (alive && std::chrono::steady_clock::now() - start < std::chrono::seconds(10)) {
    alive = watch->next(events, std::chrono::seconds(30));
  }
  canceller.join();
  EXPECT_FALSE(alive);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_FALSE(watch->error().has_value());
  EXPECT_FALSE(watch->next(events, std::chrono::milliseconds(10)));
}

TYPED_TEST_P(StoreConformance, CompactionForgetsOldRevisions) {
  Store& store = this->store();
  const int64_t r1 = store.create("/z/a", "a1");
  const int64_t r2 = store.update("/z/a", "a2", 0);
  const int64_t r3 = store.update("/z/a", "a3", 0);
  const int64_t r4 = store.create("/z/b", "b1");
  const int64_t r5 = store.remove("/z/b", 0).mod_revision;
  const int64_t r6 = store.create("/z/c", "c1");
  store.compact(r3);
  EXPECT_EQ(store.compactedRevision(), r3);

  EXPECT_STORE_ERROR(ErrorCode::kCompacted, store.list("/z/", {.revision = r1}));
  EXPECT_STORE_ERROR(ErrorCode::kCompacted, store.list("/z/", {.revision = r2}));
  ListResult at3 = store.list("/z/", {.revision = r3});
  ASSERT_EQ(at3.kvs.size(), 1u);
  EXPECT_EQ(at3.kvs[0].value, "a3");
  EXPECT_EQ(at3.kvs[0].create_revision, r1);
  EXPECT_EQ(store.list("/z/", {.revision = r4}).count, 2);
  EXPECT_EQ(store.list("/z/", {.revision = r5}).count, 1);
  EXPECT_EQ(store.list("/z/").count, 2);
  EXPECT_EQ(store.get("/z/a")->value, "a3");

  // A watch needing a forgotten revision fails, at once or on its first next().
  bool compacted = false;
  try {
    WatchPtr old = store.watch("/z/", r2);
    std::vector<Event> events;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (old->next(events, std::chrono::milliseconds(100)) &&
           std::chrono::steady_clock::now() < deadline) {
    }
    EXPECT_TRUE(events.empty());
    ASSERT_TRUE(old->error().has_value());
    compacted = old->error()->code() == ErrorCode::kCompacted;
  } catch (const StoreError& e) {
    compacted = e.code() == ErrorCode::kCompacted;
  }
  EXPECT_TRUE(compacted);

  WatchPtr watch = store.watch("/z/", r3);
  std::vector<Event> events = readEvents(*watch, 3);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].kv.mod_revision, r4);
  EXPECT_EQ(events[1].kv.mod_revision, r5);
  EXPECT_EQ(events[1].type, Event::Type::kDelete);
  ASSERT_TRUE(events[1].prev.has_value());
  EXPECT_EQ(events[1].prev->value, "b1");
  EXPECT_EQ(events[2].kv.mod_revision, r6);

  // Compacting again at or below the point changes nothing.
  store.compact(r2);
  EXPECT_EQ(store.compactedRevision(), r3);
}

TYPED_TEST_P(StoreConformance, CompactionBeyondTheCurrentRevisionFails) {
  Store& store = this->store();
  store.create("/k", "v");
  EXPECT_STORE_ERROR(ErrorCode::kFutureRevision, store.compact(store.currentRevision() + 10));
}

TYPED_TEST_P(StoreConformance, ValuesUpToTheLimit) {
  Store& store = this->store();
  WatchPtr watch = store.watch("/big/", 0);
  std::string largest(Store::kMaxValueBytes, '\0');
  for (size_t i = 0; i < largest.size(); ++i) {
    largest[i] = static_cast<char>(i * 7 + i / 4096);
  }
  const int64_t revision = store.create("/big/a", largest);
  auto kv = store.get("/big/a");
  ASSERT_TRUE(kv.has_value());
  EXPECT_TRUE(kv->value == largest);
  std::string replaced = largest;
  replaced[12345] ^= 1;
  store.update("/big/a", replaced, revision);
  std::vector<Event> events = readEvents(*watch, 2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_TRUE(events[0].kv.value == largest);
  EXPECT_TRUE(events[1].kv.value == replaced);
  ASSERT_TRUE(events[1].prev.has_value());
  EXPECT_TRUE(events[1].prev->value == largest);
  EXPECT_TRUE(store.list("/big/").kvs.at(0).value == replaced);
  store.create("/big/empty", "");
  EXPECT_EQ(store.get("/big/empty")->value, "");
}

TYPED_TEST_P(StoreConformance, ValuesAboveTheLimitAreTooLarge) {
  Store& store = this->store();
  const std::string too_large(Store::kMaxValueBytes + 1, 'x');
  StoreError error = storeErrorOf([&] { store.create("/big/b", too_large); });
  EXPECT_EQ(errorCodeName(error.code()), errorCodeName(ErrorCode::kTooLarge));
  EXPECT_NE(std::string(error.what()).find(std::to_string(Store::kMaxValueBytes)),
            std::string::npos)
      << error.what();
  store.create("/big/b", "small");
  EXPECT_STORE_ERROR(ErrorCode::kTooLarge, store.update("/big/b", too_large, 0));
  EXPECT_EQ(store.get("/big/b")->value, "small");
}

TYPED_TEST_P(StoreConformance, ReopenKeepsDataRevisionAndHistory) {
  const int64_t created = this->store().create("/r/a", "1");
  const int64_t updated = this->store().update("/r/a", "2", 0);
  this->store().create("/r/b", "x");
  const int64_t removed = this->store().remove("/r/b", 0).mod_revision;
  this->reopen();
  Store& store = this->store();
  EXPECT_EQ(store.currentRevision(), removed);
  auto kv = store.get("/r/a");
  ASSERT_TRUE(kv.has_value());
  EXPECT_EQ(kv->value, "2");
  EXPECT_EQ(kv->create_revision, created);
  EXPECT_EQ(kv->mod_revision, updated);
  EXPECT_FALSE(store.get("/r/b").has_value());
  EXPECT_EQ(store.create("/r/c", "y"), removed + 1);

  WatchPtr watch = store.watch("/r/", created);
  std::vector<Event> events = readEvents(*watch, 4);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].type, Event::Type::kUpdate);
  EXPECT_EQ(events[0].prev->value, "1");
  EXPECT_EQ(events[1].type, Event::Type::kCreate);
  EXPECT_EQ(events[2].type, Event::Type::kDelete);
  EXPECT_EQ(events[2].prev->value, "x");
  EXPECT_EQ(events[3].kv.key, "/r/c");
}

TYPED_TEST_P(StoreConformance, LeaseAttachesKeysAndReportsItsTimeToLive) {
  Store& store = this->store();
  const int64_t lease = store.grantLease(60);
  EXPECT_NE(lease, 0);
  const int64_t before = store.currentRevision();
  EXPECT_EQ(store.createWithLease("/l/a", "1", lease), before + 1);
  store.createWithLease("/l/b", "2", lease);
  store.create("/l/c", "3");
  store.updateWithLease("/l/c", "3", 0, lease);
  // A write without the lease detaches the key.
  store.update("/l/b", "2'", 0);
  LeaseStatus status = store.leaseTimeToLive(lease, true);
  EXPECT_EQ(status.id, lease);
  EXPECT_EQ(status.granted_ttl, 60);
  EXPECT_GT(status.ttl, 50);
  EXPECT_LE(status.ttl, 60);
  EXPECT_EQ(status.keys, (std::vector<std::string>{"/l/a", "/l/c"}));
  EXPECT_TRUE(store.leaseTimeToLive(lease, false).keys.empty());
  EXPECT_EQ(store.keepAliveLease(lease), 60);
  store.revokeLease(lease);
  EXPECT_FALSE(store.get("/l/a").has_value());
  EXPECT_TRUE(store.get("/l/b").has_value());
  EXPECT_FALSE(store.get("/l/c").has_value());
}

TYPED_TEST_P(StoreConformance, RevokeDeletesEveryAttachedKeyAtOnce) {
  Store& store = this->store();
  const int64_t lease = store.grantLease(60);
  store.createWithLease("/rv/a", "1", lease);
  store.createWithLease("/rv/b", "2", lease);
  store.createWithLease("/rv/c", "3", lease);
  store.create("/rv/other", "4");
  const int64_t before = store.currentRevision();
  WatchPtr watch = store.watch("/rv/", before);
  store.revokeLease(lease);
  std::vector<Event> events = readEvents(*watch, 3);
  ASSERT_EQ(events.size(), 3u);
  std::set<std::string> keys;
  // One revision for all three deletes (etcd's revoke is one transaction), and no more.
  for (const Event& event : events) {
    EXPECT_EQ(event.type, Event::Type::kDelete) << describe(event);
    ASSERT_TRUE(event.prev.has_value());
    EXPECT_EQ(event.prev->value,
              std::string(1, static_cast<char>('1' + (event.kv.key.back() - 'a'))));
    EXPECT_EQ(event.kv.mod_revision, before + 1) << describe(event);
    keys.insert(event.kv.key);
  }
  EXPECT_EQ(keys, (std::set<std::string>{"/rv/a", "/rv/b", "/rv/c"}));
  EXPECT_EQ(store.currentRevision(), before + 1);
  // A watch from before the revoke replays the same deletes at the same revision.
  WatchPtr replay = store.watch("/rv/", before);
  std::vector<Event> replayed = readEvents(*replay, 3);
  ASSERT_EQ(replayed.size(), 3u);
  for (size_t i = 0; i < replayed.size(); ++i) {
    EXPECT_EQ(replayed[i].type, Event::Type::kDelete) << describe(replayed[i]);
    EXPECT_EQ(replayed[i].kv.key, events[i].kv.key);
    EXPECT_EQ(replayed[i].kv.mod_revision, before + 1) << describe(replayed[i]);
  }
  EXPECT_EQ(store.list("/rv/").kvs.size(), 1u);
  EXPECT_TRUE(store.get("/rv/other").has_value());
  // Gone: every lease call on it fails the same way.
  EXPECT_STORE_ERROR(ErrorCode::kLeaseNotFound, store.leaseTimeToLive(lease, false));
  EXPECT_STORE_ERROR(ErrorCode::kLeaseNotFound, store.keepAliveLease(lease));
  EXPECT_STORE_ERROR(ErrorCode::kLeaseNotFound, store.revokeLease(lease));
  EXPECT_STORE_ERROR(ErrorCode::kLeaseNotFound, store.createWithLease("/rv/d", "5", lease));
}

TYPED_TEST_P(StoreConformance, UnknownLeaseIsLeaseNotFound) {
  Store& store = this->store();
  const int64_t before = store.currentRevision();
  constexpr int64_t kUnknown = 0x123456789;
  StoreError error = storeErrorOf([&] { store.createWithLease("/u/a", "v", kUnknown); });
  EXPECT_EQ(errorCodeName(error.code()), errorCodeName(ErrorCode::kLeaseNotFound));
  EXPECT_NE(std::string(error.what()).find("requested lease not found"), std::string::npos)
      << error.what();
  store.create("/u/b", "v");
  EXPECT_STORE_ERROR(ErrorCode::kLeaseNotFound, store.updateWithLease("/u/b", "w", 0, kUnknown));
  EXPECT_STORE_ERROR(ErrorCode::kLeaseNotFound, store.revokeLease(kUnknown));
  EXPECT_STORE_ERROR(ErrorCode::kLeaseNotFound, store.keepAliveLease(kUnknown));
  EXPECT_STORE_ERROR(ErrorCode::kLeaseNotFound, store.leaseTimeToLive(kUnknown, true));
  EXPECT_FALSE(store.get("/u/a").has_value());
  EXPECT_EQ(store.get("/u/b")->value, "v");
  EXPECT_EQ(store.currentRevision(), before + 1);
}

TYPED_TEST_P(StoreConformance, ExpiredLeaseDeletesItsKeysWithDeleteEvents) {
  Store& store = this->store();
  const int64_t lease = store.grantLease(1);
  store.createWithLease("/e/a", "1", lease);
  store.createWithLease("/e/b", "2", lease);
  store.create("/e/kept", "3");
  const int64_t before = store.currentRevision();
  WatchPtr watch = store.watch("/e/", before);
  std::vector<Event> events = readEvents(*watch, 2, std::chrono::seconds(15));
  ASSERT_EQ(events.size(), 2u);
  // Both keys go at one revision, the one after `before` (nothing else writes under /e/).
  for (const Event& event : events) {
    EXPECT_EQ(event.type, Event::Type::kDelete) << describe(event);
    ASSERT_TRUE(event.prev.has_value());
    EXPECT_GT(event.kv.mod_revision, before) << describe(event);
    EXPECT_EQ(event.kv.mod_revision, events[0].kv.mod_revision) << describe(event);
  }
  EXPECT_FALSE(store.get("/e/a").has_value());
  EXPECT_FALSE(store.get("/e/b").has_value());
  EXPECT_TRUE(store.get("/e/kept").has_value());
  EXPECT_STORE_ERROR(ErrorCode::kLeaseNotFound, store.leaseTimeToLive(lease, false));
  EXPECT_STORE_ERROR(ErrorCode::kLeaseNotFound, store.keepAliveLease(lease));
}

TYPED_TEST_P(StoreConformance, KeepAliveExtendsALease) {
  Store& store = this->store();
  const int64_t lease = store.grantLease(2);
  store.createWithLease("/ka/a", "1", lease);
  // Twice its TTL, kept alive every 400 ms.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(4);
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_EQ(store.keepAliveLease(lease), 2);
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
  }
  EXPECT_TRUE(store.get("/ka/a").has_value());
  EXPECT_GE(store.leaseTimeToLive(lease, false).ttl, 1);
  // Then left alone, it expires.
  EXPECT_TRUE(waitGone(store, "/ka/a", std::chrono::seconds(15)));
  EXPECT_STORE_ERROR(ErrorCode::kLeaseNotFound, store.leaseTimeToLive(lease, false));
}

TYPED_TEST_P(StoreConformance, LeasesSurviveReopen) {
  const int64_t lasting = this->store().grantLease(120);
  const int64_t brief = this->store().grantLease(2);
  this->store().createWithLease("/ro/a", "1", lasting);
  this->store().createWithLease("/ro/b", "2", brief);
  this->reopen();
  Store& store = this->store();
  LeaseStatus status = store.leaseTimeToLive(lasting, true);
  EXPECT_EQ(status.granted_ttl, 120);
  EXPECT_GT(status.ttl, 100);
  EXPECT_EQ(status.keys, (std::vector<std::string>{"/ro/a"}));
  // The brief one still expires after the reopen.
  EXPECT_TRUE(waitGone(store, "/ro/b", std::chrono::seconds(15)));
  EXPECT_TRUE(store.get("/ro/a").has_value());
  store.revokeLease(lasting);
  EXPECT_FALSE(store.get("/ro/a").has_value());
}

REGISTER_TYPED_TEST_SUITE_P(
    StoreConformance, CreateThenGet, CreateOfAnExistingKeyFails, FailedWritesMakeNoRevision,
    UpdateComparesTheModRevision, RemoveChecksPreconditionsAndReturnsTheValue,
    RecreatedKeyStartsANewLife, ConcurrentCompareAndSwapLosesNoUpdate, ListsAPrefixInKeyOrder,
    ListsPrefixesEndingInHighBytes, ListsAtAnOldRevision, ListAtAFutureRevisionFails,
    CountsWithoutValues, PagesAreConsistentAtOneRevisionWhileWritesGoOn,
    WatchDeliversEventsWithPreviousValues, WatchFiltersByPrefixAndStillReportsProgress,
    WatchNextReturnsAfterItsTimeout, WatchFromAnOldRevisionReplaysThenFollows,
    WatchOrderUnderConcurrentWriters, ManyWatchersSeeTheSameEvents, CancelEndsABlockedNext,
    CompactionForgetsOldRevisions, CompactionBeyondTheCurrentRevisionFails, ValuesUpToTheLimit,
    ValuesAboveTheLimitAreTooLarge, ReopenKeepsDataRevisionAndHistory,
    LeaseAttachesKeysAndReportsItsTimeToLive, RevokeDeletesEveryAttachedKeyAtOnce,
    UnknownLeaseIsLeaseNotFound, ExpiredLeaseDeletesItsKeysWithDeleteEvents, KeepAliveExtendsALease,
    LeasesSurviveReopen);

}  // namespace skiff::store::testing
