#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

// Pod IPs from the node's podCIDR, persisted as one file per address (CNI host-local's design):
// DIR/<ip> holds the owner (the pod sandbox id). A file is created with O_EXCL, so an address is
// never handed out twice, also across restarts and processes; DIR/last remembers where the last
// search stopped so addresses are not reused at once. The network address, the gateway (the
// first host address, the bridge's) and the broadcast address are never given.

namespace skiff::kubelet::network {

struct Ipv4Cidr {
  uint32_t network = 0;  // host byte order
  int prefix = 0;

  // "10.244.1.0/24"; throws std::invalid_argument naming the text.
  static Ipv4Cidr parse(const std::string& text);
  uint32_t gateway() const { return network + 1; }
  uint32_t broadcast() const { return network | (prefix == 32 ? 0 : (0xffffffffu >> prefix)); }
  bool contains(uint32_t ip) const;
  std::string str() const;
};

std::string formatIpv4(uint32_t ip);
std::optional<uint32_t> parseIpv4(const std::string& text);

class IpAllocator {
 public:
  IpAllocator(Ipv4Cidr cidr, std::string dir);

  // An address for `owner`; the one it already holds when it has one. Throws std::runtime_error
  // when the range is exhausted.
  uint32_t allocate(const std::string& owner);
  // Frees what `owner` holds; returns how many addresses were freed.
  size_t release(const std::string& owner);
  std::optional<uint32_t> find(const std::string& owner) const;
  // (ip, owner) of every allocation.
  std::vector<std::pair<uint32_t, std::string>> list() const;

  const Ipv4Cidr& cidr() const { return cidr_; }

 private:
  Ipv4Cidr cidr_;
  std::string dir_;
  mutable std::mutex mu_;
};

}  // namespace skiff::kubelet::network
