#pragma once

// Helpers of the privileged tests that build network namespaces and veth pairs of their own
// (tc_netns_test, dsr_netns_test, xdp_veth_test): shell commands, entering a namespace, socket
// addresses, ethtool flags, child processes.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <string>
#include <utility>

#include "dataplane/address.h"

namespace skiff::ebpf::netns {

inline dataplane::IpAddress ip(const char* text) {
  return *dataplane::IpAddress::parse(text);
}

// Runs `command` with its output discarded; true when it exits 0.
inline bool sh(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
}

inline bool writeFile(const std::string& path, const std::string& value) {
  std::ofstream f(path);
  f << value;
  return static_cast<bool>(f);
}

// Moves the calling thread into the named namespace (`ip netns add NAME`).
inline bool enterNetns(const std::string& name) {
  const int fd = ::open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::setns(fd, CLONE_NEWNET) == 0;
  ::close(fd);
  return ok;
}

inline sockaddr_in addr4(const char* address, uint16_t port) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(port);
  inet_pton(AF_INET, address, &in.sin_addr);
  return in;
}

inline std::string text(const sockaddr_in& a) {
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a.sin_addr, buf, sizeof(buf));
  return buf;
}

// Sets ethtool flags of `ifname` in the current namespace, each {ETHTOOL_S..., on}: checksum
// offload (ETHTOOL_STXCSUM, ETHTOOL_SRXCSUM), TSO (ETHTOOL_STSO), GRO (ETHTOOL_SGRO).
inline bool setEthtool(const char* ifname, std::initializer_list<std::pair<uint32_t, bool>> flags) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  bool ok = fd >= 0;
  for (const auto& [cmd, on] : flags) {
    ethtool_value v{};
    v.cmd = cmd;
    v.data = on ? 1 : 0;
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
    ifr.ifr_data = reinterpret_cast<char*>(&v);
    ok = ok && ::ioctl(fd, SIOCETHTOOL, &ifr) == 0;
  }
  if (fd >= 0) ::close(fd);
  return ok;
}

// The exit code of child `pid` (128 + the signal when a signal ended it), -1 when it is not ours.
inline int waitExit(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace skiff::ebpf::netns
