#include "kubelet/images/image_store.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>

#include "control/api/json.h"
#include "control/api/time.h"
#include "control/api/value.h"

namespace skiff::kubelet::images {
namespace fs = std::filesystem;
namespace {

using api::Value;

constexpr const char* kRefNameAnnotation = "org.opencontainers.image.ref.name";
constexpr const char* kContainerdNameAnnotation = "io.containerd.image.name";

[[noreturn]] void throwErrno(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void writeFileAtomic(const std::string& path, std::string_view data) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throwErrno("create " + tmp);
    size_t off = 0;
    while (off < data.size()) {
      const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        ::close(fd);
        throwErrno("write " + tmp);
      }
      off += static_cast<size_t>(n);
    }
    ::fsync(fd);
    ::close(fd);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) throwErrno("rename " + tmp);
}

// An flock on ROOT/lock, for the processes that share a store.
class FileLock {
 public:
  FileLock(const std::string& path, bool exclusive) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throwErrno("open " + path);
    while (::flock(fd_, exclusive ? LOCK_EX : LOCK_SH) != 0) {
      if (errno != EINTR) throwErrno("flock " + path);
    }
  }
  ~FileLock() { ::close(fd_); }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

std::string randomSuffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  uint64_t v = rng();
  for (int i = 0; i < 12; ++i, v >>= 4)
    s.push_back(kHex[v & 0xf]);
  return s;
}

// Extracts an archive (tar, optionally compressed) into `dest` as data only: no owners, no
// devices, nothing outside `dest`.
void extractArchive(const std::string& path, const std::string& dest) {
  archive* r = archive_read_new();
  archive* w = archive_write_disk_new();
  auto cleanup = [&] {
    archive_read_free(r);
    archive_write_free(w);
  };
  archive_read_support_filter_all(r);
  archive_read_support_format_tar(r);
  archive_read_support_format_gnutar(r);
  // Entry names are checked below and prefixed with `dest`, an absolute path.
  archive_write_disk_set_options(w,
                                 ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT);
  try {
    if (archive_read_open_filename(r, path.c_str(), 1 << 16) != ARCHIVE_OK) {
      throw std::runtime_error(path + ": " + archive_error_string(r));
    }
    while (true) {
      archive_entry* e;
      const int rc = archive_read_next_header(r, &e);
      if (rc == ARCHIVE_EOF) break;
      if (rc < ARCHIVE_WARN) {
        throw std::runtime_error(path + ": not a readable tar archive: " + archive_error_string(r));
      }
      const mode_t type = archive_entry_filetype(e);
      if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) continue;
      std::string name = archive_entry_pathname(e);
      while (name.starts_with("./"))
        name.erase(0, 2);
      if (name.empty() || name == ".") continue;
      if (name.front() == '/' || name == ".." || name.starts_with("../") ||
          name.find("/../") != std::string::npos) {
        throw std::runtime_error(path + ": entry \"" + name + "\" leaves the archive");
      }
      archive_entry_copy_pathname(e, (dest + "/" + name).c_str());
      if (const char* link = archive_entry_hardlink(e)) {
        std::string target = link;
        while (target.starts_with("./"))
          target.erase(0, 2);
        archive_entry_copy_hardlink(e, (dest + "/" + target).c_str());
      }
      archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
      if (archive_write_header(w, e) < ARCHIVE_WARN) {
        throw std::runtime_error(path + ": " + name + ": " + archive_error_string(w));
      }
      const void* buf;
      size_t size;
      la_int64_t offset;
      int drc;
      while ((drc = archive_read_data_block(r, &buf, &size, &offset)) == ARCHIVE_OK) {
        if (archive_write_data_block(w, buf, size, offset) < ARCHIVE_WARN) {
          throw std::runtime_error(path + ": " + name + ": " + archive_error_string(w));
        }
      }
      if (drc != ARCHIVE_EOF) {
        throw std::runtime_error(path + ": " + name + ": " + archive_error_string(r));
      }
      archive_write_finish_entry(w);
    }
    cleanup();
  } catch (...) {
    cleanup();
    throw;
  }
}

