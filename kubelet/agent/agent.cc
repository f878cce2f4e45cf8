#include "kubelet/agent/agent.h"

#include <arpa/inet.h>

#include <iostream>
#include <stdexcept>

#include "kubelet/agent/logind_inhibitor.h"
#include "kubelet/volumes/local_path_cleaner.h"
#include "skiff/version.h"

namespace skiff::kubelet {

using api::core::v1::Pod;

namespace {

NodeStatusOptions nodeStatusOptions(const AgentOptions& o) {
  NodeStatusOptions n;
  n.node_name = o.node_name;
  n.pod_cidr = o.pod_cidr;
  n.data_dir = o.data_dir;
  n.container_runtime_version = o.container_runtime_version;
  n.hostname_override = o.hostname_override;
  n.node_ip_override = o.node_ip_override;
  n.kubelet_port = o.kubelet_port;
  n.labels = o.node_labels;
  n.annotations = o.node_annotations;
  n.status_update_frequency = o.node_status_update_frequency;
  n.status_report_frequency = o.node_status_report_frequency;
  n.lease_renew_interval = o.lease_renew_interval;
  n.lease_duration_seconds = o.lease_duration_seconds;
  n.machine = o.machine;
  n.pressure = o.pressure;
  return n;
}

PodWorkersOptions podWorkersOptions(const AgentOptions& o) {
  PodWorkersOptions w;
  w.node_name = o.node_name;
  w.workers = o.pod_workers;
  w.sync_frequency = o.sync_frequency;
  return w;
}

// The pods a node shutdown stops: those of the agent's workers.
class WorkerShutdownPods final : public ShutdownPods {
 public:
  explicit WorkerShutdownPods(PodWorkers& workers) : workers_(workers) {}
  std::vector<Pod> activePods() override { return workers_.activePods(); }
  void killPod(const Pod& pod, std::chrono::milliseconds grace,
               const std::function<void(api::core::v1::PodStatus&)>& set_status) override {
    workers_.killPod(pod.metadata().uid(), grace, set_status);
  }

