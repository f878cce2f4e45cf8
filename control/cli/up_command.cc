#include "control/cli/up_command.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "control/apiserver/pki.h"
#include "control/cli/agent_command.h"
#include "control/cli/cleanup.h"
#include "control/cli/cli_context.h"
#include "control/cli/control_plane.h"
#include "control/cli/stop_signals.h"
#include "control/client/kubeconfig.h"
#include "control/client/rest_client.h"
#include "kubelet/agent/agent.h"
#include "kubelet/network/ip_allocator.h"

namespace skiff::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct UpFlags {
  std::string data_dir = "/var/lib/skiff";
  std::string bind_address = "127.0.0.1";
  std::string advertise_address;  // default: the pod bridge's gateway
  uint16_t port = 6443;
  std::string service_cidr = "10.96.0.0/16";
  std::string pod_cidr = "10.244.0.0/24";
  std::string node_name;
  std::string proxy_mode = "ebpf";
  int ready_timeout_s = 120;
  std::string image_root = "/var/lib/skiff/kubelet/images";
  // Names the node takes on this machine; tests give their own so that runs never meet.
  std::string bridge = "skiff0";
  std::string cgroup_parent = "/skiff";
  std::string run_dir = "/run/skiff";
  std::string bpf_pin_dir = "/sys/fs/bpf/skiff";
  int kubelet_port = 10250;
  bool keep_pods = false;
  int shutdown_grace_s = 10;
  std::string event_ttl = "1h";
  std::string encryption_provider_config;
  bool encryption_provider_config_automatic_reload = false;
};

// Holds DIR/skiff-up.lock for the life of the process, so that a second `skiff up` on the same
// data dir (store, pods) or run dir (runc state, network namespaces) says who has it instead of
// fighting over them. The kernel drops the lock when the process dies: a crash never leaves it
// stale.
class DirLock {
 public:
  DirLock(const std::string& dir, const std::string& flag) {
    std::string path = dir + "/skiff-up.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
    }
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      char buf[32] = {};
      ssize_t n = ::pread(fd_, buf, sizeof(buf) - 1, 0);
      std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "?";
      while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' '))
        pid.pop_back();
      ::close(fd_);
      fd_ = -1;
      throw std::runtime_error("another skiff up (pid " + pid + ") is running on " + dir +
                               ": stop it first (Ctrl-C, or kill " + pid +
                               "), or give this one another " + flag);
    }
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
      // The lock holds either way; the pid is only for the message above.
    }
  }
  ~DirLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  int fd_ = -1;
};

std::string hostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  std::string name = buf;
  for (auto& c : name)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

std::string seconds(Clock::duration d) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(1)
      << std::chrono::duration_cast<std::chrono::milliseconds>(d).count() / 1000.0 << " s";
  return out.str();
}

// What a node needs from this machine, checked before anything starts so that a missing piece is
// named up front rather than as a failed pod later.
std::vector<std::string> missingNodeFeatures(const UpFlags& flags) {
  std::vector<std::string> missing;
  if (::geteuid() != 0) missing.push_back("root (network namespaces, cgroups and BPF need it)");
  // Unified (cgroup v2 at /sys/fs/cgroup) or hybrid (v2 at /sys/fs/cgroup/unified) both work.
  if (!std::filesystem::exists("/sys/fs/cgroup/cgroup.controllers") &&
      !std::filesystem::exists("/sys/fs/cgroup/unified/cgroup.controllers")) {
    missing.push_back("a cgroup v2 hierarchy (at /sys/fs/cgroup or /sys/fs/cgroup/unified)");
  }
  bool runc = false;
  for (const char* dir : {"/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin"}) {
    if (::access((std::string(dir) + "/runc").c_str(), X_OK) == 0) runc = true;
  }
  if (!runc) missing.push_back("runc (apt-get install runc)");
  if (flags.proxy_mode == "ebpf" && !std::filesystem::exists("/sys/fs/bpf")) {
    missing.push_back("the BPF filesystem at /sys/fs/bpf (or run with --proxy-mode none)");
  }
  return missing;
}