Value recordValue(const ImageRecord& r) {
  Value v = Value::object();
  v.append("name", Value::string(r.name));
  v.append("manifest", Value::string(r.manifest.str()));
  v.append("config", Value::string(r.config.str()));
  v.append("size", Value::integer(r.size));
  v.append("imported", Value::string(r.imported));
  return v;
}

// A temporary directory removed when this goes out of scope.
struct TempDir {
  std::string path;
  ~TempDir() {
    if (!path.empty()) {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  }
};

}  // namespace

struct ImageStore::Names {
  std::vector<ImageRecord> images;
};

ImageStore::ImageStore(std::string root) : root_(std::move(root)) {
  while (root_.size() > 1 && root_.back() == '/')
    root_.pop_back();
  for (const char* sub : {"", "/blobs", "/blobs/sha256", "/layers", "/leases", "/tmp"}) {
    std::error_code ec;
    fs::create_directories(root_ + sub, ec);
    if (ec)
      throw std::runtime_error("image store: cannot create " + root_ + sub + ": " + ec.message());
  }
}

std::string ImageStore::blobPath(const Digest& d) const {
  return root_ + "/blobs/" + d.algorithm + "/" + d.hex;
}

bool ImageStore::hasBlob(const Digest& d) const {
  struct stat st;
  return ::stat(blobPath(d).c_str(), &st) == 0;
}

std::string ImageStore::readBlob(const Digest& d) const {
  if (!hasBlob(d)) throw std::runtime_error("blob " + d.str() + " is not in the image store");
  return readFile(blobPath(d));
}

std::string ImageStore::tempPath(std::string_view prefix) const {
  return root_ + "/tmp/" + std::string(prefix) + "-" + randomSuffix();
}

Digest ImageStore::commitBlob(const std::string& temp_path, const Descriptor& expected) {
  Digest actual;
  struct stat st;
  try {
    actual = sha256OfFile(temp_path);
    if (::stat(temp_path.c_str(), &st) != 0) throwErrno("stat " + temp_path);
  } catch (...) {
    ::unlink(temp_path.c_str());
    throw;
  }
  if (actual != expected.digest) {
    ::unlink(temp_path.c_str());
    throw std::runtime_error("blob " + expected.digest.str() + " has digest " + actual.str() +
                             ": content does not match its descriptor");
  }
  if (expected.size > 0 && st.st_size != expected.size) {
    ::unlink(temp_path.c_str());
    throw std::runtime_error("blob " + expected.digest.str() + " has " +
                             std::to_string(st.st_size) + " bytes, descriptor says " +
                             std::to_string(expected.size));
  }
  if (::rename(temp_path.c_str(), blobPath(actual).c_str()) != 0) {
    ::unlink(temp_path.c_str());
    throwErrno("store blob " + actual.str());
  }
  return actual;
}

Digest ImageStore::putBlob(std::string_view data, const Descriptor* expected) {
  const Digest d = sha256Of(data);
  if (expected != nullptr) {
    if (d != expected->digest) {
      throw std::runtime_error("blob " + expected->digest.str() + " has digest " + d.str() +
                               ": content does not match its descriptor");
    }
    if (expected->size > 0 && static_cast<int64_t>(data.size()) != expected->size) {
      throw std::runtime_error("blob " + d.str() + " has " + std::to_string(data.size()) +
                               " bytes, descriptor says " + std::to_string(expected->size));
    }
  }
  if (!hasBlob(d)) {
    const std::string tmp = tempPath("blob");
    writeFileAtomic(tmp, data);
    if (::rename(tmp.c_str(), blobPath(d).c_str()) != 0) throwErrno("store blob " + d.str());
  }
  return d;
}

Digest ImageStore::putBlobFile(const std::string& path, const Descriptor* expected) {
  if (expected != nullptr && hasBlob(expected->digest)) return expected->digest;
  const std::string tmp = tempPath("blob");
  std::error_code ec;
  fs::copy_file(path, tmp, ec);
  if (ec) throw std::runtime_error("copy " + path + ": " + ec.message());
  if (expected != nullptr) {
    try {
      return commitBlob(tmp, *expected);
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(path + ": " + e.what());
    }
  }
  Descriptor self;
  self.digest = sha256OfFile(tmp);
  return commitBlob(tmp, self);
}

