#include "control/store/etcd_store.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "etcdserverpb/rpc.pb.h"
#include "mvccpb/kv.pb.h"

namespace skiff::store {
namespace {

using Clock = std::chrono::steady_clock;
using etcdserverpb::Compare;
using WatchStream =
    grpc::ClientReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>;

std::string quoted(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// The end of the range of every key starting with `prefix` (etcd's clientv3.GetPrefixRangeEnd):
// the prefix with its last byte below 0xff incremented; "\0" (no end) when there is none.
std::string prefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    auto last = static_cast<unsigned char>(prefix.back());
    if (last < 0xff) {
      prefix.back() = static_cast<char>(last + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');
}

// etcd refuses an empty key; "\0" is the smallest key there is.
std::string rangeStart(std::string key) {
  return key.empty() ? std::string(1, '\0') : key;
}

// gRPC takes deadlines on the system clock.
std::chrono::system_clock::time_point grpcDeadline(Clock::time_point deadline) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(deadline - Clock::now());
}

int64_t millisOf(std::chrono::milliseconds d) {
  return static_cast<int64_t>(d.count());
}

// gRPC failures that say the request never reached a member (safe to send elsewhere even when it
// is a write): no connection, or etcd's "no leader" guard, which runs before anything is applied.
bool notSent(const grpc::Status& status) {
  if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return false;
  const std::string& message = status.error_message();
  return contains(message, "failed to connect") || contains(message, "etcdserver: no leader") ||
         contains(message, "Connection refused") || contains(message, "not connected");
}

}  // namespace

std::vector<std::string> parseEtcdEndpoints(std::string_view comma_separated) {
  std::vector<std::string> endpoints;
  size_t start = 0;
  while (start <= comma_separated.size()) {
    size_t comma = comma_separated.find(',', start);
    if (comma == std::string_view::npos) comma = comma_separated.size();
    std::string entry(comma_separated.substr(start, comma - start));
    start = comma + 1;
    const auto first = entry.find_first_not_of(" \t");
    const auto last = entry.find_last_not_of(" \t");
    entry = first == std::string::npos ? "" : entry.substr(first, last - first + 1);
    if (entry.empty()) {
      throw std::invalid_argument("etcd endpoint " + std::to_string(endpoints.size() + 1) + " in " +
                                  quoted(comma_separated) + " is empty");
    }
    std::string address = entry;
    if (const auto scheme = entry.find("://"); scheme != std::string::npos) {
      if (entry.substr(0, scheme) != "http") {
        throw std::invalid_argument("etcd endpoint " + quoted(entry) +
                                    ": only http:// is supported (no TLS yet)");
      }
      address = entry.substr(scheme + 3);
    }
    while (!address.empty() && address.back() == '/')
      address.pop_back();
    const auto colon = address.rfind(':');
    if (colon == std::string::npos || colon + 1 == address.size() || colon == 0 ||
        address.find_first_not_of("0123456789", colon + 1) != std::string::npos) {
      throw std::invalid_argument("etcd endpoint " + quoted(entry) +
                                  ": expected http://HOST:PORT or HOST:PORT");
    }
    endpoints.push_back("http://" + address);
  }
  return endpoints;
}

class EtcdStore::Impl : public std::enable_shared_from_this<Impl> {
 public:
  struct Member {
    std::string url;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<etcdserverpb::KV::Stub> kv;
    std::unique_ptr<etcdserverpb::Watch::Stub> watch;
  };

  // An open watch stream whose creation etcd confirmed.
  struct Stream {
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<WatchStream> stream;
    int64_t watch_id = 0;
    int64_t created_revision = 0;  // the cluster's revision when the watcher was created
    size_t member = 0;
  };

