#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kubelet/images/digest.h"

// The OCI image-spec documents the image store reads (manifest, index, image config), with the
// Docker v2 schema 2 equivalents a registry or `docker save` may hand over. Parsers throw
// std::invalid_argument naming the document (`what`) and the field that is wrong.

namespace skiff::kubelet::images {

namespace media {
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kOciLayerNondistGzip =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayer = "application/vnd.docker.image.rootfs.diff.tar";
inline constexpr std::string_view kDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view kDockerForeignLayerGzip =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
}  // namespace media

bool isManifestType(std::string_view media_type);
bool isIndexType(std::string_view media_type);
enum class Compression { kNone, kGzip, kZstd };
// The compression of a layer media type; nullopt for a type that is not a layer.
std::optional<Compression> layerCompression(std::string_view media_type);

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;
};

struct Descriptor {
  std::string media_type;
  Digest digest;
  int64_t size = 0;
  std::map<std::string, std::string> annotations;
  std::optional<Platform> platform;
};

struct Manifest {
  std::string media_type;  // OCI or Docker schema 2
  Descriptor config;
  std::vector<Descriptor> layers;
};

struct Index {
  std::string media_type;
  std::vector<Descriptor> manifests;
};

// The parts of the image configuration a container runtime needs.
struct ImageConfig {
  std::string architecture;
  std::string os;
  std::string user;
  std::vector<std::string> env;  // "KEY=value"
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::vector<std::string> exposed_ports;  // "80/tcp"
  std::map<std::string, std::string> labels;
  std::string stop_signal;
  std::vector<Digest> diff_ids;  // rootfs.diff_ids, one per layer
  std::string created;
};

// `media_type_hint` is what the transport said (a registry's Content-Type, a descriptor's
// mediaType); the document's own mediaType wins when present.
Manifest parseManifest(std::string_view json, std::string_view what,
                       std::string_view media_type_hint = {});
Index parseIndex(std::string_view json, std::string_view what,
                 std::string_view media_type_hint = {});
ImageConfig parseImageConfig(std::string_view json, std::string_view what);
// The document's mediaType field, or "" when it has none (old OCI documents omit it).
std::string sniffMediaType(std::string_view json, std::string_view what);

// The manifest of an index for this machine's platform (linux/amd64 here), or nullptr.
const Descriptor* selectPlatform(const Index& index);
// "linux", "amd64": the platform this binary runs on.
Platform hostPlatform();

// An OCI manifest (schemaVersion 2) as JSON text.
std::string writeManifest(const Manifest& manifest);

}  // namespace skiff::kubelet::images