ImageStore::Names ImageStore::loadNames() const {
  Names names;
  const std::string path = root_ + "/images.json";
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return names;
  const std::string text = readFile(path);
  Value doc;
  try {
    doc = api::parseJson(text, {.source = path});
  } catch (const api::DecodeError& e) {
    throw std::runtime_error(std::string("image store: ") + e.what());
  }
  const Value* images = doc.find("images");
  if (images == nullptr || !images->isArray()) {
    throw std::runtime_error("image store: " + path + ": no \"images\" array");
  }
  for (const auto& item : images->items()) {
    ImageRecord r;
    auto str = [&](const char* key) -> std::string {
      const Value* v = item.find(key);
      return v && v->isString() ? v->text() : std::string();
    };
    r.name = str("name");
    r.manifest = Digest::parseOrThrow(str("manifest"), path + ": manifest");
    r.config = Digest::parseOrThrow(str("config"), path + ": config");
    if (const Value* s = item.find("size"); s && s->isInteger()) r.size = s->asInt();
    r.imported = str("imported");
    names.images.push_back(std::move(r));
  }
  return names;
}

void ImageStore::saveNames(const Names& names) const {
  Value doc = Value::object();
  Value images = Value::array();
  for (const auto& r : names.images)
    images.push(recordValue(r));
  doc.append("images", std::move(images));
  writeFileAtomic(root_ + "/images.json", api::writeJson(doc, api::JsonStyle::kPretty) + "\n");
}

Image ImageStore::loadImage(const ImageRecord& record) const {
  Image image;
  image.record = record;
  image.manifest = parseManifest(readBlob(record.manifest), "manifest " + record.manifest.str());
  image.config = parseImageConfig(readBlob(image.manifest.config.digest),
                                  "image config " + image.manifest.config.digest.str());
  if (image.config.diff_ids.size() != image.manifest.layers.size()) {
    throw std::runtime_error("image " + record.name + ": config has " +
                             std::to_string(image.config.diff_ids.size()) + " diff_ids for " +
                             std::to_string(image.manifest.layers.size()) + " layers");
  }
  return image;
}

std::vector<ImageRecord> ImageStore::list() const {
  std::lock_guard lock(mu_);
  FileLock flock(root_ + "/lock", false);
  return loadNames().images;
}

std::optional<Image> ImageStore::find(std::string_view ref) const {
  std::vector<ImageRecord> records;
  {
    std::lock_guard lock(mu_);
    FileLock flock(root_ + "/lock", false);
    records = loadNames().images;
  }
  const ImageRecord* hit = nullptr;
  if (ref.starts_with("sha256:")) {
    for (const auto& r : records) {
      if (r.manifest.str() == ref || r.config.str() == ref) hit = &r;
    }
  } else {
    bool hex = ref.size() >= 12 && ref.size() <= 64;
    for (char c : ref)
      hex = hex && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    if (hex) {
      for (const auto& r : records) {
        if (r.config.hex.starts_with(ref)) {
          if (hit != nullptr && hit->config != r.config) {
            throw std::invalid_argument("image ID " + std::string(ref) + " is ambiguous");
          }
          hit = &r;
        }
      }
    }
    if (hit == nullptr) {
      const Reference parsed = Reference::parse(ref);
      for (const auto& r : records) {
        if (!parsed.tag.empty() && r.name == parsed.name() + ":" + parsed.tag) {
          if (parsed.digest.empty() || r.manifest.str() == parsed.digest) hit = &r;
        } else if (parsed.tag.empty() && r.manifest.str() == parsed.digest &&
                   r.name.starts_with(parsed.name() + ":")) {
          hit = &r;
        } else if (parsed.tag.empty() && r.name == parsed.str()) {
          hit = &r;
        }
      }
    }
  }
  if (hit == nullptr) return std::nullopt;
  return loadImage(*hit);
}

