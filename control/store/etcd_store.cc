#include "control/store/etcd_store.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <sstream>
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
std::string readPem(const std::string& path, std::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in || text.str().empty()) {
    throw StoreError(ErrorCode::kUnavailable, "etcd TLS: cannot read " + std::string(flag) + " " +
                                                  quoted(path) + ": " + std::strerror(errno));
  }
  return text.str();
}

// TLS for https:// members: the CA that signed their serving certificates (the system's roots
// when none is given) and, for etcd's --client-cert-auth, our client certificate and key.
std::shared_ptr<grpc::ChannelCredentials> tlsCredentials(const EtcdOptions& options) {
  grpc::SslCredentialsOptions ssl;
  if (!options.ca_file.empty()) ssl.pem_root_certs = readPem(options.ca_file, "--etcd-cafile");
  if (options.cert_file.empty() != options.key_file.empty()) {
    throw StoreError(ErrorCode::kUnavailable,
                     "etcd TLS: --etcd-certfile and --etcd-keyfile go together (one is missing)");
  }
  if (!options.cert_file.empty()) {
    ssl.pem_cert_chain = readPem(options.cert_file, "--etcd-certfile");
    ssl.pem_private_key = readPem(options.key_file, "--etcd-keyfile");
  }
  return grpc::SslCredentials(ssl);
}

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
    std::string scheme_name = "http";
    if (const auto scheme = entry.find("://"); scheme != std::string::npos) {
      scheme_name = entry.substr(0, scheme);
      if (scheme_name != "http" && scheme_name != "https") {
        throw std::invalid_argument("etcd endpoint " + quoted(entry) +
                                    ": only http:// and https:// are supported");
      }
      address = entry.substr(scheme + 3);
    }
    while (!address.empty() && address.back() == '/')
      address.pop_back();
    const auto colon = address.rfind(':');
    if (colon == std::string::npos || colon + 1 == address.size() || colon == 0 ||
        address.find_first_not_of("0123456789", colon + 1) != std::string::npos) {
      throw std::invalid_argument("etcd endpoint " + quoted(entry) +
                                  ": expected http://HOST:PORT, https://HOST:PORT or HOST:PORT");
    }
    endpoints.push_back(scheme_name + "://" + address);
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
    std::unique_ptr<etcdserverpb::Lease::Stub> lease;
    bool tls = false;
  };

  explicit Impl(EtcdOptions options) : options_(std::move(options)) {
    if (options_.endpoints.empty()) {
      throw StoreError(ErrorCode::kUnavailable, "no etcd endpoints given");
    }
    std::shared_ptr<grpc::ChannelCredentials> tls;
    for (const std::string& endpoint : options_.endpoints) {
      std::string url = parseEtcdEndpoints(endpoint).at(0);
      const bool https = url.starts_with("https://");
      if (https && !tls) tls = tlsCredentials(options_);
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
      member.tls = https;
      member.channel = grpc::CreateCustomChannel(
          url.substr(url.find("://") + 3), https ? tls : grpc::InsecureChannelCredentials(), args);
      member.kv = etcdserverpb::KV::NewStub(member.channel);
      member.watch = etcdserverpb::Watch::NewStub(member.channel);
      member.lease = etcdserverpb::Lease::NewStub(member.channel);
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
    if (contains(message, "requested lease not found")) {
      return StoreError(ErrorCode::kLeaseNotFound, where + message);
    }
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

  // Why `member` cannot be connected to. Over TLS, gRPC's reason (a certificate that does not
  // verify, a handshake refused), which one quick request brings out.
  std::string connectFailure(Member& member) {
    if (!member.tls) return "cannot connect";
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(300));
    etcdserverpb::RangeRequest request;
    request.set_key(std::string(1, '\0'));
    request.set_count_only(true);
    etcdserverpb::RangeResponse response;
    grpc::Status status = member.kv->Range(&context, request, &response);
    return "cannot connect over TLS (check --etcd-cafile, --etcd-certfile, --etcd-keyfile)" +
           (status.ok() ? std::string() : ": " + status.error_message());
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
        if (failures[i].empty() || !member.tls) failures[i] = connectFailure(member);
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
            throw StoreError(ErrorCode::kOutcomeUnknown,
                             "etcd at " + member.url + ": " + std::string(what) +
                                 ": the connection failed during the request, its outcome is "
                                 "unknown: " +
                                 status.error_message());
          }
          if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
            failures[i] = status.error_message();
            if (idempotent) throw unreachable(what, failures);
            // A write a member took and never answered: without quorum it may still commit
            // once quorum returns.
            throw StoreError(ErrorCode::kOutcomeUnknown,
                             std::string(unreachable(what, failures).what()) +
                                 "; the write was sent to " + member.url +
                                 ", its outcome is unknown");
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

  // One unary call of any etcd service, through the failover loop: `stub` picks the member's stub
  // of that service (KV, Lease), `method` the call on it.
  template <typename Stub, typename Request, typename Response>
  Response call(std::unique_ptr<Stub> Member::*stub,
                grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                const Request& request, bool idempotent, std::string_view what) {
    Response response;
    withFailover(what, idempotent, [&](Member& member, Clock::time_point deadline) {
      grpc::ClientContext context;
      context.set_deadline(grpcDeadline(deadline));
      response.Clear();
      return ((*(member.*stub)).*method)(&context, request, &response);
    });
    return response;
  }

  // One round of etcd's LeaseKeepAlive stream: a request, its answer.
  etcdserverpb::LeaseKeepAliveResponse keepAlive(int64_t lease, std::string_view what) {
    etcdserverpb::LeaseKeepAliveResponse response;
    withFailover(what, true, [&](Member& member, Clock::time_point deadline) {
      grpc::ClientContext context;
      context.set_deadline(grpcDeadline(deadline));
      response.Clear();
      auto stream = member.lease->LeaseKeepAlive(&context);
      etcdserverpb::LeaseKeepAliveRequest request;
      request.set_id(lease);
      const bool answered = stream->Write(request) && stream->Read(&response);
      stream->WritesDone();
      if (answered) {
        context.TryCancel();  // etcd keeps the stream open for more rounds
        stream->Finish();
        return grpc::Status::OK;
      }
      grpc::Status status = stream->Finish();
      if (status.ok()) status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream closed");
      return status;
    });
    return response;
  }

  etcdserverpb::RangeResponse range(const etcdserverpb::RangeRequest& request,
                                    std::string_view what) {
    return call(&Impl::Member::kv, &etcdserverpb::KV::Stub::Range, request, true, what);
  }

  etcdserverpb::TxnResponse txn(const etcdserverpb::TxnRequest& request, std::string_view what) {
    return call(&Impl::Member::kv, &etcdserverpb::KV::Stub::Txn, request, false, what);
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

  // Opens a bare watch stream on the first member that answers etcd's progress request on it
  // (etcd 3.4 answers at once, with watch id -1, also on a stream without watchers). `register`
  // is told the stream's context before its first read, so that a stop can cancel it. Throws
  // kUnavailable when no member did within request_timeout.
  template <typename Register>
  void openWatchStream(std::unique_ptr<grpc::ClientContext>& context_out,
                       std::unique_ptr<WatchStream>& stream_out, size_t& member_out,
                       Register&& register_context) {
    withFailover("open a watch stream", true, [&](Member& member, Clock::time_point) {
      auto context = std::make_unique<grpc::ClientContext>();
      if (!register_context(context.get())) {
        return grpc::Status(grpc::StatusCode::CANCELLED, "the store is closing");
      }
      std::unique_ptr<WatchStream> stream = member.watch->Watch(context.get());
      etcdserverpb::WatchRequest request;
      request.mutable_progress_request();
      etcdserverpb::WatchResponse response;
      if (!stream->Write(request) || !stream->Read(&response)) {
        register_context(nullptr);
        grpc::Status status = stream->Finish();
        if (status.ok()) status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream closed");
        return status;
      }
      register_context(nullptr);
      context_out = std::move(context);
      stream_out = std::move(stream);
      member_out = static_cast<size_t>(&member - members_.data());
      return grpc::Status::OK;
    });
  }

  const std::string& memberUrl(size_t index) const { return members_.at(index).url; }

 private:
  EtcdOptions options_;
  std::vector<Member> members_;
  std::atomic<size_t> preferred_{0};
  std::atomic<int64_t> compacted_{0};
};

namespace etcd_detail {

// What one watcher shares between the stream's reader thread (which fills its queue) and its
// user (who drains it).
struct WatchState {
  WatchState(int64_t watch_id, std::string prefix_in, std::string key_in, std::string end_in,
             int64_t start)
      : id(watch_id),
        prefix(std::move(prefix_in)),
        key(std::move(key_in)),
        end(std::move(end_in)),
        received(start),
        delivered(start) {}

  std::string what() const { return "watch of " + quoted(prefix); }

  const int64_t id;  // our watch id on every stream it is created on
  const std::string prefix;
  const std::string key;
  const std::string end;

  mutable std::mutex mu;
  std::condition_variable data_cv;
  std::deque<Event> queue;
  // Every revision up to here is in the queue or delivered; 0 until a watch "from now" learnt
  // the revision it was created at.
  std::atomic<int64_t> received;
  std::atomic<int64_t> delivered;  // ... up to here handed out by next()
  bool created = false;            // etcd confirmed it once (on any stream)
  bool cancelled = false;
  bool ended = false;
  std::optional<StoreError> error;
  uint64_t generation = 0;  // the stream its create request went to (WatchMux::mu_)
};

// Many watchers on one bidirectional etcd Watch stream, each with its own watch id (chosen by
// us, as etcd 3.4 allows), read by one thread that dispatches every response by its watch id.
// etcd keeps each watcher's events in revision order on the stream, so every queue is ordered.
//
// When the stream breaks (its member died), the thread opens a new one on any member and creates
// every watcher again from the last revision it received (the events at or below it are dropped),
// so that nothing is lost or delivered twice; a watcher whose revision was compacted meanwhile
// ends with kCompacted. After watch_reconnect_timeout without a stream, every watcher ends with
// kUnavailable.
//
// A watcher whose reader lets watch_buffer_events pile up is ended with kCompacted (it must
// relist), as the Store interface says: one stuck reader must not hold back the stream's others.
class WatchMux {
 public:
  using Impl = EtcdStore::Impl;

  explicit WatchMux(Impl& store) : store_(store) {}
  ~WatchMux() { stop(); }
  WatchMux(const WatchMux&) = delete;
  WatchMux& operator=(const WatchMux&) = delete;

  // Registers a watcher of [key, end) receiving revisions after `start_revision` (0 = from now)
  // and waits until etcd created it (at most request_timeout: then kUnavailable).
  std::shared_ptr<WatchState> add(std::string prefix, std::string key, std::string end,
                                  int64_t start_revision) {
    std::shared_ptr<WatchState> state;
    std::shared_ptr<Connection> connection;
    etcdserverpb::WatchRequest request;
    {
      std::lock_guard lock(mu_);
      if (stopping_) throw StoreError(ErrorCode::kUnavailable, "the etcd store is closed");
      state = std::make_shared<WatchState>(next_id_++, std::move(prefix), std::move(key),
                                           std::move(end), std::max<int64_t>(start_revision, 0));
      watches_[state->id] = state;
      if (!reader_.joinable()) reader_ = std::thread([this] { run(); });
      if (connection_) {
        connection = connection_;
        state->generation = connection->generation;
        request = createRequest(*state);
      }
    }
    cv_.notify_all();
    // A failed write means a broken stream: the reader creates the watcher on the next one.
    if (connection) send(*connection, request);
    const auto deadline = Clock::now() + store_.options().request_timeout;
    std::unique_lock lock(state->mu);
    state->data_cv.wait_until(lock, deadline, [&] { return state->created || state->ended; });
    if (state->created) return state;
    std::optional<StoreError> error = state->error;
    lock.unlock();
    remove(*state);
    if (error) throw *error;
    throw StoreError(ErrorCode::kUnavailable,
                     "etcd unreachable: " + state->what() + " was not created within " +
                         std::to_string(millisOf(store_.options().request_timeout)) +
                         " ms by any of " + store_.endpointList());
  }

  // Ends `state`'s watcher: next() returns false, and etcd is told to drop it.
  void cancel(WatchState& state) {
    {
      std::lock_guard lock(state.mu);
      state.cancelled = true;
    }
    state.data_cv.notify_all();
    remove(state);
  }

  // Ends every watcher (kUnavailable: the store is closed) and the reader thread.
  void stop() {
    std::map<int64_t, std::shared_ptr<WatchState>> left;
    {
      std::lock_guard lock(mu_);
      if (stopping_ && !reader_.joinable()) return;
      stopping_ = true;
      if (connection_) connection_->context->TryCancel();
      if (connecting_ != nullptr) connecting_->TryCancel();
    }
    cv_.notify_all();
    if (reader_.joinable()) reader_.join();
    {
      std::lock_guard lock(mu_);
      left.swap(watches_);
    }
    for (auto& [id, state] : left) {
      end(*state, StoreError(ErrorCode::kUnavailable, state->what() + ": the store was closed"));
    }
  }

  EtcdWatchStats stats() const {
    std::lock_guard lock(mu_);
    return {.streams_opened = streams_opened_,
            .watchers = static_cast<int64_t>(watches_.size()),
            .stream_endpoint = connection_ ? store_.memberUrl(connection_->member) : ""};
  }

 private:
  struct Connection {
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<WatchStream> stream;
    size_t member = 0;
    uint64_t generation = 0;
    std::mutex write_mu;    // gRPC allows one writer at a time (beside one reader)
    bool finished = false;  // under write_mu: no Write() after Finish()
  };

  static void end(WatchState& state, StoreError error) {
    {
      std::lock_guard lock(state.mu);
      if (!state.cancelled && !state.ended) state.error = std::move(error);
      state.ended = true;
    }
    state.data_cv.notify_all();
  }

  // Forgets `state` and cancels its etcd watcher when the current stream has it.
  void remove(WatchState& state) {
    std::shared_ptr<Connection> connection;
    {
      std::lock_guard lock(mu_);
      auto it = watches_.find(state.id);
      if (it == watches_.end() || it->second.get() != &state) return;
      watches_.erase(it);
      if (connection_ && state.generation == connection_->generation) connection = connection_;
    }
    if (connection) {
      etcdserverpb::WatchRequest request;
      request.mutable_cancel_request()->set_watch_id(state.id);
      send(*connection, request);
    }
  }

  // etcd's start is inclusive and ours exclusive: asking for the last revision received itself
  // (its events are dropped) keeps etcd's compaction check exact, as the watcher needs the state
  // at that revision.
  static etcdserverpb::WatchRequest createRequest(const WatchState& state) {
    etcdserverpb::WatchRequest request;
    auto* create = request.mutable_create_request();
    create->set_key(state.key);
    create->set_range_end(state.end);
    create->set_start_revision(state.received.load());
    create->set_progress_notify(true);
    create->set_prev_kv(true);
    create->set_watch_id(state.id);
    return request;
  }

  static bool send(Connection& connection, const etcdserverpb::WatchRequest& request) {
    std::lock_guard lock(connection.write_mu);
    return !connection.finished && connection.stream->Write(request);
  }

  void run() {
    Clock::time_point failing_since{};  // since when no stream could be opened
    std::string failure;
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stopping_ || !watches_.empty(); });
      if (stopping_) return;
      lock.unlock();
      auto connection = std::make_shared<Connection>();
      bool opened = false;
      try {
        store_.openWatchStream(connection->context, connection->stream, connection->member,
                               [&](grpc::ClientContext* context) {
                                 std::lock_guard guard(mu_);
                                 if (stopping_) return false;
                                 connecting_ = context;
                                 return true;
                               });
        opened = true;
      } catch (const StoreError& e) {
        failure = e.what();
      }
      lock.lock();
      if (stopping_) {
        if (opened) {
          connection->context->TryCancel();
          connection->stream->Finish();
        }
        return;
      }
      if (!opened) {
        const auto now = Clock::now();
        if (failing_since == Clock::time_point{}) failing_since = now;
        if (now - failing_since >= store_.options().watch_reconnect_timeout) {
          failAll(lock, failure);
          failing_since = {};
        } else {
          cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return stopping_; });
        }
        continue;
      }
      failing_since = {};
      ++streams_opened_;
      connection->generation = ++generation_;
      connection_ = connection;
      std::vector<etcdserverpb::WatchRequest> creates;
      creates.reserve(watches_.size());
      for (auto& [id, state] : watches_) {
        state->generation = connection->generation;
        creates.push_back(createRequest(*state));
      }
      lock.unlock();
      // Written by a thread of their own: while etcd answers the first creates with events,
      // this thread must go on reading, or both sides could wait for the other's window.
      std::thread creator([&] {
        for (const auto& request : creates) {
          if (!send(*connection, request)) break;
        }
      });
      read(*connection);
      // etcd keeps a stream open after its watchers are gone: end ours before Finish().
      connection->context->TryCancel();
      creator.join();
      lock.lock();
      connection_.reset();
      lock.unlock();
      {
        std::lock_guard guard(connection->write_mu);
        connection->finished = true;
      }
      connection->stream->Finish();
      lock.lock();
    }
  }

  // Ends every watcher: no stream could be opened for watch_reconnect_timeout.
  void failAll(std::unique_lock<std::mutex>& lock, const std::string& failure) {
    std::map<int64_t, std::shared_ptr<WatchState>> lost;
    lost.swap(watches_);
    lock.unlock();
    for (auto& [id, state] : lost) {
      end(*state,
          StoreError(ErrorCode::kUnavailable,
                     state->what() + " lost its stream and could not resume after " + "revision " +
                         std::to_string(state->received.load()) + " within " +
                         std::to_string(millisOf(store_.options().watch_reconnect_timeout)) +
                         " ms: " + failure));
    }
    lock.lock();
  }

  // Reads `connection`'s responses into their watchers' queues until the stream ends.
  void read(Connection& connection) {
    etcdserverpb::WatchResponse response;
    while (connection.stream->Read(&response)) {
      if (response.watch_id() < 0) continue;  // the answer to a progress request
      std::shared_ptr<WatchState> state;
      {
        std::lock_guard lock(mu_);
        auto it = watches_.find(response.watch_id());
        if (it == watches_.end() || it->second->generation != connection.generation) continue;
        state = it->second;
      }
      if (!dispatch(*state, response)) remove(*state);
    }
  }

  // Hands `response` to its watcher. Returns false when the watcher ended.
  bool dispatch(WatchState& state, const etcdserverpb::WatchResponse& response) {
    if (response.canceled()) {
      if (response.compact_revision() > 0) {
        store_.noteCompacted(response.compact_revision());
        end(state, StoreError(ErrorCode::kCompacted,
                              state.what() + ": revision " + std::to_string(state.received.load()) +
                                  " is compacted (compacted to " +
                                  std::to_string(response.compact_revision()) + "); relist"));
      } else {
        end(state, StoreError(ErrorCode::kUnavailable,
                              state.what() + ": etcd cancelled it: " + response.cancel_reason()));
      }
      return false;
    }
    if (response.created()) {
      {
        std::lock_guard lock(state.mu);
        if (state.created) return true;  // created again on a new stream
        state.created = true;
        if (state.received.load() == 0) {
          state.received.store(response.header().revision());
          state.delivered.store(response.header().revision());
        }
      }
      state.data_cv.notify_all();
      return true;
    }
    std::vector<Event> events;
    events.reserve(static_cast<size_t>(response.events_size()));
    const int64_t seen = state.received.load();
    int64_t progress = seen;
    for (const mvccpb::Event& change : response.events()) {
      const int64_t revision = change.kv().mod_revision();
      if (revision <= seen) continue;  // delivered before the stream was resumed
      Event event;
      if (change.type() == mvccpb::Event::DELETE) {
        event.type = Event::Type::kDelete;
        event.kv = store_.toKeyValue(change.kv());
        event.kv.value.clear();
        event.kv.create_revision = 0;
      } else {
        event.kv = store_.toKeyValue(change.kv());
        event.type =
            change.kv().create_revision() == revision ? Event::Type::kCreate : Event::Type::kUpdate;
      }
      if (change.has_prev_kv()) event.prev = store_.toKeyValue(change.prev_kv());
      events.push_back(std::move(event));
      progress = std::max(progress, revision);
    }
    // A response without events is a progress notification: the watcher is synced to its
    // revision. With events, etcd's header may run ahead of events still to come while the
    // watcher catches up, so only the events count.
    if (response.events_size() == 0) progress = std::max(progress, response.header().revision());
    {
      std::lock_guard lock(state.mu);
      if (state.cancelled || state.ended) return false;
      if (state.queue.size() + events.size() > store_.options().watch_buffer_events) {
        state.error =
            StoreError(ErrorCode::kCompacted,
                       state.what() + " fell behind: " + std::to_string(state.queue.size()) +
                           " events not read (watch_buffer_events is " +
                           std::to_string(store_.options().watch_buffer_events) + "); relist");
        state.ended = true;
      } else {
        for (Event& event : events) {
          state.queue.push_back(std::move(event));
        }
        if (progress <= state.received.load() && events.empty()) return true;
        state.received.store(progress);
      }
    }
    state.data_cv.notify_all();
    return !state.ended;
  }

  Impl& store_;
  mutable std::mutex mu_;
  std::condition_variable cv_;  // watchers to serve, or stopping
  std::map<int64_t, std::shared_ptr<WatchState>> watches_;
  std::shared_ptr<Connection> connection_;     // the stream being read, if any
  grpc::ClientContext* connecting_ = nullptr;  // of a stream being opened; for stop()
  int64_t next_id_ = 1;                        // 0 asks etcd to choose
  uint64_t generation_ = 0;
  int64_t streams_opened_ = 0;
  bool stopping_ = false;
  std::thread reader_;
};

}  // namespace etcd_detail

