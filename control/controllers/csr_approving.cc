#include "control/controllers/csr_approving.h"

#include <cstdio>
#include <set>

#include "control/api/codec.h"
#include "control/api/json.h"
#include "control/api/time.h"
#include "control/certificates/x509.h"
#include "control/client/typed.h"
#include "skiff/api/authorization_v1.pb.h"

namespace skiff::controllers {

namespace {

bool hasCondition(const CertificateSigningRequest& csr, std::string_view type) {
  for (const auto& c : csr.status().conditions()) {
    if (c.type() == type) return true;
  }
  return false;
}

// isNodeClientCert: the kubelet client signer and a request ValidateKubeletClientCSR accepts.
bool nodeClientRequest(const CertificateSigningRequest& csr,
                       const certificates::CertificateRequest& request) {
  if (csr.spec().signer_name() != certificates::kKubeletClientSigner) return false;
  std::set<std::string> usages(csr.spec().usages().begin(), csr.spec().usages().end());
  return certificates::kubeletClientProblem(request, usages).empty();
}

}  // namespace

std::vector<CsrPermission> csrApprovalPermissions(const CertificateSigningRequest& csr) {
  if (!csr.status().certificate().empty()) return {};
  if (hasCondition(csr, "Approved") || hasCondition(csr, "Denied")) return {};
  certificates::CertificateRequest request;
  try {
    request = certificates::parseCertificateRequest(csr.spec().request());
  } catch (const certificates::CertError&) {
    return {};
  }
  if (!nodeClientRequest(csr, request)) return {};
  std::vector<CsrPermission> out;
  if (csr.spec().username() == request.common_name) {
    out.push_back({"selfnodeclient",
                   "Auto approving self kubelet client certificate after SubjectAccessReview."});
  }
  out.push_back(
      {"nodeclient", "Auto approving kubelet client certificate after SubjectAccessReview."});
  return out;
}

CertificateSigningRequest withAutoApproval(CertificateSigningRequest csr,
                                           const std::string& message, int64_t now_seconds) {
  auto* c = csr.mutable_status()->add_conditions();
  c->set_type("Approved");
  c->set_status("True");
  c->set_reason("AutoApproved");
  c->set_message(message);
  c->mutable_last_update_time()->set_seconds(now_seconds);
  return csr;
}

CertificateSigningRequest updateCsrApproval(client::Client& client,
                                            const CertificateSigningRequest& csr) {
  const auto& type = client::resourceTypeOf<CertificateSigningRequest>();
  client::RawRequest request;
  request.method = "PUT";
  request.path = client::resourcePath(type, "", csr.metadata().name(), "approval");
  request.body = api::encodeJson(csr);
  request.content_type = "application/json";
  client::RawResponse response = client.raw(request);
  if (response.status >= 300) {
    api::Value status;
    std::string reason, message = response.body;
    try {
      status = api::parseJson(response.body);
      if (const auto* r = status.find("reason"); r != nullptr && r->isString()) reason = r->text();
      if (const auto* m = status.find("message"); m != nullptr && m->isString()) {
        message = m->text();
      }
    } catch (const std::exception&) {
    }
    throw client::ApiError(response.status, reason, message, status);
  }
  CertificateSigningRequest out;
  api::decodeJson(response.body, out, {.unknown_fields = api::UnknownFields::kIgnore});
  return out;
}

CsrApprovingController::CsrApprovingController(client::Client& client, client::SharedInformer& csrs)
    : QueueController("csrapproving"), client_(client), csrs_(csrs) {
  csrs_.addEventHandler({
      .on_add = [this](const client::ObjectPtr& o) { enqueue(client::objectKey(*o)); },
      .on_update = [this](const client::ObjectPtr&,
                          const client::ObjectPtr& o) { enqueue(client::objectKey(*o)); },
      .on_delete = nullptr,
  });
}

CsrApprovingController::~CsrApprovingController() {
  stop();
}

bool CsrApprovingController::allowed(const CertificateSigningRequest& csr,
                                     const std::string& subresource) {
  api::authorization::v1::SubjectAccessReview review;
  auto* spec = review.mutable_spec();
  spec->set_user(csr.spec().username());
  spec->set_uid(csr.spec().uid());
  for (const auto& g : csr.spec().groups())
    spec->add_groups(g);
  auto* attributes = spec->mutable_resource_attributes();
  attributes->set_group("certificates.k8s.io");
  attributes->set_version("*");
  attributes->set_resource("certificatesigningrequests");
  attributes->set_subresource(subresource);
  attributes->set_verb("create");
  return client::create(client_, review).status().allowed();
}

std::optional<std::chrono::milliseconds> CsrApprovingController::sync(const std::string& key) {
  auto object = csrs_.cache().get(key);
  if (!object) return std::nullopt;
  const auto& csr = client::as<CertificateSigningRequest>(object);
  std::vector<CsrPermission> permissions = csrApprovalPermissions(csr);
  std::vector<std::string> tried;
  for (const auto& p : permissions) {
    tried.push_back(p.subresource);
    if (!allowed(csr, p.subresource)) continue;
    try {
      updateCsrApproval(client_, withAutoApproval(csr, p.message, api::now().seconds));
    } catch (const client::ApiError& e) {
      if (e.isNotFound()) return std::nullopt;
      if (e.isConflict()) return std::chrono::milliseconds(100);  // the informer brings it again
      throw;
    }
    return std::nullopt;
  }
  if (!tried.empty()) {
    // Kubernetes' IgnorableError: logged, not retried.
    std::string list;
    for (const auto& t : tried)
      list += (list.empty() ? "" : " ") + t;
    std::fprintf(stderr,
                 "csrapproving: recognized csr %s as [%s] but subject access review was not "
                 "approved\n",
                 csr.metadata().name().c_str(), list.c_str());
  }
  return std::nullopt;
}

}  // namespace skiff::controllers
