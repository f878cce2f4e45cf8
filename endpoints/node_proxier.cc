#include "endpoints/node_proxier.h"

#include <iostream>
#include <stdexcept>

namespace skiff::endpoints {
namespace {

namespace core = api::core::v1;
namespace discovery = api::discovery::v1;

template <class T>
std::shared_ptr<const T> typed(const client::ObjectPtr& object) {
  return std::shared_ptr<const T>(object, &client::as<T>(object));
}

}  // namespace

NodeProxier::NodeProxier(client::SharedInformerFactory& informers, dataplane::Dataplane& dataplane,
                         NodeProxierOptions options)
    : options_(std::move(options)),
      services_(informers.informerFor<core::Service>()),
      slices_(informers.informerFor<discovery::EndpointSlice>()),
      nodes_(informers.informerFor<core::Node>()),
      proxier_(dataplane, options_.proxier),
      health_(options_.healthzTimeout, options_.proxier.now),
      serviceHealth_(
          listeners_, options_.healthCheckBindAddress,
          [this](const std::string& key) { return proxier_.localReadyEndpoints(key); },
          [this] { return health_.state().healthy; }),
      runner_([this] { syncOnce(); },
              SyncRunnerOptions{.minInterval = options_.minSyncInterval,
                                .maxInterval = options_.proxier.fullSyncPeriod,
                                .burst = options_.burst}) {
  services_.addEventHandler({
      .on_add =
          [this](const client::ObjectPtr& o) {
            proxier_.onServiceAdd(typed<core::Service>(o));
            queued();
          },
      .on_update =
          [this](const client::ObjectPtr& old, const client::ObjectPtr& now) {
            proxier_.onServiceUpdate(typed<core::Service>(old), typed<core::Service>(now));
            queued();
          },
      .on_delete =
          [this](const client::ObjectPtr& o) {
            proxier_.onServiceDelete(typed<core::Service>(o));
            queued();
          },
  });
  slices_.addEventHandler({
      .on_add =
          [this](const client::ObjectPtr& o) {
            proxier_.onSliceUpdate(typed<discovery::EndpointSlice>(o), false);
            queued();
          },
      .on_update =
          [this](const client::ObjectPtr&, const client::ObjectPtr& now) {
            proxier_.onSliceUpdate(typed<discovery::EndpointSlice>(now), false);
            queued();
          },
      .on_delete =
          [this](const client::ObjectPtr& o) {
            proxier_.onSliceUpdate(typed<discovery::EndpointSlice>(o), true);
            queued();
          },
  });
  const std::string nodeName = options_.proxier.nodeName;
  auto onNode = [this, nodeName](const client::ObjectPtr& o, bool deleted) {
    const auto& node = client::as<core::Node>(o);
    if (node.metadata().name() != nodeName) return;
    proxier_.onNodeUpdate(deleted ? nullptr : typed<core::Node>(o));
    health_.setNodeEligible(!deleted && nodeEligible(node));
    if (proxier_.hasPendingChanges()) queued();
  };
  nodes_.addEventHandler({
      .on_add = [onNode](const client::ObjectPtr& o) { onNode(o, false); },
      .on_update = [onNode](const client::ObjectPtr&,
                            const client::ObjectPtr& o) { onNode(o, false); },
      .on_delete = [onNode](const client::ObjectPtr& o) { onNode(o, true); },
  });
}

NodeProxier::~NodeProxier() {
  stop();
}

void NodeProxier::queued() {
  health_.queuedUpdate();
  runner_.run();
}

void NodeProxier::start() {
  auto serve = [this](const std::string& name, const std::string& where,
                      HttpRoute route) -> uint16_t {
    auto hostPort = parseHostPort(where);
    if (!hostPort.ok()) throw std::runtime_error("proxier " + name + ": " + hostPort.message());
    auto port = listeners_.listen(name, hostPort->first, hostPort->second, std::move(route));
    if (!port.ok()) {
      // As kube-proxy: a port someone else holds does not stop the proxier.
      std::cerr << "skiff proxier: " << name << " not served: " << port.message() << std::endl;
      return 0;
    }
    return *port;
  };
  if (!options_.metricsBindAddress.empty()) {
    metricsPort_ = serve("metrics", options_.metricsBindAddress,
                         [this](std::string_view, std::string_view path) {
                           HttpReply r;
                           if (path == "/metrics") {
                             r.contentType = "text/plain; version=0.0.4; charset=utf-8";
                             r.body = metricsText();
                           } else {
                             r.status = 404;
                             r.body = "/metrics only\n";
                           }
                           return r;
                         });
  }
  if (!options_.healthzBindAddress.empty()) {
    healthzPort_ = serve("healthz", options_.healthzBindAddress,
                         [this](std::string_view, std::string_view path) {
                           if (path == "/healthz") return health_.healthz();
                           if (path == "/livez") return health_.livez();
                           HttpReply r;
                           r.status = 404;
                           r.body = "/healthz or /livez\n";
                           return r;
                         });
  }
  // Changes queued before start (the informers may already be listing) wait from now.
  health_.queuedUpdate();
  runner_.start();
  runner_.run();
}

void NodeProxier::stop() {
  runner_.stop();
  serviceHealth_.stop();
  listeners_.stop();
}

std::string NodeProxier::metricsText() const {
  std::string out = proxier_.metricsText() + health_.metricsText();
  out += prometheusGauge("skiff_proxy_healthcheck_node_ports",
                         "Health-check node ports served (externalTrafficPolicy Local).",
                         static_cast<double>(serviceHealth_.serving().size()));
  out += prometheusCounter("skiff_proxy_healthcheck_bind_failures_total",
                           "Health-check node ports that could not be bound (retried each sync).",
                           static_cast<double>(serviceHealth_.bindFailures()));
  return out;
}

void NodeProxier::syncOnce() {
  if (services_.hasSynced()) proxier_.setServicesSynced();
  if (slices_.hasSynced()) proxier_.setEndpointSlicesSynced();
  SyncResult result = proxier_.sync();
  if (result.ran && result.ok) {
    health_.updated();
    if (!options_.healthCheckBindAddress.empty())
      serviceHealth_.sync(proxier_.healthCheckNodePorts());
  }
  if (!result.ran) {
    runner_.retryAfter(std::chrono::milliseconds(20));  // informers still listing
  } else if (!result.ok || !result.rejected.empty()) {
    runner_.retryAfter(options_.retryInterval);
  }
}

}  // namespace skiff::endpoints
