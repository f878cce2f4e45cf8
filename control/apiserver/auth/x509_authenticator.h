#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

#include "control/apiserver/auth/authenticator.h"

namespace skiff::apiserver::auth {

// Client certificates signed by the cluster CA: the user is the subject's CN, the groups its O
// values (kube-apiserver's x509 authenticator). TLS has already checked the chain; this checks it
// again for the client purpose (extendedKeyUsage clientAuth, validity now) and remembers the
// answer per certificate so a keep-alive client costs one parse.
class X509Authenticator : public Authenticator {
 public:
  explicit X509Authenticator(std::string ca_pem) : ca_pem_(std::move(ca_pem)) {}
  AuthResult authenticate(const Credentials& credentials) override;

 private:
  struct Entry {
    UserInfo user;
    std::string error;  // non-empty: rejected
    std::chrono::system_clock::time_point not_after;
  };
  const std::string ca_pem_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> cache_;  // by certificate PEM
};

}  // namespace skiff::apiserver::auth
