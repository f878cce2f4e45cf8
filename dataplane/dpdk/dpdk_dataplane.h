#pragma once

// The Dataplane the node proxier of `skiff agent` programs when the node's data path is DPDK: a
// client of `skiff dataplane`'s local control socket. Each call is one request on a connection
// kept open between calls (and reopened once if the server restarted).

#include <string>
#include <string_view>

#include "dataplane/dataplane.h"
#include "skiff/dpdk/control.pb.h"

namespace skiff::dataplane::dpdk {

namespace v1 = ::skiff::dpdk::v1;

inline constexpr std::string_view kDefaultControlSocket = "/run/skiff/dataplane.sock";

class DpdkDataplane : public Dataplane {
 public:
  explicit DpdkDataplane(std::string socketPath = std::string(kDefaultControlSocket));
  ~DpdkDataplane() override;

  std::string_view name() const override { return "dpdk"; }
  // Validates locally first (so that a bad delta never leaves the process), then sends it.
  Status apply(const ServiceDelta& delta) override;
  Result<DataplaneStats> stats() const override;
  // Everything the data path reports (ports, lcores too).
  Result<v1::Stats> fullStats() const;

 private:
  Result<v1::Response> call(const v1::Request& req) const;

  std::string socketPath_;
  mutable int fd_ = -1;
};

}  // namespace skiff::dataplane::dpdk
