#include "endpoints/proxy_health.h"

#include <cstdio>
#include <iostream>

#include "endpoints/metrics.h"
#include "endpoints/trigger_time.h"

namespace skiff::endpoints {
namespace {

double seconds(const api::Timestamp& t) {
  return static_cast<double>(t.seconds) + static_cast<double>(t.nanos) / 1e9;
}

std::string jsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

HttpReply json(bool ok, std::string body) {
  HttpReply r;
  r.status = ok ? 200 : 503;
  r.contentType = "application/json";
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.body = std::move(body);
  return r;
}

}  // namespace

ProxierHealth::ProxierHealth(std::chrono::milliseconds timeout, std::function<api::Timestamp()> now)
    : timeout_(timeout), now_(std::move(now)) {}

void ProxierHealth::queuedUpdate() {
  const api::Timestamp t = now_();
  std::lock_guard lock(mutex_);
  if (!oldestQueued_) oldestQueued_ = t;
  lastQueued_ = t;
}

void ProxierHealth::updated() {
  const api::Timestamp t = now_();
  std::lock_guard lock(mutex_);
  oldestQueued_.reset();
  lastUpdated_ = t;
}

void ProxierHealth::setNodeEligible(bool eligible) {
  std::lock_guard lock(mutex_);
  nodeEligible_ = eligible;
}

HealthState ProxierHealth::state() const {
  HealthState s;
  s.currentTime = now_();
  std::lock_guard lock(mutex_);
  s.lastUpdated = lastUpdated_;
  s.nodeEligible = nodeEligible_;
  // Healthy while nothing waits, or what waits has not waited for the timeout yet.
  s.healthy = !oldestQueued_ || (seconds(s.currentTime) - seconds(*oldestQueued_)) * 1000.0 <
                                    static_cast<double>(timeout_.count());
  return s;
}

HttpReply ProxierHealth::healthz() {
  const HealthState s = state();
  const bool ok = s.healthy && s.nodeEligible;
  {
    std::lock_guard lock(mutex_);
    ++healthz_[ok ? 0 : 1];
  }
  return json(ok, "{\"lastUpdated\": \"" + formatRfc3339Nano(s.lastUpdated) +
                      "\",\"currentTime\": \"" + formatRfc3339Nano(s.currentTime) +
                      "\", \"nodeEligible\": " + (s.nodeEligible ? "true" : "false") + "}");
}

HttpReply ProxierHealth::livez() {
  const HealthState s = state();
  {
    std::lock_guard lock(mutex_);
    ++livez_[s.healthy ? 0 : 1];
  }
  return json(s.healthy, "{\"lastUpdated\": \"" + formatRfc3339Nano(s.lastUpdated) +
                             "\",\"currentTime\": \"" + formatRfc3339Nano(s.currentTime) + "\"}");
}

std::string ProxierHealth::metricsText() const {
  std::lock_guard lock(mutex_);
  std::string out;
  auto codes = [&](const std::string& name, const std::string& help, const uint64_t(&n)[2]) {
    out += "# HELP " + name + " " + help + "\n# TYPE " + name + " counter\n";
    out += name + "{code=\"200\"} " + std::to_string(n[0]) + "\n";
    out += name + "{code=\"503\"} " + std::to_string(n[1]) + "\n";
  };
  codes("kubeproxy_proxy_healthz_total", "/healthz answers by status code.", healthz_);
  codes("kubeproxy_proxy_livez_total", "/livez answers by status code.", livez_);
  out += prometheusGauge("kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
                         "When the last Service or EndpointSlice change was queued for a sync.",
                         seconds(lastQueued_));
  return out;
}

bool nodeEligible(const api::core::v1::Node& node) {
  if (node.metadata().has_deletion_timestamp()) return false;
  for (const auto& taint : node.spec().taints()) {
    if (taint.key() == "ToBeDeletedByClusterAutoscaler") return false;
  }
  return true;
}

std::string serviceHealthBody(const std::string& ns, const std::string& name, size_t localEndpoints,
                              bool proxyHealthy) {
  return "{\n\t\"service\": {\n\t\t\"namespace\": " + jsonString(ns) +
         ",\n\t\t\"name\": " + jsonString(name) +
         "\n\t},\n\t\"localEndpoints\": " + std::to_string(localEndpoints) +
         ",\n\t\"serviceProxyHealthy\": " + (proxyHealthy ? "true" : "false") + "\n}";
}

ServiceHealthServer::ServiceHealthServer(
    HttpListeners& listeners, std::string bindAddress,
    std::function<std::optional<size_t>(const std::string&)> localEndpoints,
    std::function<bool()> proxyHealthy)
    : listeners_(listeners),
      bindAddress_(std::move(bindAddress)),
      localEndpoints_(std::move(localEndpoints)),
      proxyHealthy_(std::move(proxyHealthy)) {}

ServiceHealthServer::~ServiceHealthServer() {
  stop();
}

void ServiceHealthServer::sync(const std::map<std::string, uint16_t>& ports) {
  std::lock_guard lock(mutex_);
  for (auto it = serving_.begin(); it != serving_.end();) {
    auto want = ports.find(it->first);
    if (want != ports.end() && want->second == it->second) {
      ++it;
      continue;
    }
    listeners_.close("healthcheck " + it->first);
    it = serving_.erase(it);
  }
  for (const auto& [key, port] : ports) {
    if (serving_.count(key) != 0) continue;
    const size_t slash = key.find('/');
    const std::string ns = key.substr(0, slash);
    const std::string name = slash == std::string::npos ? key : key.substr(slash + 1);
    // Copies of the callbacks: a request already read may be answered after this is gone.
    auto route = [localEndpoints = localEndpoints_, proxyHealthy = proxyHealthy_, key, ns, name](
                     std::string_view, std::string_view) {
      const size_t count = localEndpoints(key).value_or(0);
      const bool healthy = proxyHealthy();
      HttpReply r = json(count > 0 && healthy, serviceHealthBody(ns, name, count, healthy));
      r.headers.emplace_back("X-Load-Balancing-Endpoint-Weight", std::to_string(count));
      return r;
    };
    auto bound = listeners_.listen("healthcheck " + key, bindAddress_, port, route);
    if (!bound.ok()) {
      ++bindFailures_;
      if (reported_.insert({key, port}).second) {
        std::cerr << "skiff proxier: health-check node port of service " << key << ": "
                  << bound.message() << " (retried on every sync)" << std::endl;
      }
      continue;
    }
    reported_.erase({key, port});
    serving_[key] = port;
  }
}

void ServiceHealthServer::stop() {
  std::lock_guard lock(mutex_);
  for (const auto& [key, port] : serving_)
    listeners_.close("healthcheck " + key);
  serving_.clear();
}

std::map<std::string, uint16_t> ServiceHealthServer::serving() const {
  std::lock_guard lock(mutex_);
  return serving_;
}

}  // namespace skiff::endpoints
