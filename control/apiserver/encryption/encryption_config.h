#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "control/apiserver/encryption/transformer.h"

// kube-apiserver's --encryption-provider-config: an EncryptionConfiguration
// (apiserver.config.k8s.io/v1) listing, per group of resources, the providers that encrypt their
// values in the store:
//
//   apiVersion: apiserver.config.k8s.io/v1
//   kind: EncryptionConfiguration
//   resources:
//     - resources: [secrets, configmaps]     # also "deployments.apps", "*.apps", "*." (core),
//     "*.*"
//       providers:
//         - aescbc:                          # or aesgcm; the first provider encrypts
//             keys:
//               - name: key2                 # the first key encrypts, every key decrypts
//                 secret: <base64 of 32 random bytes>
//               - name: key1
//                 secret: <...>
//         - identity: {}                     # reads what was stored before encryption was on
//
// The first rule naming a resource decides (a later rule it masks is an error, as Kubernetes').
// secretbox needs libsodium and kms a KMS plugin; Skiff has neither and refuses them by name.
// Skiff's store keys carry no API group (`/registry/deployments/...`), so "deployments.apps" and
// "deployments" cover the same keys.

namespace skiff::apiserver::encryption {

// A configuration that cannot be used; what() is "FILE: FIELD.PATH: what is wrong".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class EncryptionConfig {
 public:
  // The transformer for a store key, or nullptr when no rule covers it (stored as it is).
  const Transformer* forKey(std::string_view key) const;
  // The store key prefixes covered, in precedence order ("/registry/secrets/", "/registry/").
  std::vector<std::string> prefixes() const;
  // One line per rule: "secrets,configmaps: aescbc(key2,key1), identity".
  const std::vector<std::string>& summary() const { return summary_; }

 private:
  friend EncryptionConfig parseEncryptionConfig(std::string_view, std::string_view);
  struct Rule {
    std::string prefix;
    std::shared_ptr<const Transformer> transformer;
  };
  std::vector<Rule> rules_;
  std::vector<std::string> summary_;
};

// Parses an EncryptionConfiguration (YAML or JSON); `source` names it in errors. Throws
// ConfigError naming the source and the field path
// ("enc.yaml: resources[0].providers[1].aescbc.keys[0].secret: must be 16, 24 or 32 bytes ...").
EncryptionConfig parseEncryptionConfig(std::string_view text, std::string_view source);
// Reads and parses the file at `path`.
EncryptionConfig loadEncryptionConfig(const std::string& path);

}  // namespace skiff::apiserver::encryption
