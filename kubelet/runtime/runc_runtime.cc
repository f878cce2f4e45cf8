#include "kubelet/runtime/runc_runtime.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
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

// Waits until `pid` has exited (a zombie counts: the shim reaps its container, and whoever
// inherited the detached shim reaps it when it will) or `timeout` passed; true when it exited. A
// pidfd wakes at the exit itself; without one (an old kernel), /proc is looked at every 10 ms.
bool waitExited(int pid, std::chrono::milliseconds timeout) {
  if (!processRunning(pid)) return true;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd >= 0) {
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{fd, POLLIN, 0};
      const int n = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left.count())));
      if (n < 0 && errno == EINTR) continue;
      ::close(fd);
      return n > 0 || !processRunning(pid);
    }
  }
  while (processRunning(pid)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

std::string selfDir() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  buf[n] = 0;
  return fs::path(buf).parent_path().string();
}

void closeFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// The messages of runc's error entries in its JSON log (`runc --log F --log-format json`).
std::string runcLogErrors(const std::string& path) {
  std::ifstream in(path);
  std::string line, errors;
  while (std::getline(in, line)) {
    try {
      const api::Value entry = api::parseJson(line, {.source = path});
      const api::Value* level = entry.isObject() ? entry.find("level") : nullptr;
      const api::Value* msg = entry.isObject() ? entry.find("msg") : nullptr;
      if (!level || !msg || !level->isString() || !msg->isString()) continue;
      if (level->text() != "error" && level->text() != "fatal") continue;
      if (errors.find(msg->text()) != std::string::npos) continue;
      errors += (errors.empty() ? "" : "; ") + msg->text();
    } catch (const std::exception&) {
    }
  }
  return errors;
}

