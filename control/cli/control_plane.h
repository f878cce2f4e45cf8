#pragma once

#include <memory>
#include <set>
#include <string>

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
