// TtlStore: keys under its prefix get a shared lease (kube-apiserver's --event-ttl), on SQLite.
#include "control/store/ttl_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "control/store/sqlite_store.h"
#include "tests/control/store/store_test_util.h"

namespace skiff::store {
namespace {

using testing::TempDir;
using namespace std::chrono_literals;

class TtlStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<SqliteStore> open() {
    SqliteOptions options;
    options.path = dir_.file("store.db");
    options.fsync = false;
    return SqliteStore::open(options);
  }

  TempDir dir_;
};

TEST_F(TtlStoreTest, WritesUnderThePrefixShareALeaseAndOthersGetNone) {
  auto inner = open();
  TtlStore store(*inner, "/registry/events/", std::chrono::seconds(3600));
  for (int i = 0; i < 500; ++i) {
    store.create("/registry/events/default/e" + std::to_string(i), "v");
  }
  store.create("/registry/pods/default/p", "v");
  EXPECT_EQ(store.leasesGranted(), 1);
  const int64_t first = store.currentLease();
  LeaseStatus status = inner->leaseTimeToLive(first, true);
  // kube-apiserver's lease manager: the TTL plus 5% of it, at most a minute more.
  EXPECT_EQ(status.granted_ttl, 3600 + 60);
  EXPECT_EQ(status.keys.size(), 500u);
  // At most 1,000 writes per lease.
  for (int i = 500; i < 1200; ++i) {
    store.create("/registry/events/default/e" + std::to_string(i), "v");
  }
  EXPECT_EQ(store.leasesGranted(), 2);
  EXPECT_NE(store.currentLease(), first);
  EXPECT_EQ(inner->leaseTimeToLive(first, true).keys.size(), 1000u);
  // Updates attach too (an Event seen again lives on), to the current lease.
  store.update("/registry/events/default/e0", "v2", 0);
  EXPECT_EQ(inner->leaseTimeToLive(first, true).keys.size(), 999u);
  EXPECT_EQ(inner->leaseTimeToLive(store.currentLease(), true).keys.size(), 201u);
  // A write with a lease of its own keeps it.
  const int64_t own = store.grantLease(60);
  store.createWithLease("/registry/events/default/own", "v", own);
  EXPECT_EQ(inner->leaseTimeToLive(own, true).keys,
            std::vector<std::string>{"/registry/events/default/own"});
  EXPECT_EQ(store.leasesGranted(), 2);
}

TEST_F(TtlStoreTest, KeysUnderThePrefixExpireAndOthersStay) {
  auto inner = open();
  TtlStore store(*inner, "/registry/events/", std::chrono::seconds(1));
  auto watch = store.watch("/registry/", store.currentRevision());
  store.create("/registry/events/default/a", "v");
  store.create("/registry/pods/default/p", "v");
  std::vector<Event> events = testing::readEvents(*watch, 3, 15s);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].type, Event::Type::kDelete);
  EXPECT_EQ(events[2].kv.key, "/registry/events/default/a");
  EXPECT_FALSE(store.get("/registry/events/default/a").has_value());
  EXPECT_TRUE(store.get("/registry/pods/default/p").has_value());
}

TEST_F(TtlStoreTest, ASharedLeaseRevokedBehindItsBackIsReplaced) {
  auto inner = open();
  TtlStore store(*inner, "/e/", std::chrono::seconds(3600));
  store.create("/e/a", "v");
  const int64_t first = store.currentLease();
  inner->revokeLease(first);
  EXPECT_FALSE(store.get("/e/a").has_value());
  store.create("/e/b", "v");
  EXPECT_EQ(store.leasesGranted(), 2);
  EXPECT_NE(store.currentLease(), first);
  EXPECT_EQ(inner->leaseTimeToLive(store.currentLease(), true).keys,
            std::vector<std::string>{"/e/b"});
}

}  // namespace
}  // namespace skiff::store