Digest ImageStore::resolveStored(const Descriptor& d) const {
  const std::string body = readBlob(d.digest);
  std::string type = d.media_type;
  if (type.empty()) type = sniffMediaType(body, "blob " + d.digest.str());
  if (isIndexType(type)) {
    const Index index = parseIndex(body, "index " + d.digest.str(), type);
    const Descriptor* m = selectPlatform(index);
    if (m == nullptr) {
      throw std::runtime_error("index " + d.digest.str() + " has no image for " +
                               hostPlatform().os + "/" + hostPlatform().architecture);
    }
    return resolveStored(*m);
  }
  const Manifest m = parseManifest(body, "manifest " + d.digest.str(), type);
  if (!hasBlob(m.config.digest)) {
    throw std::runtime_error("manifest " + d.digest.str() + ": config blob " +
                             m.config.digest.str() + " is missing");
  }
  for (const auto& l : m.layers) {
    if (!hasBlob(l.digest)) {
      throw std::runtime_error("manifest " + d.digest.str() + ": layer blob " + l.digest.str() +
                               " is missing");
    }
  }
  return d.digest;
}

ImageRecord ImageStore::tag(const Reference& name, const Digest& manifest_digest) {
  Descriptor d;
  d.digest = manifest_digest;
  const Digest platform_manifest = resolveStored(d);
  const Manifest m =
      parseManifest(readBlob(platform_manifest), "manifest " + platform_manifest.str());
  ImageRecord record;
  record.name = name.tag.empty() ? name.str() : name.name() + ":" + name.tag;
  record.manifest = platform_manifest;
  record.config = m.config.digest;
  record.size = m.config.size;
  for (const auto& l : m.layers)
    record.size += l.size;
  record.imported = api::formatRfc3339(api::now());
  std::lock_guard lock(mu_);
  FileLock flock(root_ + "/lock", true);
  Names names = loadNames();
  bool replaced = false;
  for (auto& r : names.images) {
    if (r.name == record.name) {
      r = record;
      replaced = true;
    }
  }
  if (!replaced) names.images.push_back(record);
  saveNames(names);
  return record;
}

bool ImageStore::untag(std::string_view ref) {
  const auto image = find(ref);
  if (!image) return false;
  std::lock_guard lock(mu_);
  FileLock flock(root_ + "/lock", true);
  Names names = loadNames();
  const size_t before = names.images.size();
  // A name removes that name; a digest or ID removes every name of the image.
  const bool by_id = ref.starts_with("sha256:") || (ref.find(':') == std::string_view::npos &&
                                                    ref.find('/') == std::string_view::npos &&
                                                    image->record.config.hex.starts_with(ref));
  std::erase_if(names.images, [&](const ImageRecord& r) {
    return by_id ? r.config == image->record.config : r.name == image->record.name;
  });
  saveNames(names);
  return names.images.size() != before;
}

size_t ImageStore::garbageCollect() {
  std::lock_guard lock(mu_);
  FileLock flock(root_ + "/lock", true);
  std::set<std::string> keep_blobs;
  std::set<std::string> keep_layers;
  std::vector<Digest> roots;
  for (const auto& r : loadNames().images)
    roots.push_back(r.manifest);
  for (const auto& entry : fs::directory_iterator(root_ + "/leases")) {
    try {
      roots.push_back(Digest::parseOrThrow(readFile(entry.path()), "lease"));
    } catch (const std::exception&) {
      // An unreadable lease keeps nothing; the container that wrote it is gone or broken.
    }
  }
  for (const auto& digest : roots) {
    if (!hasBlob(digest)) continue;
    keep_blobs.insert(digest.hex);
    const Manifest m = parseManifest(readBlob(digest), "manifest " + digest.str());
    keep_blobs.insert(m.config.digest.hex);
    for (const auto& l : m.layers)
      keep_blobs.insert(l.digest.hex);
    if (hasBlob(m.config.digest)) {
      const ImageConfig c = parseImageConfig(readBlob(m.config.digest), "config");
      for (const auto& id : c.diff_ids)
        keep_layers.insert(id.hex);
    }
  }
  size_t removed = 0;
  for (const auto& entry : fs::directory_iterator(root_ + "/blobs/sha256")) {
    if (!keep_blobs.contains(entry.path().filename().string())) {
      fs::remove(entry.path());
      ++removed;
    }
  }
  for (const auto& entry : fs::directory_iterator(root_ + "/layers")) {
    if (!keep_layers.contains(entry.path().filename().string())) {
      removeTree(entry.path().string());
      ++removed;
    }
  }
  return removed;
}

