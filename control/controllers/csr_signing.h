#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "control/certificates/x509.h"
#include "control/controllers/controller.h"
#include "skiff/api/certificates_v1.pb.h"

// kube-controller-manager's csrsigning controller (pkg/controller/certificates/signer): approved
// CertificateSigningRequests of the signers kubernetes.io/kube-apiserver-client-kubelet,
// kubernetes.io/kube-apiserver-client and kubernetes.io/kubelet-serving are signed with the
// cluster CA (--cluster-signing-cert-file/--cluster-signing-key-file; Skiff's server uses
// DATA_DIR/pki/ca.crt and ca.key) and the certificate is written to status.certificate. A request
// that does not meet its signer's rules gets a Failed condition (reason SignerValidationFailure)
// instead. The lifetime is --cluster-signing-duration (1 year), or spec.expirationSeconds when
// shorter, but at least 600 s; notBefore is backdated 5 minutes.

namespace skiff::controllers {

using CertificateSigningRequest = api::certificates::v1::CertificateSigningRequest;

struct CsrSigningOptions {
  std::string ca_cert_pem;
  std::string ca_key_pem;
  std::chrono::seconds duration{365 * 24 * 3600};  // --cluster-signing-duration
};

// The certificate's lifetime for a CSR (Kubernetes' signer.duration).
std::chrono::seconds csrCertificateTtl(const CertificateSigningRequest& csr,
                                       std::chrono::seconds max);

// What the signer does with one CSR.
struct CsrSigningDecision {
  enum class Kind { kNothing, kIssue, kFail };
  Kind kind = Kind::kNothing;
  std::string certificate_pem;  // kIssue
  std::string message;          // kFail: why the request does not meet its signer's rules
};
// Nothing for CSRs that are not approved (or also denied), failed, issued already, or for another
// signer; otherwise the certificate, or why not. Throws certificates::CertError when the CA does
// not sign (a broken CA, not the request's fault).
CsrSigningDecision decideCsrSigning(const CertificateSigningRequest& csr,
                                    const CsrSigningOptions& options,
                                    std::chrono::system_clock::time_point now);

class CsrSigningController : public QueueController {
 public:
  CsrSigningController(client::Client& client, client::SharedInformer& csrs,
                       CsrSigningOptions options);
  ~CsrSigningController() override;

 protected:
  std::optional<std::chrono::milliseconds> sync(const std::string& key) override;

 private:
  client::Client& client_;
  client::SharedInformer& csrs_;
  CsrSigningOptions options_;
};

}  // namespace skiff::controllers
