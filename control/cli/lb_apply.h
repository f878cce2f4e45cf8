#pragma once

// `skiff lb apply -f FILE`: Services and EndpointSlices from manifests, translated as the node
// proxier translates them (endpoints/service_translation.h), programmed into the pinned maps of
// a data path `skiff lb attach` left, as the whole desired state.

#include <iosfwd>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "control/cli/manifest_objects.h"
#include "dataplane/dataplane.h"
#include "dataplane/status.h"

namespace skiff::cli {

// The services (one per service port) that `objects` describe, in file order: every Service with
// the EndpointSlices whose kubernetes.io/service-name label names it (same namespace). Fails,
// naming the file, position and field, on an object of another kind, a slice without the label or
// for a Service the files do not hold, a translation error, or an endpoint the translation would
// leave out: a file is applied whole or not at all.
dataplane::Result<std::vector<dataplane::Service>> lbServicesFromManifests(
    const std::vector<ManifestObject>& objects);

struct LbApplyOptions {
  std::string pinDir;
  std::vector<std::string> files;
  bool recursive = false;
};

int runLbApply(const LbApplyOptions& options, std::ostream& out, std::ostream& err);

// Adds `apply` under the `lb` subcommand of `app` (addLbCommand made it).
void addLbApplyCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli
