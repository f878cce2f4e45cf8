#include "control/controllers/controller_manager.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>

#include "control/client/informer.h"
#include "control/client/leader_election.h"
#include "control/controllers/clusterrole_aggregation_controller.h"
#include "control/controllers/csr_approving.h"
#include "control/controllers/csr_signing.h"
#include "control/controllers/daemonset_controller.h"
#include "control/controllers/deployment_controller.h"
#include "control/controllers/garbage_collector_controller.h"
#include "control/controllers/job_controller.h"
#include "control/controllers/local_path_provisioner.h"
#include "control/controllers/namespace_controller.h"
#include "control/controllers/node_lifecycle_controller.h"
#include "control/controllers/persistent_volume_controller.h"
#include "control/controllers/replicaset_controller.h"
#include "control/controllers/root_ca_publisher.h"
#include "control/controllers/serviceaccount_controller.h"
#include "control/controllers/statefulset_controller.h"

namespace skiff::controllers {

namespace {

const std::vector<std::string>& knownControllers() {
  static const std::vector<std::string> kKnown = {"deployment",
                                                  "replicaset",
                                                  "garbagecollector",
                                                  "job",
                                                  "daemonset",
                                                  "statefulset",
                                                  "namespace",
                                                  "serviceaccount",
                                                  "nodelifecycle",
                                                  "csrapproving",
                                                  "csrsigning",
                                                  "root-ca-cert-publisher",
                                                  "clusterrole-aggregation",
                                                  "persistentvolume-binder",
                                                  "local-path-provisioner"};
  return kKnown;
}

// A signing CA file, whole; std::runtime_error naming it when it cannot be read.
std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("controller-manager: cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string defaultIdentity() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  std::random_device rd;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string suffix;
  for (int i = 0; i < 8; ++i)
    suffix += kHex[rd() % 16];
  return std::string(host) + "_" + suffix;
}

}  // namespace

std::vector<std::string> enabledControllers(const std::vector<std::string>& controllers) {
  const auto& known = knownControllers();
  std::set<std::string> on;
  std::set<std::string> off;
  bool star = false;
  for (const auto& raw : controllers) {
    // Accept "a,b" inside one value too.
    size_t start = 0;
    while (start <= raw.size()) {
      size_t comma = raw.find(',', start);
      std::string name = raw.substr(start, comma == std::string::npos ? comma : comma - start);
      start = comma == std::string::npos ? raw.size() + 1 : comma + 1;
      if (name.empty()) continue;
      if (name == "*") {
        star = true;
        continue;
      }
      bool disable = name[0] == '-';
      std::string bare = disable ? name.substr(1) : name;
      if (std::find(known.begin(), known.end(), bare) == known.end()) {
        std::string list;
        for (const auto& k : known)
          list += (list.empty() ? "" : ", ") + k;
        throw std::invalid_argument("--controllers: unknown controller \"" + bare +
                                    "\" (known: " + list + ")");
      }
      (disable ? off : on).insert(bare);
    }
  }
  std::vector<std::string> out;
  for (const auto& k : known) {
    if ((star || on.count(k) != 0) && off.count(k) == 0) out.push_back(k);
  }
  return out;
}

struct ControllerManager::Impl {
  client::Client& client;
  ControllerManagerOptions options;
  std::vector<std::string> enabled;
  std::unique_ptr<client::LeaderElector> elector;
  std::atomic<bool> running{false};

  // What one term of leadership runs.
  std::mutex mu;
  std::condition_variable cv;
  std::jthread runner;  // without leader election

  Impl(client::Client& c, ControllerManagerOptions o)
      : client(c), options(std::move(o)), enabled(enabledControllers(options.controllers)) {}

  void lead(std::stop_token stop) {
    client::SharedInformerFactory factory(client);
    // One shared client::EventRecorder per controller, with Kubernetes' source component
    // (kubectl describe's "From": deployment-controller, replicaset-controller, ...).
    std::vector<std::unique_ptr<client::EventRecorder>> recorders;
    auto recorder = [&](const char* component) -> client::EventRecorder* {
      if (!options.record_events) return nullptr;
      recorders.push_back(std::make_unique<client::EventRecorder>(
          client, client::EventSource{.component = component}));
      return recorders.back().get();
    };
    std::vector<std::unique_ptr<QueueController>> controllers;
    auto on = [&](const std::string& name) {
      return std::find(enabled.begin(), enabled.end(), name) != enabled.end();
    };
    auto& pods = factory.informerFor<api::core::v1::Pod>();
    auto& rss = factory.informerFor<api::apps::v1::ReplicaSet>();
    if (on("replicaset")) {
      controllers.push_back(std::make_unique<ReplicaSetController>(
          client, rss, pods, recorder("replicaset-controller")));
    }
    if (on("deployment")) {
      auto& deployments = factory.informerFor<api::apps::v1::Deployment>();
      controllers.push_back(std::make_unique<DeploymentController>(
          client, deployments, rss, pods, recorder("deployment-controller")));
    }
    if (on("job")) {
      auto& jobs = factory.informerFor<api::batch::v1::Job>();
      controllers.push_back(
          std::make_unique<JobController>(client, jobs, pods, recorder("job-controller")));
    }
    if (on("daemonset")) {
      auto& daemon_sets = factory.informerFor<api::apps::v1::DaemonSet>();
      auto& nodes = factory.informerFor<api::core::v1::Node>();
      auto& revisions = factory.informerFor<api::apps::v1::ControllerRevision>();
      controllers.push_back(std::make_unique<DaemonSetController>(
          client, daemon_sets, nodes, pods, revisions, recorder("daemonset-controller")));
    }
    if (on("statefulset")) {
      auto& sets = factory.informerFor<api::apps::v1::StatefulSet>();
      auto& revisions = factory.informerFor<api::apps::v1::ControllerRevision>();
      controllers.push_back(std::make_unique<StatefulSetController>(
          client, sets, pods, revisions, recorder("statefulset-controller"),
          &factory.informerFor<api::core::v1::PersistentVolumeClaim>()));
    }
    if (on("namespace")) {
      controllers.push_back(std::make_unique<NamespaceController>(
          client, factory.informerFor<api::core::v1::Namespace>(),
          recorder("namespace-controller")));
    }
    if (on("serviceaccount")) {
      controllers.push_back(std::make_unique<ServiceAccountController>(
          client, factory.informerFor<api::core::v1::Namespace>(),
          factory.informerFor<api::core::v1::ServiceAccount>()));
    }
    if (on("root-ca-cert-publisher")) {
      if (options.root_ca_pem.empty()) {
        std::fprintf(stderr,
                     "controller-manager: root-ca-cert-publisher: no root CA (the kubeconfig has "
                     "none), not started\n");
      } else {
        // Only the one ConfigMap of each namespace is watched, not every ConfigMap.
        auto& config_maps = factory.informerFor(
            typeOf<api::core::v1::ConfigMap>(),
            {.field_selector = std::string("metadata.name=") + kRootCaConfigMapName});
        controllers.push_back(std::make_unique<RootCaPublisher>(
            client, factory.informerFor<api::core::v1::Namespace>(), config_maps,
            options.root_ca_pem));
      }
    }
    if (on("clusterrole-aggregation")) {
      controllers.push_back(std::make_unique<ClusterRoleAggregationController>(
          client, factory.informerFor<api::rbac::v1::ClusterRole>()));
    }
    if (on("csrapproving")) {
      controllers.push_back(std::make_unique<CsrApprovingController>(
          client, factory.informerFor<CertificateSigningRequest>()));
    }
    if (on("csrsigning")) {
      if (options.cluster_signing_cert_file.empty() || options.cluster_signing_key_file.empty()) {
        std::fprintf(stderr,
                     "controller-manager: csrsigning: no --cluster-signing-cert-file and "
                     "--cluster-signing-key-file, not started\n");
      } else {
        CsrSigningOptions signing{.ca_cert_pem = readFile(options.cluster_signing_cert_file),
                                  .ca_key_pem = readFile(options.cluster_signing_key_file),
                                  .duration = options.cluster_signing_duration};
        controllers.push_back(std::make_unique<CsrSigningController>(
            client, factory.informerFor<CertificateSigningRequest>(), std::move(signing)));
      }
    }
    if (on("nodelifecycle")) {
      NodeLifecycleOptions node_options;
      node_options.timing.grace_period = options.node_monitor_grace_period;
      node_options.timing.startup_grace_period = options.node_startup_grace_period;
      node_options.monitor_period = options.node_monitor_period;
      node_options.evict_pods = options.enable_taint_eviction;
      node_options.eviction_rate = options.node_eviction_rate;
      auto& leases = factory.informerFor(typeOf<api::coordination::v1::Lease>(),
                                         {.ns = std::string(kNodeLeaseNamespace)});
      controllers.push_back(std::make_unique<NodeLifecycleController>(
          client, factory.informerFor<api::core::v1::Node>(), leases, pods,
          recorder("node-controller"), node_options));
    }
    if (on("persistentvolume-binder")) {
      controllers.push_back(std::make_unique<PersistentVolumeController>(
          client, factory.informerFor<api::core::v1::PersistentVolume>(),
          factory.informerFor<api::core::v1::PersistentVolumeClaim>(),
          factory.informerFor<api::storage::v1::StorageClass>(),
          factory.informerFor<api::core::v1::Node>(), pods,
          recorder("persistentvolume-controller")));
    }
    if (on("local-path-provisioner")) {
      controllers.push_back(std::make_unique<LocalPathProvisioner>(
          client, factory.informerFor<api::core::v1::PersistentVolumeClaim>(),
          factory.informerFor<api::core::v1::PersistentVolume>(),
          factory.informerFor<api::storage::v1::StorageClass>(),
          factory.informerFor<api::core::v1::Node>(), recorder("local-path-provisioner"),
          options.default_storage_class));
    }
    if (on("garbagecollector")) {
      std::vector<client::SharedInformer*> informers;
      for (const auto* t : GarbageCollector::defaultTypes()) {
        informers.push_back(&factory.informerFor(*t));
      }
      controllers.push_back(std::make_unique<GarbageCollector>(client, std::move(informers)));
    }
    factory.start();
    if (!factory.waitForCacheSync(options.cache_sync_timeout)) {
      std::fprintf(stderr, "controller-manager: caches did not sync within %lld ms\n",
                   static_cast<long long>(options.cache_sync_timeout.count()));
    }
    for (auto& c : controllers)
      c->start(options.workers);
    running = true;
    {
      std::unique_lock lock(mu);
      std::condition_variable_any cva;
      cva.wait(lock, stop, [] { return false; });
    }
    running = false;
    for (auto& c : controllers)
      c->stop();
    factory.stop();
    controllers.clear();
  }
};

ControllerManager::ControllerManager(client::Client& client, ControllerManagerOptions options)
    : impl_(std::make_unique<Impl>(client, std::move(options))) {}

ControllerManager::~ControllerManager() {
  stop();
}

void ControllerManager::start() {
  auto& o = impl_->options;
  if (!o.leader_elect) {
    impl_->runner = std::jthread([this](std::stop_token stop) { impl_->lead(stop); });
    return;
  }
  client::LeaderElectionConfig config;
  config.lease_namespace = o.lease_namespace;
  config.lease_name = o.lease_name;
  config.identity = o.identity.empty() ? defaultIdentity() : o.identity;
  config.lease_duration = o.lease_duration;
  config.renew_deadline = o.renew_deadline;
  config.retry_period = o.retry_period;
  // Which candidate leads, for operators (and the HA test, which kills the leader's process).
  config.on_started_leading = [this, identity = config.identity](std::stop_token stop) {
    std::fprintf(stderr, "controller-manager: leading as %s\n", identity.c_str());
    impl_->lead(stop);
  };
  impl_->elector = std::make_unique<client::LeaderElector>(impl_->client, std::move(config));
  impl_->elector->start();
}

void ControllerManager::stop() {
  if (impl_->elector) {
    impl_->elector->stop();
    impl_->elector.reset();
  }
  if (impl_->runner.joinable()) {
    impl_->runner.request_stop();
    impl_->runner.join();
  }
}

bool ControllerManager::running() const {
  return impl_->running;
}

void runControllerManager(client::Client& client, const ControllerManagerOptions& options,
                          std::stop_token stop) {
  ControllerManager manager(client, options);
  manager.start();
  std::mutex mu;
  std::unique_lock lock(mu);
  std::condition_variable_any cv;
  cv.wait(lock, stop, [] { return false; });
  manager.stop();
}

}  // namespace skiff::controllers
