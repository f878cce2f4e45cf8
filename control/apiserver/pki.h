#pragma once

#include <array>
#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

// The cluster's PKI as `skiff server --data-dir DIR` bootstraps it on first start (the way k3s and
// kubeadm do): a cluster CA, the apiserver's serving certificate, client certificates, and static
// bearer tokens in kube-apiserver's token file format. Keys are EC P-256, signatures SHA-256.
//
//   DIR/pki/ca.crt, ca.key                the cluster CA (10 years; the key is never overwritten)
//   DIR/pki/apiserver.crt, apiserver.key  the serving certificate (1 year, reissued when its SANs
//                                         no longer cover what is asked or it expires within 30
//                                         days)
//   DIR/pki/<name>.crt, <name>.key        client certificates (ensureClientCertificate)
//   DIR/pki/nodes/<node>.crt, <node>.key  kubelets' client certificates, CN=system:node:<node>,
//                                         O=system:nodes (ensureNodeCertificate)
//   DIR/pki/tokens.csv                    `token,user,uid,"group1,group2"`
//   DIR/pki/kubelet-client.crt, .key      the apiserver's client certificate at kubelets' APIs
//                                         (logs, exec; kube-apiserver's
//                                         --kubelet-client-certificate): CN
//                                         kube-apiserver-kubelet-client, no groups, bound to the
//                                         ClusterRole system:kubelet-api-admin
//
// Key files and tokens.csv are written with mode 0600, certificates 0644, every file atomically
// (a temporary file renamed into place).

namespace skiff::apiserver {

// A PKI file that cannot be read, parsed or written; the message names the file.
class PkiError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr std::chrono::hours kCaValidity{24 * 3650};
inline constexpr std::chrono::hours kServingValidity{24 * 365};
inline constexpr std::chrono::hours kClientValidity{24 * 365};
// Certificates that expire sooner than this are reissued by ensurePki/ensureClientCertificate.
inline constexpr std::chrono::hours kRenewBefore{24 * 30};
// The user of DIR/pki/kubelet-client.crt (kubeadm's name for the apiserver's kubelet client).
inline constexpr std::string_view kKubeletClientUser = "kube-apiserver-kubelet-client";

// A certificate and its private key, both PEM (the key in PKCS#8).
struct CertKeyPem {
  std::string cert_pem;
  std::string key_pem;
};

// Subject alternative names. IP addresses are in canonical text form ("::1", "10.96.0.1").
struct SubjectAltNames {
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
};

// What a certificate says.
struct CertificateInfo {
  std::string common_name;
  std::vector<std::string> organizations;  // O: the groups of a client certificate
  SubjectAltNames sans;
  bool is_ca = false;          // basicConstraints CA:TRUE
  bool key_cert_sign = false;  // keyUsage keyCertSign
  bool server_auth = false;    // extendedKeyUsage serverAuth
  bool client_auth = false;    // extendedKeyUsage clientAuth
  std::chrono::system_clock::time_point not_before;
  std::chrono::system_clock::time_point not_after;
  std::string sha256_fingerprint;  // lower-case hex of the SHA-256 of the DER encoding
};

enum class CertPurpose { kServer, kClient };

// Self-signed CA certificate (CA:TRUE, keyCertSign, cRLSign) with a new key.
CertKeyPem generateCa(std::string_view common_name, std::chrono::seconds validity = kCaValidity);

// A serving certificate (serverAuth) for `sans`, with a new key, signed by `ca`.
CertKeyPem issueServingCertificate(const CertKeyPem& ca, std::string_view common_name,
                                   const SubjectAltNames& sans,
                                   std::chrono::seconds validity = kServingValidity);

// A client certificate (clientAuth) with CN=user and one O per group, signed by `ca`.
CertKeyPem issueClientCertificate(const CertKeyPem& ca, std::string_view common_name,
                                  const std::vector<std::string>& groups,
                                  std::chrono::seconds validity = kClientValidity);

// Parses the first certificate of a PEM text; `source` names it in errors.
CertificateInfo inspectCertificate(std::string_view cert_pem,
                                   std::string_view source = "certificate");

// Checks that `cert_pem` chains to `ca_pem` and may be used for `purpose` (signature, validity
// period, extended key usage). Returns an empty string when it does, otherwise why not.
std::string verifyCertificate(std::string_view ca_pem, std::string_view cert_pem,
                              CertPurpose purpose);

// The first address of each comma-separated CIDR: "10.96.0.0/12,fd00::/108" gives
// {"10.96.0.1", "fd00::1"}, the ClusterIP of the `kubernetes` Service. Throws PkiError.
std::vector<std::string> firstServiceIps(std::string_view service_cidrs);

// ---------------------------------------------------------------------------------------- tokens

struct TokenEntry {
  std::string token;
  std::string user;
  std::string uid;
  std::vector<std::string> groups;
};

// A new bearer token: 32 bytes from the CSPRNG as 64 lower-case hex characters.
std::string generateToken();

// kube-apiserver's static token file (--token-auth-file): CSV records `token,user,uid[,groups]`,
// groups a comma-separated list inside one quoted field.
class TokenFile {
 public:
  // Parses CSV text; errors name `source` and the line. Records with an empty token are skipped
  // (as kube-apiserver does), fewer than 3 fields or a duplicate token are errors.
  static TokenFile parse(std::string_view text, std::string_view source = "tokens.csv");
  // Reads a file; a missing file gives an empty TokenFile.
  static TokenFile load(const std::string& path);

