// /metrics: the exposition format parsed line by line, and the server's counters after real
// requests over HTTPS with the admin token (anonymous callers are refused).
#include "control/apiserver/metrics.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>

#include "control/api/json.h"
#include "control/apiserver/server.h"
#include "control/client/kubeconfig.h"
#include "control/client/rest_client.h"
#include "control/client/typed.h"
#include "control/store/sqlite_store.h"
#include "skiff/api/core_v1.pb.h"
#include "tests/control/store/store_test_util.h"

namespace skiff::apiserver {
namespace {

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct Exposition {
  std::map<std::string, std::string> types;  // metric family -> counter|gauge|histogram
  std::vector<Sample> samples;

  double value(const std::string& name, const std::map<std::string, std::string>& labels) const {
    for (const auto& s : samples) {
      if (s.name != name) continue;
      bool all = true;
      for (const auto& [k, v] : labels) {
        auto it = s.labels.find(k);
        all = all && it != s.labels.end() && it->second == v;
      }
      if (all) return s.value;
    }
    return -1;
  }
};

// Prometheus' text format 0.0.4: HELP and TYPE comments, then `name{k="v",...} value` lines.
// Fails the test on any line that does not parse, and on a sample of an undeclared family.
Exposition parse(const std::string& text) {
  Exposition out;
  static const std::regex kType(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram))");
  static const std::regex kHelp(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .*)");
  static const std::regex kSample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\})? ([-+0-9.eE]+|\+Inf|NaN))");
  static const std::regex kLabel(R"(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)\")");
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    std::smatch m;
    if (std::regex_match(line, m, kType)) {
      out.types[m[1]] = m[2];
    } else if (std::regex_match(line, kHelp)) {
    } else if (std::regex_match(line, m, kSample)) {
      Sample s{.name = m[1]};
      std::string labels = m[3];
      for (std::sregex_iterator it(labels.begin(), labels.end(), kLabel), end; it != end; ++it) {
        s.labels[(*it)[1]] = (*it)[2];
      }
      s.value = std::stod(m[4]);
      std::string family = s.name;
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        if (family.ends_with(suffix) && !out.types.contains(family)) {
          family.resize(family.size() - std::string(suffix).size());
        }
      }
      EXPECT_TRUE(out.types.contains(family)) << "line " << n << ": undeclared " << line;
      out.samples.push_back(std::move(s));
    } else {
      ADD_FAILURE() << "line " << n << " is not in the exposition format: " << line;
    }
  }
  return out;
}

TEST(Metrics, RendersCountersHistogramsAndGauges) {
  Metrics metrics;
  metrics.observeRequest("GET", "pods", 200, 0.003);
  metrics.observeRequest("GET", "pods", 200, 0.3);
  metrics.observeRequest("GET", "pods", 404, 0.001);
  metrics.observeRequest("LIST", "we\"ird", 200, 100);
  metrics.observeStore("get", "pods", 0.01);
  metrics.addWatchers("pods", 2);
  metrics.addWatchers("pods", -1);
  metrics.countCacheEvents("pods", 7);
  Exposition e = parse(metrics.render());
  EXPECT_EQ(e.types["apiserver_request_total"], "counter");
  EXPECT_EQ(e.types["apiserver_request_duration_seconds"], "histogram");
  EXPECT_EQ(e.types["apiserver_registered_watchers"], "gauge");
  EXPECT_EQ(e.value("apiserver_request_total", {{"verb", "GET"}, {"code", "200"}}), 2);
  EXPECT_EQ(e.value("apiserver_request_total", {{"verb", "GET"}, {"code", "404"}}), 1);
  EXPECT_EQ(e.value("apiserver_request_total", {{"resource", "we\\\"ird"}}), 1);
  // Cumulative buckets: 0.001 and 0.003 under 5 ms, 0.3 under 0.4 s; the 100 s list only in +Inf.
  EXPECT_EQ(
      e.value("apiserver_request_duration_seconds_bucket", {{"verb", "GET"}, {"le", "0.005"}}), 2);
  EXPECT_EQ(e.value("apiserver_request_duration_seconds_bucket", {{"verb", "GET"}, {"le", "0.2"}}),
            2);
  EXPECT_EQ(e.value("apiserver_request_duration_seconds_bucket", {{"verb", "GET"}, {"le", "0.4"}}),
            3);
  EXPECT_EQ(e.value("apiserver_request_duration_seconds_bucket", {{"verb", "LIST"}, {"le", "60"}}),
            0);
  EXPECT_EQ(
      e.value("apiserver_request_duration_seconds_bucket", {{"verb", "LIST"}, {"le", "+Inf"}}), 1);
  EXPECT_EQ(e.value("apiserver_request_duration_seconds_count", {{"verb", "GET"}}), 3);
  EXPECT_NEAR(e.value("apiserver_request_duration_seconds_sum", {{"verb", "GET"}}), 0.304, 1e-9);
  EXPECT_EQ(e.value("apiserver_registered_watchers", {{"resource", "pods"}}), 1);
  EXPECT_EQ(e.value("etcd_request_duration_seconds_count", {{"operation", "get"}}), 1);
  EXPECT_EQ(e.value("apiserver_watch_cache_events_received_total", {{"resource", "pods"}}), 7);
  // Kubernetes' request buckets, from 5 ms to 60 s.
  EXPECT_EQ(Metrics::requestBuckets().size(), 23u);
  EXPECT_EQ(Metrics::requestBuckets().front(), 0.005);
  EXPECT_EQ(Metrics::requestBuckets().back(), 60);
}

