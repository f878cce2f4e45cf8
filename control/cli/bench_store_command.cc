#include "control/cli/bench_store_command.h"

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "control/store/etcd_cluster.h"
#include "control/store/etcd_store.h"
#include "control/store/sqlite_store.h"
#include "control/store/workload.h"

namespace skiff::cli {
namespace {

namespace workload = store::workload;

struct BenchStoreOptions {
  std::string backend = "sqlite";
  bool quick = false;
  bool json = false;
  int runs = 0;  // 0: 5, or 3 with --quick
  std::string etcd_endpoints;
  size_t etcd_members = 1;
  // TLS to the members of --etcd-endpoints (https://), as the apiserver's flags of these names.
  std::string etcd_ca_file;
  std::string etcd_cert_file;
  std::string etcd_key_file;
  std::string data_dir;
};

// A directory for the store's files, removed at the end unless the user named it.
class WorkDir {
 public:
  explicit WorkDir(const std::string& given) {
    if (!given.empty()) {
      path_ = given;
      std::filesystem::create_directories(path_);
      return;
    }
    std::string pattern = "/tmp/skiff-bench-store-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
    remove_ = true;
  }
  ~WorkDir() {
    if (!remove_) return;
    std::error_code error;
    std::filesystem::remove_all(path_, error);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool remove_ = false;
};

// The store under test, and whatever it runs on.
struct Backend {
  std::unique_ptr<WorkDir> dir;
  std::unique_ptr<store::LocalEtcdCluster> cluster;
  store::StorePtr store;
  // etcd: a second client of the same keys whose watches each open a stream of their own, to
  // compare with the store's one shared stream.
  store::StorePtr stream_per_watch;
  std::string description;
};

Backend openBackend(const BenchStoreOptions& options) {
  Backend backend;
  if (options.backend == "sqlite") {
    backend.dir = std::make_unique<WorkDir>(options.data_dir);
    backend.store = store::SqliteStore::open(
        {.path = backend.dir->path() + "/bench.db", .fsync = true, .check_on_open = false});
    backend.description = "embedded SQLite in " + backend.dir->path() + ", fsync on";
    return backend;
  }
  std::vector<std::string> endpoints;
  if (!options.etcd_endpoints.empty()) {
    endpoints = store::parseEtcdEndpoints(options.etcd_endpoints);
    backend.description = "etcd at " + options.etcd_endpoints;
  } else {
    backend.dir = std::make_unique<WorkDir>(options.data_dir);
    backend.cluster = std::make_unique<store::LocalEtcdCluster>(
        store::LocalEtcdOptions{.members = options.etcd_members,
                                .data_dir = backend.dir->path(),
                                .heartbeat_ms = 100,
                                .election_ms = 1000});
    endpoints = backend.cluster->endpoints();
    backend.description = "local etcd, " + std::to_string(options.etcd_members) +
                          (options.etcd_members == 1 ? " member" : " members") + " in " +
                          backend.dir->path();
  }
  // Its own keys, apart from anything else in a cluster that was given.
  const std::string key_prefix = "/skiff-bench-" + std::to_string(::getpid());
  store::EtcdOptions etcd{.endpoints = endpoints,
                          .ca_file = options.etcd_ca_file,
                          .cert_file = options.etcd_cert_file,
                          .key_file = options.etcd_key_file,
                          .key_prefix = key_prefix,
                          .request_timeout = std::chrono::seconds(30)};
  backend.store = store::EtcdStore::open(etcd);
  etcd.watch_multiplex = false;
  backend.stream_per_watch = store::EtcdStore::open(etcd);
  return backend;
}

std::string number(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.6g", value);
  return buffer;
}

std::string jsonString(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buffer[8];
      std::snprintf(buffer, sizeof(buffer), "\\u%04x", c);
      out += buffer;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

int runBenchStore(const BenchStoreOptions& options) {
  if (options.backend != "sqlite" && options.backend != "etcd") {
    std::cerr << "error: --backend " << options.backend << ": expected sqlite or etcd\n";
    return 1;
  }
  if (options.backend == "sqlite" &&
      (!options.etcd_endpoints.empty() || options.etcd_members != 1)) {
    std::cerr << "error: --etcd-endpoints and --etcd-members need --backend etcd\n";
    return 1;
  }
  const bool etcd_tls = !options.etcd_ca_file.empty() || !options.etcd_cert_file.empty() ||
                        !options.etcd_key_file.empty();
  if (etcd_tls && (options.backend != "etcd" || options.etcd_endpoints.empty())) {
    std::cerr << "error: --etcd-cafile, --etcd-certfile and --etcd-keyfile need --backend etcd "
                 "with --etcd-endpoints (the local etcd the benchmark starts serves plain HTTP)\n";
    return 1;
  }
  if (options.etcd_members != 1 && options.etcd_members != 3 && options.etcd_members != 5) {
    std::cerr << "error: --etcd-members " << options.etcd_members << ": expected 1, 3 or 5\n";
    return 1;
  }
  const int runs = options.runs > 0 ? options.runs : (options.quick ? 3 : 5);
  std::ostream& progress = std::cerr;

  Backend backend = openBackend(options);
  progress << "skiff bench store: " << backend.description << ", median of " << runs << " runs\n";

  struct Row {
    int writers;
    int writes_per_writer;
    double writes_per_second;
    double p50_ms;
    double p99_ms;
  };
  std::vector<Row> rows;
  for (int writers : {1, 16, 256}) {
    const int total = options.quick ? (writers == 1 ? 200 : 1000) : (writers == 1 ? 1000 : 8000);
    const int per_writer = std::max(options.quick ? 4 : 25, total / writers);
    const workload::WriteLoad load{.writers = writers, .writes_per_writer = per_writer};
    workload::prepareWrites(*backend.store, load);
    std::vector<double> rates;
    std::vector<double> p50s;
    std::vector<double> p99s;
    for (int run = 0; run < runs; ++run) {
      workload::WriteFigures figures = workload::measureWrites(*backend.store, load);
      rates.push_back(figures.writes_per_second);
      p50s.push_back(figures.p50_ms);
      p99s.push_back(figures.p99_ms);
      progress << "  " << writers << " writers, run " << run + 1 << ": "
               << number(figures.writes_per_second) << " writes/s, p99 " << number(figures.p99_ms)
               << " ms\n";
    }
    rows.push_back({writers, per_writer, workload::median(rates), workload::median(p50s),
                    workload::median(p99s)});
  }

  // etcd sends every event to every watcher on its own: a quick run keeps to 100 of them.
  const int watchers = options.quick && options.backend == "etcd" ? 100 : 1000;
  const workload::WatchLoad watch_load{
      .watchers = watchers, .events = options.quick ? 200 : 2000, .live = true};
  workload::prepareWatch(*backend.store, watch_load);
  // With etcd, each run measures the shared stream and then a stream per watch, interleaved so
  // that both see the same load from the rest of the machine.
  std::vector<double> watch_rates;
  std::vector<double> setup_ms;
  std::vector<double> per_watch_rates;
  std::vector<double> per_watch_setup_ms;
  for (int run = 0; run < runs; ++run) {
    workload::WatchFigures figures = workload::measureWatchFanout(*backend.store, watch_load);
    watch_rates.push_back(figures.events_per_second);
    setup_ms.push_back(figures.setup_seconds * 1000);
    progress << "  watch, run " << run + 1 << ": " << number(figures.events_per_second)
             << " events/s, " << number(figures.setup_seconds * 1000) << " ms to open "
             << watch_load.watchers << " watchers\n";
    if (backend.stream_per_watch) {
      figures = workload::measureWatchFanout(*backend.stream_per_watch, watch_load);
      per_watch_rates.push_back(figures.events_per_second);
      per_watch_setup_ms.push_back(figures.setup_seconds * 1000);
      progress << "  watch, a stream per watch, run " << run + 1 << ": "
               << number(figures.events_per_second) << " events/s, "
               << number(figures.setup_seconds * 1000) << " ms to open them\n";
    }
  }
  const double watch_events_per_second = workload::median(watch_rates);
  const double watch_setup_ms = workload::median(setup_ms);

  if (options.json) {
    std::ostringstream out;
    out << "{\"suite\":\"store\",\"params\":{\"backend\":" << jsonString(options.backend)
        << ",\"quick\":" << (options.quick ? "true" : "false") << ",\"runs\":" << runs
        << ",\"value_bytes\":1024,\"fsync\":true";
    if (options.backend == "etcd") {
      out << ",\"etcd_members\":"
          << (backend.cluster ? std::to_string(backend.cluster->size()) : "null")
          << ",\"etcd_endpoints\":"
          << (options.etcd_endpoints.empty() ? "null" : jsonString(options.etcd_endpoints));
    }
    for (const Row& row : rows) {
      out << ",\"writes_per_writer_" << row.writers << "\":" << row.writes_per_writer;
    }
    out << ",\"watchers\":" << watch_load.watchers << ",\"watch_events\":" << watch_load.events
        << ",\"watch_writers\":" << watch_load.writers << ",\"watch_mode\":\"live\"},\"metrics\":{";
    bool first = true;
    for (const Row& row : rows) {
      const std::string n = std::to_string(row.writers);
      out << (first ? "" : ",") << "\"writes_per_second_" << n
          << "\":" << number(row.writes_per_second) << ",\"p50_ms_" << n
          << "\":" << number(row.p50_ms) << ",\"p99_ms_" << n << "\":" << number(row.p99_ms);
      first = false;
    }
    out << ",\"watch_events_per_second\":" << number(watch_events_per_second)
        << ",\"watch_fanout_events_per_s\":" << number(watch_events_per_second)
        << ",\"watch_setup_ms\":" << number(watch_setup_ms);
    if (!per_watch_rates.empty()) {
      out << ",\"watch_fanout_events_per_s_stream_per_watch\":"
          << number(workload::median(per_watch_rates)) << ",\"watch_setup_ms_stream_per_watch\":"
          << number(workload::median(per_watch_setup_ms));
    }
    out << "}}";
    std::cout << out.str() << std::endl;
    return 0;
  }
  std::printf("store benchmark: %s; 1 KiB values, acknowledged writes; median of %d runs\n",
              backend.description.c_str(), runs);
  std::printf("%8s %12s %10s %10s\n", "writers", "writes/s", "p50 ms", "p99 ms");
  for (const Row& row : rows) {
    std::printf("%8d %12.0f %10.2f %10.2f\n", row.writers, row.writes_per_second, row.p50_ms,
                row.p99_ms);
  }
  std::printf("watch: %d watchers of one prefix, %d updates by %d writers: %.3g events/s\n",
              watch_load.watchers, watch_load.events, watch_load.writers, watch_events_per_second);
  std::printf("       %.1f ms to open the watchers\n", watch_setup_ms);
  if (!per_watch_rates.empty()) {
    std::printf(
        "watch, a stream per watch (the etcd client without multiplexing): %.3g events/s, "
        "%.1f ms to open the watchers\n",
        workload::median(per_watch_rates), workload::median(per_watch_setup_ms));
  }
  return 0;
}

}  // namespace

CLI::App& benchGroup(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands({})) {
    if (sub->get_name() == "bench") return *sub;
  }
  CLI::App* bench = app.add_subcommand("bench", "Run a system benchmark and print its figures");
  bench->require_subcommand(1);
  return *bench;
}

void addBenchStoreCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<BenchStoreOptions>();
  CLI::App* cmd = benchGroup(app).add_subcommand(
      "store",
      "Acknowledged writes/s and p50/p99 latency with 1, 16 and 256 writers; watch events/s to "
      "1,000 watchers of one prefix");
  cmd->add_option("--backend", options->backend, "sqlite or etcd")->capture_default_str();
  cmd->add_flag("--quick", options->quick, "Small loads (seconds), for smoke tests");
  cmd->add_flag("--json", options->json, "One JSON object on stdout");
  cmd->add_option("--runs", options->runs, "Runs per figure (the median is reported)");
  cmd->add_option("--etcd-endpoints", options->etcd_endpoints,
                  "An existing etcd cluster (comma-separated URLs) instead of a local one");
  cmd->add_option("--etcd-members", options->etcd_members,
                  "Members of the local etcd cluster the benchmark starts (1 or 3)")
      ->capture_default_str();
  cmd->add_option("--etcd-cafile", options->etcd_ca_file,
                  "CA (PEM) of the etcd members' serving certificates (https:// endpoints)");
  cmd->add_option("--etcd-certfile", options->etcd_cert_file,
                  "Client certificate (PEM) for etcd's --client-cert-auth");
  cmd->add_option("--etcd-keyfile", options->etcd_key_file, "Key (PEM) of --etcd-certfile");
  cmd->add_option("--data-dir", options->data_dir,
                  "Where the store's files go (default: a temporary directory under /tmp)");
  cmd->callback([options, &exit_code] {
    try {
      exit_code = runBenchStore(*options);
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      exit_code = 1;
    }
  });
}

}  // namespace skiff::cli
