#include "kubelet/agent/serving_certificate.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "control/certificates/x509.h"
#include "kubelet/agent/tls_bootstrap.h"

namespace skiff::kubelet {

namespace {

// The PEM blocks of `pem` that are private keys (`keys`) or are not (certificates), in order.
std::string pemBlocks(const std::string& pem, bool keys) {
  std::string out;
  std::istringstream in(pem);
  std::string line;
  bool inside = false;
  bool keep = false;
  while (std::getline(in, line)) {
    if (line.starts_with("-----BEGIN ")) {
      inside = true;
      const bool is_key = line.find("PRIVATE KEY") != std::string::npos;
      keep = is_key == keys;
    }
    if (inside && keep) out += line + "\n";
    if (line.starts_with("-----END ")) inside = false;
  }
  return out;
}

void writeAtomically(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  ::chmod(tmp.c_str(), 0600);
  std::filesystem::rename(tmp, path);
}

}  // namespace

ServingCertificateManager::ServingCertificateManager(client::Client& client,
                                                     ServingCertificateManagerOptions options)
    : client_(client), options_(std::move(options)) {}

ServingCertificateManager::~ServingCertificateManager() {
  stop();
}

void ServingCertificateManager::log(const std::string& line) const {
  if (options_.log) {
    options_.log(line);
  } else {
    std::cerr << "skiff agent: node " << options_.node_name << ": " << line << std::endl;
  }
}

std::chrono::system_clock::time_point ServingCertificateManager::renewAt(
    const std::string& cert_pem) const {
  const auto info = certificates::inspectCertificate(cert_pem);
  const auto lifetime = info.not_after - info.not_before;
  return info.not_before + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                               lifetime * options_.renew_fraction);
}

void ServingCertificateManager::start() {
  auto renew_at = std::chrono::system_clock::now();
  std::error_code ec;
  if (std::filesystem::exists(currentFile(), ec)) {
    try {
      std::ifstream in(currentFile(), std::ios::binary);
      std::stringstream text;
      text << in.rdbuf();
      const std::string cert = pemBlocks(text.str(), false);
      const std::string key = pemBlocks(text.str(), true);
      const auto info = certificates::inspectCertificate(cert);
      if (info.subject_common_name != "system:node:" + options_.node_name) {
        log("serving certificate " + currentFile() + " is " + info.subject_common_name +
            "'s; asking for one");
      } else if (info.not_after <= std::chrono::system_clock::now()) {
        log("serving certificate " + currentFile() + " expired; asking for a new one");
      } else {
        if (options_.on_certificate) options_.on_certificate(cert, key);
        renew_at = renewAt(cert);
        log("serving certificate: using " + currentFile());
      }
    } catch (const std::exception& e) {
      log("serving certificate " + currentFile() + ": " + e.what() + "; asking for a new one");
    }
  }
  stopping_ = false;
  thread_ = std::thread([this, renew_at] { loop(renew_at); });
}

void ServingCertificateManager::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ServingCertificateManager::loop(std::chrono::system_clock::time_point renew_at) {
  while (true) {
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_until(lock, renew_at, [&] { return stopping_.load(); })) return;
    }
    try {
      ServingCertificateRequest request;
      request.node_name = options_.node_name;
      if (options_.dns_names) request.dns_names = options_.dns_names();
      if (options_.ip_addresses) request.ip_addresses = options_.ip_addresses();
      request.timeout = options_.request_timeout;
      request.cancelled = [this] { return stopping_.load(); };
      log("serving certificate: requesting one from the cluster (kubernetes.io/kubelet-serving; "
          "an administrator approves it: kubectl certificate approve)");
      ServingCertificate got = requestKubeletServingCertificate(client_, request);
      writeAtomically(currentFile(), got.cert_pem + got.key_pem);
      if (options_.on_certificate) options_.on_certificate(got.cert_pem, got.key_pem);
      ++issued_;
      renew_at = renewAt(got.cert_pem);
      log("serving certificate: " + got.csr_name + " issued; serving it");
    } catch (const std::exception& e) {
      if (stopping_) return;
      log(std::string("serving certificate: ") + e.what());
      renew_at = std::chrono::system_clock::now() +
                 std::chrono::duration_cast<std::chrono::system_clock::duration>(options_.retry);
    }
  }
}

}  // namespace skiff::kubelet
