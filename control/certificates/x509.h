#pragma once

#include <chrono>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

// The X.509 side of certificates.k8s.io: what the apiserver checks in a CertificateSigningRequest,
// what the kubelet sends in one and what the CSR signer issues for it (k8s.io/client-go/util/cert
// and pkg/controller/certificates/authority in Kubernetes). OpenSSL underneath; keys made here
// are EC P-256, signatures SHA-256.

namespace skiff::certificates {

// A request, key or certificate that cannot be read, checked or signed; the message says why.
class CertError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The kubelet's signers and the user names and groups they issue for.
inline constexpr std::string_view kKubeApiServerClientSigner =
    "kubernetes.io/kube-apiserver-client";
inline constexpr std::string_view kKubeletClientSigner =
    "kubernetes.io/kube-apiserver-client-kubelet";
inline constexpr std::string_view kKubeletServingSigner = "kubernetes.io/kubelet-serving";
inline constexpr std::string_view kNodeUserPrefix = "system:node:";
inline constexpr std::string_view kNodesGroup = "system:nodes";

// What a PKCS#10 request asks for.
struct CertificateRequest {
  std::string common_name;
  std::vector<std::string> organizations;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;  // canonical text
  std::vector<std::string> email_addresses;
  std::vector<std::string> uris;
  std::string key_type;  // "RSA", "EC", "ED25519", ...
};

// The first PEM block of `pem`, which must be a "CERTIFICATE REQUEST" whose signature verifies
// with its own public key (Kubernetes' ParseCSR and CheckSignature). Throws CertError with
// Kubernetes' wording: "PEM block type must be CERTIFICATE REQUEST", ...
CertificateRequest parseCertificateRequest(std::string_view pem);

// Whether `usage` is one of certificates.k8s.io/v1's KeyUsage values ("digital signature",
// "client auth", ...).
bool knownUsage(std::string_view usage);

// Kubernetes' checks of the kubelet signers' requests (pkg/apis/certificates/v1
// ValidateKubeletClientCSR / ValidateKubeletServingCSR, the csrsigning controller's
// validAPIServerClientUsages): "" when the request may be issued, otherwise why not.
std::string kubeletClientProblem(const CertificateRequest& request,
                                 const std::set<std::string>& usages);
std::string kubeletServingProblem(const CertificateRequest& request,
                                  const std::set<std::string>& usages);
std::string apiServerClientProblem(const std::vector<std::string>& usages);

// A new EC P-256 key (PKCS#8 PEM) and a request signed with it for CN=common_name, one O per
// organization, and the given SANs.
struct KeyAndRequest {
  std::string key_pem;
  std::string request_pem;
};
KeyAndRequest generateKeyAndRequest(std::string_view common_name,
                                    const std::vector<std::string>& organizations,
                                    const std::vector<std::string>& dns_names = {},
                                    const std::vector<std::string>& ip_addresses = {});

// What the CSR signer puts in a certificate (Kubernetes' PermissiveSigningPolicy): the request's
// subject and SANs; key and extended key usages from `usages`; not a CA; notBefore backdated by
// `backdate`; notAfter at now + ttl (minus the backdate when ttl is at least `short_ttl`), but
// never after the CA's own notAfter; a random 128-bit serial; the CA's subject as issuer.
struct SigningPolicy {
  std::vector<std::string> usages;
  std::chrono::seconds ttl{365 * 24 * 3600};
  std::chrono::seconds backdate{5 * 60};
  std::chrono::seconds short_ttl{8 * 3600};
};
// The certificate PEM; throws CertError for an unknown usage, a request that does not verify, or a
// CA certificate and key that do not parse or do not match.
std::string signRequest(
    std::string_view ca_cert_pem, std::string_view ca_key_pem, std::string_view request_pem,
    const SigningPolicy& policy,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// What a certificate says (the first CERTIFICATE block of `pem`).
struct CertificateInfo {
  std::string subject_common_name;
  std::vector<std::string> subject_organizations;
  std::string issuer_common_name;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  std::set<std::string> usages;  // in certificates.k8s.io's words: "digital signature", ...
  bool is_ca = false;
  std::chrono::system_clock::time_point not_before;
  std::chrono::system_clock::time_point not_after;
};
CertificateInfo inspectCertificate(std::string_view pem);

// Whether `pem` holds one or more CERTIFICATE blocks that all parse (status.certificate's rule).
bool validCertificateBlocks(std::string_view pem);

// Whether `cert_pem` chains to `ca_pem` now (signature and validity).
bool signedBy(std::string_view cert_pem, std::string_view ca_pem);

}  // namespace skiff::certificates