  explicit Impl(EtcdOptions options) : options_(std::move(options)) {
    if (options_.endpoints.empty()) {
      throw StoreError(ErrorCode::kUnavailable, "no etcd endpoints given");
    }
    for (const std::string& endpoint : options_.endpoints) {
      std::string url = parseEtcdEndpoints(endpoint).at(0);
      grpc::ChannelArguments args;
      args.SetMaxReceiveMessageSize(-1);
      args.SetMaxSendMessageSize(-1);
      // Notice a member that vanished without closing its connections (watch streams idle).
      args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
      args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
      args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
      // Reconnect quickly to a member that comes back.
      args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
      args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
      // One connection per member per store, not shared with other stores in the process.
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      Member member;
      member.url = url;
      member.channel = grpc::CreateCustomChannel(url.substr(std::string("http://").size()),
                                                 grpc::InsecureChannelCredentials(), args);
      member.kv = etcdserverpb::KV::NewStub(member.channel);
      member.watch = etcdserverpb::Watch::NewStub(member.channel);
      members_.push_back(std::move(member));
    }
  }

  const EtcdOptions& options() const { return options_; }

  std::string full(std::string_view key) const { return options_.key_prefix + std::string(key); }

  KeyValue toKeyValue(const mvccpb::KeyValue& kv) const {
    KeyValue out;
    out.key = kv.key().substr(std::min(kv.key().size(), options_.key_prefix.size()));
    out.value = kv.value();
    out.create_revision = kv.create_revision();
    out.mod_revision = kv.mod_revision();
    return out;
  }

  std::string endpointList() const {
    std::string list;
    for (const Member& member : members_) {
      if (!list.empty()) list += ", ";
      list += member.url;
    }
    return list;
  }

  StoreError unreachable(std::string_view what, const std::vector<std::string>& failures) const {
    std::string message = "etcd unreachable: " + std::string(what) + " got no answer within " +
                          std::to_string(millisOf(options_.request_timeout)) + " ms from ";
    for (size_t i = 0; i < members_.size(); ++i) {
      if (i > 0) message += ", ";
      message += members_[i].url;
      if (!failures[i].empty()) message += " (" + failures[i] + ")";
    }
    return StoreError(ErrorCode::kUnavailable, message);
  }

  StoreError translate(const grpc::Status& status, const Member& member,
                       std::string_view what) const {
    const std::string& message = status.error_message();
    const std::string where = "etcd at " + member.url + ": " + std::string(what) + ": ";
    if (contains(message, "required revision has been compacted")) {
      return StoreError(ErrorCode::kCompacted, where + message);
    }
    if (contains(message, "future revision")) {
      return StoreError(ErrorCode::kFutureRevision, where + message);
    }
    if (contains(message, "request is too large")) {
      return StoreError(ErrorCode::kTooLarge,
                        where + message + " (etcd's --max-request-bytes is below " +
                            std::to_string(kMaxValueBytes) + " bytes plus the key)");
    }
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
        status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
        contains(message, "database space exceeded")) {
      return StoreError(ErrorCode::kUnavailable, where + message);
    }
    return StoreError(ErrorCode::kInternal, where + message);
  }

  // Whether `member` has a connection now, connecting (or waiting for its reconnect backoff) at
  // most until `until`. A member whose last attempt failed is skipped at once on the first round
  // when there are others to try.
  bool connected(Member& member, Clock::time_point until, bool first_round) {
    grpc_connectivity_state state = member.channel->GetState(true);
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE && first_round && members_.size() > 1) {
      return false;
    }
    bool changed = false;
    while (state != GRPC_CHANNEL_READY) {
      if (changed && state == GRPC_CHANNEL_TRANSIENT_FAILURE) return false;  // it tried, failed
      if (!member.channel->WaitForStateChange(state, grpcDeadline(until))) return false;
      changed = true;
      state = member.channel->GetState(true);
    }
    return true;
  }