// The process collector's figures agree with /proc, and (on jemalloc) the allocator's live bytes
// follow an allocation.
TEST(Metrics, RendersProcessAndAllocatorMetrics) {
  Metrics metrics;
  Exposition before = parse(metrics.render());
  for (const char* name : {"process_cpu_seconds_total", "process_resident_memory_bytes",
                           "process_virtual_memory_bytes", "process_start_time_seconds",
                           "process_open_fds", "process_max_fds", "skiff_process_threads"}) {
    EXPECT_GE(before.value(name, {}), 0) << name;
  }
  EXPECT_EQ(before.types["process_cpu_seconds_total"], "counter");
  EXPECT_EQ(before.types["process_resident_memory_bytes"], "gauge");
  long pages = 0, resident = 0;
  {
    std::ifstream statm("/proc/self/statm");
    statm >> pages >> resident;
  }
  const double rss = static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
  EXPECT_NEAR(before.value("process_resident_memory_bytes", {}), rss, rss / 2);
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_LE(before.value("process_start_time_seconds", {}), now + 1);
  EXPECT_GT(before.value("process_start_time_seconds", {}), now - 3600);
  EXPECT_GE(before.value("skiff_process_threads", {}), 1);

  // Two more descriptors are two more open fds.
  const int a = ::dup(0);
  const int b = ::dup(0);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  Exposition opened = parse(metrics.render());
  EXPECT_EQ(opened.value("process_open_fds", {}), before.value("process_open_fds", {}) + 2);
  ::close(a);
  ::close(b);

  auto block = std::make_unique<char[]>(64u << 20);
  std::memset(block.get(), 1, 64u << 20);
  Exposition after = parse(metrics.render());
#if SKIFF_TEST_ON_JEMALLOC
  for (const char* name : {"skiff_allocator_allocated_bytes", "skiff_allocator_active_bytes",
                           "skiff_allocator_metadata_bytes", "skiff_allocator_resident_bytes",
                           "skiff_allocator_mapped_bytes", "skiff_allocator_retained_bytes"}) {
    EXPECT_GT(after.value(name, {}), 0) << name;
  }
  EXPECT_GE(after.value("skiff_allocator_allocated_bytes", {}) -
                before.value("skiff_allocator_allocated_bytes", {}),
            60u << 20);
  EXPECT_GE(after.value("skiff_allocator_active_bytes", {}),
            after.value("skiff_allocator_allocated_bytes", {}));
#else
  EXPECT_EQ(after.types.count("skiff_allocator_allocated_bytes"), 0u);
#endif
  EXPECT_GE(after.value("process_resident_memory_bytes", {}) -
                before.value("process_resident_memory_bytes", {}),
            60u << 20);
}

