// Watch fan-out through the apiserver's handler, with the watch cache and without it (the path
// before the cache: a store watch per client, every event decoded and encoded per watcher),
// measured side by side in one run: N watchers on the pods of a namespace while E pods are
// created. Reports events delivered per second (all watchers together), the time until the last
// watcher has every event, and the resident memory each idle watcher adds.
//
//   watch_cache_bench [--watchers N] [--events E] [--json]

#include <unistd.h>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "control/apiserver/api_handler.h"
#include "control/store/sqlite_store.h"

namespace {

using skiff::apiserver::ApiHandler;
using skiff::apiserver::ApiHandlerOptions;
using skiff::apiserver::HttpRequest;
using skiff::apiserver::HttpResponse;
using skiff::apiserver::ResponseStream;
using Clock = std::chrono::steady_clock;

long residentBytes() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

// A client's end of a watch stream: counts the events, never blocks. A chunk holds every event
// that was queued for the watch when it was written, one JSON line each.
class CountingStream : public ResponseStream {
 public:
  explicit CountingStream(const std::atomic<bool>& stop) : stop_(stop) {}
  bool write(std::string_view chunk) override {
    constexpr std::string_view kAdded = R"("type":"ADDED")";
    int added = 0;
    for (size_t at = chunk.find(kAdded); at != std::string_view::npos;
         at = chunk.find(kAdded, at + kAdded.size()))
      ++added;
    if (added > 0) {
      bytes_ += chunk.size();
      received_.fetch_add(added, std::memory_order_release);
    }
    return true;
  }
  bool alive() override { return !stop_.load(std::memory_order_acquire); }
  int received() const { return received_.load(std::memory_order_acquire); }

 private:
  const std::atomic<bool>& stop_;
  std::atomic<int> received_{0};
  size_t bytes_ = 0;
};

struct Result {
  double events_per_second = 0;
  double seconds = 0;
  double bytes_per_watcher = 0;
  int store_watches = 0;
};

HttpRequest request(std::string method, std::string path,
                    std::vector<std::pair<std::string, std::string>> query, std::string body = "") {
  HttpRequest r;
  r.method = std::move(method);
  r.path = path;
  r.target = path;
  for (auto& [k, v] : query)
    r.query.emplace(k, v);
  r.headers.emplace_back("content-type", "application/json");
  r.body = std::move(body);
  return r;
}

Result run(bool cache, int watchers, int events, const std::filesystem::path& dir) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto store = skiff::store::SqliteStore::open({.path = (dir / "db").string(), .fsync = false});
  auto handler = std::make_unique<ApiHandler>(
      *store, ApiHandlerOptions{.server_address = "127.0.0.1:0", .watch_cache = cache});
  handler->ensureSystemNamespaces();
  std::string rv = std::to_string(store->currentRevision());

  std::atomic<bool> stop{false};
  std::atomic<int> started{0};
  std::vector<std::unique_ptr<CountingStream>> streams;
  std::vector<std::thread> threads;
  long rss_before = residentBytes();
  for (int i = 0; i < watchers; ++i) {
    streams.push_back(std::make_unique<CountingStream>(stop));
    CountingStream* stream = streams.back().get();
    threads.emplace_back([&, stream] {
      HttpRequest watch =
          request("GET", "/api/v1/namespaces/default/pods",
                  {{"watch", "true"}, {"resourceVersion", rv}, {"timeoutSeconds", "600"}});
      HttpResponse response;
      handler->handle(watch, response, [&](const HttpResponse&) -> ResponseStream& {
        started.fetch_add(1);
        return *stream;
      });
    });
  }
  while (started.load() < watchers)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  long rss_after = residentBytes();

  auto t0 = Clock::now();
  for (int i = 0; i < events; ++i) {
    HttpRequest create = request(
        "POST", "/api/v1/namespaces/default/pods", {},
        R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p)" + std::to_string(i) +
            R"(","labels":{"app":"bench"}},"spec":{"containers":[{"name":"c","image":"busybox"}]}})");
    HttpResponse response;
    handler->handle(create, response, [](const HttpResponse&) -> ResponseStream& {
      throw std::logic_error("a create does not stream");
    });
    if (response.status != 201) {
      std::fprintf(stderr, "create failed: %d %s\n", response.status, response.body.c_str());
      std::exit(1);
    }
  }
  auto deadline = Clock::now() + std::chrono::seconds(300);
  for (const auto& s : streams) {
    while (s->received() < events && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  long delivered = 0;
  for (const auto& s : streams)
    delivered += s->received();
  stop.store(true);
  for (auto& t : threads)
    t.join();
  Result r;
  r.seconds = seconds;
  r.events_per_second = static_cast<double>(delivered) / seconds;
  r.bytes_per_watcher = static_cast<double>(rss_after - rss_before) / watchers;
  handler.reset();
  store.reset();
  std::filesystem::remove_all(dir);
  if (delivered != static_cast<long>(watchers) * events) {
    std::fprintf(stderr, "only %ld of %ld events delivered (%s)\n", delivered,
                 static_cast<long>(watchers) * events, cache ? "cache" : "store");
    std::exit(1);
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  int watchers = 1000;
  int events = 1000;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--watchers" && i + 1 < argc) {
      watchers = std::atoi(argv[++i]);
    } else if (a == "--events" && i + 1 < argc) {
      events = std::atoi(argv[++i]);
    } else if (a == "--json") {
      json = true;
    } else {
      std::fprintf(stderr, "usage: %s [--watchers N] [--events E] [--json]\n", argv[0]);
      return 2;
    }
  }
  if (watchers <= 0 || events <= 0) {
    std::fprintf(stderr, "--watchers and --events must be positive\n");
    return 2;
  }
  auto dir = std::filesystem::temp_directory_path() /
             ("skiff-watch-cache-bench-" + std::to_string(::getpid()));
  // The pre-cache path first, then the cache, in one process and one run.
  Result store = run(false, watchers, events, dir);
  Result cache = run(true, watchers, events, dir);
  if (json) {
    std::printf(R"({"suite":"watch_cache","params":{"watchers":%d,"events":%d},"metrics":{)"
                R"("events_per_second_cache":%.0f,"events_per_second_store":%.0f,"speedup":%.2f,)"
                R"("seconds_cache":%.3f,"seconds_store":%.3f,)"
                R"("bytes_per_watcher_cache":%.0f,"bytes_per_watcher_store":%.0f}})"
                "\n",
                watchers, events, cache.events_per_second, store.events_per_second,
                cache.events_per_second / store.events_per_second, cache.seconds, store.seconds,
                cache.bytes_per_watcher, store.bytes_per_watcher);
  } else {
    std::printf("%d watchers, %d pod creates\n", watchers, events);
    std::printf("%-28s %16s %12s %18s\n", "path", "events/s", "seconds", "bytes/watcher");
    std::printf("%-28s %16.0f %12.3f %18.0f\n", "store watch per client", store.events_per_second,
                store.seconds, store.bytes_per_watcher);
    std::printf("%-28s %16.0f %12.3f %18.0f\n", "watch cache", cache.events_per_second,
                cache.seconds, cache.bytes_per_watcher);
    std::printf("speedup %.2fx\n", cache.events_per_second / store.events_per_second);
  }
  return 0;
}
