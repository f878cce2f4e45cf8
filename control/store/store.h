#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace skiff::store {

// The cluster store: a revisioned key-value space with watch, in the shape of etcd v3. Every API
// object lives under `/registry/<resource>/<namespace>/<name>` (cluster-scoped objects without the
// namespace part). Values are opaque bytes (the apiserver stores binary protobuf).
//
// Revisions are global and strictly increasing: every successful create, update or delete makes a
// new revision, and an object's resourceVersion is the revision that last modified it. A new store
// is at revision 1 (as etcd), so 0 always means "not given".
//
// Threading: every method may be called from any thread at once. Writes are acknowledged only once
// durable. A Watch is used by one thread at a time.

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;  // the revision that created the key (since its last delete)
  int64_t mod_revision = 0;     // the revision that last changed it: the resourceVersion
};

struct Event {
  enum class Type : uint8_t { kCreate, kUpdate, kDelete };
  Type type = Type::kCreate;
  // For create and update the new value; for delete the key with mod_revision = the delete's
  // revision and an empty value.
  KeyValue kv;
  // The value before this event (update and delete), as etcd's prev_kv.
  std::optional<KeyValue> prev;
};

enum class ErrorCode : uint8_t {
  kNotFound,        // the key does not exist
  kAlreadyExists,   // create of a key that exists
  kConflict,        // a precondition (expected mod revision) failed
  kCompacted,       // the revision asked for is older than the compaction point (HTTP 410)
  kFutureRevision,  // the revision asked for is newer than the store's
  kTooLarge,        // the value is above the size limit
  kUnavailable,     // the backend cannot be reached or is shutting down
  kCorrupt,         // the data on disk is damaged
  kInternal,
  kLeaseNotFound,   // the lease does not exist (never granted, revoked or expired): etcd's
                    // "requested lease not found"
  kOutcomeUnknown,  // a write was sent but no answer came (the connection broke, the deadline
                    // passed): it may or may not have been applied, so resending is not safe
};

std::string_view errorCodeName(ErrorCode code);

class StoreError : public std::runtime_error {
 public:
  StoreError(ErrorCode code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

struct ListOptions {
  // At most this many keys; 0 = no limit.
  int64_t limit = 0;
  // Start after this key (exclusive), for pagination; empty = from the prefix's start.
  std::string start_after;
  // Read as of this revision (a consistent snapshot across pages); 0 = the current revision.
  // Fails with kCompacted when older than the compaction point.
  int64_t revision = 0;
  // Only count the keys, return no values.
  bool count_only = false;
};

struct ListResult {
  std::vector<KeyValue> kvs;
  int64_t revision = 0;  // the revision the list was read at
  bool more = false;     // keys are left after the last one returned
  int64_t count = 0;     // keys under the prefix at `revision` (all pages together)
};

// A stream of events for a key prefix from a starting revision, in revision order, with no gaps:
// every change from `start_revision` on is delivered exactly once, until the watch is cancelled or
// fails. A watcher that falls too far behind is ended with kCompacted (it must relist).
class Watch {
 public:
  virtual ~Watch() = default;

  // Waits up to `timeout` for events and appends them to `out`. Returns false once the watch has
  // ended (cancelled, store closed, or failed: then error() says why).
  virtual bool next(std::vector<Event>& out, std::chrono::milliseconds timeout) = 0;
  // The revision up to which this watcher has seen everything, even when no event matched its
  // prefix (for bookmarks and progress notifications).
  virtual int64_t progressRevision() const = 0;
  // Ends the watch; next() then returns false. Safe from any thread.
  virtual void cancel() = 0;
  virtual std::optional<StoreError> error() const = 0;
};

using WatchPtr = std::unique_ptr<Watch>;

// A lease as etcd v3's LeaseTimeToLive reports it.
struct LeaseStatus {
  int64_t id = 0;
  int64_t granted_ttl = 0;        // seconds, as granted
  int64_t ttl = 0;                // seconds left before it expires (rounded up)
  std::vector<std::string> keys;  // the keys attached to it, when asked for
};

class Store {
 public:
  virtual ~Store() = default;

  // The value of `key` now, or nullopt.
  virtual std::optional<KeyValue> get(std::string_view key) = 0;
  // The keys under `prefix`, in key order.
  virtual ListResult list(std::string_view prefix, const ListOptions& options = {}) = 0;
  // Creates `key`; kAlreadyExists when it exists. Returns the new revision.
  virtual int64_t create(std::string_view key, std::string_view value) = 0;
  // Replaces `key`'s value when its mod revision equals `expected_mod_revision` (0 = any);
  // kNotFound when absent, kConflict when changed. Returns the new revision.
  virtual int64_t update(std::string_view key, std::string_view value,
                         int64_t expected_mod_revision) = 0;
  // Deletes `key` when its mod revision equals `expected_mod_revision` (0 = any); kNotFound when
  // absent, kConflict when changed. Returns the deleted value; its mod_revision is the delete's.
  virtual KeyValue remove(std::string_view key, int64_t expected_mod_revision) = 0;
  // Events under `prefix` after `start_revision` (exclusive; 0 = from now). kCompacted when
  // `start_revision` is older than the compaction point.
  virtual WatchPtr watch(std::string_view prefix, int64_t start_revision) = 0;
  // Forgets history before `revision`; later reads and watches before it fail with kCompacted.
  virtual void compact(int64_t revision) = 0;
  virtual int64_t currentRevision() = 0;
  // The oldest revision still readable.
  virtual int64_t compactedRevision() = 0;

  // Leases, in the shape of etcd v3's Lease service. A lease lives `ttl` seconds from its grant or
  // its last keep-alive; when it expires or is revoked every key attached to it is deleted (a
  // DELETE event each, in one atomic write). Keys attach with createWithLease/updateWithLease; a
  // write without a lease (lease 0, or create/update) detaches the key. A lease that does not
  // exist, has been revoked or has expired is kLeaseNotFound. Backends without leases throw
  // kInternal from these (the defaults below; lease 0 always works).
  //
  // Grants a lease of `ttl_seconds` (>= 1; a backend may round it up to its minimum, as etcd
  // does) and returns its id (never 0).
  virtual int64_t grantLease(int64_t ttl_seconds);
  // Revokes the lease and deletes every key attached to it.
  virtual void revokeLease(int64_t lease);
  // Renews the lease for its granted TTL; returns that TTL (seconds).
  virtual int64_t keepAliveLease(int64_t lease);
  // The lease's TTLs and, with `with_keys`, the keys attached to it (in key order).
  virtual LeaseStatus leaseTimeToLive(int64_t lease, bool with_keys);
  // create() and update() that attach the key to `lease` (0 = none).
  virtual int64_t createWithLease(std::string_view key, std::string_view value, int64_t lease);
  virtual int64_t updateWithLease(std::string_view key, std::string_view value,
                                  int64_t expected_mod_revision, int64_t lease);

  // The largest value accepted (etcd's default request limit is 1.5 MiB).
  static constexpr size_t kMaxValueBytes = 1536 * 1024;
};

using StorePtr = std::unique_ptr<Store>;

// Keys as Kubernetes lays them out.
std::string objectKey(std::string_view resource, std::string_view ns, std::string_view name);
// The prefix of every object of a resource (optionally in one namespace), ending in '/'.
std::string resourcePrefix(std::string_view resource, std::string_view ns = {});

}  // namespace skiff::store