class RuncExecProcess final : public ExecProcess {
 public:
  RuncExecProcess(pid_t runc_pid, std::string dir, std::string what, int in, int out, int err,
                  bool tty)
      : runc_pid_(runc_pid),
        dir_(std::move(dir)),
        what_(std::move(what)),
        in_(in),
        out_(out),
        err_(err),
        tty_(tty) {}
  ~RuncExecProcess() override {
    kill();
    try {
      wait();
    } catch (const RuntimeError&) {
    }
    if (!tty_) closeFd(in_);
    closeFd(out_);
    closeFd(err_);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  int stdinFd() const override { return in_; }
  int stdoutFd() const override { return out_; }
  int stderrFd() const override { return err_; }
  void closeStdin() override {
    std::lock_guard lock(stdin_mu_);
    if (tty_) {
      if (in_ >= 0) (void)!::write(in_, "\x04", 1);  // the terminal's VEOF: EOF for a reader
      return;
    }
    closeFd(in_);
  }
  void resize(uint16_t width, uint16_t height) override {
    if (!tty_ || out_ < 0) return;
    winsize size{};
    size.ws_col = width;
    size.ws_row = height;
    ::ioctl(out_, TIOCSWINSZ, &size);  // runc gets SIGWINCH and resizes the container's terminal
  }
  int wait() override {
    std::lock_guard lock(wait_mu_);
    if (!exit_code_) {
      int status = 0;
      while (::waitpid(runc_pid_, &status, 0) < 0 && errno == EINTR) {
      }
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      reaped_.store(true);
    }
    // runc exits 255 when it could not start the command, and says why in its log.
    if (*exit_code_ == 255) {
      const std::string errors = runcLogErrors(dir_ + "/runc.log");
      if (!errors.empty()) throw RuntimeError(what_ + ": " + errors);
    }
    return *exit_code_;
  }
  void kill() override {
    if (reaped_.load()) return;
    const std::string pid_text = readSmallFile(dir_ + "/pid");
    const int pid = pid_text.empty() ? 0 : std::atoi(pid_text.c_str());
    if (pid > 0 && processRunning(pid)) {
      ::kill(pid, SIGKILL);  // runc then exits with the command's status
    } else {
      ::kill(runc_pid_, SIGKILL);  // not started yet (or gone): stop runc itself
    }
  }

 private:
  pid_t runc_pid_;
  std::string dir_;
  std::string what_;
  int in_, out_, err_;
  bool tty_;
  std::mutex stdin_mu_;
  std::mutex wait_mu_;
  std::optional<int> exit_code_;
  std::atomic<bool> reaped_{false};
};

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
  // The shim outlives this process: it must hold none of our descriptors. Boost.Asio's sockets
  // (the kubelet API's and the proxier's listening sockets, apiserver connections) are not
  // close-on-exec, and a shim that kept them made a restarted agent fail to bind 10250.
  posix_spawn_file_actions_addclosefrom_np(&actions, 4);
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
  // The container's end is seen as it happens (its init's exit wakes a pidfd), then the shim's
  // exit record is read: nothing here sleeps out a period once the process is gone.
  auto waitStopped = [&](std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    // The shim writes the exit record right after it reaps the container; it exits once the
    // output is drained, so its exit is the record's moment.
    const std::string shim_text = readSmallFile(stateDir(id) + "/shim.pid");
    const int shim = shim_text.empty() ? 0 : std::atoi(shim_text.c_str());
    auto shimAlive = [&] { return shim > 0 && processRunning(shim); };
    while (true) {
      ContainerStatus s = status(id);
      if (s.state == ContainerState::kStopped) return s;
      // Unknown while the shim lives is the moment between the exit and its record.
      if (s.state == ContainerState::kUnknown && !shimAlive()) return s;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return s;
      if (s.pid > 0 && processRunning(s.pid)) waitExited(s.pid, left);
      // The init is gone: the shim (woken by SIGCHLD) records the exit in a moment; read it
      // rather than ask runc.
      const bool gone = s.pid <= 0 || !processRunning(s.pid);
      for (int i = 0;
           gone && i < 20 && shimAlive() && readSmallFile(stateDir(id) + "/exit").empty(); ++i)
        waitExited(shim, std::chrono::milliseconds(10));
      if (!shimAlive()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  };
  ContainerStatus s = status(id);
  if (s.state == ContainerState::kStopped || s.state == ContainerState::kUnknown) return s;
  if (s.state == ContainerState::kRunning && signal != SIGKILL) {
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
  // The shim exits once the output is drained; wait a little so nothing outlives remove(). Its
  // exit, not its reaping: the detached shim's parent is whoever inherited it (init), which may
  // leave it a zombie for a while, and kill(pid, 0) succeeded on the zombie, which made every
  // remove() wait out 3 s.
  const std::string shim_pid = readSmallFile(stateDir(id) + "/shim.pid");
  if (!shim_pid.empty()) waitExited(std::atoi(shim_pid.c_str()), std::chrono::seconds(3));
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

namespace skiff::kubelet {

std::unique_ptr<ExecProcess> RuncRuntime::execStream(const std::string& id,
                                                     const std::vector<std::string>& argv,
                                                     const ExecStreamOptions& options) {
  validateContainerId(id);
  if (argv.empty()) throw RuntimeError("container " + id + ": exec of an empty command");
  if (status(id).state != ContainerState::kRunning) {
    throw RuntimeError("container " + id + " is not running");
  }
  static std::atomic<uint64_t> counter{0};
  const std::string dir = stateDir(id) + "/exec-" + std::to_string(counter.fetch_add(1)) + "-" +
                          std::to_string(nowNs());
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw RuntimeError("cannot create " + dir + ": " + ec.message());
  std::string what = "exec";
  for (const auto& a : argv)
    what += " " + a;
  what += " in container " + id;

  std::vector<std::string> args = {options_.runc,     "--root",       options_.root, "--log",
                                   dir + "/runc.log", "--log-format", "json",        "exec",
                                   "--pid-file",      dir + "/pid"};
  if (options.tty) args.push_back("--tty");
  args.push_back(id);
  args.insert(args.end(), argv.begin(), argv.end());
  std::vector<char*> cargv;
  for (auto& a : args)
    cargv.push_back(a.data());
  cargv.push_back(nullptr);

  // Our ends (parent) and the command's (child).
  int in = -1, out = -1, err = -1;
  std::vector<int> child_fds;
  auto fail = [&](const std::string& why) {
    closeFd(in);
    closeFd(out);
    closeFd(err);
    for (int fd : child_fds)
      ::close(fd);
    fs::remove_all(dir, ec);
    throw RuntimeError(what + ": " + why);
  };
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  std::string slave_name;
  if (options.tty) {
    // runc's foreground --tty copies between its own terminal and the container's: give it one,
    // as the controlling terminal of a new session, so a resize of ours reaches it (SIGWINCH).
    const int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) fail(std::string("posix_openpt: ") + std::strerror(errno));
    in = master;
    out = master;
    if (::grantpt(master) != 0 || ::unlockpt(master) != 0) {
      in = -1;
      closeFd(out);
      fail(std::string("cannot unlock a pseudo-terminal: ") + std::strerror(errno));
    }
    char name[128];
    if (::ptsname_r(master, name, sizeof name) != 0) {
      in = -1;
      closeFd(out);
      fail("ptsname failed");
    }
    slave_name = name;
    winsize size{};
    size.ws_col = 80;
    size.ws_row = 24;
    ::ioctl(master, TIOCSWINSZ, &size);
    flags |= POSIX_SPAWN_SETSID;
    posix_spawn_file_actions_addopen(&actions, 0, slave_name.c_str(), O_RDWR, 0);
    posix_spawn_file_actions_adddup2(&actions, 0, 1);
    posix_spawn_file_actions_adddup2(&actions, 0, 2);
  } else {
    int p[2];
    auto pipeFor = [&](bool wanted, int target, bool parent_writes) {
      if (!wanted) {
        posix_spawn_file_actions_addopen(&actions, target, "/dev/null",
                                         target == 0 ? O_RDONLY : O_WRONLY, 0);
        return -1;
      }
      if (::pipe2(p, O_CLOEXEC) != 0) fail(std::string("pipe: ") + std::strerror(errno));
      const int child = parent_writes ? p[0] : p[1];
      child_fds.push_back(child);
      posix_spawn_file_actions_adddup2(&actions, child, target);
      return parent_writes ? p[1] : p[0];
    };
    in = pipeFor(options.with_stdin, 0, true);
    out = pipeFor(options.with_stdout, 1, false);
    err = pipeFor(options.with_stderr, 2, false);
  }
  // An exec can run for as long as a session lasts: none of our descriptors beyond its stdio.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t all;
  sigfillset(&all);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, flags);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, cargv[0], &actions, &attr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  for (int fd : child_fds)
    ::close(fd);
  child_fds.clear();
  if (rc != 0) {
    if (options.tty) in = -1;  // the same descriptor as out
    fail("cannot run " + options_.runc + ": " + std::strerror(rc));
  }
  return std::make_unique<RuncExecProcess>(pid, dir, what, in, out, err, options.tty);
}

}  // namespace skiff::kubelet
