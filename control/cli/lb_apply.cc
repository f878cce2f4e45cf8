#include "control/cli/lb_apply.h"

#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <utility>

#include "control/api/codec.h"
#include "endpoints/change_tracker.h"
#include "endpoints/service_translation.h"

#if SKIFF_WITH_EBPF
#include "ebpf/ebpf_dataplane.h"
#include "ebpf/loader.h"
#endif

namespace skiff::cli {

using dataplane::Status;

dataplane::Result<std::vector<dataplane::Service>> lbServicesFromManifests(
    const std::vector<ManifestObject>& objects) {
  struct ServiceObject {
    const ManifestObject* object = nullptr;
    api::core::v1::Service service;
    std::vector<const api::discovery::v1::EndpointSlice*> slices;
  };
  std::vector<std::unique_ptr<ServiceObject>> services;
  std::map<std::string, ServiceObject*> byKey;
  std::vector<std::pair<const ManifestObject*, std::unique_ptr<api::discovery::v1::EndpointSlice>>>
      slices;
  for (const ManifestObject& o : objects) {
    const std::string kind = o.type != nullptr ? o.type->kind : "";
    try {
      if (kind == "Service") {
        auto s = std::make_unique<ServiceObject>();
        s->object = &o;
        api::decode(o.value, s->service, {.source = o.source});
        const std::string key = endpoints::serviceKeyOf(s->service);
        if (!byKey.emplace(key, s.get()).second) {
          return Status::failure(where(o) + ": Service " + key + " is in the files twice");
        }
        services.push_back(std::move(s));
      } else if (kind == "EndpointSlice") {
        auto slice = std::make_unique<api::discovery::v1::EndpointSlice>();
        api::decode(o.value, *slice, {.source = o.source});
        slices.emplace_back(&o, std::move(slice));
      } else {
        return Status::failure(where(o) + ": kind: " + kind +
                               " (skiff lb apply takes Services and EndpointSlices only)");
      }
    } catch (const api::DecodeError& e) {
      std::string message;
      for (const auto& d : e.diagnostics())
        message += (message.empty() ? "" : "; ") + d.toString();
      return Status::failure(message);
    }
  }
  for (auto& [o, slice] : slices) {
    const std::string key = endpoints::serviceKeyOf(*slice);
    if (key.empty()) {
      return Status::failure(where(*o) +
                             ": metadata.labels[\"kubernetes.io/service-name\"]: EndpointSlice " +
                             o->name + " names no service");
    }
    auto it = byKey.find(key);
    if (it == byKey.end()) {
      return Status::failure(
          where(*o) + ": metadata.labels[\"kubernetes.io/service-name\"]: EndpointSlice " +
          o->name + " belongs to Service " + key + ", which the files do not hold");
    }
    it->second->slices.push_back(slice.get());
  }
  std::vector<dataplane::Service> out;
  for (const auto& s : services) {
    auto t = endpoints::translate(s->service, s->slices, endpoints::NodeInfo{});
    if (!t.ok()) return Status::failure(where(*s->object) + ": " + t.message());
    if (!t->warnings.empty()) return Status::failure(where(*s->object) + ": " + t->warnings[0]);
    for (dataplane::Service& service : t->services)
      out.push_back(std::move(service));
  }
  dataplane::ServiceDelta delta;
  delta.upserted = out;
  delta.replaceAll = true;
  if (Status v = dataplane::validate(delta); !v.ok()) return v;
  return out;
}

#if SKIFF_WITH_EBPF

int runLbApply(const LbApplyOptions& o, std::ostream& out, std::ostream& err) {
  std::vector<dataplane::Service> services;
  try {
    auto made =
        lbServicesFromManifests(loadManifestObjects({.files = o.files, .recursive = o.recursive}));
    if (!made.ok()) {
      err << "error: " << made.message() << "\n";
      return 1;
    }
    services = std::move(*made);
  } catch (const api::DecodeError& e) {
    for (const auto& d : e.diagnostics())
      err << "error: " << d.toString() << "\n";
    return 1;
  } catch (const std::exception& e) {
    err << "error: " << e.what() << "\n";
    return 1;
  }
  // Only onto a data path `skiff lb attach` left: its maps are adopted, never made here.
  std::error_code ec;
  if (!std::filesystem::exists(o.pinDir + "/" SKIFF_MAP_SERVICES, ec)) {
    err << "error: no data path pinned under " << o.pinDir << " (run skiff lb attach first)\n";
    return 1;
  }
  ebpf::EbpfDataplaneOptions options;
  options.pinDir = o.pinDir;
  auto dp = ebpf::EbpfDataplane::create(options);
  if (!dp.ok()) {
    err << "error: " << dp.message() << "\n";
    return 1;
  }
  dataplane::ServiceDelta delta;
  delta.upserted = services;
  delta.replaceAll = true;
  if (Status s = (*dp)->apply(delta); !s.ok()) {
    err << "error: " << s.message() << "\n";
    return 1;
  }
  size_t frontends = 0, backends = 0;
  for (const dataplane::Service& s : services) {
    frontends += s.frontends.size();
    backends += s.backends.size();
  }
  out << "applied " << services.size() << " service ports (" << frontends << " frontends, "
      << backends << " backends) to " << o.pinDir << "\n";
  return 0;
}

#else

int runLbApply(const LbApplyOptions&, std::ostream&, std::ostream& err) {
  err << "error: this skiff was built without the eBPF data path (-DSKIFF_WITH_EBPF=OFF)\n";
  return 1;
}

#endif  // SKIFF_WITH_EBPF

void addLbApplyCommand(CLI::App& app, int& exit_code) {
  CLI::App* lb = app.get_subcommand("lb");
  auto options = std::make_shared<LbApplyOptions>();
#if SKIFF_WITH_EBPF
  options->pinDir = SKIFF_PIN_DIR;
#else
  options->pinDir = "/sys/fs/bpf/skiff";
#endif
  CLI::App* apply = lb->add_subcommand(
      "apply",
      "Program the data path `skiff lb attach` pinned with the Services and EndpointSlices of "
      "FILE (YAML or JSON, multi-document), translated as the node proxier does; the files are "
      "the whole desired state: services they no longer hold are removed, unchanged ones keep "
      "their flows. Bad input changes nothing");
  apply->add_option("-f,--filename", options->files, "Manifest files or directories ('-': stdin)")
      ->required();
  apply->add_flag("-R,--recursive", options->recursive, "Directories: their sub-directories too");
  apply->add_option("--pin-dir", options->pinDir, "Where the data path pinned its maps")
      ->capture_default_str();
  apply->callback(
      [options, &exit_code] { exit_code = runLbApply(*options, std::cout, std::cerr); });
}

}  // namespace skiff::cli
