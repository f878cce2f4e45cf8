#pragma once

#include <optional>
#include <string>
#include <string_view>

// Image references as Docker and Kubernetes read them: "busybox" is
// "docker.io/library/busybox:latest", "127.0.0.1:5000/test/busybox:1.35" names a registry on a
// port, "repo@sha256:..." pins a digest.

namespace skiff::kubelet::images {

struct Reference {
  std::string domain;      // "docker.io", "127.0.0.1:5000", "localhost"
  std::string repository;  // "library/busybox"
  std::string tag;         // "latest"; empty when only a digest is given
  std::string digest;      // "sha256:..." or empty

  // Parses and normalizes; throws std::invalid_argument saying what is wrong with `text`.
  static Reference parse(std::string_view text);

  // "docker.io/library/busybox:latest", "host:5000/a/b@sha256:..." (tag and digest both when
  // both were given).
  std::string str() const;
  // "docker.io/library/busybox": the name without tag or digest.
  std::string name() const { return domain + "/" + repository; }
  // The host to connect to: Docker Hub's registry for docker.io.
  std::string registryHost() const;
  // Kubernetes' rule for a missing imagePullPolicy: Always for ":latest" or no tag (without a
  // digest), IfNotPresent otherwise.
  bool isLatest() const { return digest.empty() && (tag.empty() || tag == "latest"); }
};

}  // namespace skiff::kubelet::images
