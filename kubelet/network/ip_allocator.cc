#include "kubelet/network/ip_allocator.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace skiff::kubelet::network {
namespace fs = std::filesystem;

std::optional<uint32_t> parseIpv4(const std::string& text) {
  in_addr a{};
  if (::inet_pton(AF_INET, text.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

std::string formatIpv4(uint32_t ip) {
  in_addr a{};
  a.s_addr = htonl(ip);
  char buf[INET_ADDRSTRLEN];
  ::inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

Ipv4Cidr Ipv4Cidr::parse(const std::string& text) {
  const size_t slash = text.find('/');
  if (slash == std::string::npos) {
    throw std::invalid_argument("CIDR \"" + text + "\": want ADDRESS/PREFIX");
  }
  const auto ip = parseIpv4(text.substr(0, slash));
  if (!ip) throw std::invalid_argument("CIDR \"" + text + "\": not an IPv4 address");
  int prefix = -1;
  try {
    size_t used = 0;
    prefix = std::stoi(text.substr(slash + 1), &used);
    if (used != text.size() - slash - 1) prefix = -1;
  } catch (const std::exception&) {
  }
  if (prefix < 0 || prefix > 30) {
    throw std::invalid_argument("CIDR \"" + text + "\": prefix must be 0..30");
  }
  Ipv4Cidr c;
  c.prefix = prefix;
  c.network = prefix == 0 ? 0 : (*ip & (0xffffffffu << (32 - prefix)));
  return c;
}

bool Ipv4Cidr::contains(uint32_t ip) const {
  return prefix == 0 || (ip & (0xffffffffu << (32 - prefix))) == network;
}

std::string Ipv4Cidr::str() const {
  return formatIpv4(network) + "/" + std::to_string(prefix);
}

IpAllocator::IpAllocator(Ipv4Cidr cidr, std::string dir) : cidr_(cidr), dir_(std::move(dir)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw std::runtime_error("IP allocator: cannot create " + dir_ + ": " + ec.message());
}

std::optional<uint32_t> IpAllocator::find(const std::string& owner) const {
  for (const auto& [ip, o] : list()) {
    if (o == owner) return ip;
  }
  return std::nullopt;
}

std::vector<std::pair<uint32_t, std::string>> IpAllocator::list() const {
  std::vector<std::pair<uint32_t, std::string>> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    const auto ip = parseIpv4(e.path().filename().string());
    if (!ip || !cidr_.contains(*ip)) continue;
    std::ifstream in(e.path());
    std::string owner;
    std::getline(in, owner);
    out.emplace_back(*ip, owner);
  }
  std::sort(out.begin(), out.end());
  return out;
}

uint32_t IpAllocator::allocate(const std::string& owner) {
  if (owner.empty() || owner.find('\n') != std::string::npos) {
    throw std::invalid_argument("IP allocator: bad owner \"" + owner + "\"");
  }
  std::lock_guard lock(mu_);
  if (auto held = find(owner)) return *held;
  const uint32_t first = cidr_.gateway() + 1;
  const uint32_t last = cidr_.broadcast() - 1;
  if (first > last) throw std::runtime_error("podCIDR " + cidr_.str() + " has no pod addresses");
  uint32_t start = first;
  {
    std::ifstream in(dir_ + "/last");
    std::string text;
    if (std::getline(in, text)) {
      if (auto ip = parseIpv4(text); ip && *ip >= first && *ip < last) start = *ip + 1;
    }
  }
  const uint64_t count = static_cast<uint64_t>(last) - first + 1;
  for (uint64_t i = 0; i < count; ++i) {
    const uint32_t ip = first + static_cast<uint32_t>((start - first + i) % count);
    const std::string path = dir_ + "/" + formatIpv4(ip);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      if (errno == EEXIST) continue;
      throw std::runtime_error("IP allocator: create " + path + ": " + std::strerror(errno));
    }
    const std::string line = owner + "\n";
    const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                    ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) {
      ::unlink(path.c_str());
      throw std::runtime_error("IP allocator: write " + path + ": " + std::strerror(errno));
    }
    std::ofstream(dir_ + "/last", std::ios::trunc) << formatIpv4(ip) << "\n";
    return ip;
  }
  throw std::runtime_error("podCIDR " + cidr_.str() + " is exhausted (" + std::to_string(count) +
                           " addresses in use)");
}

size_t IpAllocator::release(const std::string& owner) {
  std::lock_guard lock(mu_);
  size_t freed = 0;
  for (const auto& [ip, o] : list()) {
    if (o == owner && ::unlink((dir_ + "/" + formatIpv4(ip)).c_str()) == 0) ++freed;
  }
  return freed;
}

}  // namespace skiff::kubelet::network
