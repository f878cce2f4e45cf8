// skiff-shim: the parent of one runc container, so that the kubelet can restart without touching
// it. The kubelet starts it once per container:
//
//   skiff-shim --id ID --bundle DIR --runc RUNC --root RUNC_ROOT --state DIR --log FILE
//              (fd 3: a pipe for the readiness line)
//
// It detaches (setsid, forks once more so the kubelet's child exits at once), becomes a child
// subreaper, runs `runc create` with the container's stdout and stderr on pipes, and writes one
// line to fd 3: "ok PID" or "error MESSAGE" (runc's own words). The kubelet then runs
// `runc start`. The shim copies the container's output to FILE in Kubernetes' CRI log format
// (`2026-01-01T00:00:00.000000000Z stdout F line`, lines over 16 KiB split into P parts), reaps
// the container and writes STATE/exit ("CODE FINISHED_NS"; CODE is 128+signal when killed), then
// exits when the output is drained. SIGHUP reopens FILE (log rotation).

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

constexpr size_t kMaxLine = 16 * 1024;

struct Args {
  std::string id, bundle, runc = "runc", root, state, log;
};

volatile sig_atomic_t g_reopen = 0;
void onHup(int) {
  g_reopen = 1;
}

// Closes every descriptor from `first` up (close_range, else one by one as /proc/self/fd lists).
void closeInheritedFds(int first) {
  if (syscall(SYS_close_range, static_cast<unsigned>(first), ~0U, 0U) == 0) return;
  std::vector<int> fds;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(dir)) {
      const int fd = atoi(e->d_name);
      if (fd >= first && fd != dirfd(dir)) fds.push_back(fd);
    }
    closedir(dir);
  }
  for (int fd : fds)
    close(fd);
}

int64_t nowNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::string timestamp() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t;
  gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  const size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  snprintf(buf + n, sizeof buf - n, ".%09ldZ", ts.tv_nsec);
  return buf;
}

void writeAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    const ssize_t w = write(fd, s.data() + off, s.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return;  // a full disk loses log lines, never the container
    off += static_cast<size_t>(w);
  }
}

void writeFileAtomic(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  writeAll(fd, content);
  fsync(fd);
  close(fd);
  rename(tmp.c_str(), path.c_str());
}

class LogWriter {
 public:
  explicit LogWriter(std::string path) : path_(std::move(path)) { reopen(); }
  void reopen() {
    if (fd_ >= 0) close(fd_);
    fd_ = open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  }
  // Appends output of `stream`; complete lines become F entries, long ones P parts.
  void feed(int stream, const char* data, size_t size) {
    std::string& buf = pending_[stream];
    buf.append(data, size);
    size_t start = 0;
    while (true) {
      const size_t nl = buf.find('\n', start);
      if (nl == std::string::npos) break;
      entry(stream, buf.substr(start, nl - start), true);
      start = nl + 1;
    }
    buf.erase(0, start);
    while (buf.size() >= kMaxLine) {
      entry(stream, buf.substr(0, kMaxLine), false);
      buf.erase(0, kMaxLine);
    }
  }
  void flush(int stream) {
    if (!pending_[stream].empty()) entry(stream, pending_[stream], true);
    pending_[stream].clear();
  }

 private:
  void entry(int stream, const std::string& line, bool full) {
    if (fd_ < 0) return;
    writeAll(fd_, timestamp() + (stream == 0 ? " stdout " : " stderr ") + (full ? "F " : "P ") +
                      line + "\n");
  }
  std::string path_;
  int fd_ = -1;
  std::string pending_[2];
};

std::string readAllNonBlocking(int fd) {
  std::string out;
  const int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  char buf[4096];
  while (true) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  fcntl(fd, F_SETFL, flags);
  return out;
}

std::string oneLine(std::string s) {
  for (auto& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!s.empty() && s.back() == ' ')
    s.pop_back();
  return s;
}

