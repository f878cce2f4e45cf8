#include "control/cli/agent_command.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "control/apiserver/pki.h"
#include "control/cli/cli_context.h"
#include "control/cli/resident_code.h"
#include "control/cli/stop_signals.h"
#include "control/client/failover_client.h"
#include "control/client/informer.h"
#include "control/client/kubeconfig.h"
#include "control/client/rest_client.h"
#include "dataplane/maglev.h"
#include "endpoints/http_server.h"
#include "endpoints/node_proxier.h"
#include "kubelet/agent/agent.h"
#include "kubelet/agent/lazy_pod_syncer.h"
#include "kubelet/agent/serving_certificate.h"
#include "kubelet/agent/tls_bootstrap.h"
#include "kubelet/images/image_store.h"
#include "kubelet/network/pod_network.h"
#include "kubelet/pods/runtime_pod_syncer.h"
#include "kubelet/runtime/runc_runtime.h"
#include "kubelet/server/kubelet_server.h"
#include "kubelet/volumes/caching_volume_source.h"
#include "kubelet/volumes/client_volume_source.h"

#if SKIFF_WITH_EBPF
#include "control/cli/ebpf_options.h"
#include "ebpf/cgroup.h"
#include "ebpf/ebpf_dataplane.h"
#endif
#if SKIFF_WITH_DPDK
#include "dataplane/dpdk/dpdk_dataplane.h"
#endif

namespace skiff::cli {
namespace {

struct AgentFlags {
  std::string kubeconfig;
  std::string bootstrap_kubeconfig;  // kubelet TLS bootstrap (kubelet/agent/tls_bootstrap.h)
  std::string server;                // --server URL1,URL2: failover between apiservers
  std::string node_name;
  std::string data_dir = "/var/lib/skiff/agent";
  std::string pod_cidr;
  std::string node_ip;
  std::string local_storage_dir = "/var/lib/skiff/storage";
  bool hollow = false;
  int hollow_nodes = 0;
  std::string proxy_mode;  // "ebpf", "dpdk" or "none"; empty: ebpf unless hollow
  // --proxy-mode dpdk: `skiff dataplane`'s control socket.
  std::string dataplane_socket = "/run/skiff/dataplane.sock";
  // The proxier's /metrics and /healthz (kube-proxy's defaults); "0" or "": off.
  std::string proxy_metrics_bind = "127.0.0.1:10249";
  std::string proxy_healthz_bind = "0.0.0.0:10256";
  std::string cgroup_parent = "/skiff";
  int64_t pod_max_pids = -1;  // pids.max of each pod cgroup; <= 0: unlimited
  // The eBPF data path pins its maps and links here, so a restarted agent keeps serving with the
  // same tables and `skiff lb` can read them; empty: nothing pinned.
  std::string bpf_pin_dir = "/sys/fs/bpf/skiff";
  // Kernel memory for the Maglev rings (preallocated; 4 KiB per ring of up to 10 backends).
  uint32_t lb_ring_memory_mb = 64;
  // The Maglev table size of every service (a prime up to 65537); 0: by backend count.
  uint32_t lb_maglev_table_size = 0;
  // Interfaces whose NodePort/externalIP/LoadBalancer traffic the eBPF LB translates, and how:
  // "xdp" (native), "tc" (ingress + egress) or "auto" (native XDP, else tc).
  std::vector<std::string> lb_nodeport_devices;
  std::string lb_nodeport_mode = "auto";
  std::string lb_mode = "snat";
  std::string image_root = "/var/lib/skiff/kubelet/images";
  std::string log_dir = "/var/log/pods";
  std::string bridge = "skiff0";
  std::string run_dir = "/run/skiff";
  int status_update_s = 10;
  int lease_renew_s = 10;
  // The kubelet API (container logs); 0: off. Without a serving certificate it listens on
  // 127.0.0.1 only (plain HTTP is for loopback).
  int kubelet_port = 10250;
  std::string kubelet_cert_file;
  std::string kubelet_key_file;
  // The CA bundle whose client certificates the kubelet API accepts (the kubelet's
  // --client-ca-file); empty: the kubeconfig's cluster CA. Bearer tokens go to the apiserver.
  std::string client_ca_file;
  std::string kubelet_api_token_file;  // deprecated, ignored
  // Graceful node shutdown (kubelet/agent/shutdown_manager.h): kubelet's shutdownGracePeriod and
  // shutdownGracePeriodCriticalPods, durations; 0: off.
  std::string shutdown_grace_period = "0s";
  std::string shutdown_grace_period_critical_pods = "0s";
  // Where graceful shutdown writes logind's drop-in raising InhibitDelayMaxSec (99-kubelet.conf).
  std::string logind_conf_dir = kubelet::kLogindConfDir;
  // The kubelet's --rotate-server-certificates: the kubelet API's certificate from a
  // kubernetes.io/kubelet-serving CSR (kubelet/agent/serving_certificate.h).
  bool rotate_server_certificates = false;
  // The kubelet's --cert-dir: the rotated serving certificate and the self-signed kubelet.crt /
  // kubelet.key; empty: DATA_DIR/pki (and no self-signed pair, see --cert-dir's help).
  std::string cert_dir;
};

// Lower-cased, as the kubelet's: a Node name is a DNS-1123 subdomain.
std::string hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  std::string name = buf;
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return name;
}

// The kubelet API's client CA file: --client-ca-file, else the kubeconfig's CA written to
// DATA_DIR/client-ca.crt; "" when there is neither (client certificates are then not accepted).
std::string clientCaFile(const AgentFlags& flags, const client::ClientConfig& config) {
  if (!flags.client_ca_file.empty()) return flags.client_ca_file;
  if (config.ca_pem.empty()) return "";
  std::filesystem::create_directories(flags.data_dir);
  const std::string path = flags.data_dir + "/client-ca.crt";
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << config.ca_pem;
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  std::filesystem::rename(tmp, path);
  return path;
}

// NAME when the kubeconfig's client certificate is a node's (CN system:node:NAME, O
// system:nodes), else "".
std::string certificateNode(const client::ClientConfig& config) {
  if (config.client_cert_pem.empty()) return "";
  apiserver::CertificateInfo info =
      apiserver::inspectCertificate(config.client_cert_pem, config.source + ": client certificate");
  if (!info.common_name.starts_with(apiserver::kNodeUserPrefix)) return "";
  const auto& o = info.organizations;
  if (std::find(o.begin(), o.end(), apiserver::kNodesGroup) == o.end()) return "";
  return info.common_name.substr(apiserver::kNodeUserPrefix.size());
}

// "0" and "" turn a proxier server off.
std::string bindAddressOrOff(const std::string& flag) {
  return flag == "0" ? "" : flag;
}

// Whether binding address:port would fail with EADDRINUSE (a probe bind, as the server binds:
// SO_REUSEADDR, so only a listener counts).
bool portInUse(const std::string& address, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (::inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1) return false;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const bool in_use =
      ::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0 && errno == EADDRINUSE;
  ::close(fd);
  return in_use;
}

// "pid 12 (skiff-shim), pid 34 (skiff-shim)": the processes holding a listening TCP socket on
// `port` in this network namespace (/proc/net/tcp, then every process's /proc/PID/fd).
std::string listenersOn(uint16_t port) {
  std::set<std::string> inodes;
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  std::getline(tcp, line);  // the header
  while (std::getline(tcp, line)) {
    std::istringstream in(line);
    std::string sl, local, remote, state, skip, inode;
    in >> sl >> local >> remote >> state;
    for (int i = 0; i < 5; ++i)
      in >> skip;
    in >> inode;
    const auto colon = local.find(':');
    if (state != "0A" || colon == std::string::npos) continue;
    if (std::strtoul(local.c_str() + colon + 1, nullptr, 16) == port) {
      inodes.insert("socket:[" + inode + "]");
    }
  }
  std::string out;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* e = ::readdir(proc)) {
    const std::string pid = e->d_name;
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string fd_dir = "/proc/" + pid + "/fd";
    DIR* fds = ::opendir(fd_dir.c_str());
    if (fds == nullptr) continue;
    bool holds = false;
    while (dirent* f = ::readdir(fds)) {
      char target[64] = {};
      const std::string path = fd_dir + "/" + f->d_name;
      if (::readlink(path.c_str(), target, sizeof target - 1) > 0 && inodes.contains(target)) {
        holds = true;
        break;
      }
    }
    ::closedir(fds);
    if (!holds) continue;
    std::string comm;
    std::getline(std::ifstream("/proc/" + pid + "/comm"), comm);
    out += (out.empty() ? "pid " : ", pid ") + pid + " (" + comm + ")";
  }
  ::closedir(proc);
  return out;
}