namespace {

using etcd_detail::WatchMux;
using etcd_detail::WatchState;

// A watcher on a WatchMux: the store's shared one, or (watch_multiplex off) one of its own.
class EtcdWatch final : public Watch {
 public:
  EtcdWatch(std::shared_ptr<EtcdStore::Impl> store, std::shared_ptr<WatchMux> mux,
            std::shared_ptr<WatchState> state)
      : store_(std::move(store)), mux_(std::move(mux)), state_(std::move(state)) {}

  ~EtcdWatch() override { cancel(); }

  bool next(std::vector<Event>& out, std::chrono::milliseconds timeout) override {
    WatchState& s = *state_;
    std::unique_lock lock(s.mu);
    s.data_cv.wait_for(lock, timeout, [&] {
      return s.cancelled || s.ended || !s.queue.empty() || s.received.load() > s.delivered.load();
    });
    if (s.cancelled) return false;
    const bool had = !s.queue.empty();
    for (Event& event : s.queue) {
      out.push_back(std::move(event));
    }
    s.queue.clear();
    s.delivered.store(s.received.load());
    return had || !s.ended;
  }

  int64_t progressRevision() const override { return state_->delivered.load(); }

  void cancel() override { mux_->cancel(*state_); }

  std::optional<StoreError> error() const override {
    std::lock_guard lock(state_->mu);
    return state_->error;
  }

