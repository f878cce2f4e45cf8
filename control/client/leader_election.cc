#include "control/client/leader_election.h"

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>

#include "control/client/typed.h"
#include "skiff/api/coordination_v1.pb.h"

namespace skiff::client {

using Clock = std::chrono::steady_clock;
using api::coordination::v1::Lease;

namespace {

void setNow(api::meta::v1::MicroTime& t) {
  auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(since_epoch).count();
  t.set_seconds(micros / 1000000);
  t.set_nanos(static_cast<int32_t>((micros % 1000000) * 1000));
}

int32_t wholeSeconds(std::chrono::milliseconds d) {
  return static_cast<int32_t>(std::max<int64_t>(1, (d.count() + 999) / 1000));
}

}  // namespace

struct LeaderElector::Impl {
  Impl(Client& c, LeaderElectionConfig cfg) : client(c), config(std::move(cfg)) {}

  Client& client;
  LeaderElectionConfig config;

  std::mutex mutex;
  std::condition_variable cv;
  bool stopping = false;
  std::thread thread;

  std::atomic<bool> leading{false};
  mutable std::mutex leader_mutex;
  std::string observed_leader;

  // What this candidate last saw of the lease, and when (by its own clock).
  std::optional<Lease> observed;
  std::string observed_fingerprint;
  Clock::time_point observed_at{};

  std::jthread leader_thread;
  // While leading: the last successful renewal, and a watchdog that ends leadership (the
  // stop token) once renew_deadline passes without one, even while the elector thread is still
  // blocked in a call to an unreachable apiserver. client-go bounds the renewal by a context
  // deadline; the Client has no per-call deadline, so the watchdog does it.
  std::atomic<Clock::rep> last_renew_ticks{0};
  std::jthread watchdog;

  // Sleeps unless stopped; false once stopping.
  bool sleepFor(std::chrono::milliseconds d) {
    std::unique_lock lock(mutex);
    return !cv.wait_for(lock, d, [&] { return stopping; });
  }
  bool isStopping() {
    std::lock_guard lock(mutex);
    return stopping;
  }

  void setLeader(const std::string& identity) {
    bool changed;
    {
      std::lock_guard lock(leader_mutex);
      changed = observed_leader != identity;
      observed_leader = identity;
    }
    if (changed && !identity.empty() && config.on_new_leader) config.on_new_leader(identity);
  }

  void observe(const Lease& lease) {
    const auto& s = lease.spec();
    std::string fingerprint = s.holder_identity() + "|" + std::to_string(s.renew_time().seconds()) +
                              "." + std::to_string(s.renew_time().nanos()) + "|" +
                              std::to_string(s.lease_transitions()) + "|" +
                              lease.metadata().resource_version();
    if (!observed || fingerprint != observed_fingerprint) {
      observed_fingerprint = fingerprint;
      observed_at = Clock::now();
    }
    observed = lease;
    setLeader(s.holder_identity());
  }

  // client-go's tryAcquireOrRenew: true when this candidate holds the lease after the call.
  bool tryAcquireOrRenew() {
    Lease lease;
    try {
      lease = get<Lease>(client, config.lease_namespace, config.lease_name);
    } catch (const ApiError& e) {
      if (!e.isNotFound()) return false;
      Lease fresh;
      fresh.mutable_metadata()->set_name(config.lease_name);
      fresh.mutable_metadata()->set_namespace_(config.lease_namespace);
      auto* spec = fresh.mutable_spec();
      spec->set_holder_identity(config.identity);
      spec->set_lease_duration_seconds(wholeSeconds(config.lease_duration));
      setNow(*spec->mutable_acquire_time());
      setNow(*spec->mutable_renew_time());
      spec->set_lease_transitions(0);
      try {
        observe(create(client, fresh));
        return true;
      } catch (const ApiError&) {
        return false;  // another candidate created it first, or the server is away
      }
    }
    observe(lease);
    const auto& spec = lease.spec();
    const std::string& holder = spec.holder_identity();
    bool mine = holder == config.identity;
    // The holder's own lease duration, judged by this candidate's clock since the record changed.
    std::chrono::milliseconds duration = spec.lease_duration_seconds() > 0
                                             ? std::chrono::seconds(spec.lease_duration_seconds())
                                             : config.lease_duration;
    if (!holder.empty() && !mine && Clock::now() < observed_at + duration) {
      return false;  // held by another, renewed within its lease duration
    }
    Lease next = lease;
    auto* s = next.mutable_spec();
    if (!mine) {
      s->set_holder_identity(config.identity);
      setNow(*s->mutable_acquire_time());
      s->set_lease_transitions(spec.lease_transitions() + 1);
    }
    s->set_lease_duration_seconds(wholeSeconds(config.lease_duration));
    setNow(*s->mutable_renew_time());
    try {
      // Compare-and-swap: the update carries the resourceVersion we read.
      observe(update(client, next));
      return true;
    } catch (const ApiError&) {
      return false;
    }
  }

