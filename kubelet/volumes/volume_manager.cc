#include "kubelet/volumes/volume_manager.h"

#include <sys/mount.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace skiff::kubelet::volumes {
namespace fs = std::filesystem;
namespace core = api::core::v1;
namespace {

bool isMountPoint(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, mount_point;
    fields >> id >> parent >> devno >> root >> mount_point;
    if (mount_point == path) return true;
  }
  return false;
}

void mountTmpfs(const std::string& dir, const std::string& what) {
  if (isMountPoint(dir)) return;
  if (::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0) {
    throw VolumeError(what + ": cannot mount a tmpfs on " + dir + ": " + std::strerror(errno));
  }
}

// A relative path that stays inside its directory.
void checkRelative(const std::string& path, const std::string& what) {
  if (path.empty() || path[0] == '/') {
    throw VolumeError(what + ": path \"" + path + "\" must be relative");
  }
  for (const auto& part : fs::path(path)) {
    if (part == "..") throw VolumeError(what + ": path \"" + path + "\" must not contain \"..\"");
  }
  if (path.starts_with(".."))
    throw VolumeError(what + ": path \"" + path + "\" must not start with \"..\"");
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The files a configMap or secret volume shows: every key, or only `items` at their paths.
template <class Source>
std::map<std::string, ProjectedFile> projectKeys(
    const std::map<std::string, std::string>& data,
    const google::protobuf::RepeatedPtrField<core::KeyToPath>& items, const Source& source,
    const std::string& what) {
  const int mode = source.has_default_mode() ? source.default_mode() : 0644;
  std::map<std::string, ProjectedFile> files;
  if (items.empty()) {
    for (const auto& [key, value] : data) {
      checkRelative(key, what);
      files[key] = {value, mode};
    }
    return files;
  }
  for (const auto& item : items) {
    auto it = data.find(item.key());
    if (it == data.end()) {
      if (source.optional()) continue;
      throw VolumeError(what + ": key \"" + item.key() + "\" not found");
    }
    checkRelative(item.path(), what);
    files[item.path()] = {it->second, item.has_mode() ? item.mode() : mode};
  }
  return files;
}

void checkHostPath(const core::HostPathVolumeSource& source, const std::string& what) {
  const std::string& path = source.path();
  if (path.empty() || path[0] != '/') {
    throw VolumeError(what + ": hostPath.path \"" + path + "\" must be absolute");
  }
  const std::string& type = source.type();
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  auto fail = [&](const std::string& want) {
    throw VolumeError(what + ": hostPath " + path + " is not " + want + " (type " + type + ")");
  };
  if (type.empty()) return;
  if (type == "DirectoryOrCreate") {
    if (!fs::exists(st)) {
      fs::create_directories(path, ec);
      if (ec) throw VolumeError(what + ": cannot create " + path + ": " + ec.message());
      ::chmod(path.c_str(), 0755);
    } else if (!fs::is_directory(st)) {
      fail("a directory");
    }
  } else if (type == "Directory") {
    if (!fs::is_directory(st)) fail("a directory");
  } else if (type == "FileOrCreate") {
    if (!fs::exists(st)) {
      std::ofstream out(path, std::ios::app);
      if (!out) throw VolumeError(what + ": cannot create " + path);
    } else if (!fs::is_regular_file(st)) {
      fail("a file");
    }
  } else if (type == "File") {
    if (!fs::is_regular_file(st)) fail("a file");
  } else if (type == "Socket") {
    if (!fs::is_socket(st)) fail("a socket");
  } else if (type == "CharDevice") {
    if (!fs::is_character_file(st)) fail("a character device");
  } else if (type == "BlockDevice") {
    if (!fs::is_block_file(st)) fail("a block device");
  } else {
    throw VolumeError(what + ": unknown hostPath type \"" + type + "\"");
  }
}

}  // namespace

