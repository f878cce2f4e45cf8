#include "control/controllers/csr_signing.h"

#include <set>

#include "control/api/time.h"
#include "control/client/typed.h"

namespace skiff::controllers {

namespace {

bool trueCondition(const CertificateSigningRequest& csr, std::string_view type) {
  for (const auto& c : csr.status().conditions()) {
    if (c.type() == type && c.status() == "True") return true;
  }
  return false;
}

}  // namespace

std::chrono::seconds csrCertificateTtl(const CertificateSigningRequest& csr,
                                       std::chrono::seconds max) {
  if (!csr.spec().has_expiration_seconds()) return max;
  // Twice the backdate: a sanity lower bound, as Kubernetes has it.
  constexpr std::chrono::seconds kMin{600};
  std::chrono::seconds requested{csr.spec().expiration_seconds()};
  if (requested > max) return max;
  if (requested < kMin) return kMin;
  return requested;
}

CsrSigningDecision decideCsrSigning(const CertificateSigningRequest& csr,
                                    const CsrSigningOptions& options,
                                    std::chrono::system_clock::time_point now) {
  CsrSigningDecision out;
  if (!trueCondition(csr, "Approved") || trueCondition(csr, "Denied") ||
      trueCondition(csr, "Failed") || !csr.status().certificate().empty()) {
    return out;
  }
  const std::string& signer = csr.spec().signer_name();
  if (signer != certificates::kKubeletClientSigner &&
      signer != certificates::kKubeApiServerClientSigner &&
      signer != certificates::kKubeletServingSigner) {
    return out;
  }
  std::vector<std::string> usages(csr.spec().usages().begin(), csr.spec().usages().end());
  std::set<std::string> usage_set(usages.begin(), usages.end());
  std::string problem;
  try {
    auto request = certificates::parseCertificateRequest(csr.spec().request());
    if (signer == certificates::kKubeletClientSigner) {
      problem = certificates::kubeletClientProblem(request, usage_set);
    } else if (signer == certificates::kKubeletServingSigner) {
      problem = certificates::kubeletServingProblem(request, usage_set);
    } else {
      problem = certificates::apiServerClientProblem(usages);
    }
  } catch (const certificates::CertError& e) {
    problem = std::string("unable to parse csr: ") + e.what();
  }
  if (!problem.empty()) {
    out.kind = CsrSigningDecision::Kind::kFail;
    out.message = problem;
    return out;
  }
  certificates::SigningPolicy policy;
  policy.usages = usages;
  policy.ttl = csrCertificateTtl(csr, options.duration);
  out.kind = CsrSigningDecision::Kind::kIssue;
  out.certificate_pem = certificates::signRequest(options.ca_cert_pem, options.ca_key_pem,
                                                  csr.spec().request(), policy, now);
  return out;
}

CsrSigningController::CsrSigningController(client::Client& client, client::SharedInformer& csrs,
                                           CsrSigningOptions options)
    : QueueController("csrsigning"), client_(client), csrs_(csrs), options_(std::move(options)) {
  csrs_.addEventHandler({
      .on_add = [this](const client::ObjectPtr& o) { enqueue(client::objectKey(*o)); },
      .on_update = [this](const client::ObjectPtr&,
                          const client::ObjectPtr& o) { enqueue(client::objectKey(*o)); },
      .on_delete = nullptr,
  });
}

CsrSigningController::~CsrSigningController() {
  stop();
}

std::optional<std::chrono::milliseconds> CsrSigningController::sync(const std::string& key) {
  auto object = csrs_.cache().get(key);
  if (!object) return std::nullopt;
  CertificateSigningRequest csr = client::as<CertificateSigningRequest>(object);
  CsrSigningDecision decision = decideCsrSigning(csr, options_, std::chrono::system_clock::now());
  if (decision.kind == CsrSigningDecision::Kind::kNothing) return std::nullopt;
  if (decision.kind == CsrSigningDecision::Kind::kIssue) {
    csr.mutable_status()->set_certificate(decision.certificate_pem);
  } else {
    auto* c = csr.mutable_status()->add_conditions();
    c->set_type("Failed");
    c->set_status("True");
    c->set_reason("SignerValidationFailure");
    c->set_message(decision.message);
    c->mutable_last_update_time()->set_seconds(api::now().seconds);
  }
  try {
    client::updateStatus(client_, csr);
  } catch (const client::ApiError& e) {
    if (e.isNotFound()) return std::nullopt;
    if (e.isConflict()) return std::chrono::milliseconds(100);
    throw;
  }
  return std::nullopt;
}

}  // namespace skiff::controllers