  void release() {
    if (!observed || observed->spec().holder_identity() != config.identity) return;
    Lease next = *observed;
    auto* s = next.mutable_spec();
    s->set_holder_identity("");
    s->set_lease_duration_seconds(1);
    setNow(*s->mutable_renew_time());
    try {
      observe(update(client, next));
    } catch (const ApiError&) {
      // Someone else holds it already, or the server is away: the lease expires by itself.
    }
  }

  void startLeading() {
    leading = true;
    setLeader(config.identity);
    last_renew_ticks = Clock::now().time_since_epoch().count();
    if (config.on_started_leading) {
      leader_thread = std::jthread(
          [this](std::stop_token stop) { config.on_started_leading(std::move(stop)); });
      watchdog = std::jthread([this, lead = leader_thread.get_stop_source()](std::stop_token stop) {
        std::mutex m;
        std::condition_variable_any cv_stop;
        auto tick = std::max(config.retry_period / 4, std::chrono::milliseconds(20));
        std::unique_lock lock(m);
        while (!cv_stop.wait_for(lock, stop, tick, [] { return false; })) {
          Clock::time_point renewed{Clock::duration(last_renew_ticks.load())};
          if (Clock::now() - renewed >= config.renew_deadline) {
            std::fprintf(stderr,
                         "leader election: %s: no renewal of %s/%s within %lld ms, "
                         "stopping leading\n",
                         config.identity.c_str(), config.lease_namespace.c_str(),
                         config.lease_name.c_str(),
                         static_cast<long long>(config.renew_deadline.count()));
            std::stop_source(lead).request_stop();
            return;
          }
        }
      });
    }
  }

  void stopLeading() {
    if (!leading) return;
    if (watchdog.joinable()) {
      watchdog.request_stop();
      watchdog.join();
    }
    if (leader_thread.joinable()) {
      leader_thread.request_stop();
      leader_thread.join();
    }
    leading = false;
    if (config.on_stopped_leading) config.on_stopped_leading();
  }

  void run() {
    while (!isStopping()) {
      // Campaign.
      while (!tryAcquireOrRenew()) {
        if (!sleepFor(config.retry_period)) return;
      }
      if (isStopping()) {
        release();
        return;
      }
      startLeading();
      // Renew until the lease is lost or the deadline passes without a successful renewal.
      Clock::time_point last_renew = Clock::now();
      while (sleepFor(config.retry_period)) {
        // The watchdog ended leadership (renew_deadline passed during a call): give the lease
        // up as lost even if this renewal would succeed.
        if (leader_thread.joinable() && leader_thread.get_stop_token().stop_requested()) break;
        if (tryAcquireOrRenew()) {
          last_renew = Clock::now();
          last_renew_ticks = last_renew.time_since_epoch().count();
          continue;
        }
        bool taken = observed && observed->spec().holder_identity() != config.identity;
        if (taken || Clock::now() - last_renew >= config.renew_deadline) break;
      }
      stopLeading();
      if (isStopping()) {
        if (config.release_on_cancel) release();
        return;
      }
    }
  }
};

LeaderElector::LeaderElector(Client& client, LeaderElectionConfig config)
    : impl_(std::make_unique<Impl>(client, std::move(config))) {
  const auto& c = impl_->config;
  if (c.lease_name.empty() || c.identity.empty()) {
    throw std::invalid_argument("leader election: lease_name and identity are required");
  }
  if (c.lease_duration <= c.renew_deadline || c.renew_deadline <= c.retry_period) {
    throw std::invalid_argument(
        "leader election: need lease_duration > renew_deadline > retry_period");
  }
}

LeaderElector::~LeaderElector() {
  stop();
}

void LeaderElector::start() {
  std::lock_guard lock(impl_->mutex);
  if (impl_->thread.joinable() || impl_->stopping) return;
  impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
}

void LeaderElector::stop() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

bool LeaderElector::isLeader() const {
  return impl_->leading.load();
}

std::string LeaderElector::leader() const {
  std::lock_guard lock(impl_->leader_mutex);
  return impl_->observed_leader;
}

}  // namespace skiff::client
