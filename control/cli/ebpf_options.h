#pragma once

// The flags of the eBPF data path that `skiff agent` and `skiff lb attach` share, turned into
// EbpfDataplaneOptions the same way for both (header-only: lb_command.cc is also built into tests
// without the rest of the CLI).

#include <net/if.h>

#include <string>
#include <vector>

#include "dataplane/status.h"
#include "ebpf/ebpf_dataplane.h"
#include "ebpf/loader.h"

namespace skiff::cli {

struct EbpfFlags {
  std::string cgroupPath;
  std::string pinDir;
  std::vector<std::string> nodePortDevices;
  std::string nodePortMode = "auto";  // xdp, tc, auto
  std::string lbMode = "snat";        // snat, dsr
  // The flags' names in errors ("--lb-nodeport-devices" for the agent).
  std::string devicesFlag = "--nodeport-devices";
  std::string modeFlag = "--nodeport-mode";
};

// Fails naming the flag: a mode that does not parse, a device that does not exist.
inline dataplane::Result<ebpf::EbpfDataplaneOptions> ebpfDataplaneOptions(const EbpfFlags& f) {
  ebpf::EbpfDataplaneOptions options;
  options.cgroupPath = f.cgroupPath;
  options.pinDir = f.pinDir;
  const auto nodePortMode = ebpf::parseNodePortMode(f.nodePortMode);
  if (!nodePortMode) {
    return dataplane::Status::failure(f.modeFlag + " " + f.nodePortMode +
                                      ": expected xdp, tc or auto");
  }
  options.nodePortMode = *nodePortMode;
  const auto lbMode = ebpf::parseLbMode(f.lbMode);
  if (!lbMode) {
    return dataplane::Status::failure("--lb-mode " + f.lbMode + ": expected snat or dsr");
  }
  options.load.lbMode = *lbMode;
  for (const std::string& dev : f.nodePortDevices) {
    const unsigned ifindex = if_nametoindex(dev.c_str());
    if (ifindex == 0) {
      return dataplane::Status::failure(f.devicesFlag + ": no interface named \"" + dev + "\"");
    }
    options.xdpIfindexes.push_back(static_cast<int>(ifindex));
  }
  return options;
}

}  // namespace skiff::cli