 private:
  PodWorkers& workers_;
};

}  // namespace

Agent::Agent(client::Client& client, PodSyncer& syncer, AgentOptions options)
    : client_(client),
      options_(std::move(options)),
      node_(client,
            [this] {
              NodeStatusOptions n = nodeStatusOptions(options_);
              n.not_ready = [this] {
                ShutdownManager* m = shutdown_.load();
                return m != nullptr ? m->notReadyMessage() : std::string();
              };
              return n;
            }()),
      events_(client, options_.node_name),
      statuses_(client),
      workers_(client, syncer, statuses_, events_, [this] {
        PodWorkersOptions w = podWorkersOptions(options_);
        w.admit = [this](const Pod& pod) {
          ShutdownManager* m = shutdown_.load();
          return m != nullptr ? m->admit(pod) : std::pair<std::string, std::string>();
        };
        return w;
      }()) {}

Agent::~Agent() {
  stop();
}

void Agent::startShutdownManager() {
  if (options_.shutdown_grace_period.count() <= 0) return;
  try {
    inhibitor_ = options_.shutdown_inhibitor ? options_.shutdown_inhibitor()
                                             : std::make_unique<LogindInhibitor>();
    shutdown_pods_ = std::make_unique<WorkerShutdownPods>(workers_);
    shutdown_manager_ = std::make_unique<ShutdownManager>(
        *inhibitor_, *shutdown_pods_,
        ShutdownManagerOptions{
            .node_name = options_.node_name,
            .grace_period = options_.shutdown_grace_period,
            .grace_period_critical_pods = options_.shutdown_grace_period_critical_pods,
            .on_change = [this] { node_.requestStatusUpdate(); },
            .node_event =
                [this](const std::string& reason, const std::string& message) {
                  events_.recordNode("Normal", reason, message);
                },
            .logind_conf_dir = options_.logind_conf_dir});
    shutdown_manager_->start();
    shutdown_ = shutdown_manager_.get();
  } catch (const std::exception& e) {
    std::cerr << "skiff agent: node " << options_.node_name
              << ": graceful node shutdown is off: " << e.what() << std::endl;
    shutdown_manager_.reset();
    shutdown_pods_.reset();
    inhibitor_.reset();
  }
}

bool Agent::start() {
  if (!node_.start()) return false;
  {
    std::lock_guard lock(lifecycle_mu_);
    if (stopping_) return false;
    client::InformerOptions pods;
    pods.field_selector = "spec.nodeName=" + options_.node_name;
    informers_ = std::make_unique<client::SharedInformerFactory>(client_, pods);
    auto& informer = informers_->informerFor<Pod>();
    informer.addEventHandler({
        .on_add = [this](const client::ObjectPtr& p) { workers_.onPodAdd(client::as<Pod>(p)); },
        .on_update =
            [this](const client::ObjectPtr& old_pod, const client::ObjectPtr& pod) {
              workers_.onPodUpdate(client::as<Pod>(old_pod), client::as<Pod>(pod));
            },
        .on_delete =
            [this](const client::ObjectPtr& p) { workers_.onPodDelete(client::as<Pod>(p)); },
    });
    informers_->start();
  }
  while (!informers_->waitForCacheSync(std::chrono::seconds(1))) {
    if (stopping_) return false;
  }
  std::lock_guard lock(lifecycle_mu_);
  if (stopping_) return false;
  // Every pod bound here is now known to the workers: what else the syncer holds is an orphan.
  orphans_ = workers_.cleanupOrphans();
  workers_.start();
  startShutdownManager();
  if (!options_.local_storage_dir.empty()) {
    cleaner_ = std::thread([this] {
      volumes::LocalPathCleaner cleaner(client_, options_.node_name, options_.local_storage_dir);
      std::unique_lock wait_lock(clean_mu_);
      while (!stopping_) {
        wait_lock.unlock();
        if (int n = cleaner.cleanOnce(); n > 0) {
          std::cerr << "skiff agent: local-path: removed the data of " << n << " deleted volume(s)"
                    << std::endl;
        }
        wait_lock.lock();
        clean_cv_.wait_for(wait_lock, options_.local_path_clean_period,
                           [this] { return stopping_.load(); });
      }
    });
  }
  std::cerr << "skiff agent: node " << options_.node_name << ": running (podCIDR "
            << node_.podCidr() << ", " << workers_.trackedPods() << " pods bound)" << std::endl;
  return true;
}

void Agent::stop() {
  {
    std::lock_guard lock(clean_mu_);
    stopping_ = true;
  }
  clean_cv_.notify_all();
  node_.stop();  // also ends a registration start() is retrying
  std::lock_guard lock(lifecycle_mu_);
  // Releases the inhibitor lock (a shutdown being handled finishes first).
  if (shutdown_manager_) shutdown_manager_->stop();
  if (informers_) informers_->stop();
  workers_.stop();
  events_.flush();
  if (cleaner_.joinable()) cleaner_.join();
}

HollowNodes::~HollowNodes() {
  stop();
}

void HollowNodes::stop() {
  for (auto& agent : agents_)
    agent->stop();
}

std::string nthSubnet24(const std::string& range, int i) {
  auto slash = range.find('/');
  in_addr addr{};
  int bits = slash == std::string::npos ? -1 : std::atoi(range.c_str() + slash + 1);
  if (slash == std::string::npos ||
      ::inet_pton(AF_INET, range.substr(0, slash).c_str(), &addr) != 1 || bits < 8 || bits > 24) {
    throw std::invalid_argument("pod CIDR range \"" + range +
                                "\": want an IPv4 CIDR a.b.c.d/n with n from 8 to 24");
  }
  uint64_t subnets = uint64_t{1} << (24 - bits);
  if (i < 0 || static_cast<uint64_t>(i) >= subnets) {
    throw std::invalid_argument("pod CIDR range \"" + range + "\" has only " +
                                std::to_string(subnets) + " /24 subnets, node " +
                                std::to_string(i) + " needs one more");
  }
  uint32_t mask = ~uint32_t{0} << (32 - bits);
  uint32_t net = (ntohl(addr.s_addr) & mask) + (static_cast<uint32_t>(i) << 8);
  in_addr out{htonl(net)};
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &out, buf, sizeof(buf));
  return std::string(buf) + "/24";
}

std::unique_ptr<HollowNodes> makeHollowNodes(client::Client& client, int count,
                                             HollowNodesOptions options) {
  if (count < 1) throw std::invalid_argument("hollow nodes: count must be at least 1");
  auto nodes = std::make_unique<HollowNodes>();
  for (int i = 0; i < count; ++i) {
    AgentOptions agent = options.agent;
    if (count > 1 || agent.node_name.empty()) {
      agent.node_name = options.name_prefix + std::to_string(i);
    }
    agent.pod_cidr = nthSubnet24(options.pod_cidr_range, i);
    if (agent.hostname_override.empty()) agent.hostname_override = agent.node_name;
    if (agent.container_runtime_version.empty()) {
      agent.container_runtime_version = std::string("hollow://skiff-") + kVersion;
    }
    // The syncer reads the podCIDR the Node ended up with, known once its agent registered.
    auto slot = std::make_shared<Agent*>(nullptr);
    nodes->syncers_.push_back(std::make_unique<HollowPodSyncer>(HollowPodSyncerOptions{
        .pod_cidr = [slot] { return *slot != nullptr ? (*slot)->node().podCidr() : ""; },
        .host_ip = [slot] { return *slot != nullptr ? (*slot)->node().nodeIp() : "127.0.0.1"; }}));
    nodes->agents_.push_back(std::make_unique<Agent>(client, *nodes->syncers_.back(), agent));
    *slot = nodes->agents_.back().get();
  }
  return nodes;
}

bool HollowNodes::start() {
  for (auto& agent : agents_) {
    if (!agent->start()) return false;
  }
  return true;
}

std::unique_ptr<HollowNodes> runHollowNodes(client::Client& client, int count,
                                            HollowNodesOptions options) {
  auto nodes = makeHollowNodes(client, count, std::move(options));
  if (!nodes->start()) return nullptr;
  return nodes;
}

}  // namespace skiff::kubelet
