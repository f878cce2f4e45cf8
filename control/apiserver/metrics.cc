#include "control/apiserver/metrics.h"

#include <charconv>
#include <chrono>
#include <cmath>

#include "control/apiserver/process_metrics.h"

namespace skiff::apiserver {
namespace {

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);  // the shortest exact form
  return std::string(buf, end);
}

// A label value with \, " and newlines escaped as the exposition format asks.
std::string escape(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string label(std::string_view name, std::string_view value) {
  return std::string(name) + "=\"" + escape(value) + "\"";
}

void header(std::string& out, std::string_view name, std::string_view help, std::string_view type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

// "/registry/pods/ns/name" -> "pods".
std::string_view resourceOf(std::string_view key) {
  constexpr std::string_view kRoot = "/registry/";
  if (!key.starts_with(kRoot)) return "other";
  key.remove_prefix(kRoot.size());
  return key.substr(0, key.find('/'));
}

}  // namespace

void Histogram::observe(double value) {
  for (size_t i = 0; i < bounds_->size(); ++i) {
    if (value <= (*bounds_)[i]) {
      ++counts_[i];
      break;
    }
  }
  ++count_;
  sum_ += value;
}

void Histogram::render(std::string& out, std::string_view name, std::string_view labels) const {
  std::string prefix = labels.empty() ? "" : std::string(labels) + ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_->size(); ++i) {
    cumulative += counts_[i];
    out += std::string(name) + "_bucket{" + prefix + "le=\"" + number((*bounds_)[i]) + "\"} " +
           std::to_string(cumulative) + "\n";
  }
  out += std::string(name) + "_bucket{" + prefix + "le=\"+Inf\"} " + std::to_string(count_) + "\n";
  std::string braces = labels.empty() ? "" : "{" + std::string(labels) + "}";
  out += std::string(name) + "_sum" + braces + " " + number(sum_) + "\n";
  out += std::string(name) + "_count" + braces + " " + std::to_string(count_) + "\n";
}

const std::vector<double>& Metrics::requestBuckets() {
  static const std::vector<double> kBuckets = {0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8,
                                               1.0,   1.25,  1.5,  2,   3,   4,   5,   6,
                                               8,     10,    15,   20,  30,  45,  60};
  return kBuckets;
}

const std::vector<double>& Metrics::storeBuckets() {
  static const std::vector<double> kBuckets = {0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8,
                                               1.0,   1.25,  1.5,  2,   3,   4,   5,   6,
                                               8,     10,    15,   20,  30,  45,  60};
  return kBuckets;
}

void Metrics::observeRequest(std::string_view verb, std::string_view resource, int code,
                             double seconds) {
  std::lock_guard lock(mu_);
  ++requests_[{std::string(verb), std::string(resource), code}];
  auto key = std::make_pair(std::string(verb), std::string(resource));
  auto it = durations_.find(key);
  if (it == durations_.end()) it = durations_.emplace(key, Histogram(requestBuckets())).first;
  it->second.observe(seconds);
}

void Metrics::observeStore(std::string_view operation, std::string_view type, double seconds) {
  std::lock_guard lock(mu_);
  auto key = std::make_pair(std::string(operation), std::string(type));
  auto it = store_.find(key);
  if (it == store_.end()) it = store_.emplace(key, Histogram(storeBuckets())).first;
  it->second.observe(seconds);
}

void Metrics::addWatchers(std::string_view resource, int64_t delta) {
  std::lock_guard lock(mu_);
  auto it = watchers_.find(resource);
  if (it == watchers_.end()) it = watchers_.emplace(std::string(resource), 0).first;
  it->second += delta;
}

void Metrics::countCacheEvents(std::string_view resource, uint64_t n) {
  std::lock_guard lock(mu_);
  auto it = cache_events_.find(resource);
  if (it == cache_events_.end()) it = cache_events_.emplace(std::string(resource), 0).first;
  it->second += n;
}