  // Runs `attempt(member, deadline)` on the preferred member, failing over to the others while
  // they cannot be reached (and, for `idempotent` requests, when the connection broke during the
  // request), until request_timeout. `attempt` returns the gRPC status.
  template <typename Attempt>
  void withFailover(std::string_view what, bool idempotent, Attempt&& attempt) {
    const auto deadline = Clock::now() + options_.request_timeout;
    std::vector<std::string> failures(members_.size());
    const size_t count = members_.size();
    size_t index = preferred_.load(std::memory_order_relaxed);
    for (size_t tries = 0;; ++tries) {
      const size_t i = index % count;
      Member& member = members_[i];
      const bool first_round = tries < count;
      // With several members a silent one may hold us at most a second before the next is tried.
      const auto connect_until =
          count > 1 ? std::min(deadline, Clock::now() + std::chrono::seconds(1)) : deadline;
      if (!connected(member, connect_until, first_round)) {
        failures[i] = "cannot connect";
      } else {
        grpc::Status status = attempt(member, deadline);
        if (status.ok()) {
          preferred_.store(i, std::memory_order_relaxed);
          return;
        }
        const bool retry =
            status.error_code() == grpc::StatusCode::UNAVAILABLE && (idempotent || notSent(status));
        if (!retry) {
          if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
            throw StoreError(ErrorCode::kUnavailable,
                             "etcd at " + member.url + ": " + std::string(what) +
                                 ": the connection failed during the request, its outcome is "
                                 "unknown: " +
                                 status.error_message());
          }
          if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
            failures[i] = status.error_message();
            throw unreachable(what, failures);
          }
          throw translate(status, member, what);
        }
        failures[i] = status.error_message();
      }
      ++index;
      if (Clock::now() >= deadline) throw unreachable(what, failures);
      if ((tries + 1) % count == 0) {
        // Every member failed once: wait a little (a leader election, a restart) and go round.
        std::this_thread::sleep_for(
            std::min<Clock::duration>(std::chrono::milliseconds(100), deadline - Clock::now()));
      }
    }
  }

  template <typename Request, typename Response>
  using Method = grpc::Status (etcdserverpb::KV::Stub::*)(grpc::ClientContext*, const Request&,
                                                          Response*);

  template <typename Request, typename Response>
  Response call(Method<Request, Response> method, const Request& request, bool idempotent,
                std::string_view what) {
    Response response;
    withFailover(what, idempotent, [&](Member& member, Clock::time_point deadline) {
      grpc::ClientContext context;
      context.set_deadline(grpcDeadline(deadline));
      response.Clear();
      return ((*member.kv).*method)(&context, request, &response);
    });
    return response;
  }

  etcdserverpb::RangeResponse range(const etcdserverpb::RangeRequest& request,
                                    std::string_view what) {
    return call(&etcdserverpb::KV::Stub::Range, request, true, what);
  }

  etcdserverpb::TxnResponse txn(const etcdserverpb::TxnRequest& request, std::string_view what) {
    return call(&etcdserverpb::KV::Stub::Txn, request, false, what);
  }

  int64_t currentRevision() {
    etcdserverpb::RangeRequest request;
    request.set_key(std::string(1, '\0'));
    request.set_count_only(true);
    return range(request, "read the revision").header().revision();
  }

  // Whether reads at `revision` still work (not compacted).
  bool readable(int64_t revision) {
    etcdserverpb::RangeRequest request;
    request.set_key(std::string(1, '\0'));
    request.set_count_only(true);
    request.set_revision(revision);
    try {
      range(request, "probe the compaction point");
      return true;
    } catch (const StoreError& e) {
      if (e.code() == ErrorCode::kCompacted) return false;
      throw;
    }
  }

  void noteCompacted(int64_t revision) {
    int64_t known = compacted_.load();
    while (revision > known && !compacted_.compare_exchange_weak(known, revision)) {
    }
  }

  int64_t compactedRevision() {
    const int64_t known = compacted_.load();
    int64_t unreadable = std::max<int64_t>(known, 1);
    // Compaction only moves forward: when `known` is still readable, it is the answer.
    if (readable(unreadable)) return known;
    int64_t good = currentRevision();
    while (good - unreadable > 1) {
      const int64_t middle = unreadable + (good - unreadable) / 2;
      (readable(middle) ? good : unreadable) = middle;
    }
    noteCompacted(good);
    return good;
  }

  // Opens a watch stream for [key, end) from `start_revision` (inclusive; 0 = now) on the first
  // member that answers. Throws kUnavailable (none did) or kCompacted.
  Stream openStream(const std::string& key, const std::string& end, int64_t start_revision,
                    std::string_view what) {
    Stream result;
    withFailover(what, true, [&](Member& member, Clock::time_point) {
      auto context = std::make_unique<grpc::ClientContext>();
      std::unique_ptr<WatchStream> stream = member.watch->Watch(context.get());
      etcdserverpb::WatchRequest request;
      auto* create = request.mutable_create_request();
      create->set_key(key);
      create->set_range_end(end);
      create->set_start_revision(start_revision);
      create->set_progress_notify(true);
      create->set_prev_kv(true);
      etcdserverpb::WatchResponse response;
      if (!stream->Write(request) || !stream->Read(&response)) {
        // The stream is dead already: Finish() says why.
        grpc::Status status = stream->Finish();
        if (status.ok()) status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream closed");
        return status;
      }
      if (!response.created() || response.canceled()) {
        context->TryCancel();
        stream->Finish();
        if (response.compact_revision() > 0 || contains(response.cancel_reason(), "compacted")) {
          noteCompacted(response.compact_revision());
          throw StoreError(ErrorCode::kCompacted,
                           std::string(what) + ": revision " + std::to_string(start_revision) +
                               " is compacted (compacted to " +
                               std::to_string(response.compact_revision()) + ")");
        }
        throw StoreError(ErrorCode::kInternal,
                         "etcd at " + member.url + ": " + std::string(what) +
                             ": watch not created: " + response.cancel_reason());
      }
      result.context = std::move(context);
      result.stream = std::move(stream);
      result.watch_id = response.watch_id();
      result.created_revision = response.header().revision();
      result.member = static_cast<size_t>(&member - members_.data());
      return grpc::Status::OK;
    });
    return result;
  }

 private:
  EtcdOptions options_;
  std::vector<Member> members_;
  std::atomic<size_t> preferred_{0};
  std::atomic<int64_t> compacted_{0};
};

