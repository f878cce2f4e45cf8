#include "kubelet/images/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace skiff::kubelet::images {
namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";
constexpr const char* kOpaqueXattr = "trusted.overlay.opaque";

[[noreturn]] void throwErrno(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

// An owned file descriptor.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_;
};

// "./a//b/" -> "a/b"; throws for ".." components. "" for the layer's root.
std::string cleanEntryPath(std::string_view raw) {
  std::string out;
  size_t i = 0;
  while (i <= raw.size()) {
    size_t j = raw.find('/', i);
    if (j == std::string_view::npos) j = raw.size();
    const std::string_view part = raw.substr(i, j - i);
    if (part == "..") {
      throw std::runtime_error("layer entry \"" + std::string(raw) + "\" leaves the layer (..)");
    }
    if (!part.empty() && part != ".") {
      if (!out.empty()) out.push_back('/');
      out.append(part);
    }
    i = j + 1;
  }
  return out;
}

// Opens (creating as needed) the directory `rel` below `root_fd` without following symlinks.
Fd openDirBelow(int root_fd, const std::string& rel, const std::string& entry_for_errors) {
  Fd cur(::dup(root_fd));
  if (!cur.valid()) throwErrno("dup");
  size_t i = 0;
  while (i < rel.size()) {
    size_t j = rel.find('/', i);
    if (j == std::string::npos) j = rel.size();
    const std::string part = rel.substr(i, j - i);
    int fd = ::openat(cur.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
      if (::mkdirat(cur.get(), part.c_str(), 0755) != 0 && errno != EEXIST) {
        throwErrno("layer entry " + entry_for_errors + ": mkdir " + part);
      }
      fd = ::openat(cur.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) throwErrno("layer entry " + entry_for_errors + ": open directory " + part);
    cur = Fd(fd);
    i = j + 1;
  }
  return cur;
}

void removeAt(int dir_fd, const char* name);

// The names in a directory, without "." and "..".
std::vector<std::string> listDir(int dir_fd) {
  const int fd = ::dup(dir_fd);
  if (fd < 0) throwErrno("dup");
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    throwErrno("opendir");
  }
  ::rewinddir(d);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    const std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  ::closedir(d);
  return names;
}

void clearDir(int dir_fd) {
  for (const auto& n : listDir(dir_fd))
    removeAt(dir_fd, n.c_str());
}

void removeAt(int dir_fd, const char* name) {
  struct stat st;
  if (::fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return;
    throwErrno(std::string("stat ") + name);
  }
  if (S_ISDIR(st.st_mode)) {
    Fd sub(::openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!sub.valid()) throwErrno(std::string("open ") + name);
    clearDir(sub.get());
    if (::unlinkat(dir_fd, name, AT_REMOVEDIR) != 0 && errno != ENOENT) {
      throwErrno(std::string("rmdir ") + name);
    }
  } else if (::unlinkat(dir_fd, name, 0) != 0 && errno != ENOENT) {
    throwErrno(std::string("unlink ") + name);
  }
}

