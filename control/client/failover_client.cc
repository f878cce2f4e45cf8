#include "control/client/failover_client.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <random>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <vector>

namespace skiff::client {

std::vector<std::string> splitServers(std::string_view list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string_view::npos) comma = list.size();
    std::string_view item = list.substr(start, comma - start);
    while (!item.empty() && item.front() == ' ')
      item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ')
      item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
    start = comma + 1;
  }
  return out;
}

namespace {

enum class Safety { kIdempotent, kOnlyIfNotSent };

class FailoverClient : public Client {
 public:
  FailoverClient(const ClientConfig& config, const std::vector<std::string>& servers,
                 RestClientOptions options)
      : options_(options) {
    // Each server is tried once per call: the rounds and the backoff are this client's.
    RestClientOptions inner = options;
    inner.max_retries = 0;
    for (const auto& server : servers) {
      ClientConfig c = config;
      c.server = server;
      clients_.push_back(makeRestClient(c, inner));
    }
  }

  api::Value get(const api::ResourceType& type, std::string_view ns,
                 std::string_view name) override {
    return run(Safety::kIdempotent, [&](Client& c) { return c.get(type, ns, name); });
  }
  api::Value list(const api::ResourceType& type, std::string_view ns,
                  const ListOptions& options) override {
    return run(Safety::kIdempotent, [&](Client& c) { return c.list(type, ns, options); });
  }
  api::Value create(const api::ResourceType& type, std::string_view ns, const api::Value& object,
                    const WriteOptions& options) override {
    return run(Safety::kOnlyIfNotSent,
               [&](Client& c) { return c.create(type, ns, object, options); });
  }
  api::Value update(const api::ResourceType& type, std::string_view ns, const api::Value& object,
                    const WriteOptions& options) override {
    return run(Safety::kIdempotent, [&](Client& c) { return c.update(type, ns, object, options); });
  }
  api::Value updateStatus(const api::ResourceType& type, std::string_view ns,
                          const api::Value& object, const WriteOptions& options) override {
    return run(Safety::kIdempotent,
               [&](Client& c) { return c.updateStatus(type, ns, object, options); });
  }
  api::Value patch(const api::ResourceType& type, std::string_view ns, std::string_view name,
                   PatchType patch_type, std::string_view body, const WriteOptions& options,
                   std::string_view subresource) override {
    return run(Safety::kOnlyIfNotSent, [&](Client& c) {
      return c.patch(type, ns, name, patch_type, body, options, subresource);
    });
  }
  api::Value remove(const api::ResourceType& type, std::string_view ns, std::string_view name,
                    const DeleteOptions& options) override {
    return run(Safety::kIdempotent, [&](Client& c) { return c.remove(type, ns, name, options); });
  }
  api::Value removeCollection(const api::ResourceType& type, std::string_view ns,
                              const ListOptions& list_options,
                              const DeleteOptions& options) override {
    return run(Safety::kIdempotent,
               [&](Client& c) { return c.removeCollection(type, ns, list_options, options); });
  }
  WatchStreamPtr watch(const api::ResourceType& type, std::string_view ns,
                       const WatchOptions& options) override {
    return run(Safety::kIdempotent, [&](Client& c) { return c.watch(type, ns, options); });
  }
  api::Value getScale(const api::ResourceType& type, std::string_view ns,
                      std::string_view name) override {
    return run(Safety::kIdempotent, [&](Client& c) { return c.getScale(type, ns, name); });
  }
  api::Value updateScale(const api::ResourceType& type, std::string_view ns,
                         const api::Value& scale) override {
    return run(Safety::kIdempotent, [&](Client& c) { return c.updateScale(type, ns, scale); });
  }
  void bind(std::string_view ns, std::string_view pod_name, std::string_view node_name) override {
    run(Safety::kOnlyIfNotSent, [&](Client& c) {
      c.bind(ns, pod_name, node_name);
      return 0;
    });
  }

  RawResponse raw(const RawRequest& request) override {
    const std::string& m = request.method;
    bool idempotent = m == "GET" || m == "HEAD" || m == "PUT" || m == "DELETE" || m == "OPTIONS";
    return run(idempotent ? Safety::kIdempotent : Safety::kOnlyIfNotSent, [&](Client& c) {
      RawResponse r = c.raw(request);
      bool retry = r.status == 429 || r.status == 503 || (r.status >= 500 && idempotent);
      if (retry) throw Answered{std::move(r)};
      return r;
    });
  }