namespace {

// One etcd watcher on its own stream, read by its own thread into a bounded queue.
class EtcdWatch final : public Watch {
 public:
  using Impl = EtcdStore::Impl;

  EtcdWatch(std::shared_ptr<Impl> store, std::string prefix, std::string key, std::string end,
            int64_t received, Impl::Stream stream)
      : store_(std::move(store)),
        prefix_(std::move(prefix)),
        key_(std::move(key)),
        end_(std::move(end)),
        received_(received),
        delivered_(received) {
    context_ = stream.context.get();
    reader_ = std::thread([this, first = std::move(stream)]() mutable { run(std::move(first)); });
  }

  ~EtcdWatch() override {
    cancel();
    reader_.join();
  }

  bool next(std::vector<Event>& out, std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mu_);
    data_cv_.wait_for(lock, timeout, [&] {
      return cancelled_ || ended_ || !queue_.empty() || received_ > delivered_.load();
    });
    if (cancelled_) return false;
    const bool had = !queue_.empty();
    for (Event& event : queue_) {
      out.push_back(std::move(event));
    }
    queue_.clear();
    delivered_.store(received_);
    space_cv_.notify_all();
    return had || !ended_;
  }

  int64_t progressRevision() const override { return delivered_.load(); }

  void cancel() override {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    if (context_ != nullptr) context_->TryCancel();
    data_cv_.notify_all();
    space_cv_.notify_all();
  }

  std::optional<StoreError> error() const override {
    std::lock_guard lock(mu_);
    return error_;
  }

 private:
  void end(StoreError error) {
    std::lock_guard lock(mu_);
    if (!cancelled_) error_ = std::move(error);
    ended_ = true;
    context_ = nullptr;
    data_cv_.notify_all();
  }

  std::string what() const { return "watch of " + quoted(prefix_); }