// The decompressed tar stream of a layer blob, hashed as libarchive reads it.
class LayerSource {
 public:
  LayerSource(const std::string& path, Compression compression) : compression_(compression) {
    fd_ = Fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd_.valid()) throwErrno("open layer " + path);
    if (compression_ == Compression::kGzip) {
      std::memset(&z_, 0, sizeof(z_));
      if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) throw std::runtime_error("zlib init failed");
      z_init_ = true;
    }
  }
  ~LayerSource() {
    if (z_init_) inflateEnd(&z_);
  }
  LayerSource(const LayerSource&) = delete;
  LayerSource& operator=(const LayerSource&) = delete;

  // The next chunk of tar bytes; 0 at the end.
  ssize_t next(const void** out) {
    const ssize_t n = produce();
    if (n > 0) hash_.update(out_.data(), static_cast<size_t>(n));
    *out = out_.data();
    return n;
  }
  // Reads (and hashes) what libarchive did not ask for: the tar's end padding.
  void drain() {
    const void* p;
    while (next(&p) > 0) {
    }
  }
  Digest finish() { return hash_.finish(); }
  uint64_t compressedBytes() const { return compressed_; }

 private:
  ssize_t readRaw(void* buf, size_t size) {
    while (true) {
      const ssize_t n = ::read(fd_.get(), buf, size);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throwErrno("read layer");
      compressed_ += static_cast<uint64_t>(n);
      return n;
    }
  }

  ssize_t produce() {
    if (compression_ == Compression::kNone) return readRaw(out_.data(), out_.size());
    while (true) {
      if (z_.avail_in == 0 && !in_eof_) {
        const ssize_t n = readRaw(in_.data(), in_.size());
        if (n == 0) {
          in_eof_ = true;
        } else {
          z_.next_in = in_.data();
          z_.avail_in = static_cast<uInt>(n);
        }
      }
      if (z_.avail_in == 0 && in_eof_) {
        if (!stream_end_ && started_) throw std::runtime_error("gzip stream is truncated");
        return 0;
      }
      if (stream_end_) {
        // Another gzip member follows (concatenated gzip is valid).
        inflateReset(&z_);
        stream_end_ = false;
      }
      started_ = true;
      z_.next_out = out_.data();
      z_.avail_out = static_cast<uInt>(out_.size());
      const int rc = inflate(&z_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        stream_end_ = true;
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        throw std::runtime_error(std::string("gzip: ") + (z_.msg ? z_.msg : "corrupt data"));
      }
      const size_t produced = out_.size() - z_.avail_out;
      if (produced > 0) return static_cast<ssize_t>(produced);
    }
  }

  Compression compression_;
  Fd fd_;
  z_stream z_{};
  bool z_init_ = false;
  bool in_eof_ = false;
  bool stream_end_ = false;
  bool started_ = false;
  uint64_t compressed_ = 0;
  std::array<unsigned char, 1 << 16> in_{};
  std::array<unsigned char, 1 << 18> out_{};
  Sha256 hash_;
};

la_ssize_t readCallback(archive* a, void* data, const void** buffer) {
  auto* source = static_cast<LayerSource*>(data);
  try {
    return source->next(buffer);
  } catch (const std::exception& e) {
    archive_set_error(a, EIO, "%s", e.what());
    return -1;
  }
}

struct ArchiveReader {
  archive* a = archive_read_new();
  ~ArchiveReader() { archive_read_free(a); }
};
struct ArchiveWriter {
  archive* a = archive_write_disk_new();
  ~ArchiveWriter() { archive_write_free(a); }
};

// sha256 of a zstd layer's decompressed stream (libarchive decompresses; zlib covers gzip).
Digest hashZstd(const std::string& path) {
  ArchiveReader r;
  archive_read_support_filter_zstd(r.a);
  archive_read_support_format_raw(r.a);
  if (archive_read_open_filename(r.a, path.c_str(), 1 << 16) != ARCHIVE_OK) {
    throw std::runtime_error("zstd layer " + path + ": " + archive_error_string(r.a));
  }
  archive_entry* e;
  if (archive_read_next_header(r.a, &e) != ARCHIVE_OK) {
    throw std::runtime_error("zstd layer " + path + ": " + archive_error_string(r.a));
  }
  Sha256 h;
  const void* buf;
  size_t size;
  la_int64_t offset;
  int rc;
  while ((rc = archive_read_data_block(r.a, &buf, &size, &offset)) == ARCHIVE_OK) {
    h.update(buf, size);
  }
  if (rc != ARCHIVE_EOF) {
    throw std::runtime_error("zstd layer " + path + ": " + archive_error_string(r.a));
  }
  return h.finish();
}

