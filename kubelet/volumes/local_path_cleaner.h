#pragma once

#include <set>
#include <string>

#include "control/client/client.h"

// The node's half of the skiff.io/local-path provisioner's Delete reclaim (k3s runs a helper pod on
// the node for it): the provisioner deletes a Released volume of its own whose policy is Delete,
// which its finalizer skiff.io/local-path-data holds until the data is gone. cleanOnce() looks at
// each volume directory under the node's storage dir (pvc-<uid>_<namespace>_<claim>, as the
// provisioner names them), GETs its PersistentVolume, and when that volume is being deleted, is
// this node's (local.path provisioner/selected-node), has the finalizer and spec.local.path is this
// directory, removes the directory and then the finalizer. A directory whose volume cannot be read
// (gone, forbidden, the apiserver away) is left alone: data is never removed on a guess.

namespace skiff::kubelet::volumes {

inline constexpr const char* kLocalPathDataFinalizer = "skiff.io/local-path-data";

class LocalPathCleaner {
 public:
  LocalPathCleaner(client::Client& client, std::string node_name, std::string storage_dir)
      : client_(client), node_(std::move(node_name)), dir_(std::move(storage_dir)) {}

  // Returns how many volume directories it removed. A finalizer it could not remove after the
  // directory went is tried again on the next call.
  int cleanOnce();

 private:
  // Removes the finalizer from volume `name`; false when that did not happen.
  bool releaseVolume(const std::string& name);

  client::Client& client_;
  std::string node_;
  std::string dir_;
  std::set<std::string> pending_;  // volumes whose data is gone but whose finalizer is not
};

}  // namespace skiff::kubelet::volumes
