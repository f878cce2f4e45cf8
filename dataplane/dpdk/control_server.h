#pragma once

// The control thread's servers: the local control socket (unix stream, length-prefixed
// protobuf Request/Response, see proto/skiff/dpdk/control.proto) and a minimal HTTP/1.1 server
// for GET /metrics (Prometheus text). One thread polls both; each request is answered before the
// next is read, so the handlers need no locking against each other. A client that stalls is cut
// off after a timeout; a malformed request gets an error response and the server stays up.

#include <atomic>
#include <functional>
#include <string>

#include "dataplane/status.h"
#include "skiff/dpdk/control.pb.h"

namespace skiff::dataplane::dpdk {

namespace v1 = ::skiff::dpdk::v1;

struct ControlHandlers {
  std::function<v1::Response(const v1::Request&)> request;
  std::function<std::string()> metrics;
};

class ControlServer {
 public:
  ~ControlServer();

  // Binds `socketPath` (replacing a stale socket file; mode 0600) and, if `metricsPort` >= 0,
  // `metricsAddress`:`metricsPort` (0 picks a free port).
  static Result<std::unique_ptr<ControlServer>> listen(const std::string& socketPath,
                                                       const std::string& metricsAddress,
                                                       int metricsPort, ControlHandlers handlers);

  // Serves until `stop` is set (checked every 100 ms).
  void run(const std::atomic<bool>& stop);
  // Serves whatever is pending, waiting up to `timeoutMs` for the first event.
  void poll(int timeoutMs);

  int metricsPort() const { return metricsPort_; }
  const std::string& socketPath() const { return socketPath_; }

 private:
  ControlServer() = default;
  void serveControl(int fd);
  void serveHttp(int fd);

  std::string socketPath_;
  int unixFd_ = -1;
  int httpFd_ = -1;
  int metricsPort_ = -1;
  ControlHandlers handlers_;
};

}  // namespace skiff::dataplane::dpdk
