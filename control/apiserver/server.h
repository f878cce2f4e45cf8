#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "control/apiserver/api_handler.h"
#include "control/apiserver/auth/api_auth.h"
#include "control/apiserver/encryption/config_reloader.h"
#include "control/apiserver/http_server.h"
#include "control/apiserver/kubernetes_service.h"
#include "control/apiserver/metrics.h"
#include "control/apiserver/pki.h"
#include "control/store/store.h"

namespace skiff::apiserver {

struct ApiServerOptions {
  std::string data_dir;  // the store, pki/ and admin.kubeconfig live here
  std::string bind_address = "127.0.0.1";
  uint16_t port = 6443;
  // PEM files for HTTPS; when empty, a CA and serving certificate are made in DIR/pki on first
  // start and reused afterwards.
  std::string cert_file;
  std::string key_file;
  // Plain HTTP without authentication, for tests and local experiments: loopback only.
  bool plain_http = false;
  std::string service_cidr = "10.96.0.0/16";
  std::vector<std::string> extra_sans;  // more names and IPs for the serving certificate
  // Where pods reach this apiserver: the address of the default/kubernetes Service's
  // EndpointSlice (kube-apiserver's --advertise-address), also a SAN of the serving certificate.
  // Empty: bind_address, or with 0.0.0.0 the address of the default route's interface. IPv4.
  std::string advertise_address;
  // More addresses served at the same port as bind_address, bound even before an interface has
  // them (IP_FREEBIND): skiff up adds the pod bridge's gateway, which its agent makes later.
  std::vector<std::string> extra_bind_addresses;
  // Keeps the default/kubernetes Service and its EndpointSlice (kubernetes_service.h); never
  // with plain_http, which serves loopback only, out of pods' reach.
  bool kubernetes_service = true;
  bool fsync = true;  // off only for tests
  // The etcd cluster's client URLs ("http://10.0.0.1:2379"): the store is etcd instead of the
  // embedded SQLite in data_dir. Several apiservers can share one cluster.
  std::vector<std::string> etcd_endpoints;
  // TLS to https:// etcd members (kube-apiserver's --etcd-cafile, --etcd-certfile,
  // --etcd-keyfile).
  std::string etcd_ca_file;
  std::string etcd_cert_file;
  std::string etcd_key_file;
  // Events are deleted this long after their last write (kube-apiserver's --event-ttl), through
  // store leases shared by the Events of a time window. 0 = kept until deleted.
  std::chrono::seconds event_ttl = std::chrono::hours(1);
  // The ServiceAccount token signing key (EC P-256 PEM); empty: DIR/pki/sa.key, made on first
  // start. Apiservers that share a store must share this key.
  std::string service_account_key_file;
  std::string service_account_issuer = std::string(auth::kDefaultIssuer);
  // The ServiceAccount admission of pods (ApiHandlerOptions::service_account_admission).
  bool service_account_admission = false;
  // kube-apiserver's --encryption-provider-config: an EncryptionConfiguration file; the resources
  // it names are stored encrypted (control/apiserver/encryption). Empty: stored as they are.
  std::string encryption_provider_config;
  // --encryption-provider-config-automatic-reload: the file is read again every
  // encryption_config_reload_interval and a changed, valid configuration is taken without a
  // restart (encryption/config_reloader.h).
  bool encryption_provider_config_automatic_reload = false;
  std::chrono::milliseconds encryption_config_reload_interval{60000};
};

// The apiserver as a process runs it: the store (embedded in data_dir, or etcd), the REST handler,
// and the HTTP(S) server in front of them.
class ApiServer {
 public:
  explicit ApiServer(ApiServerOptions options);
  ~ApiServer();

  // Opens the store, makes the system namespaces and starts serving. Throws with a clear message
  // (a busy port, an unreadable data directory, a corrupt database).
  void start();
  void stop();
  uint16_t port() const;
  std::string url() const;
  // The address in the kubernetes Service's EndpointSlice (known once started).
  const std::string& advertiseAddress() const { return advertise_address_; }
  // DIR/admin.kubeconfig (server URL, CA and the admin token), written on start; empty with
  // plain_http.
  std::string adminKubeconfig() const { return admin_kubeconfig_; }

 private:
  void serve(const HttpRequest& request, HttpResponse& response,
             const std::function<ResponseStream&(const HttpResponse&)>& start_stream);

  ApiServerOptions options_;
  std::unique_ptr<store::Store> raw_store_;  // the backend, under store_ when encryption is on
  std::unique_ptr<encryption::ConfigReloader> encryption_reloader_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<store::Store> event_ttl_store_;  // store_ with Events on leases (event_ttl)
  Metrics metrics_;
  std::unique_ptr<InstrumentedStore> timed_store_;  // store_ timed into metrics_
  std::unique_ptr<ApiHandler> handler_;
  std::unique_ptr<HttpServer> http_;
  std::vector<std::unique_ptr<HttpServer>> extra_http_;  // extra_bind_addresses
  std::unique_ptr<KubernetesServiceController> kubernetes_service_;
  std::string advertise_address_;
  std::unique_ptr<auth::ApiAuth> auth_;  // authentication, RBAC, reviews, TokenRequest
  std::string admin_kubeconfig_;
};

}  // namespace skiff::apiserver
