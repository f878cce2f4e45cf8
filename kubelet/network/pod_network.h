#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "kubelet/network/ip_allocator.h"

// Pod sandboxes' networking: one network namespace per pod with loopback up and an eth0 that is
// one end of a veth pair; the other end is a port of the node bridge, whose address (the first of
// the podCIDR) is the pods' default route. The bridge lives in the "node" network namespace,
// which is a parameter: the machine's own in production, one a test made in tests.

namespace skiff::kubelet::network {

struct PodNetworkOptions {
  std::string pod_cidr;  // "10.244.1.0/24"
  std::string bridge = "skiff0";
  std::string node_netns;  // path; "" = this process's network namespace
  std::string netns_dir = "/run/skiff/netns";
  std::string ipam_dir = "/var/lib/skiff/kubelet/ipam";
  int mtu = 1500;
};

struct PodNetwork {
  std::string netns_path;
  std::string ip;  // "10.244.1.5"
  int prefix = 0;
  std::string gateway;
  std::string host_veth;  // the bridge port
};

// What the pod syncer needs of sandbox networking; PodNetworkManager implements it, unit tests
// fake it. Both methods may be called from any thread, for different sandboxes at once.
class SandboxNetwork {
 public:
  virtual ~SandboxNetwork() = default;
  // Makes (or finds, after a restart) the sandbox network of `sandbox_id`. On failure undoes what
  // it did and throws std::runtime_error.
  virtual PodNetwork setUp(const std::string& sandbox_id) = 0;
  // Removes the namespace and veth and frees the IP. Idempotent.
  virtual void tearDown(const std::string& sandbox_id) = 0;
};

class PodNetworkManager final : public SandboxNetwork {
 public:
  explicit PodNetworkManager(PodNetworkOptions options);

  PodNetwork setUp(const std::string& sandbox_id) override;
  void tearDown(const std::string& sandbox_id) override;
  // The bridge with the gateway address, up. setUp() calls it.
  void ensureBridge();

  std::string netnsPath(const std::string& sandbox_id) const;
  // "veth" + 8 hex digits of the sandbox id's sha256: stable, and short enough for IFNAMSIZ.
  static std::string hostVethName(const std::string& sandbox_id);
  IpAllocator& allocator() { return *allocator_; }

 private:
  PodNetworkOptions options_;
  Ipv4Cidr cidr_;
  std::unique_ptr<IpAllocator> allocator_;
  std::mutex bridge_mu_;
};

}  // namespace skiff::kubelet::network
