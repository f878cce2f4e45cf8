#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "control/certificates/x509.h"
#include "control/client/client.h"

// Kubelet TLS bootstrap (k8s.io/kubernetes/pkg/kubelet/certificate/bootstrap), as `skiff agent
// --bootstrap-kubeconfig FILE --kubeconfig FILE` runs it before anything else: when --kubeconfig
// is missing, unreadable or its client certificate has expired, a new EC P-256 key is made and a
// certificates.k8s.io/v1 CertificateSigningRequest is created with the bootstrap kubeconfig's
// credential (a bootstrap token): signerName kubernetes.io/kube-apiserver-client-kubelet, CN
// system:node:NAME, O system:nodes, usages digital signature and client auth. The CSR is watched
// until the signer sets status.certificate (the csrapproving controller approves it when the
// token's user may create certificatesigningrequests/nodeclient); then --kubeconfig is written
// (mode 0600, atomically) with the apiserver and CA of the bootstrap kubeconfig and the new
// certificate and key. A Denied or Failed CSR, or no certificate within the timeout, is an error.
//
// Renewal happens at start only: a certificate past `renew_fraction` of its lifetime is replaced
// by one requested with the node's own credential (approved through
// certificatesigningrequests/selfnodeclient). There is no rotation while the agent runs.

namespace skiff::kubelet {

struct TlsBootstrapOptions {
  std::string bootstrap_kubeconfig;  // empty: no bootstrap (renewal only, with `kubeconfig`)
  std::string kubeconfig;
  std::string node_name;
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
  std::optional<int32_t> expiration_seconds;  // spec.expirationSeconds; unset: the signer's
  double renew_fraction = 0.8;
  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
};

struct TlsBootstrapResult {
  enum class Action { kKept, kBootstrapped, kRenewed };
  Action action = Action::kKept;
  std::string csr_name;  // the CSR that gave the certificate (kBootstrapped, kRenewed)
  certificates::CertificateInfo certificate;
};

// Makes sure `options.kubeconfig` holds a usable node credential, as described above. Throws
// std::runtime_error saying what failed (kubeconfig paths, CSR name, the signer's message).
TlsBootstrapResult ensureNodeKubeconfig(const TlsBootstrapOptions& options);

// Creates a CSR for `request_pem` with `client` and waits for its certificate (PEM). Throws
// std::runtime_error when it is denied or failed, or after `timeout`. `csr_name` gets the name.
std::string requestNodeClientCertificate(client::Client& client, const std::string& request_pem,
                                         std::optional<int32_t> expiration_seconds,
                                         std::chrono::milliseconds timeout,
                                         std::string* csr_name = nullptr);

// The kubelet's serving certificate from the cluster (--rotate-server-certificates,
// serverTLSBootstrap): a new EC P-256 key and a CSR with signerName kubernetes.io/kubelet-serving,
// CN system:node:NAME, O system:nodes, the node's host names and addresses as SANs, usages digital
// signature and server auth, made with the node's own credential. Kubernetes auto-approves none of
// these (an operator runs `kubectl certificate approve`; the csrapproving controller leaves them
// alone), so this waits up to `timeout` for an approval and the csrsigning controller's
// certificate. Throws std::runtime_error when denied or failed, or after the timeout.
struct ServingCertificateRequest {
  std::string node_name;
  std::vector<std::string> dns_names;     // the node's hostname(s)
  std::vector<std::string> ip_addresses;  // its InternalIP/ExternalIP addresses
  std::optional<int32_t> expiration_seconds;
  std::chrono::milliseconds timeout{std::chrono::minutes(15)};
  // Asked about once a second while waiting: true ends the wait (an error).
  std::function<bool()> cancelled;
};
struct ServingCertificate {
  std::string cert_pem;
  std::string key_pem;
  std::string csr_name;
};
ServingCertificate requestKubeletServingCertificate(client::Client& client,
                                                    const ServingCertificateRequest& request);

}  // namespace skiff::kubelet