// The supervised `skiff agent` child.
class AgentProcess {
 public:
  explicit AgentProcess(std::vector<std::string> args) : args_(std::move(args)) {}
  ~AgentProcess() { stop(std::chrono::seconds(30)); }

  void start() {
    std::vector<char*> argv;
    for (auto& a : args_)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
      // The child gets SIGINT/SIGTERM delivered normally again (the parent blocks them).
      sigset_t all;
      sigemptyset(&all);
      pthread_sigmask(SIG_SETMASK, &all, nullptr);
      ::setpgid(0, 0);  // Ctrl-C reaches the parent only; it stops the agent in order.
      ::execv("/proc/self/exe", argv.data());
      std::fprintf(stderr, "skiff up: cannot run skiff agent: %s\n", std::strerror(errno));
      ::_exit(127);
    }
    pid_ = pid;
    started_ = Clock::now();
  }

  // The exit status if the child has exited.
  std::optional<int> poll() {
    if (pid_ <= 0) return std::nullopt;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return std::nullopt;
    pid_ = -1;
    return status;
  }

  void stop(std::chrono::seconds grace) {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    auto deadline = Clock::now() + grace;
    while (Clock::now() < deadline) {
      if (poll()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  pid_t pid() const { return pid_; }
  Clock::time_point started() const { return started_; }

 private:
  std::vector<std::string> args_;
  pid_t pid_ = -1;
  Clock::time_point started_;
};

std::string describeExit(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// Waits until the Node reports Ready=True; false on timeout or stop.
bool waitNodeReady(client::Client& client, const std::string& node, Clock::time_point deadline,
                   AgentProcess& agent, sigset_t& signals, std::string& last) {
  const auto& nodes = resolveType("nodes");
  while (Clock::now() < deadline) {
    timespec zero{0, 0};
    if (sigtimedwait(&signals, nullptr, &zero) > 0) return false;
    if (auto status = agent.poll()) {
      last = "the agent exited (" + describeExit(*status) + ")";
      return false;
    }
    try {
      api::Value n = client.get(nodes, "", node);
      if (const api::Value* conditions = n.find("status")) {
        if (const api::Value* list = conditions->find("conditions"); list && list->isArray()) {
          for (const auto& c : list->items()) {
            const api::Value* type = c.find("type");
            const api::Value* status = c.find("status");
            if (type && type->isString() && type->text() == "Ready" && status &&
                status->isString()) {
              if (status->text() == "True") return true;
              const api::Value* message = c.find("message");
              last = "Ready=" + status->text() +
                     (message && message->isString() ? ": " + message->text() : "");
            }
          }
        }
      }
    } catch (const client::ApiError& e) {
      last = e.what();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return false;
}

int runUp(const UpFlags& flags) {
  sigset_t signals = blockStopSignals();
  if (flags.proxy_mode != "ebpf" && flags.proxy_mode != "none") {
    std::cerr << "error: --proxy-mode \"" << flags.proxy_mode << "\": want ebpf or none\n";
    return 1;
  }
  auto missing = missingNodeFeatures(flags);
  if (!missing.empty()) {
    std::cerr << "error: this machine cannot run a Skiff node; missing:\n";
    for (const auto& m : missing)
      std::cerr << "  - " << m << "\n";
    return 1;
  }
  std::error_code ec;
  std::filesystem::create_directories(flags.data_dir, ec);
  if (ec) {
    std::cerr << "error: cannot create --data-dir " << flags.data_dir << ": " << ec.message()
              << "\n";
    return 1;
  }
  DirLock data_lock(flags.data_dir, "--data-dir");
  std::filesystem::create_directories(flags.run_dir, ec);
  if (ec) {
    std::cerr << "error: cannot create --run-dir " << flags.run_dir << ": " << ec.message() << "\n";
    return 1;
  }
  DirLock run_lock(flags.run_dir, "--run-dir (and --bridge, --cgroup-parent)");
  const auto t0 = Clock::now();
  std::string node = flags.node_name.empty() ? hostName() : flags.node_name;
  std::string agent_dir = flags.data_dir + "/agent";

  std::cout << "[1/4] control plane: apiserver on the embedded store in " << flags.data_dir
            << std::endl;
  ControlPlaneOptions plane_options;
  plane_options.apiserver.data_dir = flags.data_dir;
  plane_options.apiserver.bind_address = flags.bind_address;
  plane_options.apiserver.port = flags.port;
  plane_options.apiserver.service_cidr = flags.service_cidr;
  // Pods (in their network namespaces behind the pod bridge) reach the apiserver through the
  // kubernetes Service at the bridge's gateway address, where it listens too (bound before the
  // agent makes the bridge). Not 0.0.0.0: the machine's external interfaces stay out of it.
  std::string advertise = flags.advertise_address;
  try {
    if (advertise.empty()) {
      advertise =
          kubelet::network::formatIpv4(kubelet::network::Ipv4Cidr::parse(flags.pod_cidr).gateway());
    }
  } catch (const std::exception& e) {
    std::cerr << "error: --pod-cidr: " << e.what() << "\n";
    return 1;
  }
  plane_options.apiserver.advertise_address = advertise;
  if (advertise != flags.bind_address && flags.bind_address != "0.0.0.0") {
    plane_options.apiserver.extra_bind_addresses = {advertise};
  }
  plane_options.apiserver.event_ttl = parseEventTtl(flags.event_ttl);
  plane_options.apiserver.encryption_provider_config = flags.encryption_provider_config;
  plane_options.apiserver.encryption_provider_config_automatic_reload =
      flags.encryption_provider_config_automatic_reload;
  plane_options.apiserver.service_account_admission = true;
  std::unique_ptr<ControlPlane> plane;
  try {
    plane = std::make_unique<ControlPlane>(plane_options);
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (what.find("in use") != std::string::npos) {
      std::cerr << "error: " << flags.bind_address << ":" << flags.port
                << " is in use (another apiserver?): " << what
                << "; stop it or choose another --secure-port\n";
    } else {
      std::cerr << "error: the control plane did not start: " << what << "\n";
    }
    return 1;
  }
  const std::string url = plane->url();
  std::cout << "      serving " << url << " (pods: https://" << advertise
            << url.substr(url.rfind(':')) << " as https://kubernetes.default), admin kubeconfig "
            << plane->adminKubeconfig() << " (" << seconds(Clock::now() - t0) << ")" << std::endl;
  std::cout << "[2/4] control loops: controller manager, scheduler, EndpointSlice controller"
            << std::endl;

  // The agent is a kubelet with its own identity, as in Kubernetes: a client certificate for
  // system:node:NODE (group system:nodes) from the cluster CA, so the Node authorizer and
  // NodeRestriction decide what it may read and write; the admin token stays with the user.
  std::string node_kubeconfig;
  try {
    node_kubeconfig = writeNodeKubeconfig(flags.data_dir, node, url);
  } catch (const std::exception& e) {
    std::cerr << "error: node " << node << "'s credentials: " << e.what() << "\n";
    return 1;
  }
  // clang-format off
  std::vector<std::string> agent_args = {"skiff", "agent",
                                         "--kubeconfig", node_kubeconfig,
                                         "--node-name", node,
                                         "--data-dir", agent_dir,
                                         "--pod-cidr", flags.pod_cidr,
                                         "--proxy-mode", flags.proxy_mode,
                                         "--image-root", flags.image_root,
                                         "--bridge", flags.bridge,
                                         "--cgroup-parent", flags.cgroup_parent,
                                         "--run-dir", flags.run_dir,
                                         "--bpf-pin-dir", flags.bpf_pin_dir};
  // clang-format on
  if (flags.kubelet_port > 0) {
    std::string node_ip = kubelet::readMachineInfo(agent_dir).internal_ip;
    // The kubelet API serves HTTPS on the node's address with a certificate from the cluster CA,
    // which the apiserver verifies when it proxies logs and exec to it: issued afresh on every
    // start (a millisecond), for the node's current address. The apiserver presents
    // DATA_DIR/pki/kubelet-client.crt, which the agent checks against the node kubeconfig's CA.
    std::vector<std::string> ips;
    if (!node_ip.empty()) ips.push_back(node_ip);
    auto serving = apiserver::issueKubeletServingCertificate(flags.data_dir, node, ips);
    const std::string& cert = serving.cert_file;
    const std::string& key = serving.key_file;
    agent_args.insert(agent_args.end(), {"--kubelet-port", std::to_string(flags.kubelet_port),
                                         "--kubelet-cert-file", cert, "--kubelet-key-file", key});
  } else {
    agent_args.insert(agent_args.end(), {"--kubelet-port", "0"});
  }
  std::cout << "[3/4] node " << node << ": kubelet (runc) as system:node:" << node << " ("
            << node_kubeconfig << "), pods on " << flags.pod_cidr
            << (flags.proxy_mode == "ebpf" ? ", eBPF service load balancer" : "") << std::endl;
  AgentProcess agent(agent_args);
  agent.start();

  client::LoadOptions load;
  load.kubeconfig = plane->adminKubeconfig();
  client::ClientPtr client = client::makeRestClient(client::loadClientConfig(load));
  std::string last;
  bool ready = waitNodeReady(*client, node, t0 + std::chrono::seconds(flags.ready_timeout_s), agent,
                             signals, last);
  int rc = 0;
  if (!ready) {
    std::cerr << "error: node " << node << " did not become Ready"
              << (last.empty() ? "" : ": " + last) << " (agent log above)\n";
    rc = 1;
  } else {
    std::cout << "[4/4] node " << node << " Ready: cluster up in " << seconds(Clock::now() - t0)
              << "\n\n"
              << "  export KUBECONFIG=" << plane->adminKubeconfig() << "\n"
              << "  skiff apply -f examples/          # or kubectl apply -f examples/\n"
              << "  skiff get pods,services -o wide\n"
              << "  skiff lb exec -- wget -qO- http://CLUSTER-IP/   # a host process reaching a "
                 "ClusterIP\n"
              << "  skiff lb backends                 # per-backend counters\n\n"
              << "Ctrl-C stops the cluster and removes its pods, network and load balancer."
              << std::endl;
    // Supervise: restart a crashed agent with a back-off; stop on a signal.
    std::chrono::seconds backoff(1);
    while (true) {
      timespec tick{0, 200 * 1000 * 1000};
      int sig = sigtimedwait(&signals, nullptr, &tick);
      if (sig > 0) {
        std::cout << "skiff up: " << stopSignalName(sig) << ", shutting down" << std::endl;
        break;
      }
      if (auto status = agent.poll()) {
        bool ran_long = Clock::now() - agent.started() > std::chrono::minutes(1);
        if (ran_long) backoff = std::chrono::seconds(1);
        std::cerr << "skiff up: the agent exited (" << describeExit(*status) << "); restarting in "
                  << backoff.count() << " s" << std::endl;
        timespec wait{static_cast<time_t>(backoff.count()), 0};
        if (sigtimedwait(&signals, nullptr, &wait) > 0) break;
        backoff = std::min(backoff * 2, std::chrono::seconds(30));
        agent.start();
      }
    }
  }
  std::cout << "skiff up: stopping the agent" << std::endl;
  agent.stop(std::chrono::seconds(30));
  if (!flags.keep_pods) {
    std::cout << "skiff up: removing pods, pod network and load balancer" << std::endl;
    CleanupOptions cleanup;
    cleanup.agent_data_dir = agent_dir;
    cleanup.pod_cidr = flags.pod_cidr;
    cleanup.image_root = flags.image_root;
    cleanup.bridge = flags.bridge;
    cleanup.cgroup_parent = flags.cgroup_parent;
    cleanup.run_dir = flags.run_dir;
    cleanup.bpf_pin_dir = flags.bpf_pin_dir;
    cleanup.shutdown_grace = std::chrono::seconds(flags.shutdown_grace_s);
    for (const auto& problem : cleanupNode(cleanup, std::cout))
      std::cerr << "skiff up: cleanup: " << problem << std::endl;
  }
  std::cout << "skiff up: stopping the control plane" << std::endl;
  client.reset();
  plane->stop();
  return rc;
}

}  // namespace

void addUpCommand(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<UpFlags>();
  auto* cmd = app.add_subcommand(
      "up", "Run a single-node cluster on this machine: control plane, kubelet, load balancer");
  cmd->add_option("--data-dir", flags->data_dir,
                  "Where the cluster lives (store, PKI, admin.kubeconfig, agent state)")
      ->capture_default_str();
  cmd->add_option("--bind-address", flags->bind_address, "The apiserver's address")
      ->capture_default_str();
  cmd->add_option("--secure-port", flags->port, "The apiserver's port")->capture_default_str();
  cmd->add_option("--advertise-address", flags->advertise_address,
                  "Where pods reach the apiserver (the kubernetes Service's endpoint; the "
                  "apiserver listens there too). Default: the pod bridge's gateway, the first "
                  "address of --pod-cidr");
  cmd->add_option("--service-cluster-ip-range", flags->service_cidr, "Where ClusterIPs come from")
      ->capture_default_str();
  cmd->add_option("--pod-cidr", flags->pod_cidr, "The node's pod addresses")->capture_default_str();
  cmd->add_option("--node-name", flags->node_name, "The node's name (default: the hostname)");
  cmd->add_option("--proxy-mode", flags->proxy_mode, "The service data path: ebpf or none")
      ->capture_default_str();
  cmd->add_option("--ready-timeout", flags->ready_timeout_s,
                  "Seconds to wait for the node to become Ready")
      ->capture_default_str();
  cmd->add_option("--image-root", flags->image_root,
                  "The node's image store (as `skiff image --root`)")
      ->capture_default_str();
  cmd->add_option("--bridge", flags->bridge, "The node bridge pods' veths join")
      ->capture_default_str();
  cmd->add_option("--cgroup-parent", flags->cgroup_parent,
                  "The pods' cgroup parent (the socket load balancer attaches there)")
      ->capture_default_str();
  cmd->add_option("--run-dir", flags->run_dir, "Runtime state (runc, network namespaces)")
      ->capture_default_str();
  cmd->add_option("--bpf-pin-dir", flags->bpf_pin_dir, "Where the load balancer pins its maps")
      ->capture_default_str();
  cmd->add_option("--kubelet-port", flags->kubelet_port,
                  "The kubelet API's port, for logs (0: off)")
      ->capture_default_str();
  cmd->add_option("--event-ttl", flags->event_ttl,
                  "How long Events are kept after their last write (0: until deleted)")
      ->check(checkEventTtl, "DURATION")
      ->capture_default_str();
  cmd->add_option("--encryption-provider-config", flags->encryption_provider_config,
                  "EncryptionConfiguration file (apiserver.config.k8s.io/v1): the resources it "
                  "names (secrets, ...) are stored encrypted with aescbc or aesgcm")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--encryption-provider-config-automatic-reload",
                flags->encryption_provider_config_automatic_reload,
                "Read --encryption-provider-config again every minute and take a changed, valid "
                "configuration without a restart");
  cmd->add_flag("--keep-pods", flags->keep_pods,
                "On exit leave pods running (a later skiff up adopts them) instead of removing "
                "them with their network");
  cmd->add_option("--shutdown-grace-period", flags->shutdown_grace_s,
                  "On exit every container gets SIGTERM, then SIGKILL after its pod's "
                  "terminationGracePeriodSeconds capped by this many seconds (all pods at once; "
                  "0: SIGKILL at once)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->callback([flags, &exit_code] {
    try {
      exit_code = runUp(*flags);
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      exit_code = 1;
    }
  });
}

}  // namespace skiff::cli