std::vector<ImageRecord> ImageStore::importPath(const std::string& path, const std::string& name) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) throwErrno("import " + path);
  if (!name.empty()) Reference::parse(name);  // a bad --name fails before any work
  if (S_ISDIR(st.st_mode)) {
    if (fs::exists(path + "/oci-layout")) return importLayout(path, name);
    if (fs::exists(path + "/manifest.json")) return importDockerSave(path, name);
    throw std::runtime_error(path +
                             ": neither an OCI image layout (no oci-layout file) nor a "
                             "docker save directory (no manifest.json)");
  }
  TempDir tmp{tempPath("import")};
  fs::create_directories(tmp.path);
  extractArchive(path, tmp.path);
  try {
    if (fs::exists(tmp.path + "/oci-layout") && fs::exists(tmp.path + "/index.json")) {
      return importLayout(tmp.path, name);
    }
    if (fs::exists(tmp.path + "/manifest.json")) return importDockerSave(tmp.path, name);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  throw std::runtime_error(path +
                           ": the archive holds neither an OCI image layout (oci-layout, "
                           "index.json) nor a docker save image (manifest.json)");
}

Digest ImageStore::copyFromLayout(const std::string& dir, const Descriptor& d) {
  auto blob = [&](const Digest& digest) {
    return dir + "/blobs/" + digest.algorithm + "/" + digest.hex;
  };
  if (!fs::exists(blob(d.digest)) && !hasBlob(d.digest)) {
    throw std::runtime_error("blob " + d.digest.str() + " is missing from the layout");
  }
  if (!hasBlob(d.digest)) putBlobFile(blob(d.digest), &d);
  const std::string body = readBlob(d.digest);
  std::string type = d.media_type;
  if (type.empty()) type = sniffMediaType(body, "blob " + d.digest.str());
  if (isIndexType(type)) {
    const Index index = parseIndex(body, "index " + d.digest.str(), type);
    const Descriptor* m = selectPlatform(index);
    if (m == nullptr) {
      throw std::runtime_error("index " + d.digest.str() + " has no image for linux/" +
                               hostPlatform().architecture);
    }
    return copyFromLayout(dir, *m);
  }
  const Manifest m = parseManifest(body, "manifest " + d.digest.str(), type);
  std::vector<Descriptor> blobs = m.layers;
  blobs.push_back(m.config);
  for (const auto& b : blobs) {
    if (hasBlob(b.digest)) continue;
    if (!fs::exists(blob(b.digest))) {
      throw std::runtime_error("manifest " + d.digest.str() + ": blob " + b.digest.str() +
                               " is missing from the layout");
    }
    putBlobFile(blob(b.digest), &b);
  }
  parseImageConfig(readBlob(m.config.digest), "image config " + m.config.digest.str());
  return d.digest;
}

std::vector<ImageRecord> ImageStore::importLayout(const std::string& dir, const std::string& name) {
  const std::string layout = readFile(dir + "/oci-layout");
  Value lv = api::parseJson(layout, {.source = "oci-layout"});
  const Value* version = lv.find("imageLayoutVersion");
  if (version == nullptr || !version->isString() || !version->text().starts_with("1.")) {
    throw std::runtime_error("oci-layout: unsupported imageLayoutVersion");
  }
  const Index index = parseIndex(readFile(dir + "/index.json"), "index.json", media::kOciIndex);
  if (index.manifests.empty()) throw std::runtime_error("index.json lists no images");

  // What to import, and under which name.
  std::vector<std::pair<const Descriptor*, Reference>> picks;
  std::vector<std::string> ref_names;
  for (const auto& d : index.manifests) {
    auto it = d.annotations.find(kRefNameAnnotation);
    ref_names.push_back(it == d.annotations.end() ? std::string("<none>") : it->second);
  }
  if (!name.empty()) {
    const Reference wanted = Reference::parse(name);
    const Descriptor* pick = nullptr;
    if (index.manifests.size() == 1) {
      pick = &index.manifests[0];
    } else {
      for (const auto& d : index.manifests) {
        auto ref = d.annotations.find(kRefNameAnnotation);
        auto full = d.annotations.find(kContainerdNameAnnotation);
        if ((ref != d.annotations.end() && (ref->second == wanted.tag || ref->second == name)) ||
            (full != d.annotations.end() && full->second == name)) {
          pick = &d;
        }
      }
    }
    if (pick == nullptr) {
      std::string names;
      for (const auto& n : ref_names)
        names += (names.empty() ? "" : ", ") + n;
      throw std::runtime_error("index.json lists " + std::to_string(index.manifests.size()) +
                               " images (" + names + "); none has the tag \"" + wanted.tag + "\"");
    }
    picks.emplace_back(pick, wanted);
  } else {
    for (size_t i = 0; i < index.manifests.size(); ++i) {
      const auto& d = index.manifests[i];
      std::string full;
      if (auto it = d.annotations.find(kContainerdNameAnnotation); it != d.annotations.end()) {
        full = it->second;
      } else if (auto ref = d.annotations.find(kRefNameAnnotation);
                 ref != d.annotations.end() && ref->second.find('/') != std::string::npos) {
        full = ref->second;
      }
      if (full.empty()) {
        throw std::runtime_error("index.json: image " + std::to_string(i) + " (" + ref_names[i] +
                                 ") carries no full image name; give one with --name");
      }
      picks.emplace_back(&d, Reference::parse(full));
    }
  }
  // Copy and verify everything first; names are set only once all content is in.
  std::vector<std::pair<Digest, Reference>> resolved;
  for (const auto& [d, ref] : picks)
    resolved.emplace_back(copyFromLayout(dir, *d), ref);
  std::vector<ImageRecord> out;
  for (const auto& [digest, ref] : resolved)
    out.push_back(tag(ref, digest));
  return out;
}

