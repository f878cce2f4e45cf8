#include "kubelet/runtime/runc_runtime.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "control/api/json.h"
#include "kubelet/runtime/oci_spec.h"
#include "kubelet/runtime/process.h"

extern char** environ;

namespace skiff::kubelet {
namespace fs = std::filesystem;
namespace {

int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string readSmallFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void writeFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::trunc);
  out << content;
  if (!out) throw RuntimeError("cannot write " + path);
}

// Alive and not a zombie waiting for the shim to reap it.
bool processRunning(int pid) {
  if (pid <= 0) return false;
  const std::string stat = readSmallFile("/proc/" + std::to_string(pid) + "/stat");
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return false;
  const char state = stat[paren + 2];
  return state != 'Z' && state != 'X' && state != 'x';
}

std::string selfDir() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  buf[n] = 0;
  return fs::path(buf).parent_path().string();
}

}  // namespace

void validateContainerId(const std::string& id) {
  bool ok = !id.empty() && id.size() <= 128 && std::isalnum(static_cast<unsigned char>(id[0]));
  for (char c : id) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-');
  }
  if (!ok) {
    throw std::invalid_argument("container id \"" + id +
                                "\": want [A-Za-z0-9][A-Za-z0-9_.-]*, at most 128 characters");
  }
}

RuncRuntime::RuncRuntime(RuncOptions options) : options_(std::move(options)) {
  if (options_.shim.empty()) options_.shim = selfDir() + "/skiff-shim";
  std::error_code ec;
  fs::create_directories(options_.root, ec);
  fs::create_directories(options_.state_dir, ec);
  if (ec) throw RuntimeError("cannot create " + options_.state_dir + ": " + ec.message());
}

