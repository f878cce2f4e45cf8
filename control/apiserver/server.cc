#include "control/apiserver/server.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "control/apiserver/encryption/encrypting_store.h"
#include "control/apiserver/request_info.h"
#include "control/client/kubeconfig.h"
#include "control/store/etcd_store.h"
#include "control/store/sqlite_store.h"
#include "control/store/ttl_store.h"

namespace skiff::apiserver {
namespace {

bool unspecified(const std::string& address) {
  return address.empty() || address == "0.0.0.0" || address == "::";
}

// The serving certificate must cover the addresses clients are told to use.
std::vector<std::string> withAddresses(std::vector<std::string> sans, const std::string& bind,
                                       const std::string& advertise,
                                       const std::vector<std::string>& extra_binds) {
  if (!unspecified(bind)) sans.push_back(bind);
  sans.push_back(advertise);
  for (const auto& a : extra_binds)
    sans.push_back(a);
  return sans;
}

// kube-apiserver's default --advertise-address: the bind address, or with 0.0.0.0 the IPv4
// address of the interface of the default route (else any non-loopback one, else loopback).
std::string defaultAdvertiseAddress(const std::string& bind) {
  if (!unspecified(bind)) return bind;
  std::string route_interface;
  std::ifstream routes("/proc/net/route");
  std::string line;
  std::getline(routes, line);  // the header
  while (std::getline(routes, line)) {
    std::istringstream fields(line);
    std::string name, destination;
    fields >> name >> destination;
    if (destination == "00000000") {
      route_interface = name;
      break;
    }
  }
  std::string chosen;
  std::string fallback;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) == 0) {
    for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
      if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET ||
          (a->ifa_flags & IFF_LOOPBACK) != 0 || (a->ifa_flags & IFF_UP) == 0) {
        continue;
      }
      char text[INET_ADDRSTRLEN] = {};
      ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr, text,
                  sizeof(text));
      if (fallback.empty()) fallback = text;
      if (chosen.empty() && route_interface == a->ifa_name) chosen = text;
    }
    ::freeifaddrs(list);
  }
  if (!chosen.empty()) return chosen;
  return fallback.empty() ? "127.0.0.1" : fallback;
}

}  // namespace

ApiServer::ApiServer(ApiServerOptions options) : options_(std::move(options)) {}

ApiServer::~ApiServer() {
  stop();
}