  void run(Impl::Stream stream) {
    for (;;) {
      const bool broken = read(stream);
      {
        std::lock_guard lock(mu_);
        context_ = nullptr;
      }
      // etcd keeps a stream open after cancelling its watcher: end ours before Finish().
      stream.context->TryCancel();
      stream.stream->Finish();
      if (!broken) return;
      int64_t from = 0;
      {
        std::lock_guard lock(mu_);
        if (cancelled_) return;
        from = received_;
      }
      // Resume where the broken stream left off, on any member.
      const auto until = Clock::now() + store_->options().watch_reconnect_timeout;
      for (;;) {
        try {
          stream = store_->openStream(key_, end_, from, what());
        } catch (const StoreError& e) {
          if (e.code() != ErrorCode::kUnavailable || Clock::now() >= until) {
            end(StoreError(e.code(), what() + " lost its stream and could not resume after " +
                                         "revision " + std::to_string(from) + ": " + e.what()));
            return;
          }
          std::unique_lock lock(mu_);
          if (space_cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return cancelled_; }))
            return;
          continue;
        }
        std::lock_guard lock(mu_);
        if (cancelled_) {
          stream.context->TryCancel();
        } else {
          context_ = stream.context.get();
        }
        break;
      }
    }
  }

  // Reads `stream` into the queue. Returns true when the stream broke (reconnect), false when
  // the watch ended (cancelled, or etcd cancelled it: then error_ says why).
  bool read(Impl::Stream& stream) {
    etcdserverpb::WatchResponse response;
    std::vector<Event> events;
    while (stream.stream->Read(&response)) {
      if (response.watch_id() != stream.watch_id) continue;  // not ours (or etcd's -1 progress)
      if (response.canceled()) {
        if (response.compact_revision() > 0) {
          store_->noteCompacted(response.compact_revision());
          end(StoreError(ErrorCode::kCompacted,
                         what() + ": revision " + std::to_string(received_.load()) +
                             " is compacted (compacted to " +
                             std::to_string(response.compact_revision()) + "); relist"));
        } else {
          end(StoreError(ErrorCode::kUnavailable,
                         what() + ": etcd cancelled it: " + response.cancel_reason()));
        }
        return false;
      }
      if (response.created()) continue;
      events.clear();
      const int64_t seen = received_.load();
      int64_t progress = seen;
      for (const mvccpb::Event& change : response.events()) {
        const int64_t revision = change.kv().mod_revision();
        if (revision <= seen) continue;  // delivered before the stream was resumed
        Event event;
        if (change.type() == mvccpb::Event::DELETE) {
          event.type = Event::Type::kDelete;
          event.kv = store_->toKeyValue(change.kv());
          event.kv.value.clear();
          event.kv.create_revision = 0;
        } else {
          event.kv = store_->toKeyValue(change.kv());
          event.type = change.kv().create_revision() == revision ? Event::Type::kCreate
                                                                 : Event::Type::kUpdate;
        }
        if (change.has_prev_kv()) event.prev = store_->toKeyValue(change.prev_kv());
        events.push_back(std::move(event));
        progress = std::max(progress, revision);
      }
      // A response without events is a progress notification: the watcher is synced to its
      // revision. With events, etcd's header may run ahead of events still to come while the
      // watcher catches up, so only the events count.
      if (response.events_size() == 0) progress = std::max(progress, response.header().revision());
      std::unique_lock lock(mu_);
      space_cv_.wait(lock, [&] {
        return cancelled_ || queue_.size() < store_->options().watch_buffer_events;
      });
      if (cancelled_) return false;
      for (Event& event : events) {
        queue_.push_back(std::move(event));
      }
      if (progress > received_.load() || !events.empty()) {
        received_.store(progress);
        data_cv_.notify_all();
      }
    }
    std::lock_guard lock(mu_);
    return !cancelled_;
  }

  std::shared_ptr<Impl> store_;
  const std::string prefix_;
  const std::string key_;
  const std::string end_;

  mutable std::mutex mu_;
  std::condition_variable data_cv_;
  std::condition_variable space_cv_;
  std::deque<Event> queue_;
  std::atomic<int64_t> received_;   // every revision up to here is in the queue or delivered
  std::atomic<int64_t> delivered_;  // ... up to here handed out by next()
  bool cancelled_ = false;
  bool ended_ = false;
  std::optional<StoreError> error_;
  grpc::ClientContext* context_ = nullptr;  // of the stream being read; for cancel()
  std::thread reader_;
};

void checkSize(std::string_view key, std::string_view value) {
  if (value.size() > Store::kMaxValueBytes) {
    throw StoreError(ErrorCode::kTooLarge,
                     "value of key " + quoted(key) + " is " + std::to_string(value.size()) +
                         " bytes, above the limit of " + std::to_string(Store::kMaxValueBytes) +
                         " bytes (1.5 MiB)");
  }
}

