#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "control/client/client.h"

// The kubelet's serving certificate from the cluster, as `kubelet --rotate-server-certificates`
// (serverTLSBootstrap, pkg/kubelet/certificate): the agent asks for a kubernetes.io/kubelet-serving
// certificate through a CSR (tls_bootstrap.h, requestKubeletServingCertificate) with the node's
// names and addresses, keeps serving the certificate it started with until an administrator
// approves (`kubectl certificate approve`; nothing approves these automatically, as in
// Kubernetes) and csrsigning issues it, then hands it to on_certificate (the kubelet API swaps it
// in without a restart) and keeps it in CERT_DIR/kubelet-server-current.pem (certificate, then key;
// mode 0600). At 80% of its lifetime it asks for the next one. A restarted agent starts with the
// kept certificate while it is valid.
//
// Threading: one thread of its own; start() and stop() from one thread.

namespace skiff::kubelet {

struct ServingCertificateManagerOptions {
  std::string node_name;
  std::string cert_dir;  // where kubelet-server-current.pem is kept
  // The SANs, asked for at each request (the node's host name; its addresses).
  std::function<std::vector<std::string>()> dns_names;
  std::function<std::vector<std::string>()> ip_addresses;
  double renew_fraction = 0.8;
  // How long one CSR may wait for its approval, and the pause after a failed one.
  std::chrono::milliseconds request_timeout{std::chrono::minutes(15)};
  std::chrono::milliseconds retry{std::chrono::seconds(10)};
  // Called with every certificate in force (the kept one at start, then each issued one).
  std::function<void(const std::string& cert_pem, const std::string& key_pem)> on_certificate;
  std::function<void(const std::string&)> log;  // default: stderr
};

// The kubelet API's certificate when none is given and none is rotated, as the kubelet without
// --tls-cert-file and --rotate-server-certificates (cmd/kubelet/app/server.go InitializeTLS with
// client-go's cert.GenerateSelfSignedCertKey): CERT_DIR/kubelet.crt and kubelet.key, made once and
// kept across restarts, also when the node's names or addresses changed (as the kubelet; delete
// them to have them made anew). kubelet.crt holds the serving certificate (CN HOST@UNIX-SECONDS,
// server auth, SANs: `host` as a DNS name or an IP address, then dns_names and ip_addresses;
// valid for a year from an hour ago) followed by the self-signed CA that signed it
// (CN HOST-ca@UNIX-SECONDS); kubelet.key is the serving key (EC P-256, PKCS#8, mode 0600).
// Unlike the kubelet, which keeps any pair it can read, a pair that does not parse, whose key does
// not match its certificate, or that has expired is made anew too.
inline constexpr const char* kSelfSignedCertName = "kubelet.crt";
inline constexpr const char* kSelfSignedKeyName = "kubelet.key";
struct SelfSignedServingCertificate {
  std::string cert_file;
  std::string key_file;
  bool generated = false;  // made by this call (else the kept pair)
};
// Throws std::runtime_error when the pair cannot be made or written.
SelfSignedServingCertificate ensureSelfSignedServingCertificate(
    const std::string& cert_dir, const std::string& host,
    const std::vector<std::string>& dns_names = {},
    const std::vector<std::string>& ip_addresses = {},
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

class ServingCertificateManager {
 public:
  // `client` carries the node's own credential; it must outlive the manager.
  ServingCertificateManager(client::Client& client, ServingCertificateManagerOptions options);
  ~ServingCertificateManager();
  ServingCertificateManager(const ServingCertificateManager&) = delete;
  ServingCertificateManager& operator=(const ServingCertificateManager&) = delete;

  // Hands a kept, valid certificate to on_certificate (on the caller's thread), then starts the
  // thread that requests the first or next one.
  void start();
  // Ends the thread (a CSR wait in progress gives up within a second).
  void stop();

  std::string currentFile() const { return options_.cert_dir + "/kubelet-server-current.pem"; }
  // Certificates issued to this manager (not counting a kept one).
  uint64_t issued() const { return issued_; }

 private:
  void loop(std::chrono::system_clock::time_point renew_at);
  void log(const std::string& line) const;
  std::chrono::system_clock::time_point renewAt(const std::string& cert_pem) const;

  client::Client& client_;
  const ServingCertificateManagerOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> issued_{0};
  std::thread thread_;
};

}  // namespace skiff::kubelet