void ApiServer::start() {
  // A bad encryption configuration stops the start before anything is made or opened.
  std::optional<encryption::EncryptionConfig> encryption_config;
  std::string encryption_text;  // what the reloader compares the file with
  if (!options_.encryption_provider_config.empty()) {
    const std::string& path = options_.encryption_provider_config;
    std::ifstream in(path, std::ios::binary);
    if (!in)
      throw encryption::ConfigError(path + ": cannot read the encryption provider configuration");
    encryption_text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    encryption_config = encryption::parseEncryptionConfig(encryption_text, path);
  }
  std::error_code ec;
  std::filesystem::create_directories(options_.data_dir, ec);
  if (ec) {
    throw std::runtime_error("cannot create data directory " + options_.data_dir + ": " +
                             ec.message());
  }
  std::string cert_file = options_.cert_file;
  std::string key_file = options_.key_file;
  advertise_address_ = options_.advertise_address.empty()
                           ? defaultAdvertiseAddress(options_.bind_address)
                           : options_.advertise_address;
  if (in_addr a{}; ::inet_pton(AF_INET, advertise_address_.c_str(), &a) != 1) {
    throw std::invalid_argument("advertise address \"" + advertise_address_ +
                                "\": want an IPv4 address");
  }
  PkiState pki;
  if (!options_.plain_http) {
    // Certificates and tokens are made on first start and reused afterwards (kubeadm's way).
    pki =
        ensurePki({.data_dir = options_.data_dir,
                   .service_cidr = options_.service_cidr,
                   .extra_sans = withAddresses(options_.extra_sans, options_.bind_address,
                                               advertise_address_, options_.extra_bind_addresses)});
    if (cert_file.empty()) {
      cert_file = pki.paths.serving_cert;
      key_file = pki.paths.serving_key;
    }
  }
  if (!options_.etcd_endpoints.empty()) {
    store_ = store::EtcdStore::open({.endpoints = options_.etcd_endpoints,
                                     .ca_file = options_.etcd_ca_file,
                                     .cert_file = options_.etcd_cert_file,
                                     .key_file = options_.etcd_key_file});
  } else {
    store_ = store::SqliteStore::open(
        {.path = (std::filesystem::path(options_.data_dir) / "state.db").string(),
         .fsync = options_.fsync});
  }
  if (encryption_config) {
    // Right over the backend: it holds ciphertext, everything above reads plaintext.
    raw_store_ = std::move(store_);
    auto encrypting =
        std::make_unique<encryption::EncryptingStore>(*raw_store_, std::move(*encryption_config));
    if (options_.encryption_provider_config_automatic_reload) {
      encryption_reloader_ = std::make_unique<encryption::ConfigReloader>(
          options_.encryption_provider_config, std::move(encryption_text), *encrypting,
          options_.encryption_config_reload_interval);
      encryption_reloader_->start();
    }
    store_ = std::move(encrypting);
  }
  std::string sa_key = options_.service_account_key_file;
  if (sa_key.empty())
    sa_key = (std::filesystem::path(options_.data_dir) / "pki" / "sa.key").string();
  auth_ = std::make_unique<auth::ApiAuth>(
      *store_, auth::ApiAuthOptions{.enabled = !options_.plain_http,
                                    .token_file = options_.plain_http ? "" : pki.paths.tokens,
                                    .client_ca_pem = pki.ca_cert_pem,
                                    .service_account_key_file = sa_key,
                                    .issuer = options_.service_account_issuer});
  http_ = std::make_unique<HttpServer>(
      HttpServerOptions{.bind_address = options_.bind_address,
                        .port = options_.port,
                        .cert_file = cert_file,
                        .key_file = key_file,
                        // Client certificates signed by the cluster CA authenticate (optional).
                        .client_ca_file = options_.plain_http ? "" : pki.paths.ca_cert},
      [this](const HttpRequest& request, HttpResponse& response, const auto& start_stream) {
        serve(request, response, start_stream);
      });
  store::Store* api_store = store_.get();
  if (options_.event_ttl.count() > 0) {
    event_ttl_store_ = std::make_unique<store::TtlStore>(*store_, store::resourcePrefix("events"),
                                                         options_.event_ttl);
    api_store = event_ttl_store_.get();
  }
  timed_store_ = std::make_unique<InstrumentedStore>(*api_store, metrics_);
  ApiHandlerOptions handler_options{.services = {.service_cidr = options_.service_cidr},
                                    .metrics = &metrics_};
  handler_options.token_subresource = true;
  handler_options.service_account_admission = options_.service_account_admission;
  // pods/log and exec go to the node's kubelet over HTTPS verified against the cluster CA, which
  // signs kubelets' serving certificates; the apiserver presents DIR/pki/kubelet-client.crt
  // (kube-apiserver-kubelet-client), which kubelets verify against their client CA and authorize
  // with a SubjectAccessReview (RBAC: system:kubelet-api-admin).
  if (!options_.plain_http) {
    handler_options.node_proxy.kubelet_client_cert_file = pki.paths.kubelet_client_cert;
    handler_options.node_proxy.kubelet_client_key_file = pki.paths.kubelet_client_key;
    handler_options.node_proxy.kubelet_ca_file = pki.paths.ca_cert;
  } else {
    handler_options.node_proxy.kubelet_tls = false;
  }
  // RBAC's escalation check on writes of the four RBAC kinds.
  handler_options.admit_write = [this](const HttpRequest& request, const std::string& ns,
                                       const google::protobuf::Message& object,
                                       const std::function<MessagePtr()>& current) {
    auth_->admitWrite(request, ns, object, current);
  };
  // CertificateSigningRequests record who asked (spec.username, uid, groups).
  handler_options.requester = [this](const HttpRequest& request) {
    auth::UserInfo user = auth_->authenticate(request);
    return Requester{user.name, user.uid, user.groups};
  };
  // CertificateApproval and CertificateSigning admission: approve or sign on the CSR's signer.
  handler_options.signer_permission = [this](const HttpRequest& request, const std::string& verb,
                                             const std::string& signer) {
    auth::Attributes attributes;
    attributes.user = auth_->authenticate(request);
    attributes.verb = verb;
    attributes.resource_request = true;
    attributes.api_group = "certificates.k8s.io";
    attributes.api_version = "*";
    attributes.resource = "signers";
    for (const auto& name : signerPermissionNames(signer)) {
      attributes.name = name;
      if (auth_->decide(attributes).allowed) return true;
    }
    return false;
  };
  handler_ = std::make_unique<ApiHandler>(*timed_store_, handler_options);
  handler_->ensureSystemNamespaces();
  // The auth indexes read the handler's watch caches: one store watch per resource.
  auth_->useWatchCaches(
      [this](const api::ResourceType& type) { return handler_->watchCache(type); });
  auth_->start();  // the bootstrap RBAC policy, and the indexes loaded before the first request
  http_->start();
  for (const auto& address : options_.extra_bind_addresses) {
    extra_http_.push_back(std::make_unique<HttpServer>(
        HttpServerOptions{.bind_address = address,
                          .port = http_->port(),
                          .cert_file = cert_file,
                          .key_file = key_file,
                          .client_ca_file = options_.plain_http ? "" : pki.paths.ca_cert,
                          .free_bind = true},
        [this](const HttpRequest& request, HttpResponse& response, const auto& start_stream) {
          serve(request, response, start_stream);
        }));
    extra_http_.back()->start();
  }
  if (options_.kubernetes_service && !options_.plain_http) {
    std::vector<std::string> first = firstServiceIps(options_.service_cidr);
    if (first.empty()) throw std::invalid_argument("no service CIDR for the kubernetes Service");
    kubernetes_service_ = std::make_unique<KubernetesServiceController>(
        *handler_, *timed_store_,
        KubernetesServiceOptions{.cluster_ip = first.front(),
                                 .advertise_address = advertise_address_,
                                 .secure_port = static_cast<int32_t>(http_->port())});
    kubernetes_service_->start();
  }
  if (!options_.plain_http) {
    admin_kubeconfig_ = (std::filesystem::path(options_.data_dir) / "admin.kubeconfig").string();
    client::writeKubeconfig(admin_kubeconfig_,
                            {.server = url(), .ca_pem = pki.ca_cert_pem, .token = pki.admin_token});
  }
}