  std::string serialize() const;
  void save(const std::string& path) const;  // mode 0600, atomic

  // The entry for a presented bearer token, or nullptr. Compares SHA-256 digests of the tokens
  // with CRYPTO_memcmp against every entry, so the time taken does not depend on where (or
  // whether) the token matches.
  const TokenEntry* authenticate(std::string_view token) const;
  // The first entry of a user, or nullptr.
  const TokenEntry* findUser(std::string_view user) const;
  // Appends an entry; throws PkiError when the token is empty or already present.
  void add(TokenEntry entry);
  const std::vector<TokenEntry>& entries() const { return entries_; }

 private:
  std::vector<TokenEntry> entries_;
  std::vector<std::array<unsigned char, 32>> digests_;  // SHA-256 of each entry's token
};

// ----------------------------------------------------------------------------------- bootstrap

struct PkiPaths {
  std::string dir;  // DIR/pki
  std::string ca_cert;
  std::string ca_key;
  std::string serving_cert;
  std::string serving_key;
  std::string tokens;
  // The apiserver's client certificate at kubelets, ensured by every ensurePki (a data dir from
  // before it gets it on upgrade).
  std::string kubelet_client_cert;
  std::string kubelet_client_key;
  std::string nodes_dir;  // DIR/pki/nodes
};
PkiPaths pkiPaths(std::string_view data_dir);

struct PkiOptions {
  std::string data_dir;
  // The serving certificate always covers localhost, kubernetes, kubernetes.default,
  // kubernetes.default.svc, kubernetes.default.svc.cluster.local, 127.0.0.1, ::1, the host name and
  // the first IP of each service CIDR; `extra_sans` adds IPs or DNS names (told apart by form).
  std::string hostname;  // empty: gethostname()
  std::string service_cidr = "10.96.0.0/12";
  std::string cluster_domain = "cluster.local";
  std::vector<std::string> extra_sans;
  std::chrono::seconds serving_validity = kServingValidity;
  std::chrono::seconds renew_before = kRenewBefore;
  // A token for this user is added to tokens.csv when the user has none (empty: no token).
  std::string admin_user = "admin";
  std::vector<std::string> admin_groups = {"system:masters"};
};

struct PkiState {
  PkiPaths paths;
  std::string ca_cert_pem;
  std::string ca_fingerprint;   // SHA-256, hex
  bool ca_created = false;      // this call made the CA
  bool serving_issued = false;  // this call (re)issued the serving certificate
  std::string serving_reason;   // why: "missing", "does not cover IP 10.0.0.5", "expires ..."
  std::string admin_token;      // the admin user's token (empty without admin_user)
};

// The names the serving certificate must cover for `options` (sorted, without duplicates).
SubjectAltNames requiredServingSans(const PkiOptions& options);

// Makes what is missing and reuses what is there: creates DIR/pki and the CA on first start,
// ensures the kubelet client certificate, and (re)issues the serving certificate when it is
// missing, does not chain to the CA, lacks a required SAN, or expires within `renew_before`. A file
// that exists but cannot be read or parsed, a CA key that does not match its certificate, or half a
// CA is a PkiError naming the file: the CA key is never overwritten.
PkiState ensurePki(const PkiOptions& options);

// DIR/pki/<name>.crt and <name>.key: a client certificate for CN=user, O=groups, issued by the CA
// of ensurePki (which must have run) when missing, for another subject, not chaining to the CA,
// or expiring within kRenewBefore. Returns the PEMs.
CertKeyPem ensureClientCertificate(std::string_view data_dir, std::string_view name,
                                   std::string_view user, const std::vector<std::string>& groups);

// ----------------------------------------------------------------------------------- nodes

// A kubelet's identity for the Node authorizer and NodeRestriction.
inline constexpr std::string_view kNodeUserPrefix = "system:node:";
inline constexpr std::string_view kNodesGroup = "system:nodes";

// Whether `name` may name a Node: a DNS-1123 subdomain (lower-case alphanumerics, '-' and '.',
// starting and ending alphanumeric, at most 253 characters).
bool validNodeName(std::string_view name);

struct NodeCertificate {
  std::string cert_file;  // DIR/pki/nodes/<node>.crt
  std::string key_file;   // DIR/pki/nodes/<node>.key
  CertKeyPem pem;
  std::string ca_cert_pem;  // the cluster CA that signed it (and the apiserver's serving cert)
};

// DIR/pki/nodes/<node>.crt and <node>.key: the kubelet client certificate of `node` (CN
// system:node:<node>, O system:nodes), issued by the CA of ensurePki (which must have run) under
// the same rules as ensureClientCertificate. Throws PkiError for a name that is not a Node name.
NodeCertificate ensureNodeCertificate(std::string_view data_dir, std::string_view node);

// DIR/pki/nodes/<node>-kubelet.crt and .key: the serving certificate of the node's kubelet API
// (serverAuth; DNS <node> and localhost, IPs `ips` and 127.0.0.1), which the apiserver verifies
// against the cluster CA when it proxies logs and exec. Issued afresh on every call.
NodeCertificate issueKubeletServingCertificate(std::string_view data_dir, std::string_view node,
                                               const std::vector<std::string>& ips);

}  // namespace skiff::apiserver