// The kubelet API. Its port may still be held by what a previous agent left: a skiff-shim started
// by an agent from before shims closed inherited descriptors keeps that agent's listening socket
// for as long as its container runs. That does not keep the node down: the agent runs without
// the API (logs and exec answer 503 through the apiserver meanwhile) and binds it once the port
// is free. Any other failure to serve is fatal, at start.
class KubeletApi {
 public:
  explicit KubeletApi(kubelet::KubeletServerOptions options) : options_(std::move(options)) {
    if (!portInUse(options_.bind_address, options_.port)) {
      serve();  // throws: a bad certificate, an address that is not ours
      return;
    }
    std::string holders = listenersOn(options_.port);
    std::cerr << "skiff agent: warning: the kubelet API's port " << options_.bind_address << ":"
              << options_.port << " is in use"
              << (holders.empty() ? ""
                                  : " by " + holders +
                                        " (a container shim of an older skiff agent keeps "
                                        "it until its container exits)")
              << "; running without logs and exec, retrying every 2 s" << std::endl;
    retry_ = std::thread([this] {
      std::unique_lock lock(mu_);
      while (!cv_.wait_for(lock, std::chrono::seconds(2), [&] { return stopping_; })) {
        if (portInUse(options_.bind_address, options_.port)) continue;
        try {
          serve();
          return;
        } catch (const std::exception& e) {
          std::cerr << "skiff agent: kubelet API: " << e.what() << " (retrying)" << std::endl;
        }
      }
    });
  }
  ~KubeletApi() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (retry_.joinable()) retry_.join();
    if (server_) server_->stop();
  }
  KubeletApi(const KubeletApi&) = delete;
  KubeletApi& operator=(const KubeletApi&) = delete;

  // The serving certificate from now on (--rotate-server-certificates), also once a late start
  // binds the port.
  void setServingCertificate(const std::string& cert_pem, const std::string& key_pem) {
    std::lock_guard lock(mu_);
    serving_ = {cert_pem, key_pem};
    if (server_) server_->setServingCertificate(cert_pem, key_pem);
  }

 private:
  void serve() {
    auto server = std::make_unique<kubelet::KubeletServer>(options_);
    server->start();
    if (!serving_.first.empty()) server->setServingCertificate(serving_.first, serving_.second);
    std::cout << "skiff agent: kubelet API on "
              << (options_.cert_file.empty() ? "http://" : "https://") << options_.bind_address
              << ":" << server->port() << std::endl;
    server_ = std::move(server);
  }

  const kubelet::KubeletServerOptions options_;
  std::unique_ptr<kubelet::KubeletServer> server_;
  std::pair<std::string, std::string> serving_;  // cert, key PEM; empty: options_' files
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread retry_;
};

