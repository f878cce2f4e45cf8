// The CSR approver's rules (which CSRs it recognises and which permission it checks, as a table)
// and the CSR signer's decisions (which CSRs it signs, fails or leaves; the certificate it issues,
// read back with OpenSSL through control/certificates).
#include <gtest/gtest.h>

#include "control/apiserver/pki.h"
#include "control/certificates/x509.h"
#include "control/controllers/csr_approving.h"
#include "control/controllers/csr_signing.h"

namespace skiff::controllers {
namespace {

using namespace std::chrono_literals;

struct CsrSpec {
  std::string cn = "system:node:n1";
  std::vector<std::string> orgs = {"system:nodes"};
  std::vector<std::string> dns;
  std::string signer = "kubernetes.io/kube-apiserver-client-kubelet";
  std::vector<std::string> usages = {"digital signature", "client auth"};
  std::string username = "system:bootstrap:abcdef";
};

CertificateSigningRequest makeCsr(const CsrSpec& s) {
  CertificateSigningRequest csr;
  csr.mutable_metadata()->set_name("csr-1");
  auto* spec = csr.mutable_spec();
  spec->set_request(certificates::generateKeyAndRequest(s.cn, s.orgs, s.dns).request_pem);
  spec->set_signer_name(s.signer);
  for (const auto& u : s.usages)
    spec->add_usages(u);
  spec->set_username(s.username);
  return csr;
}

void addCondition(CertificateSigningRequest& csr, const char* type) {
  auto* c = csr.mutable_status()->add_conditions();
  c->set_type(type);
  c->set_status("True");
}

std::string permissions(const CertificateSigningRequest& csr) {
  std::string out;
  for (const auto& p : csrApprovalPermissions(csr))
    out += (out.empty() ? "" : ",") + p.subresource;
  return out;
}

TEST(CsrApprover, RecognisesKubeletClientRequestsOnly) {
  struct Case {
    const char* name;
    CsrSpec spec;
    std::string want;
  };
  CsrSpec self;
  self.username = "system:node:n1";
  CsrSpec rsa;
  rsa.usages = {"digital signature", "key encipherment", "client auth"};
  CsrSpec other_signer;
  other_signer.signer = "kubernetes.io/kube-apiserver-client";
  CsrSpec wrong_org;
  wrong_org.orgs = {"system:nodes", "system:masters"};
  CsrSpec no_org;
  no_org.orgs = {};
  CsrSpec not_a_node;
  not_a_node.cn = "alice";
  CsrSpec sans;
  sans.dns = {"n1.example"};
  CsrSpec server_usage;
  server_usage.usages = {"digital signature", "client auth", "server auth"};
  CsrSpec only_client_auth;
  only_client_auth.usages = {"client auth"};
  const std::vector<Case> cases = {
      {"a bootstrap token's request", {}, "nodeclient"},
      {"a node renewing its own certificate", self, "selfnodeclient,nodeclient"},
      {"with key encipherment (RSA keys)", rsa, "nodeclient"},
      {"another signer", other_signer, ""},
      {"O other than system:nodes alone", wrong_org, ""},
      {"no O", no_org, ""},
      {"CN not system:node:", not_a_node, ""},
      {"with SANs", sans, ""},
      {"server auth", server_usage, ""},
      {"client auth without digital signature", only_client_auth, ""},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(permissions(makeCsr(c.spec)), c.want) << c.name;
  }
  // Decided already: nothing to do.
  for (const char* type : {"Approved", "Denied"}) {
    auto csr = makeCsr({});
    addCondition(csr, type);
    EXPECT_EQ(permissions(csr), "") << type;
  }
  auto issued = makeCsr({});
  issued.mutable_status()->set_certificate("x");
  EXPECT_EQ(permissions(issued), "");
  auto garbage = makeCsr({});
  garbage.mutable_spec()->set_request("garbage");
  EXPECT_EQ(permissions(garbage), "");
}

TEST(CsrApprover, ApprovalCondition) {
  auto csr = withAutoApproval(makeCsr({}), "Auto approving.", 42);
  ASSERT_EQ(csr.status().conditions_size(), 1);
  const auto& c = csr.status().conditions(0);
  EXPECT_EQ(c.type(), "Approved");
  EXPECT_EQ(c.status(), "True");
  EXPECT_EQ(c.reason(), "AutoApproved");
  EXPECT_EQ(c.message(), "Auto approving.");
  EXPECT_EQ(c.last_update_time().seconds(), 42);
}

TEST(CsrSigner, Lifetime) {
  auto csr = makeCsr({});
  EXPECT_EQ(csrCertificateTtl(csr, 8760h), 8760h);
  csr.mutable_spec()->set_expiration_seconds(3600);
  EXPECT_EQ(csrCertificateTtl(csr, 8760h), 3600s);
  csr.mutable_spec()->set_expiration_seconds(60);
  EXPECT_EQ(csrCertificateTtl(csr, 8760h), 600s);
  csr.mutable_spec()->set_expiration_seconds(100 * 24 * 3600);
  EXPECT_EQ(csrCertificateTtl(csr, 24h), 24h);
}

TEST(CsrSigner, SignsApprovedRequestsOfItsSigners) {
  auto ca = apiserver::generateCa("skiff-ca");
  CsrSigningOptions options{.ca_cert_pem = ca.cert_pem, .ca_key_pem = ca.key_pem};
  auto now = std::chrono::system_clock::now();
  using Kind = CsrSigningDecision::Kind;

  auto pending = makeCsr({});
  EXPECT_EQ(decideCsrSigning(pending, options, now).kind, Kind::kNothing);
  auto denied = makeCsr({});
  addCondition(denied, "Denied");
  EXPECT_EQ(decideCsrSigning(denied, options, now).kind, Kind::kNothing);
  auto failed = makeCsr({});
  addCondition(failed, "Approved");
  addCondition(failed, "Failed");
  EXPECT_EQ(decideCsrSigning(failed, options, now).kind, Kind::kNothing);
  CsrSpec foreign;
  foreign.signer = "example.com/mine";
  auto other = makeCsr(foreign);
  addCondition(other, "Approved");
  EXPECT_EQ(decideCsrSigning(other, options, now).kind, Kind::kNothing);

  auto approved = makeCsr({});
  addCondition(approved, "Approved");
  approved.mutable_spec()->set_expiration_seconds(3600);
  auto issue = decideCsrSigning(approved, options, now);
  ASSERT_EQ(issue.kind, Kind::kIssue) << issue.message;
  auto info = certificates::inspectCertificate(issue.certificate_pem);
  EXPECT_EQ(info.subject_common_name, "system:node:n1");
  EXPECT_EQ(info.subject_organizations, std::vector<std::string>{"system:nodes"});
  EXPECT_EQ(info.issuer_common_name, "skiff-ca");
  EXPECT_EQ(info.usages, (std::set<std::string>{"digital signature", "client auth"}));
  EXPECT_FALSE(info.is_ca);
  // An hour asked (shorter than 8 h: no backdate at the end), 5 minutes backdated at the start.
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(info.not_after - info.not_before),
            3900s);
  EXPECT_TRUE(certificates::signedBy(issue.certificate_pem, ca.cert_pem));
  approved.mutable_status()->set_certificate(issue.certificate_pem);
  EXPECT_EQ(decideCsrSigning(approved, options, now).kind, Kind::kNothing);