void writeWhiteout(int root_fd, const std::string& rel) {
  const size_t slash = rel.rfind('/');
  const std::string parent = slash == std::string::npos ? "" : rel.substr(0, slash);
  const std::string base = slash == std::string::npos ? rel : rel.substr(slash + 1);
  Fd dir = openDirBelow(root_fd, parent, rel);
  if (base == kOpaqueMarker) {
    if (::fsetxattr(dir.get(), kOpaqueXattr, "y", 1, 0) != 0) {
      throwErrno("layer entry " + rel + ": set opaque xattr");
    }
    return;
  }
  const std::string name = base.substr(kWhiteoutPrefix.size());
  if (name.empty() || name == "." || name == "..") {
    throw std::runtime_error("layer entry " + rel + ": invalid whiteout");
  }
  removeAt(dir.get(), name.c_str());
  if (::mknodat(dir.get(), name.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0) {
    throwErrno("layer entry " + rel + ": whiteout device for " + name);
  }
}

std::string realDir(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) throwErrno("realpath " + path);
  return buf;
}

// --- applyLayerDir ---

void copyXattrs(int src_dir, const char* name, int dst_dir, bool is_link) {
  const std::string src_path = "/proc/self/fd/" + std::to_string(src_dir) + "/" + name;
  const std::string dst_path = "/proc/self/fd/" + std::to_string(dst_dir) + "/" + name;
  std::array<char, 4096> names{};
  const ssize_t len = ::llistxattr(src_path.c_str(), names.data(), names.size());
  if (len <= 0) return;
  for (ssize_t i = 0; i < len;) {
    const char* key = names.data() + i;
    i += static_cast<ssize_t>(std::strlen(key)) + 1;
    if (std::string_view(key).starts_with("trusted.overlay.")) continue;
    std::array<char, 65536> value{};
    const ssize_t vlen = ::lgetxattr(src_path.c_str(), key, value.data(), value.size());
    if (vlen < 0) continue;
    if (::lsetxattr(dst_path.c_str(), key, value.data(), static_cast<size_t>(vlen), 0) != 0 &&
        !(is_link && errno == EPERM)) {
      throwErrno(std::string("set xattr ") + key + " on " + name);
    }
  }
}