std::vector<ImageRecord> ImageStore::importDockerSave(const std::string& dir,
                                                      const std::string& name) {
  const Value doc = api::parseJson(readFile(dir + "/manifest.json"), {.source = "manifest.json"});
  if (!doc.isArray() || doc.items().empty()) {
    throw std::runtime_error("manifest.json: expected a non-empty array");
  }
  if (!name.empty() && doc.items().size() != 1) {
    throw std::runtime_error("manifest.json lists " + std::to_string(doc.items().size()) +
                             " images; --name needs exactly one");
  }
  auto entryPath = [&](const std::string& rel, const std::string& field) {
    if (rel.empty() || rel.front() == '/' || rel.find("..") != std::string::npos) {
      throw std::runtime_error("manifest.json: " + field + ": bad path \"" + rel + "\"");
    }
    const std::string p = dir + "/" + rel;
    if (!fs::is_regular_file(p)) {
      throw std::runtime_error("manifest.json: " + field + ": \"" + rel +
                               "\" is not in the archive");
    }
    return p;
  };
  std::vector<std::pair<Digest, std::vector<Reference>>> images;
  for (size_t i = 0; i < doc.items().size(); ++i) {
    const Value& e = doc.items()[i];
    const std::string where = "[" + std::to_string(i) + "]";
    const Value* config = e.find("Config");
    const Value* layers = e.find("Layers");
    if (config == nullptr || !config->isString()) {
      throw std::runtime_error("manifest.json" + where + ".Config: missing");
    }
    if (layers == nullptr || !layers->isArray()) {
      throw std::runtime_error("manifest.json" + where + ".Layers: missing");
    }
    Manifest m;
    m.media_type = media::kOciManifest;
    const std::string config_path = entryPath(config->text(), where + ".Config");
    m.config.media_type = media::kOciConfig;
    m.config.digest = putBlobFile(config_path);
    m.config.size = static_cast<int64_t>(fs::file_size(config_path));
    parseImageConfig(readBlob(m.config.digest), "image config " + config->text());
    for (size_t j = 0; j < layers->items().size(); ++j) {
      const Value& l = layers->items()[j];
      const std::string field = where + ".Layers[" + std::to_string(j) + "]";
      if (!l.isString()) throw std::runtime_error("manifest.json" + field + ": expected string");
      const std::string p = entryPath(l.text(), field);
      Descriptor d;
      std::ifstream in(p, std::ios::binary);
      unsigned char magic[2] = {0, 0};
      in.read(reinterpret_cast<char*>(magic), 2);
      d.media_type = magic[0] == 0x1f && magic[1] == 0x8b ? media::kOciLayerGzip : media::kOciLayer;
      d.digest = putBlobFile(p);
      d.size = static_cast<int64_t>(fs::file_size(p));
      m.layers.push_back(std::move(d));
    }
    const Digest manifest_digest = putBlob(writeManifest(m));
    std::vector<Reference> refs;
    if (!name.empty()) {
      refs.push_back(Reference::parse(name));
    } else if (const Value* tags = e.find("RepoTags"); tags && tags->isArray()) {
      for (const auto& t : tags->items()) {
        if (t.isString()) refs.push_back(Reference::parse(t.text()));
      }
    }
    if (refs.empty()) {
      throw std::runtime_error("manifest.json" + where +
                               " has no RepoTags; give a name with --name");
    }
    images.emplace_back(manifest_digest, std::move(refs));
  }
  std::vector<ImageRecord> out;
  for (const auto& [digest, refs] : images) {
    for (const auto& ref : refs)
      out.push_back(tag(ref, digest));
  }
  return out;
}