std::vector<std::string> RuncRuntime::runc(std::vector<std::string> args) const {
  std::vector<std::string> argv = {options_.runc, "--root", options_.root};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

void RuncRuntime::create(const ContainerConfig& config) {
  validateContainerId(config.id);
  const std::string state = stateDir(config.id);
  if (fs::exists(state)) throw RuntimeError("container " + config.id + " already exists");
  std::string spec;
  try {
    spec = api::writeJson(makeRuntimeSpec(config), api::JsonStyle::kPretty);
  } catch (const std::invalid_argument& e) {
    throw RuntimeError(e.what());
  }
  fs::create_directories(state);
  auto cleanup = [&] {
    std::error_code ec;
    fs::remove_all(state, ec);
  };
  try {
    fs::create_directories(config.bundle_dir);
    writeFile(config.bundle_dir + "/config.json", spec);
    if (!config.log_path.empty()) fs::create_directories(fs::path(config.log_path).parent_path());
  } catch (const std::exception& e) {
    cleanup();
    throw RuntimeError("container " + config.id + ": " + e.what());
  }

  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) {
    cleanup();
    throw RuntimeError(std::string("pipe: ") + std::strerror(errno));
  }
  const std::string log = config.log_path.empty() ? "/dev/null" : config.log_path;
  std::vector<std::string> argv = {
      options_.shim, "--id",        config.id, "--bundle",    config.bundle_dir,
      "--runc",      options_.runc, "--root",  options_.root, "--state",
      state,         "--log",       log};
  std::vector<char*> cargv;
  for (auto& s : argv)
    cargv.push_back(s.data());
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, ready[1], 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t all;
  sigfillset(&all);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, cargv[0], &actions, &attr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(ready[1]);
  if (rc != 0) {
    ::close(ready[0]);
    cleanup();
    throw RuntimeError("cannot run " + options_.shim + ": " + std::strerror(rc));
  }
  // The shim's first process exits at once (it forks to detach); its child reports readiness.
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + options_.command_timeout;
  char buf[4096];
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{ready[0], POLLIN, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    const ssize_t r = ::read(ready[0], buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    line.append(buf, static_cast<size_t>(r));
  }
  ::close(ready[0]);
  while (!line.empty() && line.back() == '\n')
    line.pop_back();
  if (line.starts_with("ok ")) return;
  // Leave nothing: runc may have half-made the container.
  runProcess(runc({"delete", "--force", config.id}), options_.command_timeout);
  cleanup();
  if (line.starts_with("error ")) {
    throw RuntimeError("container " + config.id + ": " + line.substr(6));
  }
  throw RuntimeError("container " + config.id + ": skiff-shim (" + options_.shim +
                     ") reported nothing" + (line.empty() ? "" : ": " + line));
}

void RuncRuntime::start(const std::string& id) {
  validateContainerId(id);
  const auto argv = runc({"start", id});
  // Taken before: a short-lived container can exit before `runc start` returns, and its finish
  // time must not come before its start.
  const int64_t started = nowNs();
  const ProcessResult r = runProcess(argv, options_.command_timeout);
  if (!r.ok()) throw RuntimeError(describeFailure(argv, r));
  writeFile(stateDir(id) + "/started", std::to_string(started));
}

ContainerStatus RuncRuntime::status(const std::string& id) {
  validateContainerId(id);
  ContainerStatus s;
  s.id = id;
  const std::string state = stateDir(id);
  const std::string started = readSmallFile(state + "/started");
  if (!started.empty()) s.started_at_ns = std::stoll(started);
  const std::string exit = readSmallFile(state + "/exit");
  if (!exit.empty()) {
    std::istringstream in(exit);
    int code = 0;
    int64_t finished = 0;
    in >> code >> finished;
    s.state = ContainerState::kStopped;
    s.exit_code = code;
    s.finished_at_ns = finished;
    s.reason = code == 0 ? "Completed" : "Error";
    return s;
  }
  // The hot path of every pod sync: started, no exit record, and both the shim and the
  // container's init alive means running, without asking runc (tens of milliseconds a call).
  if (!started.empty()) {
    const std::string pid_text = readSmallFile(state + "/pid");
    const std::string shim_text = readSmallFile(state + "/shim.pid");
    const int pid = pid_text.empty() ? 0 : std::atoi(pid_text.c_str());
    const int shim = shim_text.empty() ? 0 : std::atoi(shim_text.c_str());
    if (processRunning(pid) && processRunning(shim) && readSmallFile(state + "/exit").empty()) {
      s.state = ContainerState::kRunning;
      s.pid = pid;
      return s;
    }
  }
  const auto argv = runc({"state", id});
  const ProcessResult r = runProcess(argv, options_.command_timeout);
  if (!r.ok()) {
    if (!fs::exists(state)) return s;  // unknown
    // runc forgot it but we made it: it is gone without an exit record (the shim was killed).
    s.state =
        fs::exists(options_.root + "/" + id) ? ContainerState::kUnknown : ContainerState::kStopped;
    if (s.state == ContainerState::kStopped) {
      s.reason = "Error";
      s.exit_code = 255;
    }
    return s;
  }
  const api::Value doc = api::parseJson(r.out, {.source = "runc state"});
  const api::Value* state_field = doc.find("status");
  const std::string st = state_field && state_field->isString() ? state_field->text() : "";
  if (const api::Value* pid = doc.find("pid"); pid && pid->isInteger()) {
    s.pid = static_cast<int>(pid->asInt());
  }
  if (st == "created") {
    s.state = ContainerState::kCreated;
  } else if (st == "running" || st == "pausing" || st == "paused") {
    s.state = ContainerState::kRunning;
  } else if (st == "stopped") {
    // The shim writes the exit file right after reaping; give it that moment.
    for (int i = 0; i < 50; ++i) {
      const std::string e = readSmallFile(state + "/exit");
      if (!e.empty()) return status(id);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    s.state = ContainerState::kStopped;
    s.exit_code = 255;
    s.reason = "Error";
  }
  return s;
}

void RuncRuntime::kill(const std::string& id, int signal) {
  validateContainerId(id);
  const auto argv = runc({"kill", id, std::to_string(signal)});
  const ProcessResult r = runProcess(argv, options_.command_timeout);
  if (!r.ok()) {
    // Killing what already stopped is not an error.
    if (status(id).state == ContainerState::kStopped) return;
    throw RuntimeError(describeFailure(argv, r));
  }
}

ContainerStatus RuncRuntime::stop(const std::string& id, std::chrono::milliseconds grace,
                                  int signal) {
  auto waitStopped = [&](std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (true) {
      ContainerStatus s = status(id);
      if (s.state == ContainerState::kStopped || s.state == ContainerState::kUnknown) return s;
      if (std::chrono::steady_clock::now() >= deadline) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  };
  ContainerStatus s = status(id);
  if (s.state == ContainerState::kStopped || s.state == ContainerState::kUnknown) return s;
  if (s.state == ContainerState::kRunning) {
    kill(id, signal);
    s = waitStopped(grace);
    if (s.state == ContainerState::kStopped) return s;
  }
  kill(id, SIGKILL);
  s = waitStopped(std::chrono::seconds(10));
  if (s.state != ContainerState::kStopped) {
    throw RuntimeError("container " + id + " did not stop after SIGKILL");
  }
  return s;
}

void RuncRuntime::remove(const std::string& id) {
  validateContainerId(id);
  const auto argv = runc({"delete", "--force", id});
  const ProcessResult r = runProcess(argv, options_.command_timeout);
  if (!r.ok() && fs::exists(options_.root + "/" + id)) {
    throw RuntimeError(describeFailure(argv, r));
  }
  // The shim exits once the output is drained; wait a little so nothing outlives remove().
  const std::string shim_pid = readSmallFile(stateDir(id) + "/shim.pid");
  if (!shim_pid.empty()) {
    const pid_t pid = std::stoi(shim_pid);
    for (int i = 0; i < 150 && ::kill(pid, 0) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  std::error_code ec;
  fs::remove_all(stateDir(id), ec);
}

std::vector<std::string> RuncRuntime::list() {
  std::vector<std::string> ids;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(options_.state_dir, ec)) {
    if (e.is_directory()) ids.push_back(e.path().filename().string());
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

ExecResult RuncRuntime::exec(const std::string& id, const std::vector<std::string>& argv,
                             std::chrono::milliseconds timeout) {
  validateContainerId(id);
  if (argv.empty()) throw RuntimeError("container " + id + ": exec of an empty command");
  if (status(id).state != ContainerState::kRunning) {
    throw RuntimeError("container " + id + " is not running");
  }
  std::vector<std::string> args = {"exec", id};
  args.insert(args.end(), argv.begin(), argv.end());
  const ProcessResult r = runProcess(runc(std::move(args)), timeout);
  ExecResult out;
  out.exit_code = r.exit_code;
  out.timed_out = r.timed_out;
  out.output = r.out + r.err;
  constexpr size_t kMaxOutput = 4096;
  if (out.output.size() > kMaxOutput) out.output.resize(kMaxOutput);
  return out;
}

}  // namespace skiff::kubelet
