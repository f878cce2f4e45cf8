#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/api/value.h"

// kubeconfig files as kubectl reads and writes them (apiVersion v1, kind Config).
//
// Errors are api::DecodeError whose diagnostics name the file, line, column and field, e.g.
// `admin.kubeconfig:7:5: contexts[0].context.cluster: cluster "foo" not found`.

namespace skiff::client {

// What writeKubeconfig puts in a file: one cluster, one user, one context that is current.
struct KubeconfigSpec {
  std::string cluster_name = "skiff";
  std::string user_name = "admin";
  std::string context_name = "skiff";
  std::string server;           // "https://127.0.0.1:6443"
  std::string ca_pem;           // certificate-authority-data (empty: left out)
  std::string token;            // bearer token (empty: left out)
  std::string client_cert_pem;  // client-certificate-data and client-key-data (both or neither)
  std::string client_key_pem;
  std::string default_namespace;  // the context's namespace (empty: left out)
};

// The kubeconfig as YAML text.
std::string renderKubeconfig(const KubeconfigSpec& spec);
// Writes renderKubeconfig(spec) to `path` with mode 0600 (atomically, replacing a file that is
// there). Throws std::runtime_error naming the file.
void writeKubeconfig(const std::string& path, const KubeconfigSpec& spec);

// Everything a client needs to reach the apiserver, resolved from the current (or chosen) context.
struct ClientConfig {
  std::string context_name;
  std::string cluster_name;
  std::string user_name;  // empty: the context names no user (anonymous)
  std::string server;     // "https://host:port"
  std::string ca_pem;     // PEM of the CA bundle to trust; empty: the system's roots
  bool insecure_skip_tls_verify = false;
  std::string tls_server_name;
  std::string token;       // the bearer token: `token`, else the contents of `tokenFile`
  std::string token_file;  // absolute path of `tokenFile` when it was used (it may rotate)
  std::string client_cert_pem;
  std::string client_key_pem;
  std::string default_namespace = "default";
  std::string source;  // the kubeconfig file the context came from
};

// The parsed contents of one or more kubeconfig files, merged as kubectl merges $KUBECONFIG: the
// first file to define a cluster, user or context by name wins, and the first current-context set
// wins. Relative file paths (certificate-authority, client-certificate, client-key, tokenFile) are
// relative to the directory of the file that holds them.
class Kubeconfig {
 public:
  Kubeconfig();
  ~Kubeconfig();
  Kubeconfig(const Kubeconfig&);
  Kubeconfig& operator=(const Kubeconfig&);
  Kubeconfig(Kubeconfig&&) noexcept;
  Kubeconfig& operator=(Kubeconfig&&) noexcept;

  // Parses one file's text; `source` is its path (for messages and relative paths). An empty text
  // is an empty config. Structural errors (a list that is not a list, a duplicate or missing name)
  // throw api::DecodeError with every problem found.
  static Kubeconfig parse(std::string_view text, const std::string& source);
  // Reads and parses one file; a file that cannot be read throws api::DecodeError naming it.
  static Kubeconfig loadFile(const std::string& path);
  // Adds `other`'s entries below this one's (names already here win).
  void merge(const Kubeconfig& other);

  // Resolves a context (empty: current-context) to a ClientConfig: finds its cluster and user,
  // decodes -data fields, reads referenced files and checks them (PEM certificates, a key that
  // matches its certificate). Throws api::DecodeError pointing at the field at fault.
  ClientConfig resolve(std::string_view context = {}) const;

  std::string currentContext() const;
  std::vector<std::string> contextNames() const;
  // The files merged, in order.
  const std::vector<std::string>& sources() const { return sources_; }

 private:
  struct Entry;
  struct Current;
  const Entry* find(const std::vector<Entry>& entries, std::string_view name) const;

  std::vector<std::string> sources_;
  std::vector<Entry> clusters_;
  std::vector<Entry> users_;
  std::vector<Entry> contexts_;
  std::unique_ptr<Current> current_;
};

struct LoadOptions {
  std::string kubeconfig;  // --kubeconfig: this file only (it must exist)
  std::string context;     // --context: instead of current-context
  // The environment, for tests; nullopt reads $KUBECONFIG and $HOME.
  std::optional<std::string> kubeconfig_env;
  std::optional<std::string> home;
};

// The files kubectl would read, in order: the explicit path, else each file of $KUBECONFIG
// (colon-separated, empty entries skipped), else $HOME/.kube/config.
std::vector<std::string> kubeconfigPaths(const LoadOptions& options);

// Loads as kubectl does: the explicit file must exist; of $KUBECONFIG's files those that exist
// are merged (none existing is an error naming them); else ~/.kube/config. Then resolves the
// context. Throws api::DecodeError.
ClientConfig loadClientConfig(const LoadOptions& options = {});

// Base64 (RFC 4648, standard alphabet, padded), as kubeconfig -data fields hold it.
std::string base64Encode(std::string_view data);
// Decodes standard base64, ignoring whitespace; padding optional. nullopt on bad input.
std::optional<std::string> base64Decode(std::string_view text);

}  // namespace skiff::client
