#pragma once

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "control/apiserver/server.h"
#include "control/client/client.h"
#include "control/controllers/controller_manager.h"

// The control plane one process runs for `skiff server` and `skiff up`: the apiserver on the
// embedded store (or etcd) and the control loops beside it (controller manager, scheduler,
// EndpointSlice controller), which reach the apiserver through the admin kubeconfig like any
// other client, never through the store.

namespace skiff::cli {

struct ControlPlaneOptions {
  apiserver::ApiServerOptions apiserver;
  // Comma-separated etcd client URLs; empty: the embedded SQLite store in apiserver.data_dir.
  std::string etcd_endpoints;
  // Control loops not to run: "controllers", "scheduler", "endpointslice".
  std::set<std::string> disabled;
  controllers::ControllerManagerOptions controllers;
};

// kube-apiserver's --event-ttl: a Go duration ("1h", "30m", "1h30m0s") in whole seconds, rounded
// up; 0 keeps Events until they are deleted. Throws std::invalid_argument naming the flag.
std::chrono::seconds parseEventTtl(std::string_view text);
// The same as a CLI11 check: "" when `text` is good, else the reason.
std::string checkEventTtl(const std::string& text);

class ControlPlane {
 public:
  // Starts the apiserver, then the control loops. Throws std::exception with the reason (a port in
  // use, an unreadable data dir) and leaves nothing running.
  explicit ControlPlane(ControlPlaneOptions options);
  ~ControlPlane();
  ControlPlane(const ControlPlane&) = delete;
  ControlPlane& operator=(const ControlPlane&) = delete;

  std::string url() const;
  // DATA_DIR/admin.kubeconfig; empty for a plain-HTTP test apiserver.
  std::string adminKubeconfig() const;
  // Stops the control loops, then the apiserver. Idempotent.
  void stop();

 private:
  class Loops;
  std::unique_ptr<apiserver::ApiServer> server_;
  std::unique_ptr<Loops> loops_;
};

}  // namespace skiff::cli
