#include "kubelet/network/pod_network.h"

#include <sys/stat.h>

#include <filesystem>
#include <stdexcept>

#include "kubelet/images/digest.h"
#include "kubelet/network/netns.h"

namespace skiff::kubelet::network {
namespace fs = std::filesystem;

PodNetworkManager::PodNetworkManager(PodNetworkOptions options)
    : options_(std::move(options)), cidr_(Ipv4Cidr::parse(options_.pod_cidr)) {
  if (options_.bridge.empty() || options_.bridge.size() > 15) {
    throw std::invalid_argument("bridge name \"" + options_.bridge + "\": 1..15 characters");
  }
  std::error_code ec;
  fs::create_directories(options_.netns_dir, ec);
  if (ec) throw std::runtime_error("cannot create " + options_.netns_dir + ": " + ec.message());
  allocator_ = std::make_unique<IpAllocator>(cidr_, options_.ipam_dir);
}

std::string PodNetworkManager::netnsPath(const std::string& sandbox_id) const {
  return options_.netns_dir + "/" + sandbox_id;
}

std::string PodNetworkManager::hostVethName(const std::string& sandbox_id) {
  return "veth" + images::sha256Of(sandbox_id).hex.substr(0, 8);
}

void PodNetworkManager::ensureBridge() {
  std::lock_guard lock(bridge_mu_);
  const std::string& ns = options_.node_netns;
  const ProcessResult show = runInNetns(ns, {"ip", "link", "show", "dev", options_.bridge});
  if (!show.ok()) {
    mustRunInNetns(ns, {"ip", "link", "add", options_.bridge, "mtu", std::to_string(options_.mtu),
                        "type", "bridge"});
  }
  mustRunInNetns(ns, {"ip", "addr", "replace",
                      formatIpv4(cidr_.gateway()) + "/" + std::to_string(cidr_.prefix), "dev",
                      options_.bridge});
  mustRunInNetns(ns, {"ip", "link", "set", options_.bridge, "up"});
}

PodNetwork PodNetworkManager::setUp(const std::string& sandbox_id) {
  if (sandbox_id.empty() || sandbox_id.find('/') != std::string::npos ||
      sandbox_id.starts_with('.')) {
    throw std::invalid_argument("sandbox id \"" + sandbox_id + "\" is not a plain name");
  }
  ensureBridge();
  PodNetwork net;
  net.netns_path = netnsPath(sandbox_id);
  net.host_veth = hostVethName(sandbox_id);
  net.prefix = cidr_.prefix;
  net.gateway = formatIpv4(cidr_.gateway());
  const std::string& node = options_.node_netns;
  try {
    const uint32_t ip = allocator_->allocate(sandbox_id);
    net.ip = formatIpv4(ip);
    struct stat st;
    const bool exists = ::stat(net.netns_path.c_str(), &st) == 0;
    if (!exists) createNetns(net.netns_path);
    // After a restart the sandbox may be complete already.
    if (exists &&
        runInNetns(net.netns_path, {"ip", "addr", "show", "dev", "eth0"}).out.find(net.ip + "/") !=
            std::string::npos &&
        runInNetns(node, {"ip", "link", "show", "dev", net.host_veth}).ok()) {
      return net;
    }
    runInNetns(node, {"ip", "link", "del", net.host_veth});
    runInNetns(net.netns_path, {"ip", "link", "del", "eth0"});
    mustRunInNetns(node, {"ip", "link", "add", net.host_veth, "mtu", std::to_string(options_.mtu),
                          "type", "veth", "peer", "name", "eth0", "mtu",
                          std::to_string(options_.mtu), "netns", net.netns_path});
    mustRunInNetns(node, {"ip", "link", "set", net.host_veth, "master", options_.bridge, "up"});
    mustRunInNetns(net.netns_path, {"ip", "link", "set", "lo", "up"});
    mustRunInNetns(net.netns_path, {"ip", "addr", "add",
                                    net.ip + "/" + std::to_string(cidr_.prefix), "dev", "eth0"});
    mustRunInNetns(net.netns_path, {"ip", "link", "set", "eth0", "up"});
    mustRunInNetns(net.netns_path,
                   {"ip", "route", "replace", "default", "via", net.gateway, "dev", "eth0"});
    return net;
  } catch (...) {
    try {
      tearDown(sandbox_id);
    } catch (const std::exception&) {
    }
    throw;
  }
}

void PodNetworkManager::tearDown(const std::string& sandbox_id) {
  const std::string veth = hostVethName(sandbox_id);
  if (runInNetns(options_.node_netns, {"ip", "link", "show", "dev", veth}).ok()) {
    mustRunInNetns(options_.node_netns, {"ip", "link", "del", veth});
  }
  deleteNetns(netnsPath(sandbox_id));
  allocator_->release(sandbox_id);
}

}  // namespace skiff::kubelet::network
