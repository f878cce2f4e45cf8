#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace skiff::cli {

// `skiff image import|pull|ls|rm|prune`: the node's image store (kubelet/images), the one the
// kubelet runs containers from. Default root /var/lib/skiff/kubelet/images.
struct ImageOptions {
  std::string root = "/var/lib/skiff/kubelet/images";
  std::string file;                   // import
  std::string name;                   // import --name
  std::vector<std::string> refs;      // pull, rm
  std::vector<std::string> insecure;  // pull --insecure-registry
  bool quiet = false;                 // ls -q: image IDs only
};

int runImageImport(const ImageOptions& options, std::ostream& out, std::ostream& err);
int runImagePull(const ImageOptions& options, std::ostream& out, std::ostream& err);
int runImageList(const ImageOptions& options, std::ostream& out, std::ostream& err);
int runImageRemove(const ImageOptions& options, std::ostream& out, std::ostream& err);
int runImagePrune(const ImageOptions& options, std::ostream& out, std::ostream& err);

void addImageCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli
