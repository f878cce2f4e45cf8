#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "control/store/store.h"

namespace skiff::store {

struct EtcdOptions {
  // Client URLs of the cluster's members ("http://127.0.0.1:2379", "https://10.0.0.1:2379" or
  // "127.0.0.1:2379"). Requests go to one member and fail over to the next when it cannot be
  // reached. https:// members are reached over TLS with the files below.
  std::vector<std::string> endpoints;
  // TLS (kube-apiserver's --etcd-cafile, --etcd-certfile, --etcd-keyfile; PEM files): the CA
  // that signed the members' serving certificates (empty: the system's roots), and the client
  // certificate and key etcd's --client-cert-auth asks for (both or neither).
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // Prepended to every key, and stripped from keys read back (etcd's client namespaces): several
  // clusters, or tests, can share one etcd. Empty = the keys as they are.
  std::string key_prefix;
  // Every request (with its fail-over attempts) ends after this long: kUnavailable.
  std::chrono::milliseconds request_timeout = std::chrono::seconds(5);
  // A watch whose stream broke reconnects (to any member) for this long, resuming after the last
  // revision it delivered; then it ends with kUnavailable.
  std::chrono::milliseconds watch_reconnect_timeout = std::chrono::seconds(30);
  // Events a watch buffers for its reader; beyond that it ends with kCompacted (its reader must
  // relist), so that a stuck reader holds back neither etcd nor the stream's other watchers.
  size_t watch_buffer_events = 10000;
  // Periodic compaction, as kube-apiserver does it: every interval, the cluster is compacted to
  // the revision it had one interval before (0 = never). Several stores on one cluster may all do
  // it; compacting to a point already passed does nothing.
  std::chrono::milliseconds compaction_interval = std::chrono::minutes(5);
  // Every watch of the store shares one gRPC Watch stream (one thread reads it). false: each
  // watch opens a stream of its own, read by a thread of its own (for comparison).
  bool watch_multiplex = true;
};

// The state of a store's shared watch stream.
struct EtcdWatchStats {
  int64_t streams_opened = 0;   // streams opened so far (more than one: it was reconnected)
  int64_t watchers = 0;         // watchers on the stream now
  std::string stream_endpoint;  // the member the stream is on now; "" while there is none
};

namespace etcd_detail {
class WatchMux;
}

// Endpoints from a comma-separated list ("http://a:2379,https://b:2379"); throws
// std::invalid_argument naming the bad entry (empty, no port, or a scheme other than http and
// https). An entry without a scheme is http://.
std::vector<std::string> parseEtcdEndpoints(std::string_view comma_separated);

// The Store on an etcd v3 cluster (3.4 or later), over its gRPC API.
//
// Creates, updates and deletes are single transactions: create compares create_revision == 0,
// update and delete compare mod_revision with the expected revision (or create_revision > 0 when
// none is expected), and a failing compare reads the key in the same transaction to tell
// kNotFound from kConflict. Reads are linearizable. Every Watch is one etcd watcher; when its
// stream breaks it resumes from the last revision it delivered, on any member, and fails with
// kCompacted when that revision has been compacted.
//
// progressRevision() moves with events and with etcd's progress notifications, which etcd sends
// to a quiet watcher every --experimental-watch-progress-notify-interval (10 minutes by default;
// Skiff's tests use 100 ms). etcd 3.4's on-demand progress request is not used: its answer is not
// ordered with the stream's events.
//
// Values above kMaxValueBytes are refused before they are sent (kTooLarge). etcd itself refuses
// requests above --max-request-bytes (1.5 MiB by default, which a value of exactly 1.5 MiB plus its
// key exceeds): run it with --max-request-bytes=2097152 or more.
//
// A request that cannot reach any member within request_timeout is kUnavailable, naming every
// endpoint. A write whose connection broke after it was sent, or that a member took without
// answering within request_timeout, is not retried (it may have been applied): kOutcomeUnknown.
class EtcdStore final : public Store {
 public:
  // Connects and reads the cluster's revision; throws StoreError kUnavailable naming the
  // endpoints when no member answers within request_timeout.
  static std::unique_ptr<EtcdStore> open(const EtcdOptions& options);
  ~EtcdStore() override;

  std::optional<KeyValue> get(std::string_view key) override;
  ListResult list(std::string_view prefix, const ListOptions& options = {}) override;
  int64_t create(std::string_view key, std::string_view value) override;
  int64_t update(std::string_view key, std::string_view value,
                 int64_t expected_mod_revision) override;
  KeyValue remove(std::string_view key, int64_t expected_mod_revision) override;
  WatchPtr watch(std::string_view prefix, int64_t start_revision) override;
  // Compacts the whole cluster (not only key_prefix) and returns once etcd has removed the
  // history. At or below the compaction point it does nothing.
  void compact(int64_t revision) override;
  int64_t currentRevision() override;
  // etcd does not report it: found with reads at old revisions (one read when it did not move).
  int64_t compactedRevision() override;

  // etcd's Lease service. etcd raises a TTL below its minimum (1.5 election timeouts, rounded up
  // to seconds) to it. A revoked or expired lease's keys are deleted in one revision. Each
  // keep-alive is one round on a LeaseKeepAlive stream of its own.
  int64_t grantLease(int64_t ttl_seconds) override;
  void revokeLease(int64_t lease) override;
  int64_t keepAliveLease(int64_t lease) override;
  LeaseStatus leaseTimeToLive(int64_t lease, bool with_keys) override;
  int64_t createWithLease(std::string_view key, std::string_view value, int64_t lease) override;
  int64_t updateWithLease(std::string_view key, std::string_view value,
                          int64_t expected_mod_revision, int64_t lease) override;

  const std::vector<std::string>& endpoints() const;
  // The shared watch stream (with watch_multiplex; zeros without).
  EtcdWatchStats watchStats() const;

  class Impl;  // the connection to the cluster, shared with the store's watches

 private:
  explicit EtcdStore(std::shared_ptr<Impl> impl);
  void compactPeriodically();

  std::shared_ptr<Impl> impl_;
  std::shared_ptr<etcd_detail::WatchMux> watch_mux_;  // with watch_multiplex
  std::mutex compactor_mu_;
  std::condition_variable compactor_cv_;
  bool stopping_ = false;
  std::thread compactor_;
};

}  // namespace skiff::store
