#include "control/store/etcd_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "control/store/etcd_store.h"

namespace skiff::store {
namespace {

// A loopback port nothing listens on now (bound, then released for etcd to take).
uint16_t freePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot find a free loopback port");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

std::string url(uint16_t port) {
  return "http://127.0.0.1:" + std::to_string(port);
}

}  // namespace

LocalEtcdCluster::LocalEtcdCluster(LocalEtcdOptions options) : options_(std::move(options)) {
  if (options_.members == 0) throw std::invalid_argument("an etcd cluster needs a member");
  if (!std::filesystem::exists(options_.etcd_binary)) {
    throw std::runtime_error(options_.etcd_binary +
                             " not found (install Debian's etcd-server: scripts/install-deps.sh)");
  }
  if (options_.data_dir.empty()) {
    std::string pattern = "/tmp/skiff-etcd-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    root_ = pattern;
    remove_root_ = true;
  } else {
    root_ = options_.data_dir;
    std::filesystem::create_directories(root_);
  }
  std::random_device random;
  token_ = "skiff-" + std::to_string(random());
  // Distinct ports for everyone: bind them all before any is released.
  std::vector<uint16_t> ports;
  while (ports.size() < options_.members * 2) {
    const uint16_t port = freePort();
    if (std::find(ports.begin(), ports.end(), port) == ports.end()) ports.push_back(port);
  }
  for (size_t i = 0; i < options_.members; ++i) {
    Member member;
    member.name = "m" + std::to_string(i);
    member.client_port = ports[2 * i];
    member.peer_port = ports[2 * i + 1];
    member.data_dir = root_ + "/" + member.name + ".etcd";
    member.log_file = root_ + "/" + member.name + ".log";
    members_.push_back(member);
  }
  try {
    for (size_t i = 0; i < members_.size(); ++i) {
      start(i, false);
    }
    for (size_t i = 0; i < members_.size(); ++i) {
      waitReady(i);
    }
  } catch (...) {
    for (size_t i = 0; i < members_.size(); ++i) {
      if (running(i)) kill(i);
    }
    if (remove_root_) {
      std::error_code error;
      std::filesystem::remove_all(root_, error);
    }
    throw;
  }
}

LocalEtcdCluster::~LocalEtcdCluster() {
  for (size_t i = 0; i < members_.size(); ++i) {
    if (running(i)) kill(i);
  }
  if (remove_root_) {
    std::error_code error;
    std::filesystem::remove_all(root_, error);
  }
}

std::string LocalEtcdCluster::clientUrl(uint16_t port) const {
  return tls() ? "https://127.0.0.1:" + std::to_string(port) : url(port);
}

std::vector<std::string> LocalEtcdCluster::endpoints() const {
  std::vector<std::string> urls;
  for (const Member& member : members_) {
    urls.push_back(clientUrl(member.client_port));
  }
  return urls;
}

std::string LocalEtcdCluster::endpointList() const {
  std::string list;
  for (const std::string& endpoint : endpoints()) {
    if (!list.empty()) list += ",";
    list += endpoint;
  }
  return list;
}

void LocalEtcdCluster::start(size_t index, bool existing) {
  Member& member = members_.at(index);
  std::string initial_cluster;
  for (const Member& other : members_) {
    if (!initial_cluster.empty()) initial_cluster += ",";
    initial_cluster += other.name + "=" + url(other.peer_port);
  }
  std::vector<std::string> args = {
      options_.etcd_binary,
      "--name=" + member.name,
      "--data-dir=" + member.data_dir,
      "--listen-client-urls=" + clientUrl(member.client_port),
      "--advertise-client-urls=" + clientUrl(member.client_port),
      "--listen-peer-urls=" + url(member.peer_port),
      "--initial-advertise-peer-urls=" + url(member.peer_port),
      "--initial-cluster=" + initial_cluster,
      "--initial-cluster-state=" + std::string(existing ? "existing" : "new"),
      "--initial-cluster-token=" + token_,
      "--heartbeat-interval=" + std::to_string(options_.heartbeat_ms),
      "--election-timeout=" + std::to_string(options_.election_ms),
      "--max-request-bytes=" + std::to_string(options_.max_request_bytes),
      "--experimental-watch-progress-notify-interval=" +
          std::to_string(options_.progress_notify_interval.count()) + "ms",
      "--logger=zap",
      "--log-level=warn",
  };
  if (tls()) {
    args.push_back("--cert-file=" + options_.cert_file);
    args.push_back("--key-file=" + options_.key_file);
    if (!options_.trusted_ca_file.empty()) {
      args.push_back("--client-cert-auth");
      args.push_back("--trusted-ca-file=" + options_.trusted_ca_file);
    }
  }
  std::vector<char*> argv;
  for (std::string& arg : args) {
    argv.push_back(arg.data());
  }
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    const int log = ::open(member.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log >= 0) {
      ::dup2(log, STDOUT_FILENO);
      ::dup2(log, STDERR_FILENO);
      ::close(log);
    }
    const int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) ::dup2(null, STDIN_FILENO);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  member.pid = pid;
}

void LocalEtcdCluster::waitReady(size_t index) {
  Member& member = members_.at(index);
  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  std::string last_error;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(member.pid, &status, WNOHANG) == member.pid) {
      member.pid = -1;
      throw std::runtime_error("etcd member " + member.name + " exited while starting:\n" +
                               logTail(index));
    }
    try {
      // A linearizable read: the member is up and the cluster has a leader.
      EtcdStore::open({.endpoints = {clientUrl(member.client_port)},
                       .ca_file = options_.ca_file,
                       .cert_file = options_.client_cert_file,
                       .key_file = options_.client_key_file,
                       .request_timeout = std::chrono::milliseconds(500)})
          ->currentRevision();
      return;
    } catch (const std::exception& e) {
      last_error = e.what();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("etcd member " + member.name + " not ready after " +
                           std::to_string(options_.start_timeout.count()) + " ms (" + last_error +
                           "):\n" + logTail(index));
}

void LocalEtcdCluster::kill(size_t index) {
  Member& member = members_.at(index);
  if (member.pid <= 0) return;
  ::kill(member.pid, SIGKILL);
  int status = 0;
  ::waitpid(member.pid, &status, 0);
  member.pid = -1;
}

void LocalEtcdCluster::restart(size_t index) {
  if (running(index)) return;
  start(index, true);
  waitReady(index);
}

std::string LocalEtcdCluster::logTail(size_t index) const {
  std::ifstream in(members_.at(index).log_file);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
    if (lines.size() > 20) lines.erase(lines.begin());
  }
  std::string tail;
  for (const std::string& line : lines) {
    tail += "  " + line + "\n";
  }
  return tail;
}

}  // namespace skiff::store