Compare* addCompare(etcdserverpb::TxnRequest& txn, const std::string& key,
                    Compare::CompareTarget target, Compare::CompareResult result) {
  Compare* compare = txn.add_compare();
  compare->set_key(key);
  compare->set_target(target);
  compare->set_result(result);
  return compare;
}

// A compare that the key exists (expected == 0) or is at `expected`.
void addPrecondition(etcdserverpb::TxnRequest& txn, const std::string& key, int64_t expected) {
  if (expected == 0) {
    addCompare(txn, key, Compare::CREATE, Compare::GREATER)->set_create_revision(0);
  } else {
    addCompare(txn, key, Compare::MOD, Compare::EQUAL)->set_mod_revision(expected);
  }
  // On failure, read the key to tell "absent" from "changed".
  txn.add_failure()->mutable_request_range()->set_key(key);
}

StoreError preconditionFailed(const etcdserverpb::TxnResponse& response, std::string_view key,
                              int64_t expected) {
  const auto& kvs = response.responses(0).response_range().kvs();
  if (kvs.empty()) return StoreError(ErrorCode::kNotFound, "key " + quoted(key) + " not found");
  return StoreError(ErrorCode::kConflict, "key " + quoted(key) + " is at revision " +
                                              std::to_string(kvs[0].mod_revision()) +
                                              ", not the expected revision " +
                                              std::to_string(expected));
}

}  // namespace

std::unique_ptr<EtcdStore> EtcdStore::open(const EtcdOptions& options) {
  auto impl = std::make_shared<Impl>(options);
  impl->currentRevision();  // reachable?
  return std::unique_ptr<EtcdStore>(new EtcdStore(std::move(impl)));
}

