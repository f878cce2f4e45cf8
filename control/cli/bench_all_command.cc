#include "control/cli/bench_all_command.h"

#include <fcntl.h>
#include <linux/bpf.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "control/api/json.h"
#include "control/cli/bench_report.h"
#include "control/cli/bench_store_command.h"

namespace skiff::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kCannotRunHere = 77;

struct AllOptions {
  bool quick = false;
  std::string dir = "bench-results";
  std::string only;           // comma-separated suite names; empty: all
  double timeoutSeconds = 0;  // per child; 0: 100 (quick) or 1800
};

// One child run: `skiff ARGS...` (or a micro-benchmark binary), its JSON into DIR/file.json.
struct Point {
  std::string file;   // "scheduler-nodes-100"
  std::string label;  // "nodes=100"
  std::string program;
  std::vector<std::string> args;
};

struct Outcome {
  std::string status = "skipped";  // ok, skipped, failed
  std::string reason;
  double seconds = 0;
  std::optional<api::Value> doc;
  std::string file;
  std::string label;
};

struct Suite {
  std::string name;
  std::string skip;  // why it cannot run here (empty: it can)
  std::vector<Point> points;
  size_t primary = 0;  // the point whose JSON is also DIR/<name>.json
  std::vector<Outcome> outcomes;
};

std::string fixed(double value, int digits = 1) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", digits, value);
  return buffer;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' '))
    s.pop_back();
  size_t start = 0;
  while (start < s.size() && s[start] == ' ')
    ++start;
  return s.substr(start);
}

// The `skiff bench NAME` subcommand, if this binary has it (xdp and socklb may not be built).
CLI::App* benchCommand(CLI::App& root, const std::string& name) {
  for (CLI::App* sub : benchGroup(root).get_subcommands([](CLI::App*) { return true; })) {
    if (sub->get_name() == name) return sub;
  }
  return nullptr;
}

bool hasOption(CLI::App* command, const std::string& name) {
  return command != nullptr && command->get_option_no_throw(name) != nullptr;
}

// Whether this process may create a BPF map (root, a kernel with BPF, no lockdown in the way).
std::string bpfUnavailable() {
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.map_type = BPF_MAP_TYPE_ARRAY;
  attr.key_size = 4;
  attr.value_size = 4;
  attr.max_entries = 1;
  const long fd = ::syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr));
  if (fd < 0) return std::string("no BPF here (bpf(BPF_MAP_CREATE): ") + std::strerror(errno) + ")";
  ::close(static_cast<int>(fd));
  return "";
}

bool haveExecutable(const std::string& name) {
  for (const char* dir :
       {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}) {
    if (::access((std::string(dir) + "/" + name).c_str(), X_OK) == 0) return true;
  }
  return false;
}