int runShim(const Args& a, int ready_fd) {
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    writeAll(ready_fd, std::string("error pipe: ") + strerror(errno) + "\n");
    return 1;
  }
  const std::string pid_file = a.state + "/pid";
  // SIGCHLD as a descriptor beside the output pipes: the container's exit is recorded as it
  // happens, not at the next poll timeout (the pipes may stay open a moment after it).
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, nullptr);
  const int chld_fd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  const pid_t runc = fork();
  if (runc == 0) {
    sigprocmask(SIG_UNBLOCK, &chld, nullptr);
    const int null = open("/dev/null", O_RDONLY);
    dup2(null, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    std::vector<std::string> argv = {a.runc, "--root", a.root};
    argv.insert(argv.end(), {"create", "--bundle", a.bundle, "--pid-file", pid_file, a.id});
    std::vector<char*> cargv;
    for (auto& s : argv)
      cargv.push_back(s.data());
    cargv.push_back(nullptr);
    execvp(cargv[0], cargv.data());
    fprintf(stderr, "cannot run %s: %s\n", a.runc.c_str(), strerror(errno));
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  int status = 0;
  while (waitpid(runc, &status, 0) < 0 && errno == EINTR) {
  }
  // The container waits for `runc start`: whatever is in the pipes now is runc's own output.
  const std::string runc_output = readAllNonBlocking(err[0]) + readAllNonBlocking(out[0]);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string why = oneLine(runc_output);
    if (why.empty()) why = "runc create failed with status " + std::to_string(status);
    writeAll(ready_fd, "error " + why + "\n");
    return 1;
  }
  pid_t container = 0;
  {
    std::ifstream in(pid_file);
    in >> container;
  }
  if (container <= 0) {
    writeAll(ready_fd, "error runc create wrote no pid file\n");
    return 1;
  }
  writeAll(ready_fd, "ok " + std::to_string(container) + "\n");
  close(ready_fd);

  LogWriter log(a.log);
  pollfd fds[3] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {chld_fd, POLLIN, 0}};
  int open_fds = 2;
  bool exited = false;
  int64_t exited_at = 0;
  char buf[65536];
  while (true) {
    if (g_reopen) {
      g_reopen = 0;
      log.reopen();
    }
    // Reap: the container (reparented to us as subreaper) and anything else that ends.
    while (true) {
      int st = 0;
      const pid_t p = waitpid(-1, &st, WNOHANG);
      if (p <= 0) break;
      if (p == container) {
        const int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        exited = true;
        exited_at = nowNs();
        writeFileAtomic(a.state + "/exit",
                        std::to_string(code) + " " + std::to_string(exited_at) + "\n");
      }
    }
    if (open_fds == 0 && exited) break;
    // After the container exits, the pipes close when its last process does; give stragglers
    // that inherited them a moment, not forever.
    if (exited && nowNs() - exited_at > 2'000'000'000LL) break;
    const int n = poll(fds, chld_fd >= 0 ? 3 : 2, 200);
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    if (chld_fd >= 0 && (fds[2].revents & POLLIN)) {
      signalfd_siginfo info;
      while (read(chld_fd, &info, sizeof info) > 0) {
      }
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t r = read(fds[i].fd, buf, sizeof buf);
      if (r > 0) {
        log.feed(i, buf, static_cast<size_t>(r));
      } else if (r == 0 || errno != EINTR) {
        log.flush(i);
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  log.flush(0);
  log.flush(1);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const std::string v = argv[i + 1];
    if (k == "--id")
      a.id = v;
    else if (k == "--bundle")
      a.bundle = v;
    else if (k == "--runc")
      a.runc = v;
    else if (k == "--root")
      a.root = v;
    else if (k == "--state")
      a.state = v;
    else if (k == "--log")
      a.log = v;
    else {
      fprintf(stderr, "skiff-shim: unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  if (a.id.empty() || a.bundle.empty() || a.root.empty() || a.state.empty() || a.log.empty()) {
    fprintf(stderr,
            "usage: skiff-shim --id ID --bundle DIR --runc RUNC --root DIR --state DIR --log FILE "
            "(readiness pipe on fd 3)\n");
    return 2;
  }
  const int ready_fd = 3;
  if (fcntl(ready_fd, F_SETFD, FD_CLOEXEC) != 0) {
    fprintf(stderr, "skiff-shim: fd 3 (readiness pipe) is not open\n");
    return 2;
  }
  // Nothing of the process that started us beyond fd 3: a descriptor it leaked (a listening
  // socket, a connection to the apiserver) would outlive it here for as long as the container
  // runs, and keep a restarted kubelet from binding its ports.
  closeInheritedFds(ready_fd + 1);
  // Detach: the kubelet's child exits now; the grandchild lives as long as the container.
  const pid_t child = fork();
  if (child < 0) return 1;
  if (child > 0) _exit(0);
  setsid();
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = onHup;
  sigaction(SIGHUP, &sa, nullptr);
  const int null = open("/dev/null", O_RDWR);
  dup2(null, 0);
  dup2(null, 1);
  dup2(null, 2);
  if (null > 2) close(null);
  { std::ofstream(a.state + "/shim.pid") << getpid() << "\n"; }
  return runShim(a, ready_fd);
}
