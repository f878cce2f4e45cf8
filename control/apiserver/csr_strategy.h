#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "control/apiserver/errors.h"
#include "skiff/api/certificates_v1.pb.h"

// Kubernetes' registry strategy and validation of certificates.k8s.io/v1
// CertificateSigningRequests (pkg/registry/certificates/certificates, pkg/apis/certificates/
// validation), and the CertificateSubjectRestriction admission plugin:
//   create:   the status is dropped and spec.username/uid/groups/extra are the requesting user's,
//             whatever the client sent; spec.request must be a PEM CERTIFICATE REQUEST whose
//             signature verifies, signerName a "domain/path" name, usages given and known,
//             expirationSeconds at least 600; kubernetes.io/kube-apiserver-client may not be
//             asked for system:masters (403);
//   update:   the spec is immutable and the status is the subresources' (the object's PUT
//             changes metadata only);
//   status:   the certificate (PEM CERTIFICATE blocks, immutable once set) and conditions other
//             than Approved/Denied, which keep their stored instances;
//   approval: the conditions only.
// Conditions: a type, status True/False/Unknown (Approved and Denied only True), no duplicate
// types, Approved and Denied exclusive; lastUpdateTime and lastTransitionTime are filled in.
// Approving needs `approve` and issuing `sign` on the CSR's signer (csrSignerVerb).

namespace skiff::apiserver {

using CertificateSigningRequest = api::certificates::v1::CertificateSigningRequest;

// Who asked, as the authenticator knows them.
struct Requester {
  std::string username;
  std::string uid;
  std::vector<std::string> groups;
};

enum class CsrWrite { kMain, kStatus, kApproval };

void prepareCsrCreate(CertificateSigningRequest& csr, const Requester& requester);
// The problems of a new request, in Kubernetes' order; empty when it is valid.
std::vector<FieldCause> csrCreateCauses(const CertificateSigningRequest& csr);
// Throws 422 Invalid (or 403 for the subject restriction).
void validateCsrCreate(const CertificateSigningRequest& csr);

// Makes `next` what the write `what` may change of `old` (and fills condition times, `now` in
// Unix seconds).
void prepareCsrUpdate(const CertificateSigningRequest& old, CertificateSigningRequest& next,
                      CsrWrite what, int64_t now);
std::vector<FieldCause> csrUpdateCauses(const CertificateSigningRequest& old,
                                        const CertificateSigningRequest& next, CsrWrite what);
void validateCsrUpdate(const CertificateSigningRequest& old, const CertificateSigningRequest& next,
                       CsrWrite what);

// Kubernetes' CertificateApproval and CertificateSigning admission plugins: the permission on
// certificates.k8s.io `signers` a write needs besides its own RBAC verb: "approve" for every
// approval write, "sign" for a status write that changes the certificate, "" otherwise.
std::string csrSignerVerb(const CertificateSigningRequest& old,
                          const CertificateSigningRequest& next, CsrWrite what);
// The `signers` names that grant it: the signer itself and "<domain>/*".
std::vector<std::string> signerPermissionNames(const std::string& signer_name);
// The 403 when the requester holds neither.
ApiError signerForbidden(const CertificateSigningRequest& csr, const std::string& verb);

}  // namespace skiff::apiserver