std::vector<std::string> ImageStore::unpack(const Image& image) {
  std::vector<std::string> dirs;
  for (size_t i = 0; i < image.manifest.layers.size(); ++i) {
    const Descriptor& layer = image.manifest.layers[i];
    const Digest& diff_id = image.config.diff_ids[i];
    const std::string dir = layerPath(diff_id);
    dirs.push_back(dir);
    if (fs::exists(dir)) continue;
    const std::string tmp = tempPath("layer-" + diff_id.shortHex());
    fs::create_directories(tmp);
    try {
      const auto compression = layerCompression(layer.media_type);
      if (!compression) throw std::runtime_error("unsupported media type " + layer.media_type);
      const UnpackResult r = unpackLayer(blobPath(layer.digest), *compression, tmp);
      if (r.diff_id != diff_id) {
        throw std::runtime_error("uncompressed content has digest " + r.diff_id.str() +
                                 ", the image config says " + diff_id.str());
      }
      if (::rename(tmp.c_str(), dir.c_str()) != 0) {
        // Another unpacker got there first: theirs is as good as ours.
        if (errno != EEXIST && errno != ENOTEMPTY) throwErrno("rename " + tmp);
        removeTree(tmp);
      }
    } catch (const std::exception& e) {
      removeTree(tmp);
      throw std::runtime_error("image " + image.record.name + ": layer " + layer.digest.str() +
                               ": " + e.what());
    }
  }
  return dirs;
}

MountedRootfs ImageStore::prepareRootfs(const Image& image, const std::string& id,
                                        const std::string& container_dir, RootfsMode mode) {
  if (id.empty() || id.find('/') != std::string::npos || id.starts_with('.')) {
    throw std::invalid_argument("container id \"" + id + "\" is not a plain name");
  }
  writeFileAtomic(root_ + "/leases/" + id, image.record.manifest.str());
  try {
    return mountRootfs(unpack(image), container_dir, mode);
  } catch (...) {
    try {
      unmountRootfs(container_dir);
    } catch (const std::exception&) {
    }
    ::unlink((root_ + "/leases/" + id).c_str());
    throw;
  }
}

void ImageStore::releaseRootfs(const std::string& id, const std::string& container_dir) {
  unmountRootfs(container_dir);
  ::unlink((root_ + "/leases/" + id).c_str());
}

PullPolicy parsePullPolicy(std::string_view value, const Reference& image) {
  if (value == "Always") return PullPolicy::kAlways;
  if (value == "IfNotPresent") return PullPolicy::kIfNotPresent;
  if (value == "Never") return PullPolicy::kNever;
  if (value.empty()) return image.isLatest() ? PullPolicy::kAlways : PullPolicy::kIfNotPresent;
  throw std::invalid_argument("imagePullPolicy: unsupported value \"" + std::string(value) +
                              "\" (Always, IfNotPresent or Never)");
}

PullDecision decidePull(PullPolicy policy, bool present) {
  switch (policy) {
    case PullPolicy::kAlways:
      return PullDecision::kPull;
    case PullPolicy::kIfNotPresent:
      return present ? PullDecision::kUsePresent : PullDecision::kPull;
    case PullPolicy::kNever:
      return present ? PullDecision::kUsePresent : PullDecision::kNeverPullMissing;
  }
  return PullDecision::kPull;
}

}  // namespace skiff::kubelet::images