// The Google Benchmark binaries of this build: <build>/bench/**/*_bench, beside <build>/bin.
std::vector<fs::path> microBenchmarks() {
  std::vector<fs::path> out;
  std::error_code error;
  const fs::path self = fs::read_symlink("/proc/self/exe", error);
  if (error) return out;
  const fs::path benchDir = self.parent_path().parent_path() / "bench";
  if (!fs::is_directory(benchDir, error)) return out;
  for (auto it = fs::recursive_directory_iterator(benchDir, error);
       !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
    const fs::path& p = it->path();
    const std::string name = p.filename().string();
    if (!it->is_regular_file(error) || name.size() < 6 ||
        name.compare(name.size() - 6, 6, "_bench") != 0) {
      continue;
    }
    if (::access(p.c_str(), X_OK) == 0) out.push_back(p);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The arguments of a benchmark in bench/ that is a program of its own rather than a Google
// Benchmark binary (one JSON object in the suites' shape on stdout); empty for the others.
std::vector<std::string> standaloneBenchmarkArgs(const std::string& name, bool quick) {
  if (name == "watch_cache_bench") {
    if (quick) return {"--watchers", "100", "--events", "200", "--json"};
    return {"--json"};
  }
  if (name == "auth_index_bench") {
    if (quick) return {"--pods", "200", "--rounds", "1", "--json"};
    return {"--json"};
  }
  return {};
}

// ---- running one child -------------------------------------------------------------------------

Outcome runPoint(const Point& point, const std::string& dir, double timeoutSeconds,
                 std::ostream& progress) {
  Outcome outcome;
  outcome.file = point.file;
  outcome.label = point.label;
  const std::string jsonPath = dir + "/" + point.file + ".json";
  const std::string logPath = dir + "/" + point.file + ".log";
  std::ofstream log(logPath);
  int errPipe[2];
  if (::pipe2(errPipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  const int out = ::open(jsonPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) throw std::runtime_error("cannot write " + jsonPath + ": " + std::strerror(errno));
  std::vector<std::string> argv = {point.program};
  argv.insert(argv.end(), point.args.begin(), point.args.end());
  std::vector<char*> cargv;
  for (std::string& a : argv)
    cargv.push_back(a.data());
  cargv.push_back(nullptr);
  const std::string exe = point.program == "skiff" ? "/proc/self/exe" : point.program;
  const auto start = Clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::setpgid(0, 0);  // its own process group: a timeout ends the suite and what it started
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::dup2(out, 1);
    ::dup2(errPipe[1], 2);
    ::execv(exe.c_str(), cargv.data());
    std::fprintf(stderr, "exec %s: %s\n", exe.c_str(), std::strerror(errno));
    _exit(127);
  }
  ::setpgid(pid, pid);
  ::close(out);
  ::close(errPipe[1]);
  std::string pending, tail;
  auto seconds = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  double lastShown = 0;
  bool terminated = false, killed = false, exited = false, eof = false;
  int status = 0;
  double exitedAt = 0;
  while (!(exited && (eof || seconds() - exitedAt > 2))) {
    pollfd pfd{errPipe[0], POLLIN, 0};
    if (!eof && ::poll(&pfd, 1, 500) > 0) {
      char buffer[4096];
      const ssize_t got = ::read(errPipe[0], buffer, sizeof(buffer));
      if (got <= 0) {
        eof = true;
      } else {
        pending.append(buffer, static_cast<size_t>(got));
        for (size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
          const std::string line = pending.substr(0, nl);
          pending.erase(0, nl + 1);
          log << line << "\n";
          progress << "    | " << line << "\n";
          tail = line;
          lastShown = seconds();
        }
      }
    } else if (eof) {
      ::usleep(100000);
    }
    if (!exited && ::waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      exitedAt = seconds();
    }
    const double now = seconds();
    if (!exited && now - lastShown >= 15) {
      progress << "    ... " << point.file << " still running (" << fixed(now, 0) << " s)\n";
      lastShown = now;
    }
    if (!exited && !terminated && now > timeoutSeconds) {
      progress << "    ... " << point.file << ": timed out after " << fixed(timeoutSeconds, 0)
               << " s, stopping it\n";
      ::kill(-pid, SIGTERM);
      terminated = true;
    }
    if (!exited && terminated && !killed && now > timeoutSeconds + 15) {
      ::kill(-pid, SIGKILL);
      killed = true;
    }
  }
  ::close(errPipe[0]);
  if (!pending.empty()) {
    log << pending << "\n";
    tail = pending;
  }
  // Whatever the suite left running in its group goes with it.
  ::kill(-pid, SIGKILL);
  outcome.seconds = seconds();
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (terminated) {
    outcome.status = "failed";
    outcome.reason = "timed out after " + fixed(timeoutSeconds, 0) + " s";
    return outcome;
  }
  if (WIFSIGNALED(status)) {
    outcome.status = "failed";
    outcome.reason = std::string("killed by signal ") + ::strsignal(WTERMSIG(status)) +
                     (tail.empty() ? "" : " (last line: " + tail + ")");
    return outcome;
  }
  if (code == kCannotRunHere) {
    outcome.status = "skipped";
    const size_t at = tail.find("cannot run here: ");
    outcome.reason = at == std::string::npos ? tail : tail.substr(at + 17);
    return outcome;
  }
  if (code != 0) {
    outcome.status = "failed";
    outcome.reason = "exit " + std::to_string(code) + (tail.empty() ? "" : ": " + tail);
    return outcome;
  }
  std::ifstream in(jsonPath);
  std::stringstream text;
  text << in.rdbuf();
  try {
    api::Value doc = api::parseJson(trim(text.str()), {.source = jsonPath});
    if (!doc.isObject()) throw std::runtime_error("not a JSON object");
    outcome.doc = std::move(doc);
    outcome.status = "ok";
  } catch (const std::exception& e) {
    outcome.status = "failed";
    outcome.reason = std::string("no JSON object on stdout (") + e.what() + ")";
  }
  return outcome;
}

// Google Benchmark's JSON for one binary as {"suite":"micro",...} metrics: real time in ns (a
// standalone benchmark's metrics as they are).
void addMicro(const api::Value& doc, const std::string& binary, api::Value& metrics) {
  // A standalone benchmark's own metrics, under its name.
  if (const api::Value* own = doc.find("metrics"); own != nullptr && own->isObject()) {
    for (const auto& member : own->members()) {
      metrics.set(binary + ":" + member.key, member.value);
    }
    return;
  }
  const api::Value* list = doc.find("benchmarks");
  if (list == nullptr || !list->isArray()) return;
  for (const api::Value& b : list->items()) {
    const api::Value* name = b.find("name");
    const api::Value* time = b.find("real_time");
    const api::Value* unit = b.find("time_unit");
    const api::Value* runType = b.find("run_type");
    if (name == nullptr || time == nullptr || !time->isNumber()) continue;
    if (runType != nullptr && runType->text() == "aggregate") continue;
    double ns = time->asDouble();
    const std::string u = unit != nullptr ? unit->text() : "ns";
    if (u == "us") ns *= 1e3;
    if (u == "ms") ns *= 1e6;
    if (u == "s") ns *= 1e9;
    metrics.set(binary + ":" + name->text() + ":real_ns", api::Value::number(ns));
  }
}

// ---- the report --------------------------------------------------------------------------------

const api::Value* metricsOf(const Outcome& o) {
  if (!o.doc) return nullptr;
  const api::Value* m = o.doc->find("metrics");
  return m != nullptr && m->isObject() ? m : nullptr;
}

std::optional<double> metric(const Outcome& o, const std::string& key) {
  const api::Value* m = metricsOf(o);
  if (m == nullptr) return std::nullopt;
  const api::Value* v = m->find(key);
  if (v == nullptr || !v->isNumber()) return std::nullopt;
  return v->asDouble();
}

const Suite* findSuite(const std::vector<Suite>& suites, const std::string& name) {
  for (const Suite& s : suites) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::string suiteState(const Suite* s) {
  if (s == nullptr) return "not run (--only)";
  if (!s->skip.empty()) return "skipped: " + s->skip;
  for (const Outcome& o : s->outcomes) {
    if (o.status != "ok") return o.status + (o.reason.empty() ? "" : ": " + o.reason);
  }
  return "ok";
}

std::string cell(std::string text) {
  for (char& c : text) {
    if (c == '|' || c == '\n') c = ' ';
  }
  return text;
}

// The headline figures of a suite's primary run.
std::string headline(const Suite& s, const Outcome& o) {
  static const std::map<std::string, std::vector<std::pair<std::string, std::string>>> keys = {
      {"store",
       {{"writes_per_second_1", "writes/s, 1 writer"},
        {"writes_per_second_256", "writes/s, 256 writers"},
        {"p99_ms_256", "p99 ms, 256 writers"},
        {"watch_events_per_second", "watch events/s"}}},
      {"apiserver",
       {{"clients", "at clients"},
        {"get_p99_ms", "GET p99 ms"},
        {"list_p99_ms", "LIST p99 ms"},
        {"list_rv0_p99_ms", "LIST rv=0 p99 ms"},
        {"create_p99_ms", "CREATE p99 ms"},
        {"update_p99_ms", "UPDATE p99 ms"},
        {"delete_p99_ms", "DELETE p99 ms"},
        {"watch_p99_ms", "watch p99 ms"},
        {"requests_per_second", "req/s"}}},
      {"scheduler",
       {{"pods_per_second", "pods/s"},
        {"p99_latency_ms", "p99 ms"},
        {"spread_pods_per_second", "spread pods/s"}}},
      {"controllers",
       {{"seconds_to_available", "s to available"},
        {"pods_created_per_second", "pods created/s"},
        {"rolling_update_seconds", "rolling update s"}}},
      {"pod-startup", {{"startup_p50_ms", "startup p50 ms"}, {"startup_p99_ms", "p99 ms"}}},
      {"endpoints",
       {{"full_sync_ms", "full sync ms"},
        {"programming_latency_p50_ms", "programming p50 ms"},
        {"programming_latency_p99_ms", "p99 ms"}}},
      {"dpdk",
       {{"established_mpps_per_core", "Mpps/core"},
        {"established_cycles_per_packet", "cycles/pkt"},
        {"io_floor_mpps", "io floor Mpps"},
        {"ratio_to_floor", "cost vs floor"}}},
      {"baselines",
       {{"iptables_legacy_sync_ms_1000", "iptables-legacy sync 1k ms"},
        {"iptables_nft_sync_ms_1000", "iptables-nft sync 1k ms"},
        {"nftables_sync_ms_1000", "nft sync 1k ms"},
        {"ebpf_sync_ms_1000", "eBPF sync 1k ms"},
        {"iptables_nft_sync_ms_10000", "iptables-nft sync 10k ms"},
        {"nftables_sync_ms_10000", "nft sync 10k ms"},
        {"ebpf_sync_ms_10000", "eBPF sync 10k ms"},
        {"ebpf_to_iptables_nft_short_rps_last", "eBPF/iptables-nft new-connection req/s, last svc"},
        {"ebpf_to_nftables_short_rps_last", "eBPF/nft new-connection req/s, last svc"}}},
  };
  std::string out;
  auto add = [&](const std::string& label, double v) {
    if (!out.empty()) out += "; ";
    out += label + " " + benchNumber(v);
  };
  const auto it = keys.find(s.name);
  if (it != keys.end()) {
    for (const auto& [key, label] : it->second) {
      if (auto v = metric(o, key)) add(label, *v);
    }
  }
  if (out.empty()) {
    const api::Value* m = metricsOf(o);
    if (m != nullptr) {
      size_t shown = 0;
      for (const auto& member : m->members()) {
        if (!member.value.isNumber() || shown >= 4) continue;
        add(member.key, member.value.asDouble());
        ++shown;
      }
      if (m->members().size() > shown)
        out += "; ... (" + std::to_string(m->members().size()) + " figures)";
    }
  }
  return out;
}

std::string machineLine() {
  struct utsname uts {};
  ::uname(&uts);
  std::string cpu = "unknown CPU";
  std::ifstream info("/proc/cpuinfo");
  for (std::string line; std::getline(info, line);) {
    if (line.rfind("model name", 0) == 0) {
      cpu = trim(line.substr(line.find(':') + 1));
      break;
    }
  }
  long pages = ::sysconf(_SC_PHYS_PAGES), pageSize = ::sysconf(_SC_PAGE_SIZE);
  const double gib = static_cast<double>(pages) * static_cast<double>(pageSize) / (1 << 30);
  return cpu + ", " + std::to_string(::sysconf(_SC_NPROCESSORS_ONLN)) + " CPUs, " + fixed(gib) +
         " GiB, Linux " + uts.release;
}

struct Plot {
  std::string file;
  std::string title;
  std::string missing;  // why not drawn (empty: drawn)
};

void writeFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string header(const std::string& png, const std::string& title) {
  return "set terminal pngcairo size 960,560 font 'sans,10'\nset output '" + png +
         "'\nset title \"" + title + "\" noenhanced\nset grid\nset key top left\n";
}

// Draws the plots gnuplot can draw from what ran; returns each with why it is missing.
std::vector<Plot> drawPlots(const std::vector<Suite>& suites, const std::string& dir,
                            std::ostream& progress) {
  std::vector<Plot> plots;
  const bool gnuplot = haveExecutable("gnuplot");
  auto draw = [&](Plot plot, const std::string& script) {
    if (!plot.missing.empty()) {
      plots.push_back(plot);
      return;
    }
    if (!gnuplot) {
      plot.missing = "gnuplot is not installed (Debian package gnuplot-nox)";
      plots.push_back(plot);
      return;
    }
    const std::string gp = plot.file.substr(0, plot.file.size() - 4) + ".gp";
    writeFile(dir + "/" + gp, script);
    std::error_code error;
    fs::remove(dir + "/" + plot.file, error);
    const std::string command = "cd '" + dir + "' && gnuplot " + gp + " > " + gp + ".log 2>&1";
    const int rc = std::system(command.c_str());
    if (rc != 0 || !fs::exists(dir + "/" + plot.file)) {
      plot.missing = "gnuplot failed (see " + gp + ".log)";
    }
    progress << "  plot " << plot.file << ": " << (plot.missing.empty() ? "drawn" : plot.missing)
             << "\n";
    plots.push_back(plot);
  };

  // 1. DPDK: Mpps and cycles/packet against services.
  {
    Plot plot{"dpdk_services.png", "DPDK pipeline: Mpps and cycles/packet vs services", ""};
    const Suite* s = findSuite(suites, "dpdk");
    std::string data =
        "# services established_mpps established_cycles new_flow_cycles floor_mpps\n";
    int points = 0;
    if (s != nullptr && s->skip.empty()) {
      for (const Outcome& o : s->outcomes) {
        auto mpps = metric(o, "established_mpps_per_core");
        auto cycles = metric(o, "established_cycles_per_packet");
        auto fresh = metric(o, "new_flow_cycles_per_packet");
        auto floor = metric(o, "io_floor_mpps");
        if (!mpps || !cycles || !fresh || !floor) continue;
        data += o.label.substr(o.label.find('=') + 1) + " " + benchNumber(*mpps) + " " +
                benchNumber(*cycles) + " " + benchNumber(*fresh) + " " + benchNumber(*floor) + "\n";
        ++points;
      }
    }
    if (points == 0) plot.missing = "dpdk " + suiteState(s);
    if (plot.missing.empty()) writeFile(dir + "/dpdk_services.dat", data);
    draw(plot, header(plot.file, plot.title) +
                   "set logscale x\nset xlabel 'services'\nset ylabel 'Mpps (one core)'\n"
                   "set y2label 'cycles per packet'\nset y2tics\nset ytics nomirror\n"
                   "set yrange [0:*]\nset y2range [0:*]\n"
                   "plot 'dpdk_services.dat' u 1:2 w lp lw 2 t 'established flows, Mpps', "
                   "'' u 1:5 w lp t 'io forwarding floor, Mpps', "
                   "'' u 1:3 axes x1y2 w lp dt 2 t 'established, cycles/packet', "
                   "'' u 1:4 axes x1y2 w lp dt 2 t 'new flows, cycles/packet'\n");
  }

  // 2. Network programming latency CDF: every one-change sync of the baselines, and the
  // proxier's p50/p99 under churn (endpoints).
  {
    Plot plot{"programming_latency_cdf.png",
              "Network programming latency: one endpoint change (CDF)", ""};
    std::string series;
    const Suite* b = findSuite(suites, "baselines");
    if (b != nullptr && b->skip.empty() && !b->outcomes.empty() && b->outcomes.front().doc) {
      const api::Value* samples = b->outcomes.front().doc->find("samples");
      if (samples != nullptr && samples->isObject()) {
        for (const auto& member : samples->members()) {
          std::vector<double> v;
          for (const api::Value& x : member.value.items())
            if (x.isNumber()) v.push_back(x.asDouble());
          if (v.empty()) continue;
          std::sort(v.begin(), v.end());
          std::string data;
          for (size_t i = 0; i < v.size(); ++i)
            data += benchNumber(v[i]) + " " + benchNumber((i + 1.0) / v.size()) + "\n";
          const std::string file = "cdf_" + member.key + ".dat";
          writeFile(dir + "/" + file, data);
          const std::string mode = member.key.substr(0, member.key.find("_change_ms"));
          const std::string among = member.key.substr(member.key.rfind('_') + 1);
          series += std::string(series.empty() ? "" : ", ") + "'" + file +
                    "' u 1:2 w steps lw 2 t '" + mode + " sync, 1 change among " + among +
                    " services'";
        }
      }
    }
    const Suite* e = findSuite(suites, "endpoints");
    if (e != nullptr && e->skip.empty() && !e->outcomes.empty()) {
      auto p50 = metric(e->outcomes.front(), "programming_latency_p50_ms");
      auto p99 = metric(e->outcomes.front(), "programming_latency_p99_ms");
      if (p50 && p99) {
        writeFile(dir + "/cdf_endpoints.dat",
                  benchNumber(*p50) + " 0.5\n" + benchNumber(*p99) + " 0.99\n");
        series += std::string(series.empty() ? "" : ", ") +
                  "'cdf_endpoints.dat' u 1:2 w p pt 7 ps 1.5 t 'Skiff proxier under churn "
                  "(endpoints: p50, p99 only)'";
      }
    }
    if (series.empty()) {
      plot.missing = "baselines " + suiteState(b) + "; endpoints " + suiteState(e);
    }
    draw(plot, header(plot.file, plot.title) +
                   "set logscale x\nset xlabel 'milliseconds'\nset ylabel 'fraction of changes'\n"
                   "set yrange [0:1.05]\nset key bottom right\nplot " +
                   series + "\n");
  }

  // 3. Scheduler throughput against nodes.
  {
    Plot plot{"scheduler_nodes.png", "Scheduler throughput vs nodes (hollow nodes)", ""};
    const Suite* s = findSuite(suites, "scheduler");
    std::string data = "# nodes pods_per_second bind_p99_ms\n";
    int points = 0;
    if (s != nullptr && s->skip.empty()) {
      for (const Outcome& o : s->outcomes) {
        auto pps = metric(o, "pods_per_second");
        auto p99 = metric(o, "bind_p99_ms");
        if (!pps || !p99) continue;
        data += o.label.substr(o.label.find('=') + 1) + " " + benchNumber(*pps) + " " +
                benchNumber(*p99) + "\n";
        ++points;
      }
    }
    if (points == 0) plot.missing = "scheduler " + suiteState(s);
    if (plot.missing.empty()) writeFile(dir + "/scheduler_nodes.dat", data);
    draw(plot, header(plot.file, plot.title) +
                   "set logscale x\nset xlabel 'nodes'\nset ylabel 'pods bound per second'\n"
                   "set y2label 'creation to bound, p99 ms'\nset y2tics\nset ytics nomirror\n"
                   "set yrange [0:*]\nset y2range [0:*]\n"
                   "plot 'scheduler_nodes.dat' u 1:2 w lp lw 2 t 'pods/s', "
                   "'' u 1:3 axes x1y2 w lp dt 2 t 'bind p99 ms'\n");
  }

  // 4. The apiserver's latency against load: p99 per verb against concurrent clients, beside
  // Kubernetes' SLO thresholds (their definitions, not measurements).
  {
    Plot plot{"apiserver_latency_load.png",
              "Apiserver latency vs load: p99 per verb (TLS keep-alive clients, SQLite with fsync)",
              ""};
    const Suite* s = findSuite(suites, "apiserver");
    const std::vector<std::string> verbs = {"get",    "list",   "list_rv0", "create",
                                            "update", "delete", "watch"};
    std::string data = "# clients, then p99 ms of:";
    for (const std::string& verb : verbs)
      data += " " + verb;
    data += "\n";
    int points = 0;
    if (s != nullptr && s->skip.empty() && !s->outcomes.empty() && s->outcomes.front().doc) {
      const api::Value* levels = s->outcomes.front().doc->find("levels");
      if (levels != nullptr && levels->isArray()) {
        for (const api::Value& level : levels->items()) {
          const api::Value* clients = level.find("clients");
          if (clients == nullptr || !clients->isNumber()) continue;
          std::string row = benchNumber(clients->asDouble());
          bool complete = true;
          for (const std::string& verb : verbs) {
            const api::Value* v = level.find(verb + "_p99_ms");
            complete = complete && v != nullptr && v->isNumber();
            row += " " + (complete ? benchNumber(v->asDouble()) : std::string("0"));
          }
          if (!complete) continue;
          data += row + "\n";
          ++points;
        }
      }
    }
    if (points == 0) plot.missing = "apiserver " + suiteState(s);
    if (plot.missing.empty()) writeFile(dir + "/apiserver_latency_load.dat", data);
    draw(plot,
         header(plot.file, plot.title) +
             "set logscale x 2\nset logscale y\nset xlabel 'concurrent clients'\n"
             "set ylabel 'p99 latency, ms (client side)'\nset key outside right top\n"
             "set yrange [*:20000]\n"
             "set label 'Kubernetes SLO (a definition): mutating and single-object p99 <= 1 "
             "s' at graph 0.02, first 1300 font ',9'\n"
             "set label 'Kubernetes SLO (a definition): namespace LIST p99 <= 5 s' at "
             "graph 0.02, first 6500 font ',9'\n"
             "plot 'apiserver_latency_load.dat' u 1:2 w lp lw 2 t 'GET pod', "
             "'' u 1:3 w lp lw 2 t 'LIST, rv=\"\" (store)', "
             "'' u 1:4 w lp lw 2 t 'LIST, rv=\"0\" (cache)', "
             "'' u 1:5 w lp lw 2 t 'CREATE', '' u 1:6 w lp lw 2 t 'PUT', "
             "'' u 1:7 w lp lw 2 t 'DELETE', "
             "'' u 1:8 w lp dt 2 lw 2 t 'watch, after answer', "
             "1000 w l dt 3 lc rgb 'gray30' notitle, 5000 w l dt 4 lc rgb 'gray50' notitle\n");
  }

  // 5. Requests/s through a ClusterIP: kube-proxy's rule sets beside the eBPF socket LB.
  {
    Plot plot{"baselines_requests.png",
              "Requests/s through a ClusterIP (client netns -> backend netns)", ""};
    const Suite* s = findSuite(suites, "baselines");
    std::string data = "# mode short_first short_last keepalive_first keepalive_last\n";
    int points = 0;
    if (s != nullptr && s->skip.empty() && !s->outcomes.empty()) {
      for (const std::string mode : {"iptables_legacy", "iptables_nft", "nftables", "ebpf"}) {
        std::string row = mode;
        bool complete = true;
        for (const std::string key : {"_short_rps_first", "_short_rps_last", "_keepalive_rps_first",
                                      "_keepalive_rps_last"}) {
          auto v = metric(s->outcomes.front(), mode + key);
          if (!v) complete = false;
          row += " " + (v ? benchNumber(*v) : std::string("0"));
        }
        if (!complete) continue;
        data += row + "\n";
        ++points;
      }
    }
    if (points == 0) plot.missing = "baselines " + suiteState(s);
    if (plot.missing.empty()) writeFile(dir + "/baselines_requests.dat", data);
    draw(plot, header(plot.file, plot.title) +
                   "set style data histograms\nset style histogram cluster gap 1\n"
                   "set style fill solid 0.8 border -1\nset ylabel 'requests per second'\n"
                   "set yrange [0:*]\nset key top right\n"
                   "plot 'baselines_requests.dat' u 2:xtic(1) t 'new connection, first service', "
                   "'' u 3 t 'new connection, last service', "
                   "'' u 4 t 'keep-alive, first service', '' u 5 t 'keep-alive, last service'\n");
  }
  return plots;
}

// The apiserver suite's figures per load level (its "levels"), p50 / p99 ms and requests/s per
// verb, and Kubernetes' SLO thresholds as the suite states them (definitions, not measurements).
std::string apiserverLevels(const api::Value& doc) {
  const api::Value* levels = doc.find("levels");
  if (levels == nullptr || !levels->isArray() || levels->items().empty()) return "";
  static const std::vector<std::pair<std::string, std::string>> verbs = {
      {"get", "GET pod"},
      {"list", "LIST pods rv=\"\""},
      {"list_rv0", "LIST pods rv=\"0\""},
      {"create", "CREATE"},
      {"update", "PUT"},
      {"delete", "DELETE"},
      {"watch", "watch after answer"}};
  auto figure = [](const api::Value& level, const std::string& key) {
    const api::Value* v = level.find(key);
    return v != nullptr && v->isNumber() ? benchNumber(v->asDouble()) : std::string("-");
  };
  std::ostringstream md;
  md << "\nPer load level: p50 / p99 ms and requests/s (watch: events/s delivered)\n\n"
        "| clients |";
  for (const auto& [key, title] : verbs)
    md << " " << title << " |";
  md << " all verbs req/s |\n|---|";
  for (size_t i = 0; i <= verbs.size(); ++i)
    md << "---|";
  md << "\n";
  for (const api::Value& level : levels->items()) {
    md << "| " << figure(level, "clients") << " |";
    for (const auto& [key, title] : verbs) {
      md << " " << figure(level, key + "_p50_ms") << " / " << figure(level, key + "_p99_ms") << ", "
         << figure(level, key + (key == "watch" ? "_events_per_second" : "_requests_per_second"))
         << " |";
    }
    md << " " << figure(level, "requests_per_second") << " |\n";
  }
  if (const api::Value* slo = doc.find("slo")) {
    const api::Value* source = slo->find("source");
    md << "\nKubernetes' SLO thresholds for p99 ("
       << cell(source != nullptr && source->isString() ? source->text() : "definitions")
       << "): mutating calls " << figure(*slo, "mutating_p99_ms") << " ms, single-object reads "
       << figure(*slo, "single_object_read_p99_ms") << " ms, namespace LISTs "
       << figure(*slo, "namespace_list_p99_ms") << " ms.\n";
  }
  return md.str();
}

std::string report(const std::vector<Suite>& suites, const std::vector<Plot>& plots,
                   const AllOptions& options, double totalSeconds) {
  std::ostringstream md;
  char when[64];
  const std::time_t now = std::time(nullptr);
  std::strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  md << "# Skiff benchmark results\n\n";
  md << "`skiff bench all" << (options.quick ? " --quick" : "") << "`, " << when << ", "
     << fixed(totalSeconds, 0) << " s in all. Machine: " << machineLine() << ".\n\n";
  md << "Every suite ran as its own child process; figures are the suites' own (medians where "
        "they take several runs). JSON: `<suite>.json` (sweep points `<suite>-<param>-<value>"
        ".json`), logs: `<suite>.log`.\n\n";
  md << "## Summary\n\n| suite | status | seconds | figures |\n|---|---|---|---|\n";
  for (const Suite& s : suites) {
    double seconds = 0;
    for (const Outcome& o : s.outcomes)
      seconds += o.seconds;
    std::string figures;
    if (!s.outcomes.empty() && s.primary < s.outcomes.size() &&
        s.outcomes[s.primary].status == "ok") {
      figures = headline(s, s.outcomes[s.primary]);
    }
    md << "| " << s.name << " | " << cell(suiteState(&s)) << " | "
       << (s.outcomes.empty() ? "-" : fixed(seconds)) << " | " << cell(figures) << " |\n";
  }
  md << "\n## Plots\n\n| plot | file | status |\n|---|---|---|\n";
  for (const Plot& p : plots) {
    md << "| " << p.title << " | " << (p.missing.empty() ? "[" + p.file + "](" + p.file + ")" : "-")
       << " | " << (p.missing.empty() ? "drawn" : cell("missing: " + p.missing)) << " |\n";
  }
  for (const Suite& s : suites) {
    bool any = false;
    for (const Outcome& o : s.outcomes)
      any = any || metricsOf(o) != nullptr;
    if (!any) continue;
    md << "\n## " << s.name << "\n\n";
    if (s.outcomes.size() > 1) {
      // Sweep: one column per point.
      md << "| metric |";
      for (const Outcome& o : s.outcomes)
        md << " " << o.label << " |";
      md << "\n|---|";
      for (size_t i = 0; i < s.outcomes.size(); ++i)
        md << "---|";
      md << "\n";
      std::vector<std::string> keys;
      for (const Outcome& o : s.outcomes) {
        if (const api::Value* m = metricsOf(o)) {
          for (const auto& member : m->members())
            if (std::find(keys.begin(), keys.end(), member.key) == keys.end())
              keys.push_back(member.key);
        }
      }
      for (const std::string& key : keys) {
        md << "| " << key << " |";
        for (const Outcome& o : s.outcomes) {
          auto v = metric(o, key);
          md << " " << (v ? benchNumber(*v) : (o.status == "ok" ? "-" : o.status)) << " |";
        }
        md << "\n";
      }
      continue;
    }
    const Outcome& o = s.outcomes.front();
    if (const api::Value* params = o.doc->find("params")) {
      md << "Parameters: `" << api::writeJson(*params) << "`\n\n";
    }
    md << "| metric | value |\n|---|---|\n";
    for (const auto& member : metricsOf(o)->members()) {
      if (member.value.isNumber())
        md << "| " << member.key << " | " << benchNumber(member.value.asDouble()) << " |\n";
    }
    if (s.name == "apiserver") md << apiserverLevels(*o.doc);
  }
  return md.str();
}

// ---- the plan ----------------------------------------------------------------------------------

std::vector<Suite> plan(CLI::App& root, const AllOptions& o) {
  const bool quick = o.quick;
  const bool root_user = ::geteuid() == 0;
  std::vector<Suite> suites;
  auto skiff = [](std::string file, std::string label, std::vector<std::string> args) {
    args.insert(args.begin(), "bench");
    args.push_back("--json");
    return Point{std::move(file), std::move(label), "skiff", std::move(args)};
  };
  auto withQuick = [&](std::vector<std::string> args, CLI::App* command) {
    if (quick && hasOption(command, "--quick")) args.push_back("--quick");
    return args;
  };

  {
    Suite s{"micro", "", {}, 0, {}};
    const auto binaries = microBenchmarks();
    if (binaries.empty()) {
      s.skip = "not built (no *_bench binaries in the build's bench/ folder; SKIFF_BUILD_BENCH=ON)";
    }
    for (const fs::path& p : binaries) {
      const std::string name = p.filename().string();
      std::vector<std::string> args = standaloneBenchmarkArgs(name, quick);
      if (args.empty()) {
        args = {quick ? "--benchmark_min_time=0.001" : "--benchmark_min_time=0.2",
                "--benchmark_format=json"};
      }
      s.points.push_back(Point{"micro-" + name, name, p.string(), std::move(args)});
    }
    suites.push_back(std::move(s));
  }
  {
    Suite s{"store", "", {}, 0, {}};
    s.points.push_back(skiff("store", "", withQuick({"store"}, benchCommand(root, "store"))));
    suites.push_back(std::move(s));
  }
  {
    Suite s{"apiserver", "", {}, 0, {}};
    CLI::App* command = benchCommand(root, "apiserver");
    if (command == nullptr) s.skip = "not built (no `skiff bench apiserver` in this binary)";
    s.points.push_back(skiff("apiserver", "", withQuick({"apiserver"}, command)));
    suites.push_back(std::move(s));
  }
  {
    Suite s{"scheduler", "", {}, 0, {}};
    const std::vector<int> nodes =
        quick ? std::vector<int>{20, 100} : std::vector<int>{100, 500, 1000, 2000};
    const int pods = quick ? 300 : 3000;
    for (int n : nodes) {
      s.points.push_back(
          skiff("scheduler-nodes-" + std::to_string(n), "nodes=" + std::to_string(n),
                {"scheduler", "--nodes", std::to_string(n), "--pods", std::to_string(pods)}));
    }
    s.primary = s.points.size() - 1;
    suites.push_back(std::move(s));
  }
  {
    Suite s{"controllers", "", {}, 0, {}};
    s.points.push_back(
        skiff("controllers", "", withQuick({"controllers"}, benchCommand(root, "controllers"))));
    suites.push_back(std::move(s));
  }
  {
    Suite s{"pod-startup", "", {}, 0, {}};
    // Real containers (skiff up, runc) in the full run as root; hollow pods otherwise.
    const bool real = !quick && root_user && haveExecutable("runc");
    std::vector<std::string> args = {"pod-startup", "--pods", quick ? "20" : (real ? "30" : "100"),
                                     "--rate", quick ? "20" : "10"};
    if (!real) args.push_back("--hollow");
    s.points.push_back(skiff("pod-startup", real ? "runc" : "hollow", args));
    suites.push_back(std::move(s));
  }
  {
    Suite s{"endpoints", "", {}, 0, {}};
    s.points.push_back(
        skiff("endpoints", "", withQuick({"endpoints"}, benchCommand(root, "endpoints"))));
    suites.push_back(std::move(s));
  }
  {
    Suite s{"dpdk", "", {}, 0, {}};
    CLI::App* dpdk = benchCommand(root, "dpdk");
    if (dpdk == nullptr) s.skip = "not built (SKIFF_WITH_DPDK=OFF)";
    const std::vector<int> services =
        quick ? std::vector<int>{1, 1000} : std::vector<int>{1, 100, 1000, 10000};
    for (int n : services) {
      s.points.push_back(skiff("dpdk-services-" + std::to_string(n),
                               "services=" + std::to_string(n),
                               withQuick({"dpdk", "--services", std::to_string(n)}, dpdk)));
    }
    s.primary = s.points.size() - 1;
    suites.push_back(std::move(s));
  }
  for (const std::string name : {"xdp", "socklb"}) {
    Suite s{name, "", {}, 0, {}};
    CLI::App* command = benchCommand(root, name);
    if (command == nullptr) {
      s.skip = "not built (no `skiff bench " + name + "` in this binary)";
    } else if (!root_user) {
      s.skip = "needs root (BPF)";
    } else {
      s.skip = bpfUnavailable();
    }
    s.points.push_back(skiff(name, "", withQuick({name}, command)));
    suites.push_back(std::move(s));
  }
  {
    Suite s{"baselines", "", {}, 0, {}};
    CLI::App* command = benchCommand(root, "baselines");
    if (command == nullptr) {
      s.skip = "not built";
    } else if (!root_user) {
      s.skip = "needs root (network namespaces, iptables, nftables, BPF)";
    }
    s.points.push_back(skiff("baselines", "", withQuick({"baselines"}, command)));
    suites.push_back(std::move(s));
  }
  if (!o.only.empty()) {
    std::vector<std::string> wanted;
    std::stringstream list(o.only);
    for (std::string name; std::getline(list, name, ',');) {
      if (name.empty()) continue;
      bool known = false;
      for (const Suite& s : suites)
        known = known || s.name == name;
      if (!known) throw std::invalid_argument("--only: no suite '" + name + "'");
      wanted.push_back(name);
    }
    std::vector<Suite> kept;
    for (Suite& s : suites) {
      if (std::find(wanted.begin(), wanted.end(), s.name) != wanted.end())
        kept.push_back(std::move(s));
    }
    suites = std::move(kept);
  }
  return suites;
}

int runBenchAll(CLI::App& root, const AllOptions& options) {
  std::ostream& progress = std::cerr;
  std::error_code error;
  fs::create_directories(options.dir, error);
  if (error) throw std::runtime_error("--json " + options.dir + ": " + error.message());
  const std::string dir = fs::absolute(options.dir).string();
  std::vector<Suite> suites = plan(root, options);
  const double timeout =
      options.timeoutSeconds > 0 ? options.timeoutSeconds : (options.quick ? 100 : 1800);
  size_t total = 0;
  for (const Suite& s : suites)
    total += s.points.size();
  progress << "skiff bench all" << (options.quick ? " --quick" : "") << ": " << suites.size()
           << " suites, " << total << " runs, results in " << dir << "\n";
  const auto start = Clock::now();
  size_t index = 0;
  bool failed = false;
  for (Suite& s : suites) {
    if (!s.skip.empty()) {
      index += s.points.size();
      progress << "[" << index << "/" << total << "] " << s.name << ": skipped: " << s.skip << "\n";
      std::ofstream(dir + "/" + s.name + ".json")
          << "{\"suite\":\"" << s.name
          << "\",\"skipped\":true,\"reason\":" << api::writeJson(api::Value::string(s.skip))
          << "}\n";
      continue;
    }
    api::Value microMetrics = api::Value::object();
    for (const Point& p : s.points) {
      ++index;
      progress << "[" << index << "/" << total << "] " << s.name
               << (p.label.empty() ? "" : " (" + p.label + ")") << " ...\n";
      Outcome o = runPoint(p, dir, timeout, progress);
      progress << "[" << index << "/" << total << "] " << s.name
               << (p.label.empty() ? "" : " (" + p.label + ")") << ": " << o.status
               << (o.reason.empty() ? "" : ": " + o.reason) << " (" << fixed(o.seconds) << " s)\n";
      if (o.status == "failed") failed = true;
      if (s.name == "micro" && o.doc) addMicro(*o.doc, p.label, microMetrics);
      s.outcomes.push_back(std::move(o));
    }
    if (s.name == "micro") {
      // One document for all the binaries, in the suites' shape.
      api::Value doc = api::Value::object();
      doc.set("suite", api::Value::string("micro"));
      api::Value params = api::Value::object();
      params.set("binaries", api::Value::integer(static_cast<int64_t>(s.points.size())));
      params.set("benchmark_min_time", api::Value::string(options.quick ? "0.001" : "0.2"));
      doc.set("params", std::move(params));
      const size_t figures = microMetrics.members().size();
      doc.set("metrics", std::move(microMetrics));
      writeFile(dir + "/micro.json", api::writeJson(doc) + "\n");
      Outcome summary;
      summary.status = "ok";
      for (const Outcome& o : s.outcomes) {
        summary.seconds += o.seconds;
        if (o.status != "ok") {
          summary.status = o.status;
          summary.reason = o.label + ": " + o.reason;
        }
      }
      if (summary.status == "ok") {
        summary.reason = "";
      }
      summary.doc = std::move(doc);
      summary.label = std::to_string(figures) + " benchmarks";
      s.outcomes = {std::move(summary)};
      s.primary = 0;
      continue;
    }
    if (s.points.size() > 1 && s.primary < s.outcomes.size() && s.outcomes[s.primary].doc) {
      fs::copy_file(dir + "/" + s.points[s.primary].file + ".json", dir + "/" + s.name + ".json",
                    fs::copy_options::overwrite_existing, error);
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  progress << "plots:\n";
  const std::vector<Plot> plots = drawPlots(suites, dir, progress);
  const std::string md = report(suites, plots, options, seconds);
  writeFile(dir + "/results.md", md);
  std::cout << md;
  progress << "skiff bench all: " << fixed(seconds, 0) << " s; " << dir << "/results.md\n";
  return failed ? 1 : 0;
}

}  // namespace

void addBenchAllCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<AllOptions>();
  CLI::App* cmd = benchGroup(app).add_subcommand(
      "all",
      "Every benchmark suite, each in a child process: JSON, a Markdown report and PNG plots");
  cmd->add_flag("--quick", options->quick, "Small loads: under 3 minutes in all (CI smoke)");
  cmd->add_option("--json", options->dir, "Directory for the JSON, results.md and the plots")
      ->capture_default_str();
  cmd->add_option(
      "--only", options->only,
      "Comma-separated suites (micro, store, apiserver, scheduler, controllers, pod-startup, "
      "endpoints, dpdk, xdp, socklb, baselines)");
  cmd->add_option("--timeout", options->timeoutSeconds,
                  "Seconds each child may take before it is stopped (default 100, full 1800)");
  CLI::App* root = &app;
  cmd->callback([options, root, &exit_code] {
    try {
      exit_code = runBenchAll(*root, *options);
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      exit_code = 1;
    }
  });
}

}  // namespace skiff::cli