// The node's data path and proxier: `--proxy-mode ebpf`, the socket LB on the pods' cgroup
// parent (never the root cgroup); `--proxy-mode dpdk`, `skiff dataplane` over its control socket.
// Services and EndpointSlices come from a shared informer factory.
class NodeProxy {
 public:
  NodeProxy(client::Client& client, const std::string& node_name, const std::string& mode,
            const std::string& cgroup_path, const AgentFlags& flags) {
    if (mode == "dpdk") {
#if SKIFF_WITH_DPDK
      auto dpdk = std::make_unique<dataplane::dpdk::DpdkDataplane>(flags.dataplane_socket);
      if (auto probe = dpdk->stats(); !probe.ok()) {
        std::cerr << "skiff agent: warning: " << probe.message()
                  << " (the proxier retries until skiff dataplane answers)" << std::endl;
      }
      dataplane_ = std::move(dpdk);
#else
      throw std::runtime_error(
          "this skiff was built without the DPDK data path (SKIFF_WITH_DPDK=OFF); "
          "run with --proxy-mode ebpf or none");
#endif
    } else {
#if SKIFF_WITH_EBPF
      // The same flags as `skiff lb attach` (control/cli/ebpf_options.h).
      auto parsed = ebpfDataplaneOptions({.cgroupPath = cgroup_path,
                                          .pinDir = flags.bpf_pin_dir,
                                          .nodePortDevices = flags.lb_nodeport_devices,
                                          .nodePortMode = flags.lb_nodeport_mode,
                                          .lbMode = flags.lb_mode,
                                          .devicesFlag = "--lb-nodeport-devices",
                                          .modeFlag = "--lb-nodeport-mode"});
      if (!parsed.ok()) throw std::runtime_error(parsed.message());
      ebpf::EbpfDataplaneOptions options = std::move(*parsed);
      options.load.ringEntries = static_cast<uint32_t>(
          std::min<uint64_t>(flags.lb_ring_memory_mb, 8192) * 1024 * 1024 / 4);
      auto made = ebpf::EbpfDataplane::create(options);
      if (!made.ok()) {
        throw std::runtime_error("the eBPF data path (cgroup " + cgroup_path +
                                 "): " + made.message() + " (or run with --proxy-mode none)");
      }
      for (const auto& [ifindex, got] : (*made)->nodePortAttachments()) {
        char name[IF_NAMESIZE] = {};
        std::cout << "skiff agent: node ports on "
                  << (if_indextoname(static_cast<unsigned>(ifindex), name) ? name : "?") << " ("
                  << ifindex << ") through "
                  << (got == ebpf::NodePortMode::kXdp ? "XDP" : "tc ingress/egress") << std::endl;
      }
      dataplane_ = std::move(made).value();
#else
      (void)cgroup_path;
      throw std::runtime_error(
          "this skiff was built without the eBPF data path (SKIFF_WITH_EBPF=OFF); "
          "run with --proxy-mode none");
#endif
    }
    informers_ = std::make_unique<client::SharedInformerFactory>(client);
    endpoints::NodeProxierOptions proxier;
    proxier.proxier.nodeName = node_name;
    if (flags.lb_maglev_table_size != 0 &&
        (flags.lb_maglev_table_size > dataplane::kMaglevMaxTableSize ||
         !dataplane::isPrime(flags.lb_maglev_table_size))) {
      throw std::runtime_error("--lb-maglev-table-size " +
                               std::to_string(flags.lb_maglev_table_size) +
                               " is not a prime up to 65537 (or 0: by backend count)");
    }
    proxier.proxier.maglevTableSize = flags.lb_maglev_table_size;
    proxier.metricsBindAddress = bindAddressOrOff(flags.proxy_metrics_bind);
    proxier.healthzBindAddress = bindAddressOrOff(flags.proxy_healthz_bind);
    proxier_ = std::make_unique<endpoints::NodeProxier>(*informers_, *dataplane_, proxier);
    informers_->start();
    proxier_->start();
    if (proxier_->metricsPort() != 0) {
      std::cout << "skiff agent: proxier metrics on port " << proxier_->metricsPort()
                << " (/metrics)" << std::endl;
    }
    if (proxier_->healthzPort() != 0) {
      std::cout << "skiff agent: proxier health on port " << proxier_->healthzPort()
                << " (/healthz, /livez)" << std::endl;
    }
  }
  ~NodeProxy() {
    if (proxier_) proxier_->stop();
    if (informers_) informers_->stop();
  }

 private:
  dataplane::DataplanePtr dataplane_;
  std::unique_ptr<client::SharedInformerFactory> informers_;
  std::unique_ptr<endpoints::NodeProxier> proxier_;
};

// A node that runs pods: runc containers from the local image store, a network namespace per pod
// on a bridge with addresses from the node's podCIDR (known once the Node is registered, so the
// syncer is built on first use), volumes from the apiserver through a TTL cache, and the
// Services' environment variables from a Service informer.
struct RealNode {
  RealNode(client::Client& client, const AgentFlags& flags, kubelet::AgentOptions options)
      : store(flags.image_root),
        runtime(kubelet::RuncOptions{.root = flags.run_dir + "/runc",
                                     .state_dir = flags.run_dir + "/containers"}),
        fetcher(client),
        cached_fetcher(fetcher),
        service_informers(client),
        syncer([this, flags] { return makeSyncer(flags); }) {
    service_informer = &service_informers.informerFor<api::core::v1::Service>();
    service_informers.start();
    agent = std::make_unique<kubelet::Agent>(client, syncer, std::move(options));
  }
  ~RealNode() { service_informers.stop(); }

  // The Services of `ns` and of "default", once listed.
  std::optional<std::vector<api::core::v1::Service>> services(const std::string& ns) {
    const client::SharedInformer& informer = *service_informer;
    if (!informer.hasSynced()) return std::nullopt;
    std::vector<api::core::v1::Service> out;
    auto add = [&](const std::string& n) {
      for (const auto& object : informer.cache().list(n, ""))
        out.push_back(client::as<api::core::v1::Service>(object));
    };
    add(ns);
    if (ns != "default") add("default");
    return out;
  }

  kubelet::PodSyncerPtr makeSyncer(const AgentFlags& flags) {
    std::string cidr = agent->node().podCidr();
    if (cidr.empty()) {
      throw std::runtime_error("node " + agent->nodeName() +
                               " has no podCIDR: give --pod-cidr or set the Node's spec.podCIDR");
    }
    kubelet::network::PodNetworkOptions net;
    net.pod_cidr = cidr;
    net.bridge = flags.bridge;
    net.ipam_dir = flags.data_dir + "/ipam";
    net.netns_dir = flags.run_dir + "/netns";
    network = std::make_unique<kubelet::network::PodNetworkManager>(net);
    kubelet::RuntimePodSyncerOptions o;
    o.node_name = agent->nodeName();
    o.host_ip = agent->node().nodeIp();
    o.root_dir = flags.data_dir;
    o.log_dir = flags.log_dir;
    o.cgroup_parent = flags.cgroup_parent;
    o.pod_max_pids = flags.pod_max_pids;
    o.services = [this](const std::string& ns) { return services(ns); };
    return std::make_unique<kubelet::RuntimePodSyncer>(o, store, runtime, *network,
                                                       &cached_fetcher);
  }

  kubelet::images::ImageStore store;
  kubelet::RuncRuntime runtime;
  kubelet::volumes::ClientVolumeSourceFetcher fetcher;
  kubelet::volumes::CachingVolumeSourceFetcher cached_fetcher;
  client::SharedInformerFactory service_informers;
  client::SharedInformer* service_informer = nullptr;
  std::unique_ptr<kubelet::network::PodNetworkManager> network;
  kubelet::LazyPodSyncer syncer;
  std::unique_ptr<kubelet::Agent> agent;
};

std::string cgroupPathFor(const std::string& parent) {
#if SKIFF_WITH_EBPF
  std::string mount = ebpf::cgroup2Mount();
  if (mount.empty()) mount = "/sys/fs/cgroup";
  return mount + (parent.starts_with("/") ? parent : "/" + parent);
#else
  return "/sys/fs/cgroup" + parent;
#endif
}

