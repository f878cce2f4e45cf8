#include "kubelet/agent/serving_certificate.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "control/certificates/openssl_ptr.h"
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

void writeAtomically(const std::string& path, const std::string& text, mode_t mode = 0600) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  ::chmod(tmp.c_str(), mode);
  std::filesystem::rename(tmp, path);
}

using certificates::Bio;
using certificates::Cert;
using certificates::Key;

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string bioText(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

// A self-signed CA (CN common_name; CA:TRUE; keyCertSign, digitalSignature, keyEncipherment) with
// a new EC P-256 key, valid from not_before for `validity`: {certificate PEM, key PEM}.
std::pair<std::string, std::string> selfSignedCa(const std::string& common_name,
                                                 std::chrono::system_clock::time_point not_before,
                                                 std::chrono::seconds validity) {
  Key key(EVP_EC_gen("P-256"));
  Cert cert(X509_new());
  if (!key || !cert) throw std::runtime_error("self-signed certificate: cannot make a key");
  X509_set_version(cert.get(), 2);
  BIGNUM* serial = BN_new();
  BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY);
  BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert.get()));
  BN_free(serial);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(cert.get(), name);
  const time_t from = std::chrono::system_clock::to_time_t(not_before);
  ASN1_TIME_set(X509_getm_notBefore(cert.get()), from);
  ASN1_TIME_set(X509_getm_notAfter(cert.get()), from + validity.count());
  X509_set_pubkey(cert.get(), key.get());
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] :
       {std::pair<int, const char*>{NID_basic_constraints, "critical,CA:TRUE"},
        {NID_key_usage, "critical,keyCertSign,digitalSignature,keyEncipherment"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (ext == nullptr) throw std::runtime_error("self-signed certificate: bad extension");
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) {
    throw std::runtime_error("self-signed certificate: cannot sign");
  }
  Bio cert_out(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(cert_out.get(), cert.get());
  Bio key_out(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(key_out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  return {bioText(cert_out.get()), bioText(key_out.get())};
}

// Whether cert_pem's first certificate and key_pem parse and belong together.
bool keyMatches(const std::string& cert_pem, const std::string& key_pem) {
  Bio cert_in(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
  Bio key_in(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  Cert cert(PEM_read_bio_X509(cert_in.get(), nullptr, nullptr, nullptr));
  Key key(PEM_read_bio_PrivateKey(key_in.get(), nullptr, nullptr, nullptr));
  const bool ok = cert && key && X509_check_private_key(cert.get(), key.get()) == 1;
  ERR_clear_error();
  return ok;
}

bool isIpAddress(const std::string& text) {
  unsigned char buf[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, text.c_str(), buf) == 1 ||
         ::inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

}  // namespace

SelfSignedServingCertificate ensureSelfSignedServingCertificate(
    const std::string& cert_dir, const std::string& host, const std::vector<std::string>& dns_names,
    const std::vector<std::string>& ip_addresses, std::chrono::system_clock::time_point now) {
  SelfSignedServingCertificate out;
  out.cert_file = cert_dir + "/" + kSelfSignedCertName;
  out.key_file = cert_dir + "/" + kSelfSignedKeyName;
  const std::string kept_cert = readFile(out.cert_file);
  const std::string kept_key = readFile(out.key_file);
  if (!kept_cert.empty() && !kept_key.empty() && keyMatches(kept_cert, kept_key)) {
    try {
      if (certificates::inspectCertificate(kept_cert).not_after > now) return out;
    } catch (const std::exception&) {
      // made anew below
    }
  }
  if (host.empty()) throw std::runtime_error("self-signed serving certificate: no host name");
  // client-go's GenerateSelfSignedCertKey: valid from an hour ago, for a year.
  const auto from = now - std::chrono::hours(1);
  const std::chrono::seconds year(365 * 24 * 3600);
  const std::string stamp = std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
  const auto [ca_cert, ca_key] = selfSignedCa(host + "-ca@" + stamp, from, year);
  std::vector<std::string> dns;
  std::vector<std::string> ips;
  (isIpAddress(host) ? ips : dns).push_back(host);
  for (const auto& d : dns_names)
    if (std::find(dns.begin(), dns.end(), d) == dns.end()) dns.push_back(d);
  for (const auto& ip : ip_addresses)
    if (std::find(ips.begin(), ips.end(), ip) == ips.end()) ips.push_back(ip);
  const auto request = certificates::generateKeyAndRequest(host + "@" + stamp, {}, dns, ips);
  certificates::SigningPolicy policy;
  policy.usages = {"digital signature", "key encipherment", "server auth"};
  policy.ttl = year;  // from `from` on: the signer takes the backdating off the end
  policy.backdate = std::chrono::hours(1);
  const std::string cert =
      certificates::signRequest(ca_cert, ca_key, request.request_pem, policy, now);
  std::filesystem::create_directories(cert_dir);
  writeAtomically(out.key_file, request.key_pem, 0600);
  writeAtomically(out.cert_file, cert + ca_cert, 0644);
  out.generated = true;
  return out;
}

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
