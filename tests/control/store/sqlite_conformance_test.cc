// The Store conformance suite against the embedded SQLite backend.
#include "control/store/sqlite_store.h"
#include "tests/control/store/store_conformance.h"

namespace skiff::store::testing {
namespace {

struct SqliteBackend {
  TempDir dir;

  StorePtr open() {
    SqliteOptions options;
    options.path = dir.file("store.db");
    options.fsync = false;  // durability has its own test
    return SqliteStore::open(options);
  }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, StoreConformance, ::testing::Types<SqliteBackend>);

}  // namespace
}  // namespace skiff::store::testing