int runAgent(const AgentFlags& flags, sigset_t& signals) {
  if (flags.proxy_mode != "" && flags.proxy_mode != "ebpf" && flags.proxy_mode != "dpdk" &&
      flags.proxy_mode != "none") {
    std::cerr << "error: --proxy-mode \"" << flags.proxy_mode
              << "\": want ebpf or none, or dpdk (skiff dataplane)\n";
    return 1;
  }
  const std::pair<std::string, std::string> bind_flags[] = {
      {"--proxy-metrics-bind-address", flags.proxy_metrics_bind},
      {"--proxy-healthz-bind-address", flags.proxy_healthz_bind}};
  for (const auto& [flag, value] : bind_flags) {
    if (bindAddressOrOff(value).empty()) continue;
    if (auto parsed = endpoints::parseHostPort(value); !parsed.ok()) {
      std::cerr << "error: " << flag << ": " << parsed.message() << " or 0 for off\n";
      return 1;
    }
  }
  if (flags.hollow_nodes < 0) {
    std::cerr << "error: --hollow-nodes " << flags.hollow_nodes << ": want 1 or more\n";
    return 1;
  }
  bool hollow = flags.hollow || flags.hollow_nodes > 0;
  std::string proxy_mode = flags.proxy_mode.empty() ? (hollow ? "none" : "ebpf") : flags.proxy_mode;

  if (!flags.bootstrap_kubeconfig.empty()) {
    // TLS bootstrap: a node certificate from a CSR when --kubeconfig has none that is valid.
    auto result = kubelet::ensureNodeKubeconfig(
        {.bootstrap_kubeconfig = flags.bootstrap_kubeconfig,
         .kubeconfig = flags.kubeconfig,
         .node_name = flags.node_name.empty() ? hostname() : flags.node_name});
    if (result.action != kubelet::TlsBootstrapResult::Action::kKept) {
      std::cerr << "agent: wrote " << flags.kubeconfig << " with the certificate of "
                << result.csr_name << "\n";
    }
  }
  const client::ClientConfig client_config =
      client::loadClientConfig({.kubeconfig = flags.kubeconfig});
  // A node's certificate (skiff node-kubeconfig, skiff up) names the node: the Node authorizer
  // lets system:node:NAME write only NAME's Node, Lease and pods.
  std::string node_name = flags.node_name;
  if (std::string cert_node = certificateNode(client_config); !cert_node.empty()) {
    if (flags.hollow_nodes > 1) {
      std::cerr << "error: --hollow-nodes " << flags.hollow_nodes << ": the kubeconfig's client "
                << "certificate is node " << cert_node << "'s alone; hollow nodes need a "
                << "kubeconfig that may act for every node\n";
      return 1;
    }
    if (node_name.empty()) {
      node_name = cert_node;
    } else if (node_name != cert_node) {
      std::cerr << "error: --node-name " << node_name << ": the kubeconfig's client certificate "
                << "is for node " << cert_node << " (system:node:" << cert_node
                << "), which may not act as another node\n";
      return 1;
    }
  }
  if (!flags.kubelet_api_token_file.empty()) {
    std::cerr << "skiff agent: warning: --kubelet-api-token-file is ignored: the kubelet API "
                 "authenticates the apiserver by its client certificate, and other clients by "
                 "theirs or by a TokenReview of their bearer token\n";
  }
  client::ClientPtr client = client::makeClientForServers(client_config, flags.server);

  kubelet::AgentOptions options;
  options.node_name = node_name;
  options.pod_cidr = flags.pod_cidr;
  options.data_dir = flags.data_dir;
  options.node_ip_override = flags.node_ip;
  options.node_status_update_frequency = std::chrono::seconds(flags.status_update_s);
  options.node_status_report_frequency = std::chrono::seconds(flags.status_update_s);
  options.lease_renew_interval = std::chrono::seconds(flags.lease_renew_s);
  if (flags.kubelet_port < 0 || flags.kubelet_port > 65535) {
    std::cerr << "error: --kubelet-port " << flags.kubelet_port << ": want 0 to 65535\n";
    return 1;
  }
  int kubelet_port = hollow ? 0 : flags.kubelet_port;
  options.kubelet_port = kubelet_port;
  {
    // Whole seconds, as the kubelet takes them.
    auto total = parseDuration(flags.shutdown_grace_period);
    auto critical = parseDuration(flags.shutdown_grace_period_critical_pods);
    if (!total || total->count() < 0) {
      std::cerr << "error: --shutdown-grace-period \"" << flags.shutdown_grace_period
                << "\": want a duration such as 30s or 2m (0: off)\n";
      return 1;
    }
    if (!critical || critical->count() < 0) {
      std::cerr << "error: --shutdown-grace-period-critical-pods \""
                << flags.shutdown_grace_period_critical_pods
                << "\": want a duration such as 10s (0: none)\n";
      return 1;
    }
    if (*critical > *total) {
      std::cerr << "error: --shutdown-grace-period-critical-pods " << critical->count() / 1000.0
                << "s must be at most --shutdown-grace-period " << total->count() / 1000.0 << "s\n";
      return 1;
    }
    if (hollow && total->count() > 0) {
      std::cerr << "skiff agent: --shutdown-grace-period is ignored for hollow nodes\n";
    } else {
      options.shutdown_grace_period = std::chrono::duration_cast<std::chrono::seconds>(*total);
      options.logind_conf_dir = flags.logind_conf_dir;
      options.shutdown_grace_period_critical_pods =
          std::chrono::duration_cast<std::chrono::seconds>(*critical);
    }
  }

  // Stopping: the signal thread asks whatever runs to stop, also while it is still starting.
  std::mutex mu;
  std::condition_variable cv;
  bool stop_requested = false;
  std::unique_ptr<kubelet::HollowNodes> nodes;
  std::unique_ptr<RealNode> real;
  std::thread waiter([&] {
    int sig = waitForStopSignalReleasingStartupCode(signals);
    std::cerr << "skiff agent: " << stopSignalName(sig) << ", shutting down" << std::endl;
    std::lock_guard lock(mu);
    stop_requested = true;
    if (nodes) nodes->stop();
    if (real) real->agent->stop();
    cv.notify_all();
  });
  auto stopping = [&] {
    std::lock_guard lock(mu);
    return stop_requested;
  };

  // Where the local-path provisioner puts this node's volumes (it reads the Node's annotation).
  options.node_annotations["skiff.io/local-storage-dir"] = flags.local_storage_dir;
  // ... and where the kubelet removes the data of the ones it deletes (real nodes only).
  if (!hollow) options.local_storage_dir = flags.local_storage_dir;
  int rc = 0;
  try {
    std::string first_node;
    if (hollow) {
      kubelet::HollowNodesOptions hollow_options;
      hollow_options.agent = options;
      hollow_options.agent.pod_cidr.clear();
      hollow_options.agent.pod_workers = 2;
      int count = std::max(1, flags.hollow_nodes);
      if (!node_name.empty()) hollow_options.name_prefix = node_name + "-";
      if (flags.hollow && flags.hollow_nodes == 0 && node_name.empty()) {
        hollow_options.agent.node_name = hostname();
      }
      if (!flags.pod_cidr.empty()) hollow_options.pod_cidr_range = flags.pod_cidr;
      std::lock_guard lock(mu);
      nodes = kubelet::makeHollowNodes(*client, count, hollow_options);
      first_node = nodes->agent(0).nodeName();
    } else {
      if (options.node_name.empty()) options.node_name = hostname();
      options.pod_workers = 8;
      std::lock_guard lock(mu);
      real = std::make_unique<RealNode>(*client, flags, options);
      first_node = options.node_name;
    }
    std::unique_ptr<KubeletApi> kubelet_api;
    // --rotate-server-certificates: until the cluster's certificate is issued the API serves the
    // one it has, --kubelet-cert-file or the kept one of an earlier run.
    std::string cert_file = flags.kubelet_cert_file;
    std::string key_file = flags.kubelet_key_file;
    const std::string cert_dir = flags.cert_dir.empty() ? flags.data_dir + "/pki" : flags.cert_dir;
    const std::string kept_serving = cert_dir + "/kubelet-server-current.pem";
    if (flags.rotate_server_certificates && real && kubelet_port > 0) {
      if (cert_file.empty() && std::filesystem::exists(kept_serving)) {
        cert_file = kept_serving;
        key_file = kept_serving;
      }
      if (cert_file.empty()) {
        throw std::runtime_error(
            "--rotate-server-certificates: the kubelet API needs a certificate to serve until "
            "the cluster's is approved: give --kubelet-cert-file and --kubelet-key-file");
      }
    }
    if (real && kubelet_port > 0 && cert_file.empty() && !flags.rotate_server_certificates &&
        !flags.cert_dir.empty()) {
      // As the kubelet without --tls-cert-file: a self-signed pair made once in --cert-dir.
      std::vector<std::string> ips;
      if (!flags.node_ip.empty()) ips.push_back(flags.node_ip);
      const auto self =
          kubelet::ensureSelfSignedServingCertificate(cert_dir, hostname(), {first_node}, ips);
      std::cout << "skiff agent: kubelet API: self-signed serving certificate " << self.cert_file
                << (self.generated ? " (made now)" : " (kept)") << std::endl;
      cert_file = self.cert_file;
      key_file = self.key_file;
    }
    if (real && kubelet_port > 0) {
      const bool tls = !cert_file.empty();
      // Client certificates of the client CA (the apiserver's kubelet-client) and bearer tokens
      // the apiserver reviews; every request authorized by a SubjectAccessReview of this node.
      const std::string client_ca = tls ? clientCaFile(flags, client_config) : "";
      if (tls && client_ca.empty()) {
        std::cerr << "skiff agent: warning: no --client-ca-file and no CA in the kubeconfig: the "
                     "kubelet API accepts bearer tokens only, not the apiserver's client "
                     "certificate\n";
      }
      kubelet_api = std::make_unique<KubeletApi>(kubelet::KubeletServerOptions{
          .bind_address = tls ? "0.0.0.0" : "127.0.0.1",
          .port = static_cast<uint16_t>(kubelet_port),
          .log_dir = flags.log_dir,
          .cert_file = cert_file,
          .key_file = key_file,
          .client_ca_file = client_ca,
          .node_name = first_node,
          .reviewer = std::make_shared<kubelet::ApiserverAuthReviewer>(*client),
          .runtime = &real->runtime,
      });
    }
    std::unique_ptr<NodeProxy> proxy;
    if (proxy_mode != "none") {
      proxy = std::make_unique<NodeProxy>(*client, first_node, proxy_mode,
                                          cgroupPathFor(flags.cgroup_parent), flags);
      if (proxy_mode == "ebpf") {
        std::cout << "skiff agent: eBPF service load balancer on cgroup "
                  << cgroupPathFor(flags.cgroup_parent) << std::endl;
      } else {
        std::cout << "skiff agent: DPDK service load balancer through skiff dataplane at "
                  << flags.dataplane_socket << std::endl;
      }
    }
    if (nodes && !stopping() && nodes->start()) {
      std::cout << "skiff agent: " << nodes->size() << " hollow node(s) running:";
      for (size_t i = 0; i < nodes->size(); ++i)
        std::cout << " " << nodes->agent(i).nodeName();
      std::cout << std::endl;
    }
    if (real && !stopping() && real->agent->start()) {
      std::cout << "skiff agent: node " << first_node << " running" << std::endl;
    }
    std::unique_ptr<kubelet::ServingCertificateManager> serving;
    if (kubelet_api && flags.rotate_server_certificates && !stopping()) {
      kubelet::ServingCertificateManagerOptions o;
      o.node_name = first_node;
      o.cert_dir = cert_dir;
      o.dns_names = [&] { return std::vector<std::string>{hostname()}; };
      o.ip_addresses = [&] {
        std::vector<std::string> ips;
        if (const std::string ip = real->agent->node().nodeIp(); !ip.empty()) ips.push_back(ip);
        return ips;
      };
      o.on_certificate = [&](const std::string& cert, const std::string& key) {
        kubelet_api->setServingCertificate(cert, key);
      };
      serving = std::make_unique<kubelet::ServingCertificateManager>(*client, o);
      serving->start();
    }
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return stop_requested; });
    }
    serving.reset();
    proxy.reset();
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    rc = 1;
  }
  if (!stopping()) pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  if (nodes) nodes->stop();
  if (real) real->agent->stop();
  return rc;
}

}  // namespace

