// CertificateSigningRequest strategy and validation (control/apiserver/csr_strategy.h): the
// requester recorded on create, Kubernetes' field paths and messages for the spec, and what each
// of the object, status and approval writes may change.
#include "control/apiserver/csr_strategy.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include "control/api/registry.h"
#include "control/apiserver/resource_storage.h"
#include "control/certificates/x509.h"
#include "control/store/sqlite_store.h"

namespace skiff::apiserver {
namespace {

CertificateSigningRequest validCsr() {
  CertificateSigningRequest csr;
  csr.mutable_metadata()->set_name("node-csr-1");
  auto* spec = csr.mutable_spec();
  spec->set_request(
      certificates::generateKeyAndRequest("system:node:n1", {"system:nodes"}).request_pem);
  spec->set_signer_name("kubernetes.io/kube-apiserver-client-kubelet");
  spec->add_usages("digital signature");
  spec->add_usages("client auth");
  return csr;
}

std::string causesText(const std::vector<FieldCause>& causes) {
  std::string out;
  for (const auto& c : causes)
    out += c.field + ": " + c.detail + "\n";
  return out;
}

void condition(CertificateSigningRequest& csr, const char* type, const char* status = "True") {
  auto* c = csr.mutable_status()->add_conditions();
  c->set_type(type);
  c->set_status(status);
}

TEST(CsrStrategy, CreateRecordsTheRequesterAndDropsTheStatus) {
  CertificateSigningRequest csr = validCsr();
  csr.mutable_spec()->set_username("system:admin");  // whatever the client claims
  csr.mutable_spec()->add_groups("system:masters");
  (*csr.mutable_spec()->mutable_extra())["scopes"].set_raw(R"(["x"])");
  condition(csr, "Approved");
  csr.mutable_status()->set_certificate("forged");
  prepareCsrCreate(csr, {"system:bootstrap:abcdef", "", {"system:bootstrappers", "x"}});
  EXPECT_EQ(csr.spec().username(), "system:bootstrap:abcdef");
  ASSERT_EQ(csr.spec().groups_size(), 2);
  EXPECT_EQ(csr.spec().groups(0), "system:bootstrappers");
  EXPECT_TRUE(csr.spec().extra().empty());
  EXPECT_FALSE(csr.has_status());
  EXPECT_EQ(causesText(csrCreateCauses(csr)), "");
}

TEST(CsrStrategy, SpecValidation) {
  struct Case {
    const char* name;
    std::function<void(CertificateSigningRequest&)> edit;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"no request", [](auto& c) { c.mutable_spec()->clear_request(); },
       "spec.request: Required value\n"},
      {"not a request",
       [](auto& c) {
         c.mutable_spec()->set_request(
             "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
       },
       "spec.request: Invalid value: \"<request>\": PEM block type must be CERTIFICATE "
       "REQUEST\n"},
      {"no usages", [](auto& c) { c.mutable_spec()->clear_usages(); },
       "spec.usages: Required value: usages must be provided\n"},
      {"duplicate usage", [](auto& c) { c.mutable_spec()->add_usages("client auth"); },
       "spec.usages[2]: Duplicate value: \"client auth\"\n"},
      {"unknown usage", [](auto& c) { c.mutable_spec()->set_usages(0, "telepathy"); }, "x"},
      {"no signer", [](auto& c) { c.mutable_spec()->clear_signer_name(); },
       "spec.signerName: Required value\n"},
      {"signer without path", [](auto& c) { c.mutable_spec()->set_signer_name("example.com"); },
       "spec.signerName: Invalid value: \"example.com\": must be a fully qualified domain and "
       "path of the form 'example.com/signer-name'\n"},
      {"signer with a bad domain",
       [](auto& c) { c.mutable_spec()->set_signer_name("Example_com/x"); }, "x"},
      {"too short", [](auto& c) { c.mutable_spec()->set_expiration_seconds(599); },
       "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 600 "
       "seconds (10 minutes)\n"},
      {"ten minutes", [](auto& c) { c.mutable_spec()->set_expiration_seconds(600); }, ""},
  };
  for (const auto& c : cases) {
    CertificateSigningRequest csr = validCsr();
    c.edit(csr);
    std::string got = causesText(csrCreateCauses(csr));
    if (c.want == "x") {
      EXPECT_NE(got, "") << c.name;
      EXPECT_EQ(std::count(got.begin(), got.end(), '\n'), 1) << c.name << ": " << got;
    } else {
      EXPECT_EQ(got, c.want) << c.name;
    }
  }
  CertificateSigningRequest bad = validCsr();
  bad.mutable_spec()->clear_signer_name();
  try {
    validateCsrCreate(bad);
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), 422);
    EXPECT_NE(std::string(e.what()).find("CertificateSigningRequest.certificates.k8s.io "
                                         "\"node-csr-1\" is invalid"),
              std::string::npos)
        << e.what();
  }
}

TEST(CsrStrategy, TheClientSignerIsNotForSystemMasters) {
  CertificateSigningRequest csr = validCsr();
  csr.mutable_spec()->set_request(
      certificates::generateKeyAndRequest("mallory", {"system:masters"}).request_pem);
  csr.mutable_spec()->set_signer_name("kubernetes.io/kube-apiserver-client");
  try {
    validateCsrCreate(csr);
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), 403);
    EXPECT_NE(std::string(e.what()).find("with system:masters group is not allowed"),
              std::string::npos);
  }
}

