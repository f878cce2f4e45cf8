#include "control/cli/image_command.h"

#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include "kubelet/images/image_store.h"
#include "kubelet/images/registry.h"

namespace skiff::cli {
namespace {

using kubelet::images::ImageStore;

std::string humanSize(int64_t bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  std::ostringstream s;
  s << std::setprecision(v < 10 && u > 0 ? 2 : 3) << v << units[u];
  return s.str();
}

template <typename F>
int guarded(std::ostream& err, F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    err << "error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace

int runImageImport(const ImageOptions& o, std::ostream& out, std::ostream& err) {
  return guarded(err, [&] {
    ImageStore store(o.root);
    for (const auto& r : store.importPath(o.file, o.name)) {
      out << "imported " << r.name << " (" << r.manifest.str() << ")\n";
    }
    return 0;
  });
}

int runImagePull(const ImageOptions& o, std::ostream& out, std::ostream& err) {
  return guarded(err, [&] {
    ImageStore store(o.root);
    kubelet::images::RegistryClient client({.insecure_registries = o.insecure});
    for (const auto& ref : o.refs) {
      const auto r = client.pull(store, kubelet::images::Reference::parse(ref));
      out << "pulled " << r.name << " (" << r.manifest.str() << ")\n";
    }
    return 0;
  });
}

int runImageList(const ImageOptions& o, std::ostream& out, std::ostream& err) {
  return guarded(err, [&] {
    ImageStore store(o.root);
    const auto records = store.list();
    if (o.quiet) {
      for (const auto& r : records)
        out << r.config.shortHex() << "\n";
      return 0;
    }
    auto split = [](const std::string& name) {
      const size_t at = name.find('@');
      const size_t colon = at != std::string::npos ? std::string::npos : name.rfind(':');
      return std::make_pair(name.substr(0, std::min(at, colon)), colon == std::string::npos
                                                                     ? std::string("<none>")
                                                                     : name.substr(colon + 1));
    };
    size_t width = 5;
    for (const auto& r : records)
      width = std::max(width, split(r.name).first.size());
    out << std::left << std::setw(static_cast<int>(width) + 3) << "IMAGE" << std::setw(16) << "TAG"
        << std::setw(16) << "IMAGE ID"
        << "SIZE\n";
    for (const auto& r : records) {
      const auto [repo, tag] = split(r.name);
      out << std::setw(static_cast<int>(width) + 3) << repo << std::setw(16) << tag << std::setw(16)
          << r.config.shortHex() << humanSize(r.size) << "\n";
    }
    return 0;
  });
}

int runImageRemove(const ImageOptions& o, std::ostream& out, std::ostream& err) {
  return guarded(err, [&] {
    ImageStore store(o.root);
    int rc = 0;
    for (const auto& ref : o.refs) {
      if (store.untag(ref)) {
        out << "deleted " << ref << "\n";
      } else {
        err << "error: no such image: " << ref << "\n";
        rc = 1;
      }
    }
    store.garbageCollect();
    return rc;
  });
}

int runImagePrune(const ImageOptions& o, std::ostream& out, std::ostream& err) {
  return guarded(err, [&] {
    ImageStore store(o.root);
    out << "removed " << store.garbageCollect() << " unused blobs and layers\n";
    return 0;
  });
}

void addImageCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<ImageOptions>();
  auto* image = app.add_subcommand("image", "Manage the node's container images");
  image->require_subcommand(1);
  image->add_option("--root", options->root, "Image store directory")->capture_default_str();

  auto* import = image->add_subcommand(
      "import", "Import an OCI image layout (directory or tar) or a docker save tarball");
  import->add_option("file", options->file, "Layout directory or tarball")->required();
  import->add_option("--name", options->name, "Name the image (e.g. example.com/app:v1)");
  import->callback([options, &exit_code] {
    exit_code = runImageImport(*options, std::cout, std::cerr);
});

auto* pull = image->add_subcommand("pull", "Pull images from an OCI distribution registry");
pull->add_option("image", options->refs, "Image references")->required();
pull->add_option("--insecure-registry", options->insecure,
                 "Registry (host:port) spoken to over plain HTTP; loopback always is");
pull->callback([options, &exit_code] { exit_code = runImagePull(*options, std::cout, std::cerr); });

auto* ls = image->add_subcommand("ls", "List images");
ls->alias("list");
ls->add_flag("-q,--quiet", options->quiet, "Only image IDs");
ls->callback([options, &exit_code] { exit_code = runImageList(*options, std::cout, std::cerr); });

auto* rm = image->add_subcommand("rm", "Remove image names, and content no image uses");
rm->add_option("image", options->refs, "Names, digests or image IDs")->required();
rm->callback([options, &exit_code] { exit_code = runImageRemove(*options, std::cout, std::cerr); });

auto* prune = image->add_subcommand("prune", "Remove content no image name or container uses");
prune->callback([options, &exit_code] {
  exit_code = runImagePrune(*options, std::cout, std::cerr);
});
}  // namespace skiff::cli

}  // namespace skiff::cli
