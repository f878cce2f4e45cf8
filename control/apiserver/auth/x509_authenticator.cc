#include "control/apiserver/auth/x509_authenticator.h"

#include "control/apiserver/pki.h"

namespace skiff::apiserver::auth {
namespace {
constexpr size_t kMaxCached = 4096;
}

AuthResult X509Authenticator::authenticate(const Credentials& credentials) {
  if (credentials.client_certificate.empty()) return AuthResult::notMine();
  std::string pem(credentials.client_certificate);
  auto now = std::chrono::system_clock::now();
  {
    std::lock_guard lock(mu_);
    auto it = cache_.find(pem);
    if (it != cache_.end() && now < it->second.not_after) {
      if (!it->second.error.empty()) return AuthResult::rejected(it->second.error);
      return AuthResult::authenticated(it->second.user);
    }
  }
  Entry entry;
  try {
    CertificateInfo info = inspectCertificate(pem, "client certificate");
    entry.not_after = info.not_after;
    entry.error = verifyCertificate(ca_pem_, pem, CertPurpose::kClient);
    if (entry.error.empty() && info.common_name.empty()) {
      entry.error = "client certificate has no common name";
    }
    entry.user.name = info.common_name;
    entry.user.groups = info.organizations;
  } catch (const PkiError& e) {
    return AuthResult::rejected(std::string("client certificate: ") + e.what());
  }
  {
    std::lock_guard lock(mu_);
    if (cache_.size() >= kMaxCached) cache_.clear();
    cache_[pem] = entry;
  }
  if (!entry.error.empty()) return AuthResult::rejected("client certificate: " + entry.error);
  return AuthResult::authenticated(entry.user);
}

}  // namespace skiff::apiserver::auth