  // A request its signer does not accept: Failed, with the reason.
  CsrSpec wrong;
  wrong.orgs = {"system:masters"};
  auto bad = makeCsr(wrong);
  addCondition(bad, "Approved");
  auto fail = decideCsrSigning(bad, options, now);
  EXPECT_EQ(fail.kind, Kind::kFail);
  EXPECT_EQ(fail.message, "subject organization is not system:nodes");
  CsrSpec client;
  client.signer = "kubernetes.io/kube-apiserver-client";
  client.cn = "alice";
  client.orgs = {"devs"};
  client.usages = {"client auth", "server auth"};
  auto bad_client = makeCsr(client);
  addCondition(bad_client, "Approved");
  EXPECT_EQ(decideCsrSigning(bad_client, options, now).message,
            "invalid usage for client certificate: server auth");

  // kubelet-serving: SANs, server auth.
  CsrSpec serving;
  serving.signer = "kubernetes.io/kubelet-serving";
  serving.dns = {"n1"};
  serving.usages = {"digital signature", "server auth"};
  auto serve = makeCsr(serving);
  addCondition(serve, "Approved");
  auto served = decideCsrSigning(serve, options, now);
  ASSERT_EQ(served.kind, Kind::kIssue) << served.message;
  EXPECT_EQ(certificates::inspectCertificate(served.certificate_pem).dns_names,
            std::vector<std::string>{"n1"});
}

}  // namespace
}  // namespace skiff::controllers
