#pragma once

#include <optional>
#include <string>
#include <vector>

#include "control/controllers/controller.h"
#include "skiff/api/certificates_v1.pb.h"

// kube-controller-manager's csrapproving controller (pkg/controller/certificates/approver,
// sarapprove.go): CertificateSigningRequests for a kubelet client certificate
// (signerName kubernetes.io/kube-apiserver-client-kubelet, CN system:node:<name>, O exactly
// system:nodes, no SANs, usages {digital signature, client auth} with or without key
// encipherment) are approved when a SubjectAccessReview says the requester may create
// certificatesigningrequests/selfnodeclient (the CN is the requester itself: a renewal) or
// certificatesigningrequests/nodeclient (a bootstrap token's user asking for a new node). Nothing
// is ever denied: CSRs it does not recognise, or whose requester is not allowed, are left alone.

namespace skiff::controllers {

using CertificateSigningRequest = api::certificates::v1::CertificateSigningRequest;

// One of the approver's recognisers: the subresource the requester must be allowed to create and
// the message of the Approved condition.
struct CsrPermission {
  std::string subresource;  // "selfnodeclient" or "nodeclient"
  std::string message;
};

// The permissions to check for `csr`, in order (self first); empty when the approver has nothing
// to do (already approved, denied or issued; not a kubelet client request; a request that does not
// parse).
std::vector<CsrPermission> csrApprovalPermissions(const CertificateSigningRequest& csr);

// `csr` with the Approved condition the approver adds (reason AutoApproved, `message`, now).
CertificateSigningRequest withAutoApproval(CertificateSigningRequest csr,
                                           const std::string& message, int64_t now_seconds);

class CsrApprovingController : public QueueController {
 public:
  CsrApprovingController(client::Client& client, client::SharedInformer& csrs);
  ~CsrApprovingController() override;

 protected:
  std::optional<std::chrono::milliseconds> sync(const std::string& key) override;

 private:
  // Whether a SubjectAccessReview allows the CSR's requester to create
  // certificatesigningrequests/<subresource>.
  bool allowed(const CertificateSigningRequest& csr, const std::string& subresource);

  client::Client& client_;
  client::SharedInformer& csrs_;
};

// PUT certificatesigningrequests/NAME/approval (throws client::ApiError on failure).
CertificateSigningRequest updateCsrApproval(client::Client& client,
                                            const CertificateSigningRequest& csr);

}  // namespace skiff::controllers