void ApiServer::serve(const HttpRequest& request, HttpResponse& response,
                      const std::function<ResponseStream&(const HttpResponse&)>& start_stream) {
  auto start = std::chrono::steady_clock::now();
  std::string verb = request.method;
  std::string resource;
  int code = 200;
  bool streamed = false;
  auto record = [&] {
    metrics_.observeRequest(
        verb, resource, code,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  };
  try {
    RequestInfo info = parseRequestInfo(request.method, request.path, request.query);
    if (info.is_resource_request) {
      verb = info.verb;
      resource = info.resource;
    }
    // kube-apiserver's verbs are upper case.
    for (char& c : verb)
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    // Health and version stay open, as kube-apiserver's defaults allow them to anyone.
    const std::string& path = request.path;
    bool open = path == "/healthz" || path == "/livez" || path == "/readyz" || path == "/version";
    auth::UserInfo user;
    if (!open) {
      user = auth_->authenticate(request);    // 401
      auth_->authorize(user, info, request);  // 403
    }
    if (!open && auth_->serve(request, info, user, response)) {
      // a review or a TokenRequest, answered without the store
    } else if (request.path == "/metrics") {
      response.status = 200;
      response.content_type = "text/plain; version=0.0.4; charset=utf-8";
      response.body = metrics_.render();
    } else {
      handler_->handle(request, response, [&](const HttpResponse& head) -> ResponseStream& {
        streamed = true;
        code = head.status;
        return start_stream(head);
      });
    }
  } catch (const ApiError& e) {
    code = e.code();
    record();
    throw;
  } catch (...) {
    code = 500;
    record();
    throw;
  }
  if (!streamed) code = response.status;
  record();
}

void ApiServer::stop() {
  if (kubernetes_service_) kubernetes_service_->stop();  // takes this apiserver out of the slice
  kubernetes_service_.reset();
  for (auto& extra : extra_http_)
    extra->stop();
  extra_http_.clear();
  if (http_) http_->stop();
  http_.reset();
  if (auth_) auth_->stop();  // before the handler: its indexes listen to the handler's caches
  auth_.reset();
  handler_.reset();
  timed_store_.reset();
  encryption_reloader_.reset();  // before the store it reconfigures
  store_.reset();
  raw_store_.reset();
}

uint16_t ApiServer::port() const {
  return http_ ? http_->port() : 0;
}

std::string ApiServer::url() const {
  std::string host = options_.bind_address == "0.0.0.0" ? "127.0.0.1" : options_.bind_address;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return std::string(http_ && http_->tls() ? "https://" : "http://") + host + ":" +
         std::to_string(port());
}

}  // namespace skiff::apiserver
