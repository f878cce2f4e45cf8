// The Store conformance suite against the etcd backend, on a real 3-member etcd cluster started
// once for this test binary. Each test gets a store of its own: its keys live under a key prefix
// no other test uses (revisions and compaction are the cluster's, shared; the tests run one after
// the other, so each sees only its own writes make revisions).
#include <atomic>
#include <cstdio>

#include "control/store/etcd_cluster.h"
#include "control/store/etcd_store.h"
#include "tests/control/store/store_conformance.h"

namespace skiff::store::testing {
namespace {

LocalEtcdCluster& sharedCluster() {
  static LocalEtcdCluster cluster({.members = 3});
  return cluster;
}

// One counter for every backend type, so that no two tests share a prefix.
std::atomic<int> prefix_counter{0};

template <bool kMultiplex>
struct EtcdBackendOf {
  std::string prefix;

  EtcdBackendOf() {
    char buffer[32];
    // Fixed width, so that no test's prefix is a prefix of another's.
    std::snprintf(buffer, sizeof(buffer), "/conformance-%05d", prefix_counter++);
    prefix = buffer;
  }

  StorePtr open() {
    return EtcdStore::open({.endpoints = sharedCluster().endpoints(),
                            .key_prefix = prefix,
                            .watch_multiplex = kMultiplex});
  }
};

// All watches of a store on one stream (the default), and each on a stream of its own.
using EtcdBackend = EtcdBackendOf<true>;
using EtcdStreamPerWatchBackend = EtcdBackendOf<false>;

INSTANTIATE_TYPED_TEST_SUITE_P(Etcd, StoreConformance, ::testing::Types<EtcdBackend>);
INSTANTIATE_TYPED_TEST_SUITE_P(EtcdStreamPerWatch, StoreConformance,
                               ::testing::Types<EtcdStreamPerWatchBackend>);

}  // namespace
}  // namespace skiff::store::testing
