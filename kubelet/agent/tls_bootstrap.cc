#include "kubelet/agent/tls_bootstrap.h"

#include <filesystem>
#include <functional>
#include <stdexcept>

#include "control/api/codec.h"
#include "control/client/kubeconfig.h"
#include "control/client/rest_client.h"
#include "control/client/typed.h"
#include "skiff/api/certificates_v1.pb.h"

namespace skiff::kubelet {

namespace {

using api::certificates::v1::CertificateSigningRequest;

// The certificate when `csr` is done: its PEM, "" while pending; throws when denied or failed.
std::string outcome(const CertificateSigningRequest& csr) {
  for (const auto& c : csr.status().conditions()) {
    if ((c.type() == "Denied" || c.type() == "Failed") && c.status() == "True") {
      throw std::runtime_error("certificate signing request " + csr.metadata().name() + " is " +
                               (c.type() == "Denied" ? "denied" : "failed") +
                               (c.reason().empty() ? "" : " (" + c.reason() + ")") +
                               (c.message().empty() ? "" : ": " + c.message()));
    }
  }
  return csr.status().certificate();
}

void writeNodeKubeconfig(const std::string& path, const client::ClientConfig& cluster,
                         const std::string& node, const std::string& cert_pem,
                         const std::string& key_pem) {
  std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  client::writeKubeconfig(path, {.user_name = std::string(certificates::kNodeUserPrefix) + node,
                                 .server = cluster.server,
                                 .ca_pem = cluster.ca_pem,
                                 .client_cert_pem = cert_pem,
                                 .client_key_pem = key_pem});
}

}  // namespace

namespace {

// Creates the CSR and waits for its certificate (requestNodeClientCertificate's contract).
std::string requestCertificate(client::Client& client, const std::string& generate_name,
                               const std::string& request_pem, std::string_view signer,
                               const std::vector<std::string>& usages,
                               std::optional<int32_t> expiration_seconds,
                               std::chrono::milliseconds timeout, std::string* csr_name,
                               const std::function<bool()>& cancelled = {}) {
  CertificateSigningRequest csr;
  csr.mutable_metadata()->set_generate_name(generate_name);
  auto* spec = csr.mutable_spec();
  spec->set_request(request_pem);
  spec->set_signer_name(std::string(signer));
  for (const auto& u : usages)
    spec->add_usages(u);
  if (expiration_seconds) spec->set_expiration_seconds(*expiration_seconds);
  CertificateSigningRequest created = client::create(client, csr);
  const std::string name = created.metadata().name();
  if (csr_name != nullptr) *csr_name = name;
  if (std::string cert = outcome(created); !cert.empty()) return cert;

  const auto& type = client::resourceTypeOf<CertificateSigningRequest>();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string version = created.metadata().resource_version();
  while (std::chrono::steady_clock::now() < deadline) {
    client::WatchStreamPtr stream = client.watch(type, "",
                                                 {.field_selector = "metadata.name=" + name,
                                                  .resource_version = version,
                                                  .timeout_seconds = 60});
    client::WatchEvent event;
    while (std::chrono::steady_clock::now() < deadline) {
      if (cancelled && cancelled()) {
        throw std::runtime_error("certificate signing request " + name + ": given up waiting");
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (!stream->next(event, std::min(left, std::chrono::milliseconds(1000)))) {
        if (stream->ended()) break;
        continue;
      }
      if (event.type == client::WatchEvent::Type::kDeleted) {
        throw std::runtime_error("certificate signing request " + name +
                                 " was deleted before it was issued");
      }
      if (event.type != client::WatchEvent::Type::kAdded &&
          event.type != client::WatchEvent::Type::kModified) {
        continue;
      }
      auto current = client::fromValue<CertificateSigningRequest>(event.object);
      version = current.metadata().resource_version();
      if (std::string cert = outcome(current); !cert.empty()) return cert;
    }
    // The watch ended (timeout, or history compacted): read the object, then watch again.
    auto current = client::get<CertificateSigningRequest>(client, "", name);
    version = current.metadata().resource_version();
    if (std::string cert = outcome(current); !cert.empty()) return cert;
  }
  throw std::runtime_error("certificate signing request " + name + " got no certificate within " +
                           std::to_string(timeout.count()) +
                           " ms: is it approved (kubectl certificate approve " + name +
                           ") and does the controller manager run csrsigning?");
}

}  // namespace

std::string requestNodeClientCertificate(client::Client& client, const std::string& request_pem,
                                         std::optional<int32_t> expiration_seconds,
                                         std::chrono::milliseconds timeout, std::string* csr_name) {
  return requestCertificate(client, "node-csr-", request_pem, certificates::kKubeletClientSigner,
                            {"digital signature", "client auth"}, expiration_seconds, timeout,
                            csr_name);
}

ServingCertificate requestKubeletServingCertificate(client::Client& client,
                                                    const ServingCertificateRequest& request) {
  if (request.node_name.empty()) throw std::runtime_error("serving certificate: no node name");
  if (request.dns_names.empty() && request.ip_addresses.empty()) {
    throw std::runtime_error("serving certificate of node " + request.node_name +
                             ": no host name or address to put in it");
  }
  ServingCertificate out;
  auto key = certificates::generateKeyAndRequest(
      std::string(certificates::kNodeUserPrefix) + request.node_name,
      {std::string(certificates::kNodesGroup)}, request.dns_names, request.ip_addresses);
  out.key_pem = key.key_pem;
  // An EC key: no key encipherment (the kubelet's certificate manager asks for it with RSA only).
  out.cert_pem =
      requestCertificate(client, "csr-", key.request_pem, certificates::kKubeletServingSigner,
                         {"digital signature", "server auth"}, request.expiration_seconds,
                         request.timeout, &out.csr_name, request.cancelled);
  return out;
}

TlsBootstrapResult ensureNodeKubeconfig(const TlsBootstrapOptions& options) {
  if (options.kubeconfig.empty()) throw std::runtime_error("TLS bootstrap: no --kubeconfig");
  if (options.node_name.empty()) throw std::runtime_error("TLS bootstrap: no node name");
  TlsBootstrapResult result;
  std::optional<client::ClientConfig> current;
  std::string why = "missing";
  if (std::filesystem::exists(options.kubeconfig)) {
    try {
      current = client::loadClientConfig({.kubeconfig = options.kubeconfig});
      if (current->client_cert_pem.empty()) {
        why = "has no client certificate";
        current.reset();
      } else {
        result.certificate = certificates::inspectCertificate(current->client_cert_pem);
        if (result.certificate.not_after <= options.now) {
          why = "its client certificate expired";
          current.reset();
        }
      }
    } catch (const std::exception& e) {
      why = std::string("unreadable: ") + e.what();
      current.reset();
    }
  }
  const std::string subject = std::string(certificates::kNodeUserPrefix) + options.node_name;
  if (current) {
    const auto& info = result.certificate;
    if (info.subject_common_name != subject) {
      throw std::runtime_error("--kubeconfig " + options.kubeconfig +
                               ": its client certificate is " + info.subject_common_name +
                               "'s, not " + subject + "'s");
    }
    auto lifetime = info.not_after - info.not_before;
    auto renew_at =
        info.not_before + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                              lifetime * options.renew_fraction);
    if (options.now < renew_at) return result;  // kept
    // Past its renewal point: the node asks for its next certificate itself.
    auto key =
        certificates::generateKeyAndRequest(subject, {std::string(certificates::kNodesGroup)});
    client::ClientPtr client = client::makeRestClient(*current);
    std::string cert = requestNodeClientCertificate(
        *client, key.request_pem, options.expiration_seconds, options.timeout, &result.csr_name);
    writeNodeKubeconfig(options.kubeconfig, *current, options.node_name, cert, key.key_pem);
    result.action = TlsBootstrapResult::Action::kRenewed;
    result.certificate = certificates::inspectCertificate(cert);
    return result;
  }
  if (options.bootstrap_kubeconfig.empty()) {
    throw std::runtime_error("--kubeconfig " + options.kubeconfig + " " + why +
                             ", and there is no --bootstrap-kubeconfig to get a certificate with");
  }
  client::ClientConfig bootstrap;
  try {
    bootstrap = client::loadClientConfig({.kubeconfig = options.bootstrap_kubeconfig});
  } catch (const std::exception& e) {
    throw std::runtime_error("--bootstrap-kubeconfig " + options.bootstrap_kubeconfig + ": " +
                             e.what());
  }
  auto key = certificates::generateKeyAndRequest(subject, {std::string(certificates::kNodesGroup)});
  client::ClientPtr client = client::makeRestClient(bootstrap);
  std::string cert;
  try {
    cert = requestNodeClientCertificate(*client, key.request_pem, options.expiration_seconds,
                                        options.timeout, &result.csr_name);
  } catch (const client::ApiError& e) {
    throw std::runtime_error("TLS bootstrap with " + options.bootstrap_kubeconfig + ": " +
                             e.what());
  }
  writeNodeKubeconfig(options.kubeconfig, bootstrap, options.node_name, cert, key.key_pem);
  result.action = TlsBootstrapResult::Action::kBootstrapped;
  result.certificate = certificates::inspectCertificate(cert);
  return result;
}

}  // namespace skiff::kubelet
