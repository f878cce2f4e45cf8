#include "endpoints/node_proxier.h"

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
      runner_([this] { syncOnce(); },
              SyncRunnerOptions{.minInterval = options_.minSyncInterval,
                                .maxInterval = options_.proxier.fullSyncPeriod,
                                .burst = options_.burst}) {
  services_.addEventHandler({
      .on_add =
          [this](const client::ObjectPtr& o) {
            proxier_.onServiceAdd(typed<core::Service>(o));
            runner_.run();
          },
      .on_update =
          [this](const client::ObjectPtr& old, const client::ObjectPtr& now) {
            proxier_.onServiceUpdate(typed<core::Service>(old), typed<core::Service>(now));
            runner_.run();
          },
      .on_delete =
          [this](const client::ObjectPtr& o) {
            proxier_.onServiceDelete(typed<core::Service>(o));
            runner_.run();
          },
  });
  slices_.addEventHandler({
      .on_add =
          [this](const client::ObjectPtr& o) {
            proxier_.onSliceUpdate(typed<discovery::EndpointSlice>(o), false);
            runner_.run();
          },
      .on_update =
          [this](const client::ObjectPtr&, const client::ObjectPtr& now) {
            proxier_.onSliceUpdate(typed<discovery::EndpointSlice>(now), false);
            runner_.run();
          },
      .on_delete =
          [this](const client::ObjectPtr& o) {
            proxier_.onSliceUpdate(typed<discovery::EndpointSlice>(o), true);
            runner_.run();
          },
  });
  const std::string nodeName = options_.proxier.nodeName;
  auto onNode = [this, nodeName](const client::ObjectPtr& o, bool deleted) {
    const auto& node = client::as<core::Node>(o);
    if (node.metadata().name() != nodeName) return;
    proxier_.onNodeUpdate(deleted ? nullptr : typed<core::Node>(o));
    if (proxier_.hasPendingChanges()) runner_.run();
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

void NodeProxier::start() {
  runner_.start();
  runner_.run();
}

void NodeProxier::stop() {
  runner_.stop();
}

void NodeProxier::syncOnce() {
  if (services_.hasSynced()) proxier_.setServicesSynced();
  if (slices_.hasSynced()) proxier_.setEndpointSlicesSynced();
  SyncResult result = proxier_.sync();
  if (!result.ran) {
    runner_.retryAfter(std::chrono::milliseconds(20));  // informers still listing
  } else if (!result.ok || !result.rejected.empty()) {
    runner_.retryAfter(options_.retryInterval);
  }
}

}  // namespace skiff::endpoints