EtcdStore::EtcdStore(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {
  if (impl_->options().compaction_interval.count() > 0) {
    compactor_ = std::thread([this] { compactPeriodically(); });
  }
}

EtcdStore::~EtcdStore() {
  {
    std::lock_guard lock(compactor_mu_);
    stopping_ = true;
  }
  compactor_cv_.notify_all();
  if (compactor_.joinable()) compactor_.join();
}

void EtcdStore::compactPeriodically() {
  int64_t previous = 0;  // the revision one interval ago
  std::unique_lock lock(compactor_mu_);
  while (!compactor_cv_.wait_for(lock, impl_->options().compaction_interval,
                                 [&] { return stopping_; })) {
    lock.unlock();
    try {
      const int64_t now = impl_->currentRevision();
      if (previous > 0) compact(previous);
      previous = now;
    } catch (const StoreError&) {
      // Unreachable for now: try again next interval.
    }
    lock.lock();
  }
}

const std::vector<std::string>& EtcdStore::endpoints() const {
  return impl_->options().endpoints;
}

std::optional<KeyValue> EtcdStore::get(std::string_view key) {
  etcdserverpb::RangeRequest request;
  request.set_key(rangeStart(impl_->full(key)));
  auto response = impl_->range(request, "get " + quoted(key));
  if (response.kvs().empty()) return std::nullopt;
  return impl_->toKeyValue(response.kvs(0));
}

ListResult EtcdStore::list(std::string_view prefix, const ListOptions& options) {
  const std::string begin = impl_->full(prefix);
  const std::string first = rangeStart(begin);
  const std::string end = prefixEnd(begin);
  std::string key = first;
  if (!options.start_after.empty()) {
    std::string after = impl_->full(options.start_after);
    after.push_back('\0');
    key = std::max(key, after);
  }
  etcdserverpb::RangeRequest request;
  request.set_key(key);
  request.set_range_end(end);
  request.set_limit(options.limit);
  request.set_revision(options.revision);
  request.set_count_only(options.count_only);
  const std::string what = "list " + quoted(prefix);
  auto response = impl_->range(request, what);
  ListResult result;
  result.revision = options.revision > 0 ? options.revision : response.header().revision();
  result.more = response.more();
  result.count = response.count();
  result.kvs.reserve(static_cast<size_t>(response.kvs_size()));
  for (const mvccpb::KeyValue& kv : response.kvs()) {
    result.kvs.push_back(impl_->toKeyValue(kv));
  }
  if (key != first) {
    // etcd counts the range asked for; a later page's count is of the whole prefix.
    etcdserverpb::RangeRequest count;
    count.set_key(first);
    count.set_range_end(end);
    count.set_revision(result.revision);
    count.set_count_only(true);
    result.count = impl_->range(count, what).count();
  }
  return result;
}

int64_t EtcdStore::create(std::string_view key, std::string_view value) {
  checkSize(key, value);
  const std::string full = impl_->full(key);
  etcdserverpb::TxnRequest txn;
  addCompare(txn, full, Compare::CREATE, Compare::EQUAL)->set_create_revision(0);
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key(full);
  put->set_value(std::string(value));
  auto response = impl_->txn(txn, "create " + quoted(key));
  if (!response.succeeded()) {
    throw StoreError(ErrorCode::kAlreadyExists, "key " + quoted(key) + " already exists");
  }
  return response.header().revision();
}

int64_t EtcdStore::update(std::string_view key, std::string_view value,
                          int64_t expected_mod_revision) {
  checkSize(key, value);
  const std::string full = impl_->full(key);
  etcdserverpb::TxnRequest txn;
  addPrecondition(txn, full, expected_mod_revision);
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key(full);
  put->set_value(std::string(value));
  auto response = impl_->txn(txn, "update " + quoted(key));
  if (!response.succeeded()) throw preconditionFailed(response, key, expected_mod_revision);
  return response.header().revision();
}

KeyValue EtcdStore::remove(std::string_view key, int64_t expected_mod_revision) {
  const std::string full = impl_->full(key);
  etcdserverpb::TxnRequest txn;
  addPrecondition(txn, full, expected_mod_revision);
  auto* del = txn.add_success()->mutable_request_delete_range();
  del->set_key(full);
  del->set_prev_kv(true);
  auto response = impl_->txn(txn, "delete " + quoted(key));
  if (!response.succeeded()) throw preconditionFailed(response, key, expected_mod_revision);
  const auto& deleted = response.responses(0).response_delete_range();
  if (deleted.prev_kvs().empty()) {
    throw StoreError(ErrorCode::kInternal, "etcd deleted " + quoted(key) + " without its value");
  }
  KeyValue removed = impl_->toKeyValue(deleted.prev_kvs(0));
  removed.mod_revision = response.header().revision();
  return removed;
}

WatchPtr EtcdStore::watch(std::string_view prefix, int64_t start_revision) {
  const std::string begin = impl_->full(prefix);
  std::string key = rangeStart(begin);
  std::string end = prefixEnd(begin);
  // etcd's start is inclusive and ours exclusive; asking for `start_revision` itself (and
  // dropping its events) keeps etcd's compaction check exact: the watch needs the state at
  // start_revision, which compaction may have removed.
  Impl::Stream stream =
      impl_->openStream(key, end, std::max<int64_t>(start_revision, 0), "watch " + quoted(prefix));
  const int64_t received = start_revision > 0 ? start_revision : stream.created_revision;
  return std::make_unique<EtcdWatch>(impl_, std::string(prefix), std::move(key), std::move(end),
                                     received, std::move(stream));
}

void EtcdStore::compact(int64_t revision) {
  const int64_t current = impl_->currentRevision();
  if (revision > current) {
    throw StoreError(ErrorCode::kFutureRevision,
                     "cannot compact to revision " + std::to_string(revision) +
                         ": the store is at " + std::to_string(current));
  }
  etcdserverpb::CompactionRequest request;
  request.set_revision(revision);
  request.set_physical(true);
  try {
    impl_->call(&etcdserverpb::KV::Stub::Compact, request, true,
                "compact to " + std::to_string(revision));
  } catch (const StoreError& e) {
    if (e.code() != ErrorCode::kCompacted) throw;  // at or below the compaction point: nothing
  }
  impl_->noteCompacted(revision);
}

int64_t EtcdStore::currentRevision() {
  return impl_->currentRevision();
}

int64_t EtcdStore::compactedRevision() {
  return impl_->compactedRevision();
}

}  // namespace skiff::store
