#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "kubelet/images/image_store.h"
#include "kubelet/images/reference.h"

// Pulls images from an OCI distribution registry (the HTTP v2 API that Docker's registry,
// Harbor, GHCR and others serve) into an ImageStore: the manifest by tag or digest (OCI and
// Docker schema 2, indexes narrowed to this platform), then every blob not yet stored, each
// verified against its digest. Anonymous bearer tokens (a 401 with `WWW-Authenticate: Bearer`)
// are fetched from the realm the registry names.

namespace skiff::kubelet::images {

struct RegistryOptions {
  // Registries spoken to over plain HTTP ("host:port"). Loopback hosts (localhost, 127.x, [::1])
  // always are.
  std::vector<std::string> insecure_registries;
  std::chrono::seconds timeout{60};
};

class PullError : public std::runtime_error {
 public:
  // `reason`: Kubernetes' container waiting reason ("ErrImagePull", "ImageNotFound" is not one
  // Kubernetes uses, so not found is ErrImagePull too, with the message saying so).
  PullError(int http_status, const std::string& message)
      : std::runtime_error(message), http_status_(http_status) {}
  int httpStatus() const { return http_status_; }
  bool notFound() const { return http_status_ == 404; }

 private:
  int http_status_;
};

class RegistryClient {
 public:
  explicit RegistryClient(RegistryOptions options = {}) : options_(std::move(options)) {}

  // Pulls `ref` into `store` and names it; throws PullError saying what failed.
  ImageRecord pull(ImageStore& store, const Reference& ref);

 private:
  RegistryOptions options_;
};

}  // namespace skiff::kubelet::images
