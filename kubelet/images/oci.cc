#include "kubelet/images/oci.h"

#include <stdexcept>

#include "control/api/json.h"
#include "control/api/value.h"

namespace skiff::kubelet::images {
namespace {

using api::Value;

[[noreturn]] void fail(std::string_view what, std::string_view field, const std::string& why) {
  std::string message(what);
  if (!field.empty()) message += ": " + std::string(field);
  throw std::invalid_argument(message + ": " + why);
}

Value parseDocument(std::string_view json, std::string_view what) {
  Value v;
  try {
    v = api::parseJson(json, {.source = what});
  } catch (const api::DecodeError& e) {
    throw std::invalid_argument(std::string(what) + ": " + e.what());
  }
  if (!v.isObject()) fail(what, "", "expected a JSON object, got " + std::string(v.typeName()));
  return v;
}

std::string getString(const Value& obj, std::string_view key, std::string_view what,
                      std::string_view path, bool required = false) {
  const Value* v = obj.find(key);
  if (v == nullptr || v->isNull()) {
    if (required) fail(what, path, "missing");
    return {};
  }
  if (!v->isString()) fail(what, path, "expected string, got " + std::string(v->typeName()));
  return v->text();
}

std::vector<std::string> getStrings(const Value& obj, std::string_view key, std::string_view what,
                                    std::string_view path) {
  std::vector<std::string> out;
  const Value* v = obj.find(key);
  if (v == nullptr || v->isNull()) return out;
  if (!v->isArray()) fail(what, path, "expected array, got " + std::string(v->typeName()));
  for (size_t i = 0; i < v->items().size(); ++i) {
    const Value& item = v->items()[i];
    if (!item.isString()) {
      fail(what, std::string(path) + "[" + std::to_string(i) + "]",
           "expected string, got " + std::string(item.typeName()));
    }
    out.push_back(item.text());
  }
  return out;
}

std::map<std::string, std::string> getStringMap(const Value& obj, std::string_view key,
                                                std::string_view what, std::string_view path) {
  std::map<std::string, std::string> out;
  const Value* v = obj.find(key);
  if (v == nullptr || v->isNull()) return out;
  if (!v->isObject()) fail(what, path, "expected object, got " + std::string(v->typeName()));
  for (const auto& m : v->members()) {
    if (!m.value.isString()) fail(what, std::string(path) + "." + m.key, "expected string");
    out[m.key] = m.value.text();
  }
  return out;
}

Descriptor parseDescriptor(const Value& v, std::string_view what, const std::string& path) {
  if (!v.isObject()) fail(what, path, "expected object, got " + std::string(v.typeName()));
  Descriptor d;
  d.media_type = getString(v, "mediaType", what, path + ".mediaType");
  const std::string digest = getString(v, "digest", what, path + ".digest", true);
  std::string error;
  auto parsed = Digest::parse(digest, &error);
  if (!parsed) fail(what, path + ".digest", error);
  d.digest = *parsed;
  const Value* size = v.find("size");
  if (size == nullptr || !size->isInteger() || size->asInt() < 0) {
    fail(what, path + ".size", "expected a non-negative integer");
  }
  d.size = size->asInt();
  d.annotations = getStringMap(v, "annotations", what, path + ".annotations");
  if (const Value* p = v.find("platform"); p != nullptr && p->isObject()) {
    Platform platform;
    platform.os = getString(*p, "os", what, path + ".platform.os");
    platform.architecture = getString(*p, "architecture", what, path + ".platform.architecture");
    platform.variant = getString(*p, "variant", what, path + ".platform.variant");
    d.platform = platform;
  }
  return d;
}

void checkSchemaVersion(const Value& doc, std::string_view what) {
  const Value* sv = doc.find("schemaVersion");
  if (sv == nullptr || !sv->isInteger() || sv->asInt() != 2) {
    fail(what, "schemaVersion", "expected 2");
  }
}

Value descriptorValue(const Descriptor& d) {
  Value v = Value::object();
  v.append("mediaType", Value::string(d.media_type));
  v.append("digest", Value::string(d.digest.str()));
  v.append("size", Value::integer(d.size));
  if (!d.annotations.empty()) {
    Value a = Value::object();
    for (const auto& [k, val] : d.annotations)
      a.append(k, Value::string(val));
    v.append("annotations", std::move(a));
  }
  return v;
}

}  // namespace

bool isManifestType(std::string_view t) {
  return t == media::kOciManifest || t == media::kDockerManifest;
}

bool isIndexType(std::string_view t) {
  return t == media::kOciIndex || t == media::kDockerManifestList;
}

std::optional<Compression> layerCompression(std::string_view t) {
  if (t == media::kOciLayer || t == media::kDockerLayer ||
      t == "application/vnd.oci.image.layer.nondistributable.v1.tar") {
    return Compression::kNone;
  }
  if (t == media::kOciLayerGzip || t == media::kDockerLayerGzip ||
      t == media::kOciLayerNondistGzip || t == media::kDockerForeignLayerGzip) {
    return Compression::kGzip;
  }
  if (t == media::kOciLayerZstd) return Compression::kZstd;
  return std::nullopt;
}

std::string sniffMediaType(std::string_view json, std::string_view what) {
  const Value doc = parseDocument(json, what);
  std::string type = getString(doc, "mediaType", what, "mediaType");
  // OCI 1.0 documents may leave mediaType out: an index has manifests, a manifest a config.
  if (type.empty() && doc.find("manifests") != nullptr) type = media::kOciIndex;
  if (type.empty() && doc.find("config") != nullptr) type = media::kOciManifest;
  return type;
}

Manifest parseManifest(std::string_view json, std::string_view what,
                       std::string_view media_type_hint) {
  const Value doc = parseDocument(json, what);
  checkSchemaVersion(doc, what);
  Manifest m;
  m.media_type = getString(doc, "mediaType", what, "mediaType");
  if (m.media_type.empty()) m.media_type = media_type_hint;
  if (m.media_type.empty()) m.media_type = media::kOciManifest;
  if (!isManifestType(m.media_type)) {
    fail(what, "mediaType", "\"" + m.media_type + "\" is not an image manifest");
  }
  if (doc.find("manifests") != nullptr) fail(what, "manifests", "an index, not a manifest");
  const Value* config = doc.find("config");
  if (config == nullptr) fail(what, "config", "missing");
  m.config = parseDescriptor(*config, what, "config");
  const Value* layers = doc.find("layers");
  if (layers == nullptr || !layers->isArray()) fail(what, "layers", "expected array");
  for (size_t i = 0; i < layers->items().size(); ++i) {
    const std::string path = "layers[" + std::to_string(i) + "]";
    Descriptor d = parseDescriptor(layers->items()[i], what, path);
    if (!layerCompression(d.media_type)) {
      fail(what, path + ".mediaType", "unsupported layer media type \"" + d.media_type + "\"");
    }
    m.layers.push_back(std::move(d));
  }
  return m;
}

Index parseIndex(std::string_view json, std::string_view what, std::string_view media_type_hint) {
  const Value doc = parseDocument(json, what);
  checkSchemaVersion(doc, what);
  Index index;
  index.media_type = getString(doc, "mediaType", what, "mediaType");
  if (index.media_type.empty()) index.media_type = media_type_hint;
  if (index.media_type.empty()) index.media_type = media::kOciIndex;
  if (!isIndexType(index.media_type)) {
    fail(what, "mediaType", "\"" + index.media_type + "\" is not an image index");
  }
  const Value* manifests = doc.find("manifests");
  if (manifests == nullptr || !manifests->isArray()) fail(what, "manifests", "expected array");
  for (size_t i = 0; i < manifests->items().size(); ++i) {
    index.manifests.push_back(
        parseDescriptor(manifests->items()[i], what, "manifests[" + std::to_string(i) + "]"));
  }
  return index;
}

ImageConfig parseImageConfig(std::string_view json, std::string_view what) {
  const Value doc = parseDocument(json, what);
  ImageConfig c;
  c.architecture = getString(doc, "architecture", what, "architecture");
  c.os = getString(doc, "os", what, "os");
  c.created = getString(doc, "created", what, "created");
  if (const Value* config = doc.find("config"); config != nullptr && !config->isNull()) {
    if (!config->isObject()) fail(what, "config", "expected object");
    c.user = getString(*config, "User", what, "config.User");
    c.env = getStrings(*config, "Env", what, "config.Env");
    c.entrypoint = getStrings(*config, "Entrypoint", what, "config.Entrypoint");
    c.cmd = getStrings(*config, "Cmd", what, "config.Cmd");
    c.working_dir = getString(*config, "WorkingDir", what, "config.WorkingDir");
    c.labels = getStringMap(*config, "Labels", what, "config.Labels");
    c.stop_signal = getString(*config, "StopSignal", what, "config.StopSignal");
    if (const Value* ports = config->find("ExposedPorts"); ports && ports->isObject()) {
      for (const auto& m : ports->members())
        c.exposed_ports.push_back(m.key);
    }
  }
  const Value* rootfs = doc.find("rootfs");
  if (rootfs == nullptr || !rootfs->isObject()) fail(what, "rootfs", "missing");
  const std::string type = getString(*rootfs, "type", what, "rootfs.type");
  if (type != "layers") fail(what, "rootfs.type", "expected \"layers\", got \"" + type + "\"");
  const auto ids = getStrings(*rootfs, "diff_ids", what, "rootfs.diff_ids");
  for (size_t i = 0; i < ids.size(); ++i) {
    std::string error;
    auto d = Digest::parse(ids[i], &error);
    if (!d) fail(what, "rootfs.diff_ids[" + std::to_string(i) + "]", error);
    c.diff_ids.push_back(*d);
  }
  return c;
}

Platform hostPlatform() {
#if defined(__x86_64__)
  return {"linux", "amd64", ""};
#elif defined(__aarch64__)
  return {"linux", "arm64", "v8"};
#else
  return {"linux", "unknown", ""};
#endif
}

const Descriptor* selectPlatform(const Index& index) {
  const Platform host = hostPlatform();
  const Descriptor* fallback = nullptr;
  for (const auto& d : index.manifests) {
    if (!isManifestType(d.media_type) && !d.media_type.empty()) continue;
    if (!d.platform) {
      if (fallback == nullptr) fallback = &d;
      continue;
    }
    if (d.platform->os == host.os && d.platform->architecture == host.architecture) return &d;
  }
  // An index without platforms (what umoci and `skopeo copy oci:` write) names one image.
  return fallback;
}

std::string writeManifest(const Manifest& m) {
  Value v = Value::object();
  v.append("schemaVersion", Value::integer(2));
  v.append("mediaType", Value::string(m.media_type));
  v.append("config", descriptorValue(m.config));
  Value layers = Value::array();
  for (const auto& l : m.layers)
    layers.push(descriptorValue(l));
  v.append("layers", std::move(layers));
  return api::writeJson(v);
}

}  // namespace skiff::kubelet::images
