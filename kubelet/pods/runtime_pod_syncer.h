#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kubelet/images/image_manager.h"
#include "kubelet/network/pod_network.h"
#include "kubelet/pods/pod_cgroup.h"
#include "kubelet/pods/pod_syncer.h"
#include "kubelet/pods/service_env.h"
#include "kubelet/prober/prober.h"
#include "kubelet/runtime/runtime.h"
#include "kubelet/volumes/volume_manager.h"

// The PodSyncer that runs pods on this node: a sandbox per pod (network namespace, veth and IP
// from the SandboxNetwork, a cgroup below the parent), images per imagePullPolicy, volumes,
// init containers in order, then the containers, restarted per restartPolicy with Kubernetes'
// back-off (10 s doubling to 5 min, forgotten after a container ran 10 min), probes, and graceful
// termination. What it knows of each pod is persisted, so a new instance over the same root
// adopts running containers without restarting them.
//
//   ROOT/pods/<uid>/state.json                 the pod's record (containers, restarts, back-off)
//   ROOT/pods/<uid>/containers/<id>/           bundle and rootfs of one container
//   ROOT/pods/<uid>/volumes/<name>/            emptyDir, configMap, secret (volume_manager.h)
//   ROOT/pods/<uid>/etc-hosts                  the pod's /etc/hosts
//   LOG_DIR/<ns>_<name>_<uid>/<container>/<restartCount>.log   CRI-format logs
//
// Container ids are "<uid>_<container name>_<attempt>", cgroups
// "<cgroup parent>/pod<uid>/<container id>" in every hierarchy. The pod cgroup
// "<cgroup parent>/pod<uid>" is made before the pod's first container and carries the pod's
// resource config (pod_cgroup.h); it is written again after a restart of the syncer and whenever
// it went missing before a container starts.

namespace skiff::kubelet {

class PodWorker;  // one sync or terminate of one pod (runtime_pod_syncer.cc)

struct RuntimePodSyncerOptions {
  std::string node_name;
  std::string host_ip;  // status.hostIP(s)
  std::string root_dir = "/var/lib/skiff/kubelet";
  std::string log_dir = "/var/log/pods";
  std::string cgroup_parent = "/skiff";
  std::string cgroup_root = "/sys/fs/cgroup";  // where the hierarchies are mounted
  // pids.max of each pod cgroup (the kubelet's --pod-max-pids); <= 0: unlimited.
  int64_t pod_max_pids = -1;
  // imagePullPolicy for containers that give none; "" = Kubernetes' default (Always for :latest).
  std::string default_pull_policy;
  // Kubernetes' container restart back-off, and the same for image pulls.
  std::chrono::milliseconds backoff_base{10000};
  std::chrono::milliseconds backoff_max{300000};
  // A container that ran this long before it exited restarts at once, its back-off forgotten.
  std::chrono::milliseconds backoff_reset{600000};
  // Grace for containers of pods only known by UID (cleanupOrphan) and for liveness kills when
  // the pod sets no terminationGracePeriodSeconds.
  std::chrono::milliseconds default_grace{30000};
  std::chrono::milliseconds orphan_grace{2000};
  // The longest resync_after of a pod that is not finished: the syncer learns of container exits
  // only by looking (Kubernetes' PLEG relists every second).
  std::chrono::milliseconds relist_period{2000};
  volumes::VolumeManagerOptions volumes;
  // The Services whose environment variables every container gets (service_env.h); unset: none.
  // While it answers nullopt (not listed yet) containers do not start (CreateContainerConfigError,
  // retried), as Kubernetes' kubelet waits for its Service informer.
  ServiceLister services;
  // Wall clock (container start and finish times are wall clock); tests inject one.
  std::function<std::chrono::system_clock::time_point()> clock;
};

class RuntimePodSyncer final : public PodSyncer {
 public:
  // `fetcher` serves configMap and secret volumes (nullptr: pods using them fail to mount);
  // `probes` runs probes (nullptr: an ActionProber on `runtime`). All references must outlive
  // the syncer.
  RuntimePodSyncer(RuntimePodSyncerOptions options, images::ImageManager& images,
                   ContainerRuntime& runtime, network::SandboxNetwork& network,
                   volumes::VolumeSourceFetcher* fetcher, prober::ProbeRunner* probes = nullptr);
  // The production wiring: images from `store` (pulls with `registry`'s options).
  RuntimePodSyncer(RuntimePodSyncerOptions options, images::ImageStore& store,
                   ContainerRuntime& runtime, network::PodNetworkManager& network,
                   volumes::VolumeSourceFetcher* fetcher, images::RegistryOptions registry = {});
  ~RuntimePodSyncer() override;

  PodSyncResult sync(const api::core::v1::Pod& pod) override;
  PodSyncResult terminate(const api::core::v1::Pod& pod, std::chrono::milliseconds grace) override;
  std::vector<std::string> knownPodUids() override;
  void cleanupOrphan(const std::string& pod_uid) override;
  // Node shutdown: stops and releases every pod this syncer's state knows (knownPodUids()), all
  // at once, as kubelet's graceful node shutdown does. Each container runs its preStop hook
  // (exec or sleep, as its pod's last sync recorded it in the state) and gets SIGTERM, then
  // SIGKILL after
  // min(terminationGracePeriodSeconds as the pod's last sync recorded it, max_grace); a
  // max_grace of 0 kills at once (`skiff cleanup` after a crash). A container that exits ends
  // its wait then. At most `concurrency` pods release (runc delete, mounts, network, cgroups) at
  // a time. Returns the problems, one per pod that could not be released (its state is kept).
  std::vector<std::string> shutdown(std::chrono::milliseconds max_grace, int concurrency);

  // The directory of a pod's state; exists while the pod has local state.
  std::string podDir(const std::string& pod_uid) const;

  struct PodEntry;  // one pod's record and its lock (runtime_pod_syncer.cc)

 private:
  friend class PodWorker;
  std::shared_ptr<PodEntry> entryFor(const std::string& uid, bool create);
  void forget(const std::string& uid);
  std::chrono::system_clock::time_point now() const { return options_.clock(); }

  RuntimePodSyncerOptions options_;
  std::unique_ptr<images::ImageManager> owned_images_;
  images::ImageManager& images_;
  ContainerRuntime& runtime_;
  network::SandboxNetwork& network_;
  volumes::VolumeSourceFetcher* fetcher_;
  volumes::VolumeManager volumes_;
  std::unique_ptr<prober::ProbeRunner> owned_probes_;
  prober::ProbeRunner& probes_;

  std::mutex mu_;
  std::map<std::string, std::shared_ptr<PodEntry>> pods_;
  // The cgroup hierarchies below cgroup_root, found at the first pod cgroup, and the controllers
  // already logged as unsupported (each once).
  std::mutex cgroups_mu_;
  std::optional<std::vector<CgroupHierarchy>> cgroup_hierarchies_;
  std::set<std::string> cgroup_unsupported_logged_;
};

}  // namespace skiff::kubelet