TEST(CsrStrategy, WhatEachWriteMayChange) {
  CertificateSigningRequest old = validCsr();
  old.mutable_spec()->set_username("system:bootstrap:abcdef");

  // The object's PUT: spec and status stay.
  CertificateSigningRequest next = old;
  next.mutable_spec()->set_username("someone-else");
  condition(next, "Approved");
  prepareCsrUpdate(old, next, CsrWrite::kMain, 100);
  EXPECT_EQ(next.spec().username(), "system:bootstrap:abcdef");
  EXPECT_EQ(next.status().conditions_size(), 0);

  // approval: conditions only, with their times filled in.
  next = old;
  condition(next, "Approved");
  next.mutable_status()->set_certificate("forged");
  prepareCsrUpdate(old, next, CsrWrite::kApproval, 100);
  ASSERT_EQ(next.status().conditions_size(), 1);
  EXPECT_EQ(next.status().conditions(0).last_update_time().seconds(), 100);
  EXPECT_EQ(next.status().conditions(0).last_transition_time().seconds(), 100);
  EXPECT_EQ(next.status().certificate(), "");
  EXPECT_EQ(causesText(csrUpdateCauses(old, next, CsrWrite::kApproval)), "");
  CertificateSigningRequest approved = next;

  // status: Approved/Denied keep their stored instances; the certificate must be PEM.
  next = approved;
  next.mutable_status()->clear_conditions();
  condition(next, "Denied");
  condition(next, "Failed");
  next.mutable_status()->set_certificate("not pem");
  prepareCsrUpdate(approved, next, CsrWrite::kStatus, 200);
  ASSERT_EQ(next.status().conditions_size(), 2);
  EXPECT_EQ(next.status().conditions(0).type(), "Failed");
  EXPECT_EQ(next.status().conditions(1).type(), "Approved");
  EXPECT_EQ(next.status().conditions(1).last_transition_time().seconds(), 100);
  EXPECT_EQ(causesText(csrUpdateCauses(approved, next, CsrWrite::kStatus)),
            "status.certificate: Invalid value: \"<certificate data>\": must contain at least one "
            "CERTIFICATE PEM block, each with no headers and a valid X.509 certificate\n");

  // Once set, the certificate stays.
  CertificateSigningRequest issued = approved;
  issued.mutable_status()->set_certificate("-----BEGIN CERTIFICATE-----\n...");
  next = issued;
  next.mutable_status()->set_certificate("something else");
  EXPECT_EQ(causesText(csrUpdateCauses(issued, next, CsrWrite::kStatus)),
            "status.certificate: Forbidden: updates may not modify existing certificate "
            "content\n");

  // Approved and Denied are exclusive; True only; no duplicates.
  next = approved;
  condition(next, "Denied");
  prepareCsrUpdate(approved, next, CsrWrite::kApproval, 300);
  EXPECT_EQ(causesText(csrUpdateCauses(approved, next, CsrWrite::kApproval)),
            "status.conditions: Invalid value: the conditions: Approved and Denied conditions are "
            "mutually exclusive\n");
  next = old;
  condition(next, "Denied", "False");
  condition(next, "Failed", "Maybe");
  condition(next, "Failed");
  EXPECT_EQ(causesText(csrUpdateCauses(old, next, CsrWrite::kApproval)),
            "status.conditions[0].status: Unsupported value: \"False\": supported values: "
            "\"True\"\n"
            "status.conditions[1].status: Unsupported value: \"Maybe\": supported values: "
            "\"False\", \"True\", \"Unknown\"\n"
            "status.conditions[2].type: Duplicate value: \"Failed\"\n");
}

TEST(CsrStrategy, SignerPermissions) {
  CertificateSigningRequest old = validCsr();
  CertificateSigningRequest next = old;
  EXPECT_EQ(csrSignerVerb(old, next, CsrWrite::kApproval), "approve");
  EXPECT_EQ(csrSignerVerb(old, next, CsrWrite::kStatus), "");
  EXPECT_EQ(csrSignerVerb(old, next, CsrWrite::kMain), "");
  next.mutable_status()->set_certificate("new");
  EXPECT_EQ(csrSignerVerb(old, next, CsrWrite::kStatus), "sign");
  EXPECT_EQ(
      signerPermissionNames("kubernetes.io/kube-apiserver-client-kubelet"),
      (std::vector<std::string>{"kubernetes.io/kube-apiserver-client-kubelet", "kubernetes.io/*"}));
  ApiError e = signerForbidden(old, "approve");
  EXPECT_EQ(e.code(), 403);
  EXPECT_STREQ(e.what(),
               "certificatesigningrequests.certificates.k8s.io \"node-csr-1\" is forbidden: user "
               "not permitted to approve requests with signerName "
               "\"kubernetes.io/kube-apiserver-client-kubelet\"");
}

// kubectl get csr --field-selector spec.signerName=..., as Kubernetes' CSR field selector.
TEST(CsrStrategy, SignerNameIsASelectableField) {
  auto dir = std::filesystem::temp_directory_path() / ("skiff-csr-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    auto store = store::SqliteStore::open({.path = (dir / "db").string(), .fsync = false});
    const auto* type =
        api::Registry::builtin().byKind("certificates.k8s.io/v1", "CertificateSigningRequest");
    ASSERT_NE(type, nullptr);
    ResourceStorage storage(*store, *type);
    CertificateSigningRequest csr = validCsr();
    ListRequest kubelet{.fields = api::fields::Selector::parse(
                            "spec.signerName=kubernetes.io/kube-apiserver-client-kubelet")};
    ListRequest other{.fields = api::fields::Selector::parse("spec.signerName=example.com/x")};
    EXPECT_TRUE(storage.matches(csr, kubelet));
    EXPECT_FALSE(storage.matches(csr, other));
    EXPECT_NE(std::find(storage.selectableFields().begin(), storage.selectableFields().end(),
                        "spec.signerName"),
              storage.selectableFields().end());
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace skiff::apiserver