void copyOwnerModeTimes(int dst_dir, const char* name, const struct stat& st, bool is_link) {
  if (::fchownat(dst_dir, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0 && errno != EPERM) {
    throwErrno(std::string("chown ") + name);
  }
  if (!is_link && ::fchmodat(dst_dir, name, st.st_mode & 07777, 0) != 0) {
    throwErrno(std::string("chmod ") + name);
  }
  const struct timespec times[2] = {st.st_atim, st.st_mtim};
  ::utimensat(dst_dir, name, times, AT_SYMLINK_NOFOLLOW);
}

void copyFileContent(int src_dir, const char* name, int dst_dir) {
  Fd in(::openat(src_dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!in.valid()) throwErrno(std::string("open ") + name);
  Fd out(::openat(dst_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!out.valid()) throwErrno(std::string("create ") + name);
  std::array<char, 1 << 16> buf{};
  while (true) {
    const ssize_t n = ::read(in.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throwErrno(std::string("read ") + name);
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      const ssize_t w = ::write(out.get(), buf.data() + off, static_cast<size_t>(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) throwErrno(std::string("write ") + name);
      off += w;
    }
  }
}

bool isOpaque(int dir_fd) {
  char v[2] = {};
  return ::fgetxattr(dir_fd, kOpaqueXattr, v, sizeof(v)) == 1 && v[0] == 'y';
}

void applyDir(int src, int dst) {
  const std::vector<std::string> names = listDir(src);
  for (const auto& n : names) {
    const char* name = n.c_str();
    struct stat st;
    if (::fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW) != 0) throwErrno(std::string("stat ") + n);
    if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
      removeAt(dst, name);
      continue;
    }
    struct stat dt;
    const bool exists = ::fstatat(dst, name, &dt, AT_SYMLINK_NOFOLLOW) == 0;
    if (S_ISDIR(st.st_mode)) {
      if (exists && !S_ISDIR(dt.st_mode)) removeAt(dst, name);
      if ((!exists || !S_ISDIR(dt.st_mode)) && ::mkdirat(dst, name, 0700) != 0) {
        throwErrno(std::string("mkdir ") + n);
      }
      Fd sfd(::openat(src, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      Fd dfd(::openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sfd.valid() || !dfd.valid()) throwErrno(std::string("open directory ") + n);
      if (exists && isOpaque(sfd.get())) clearDir(dfd.get());
      applyDir(sfd.get(), dfd.get());
      copyXattrs(src, name, dst, false);
      copyOwnerModeTimes(dst, name, st, false);
      continue;
    }
    if (exists) removeAt(dst, name);
    if (S_ISREG(st.st_mode)) {
      copyFileContent(src, name, dst);
    } else if (S_ISLNK(st.st_mode)) {
      std::array<char, PATH_MAX> target{};
      const ssize_t len = ::readlinkat(src, name, target.data(), target.size() - 1);
      if (len < 0) throwErrno(std::string("readlink ") + n);
      if (::symlinkat(target.data(), dst, name) != 0) throwErrno(std::string("symlink ") + n);
    } else if (::mknodat(dst, name, st.st_mode, st.st_rdev) != 0) {
      throwErrno(std::string("mknod ") + n);
    }
    const bool link = S_ISLNK(st.st_mode);
    copyXattrs(src, name, dst, link);
    copyOwnerModeTimes(dst, name, st, link);
  }
}

void ensureDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) throwErrno("mkdir " + path);
}

}  // namespace

UnpackResult unpackLayer(const std::string& blob_path, Compression compression,
                         const std::string& dest_in) {
  const std::string dest = realDir(dest_in);
  Fd root(::open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) throwErrno("open " + dest);

  UnpackResult result;
  std::optional<Digest> zstd_digest;
  if (compression == Compression::kZstd) zstd_digest = hashZstd(blob_path);

  LayerSource source(blob_path,
                     compression == Compression::kZstd ? Compression::kNone : compression);
  ArchiveReader reader;
  archive_read_support_format_tar(reader.a);
  archive_read_support_format_gnutar(reader.a);
  if (compression == Compression::kZstd) archive_read_support_filter_zstd(reader.a);
  if (archive_read_open(reader.a, &source, nullptr, readCallback, nullptr) != ARCHIVE_OK) {
    throw std::runtime_error("layer " + blob_path + ": " + archive_error_string(reader.a));
  }
  ArchiveWriter writer;
  archive_write_disk_set_options(
      writer.a, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_OWNER |
                    ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_ACL | ARCHIVE_EXTRACT_UNLINK |
                    ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT);
  archive_write_disk_set_standard_lookup(writer.a);

  while (true) {
    archive_entry* entry;
    const int rc = archive_read_next_header(reader.a, &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN) {
      throw std::runtime_error("layer " + blob_path +
                               ": bad tar stream: " + archive_error_string(reader.a));
    }
    ++result.entries;
    const std::string rel = cleanEntryPath(archive_entry_pathname(entry));
    if (rel.empty()) continue;  // the layer's root directory itself
    const size_t slash = rel.rfind('/');
    const std::string_view base = slash == std::string::npos
                                      ? std::string_view(rel)
                                      : std::string_view(rel).substr(slash + 1);
    if (base.starts_with(kWhiteoutPrefix)) {
      writeWhiteout(root.get(), rel);
      continue;
    }
    const std::string full = dest + "/" + rel;
    archive_entry_copy_pathname(entry, full.c_str());
    if (const char* link = archive_entry_hardlink(entry); link != nullptr) {
      const std::string target = cleanEntryPath(link);
      if (target.empty()) throw std::runtime_error("layer entry " + rel + ": hard link to root");
      archive_entry_copy_hardlink(entry, (dest + "/" + target).c_str());
    }
    if (archive_write_header(writer.a, entry) < ARCHIVE_WARN) {
      throw std::runtime_error("layer entry " + rel + ": " + archive_error_string(writer.a));
    }
    if (archive_entry_size(entry) > 0) {
      const void* buf;
      size_t size;
      la_int64_t offset;
      int drc;
      while ((drc = archive_read_data_block(reader.a, &buf, &size, &offset)) == ARCHIVE_OK) {
        if (archive_write_data_block(writer.a, buf, size, offset) < ARCHIVE_WARN) {
          throw std::runtime_error("layer entry " + rel + ": " + archive_error_string(writer.a));
        }
      }
      if (drc != ARCHIVE_EOF) {
        throw std::runtime_error("layer entry " + rel + ": " + archive_error_string(reader.a));
      }
    }
    if (archive_write_finish_entry(writer.a) < ARCHIVE_WARN) {
      throw std::runtime_error("layer entry " + rel + ": " + archive_error_string(writer.a));
    }
  }
  if (archive_write_close(writer.a) < ARCHIVE_WARN) {
    throw std::runtime_error("layer " + blob_path + ": " + archive_error_string(writer.a));
  }
  source.drain();
  result.compressed_bytes = source.compressedBytes();
  result.diff_id = zstd_digest ? *zstd_digest : source.finish();
  return result;
}

void applyLayerDir(const std::string& layer_dir, const std::string& target) {
  Fd src(::open(layer_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!src.valid()) throwErrno("open layer " + layer_dir);
  Fd dst(::open(target.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dst.valid()) throwErrno("open " + target);
  try {
    applyDir(src.get(), dst.get());
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("copy layer " + layer_dir + " to " + target + ": " + e.what());
  }
}

void removeTree(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string parent =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  Fd dir(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) {
    if (errno == ENOENT) return;
    throwErrno("open " + parent);
  }
  removeAt(dir.get(), name.c_str());
}

MountedRootfs mountRootfs(const std::vector<std::string>& layers, const std::string& container_dir,
                          RootfsMode mode) {
  MountedRootfs out;
  out.path = container_dir + "/rootfs";
  ensureDir(out.path);
  if (mode != RootfsMode::kCopy) {
    std::vector<std::string> lowers(layers.rbegin(), layers.rend());
    if (lowers.empty()) {
      ensureDir(container_dir + "/empty");
      lowers.push_back(container_dir + "/empty");
    }
    const std::string upper = container_dir + "/upper";
    const std::string work = container_dir + "/work";
    ensureDir(upper);
    ensureDir(work);
    std::string options = "lowerdir=";
    bool bad_path = false;
    for (size_t i = 0; i < lowers.size(); ++i) {
      if (lowers[i].find_first_of(":,") != std::string::npos) bad_path = true;
      if (i) options += ":";
      options += lowers[i];
    }
    options += ",upperdir=" + upper + ",workdir=" + work;
    int err = 0;
    if (bad_path || options.size() >= 4000) {
      err = EINVAL;
    } else if (::mount("overlay", out.path.c_str(), "overlay", 0, options.c_str()) != 0) {
      err = errno;
    }
    if (err == 0) {
      out.overlay = true;
      return out;
    }
    if (mode == RootfsMode::kOverlay) {
      errno = err;
      throwErrno("overlay mount of " + out.path);
    }
    removeTree(upper);
    removeTree(work);
  }
  for (const auto& layer : layers)
    applyLayerDir(layer, out.path);
  return out;
}

void unmountRootfs(const std::string& container_dir) {
  const std::string rootfs = container_dir + "/rootfs";
  if (::umount2(rootfs.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    throwErrno("unmount " + rootfs);
  }
  for (const char* part : {"/rootfs", "/upper", "/work", "/empty"}) {
    removeTree(container_dir + part);
  }
}

}  // namespace skiff::kubelet::images