  std::vector<std::string> lastWarnings() const override {
    return clients_[last_used_.load()]->lastWarnings();
  }

 private:
  // A raw() answer worth another server; returned as it is when none is left.
  struct Answered {
    RawResponse response;
  };

  // Whether `e` may be retried on another server under `safety`.
  static bool retryable(const ApiError& e, Safety safety) {
    if (e.code() == 0) {
      // RestClient's message for a request that never left: no connection could be made.
      bool not_sent = std::string_view(e.what()).starts_with("cannot reach ");
      return not_sent || safety == Safety::kIdempotent;
    }
    if (e.code() == 429 || e.code() == 503) return true;
    return e.code() >= 500 && safety == Safety::kIdempotent;
  }

  // The error for a round in which no server answered. It keeps RestClient's "cannot reach "
  // when none of the requests was sent, so that what it means for a write stays readable.
  static ApiError noneAnswered(const std::vector<std::string>& reasons) {
    bool none_sent = std::all_of(reasons.begin(), reasons.end(), [](const std::string& r) {
      return std::string_view(r).starts_with("cannot reach ");
    });
    std::string message = none_sent ? "cannot reach any of the " : "no answer from any of the ";
    message += std::to_string(reasons.size()) + " apiservers: ";
    for (size_t i = 0; i < reasons.size(); ++i) {
      if (i > 0) message += "; ";
      message += reasons[i];
    }
    return ApiError(0, "", message);
  }

  template <class F>
  auto run(Safety safety, F&& f) -> decltype(f(std::declval<Client&>())) {
    const size_t n = clients_.size();
    const int rounds = std::max(options_.max_retries, 0) + 1;
    for (int round = 0;; ++round) {
      size_t first = active_.load();
      std::vector<std::string> unanswered;  // this round's servers that gave no answer, and why
      for (size_t k = 0; k < n; ++k) {
        size_t i = (first + k) % n;
        bool last = round + 1 >= rounds && k + 1 == n;
        last_used_.store(i);
        try {
          auto result = f(*clients_[i]);
          active_.store(i);
          return result;
        } catch (const ApiError& e) {
          if (!retryable(e, safety)) throw;
          if (e.code() == 0) unanswered.push_back(e.what());
          // None of the servers answered: one error that names them all, not just the last.
          if (last && unanswered.size() == n) throw noneAnswered(unanswered);
          if (last) throw;
        } catch (Answered& a) {
          if (last) {
            if constexpr (std::is_same_v<decltype(f(std::declval<Client&>())), RawResponse>) {
              return std::move(a.response);
            } else {
              throw std::logic_error("failover: unexpected raw answer");
            }
          }
        }
        // Move on: the next call starts with the next server too.
        active_.store((i + 1) % n);
      }
      pause(round);
    }
  }

  void pause(int round) {
    double base =
        static_cast<double>(options_.initial_backoff.count()) * std::pow(2.0, std::min(round, 30));
    base = std::min(base, static_cast<double>(options_.max_backoff.count()));
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    std::this_thread::sleep_for(
        std::chrono::milliseconds(static_cast<int64_t>(base * jitter(rng))));
  }

  RestClientOptions options_;
  std::vector<ClientPtr> clients_;
  std::atomic<size_t> active_{0};
  std::atomic<size_t> last_used_{0};
};

}  // namespace

ClientPtr makeFailoverClient(const ClientConfig& config, const std::vector<std::string>& servers,
                             RestClientOptions options) {
  if (servers.empty()) throw std::invalid_argument("no apiserver URL given");
  if (servers.size() == 1) {
    ClientConfig c = config;
    c.server = servers.front();
    return makeRestClient(c, std::move(options));
  }
  return std::make_unique<FailoverClient>(config, servers, std::move(options));
}

ClientPtr makeClientForServers(const ClientConfig& config, std::string_view servers,
                               RestClientOptions options) {
  if (servers.empty()) return makeRestClient(config, std::move(options));
  return makeFailoverClient(config, splitServers(servers), std::move(options));
}

}  // namespace skiff::client