 private:
  std::shared_ptr<EtcdStore::Impl> store_;  // outlives the mux, which refers to it
  std::shared_ptr<WatchMux> mux_;
  std::shared_ptr<WatchState> state_;
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
  if (impl_->options().watch_multiplex) watch_mux_ = std::make_shared<WatchMux>(*impl_);
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
  if (watch_mux_) watch_mux_->stop();
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

EtcdWatchStats EtcdStore::watchStats() const {
  return watch_mux_ ? watch_mux_->stats() : EtcdWatchStats{};
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
  return createWithLease(key, value, 0);
}

int64_t EtcdStore::update(std::string_view key, std::string_view value,
                          int64_t expected_mod_revision) {
  return updateWithLease(key, value, expected_mod_revision, 0);
}

int64_t EtcdStore::createWithLease(std::string_view key, std::string_view value, int64_t lease) {
  checkSize(key, value);
  const std::string full = impl_->full(key);
  etcdserverpb::TxnRequest txn;
  addCompare(txn, full, Compare::CREATE, Compare::EQUAL)->set_create_revision(0);
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key(full);
  put->set_value(std::string(value));
  put->set_lease(lease);
  auto response = impl_->txn(txn, "create " + quoted(key));
  if (!response.succeeded()) {
    throw StoreError(ErrorCode::kAlreadyExists, "key " + quoted(key) + " already exists");
  }
  return response.header().revision();
}

int64_t EtcdStore::updateWithLease(std::string_view key, std::string_view value,
                                   int64_t expected_mod_revision, int64_t lease) {
  checkSize(key, value);
  const std::string full = impl_->full(key);
  etcdserverpb::TxnRequest txn;
  addPrecondition(txn, full, expected_mod_revision);
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key(full);
  put->set_value(std::string(value));
  put->set_lease(lease);
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
  std::shared_ptr<WatchMux> mux = watch_mux_ ? watch_mux_ : std::make_shared<WatchMux>(*impl_);
  std::shared_ptr<WatchState> state =
      mux->add(std::string(prefix), rangeStart(begin), prefixEnd(begin), start_revision);
  return std::make_unique<EtcdWatch>(impl_, std::move(mux), std::move(state));
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
    impl_->call(&Impl::Member::kv, &etcdserverpb::KV::Stub::Compact, request, true,
                "compact to " + std::to_string(revision));
  } catch (const StoreError& e) {
    if (e.code() != ErrorCode::kCompacted) throw;  // at or below the compaction point: nothing
  }
  impl_->noteCompacted(revision);
}

int64_t EtcdStore::currentRevision() {
  return impl_->currentRevision();
}

int64_t EtcdStore::grantLease(int64_t ttl_seconds) {
  etcdserverpb::LeaseGrantRequest request;
  request.set_ttl(std::max<int64_t>(ttl_seconds, 1));
  auto response = impl_->call(&Impl::Member::lease, &etcdserverpb::Lease::Stub::LeaseGrant, request,
                              false, "grant a lease of " + std::to_string(ttl_seconds) + " s");
  if (!response.error().empty()) {
    throw StoreError(ErrorCode::kInternal, "etcd: grant a lease: " + response.error());
  }
  return response.id();
}

void EtcdStore::revokeLease(int64_t lease) {
  etcdserverpb::LeaseRevokeRequest request;
  request.set_id(lease);
  impl_->call(&Impl::Member::lease, &etcdserverpb::Lease::Stub::LeaseRevoke, request, false,
              "revoke lease " + std::to_string(lease));
}

int64_t EtcdStore::keepAliveLease(int64_t lease) {
  auto response = impl_->keepAlive(lease, "keep lease " + std::to_string(lease) + " alive");
  // etcd answers an unknown (or expired) lease with TTL 0.
  if (response.ttl() <= 0) {
    throw StoreError(ErrorCode::kLeaseNotFound,
                     "requested lease not found: lease " + std::to_string(lease));
  }
  return response.ttl();
}

LeaseStatus EtcdStore::leaseTimeToLive(int64_t lease, bool with_keys) {
  etcdserverpb::LeaseTimeToLiveRequest request;
  request.set_id(lease);
  request.set_keys(with_keys);
  auto response = impl_->call(&Impl::Member::lease, &etcdserverpb::Lease::Stub::LeaseTimeToLive,
                              request, true, "read lease " + std::to_string(lease));
  // etcd answers an unknown lease with TTL -1.
  if (response.ttl() < 0) {
    throw StoreError(ErrorCode::kLeaseNotFound,
                     "requested lease not found: lease " + std::to_string(lease));
  }
  LeaseStatus status{.id = lease, .granted_ttl = response.grantedttl(), .ttl = response.ttl()};
  const std::string& prefix = impl_->options().key_prefix;
  for (const std::string& key : response.keys()) {
    // A lease may hold keys of other stores on the cluster: only ours, without the prefix.
    if (key.compare(0, prefix.size(), prefix) == 0)
      status.keys.push_back(key.substr(prefix.size()));
  }
  std::sort(status.keys.begin(), status.keys.end());
  return status;
}

int64_t EtcdStore::compactedRevision() {
  return impl_->compactedRevision();
}

}  // namespace skiff::store