void writeAtomically(const std::string& dir, const std::map<std::string, ProjectedFile>& files) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw VolumeError("cannot create " + dir + ": " + ec.message());
  const fs::path data_link = fs::path(dir) / "..data";
  // Unchanged content: nothing to do.
  if (fs::is_symlink(data_link)) {
    const fs::path current = fs::path(dir) / fs::read_symlink(data_link);
    bool same = true;
    size_t count = 0;
    for (const auto& e : fs::recursive_directory_iterator(current, ec)) {
      if (!e.is_regular_file()) continue;
      ++count;
      const std::string rel = fs::relative(e.path(), current).string();
      auto it = files.find(rel);
      struct stat st {};
      same = same && it != files.end() && ::stat(e.path().c_str(), &st) == 0 &&
             static_cast<int>(st.st_mode & 07777) == it->second.mode &&
             readFile(e.path().string()) == it->second.content;
    }
    if (same && count == files.size()) return;
  }
  const std::string generation =
      "..gen_" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  const fs::path gen_dir = fs::path(dir) / generation;
  fs::create_directories(gen_dir, ec);
  if (ec) throw VolumeError("cannot create " + gen_dir.string() + ": " + ec.message());
  std::set<std::string> top;
  for (const auto& [rel, file] : files) {
    const fs::path target = gen_dir / rel;
    fs::create_directories(target.parent_path(), ec);
    std::ofstream out(target, std::ios::binary | std::ios::trunc);
    out << file.content;
    out.close();
    if (!out || ::chmod(target.c_str(), static_cast<mode_t>(file.mode)) != 0) {
      throw VolumeError("cannot write " + target.string());
    }
    top.insert(fs::path(rel).begin()->string());
  }
  const fs::path tmp_link = fs::path(dir) / "..data_tmp";
  fs::remove(tmp_link, ec);
  fs::create_symlink(generation, tmp_link, ec);
  if (ec) throw VolumeError("cannot link " + tmp_link.string() + ": " + ec.message());
  std::string old_generation;
  if (fs::is_symlink(data_link)) old_generation = fs::read_symlink(data_link).string();
  fs::rename(tmp_link, data_link, ec);
  if (ec) throw VolumeError("cannot swap " + data_link.string() + ": " + ec.message());
  // Top-level names point through ..data; stale ones go.
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with("..")) continue;
    if (!top.count(name)) fs::remove_all(e.path(), ec);
  }
  for (const auto& name : top) {
    const fs::path link = fs::path(dir) / name;
    if (!fs::is_symlink(link)) fs::create_symlink(fs::path("..data") / name, link, ec);
  }
  if (!old_generation.empty() && old_generation != generation) {
    fs::remove_all(fs::path(dir) / old_generation, ec);
  }
}