std::string Metrics::render() const {
  std::lock_guard lock(mu_);
  std::string out;
  header(out, "apiserver_request_total",
         "Counter of apiserver requests broken out for each verb, resource and HTTP response "
         "code.",
         "counter");
  for (const auto& [k, n] : requests_) {
    const auto& [verb, resource, code] = k;
    out += "apiserver_request_total{" + label("code", std::to_string(code)) + "," +
           label("resource", resource) + "," + label("verb", verb) + "} " + std::to_string(n) +
           "\n";
  }
  header(out, "apiserver_request_duration_seconds",
         "Response latency distribution in seconds for each verb and resource.", "histogram");
  for (const auto& [k, h] : durations_) {
    h.render(out, "apiserver_request_duration_seconds",
             label("resource", k.second) + "," + label("verb", k.first));
  }
  header(out, "apiserver_registered_watchers",
         "Number of currently registered watchers for a given resource.", "gauge");
  for (const auto& [resource, n] : watchers_) {
    out += "apiserver_registered_watchers{" + label("resource", resource) + "} " +
           std::to_string(n) + "\n";
  }
  header(out, "etcd_request_duration_seconds",
         "Store request latency in seconds for each operation and object type.", "histogram");
  for (const auto& [k, h] : store_) {
    h.render(out, "etcd_request_duration_seconds",
             label("operation", k.first) + "," + label("type", k.second));
  }
  header(out, "apiserver_watch_cache_events_received_total",
         "Counter of events received in the watch cache, per resource.", "counter");
  for (const auto& [resource, n] : cache_events_) {
    out += "apiserver_watch_cache_events_received_total{" + label("resource", resource) + "} " +
           std::to_string(n) + "\n";
  }
  renderProcessMetrics(out);
  return out;
}

template <typename F>
auto InstrumentedStore::timed(std::string_view operation, std::string_view key, F&& f) {
  auto start = std::chrono::steady_clock::now();
  struct Record {
    Metrics& metrics;
    std::string_view operation;
    std::string_view type;
    std::chrono::steady_clock::time_point start;
    ~Record() {
      metrics.observeStore(
          operation, type,
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  } record{metrics_, operation, resourceOf(key), start};
  return f();
}

std::optional<store::KeyValue> InstrumentedStore::get(std::string_view key) {
  return timed("get", key, [&] { return inner_.get(key); });
}

store::ListResult InstrumentedStore::list(std::string_view prefix,
                                          const store::ListOptions& options) {
  return timed("list", prefix, [&] { return inner_.list(prefix, options); });
}

int64_t InstrumentedStore::create(std::string_view key, std::string_view value) {
  return timed("create", key, [&] { return inner_.create(key, value); });
}

int64_t InstrumentedStore::update(std::string_view key, std::string_view value,
                                  int64_t expected_mod_revision) {
  return timed("update", key, [&] { return inner_.update(key, value, expected_mod_revision); });
}

store::KeyValue InstrumentedStore::remove(std::string_view key, int64_t expected_mod_revision) {
  return timed("delete", key, [&] { return inner_.remove(key, expected_mod_revision); });
}

store::WatchPtr InstrumentedStore::watch(std::string_view prefix, int64_t start_revision) {
  return timed("watch", prefix, [&] { return inner_.watch(prefix, start_revision); });
}

void InstrumentedStore::compact(int64_t revision) {
  inner_.compact(revision);
}

int64_t InstrumentedStore::currentRevision() {
  return inner_.currentRevision();
}

int64_t InstrumentedStore::compactedRevision() {
  return inner_.compactedRevision();
}

int64_t InstrumentedStore::grantLease(int64_t ttl_seconds) {
  return timed("grantLease", "/registry/leases", [&] { return inner_.grantLease(ttl_seconds); });
}

void InstrumentedStore::revokeLease(int64_t lease) {
  timed("revokeLease", "/registry/leases", [&] { inner_.revokeLease(lease); });
}

int64_t InstrumentedStore::keepAliveLease(int64_t lease) {
  return timed("keepAliveLease", "/registry/leases", [&] { return inner_.keepAliveLease(lease); });
}

store::LeaseStatus InstrumentedStore::leaseTimeToLive(int64_t lease, bool with_keys) {
  return timed("leaseTimeToLive", "/registry/leases",
               [&] { return inner_.leaseTimeToLive(lease, with_keys); });
}

int64_t InstrumentedStore::createWithLease(std::string_view key, std::string_view value,
                                           int64_t lease) {
  return timed("create", key, [&] { return inner_.createWithLease(key, value, lease); });
}

int64_t InstrumentedStore::updateWithLease(std::string_view key, std::string_view value,
                                           int64_t expected_mod_revision, int64_t lease) {
  return timed("update", key,
               [&] { return inner_.updateWithLease(key, value, expected_mod_revision, lease); });
}

}  // namespace skiff::apiserver
