#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace skiff::store {

struct LocalEtcdOptions {
  std::string etcd_binary = "/usr/bin/etcd";
  size_t members = 3;
  // Where the members' data directories go; empty = a new directory under /tmp, removed when the
  // cluster is destroyed.
  std::string data_dir;
  // Raft timing (ms): shorter than etcd's defaults (100/1000) so that tests fail over quickly.
  int heartbeat_ms = 50;
  int election_ms = 500;
  // Quiet watchers get a progress notification this often.
  std::chrono::milliseconds progress_notify_interval = std::chrono::milliseconds(100);
  // Room for Skiff's 1.5 MiB values plus their keys (etcd's default is exactly 1.5 MiB).
  int64_t max_request_bytes = 2 << 20;
  std::chrono::milliseconds start_timeout = std::chrono::seconds(20);
  // Client TLS (PEM files). With cert_file and key_file the members serve https:// on their client
  // ports (--cert-file, --key-file); with trusted_ca_file too they take only clients with a
  // certificate that CA signed (--client-cert-auth, --trusted-ca-file). The readiness check
  // connects with ca_file (the CA of cert_file) and client_cert_file/client_key_file. Peers talk
  // plain HTTP.
  std::string cert_file;
  std::string key_file;
  std::string trusted_ca_file;
  std::string ca_file;
  std::string client_cert_file;
  std::string client_key_file;
};

// An etcd cluster of real `etcd` processes (Debian's etcd-server) on free loopback ports, for
// tests and benchmarks. The processes die with the process that started them (PR_SET_PDEATHSIG),
// so a crashed test leaves none behind.
class LocalEtcdCluster {
 public:
  // Starts every member and waits until the cluster serves linearizable reads on each of them.
  // Throws std::runtime_error (with the tail of the member's log) when it does not.
  explicit LocalEtcdCluster(LocalEtcdOptions options = {});
  ~LocalEtcdCluster();
  LocalEtcdCluster(const LocalEtcdCluster&) = delete;
  LocalEtcdCluster& operator=(const LocalEtcdCluster&) = delete;

  // Client URLs, one per member ("http://127.0.0.1:PORT", https:// with TLS).
  std::vector<std::string> endpoints() const;
  // endpoints() joined with commas, as --etcd-endpoints takes them.
  std::string endpointList() const;
  size_t size() const { return members_.size(); }

  // SIGKILLs member `index` (its data stays) and reaps it.
  void kill(size_t index);
  // Starts a killed member again on its ports and data; waits until it serves reads.
  void restart(size_t index);
  bool running(size_t index) const { return members_.at(index).pid > 0; }
  // Member `index`'s process (-1 when killed), for faults kill() does not make (SIGSTOP).
  pid_t pid(size_t index) const { return members_.at(index).pid; }

 private:
  struct Member {
    std::string name;
    uint16_t client_port = 0;
    uint16_t peer_port = 0;
    std::string data_dir;
    std::string log_file;
    pid_t pid = -1;
  };

  void start(size_t index, bool existing);
  bool tls() const { return !options_.cert_file.empty(); }
  std::string clientUrl(uint16_t port) const;
  void waitReady(size_t index);
  std::string logTail(size_t index) const;

  LocalEtcdOptions options_;
  std::string root_;
  bool remove_root_ = false;
  std::string token_;
  std::vector<Member> members_;
};

}  // namespace skiff::store
