#include "control/apiserver/csr_strategy.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "control/certificates/x509.h"

namespace skiff::apiserver {
namespace {

using api::certificates::v1::CertificateSigningRequestCondition;
using api::certificates::v1::CertificateSigningRequestStatus;

constexpr const char* kKind = "CertificateSigningRequest";
constexpr const char* kGroup = "certificates.k8s.io";

bool dns1123Subdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (start <= s.size()) {
    size_t dot = s.find('.', start);
    std::string_view label = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    if (label.empty() || label.size() > 63) return false;
    for (char c : label) {
      if (!(std::islower(static_cast<unsigned char>(c)) ||
            std::isdigit(static_cast<unsigned char>(c)) || c == '-')) {
        return false;
      }
    }
    if (label.front() == '-' || label.back() == '-') return false;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

// Kubernetes' ValidateSignerName: "example.com/signer-name", the domain a DNS-1123 subdomain,
// the path at most 253 characters (the whole name at most 571) of path-segment characters.
std::string signerNameProblem(std::string_view name) {
  const std::string form =
      "must be a fully qualified domain and path of the form 'example.com/signer-name'";
  size_t slash = name.find('/');
  if (slash == std::string_view::npos) return form;
  std::string_view domain = name.substr(0, slash);
  std::string_view path = name.substr(slash + 1);
  if (path.empty()) return "validating path: the path must not be empty; " + form;
  if (path.size() > 253) return "validating path: must be no more than 253 characters";
  for (char c : path) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
        c == '/') {
      continue;
    }
    return "validating path: must consist of alphanumeric characters, '-', '_', '.' or '/'";
  }
  if (!dns1123Subdomain(domain)) {
    return "validating domain: a lowercase RFC 1123 subdomain must consist of lower case "
           "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
           "character";
  }
  return "";
}

std::string quoted(const std::string& s) {
  return "\"" + s + "\"";
}

const CertificateSigningRequestCondition* findCondition(const CertificateSigningRequestStatus& s,
                                                        std::string_view type) {
  for (const auto& c : s.conditions()) {
    if (c.type() == type) return &c;
  }
  return nullptr;
}

void conditionCauses(const CertificateSigningRequest& csr, std::vector<FieldCause>& causes) {
  std::set<std::string> seen;
  bool approved = false;
  bool denied = false;
  for (int i = 0; i < csr.status().conditions_size(); ++i) {
    const auto& c = csr.status().conditions(i);
    std::string path = "status.conditions[" + std::to_string(i) + "]";
    if (c.type().empty()) {
      causes.push_back({"FieldValueRequired", path + ".type", "Required value"});
    }
    if (c.status() != "True" && c.status() != "False" && c.status() != "Unknown") {
      causes.push_back({"FieldValueNotSupported", path + ".status",
                        "Unsupported value: " + quoted(c.status()) +
                            ": supported values: \"False\", \"True\", \"Unknown\""});
    }
    if (!c.type().empty() && !seen.insert(c.type()).second) {
      causes.push_back(
          {"FieldValueDuplicate", path + ".type", "Duplicate value: " + quoted(c.type())});
    }
    if (c.type() == "Approved" || c.type() == "Denied") {
      (c.type() == "Approved" ? approved : denied) = true;
      if (c.status() == "False" || c.status() == "Unknown") {
        causes.push_back(
            {"FieldValueNotSupported", path + ".status",
             "Unsupported value: " + quoted(c.status()) + ": supported values: \"True\""});
      }
    }
  }
  if (approved && denied) {
    causes.push_back({"FieldValueInvalid", "status.conditions",
                      "Invalid value: the conditions: Approved and Denied conditions are "
                      "mutually exclusive"});
  }
}

// Fills lastUpdateTime (now, when unset) and lastTransitionTime (the stored condition's when the
// status did not change, else now), as Kubernetes' populateConditionTimestamps.
void populateConditionTimes(const CertificateSigningRequest* old, CertificateSigningRequest& next,
                            int64_t now) {
  for (auto& c : *next.mutable_status()->mutable_conditions()) {
    if (!c.has_last_update_time() || c.last_update_time().seconds() == 0) {
      c.mutable_last_update_time()->set_seconds(now);
    }
    if (c.has_last_transition_time() && c.last_transition_time().seconds() != 0) continue;
    const CertificateSigningRequestCondition* before =
        old != nullptr ? findCondition(old->status(), c.type()) : nullptr;
    if (before != nullptr && before->status() == c.status() && before->has_last_transition_time()) {
      *c.mutable_last_transition_time() = before->last_transition_time();
    } else {
      c.mutable_last_transition_time()->set_seconds(now);
    }
  }
}

// The status subresource may not add, change or remove Approved and Denied conditions: the
// stored instances are kept (Kubernetes' preserveConditionInstances).
void preserveConditions(const CertificateSigningRequest& old, CertificateSigningRequest& next,
                        std::string_view type) {
  auto* conditions = next.mutable_status()->mutable_conditions();
  for (int i = conditions->size() - 1; i >= 0; --i) {
    if (conditions->Get(i).type() == type) conditions->DeleteSubrange(i, 1);
  }
  for (const auto& c : old.status().conditions()) {
    if (c.type() == type) *conditions->Add() = c;
  }
}

}  // namespace