void addAgentCommand(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<AgentFlags>();
  auto* cmd = app.add_subcommand("agent", "Run the node agent: kubelet and node proxier");
  cmd->add_option("--kubeconfig", flags->kubeconfig,
                  "The apiserver to reach and the node's credential (a kubeconfig file; `skiff "
                  "node-kubeconfig NODE` writes one with the node's client certificate, whose "
                  "node is then the default --node-name)")
      ->required();
  cmd->add_option("--bootstrap-kubeconfig", flags->bootstrap_kubeconfig,
                  "TLS bootstrap: when --kubeconfig is missing or its certificate expired, get a "
                  "node certificate through a CSR made with this kubeconfig's bootstrap token "
                  "(skiff bootstrap-kubeconfig) and write --kubeconfig");
  cmd->add_option("--server", flags->server,
                  "Apiservers to use instead of the kubeconfig's server, comma-separated: a call "
                  "moves to the next one when its server is unreachable or answers 5xx");
  cmd->add_option("--node-name", flags->node_name,
                  "This node's name (default: the hostname; with --hollow-nodes N the prefix of "
                  "NAME-0 .. NAME-N-1, default hollow-node-)");
  cmd->add_option("--data-dir", flags->data_dir, "The agent's state")->capture_default_str();
  cmd->add_option("--local-storage-dir", flags->local_storage_dir,
                  "Where local-path PersistentVolumes of this node live (the skiff.io/local-path "
                  "provisioner's directory, announced in the Node annotation "
                  "skiff.io/local-storage-dir)")
      ->capture_default_str();
  cmd->add_option("--pod-cidr", flags->pod_cidr,
                  "Pod addresses when the Node has no spec.podCIDR (with --hollow-nodes: the "
                  "range each node takes a /24 of, default 10.244.0.0/16)");
  cmd->add_option("--node-ip", flags->node_ip,
                  "The InternalIP to report (default: the default route's source address)");
  cmd->add_flag("--hollow", flags->hollow, "Run a hollow node: no containers, pods become Ready");
  cmd->add_option("--hollow-nodes", flags->hollow_nodes, "Run N hollow nodes in this process");
  cmd->add_option("--proxy-mode", flags->proxy_mode,
                  "The service data path this agent programs: ebpf, dpdk (skiff dataplane, over "
                  "--dataplane-socket) or none (default: ebpf, none for hollow nodes)");
  cmd->add_option("--dataplane-socket", flags->dataplane_socket,
                  "skiff dataplane's control socket (--proxy-mode dpdk)")
      ->capture_default_str();
  cmd->add_option("--proxy-metrics-bind-address", flags->proxy_metrics_bind,
                  "HOST:PORT of the proxier's /metrics (kube-proxy's --metrics-bind-address; "
                  "port 0: any free port; 0: off)")
      ->capture_default_str();
  cmd->add_option("--proxy-healthz-bind-address", flags->proxy_healthz_bind,
                  "HOST:PORT of the proxier's /healthz and /livez (kube-proxy's "
                  "--healthz-bind-address; 0: off)")
      ->capture_default_str();
  cmd->add_option("--cgroup-parent", flags->cgroup_parent,
                  "The pods' cgroup parent, under the cgroup v2 mount (the socket LB attaches "
                  "there, never to the root cgroup)")
      ->capture_default_str();
  cmd->add_option("--pod-max-pids", flags->pod_max_pids,
                  "The most processes a pod's cgroup may hold (pids.max; -1: unlimited)")
      ->capture_default_str();
  cmd->add_option("--bpf-pin-dir", flags->bpf_pin_dir,
                  "Where the eBPF data path pins its maps and links (kept across restarts; "
                  "skiff lb reads them; skiff cleanup removes them)")
      ->capture_default_str();
  cmd->add_option("--lb-ring-memory-mb", flags->lb_ring_memory_mb,
                  "Kernel memory for the eBPF data path's Maglev rings, preallocated (4 KiB per "
                  "ring of a service of up to 10 backends, 64 KiB at 82 to 163 backends)")
      ->check(CLI::Range(1, 8192))
      ->capture_default_str();
  cmd->add_option("--lb-maglev-table-size", flags->lb_maglev_table_size,
                  "Maglev table size of every service, a prime up to 65537 (Cilium's "
                  "--bpf-lb-maglev-table-size; e.g. 16381); services with more backends, and all "
                  "of them with 0, get the size for their backend count (1021 up to 10 backends, "
                  "2039, 4093, 8191, 16381, 32749, 65537). Every node must use the same value")
      ->capture_default_str();
  cmd->add_option("--lb-nodeport-devices", flags->lb_nodeport_devices,
                  "Interfaces whose NodePort, externalIP and LoadBalancer traffic the eBPF data "
                  "path balances at XDP or tc (comma-separated; none: traffic arriving from "
                  "outside is not translated by it)")
      ->delimiter(',');
  cmd->add_option("--lb-nodeport-mode", flags->lb_nodeport_mode,
                  "How it attaches there: xdp (native XDP, fail if the driver lacks it), tc "
                  "(tc ingress + egress, TCX links), auto (native XDP, else tc)")
      ->check(CLI::IsMember({"xdp", "tc", "auto"}))
      ->capture_default_str();
  cmd->add_option("--lb-mode", flags->lb_mode,
                  "How node-port traffic reaches backends on other nodes: snat (DNAT, replies "
                  "return through this node) or dsr (the client's packet in IPIP, the backend's "
                  "node answers the client directly; IPv4; every node needs --lb-mode dsr and tc "
                  "on the interfaces its replies leave by)")
      ->check(CLI::IsMember({"snat", "dsr"}))
      ->capture_default_str();
  cmd->add_option("--image-root", flags->image_root, "The image store (as `skiff image --root`)")
      ->capture_default_str();
  cmd->add_option("--pod-log-dir", flags->log_dir, "Container logs")->capture_default_str();
  cmd->add_option("--kubelet-port", flags->kubelet_port, "The kubelet API's port (0: off)")
      ->capture_default_str();
  cmd->add_option("--kubelet-cert-file,--tls-cert-file", flags->kubelet_cert_file,
                  "The kubelet API's serving certificate (PEM); without it, loopback HTTP only");
  cmd->add_option("--kubelet-key-file,--tls-private-key-file", flags->kubelet_key_file,
                  "Its private key (PEM)");
  cmd->add_option("--cert-dir", flags->cert_dir,
                  "The kubelet API's certificates (default DATA_DIR/pki): the rotated one "
                  "(--rotate-server-certificates) and, given without --kubelet-cert-file and "
                  "without rotation, a self-signed kubelet.crt/kubelet.key made there once and "
                  "kept, served over HTTPS on all addresses, as the kubelet does");
  cmd->add_flag("--rotate-server-certificates", flags->rotate_server_certificates,
                "Get the kubelet API's serving certificate from the cluster: a CSR for "
                "kubernetes.io/kubelet-serving with this node's host name and address, which an "
                "administrator approves (kubectl certificate approve); served without a restart "
                "once issued, renewed at 80% of its lifetime, kept in DATA_DIR/pki");
  cmd->add_option("--client-ca-file", flags->client_ca_file,
                  "CA bundle (PEM) whose client certificates the kubelet API accepts, CN the "
                  "user and O the groups (default: the kubeconfig's cluster CA)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--kubelet-api-token-file", flags->kubelet_api_token_file,
                  "Deprecated and ignored: the apiserver authenticates with its client "
                  "certificate (DATA_DIR/pki/kubelet-client.crt)");
  cmd->add_option("--shutdown-grace-period", flags->shutdown_grace_period,
                  "Graceful node shutdown (the kubelet's shutdownGracePeriod): hold a "
                  "systemd-logind delay lock and, when the node shuts down, stop its pods within "
                  "this long, regular pods first, then critical ones (0: off)")
      ->capture_default_str();
  cmd->add_option("--shutdown-grace-period-critical-pods",
                  flags->shutdown_grace_period_critical_pods,
                  "The part of --shutdown-grace-period kept for critical pods (priority class "
                  "system-node-critical or system-cluster-critical)")
      ->capture_default_str();
  cmd->add_option("--logind-conf-dir", flags->logind_conf_dir,
                  "Where graceful node shutdown writes the logind drop-in 99-kubelet.conf that "
                  "raises InhibitDelayMaxSec to --shutdown-grace-period when it is lower "
                  "(systemd-logind is then reloaded)")
      ->capture_default_str();
  cmd->add_option("--bridge", flags->bridge, "The node bridge pods' veths join")
      ->capture_default_str();
  cmd->add_option("--run-dir", flags->run_dir,
                  "Runtime state: runc's root, container state, pod network namespaces")
      ->capture_default_str();
  cmd->add_option("--node-status-update-frequency", flags->status_update_s, "Seconds")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  cmd->add_option("--node-lease-renew-interval", flags->lease_renew_s, "Seconds")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  cmd->callback([flags, &exit_code] {
    sigset_t signals = blockStopSignals();
    try {
      exit_code = runAgent(*flags, signals);
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      exit_code = 1;
    }
  });
}