// SQLite's own heap is reported beside the allocator's: an open store with data in its page
// caches holds some, and the high-water mark is never below it.
TEST(Metrics, ReportsSqliteHeap) {
  store::testing::TempDir dir;
  {
    auto store = store::SqliteStore::open({.path = dir.file("db")});
    for (int i = 0; i < 200; ++i) {
      store->create("/registry/configmaps/default/c" + std::to_string(i), std::string(2000, 'x'));
    }
    Metrics metrics;
    Exposition exposition = parse(metrics.render());
    EXPECT_EQ(exposition.types["skiff_sqlite_memory_bytes"], "gauge");
    EXPECT_GT(exposition.value("skiff_sqlite_memory_bytes", {}), 100u << 10);
    EXPECT_GE(exposition.value("skiff_sqlite_memory_highwater_bytes", {}),
              exposition.value("skiff_sqlite_memory_bytes", {}));
  }
}

// The Event TTL store sits under the metrics wrapper: lease calls must reach the real store (the
// Store defaults throw) and be counted.
TEST(Metrics, InstrumentedStoreForwardsLeases) {
  store::testing::TempDir dir;
  {
    auto inner = store::SqliteStore::open({.path = dir.file("db")});
    Metrics metrics;
    InstrumentedStore instrumented(*inner, metrics);
    int64_t lease = instrumented.grantLease(60);
    ASSERT_NE(lease, 0);
    int64_t rev = instrumented.createWithLease("/registry/events/default/e1", "v1", lease);
    instrumented.updateWithLease("/registry/events/default/e1", "v2", rev, lease);
    EXPECT_EQ(instrumented.keepAliveLease(lease), 60);
    store::LeaseStatus status = instrumented.leaseTimeToLive(lease, true);
    EXPECT_EQ(status.keys, std::vector<std::string>{"/registry/events/default/e1"});
    instrumented.revokeLease(lease);
    EXPECT_FALSE(inner->get("/registry/events/default/e1").has_value());
    Exposition e = parse(metrics.render());
    EXPECT_EQ(e.value("etcd_request_duration_seconds_count",
                      {{"operation", "create"}, {"type", "events"}}),
              1);
    EXPECT_EQ(e.value("etcd_request_duration_seconds_count",
                      {{"operation", "update"}, {"type", "events"}}),
              1);
    EXPECT_EQ(e.value("etcd_request_duration_seconds_count",
                      {{"operation", "grantLease"}, {"type", "leases"}}),
              1);
  }
}

TEST(Metrics, ServerCountsRequestsAndStoreCallsBehindAuthentication) {
  auto dir = std::filesystem::temp_directory_path() /
             ("skiff-apiserver-metrics-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  {
    ApiServer server({.data_dir = dir.string(), .port = 0, .fsync = false});
    server.start();
    client::ClientConfig config =
        client::loadClientConfig({.kubeconfig = server.adminKubeconfig()});
    auto client = client::makeRestClient(config);
    const auto& configMaps = client::resourceTypeOf<api::core::v1::ConfigMap>();
    client->create(configMaps, "default", api::parseJson(R"({"apiVersion":"v1","kind":"ConfigMap",
                                      "metadata":{"name":"m"}})"));
    client->get(configMaps, "default", "m");
    EXPECT_THROW(client->get(configMaps, "default", "missing"), client::ApiError);

    client::RawResponse r = client->raw({.path = "/metrics", .accept = "text/plain"});
    ASSERT_EQ(r.status, 200);
    EXPECT_NE(r.content_type.find("text/plain"), std::string::npos);
    Exposition e = parse(r.body);
    EXPECT_EQ(e.value("apiserver_request_total",
                      {{"verb", "CREATE"}, {"resource", "configmaps"}, {"code", "201"}}),
              1);
    EXPECT_EQ(e.value("apiserver_request_total",
                      {{"verb", "GET"}, {"resource", "configmaps"}, {"code", "200"}}),
              1);
    EXPECT_EQ(e.value("apiserver_request_total",
                      {{"verb", "GET"}, {"resource", "configmaps"}, {"code", "404"}}),
              1);
    EXPECT_GE(e.value("etcd_request_duration_seconds_count",
                      {{"operation", "create"}, {"type", "configmaps"}}),
              1);

    client::ClientConfig anonymous = config;
    anonymous.token.clear();
    auto stranger = client::makeRestClient(anonymous, {.max_retries = 0});
    int status = 0;
    try {
      status = stranger->raw({.path = "/metrics"}).status;
    } catch (const client::ApiError& error) {
      status = error.code();
    }
    EXPECT_EQ(status, 401);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace skiff::apiserver