void prepareCsrCreate(CertificateSigningRequest& csr, const Requester& requester) {
  csr.clear_status();
  auto* spec = csr.mutable_spec();
  spec->set_username(requester.username);
  spec->set_uid(requester.uid);
  spec->clear_groups();
  for (const auto& g : requester.groups)
    spec->add_groups(g);
  spec->clear_extra();  // Skiff's authenticators give no extra attributes
}

std::vector<FieldCause> csrCreateCauses(const CertificateSigningRequest& csr) {
  std::vector<FieldCause> causes;
  const auto& spec = csr.spec();
  if (spec.request().empty()) {
    causes.push_back({"FieldValueRequired", "spec.request", "Required value"});
  } else {
    try {
      certificates::parseCertificateRequest(spec.request());
    } catch (const certificates::CertError& e) {
      causes.push_back({"FieldValueInvalid", "spec.request",
                        std::string("Invalid value: \"<request>\": ") + e.what()});
    }
  }
  if (spec.usages().empty()) {
    causes.push_back(
        {"FieldValueRequired", "spec.usages", "Required value: usages must be provided"});
  }
  std::set<std::string> seen;
  for (int i = 0; i < spec.usages_size(); ++i) {
    const std::string& u = spec.usages(i);
    std::string path = "spec.usages[" + std::to_string(i) + "]";
    if (!certificates::knownUsage(u)) {
      causes.push_back({"FieldValueNotSupported", path,
                        "Unsupported value: " + quoted(u) +
                            ": supported values: \"any\", \"cert sign\", \"client auth\", "
                            "\"code signing\", \"content commitment\", \"crl sign\", \"data "
                            "encipherment\", \"decipher only\", \"digital signature\", \"email "
                            "protection\", \"encipher only\", \"ipsec end system\", \"ipsec "
                            "tunnel\", \"ipsec user\", \"key agreement\", \"key encipherment\", "
                            "\"microsoft sgc\", \"netscape sgc\", \"ocsp signing\", \"s/mime\", "
                            "\"server auth\", \"signing\", \"timestamping\""});
    } else if (!seen.insert(u).second) {
      causes.push_back({"FieldValueDuplicate", path, "Duplicate value: " + quoted(u)});
    }
  }
  if (spec.signer_name().empty()) {
    causes.push_back({"FieldValueRequired", "spec.signerName", "Required value"});
  } else if (std::string problem = signerNameProblem(spec.signer_name()); !problem.empty()) {
    causes.push_back({"FieldValueInvalid", "spec.signerName",
                      "Invalid value: " + quoted(spec.signer_name()) + ": " + problem});
  }
  if (spec.has_expiration_seconds() && spec.expiration_seconds() < 600) {
    causes.push_back({"FieldValueInvalid", "spec.expirationSeconds",
                      "Invalid value: " + std::to_string(spec.expiration_seconds()) +
                          ": may not specify a duration less than 600 seconds (10 minutes)"});
  }
  conditionCauses(csr, causes);
  return causes;
}