std::string writeNodeKubeconfig(const std::string& data_dir, const std::string& node,
                                const std::string& server, std::string path) {
  apiserver::NodeCertificate cert = apiserver::ensureNodeCertificate(data_dir, node);
  if (path.empty()) path = apiserver::pkiPaths(data_dir).nodes_dir + "/" + node + ".kubeconfig";
  client::writeKubeconfig(path, {.user_name = std::string(apiserver::kNodeUserPrefix) + node,
                                 .server = server,
                                 .ca_pem = cert.ca_cert_pem,
                                 .client_cert_pem = cert.pem.cert_pem,
                                 .client_key_pem = cert.pem.key_pem});
  return path;
}

void addNodeKubeconfigCommand(CLI::App& app, int& exit_code) {
  struct Flags {
    std::string node;
    std::string data_dir = "/var/lib/skiff";
    std::string server;
    std::string output;
    std::vector<std::string> node_ips;
  };
  auto flags = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand(
      "node-kubeconfig",
      "On the server's machine: issue a node's client certificate (CN system:node:NODE, O "
      "system:nodes) from the cluster CA and write the kubeconfig `skiff agent` joins with");
  cmd->add_option("node", flags->node, "The node's name (its Node object)")->required();
  cmd->add_option("--data-dir", flags->data_dir, "The server's data directory (its pki/)")
      ->capture_default_str();
  cmd->add_option("--server", flags->server,
                  "The apiserver URL the node reaches (default: DATA_DIR/admin.kubeconfig's)");
  cmd->add_option("-o,--output", flags->output,
                  "Where to write it (default: DATA_DIR/pki/nodes/NODE.kubeconfig)");
  cmd->add_option("--node-ip", flags->node_ips,
                  "Also issue the kubelet API's serving certificate "
                  "(DATA_DIR/pki/nodes/NODE-kubelet.{crt,key}) for these addresses of the node, "
                  "for logs and exec through the apiserver");
  cmd->callback([flags, &exit_code] {
    try {
      std::string server = flags->server;
      const std::string admin = flags->data_dir + "/admin.kubeconfig";
      if (server.empty()) {
        if (!std::filesystem::exists(admin)) {
          throw std::runtime_error("no " + admin + " (has skiff server run on --data-dir " +
                                   flags->data_dir + "?): give --server URL");
        }
        server = client::loadClientConfig({.kubeconfig = admin}).server;
      }
      const auto paths = apiserver::pkiPaths(flags->data_dir);
      if (!std::filesystem::exists(paths.ca_key)) {
        throw std::runtime_error(paths.ca_key +
                                 ": missing: run this where skiff server keeps its --data-dir");
      }
      std::string path = writeNodeKubeconfig(flags->data_dir, flags->node, server, flags->output);
      std::cout << "node " << flags->node << ": kubeconfig " << path
                << " (user system:node:" << flags->node << ", group system:nodes, server " << server
                << ")\n";
      std::string serving;
      if (!flags->node_ips.empty()) {
        auto cert = apiserver::issueKubeletServingCertificate(flags->data_dir, flags->node,
                                                              flags->node_ips);
        std::cout << "node " << flags->node << ": kubelet API certificate " << cert.cert_file
                  << "\n";
        serving = " --kubelet-cert-file " + cert.cert_file + " --kubelet-key-file " + cert.key_file;
      }
      std::cout << "  skiff agent --kubeconfig " << path << serving << "\n";
      exit_code = 0;
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      exit_code = 1;
    }
  });
}

}  // namespace skiff::cli
