#include "control/cli/validate.h"

#include <iostream>

#include "control/api/codec.h"
#include "control/api/yaml.h"
#include "control/cli/manifest_files.h"
#include "skiff/api/meta_v1.pb.h"

namespace skiff::cli {
namespace {

// "deployment.apps/web", as kubectl names objects.
std::string objectName(const api::DecodedObject& object) {
  const auto* d = object.message->GetDescriptor();
  const auto* meta_field = d->FindFieldByName("metadata");
  std::string name;
  std::string ns;
  if (meta_field != nullptr) {
    const auto& meta = dynamic_cast<const api::meta::v1::ObjectMeta&>(
        object.message->GetReflection()->GetMessage(*object.message, meta_field));
    name = meta.name().empty() ? meta.generate_name() + "*" : meta.name();
    ns = meta.namespace_();
  }
  std::string qualified = object.type->singular;
  if (!object.type->group.empty()) qualified += "." + object.type->group;
  return qualified + "/" + name + (ns.empty() ? "" : " (namespace " + ns + ")");
}

}  // namespace

int runValidate(const ValidateOptions& options, std::ostream& out, std::ostream& err) {
  api::UnknownFields policy;
  if (options.validate == "strict" || options.validate == "true") {
    policy = api::UnknownFields::kStrict;
  } else if (options.validate == "warn") {
    policy = api::UnknownFields::kWarn;
  } else if (options.validate == "ignore" || options.validate == "false") {
    policy = api::UnknownFields::kIgnore;
  } else {
    err << "error: invalid --validate value \"" << options.validate
        << "\": must be one of strict, warn, ignore\n";
    return 2;
  }
  if (options.output != "" && options.output != "yaml" && options.output != "json" &&
      options.output != "name") {
    err << "error: unable to match a printer for output format \"" << options.output
        << "\": allowed formats are json, name, yaml\n";
    return 2;
  }
  std::vector<ManifestFile> files;
  try {
    files = readManifestFiles(options.files, options.recursive);
  } catch (const std::exception& e) {
    err << "error: " << e.what() << "\n";
    return 1;
  }
  int failures = 0;
  bool first_document = true;
  for (const auto& file : files) {
    std::vector<api::Diagnostic> warnings;
    std::vector<api::DecodedObject> objects;
    try {
      objects = api::decodeManifests(
          file.text, {.unknown_fields = policy, .source = file.name, .warnings = &warnings});
    } catch (const api::DecodeError& e) {
      for (const auto& d : e.diagnostics())
        err << "error: " << d.toString() << "\n";
      ++failures;
      continue;
    }
    for (const auto& w : warnings)
      err << "warning: " << w.toString() << "\n";
    for (const auto& object : objects) {
      if (options.output == "yaml") {
        if (!first_document) out << "---\n";
        out << api::encodeYaml(*object.message);
      } else if (options.output == "json") {
        out << api::encodeJson(*object.message, api::JsonStyle::kPretty) << "\n";
      } else if (options.output == "name") {
        std::string name = objectName(object);
        out << name.substr(0, name.find(' ')) << "\n";
      } else {
        out << objectName(object) << " valid\n";
      }
      first_document = false;
    }
  }
  if (files.empty()) {
    err << "error: no manifests found in " << (options.files.empty() ? "-f" : options.files[0])
        << "\n";
    return 1;
  }
  return failures == 0 ? 0 : 1;
}

void addValidateCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<ValidateOptions>();
  auto* cmd = app.add_subcommand(
      "validate", "Check manifests offline: types, unknown fields, quantities, selectors");
  cmd->add_option("-f,--filename", options->files, "Files, directories or - for stdin")->required();
  cmd->add_flag("-R,--recursive", options->recursive, "Read directories recursively");
  cmd->add_option("--validate", options->validate, "Unknown fields: strict, warn or ignore")
      ->capture_default_str();
  cmd->add_option("-o,--output", options->output, "Print the objects as yaml, json or name");
  cmd->callback([options, &exit_code] { exit_code = runValidate(*options, std::cout, std::cerr); });
}

}  // namespace skiff::cli