std::map<std::string, PodVolume> VolumeManager::setUp(const core::Pod& pod,
                                                      const std::string& pod_dir) {
  std::map<std::string, PodVolume> out;
  const std::string& ns = pod.metadata().namespace_();
  for (int i = 0; i < pod.spec().volumes_size(); ++i) {
    const core::Volume& v = pod.spec().volumes(i);
    const std::string what = "volume \"" + v.name() + "\"";
    const std::string dir = pod_dir + "/volumes/" + v.name();
    std::error_code ec;
    if (v.has_host_path()) {
      checkHostPath(v.host_path(), what);
      out[v.name()] = {v.host_path().path(), false};
      continue;
    }
    if (v.has_empty_dir() || v.has_config_map() || v.has_secret()) {
      fs::create_directories(dir, ec);
      if (ec) throw VolumeError(what + ": cannot create " + dir + ": " + ec.message());
    }
    if (v.has_empty_dir()) {
      const std::string& medium = v.empty_dir().medium();
      if (medium == "Memory") {
        if (options_.use_tmpfs) mountTmpfs(dir, what);
      } else if (!medium.empty()) {
        throw VolumeError(what + ": emptyDir medium \"" + medium + "\" is not supported");
      }
      ::chmod(dir.c_str(), 0777);  // emptyDir is world-writable in Kubernetes
      out[v.name()] = {dir, false};
    } else if (v.has_config_map()) {
      if (fetcher_ == nullptr) throw VolumeError(what + ": this kubelet has no API access");
      const auto& source = v.config_map();
      std::optional<core::ConfigMap> cm;
      try {
        cm = fetcher_->getConfigMap(ns, source.name());
      } catch (const std::exception& e) {
        throw VolumeError(what + ": configmap \"" + source.name() + "\": " + e.what());
      }
      std::map<std::string, std::string> data;
      if (cm) {
        data.insert(cm->data().begin(), cm->data().end());
        data.insert(cm->binary_data().begin(), cm->binary_data().end());
      } else if (!source.optional()) {
        throw VolumeError(what + ": configmap \"" + source.name() + "\" not found");
      }
      writeAtomically(dir, projectKeys(data, source.items(), source, what));
      out[v.name()] = {dir, true};
    } else if (v.has_secret()) {
      if (fetcher_ == nullptr) throw VolumeError(what + ": this kubelet has no API access");
      const auto& source = v.secret();
      if (options_.use_tmpfs) mountTmpfs(dir, what);
      std::optional<core::Secret> secret;
      try {
        secret = fetcher_->getSecret(ns, source.secret_name());
      } catch (const std::exception& e) {
        throw VolumeError(what + ": secret \"" + source.secret_name() + "\": " + e.what());
      }
      std::map<std::string, std::string> data;
      if (secret) {
        data.insert(secret->data().begin(), secret->data().end());
      } else if (!source.optional()) {
        throw VolumeError(what + ": secret \"" + source.secret_name() + "\" not found");
      }
      writeAtomically(dir, projectKeys(data, source.items(), source, what));
      out[v.name()] = {dir, true};
    } else {
      throw VolumeError(what + ": only emptyDir, hostPath, configMap and secret are supported");
    }
  }
  return out;
}

void VolumeManager::tearDown(const std::string& pod_dir) {
  const std::string root = pod_dir + "/volumes";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string path = e.path().string();
    for (int i = 0; i < 8 && isMountPoint(path); ++i) {
      if (::umount2(path.c_str(), MNT_DETACH) != 0) break;
    }
  }
  fs::remove_all(root, ec);
  if (ec) throw VolumeError("cannot remove " + root + ": " + ec.message());
}

std::vector<MountSpec> VolumeManager::containerMounts(
    const core::Container& container, const std::map<std::string, PodVolume>& volumes,
    const std::string& field) {
  std::vector<MountSpec> mounts;
  for (int i = 0; i < container.volume_mounts_size(); ++i) {
    const core::VolumeMount& m = container.volume_mounts(i);
    const std::string where = field + ".volumeMounts[" + std::to_string(i) + "]";
    auto it = volumes.find(m.name());
    if (it == volumes.end()) {
      throw VolumeError(where + ": no volume named \"" + m.name() + "\"");
    }
    if (m.mount_path().empty() || m.mount_path()[0] != '/') {
      throw VolumeError(where + ".mountPath \"" + m.mount_path() + "\" must be absolute");
    }
    std::string source = it->second.host_path;
    if (!m.sub_path().empty()) {
      checkRelative(m.sub_path(), where + ".subPath");
      source += "/" + m.sub_path();
      std::error_code ec;
      if (!fs::exists(source)) {
        fs::create_directories(source, ec);
        if (ec) throw VolumeError(where + ": cannot create subPath " + source);
      }
    }
    const bool read_only = m.read_only() || it->second.read_only;
    mounts.push_back({m.mount_path(), source, "bind", {"rbind", read_only ? "ro" : "rw"}});
  }
  return mounts;
}

}  // namespace skiff::kubelet::volumes