void validateCsrCreate(const CertificateSigningRequest& csr) {
  auto causes = csrCreateCauses(csr);
  if (!causes.empty()) throw invalid(kKind, kGroup, csr.metadata().name(), causes);
  // CertificateSubjectRestriction admission: no system:masters from the client signer.
  if (csr.spec().signer_name() == certificates::kKubeApiServerClientSigner) {
    auto request = certificates::parseCertificateRequest(csr.spec().request());
    if (std::find(request.organizations.begin(), request.organizations.end(), "system:masters") !=
        request.organizations.end()) {
      throw forbidden({kGroup, "certificatesigningrequests"}, csr.metadata().name(),
                      "use of kubernetes.io/kube-apiserver-client signer with system:masters "
                      "group is not allowed");
    }
  }
}

void prepareCsrUpdate(const CertificateSigningRequest& old, CertificateSigningRequest& next,
                      CsrWrite what, int64_t now) {
  *next.mutable_spec() = old.spec();
  switch (what) {
    case CsrWrite::kMain:
      *next.mutable_status() = old.status();
      return;
    case CsrWrite::kStatus:
      preserveConditions(old, next, "Approved");
      preserveConditions(old, next, "Denied");
      break;
    case CsrWrite::kApproval: {
      auto conditions = next.status().conditions();
      *next.mutable_status() = old.status();
      *next.mutable_status()->mutable_conditions() = conditions;
      break;
    }
  }
  populateConditionTimes(&old, next, now);
}

std::vector<FieldCause> csrUpdateCauses(const CertificateSigningRequest& old,
                                        const CertificateSigningRequest& next, CsrWrite what) {
  std::vector<FieldCause> causes;
  conditionCauses(next, causes);
  if (what == CsrWrite::kStatus) {
    const std::string& cert = next.status().certificate();
    if (!old.status().certificate().empty() && cert != old.status().certificate()) {
      causes.push_back({"FieldValueForbidden", "status.certificate",
                        "Forbidden: updates may not modify existing certificate content"});
    } else if (!cert.empty() && !certificates::validCertificateBlocks(cert)) {
      causes.push_back({"FieldValueInvalid", "status.certificate",
                        "Invalid value: \"<certificate data>\": must contain at least one "
                        "CERTIFICATE PEM block, each with no headers and a valid X.509 "
                        "certificate"});
    }
  }
  return causes;
}

void validateCsrUpdate(const CertificateSigningRequest& old, const CertificateSigningRequest& next,
                       CsrWrite what) {
  auto causes = csrUpdateCauses(old, next, what);
  if (!causes.empty()) throw invalid(kKind, kGroup, next.metadata().name(), causes);
}

std::string csrSignerVerb(const CertificateSigningRequest& old,
                          const CertificateSigningRequest& next, CsrWrite what) {
  if (what == CsrWrite::kApproval) return "approve";
  if (what == CsrWrite::kStatus && next.status().certificate() != old.status().certificate()) {
    return "sign";
  }
  return "";
}

std::vector<std::string> signerPermissionNames(const std::string& signer_name) {
  std::vector<std::string> names = {signer_name};
  size_t slash = signer_name.find('/');
  if (slash != std::string::npos) names.push_back(signer_name.substr(0, slash) + "/*");
  return names;
}

ApiError signerForbidden(const CertificateSigningRequest& csr, const std::string& verb) {
  return forbidden({kGroup, "certificatesigningrequests"}, csr.metadata().name(),
                   "user not permitted to " + verb + " requests with signerName " +
                       quoted(csr.spec().signer_name()));
}

}  // namespace skiff::apiserver
