#include "control/apiserver/kubernetes_service.h"

#include <algorithm>
#include <iostream>

#include "control/api/codec.h"
#include "control/apiserver/errors.h"

namespace skiff::apiserver {
namespace {

namespace core = api::core::v1;
namespace discovery = api::discovery::v1;

constexpr std::string_view kServicePath = "/api/v1/namespaces/default/services/kubernetes";
constexpr std::string_view kServicesPath = "/api/v1/namespaces/default/services";
constexpr std::string_view kSlicePath =
    "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes";
constexpr std::string_view kSlicesPath =
    "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";
constexpr std::string_view kServiceNameLabel = "kubernetes.io/service-name";

std::string jsonOf(const google::protobuf::Message& m) {
  return api::encodeJson(m);
}

template <class T>
T decode(const std::string& body) {
  T out;
  api::decodeJson(body, out, {.unknown_fields = api::UnknownFields::kIgnore});
  return out;
}

}  // namespace

core::Service desiredKubernetesService(const KubernetesServiceOptions& options) {
  core::Service s;
  auto* meta = s.mutable_metadata();
  meta->set_name(std::string(kKubernetesServiceName));
  meta->set_namespace_("default");
  (*meta->mutable_labels())["component"] = "apiserver";
  (*meta->mutable_labels())["provider"] = "kubernetes";
  auto* spec = s.mutable_spec();
  spec->set_type("ClusterIP");
  spec->set_cluster_ip(options.cluster_ip);
  spec->add_cluster_ips(options.cluster_ip);
  spec->set_session_affinity("None");
  auto* port = spec->add_ports();
  port->set_name("https");
  port->set_protocol("TCP");
  port->set_port(options.service_port);
  port->mutable_target_port()->set_type(api::runtime::IntOrString::INT);
  port->mutable_target_port()->set_int_val(options.secure_port);
  return s;
}

discovery::EndpointSlice desiredKubernetesEndpointSlice(std::vector<std::string> addresses,
                                                        int32_t secure_port) {
  std::sort(addresses.begin(), addresses.end());
  addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
  discovery::EndpointSlice slice;
  auto* meta = slice.mutable_metadata();
  meta->set_name(std::string(kKubernetesServiceName));
  meta->set_namespace_("default");
  (*meta->mutable_labels())[std::string(kServiceNameLabel)] = std::string(kKubernetesServiceName);
  slice.set_address_type("IPv4");
  for (const auto& a : addresses) {
    auto* e = slice.add_endpoints();
    e->add_addresses(a);
    e->mutable_conditions()->set_ready(true);
  }
  auto* port = slice.add_ports();
  port->set_name("https");
  port->set_protocol("TCP");
  port->set_port(secure_port);
  return slice;
}

bool repairKubernetesService(core::Service& existing, const core::Service& desired) {
  bool changed = false;
  auto* spec = existing.mutable_spec();
  if (spec->type() != desired.spec().type()) {
    spec->set_type(desired.spec().type());
    changed = true;
  }
  core::ServiceSpec want_ports, have_ports;
  *want_ports.mutable_ports() = desired.spec().ports();
  *have_ports.mutable_ports() = spec->ports();
  if (jsonOf(want_ports) != jsonOf(have_ports)) {
    *spec->mutable_ports() = desired.spec().ports();
    changed = true;
  }
  if (!spec->selector().empty()) {
    // A selector would hand the Service to the EndpointSlice controller.
    spec->clear_selector();
    changed = true;
  }
  auto* labels = existing.mutable_metadata()->mutable_labels();
  for (const auto& [k, v] : desired.metadata().labels()) {
    auto it = labels->find(k);
    if (it == labels->end() || it->second != v) {
      (*labels)[k] = v;
      changed = true;
    }
  }
  return changed;
}

KubernetesServiceController::KubernetesServiceController(ApiHandler& handler, store::Store& store,
                                                         KubernetesServiceOptions options)
    : handler_(handler), store_(store), options_(std::move(options)) {}

KubernetesServiceController::~KubernetesServiceController() {
  stop();
}

HttpResponse KubernetesServiceController::call(const std::string& method, const std::string& path,
                                               const std::string& body) {
  HttpRequest request;
  request.method = method;
  request.target = path;
  request.path = path;
  request.body = body;
  request.remote_address = "127.0.0.1";
  if (!body.empty()) request.headers.emplace_back("content-type", "application/json");
  HttpResponse response;
  handler_.handle(request, response, [](const HttpResponse&) -> ResponseStream& {
    throw internalError("the kubernetes service controller does not stream");
  });
  if (response.status >= 400) {
    throw ApiError(response.status, "", method + " " + path + ": " + response.body);
  }
  return response;
}

void KubernetesServiceController::reconcileService(int32_t target_port) {
  KubernetesServiceOptions o = options_;
  o.secure_port = target_port;
  const core::Service desired = desiredKubernetesService(o);
  core::Service existing;
  try {
    existing = decode<core::Service>(call("GET", std::string(kServicePath)).body);
  } catch (const ApiError& e) {
    if (e.code() != 404) throw;
    try {
      call("POST", std::string(kServicesPath), jsonOf(desired));
      std::cerr << "skiff apiserver: created Service default/kubernetes (" << options_.cluster_ip
                << ":" << options_.service_port << ")" << std::endl;
    } catch (const ApiError& c) {
      if (c.code() != 409) throw;  // another apiserver made it first
    }
    return;
  }
  if (existing.spec().cluster_ip() != options_.cluster_ip && !reported_ip_) {
    reported_ip_ = true;
    std::cerr << "skiff apiserver: warning: Service default/kubernetes has ClusterIP "
              << existing.spec().cluster_ip() << ", not " << options_.cluster_ip
              << " (the first address of the service CIDR); delete it to have it recreated"
              << std::endl;
  }
  if (repairKubernetesService(existing, desired)) {
    call("PUT", std::string(kServicePath), jsonOf(existing));
    std::cerr << "skiff apiserver: repaired Service default/kubernetes" << std::endl;
  }
}

std::string KubernetesServiceController::ownLeaseKey() const {
  return std::string(kMasterLeasePrefix) + options_.advertise_address + ":" +
         std::to_string(options_.secure_port);
}

KubernetesServiceController::Live KubernetesServiceController::liveApiservers() {
  Live live{.port = options_.secure_port};
  bool first = true;
  for (const auto& kv : store_.list(kMasterLeasePrefix).kvs) {  // in key order
    std::string endpoint = kv.key.substr(kMasterLeasePrefix.size());
    size_t colon = endpoint.rfind(':');
    if (colon == std::string::npos) continue;
    int port = 0;
    try {
      port = std::stoi(endpoint.substr(colon + 1));
    } catch (const std::exception&) {
      continue;
    }
    // One port for all (a slice's ports apply to every endpoint): the first key's, the same
    // choice in every apiserver, so apiservers on different ports never take turns.
    if (first) live.port = port;
    first = false;
    live.addresses.push_back(endpoint.substr(0, colon));
  }
  return live;
}

KubernetesServiceController::Live KubernetesServiceController::renewOwnLease() {
  const std::string own = ownLeaseKey();
  const std::string value = std::to_string(options_.secure_port);
  bool renewed = false;
  if (lease_ != 0) {
    try {
      store_.keepAliveLease(lease_);
      renewed = store_.get(own).has_value();
    } catch (const store::StoreError&) {
      renewed = false;  // expired (this apiserver was away longer than the TTL): a new one
    }
  }
  if (!renewed) {
    lease_ = store_.grantLease(options_.lease_ttl_seconds);
    if (auto kv = store_.get(own)) {
      store_.updateWithLease(own, value, kv->mod_revision, lease_);
    } else {
      store_.createWithLease(own, value, lease_);
    }
  }
  return liveApiservers();
}

namespace {

// The slice's addressType, endpoints and ports (what the proxiers read).
std::string sliceContent(discovery::EndpointSlice slice) {
  slice.clear_metadata();
  return api::encodeJson(slice);
}

}  // namespace

void KubernetesServiceController::writeEndpointSlice(const Live& live) {
  discovery::EndpointSlice desired = desiredKubernetesEndpointSlice(live.addresses, live.port);
  discovery::EndpointSlice existing;
  try {
    existing = decode<discovery::EndpointSlice>(call("GET", std::string(kSlicePath)).body);
  } catch (const ApiError& e) {
    if (e.code() != 404) throw;
    try {
      call("POST", std::string(kSlicesPath), jsonOf(desired));
    } catch (const ApiError& c) {
      if (c.code() != 409) throw;  // another apiserver made it first: the next pass repairs it
    }
    return;
  }
  const auto& labels = existing.metadata().labels();
  auto it = labels.find(std::string(kServiceNameLabel));
  if (it != labels.end() && it->second == kKubernetesServiceName &&
      sliceContent(existing) == sliceContent(desired)) {
    return;
  }
  discovery::EndpointSlice next = desired;
  *next.mutable_metadata() = existing.metadata();
  (*next.mutable_metadata()->mutable_labels())[std::string(kServiceNameLabel)] =
      std::string(kKubernetesServiceName);
  call("PUT", std::string(kSlicePath), jsonOf(next));
}

void KubernetesServiceController::reconcileOnce() {
  std::lock_guard lock(reconcile_mu_);
  const Live live = renewOwnLease();
  reconcileService(live.port);
  writeEndpointSlice(live);
}

void KubernetesServiceController::removeOwnAddress() {
  std::lock_guard lock(reconcile_mu_);
  const std::string own = ownLeaseKey();
  if (lease_ != 0) {
    try {
      store_.revokeLease(lease_);  // deletes the key attached to it
    } catch (const store::StoreError&) {
      // already expired
    }
    lease_ = 0;
  }
  if (auto kv = store_.get(own)) {
    try {
      store_.remove(own, kv->mod_revision);
    } catch (const store::StoreError&) {
      // gone meanwhile, or renewed by a new apiserver on the same address
    }
  }
  writeEndpointSlice(liveApiservers());
}

void KubernetesServiceController::pass() {
  try {
    reconcileOnce();
  } catch (const std::exception& e) {
    std::cerr << "skiff apiserver: the kubernetes Service: " << e.what() << std::endl;
  }
}

void KubernetesServiceController::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  pass();  // the Service is there when the apiserver's start() returns
  thread_ = std::thread([this] {
    std::unique_lock wait_lock(mu_);
    while (!cv_.wait_for(wait_lock, options_.interval, [this] { return stopping_; })) {
      wait_lock.unlock();
      pass();
      wait_lock.lock();
    }
  });
}

void KubernetesServiceController::stop() {
  {
    std::lock_guard lock(mu_);
    if (!thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  try {
    removeOwnAddress();
  } catch (const std::exception& e) {
    std::cerr << "skiff apiserver: removing this apiserver from the kubernetes EndpointSlice: "
              << e.what() << std::endl;
  }
}

}  // namespace skiff::apiserver
