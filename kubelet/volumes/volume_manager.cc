#include "kubelet/volumes/volume_manager.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
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

// The files a configMap or secret (volume or projection) shows: every key, or only `items` at
// their paths.
std::map<std::string, ProjectedFile> projectKeys(
    const std::map<std::string, std::string>& data,
    const google::protobuf::RepeatedPtrField<core::KeyToPath>& items, bool optional, int mode,
    const std::string& what) {
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
      if (optional) continue;
      throw VolumeError(what + ": key \"" + item.key() + "\" not found");
    }
    checkRelative(item.path(), what);
    files[item.path()] = {it->second, item.has_mode() ? item.mode() : mode};
  }
  return files;
}

std::map<std::string, std::string> configMapData(VolumeSourceFetcher* fetcher,
                                                 const std::string& ns, const std::string& name,
                                                 bool optional, const std::string& what) {
  if (fetcher == nullptr) throw VolumeError(what + ": this kubelet has no API access");
  std::optional<core::ConfigMap> cm;
  try {
    cm = fetcher->getConfigMap(ns, name);
  } catch (const std::exception& e) {
    throw VolumeError(what + ": configmap \"" + name + "\": " + e.what());
  }
  std::map<std::string, std::string> data;
  if (cm) {
    data.insert(cm->data().begin(), cm->data().end());
    data.insert(cm->binary_data().begin(), cm->binary_data().end());
  } else if (!optional) {
    throw VolumeError(what + ": configmap \"" + name + "\" not found");
  }
  return data;
}

std::map<std::string, std::string> secretData(VolumeSourceFetcher* fetcher, const std::string& ns,
                                              const std::string& name, bool optional,
                                              const std::string& what) {
  if (fetcher == nullptr) throw VolumeError(what + ": this kubelet has no API access");
  std::optional<core::Secret> secret;
  try {
    secret = fetcher->getSecret(ns, name);
  } catch (const std::exception& e) {
    throw VolumeError(what + ": secret \"" + name + "\": " + e.what());
  }
  std::map<std::string, std::string> data;
  if (secret) {
    data.insert(secret->data().begin(), secret->data().end());
  } else if (!optional) {
    throw VolumeError(what + ": secret \"" + name + "\" not found");
  }
  return data;
}

// Go's strconv.Quote for the ASCII range (what fieldpath.FormatMap writes values with); bytes
// from 0x80 up pass as they are (UTF-8 text).
std::string goQuote(const std::string& s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\a':
        out += "\\a";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\v':
        out += "\\v";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

// fieldpath.FormatMap: key="value" lines in key order, no trailing newline.
std::string formatMap(const google::protobuf::Map<std::string, std::string>& m) {
  const std::map<std::string, std::string> sorted(m.begin(), m.end());
  std::string out;
  for (const auto& [k, v] : sorted) {
    if (!out.empty()) out += '\n';
    out += k + "=" + goQuote(v);
  }
  return out;
}

// "metadata.labels['app']" -> "app" for `prefix` "metadata.labels".
std::optional<std::string> subscript(const std::string& path, const std::string& prefix) {
  if (!path.starts_with(prefix + "['") || !path.ends_with("']")) return std::nullopt;
  return path.substr(prefix.size() + 2, path.size() - prefix.size() - 4);
}

// The fields a downwardAPI volume file may show (validVolumeDownwardAPIFieldPathExpressions).
std::string downwardValue(const core::Pod& pod, const std::string& path, const std::string& what) {
  const auto& meta = pod.metadata();
  if (path == "metadata.name") return meta.name();
  if (path == "metadata.namespace") return meta.namespace_();
  if (path == "metadata.uid") return meta.uid();
  if (path == "metadata.labels") return formatMap(meta.labels());
  if (path == "metadata.annotations") return formatMap(meta.annotations());
  if (auto key = subscript(path, "metadata.labels")) {
    auto it = meta.labels().find(*key);
    return it == meta.labels().end() ? std::string() : it->second;
  }
  if (auto key = subscript(path, "metadata.annotations")) {
    auto it = meta.annotations().find(*key);
    return it == meta.annotations().end() ? std::string() : it->second;
  }
  throw VolumeError(what + ": fieldRef.fieldPath \"" + path +
                    "\" is not supported in a downwardAPI volume");
}

std::map<std::string, ProjectedFile> downwardFiles(
    const core::Pod& pod,
    const google::protobuf::RepeatedPtrField<core::DownwardAPIVolumeFile>& items, int mode,
    const std::string& what) {
  std::map<std::string, ProjectedFile> files;
  for (const auto& item : items) {
    checkRelative(item.path(), what);
    if (item.has_field_ref()) {
      files[item.path()] = {downwardValue(pod, item.field_ref().field_path(), what),
                            item.has_mode() ? item.mode() : mode};
    } else if (item.has_resource_field_ref()) {
      throw VolumeError(what + ": " + item.path() +
                        ": resourceFieldRef is not supported by this kubelet");
    } else {
      throw VolumeError(what + ": " + item.path() + ": neither fieldRef nor resourceFieldRef");
    }
  }
  return files;
}

// securitycontext.DetermineEffectiveRunAsUser over every container (FsUserFrom): the one user
// they all run as, else none.
std::optional<int64_t> fsUserOf(const core::Pod& pod) {
  std::optional<int64_t> user;
  const auto& spec = pod.spec();
  for (const auto* list : {&spec.init_containers(), &spec.containers()}) {
    for (const auto& c : *list) {
      std::optional<int64_t> effective;
      if (c.security_context().has_run_as_user()) {
        effective = c.security_context().run_as_user();
      } else if (spec.security_context().has_run_as_user()) {
        effective = spec.security_context().run_as_user();
      }
      if (!effective || (user && *user != *effective)) return std::nullopt;
      user = effective;
    }
  }
  return user;
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
             (it->second.uid < 0 || static_cast<int64_t>(st.st_uid) == it->second.uid) &&
             (it->second.gid < 0 || static_cast<int64_t>(st.st_gid) == it->second.gid) &&
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
    if ((file.uid >= 0 || file.gid >= 0) &&
        ::chown(target.c_str(),
                file.uid >= 0 ? static_cast<uid_t>(file.uid) : static_cast<uid_t>(-1),
                file.gid >= 0 ? static_cast<gid_t>(file.gid) : static_cast<gid_t>(-1)) != 0) {
      throw VolumeError("cannot chown " + target.string() + ": " + std::strerror(errno));
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

std::optional<core::PersistentVolumeClaim> VolumeSourceFetcher::getPersistentVolumeClaim(
    const std::string&, const std::string&) {
  throw std::runtime_error("this kubelet cannot read PersistentVolumeClaims");
}

std::optional<core::PersistentVolume> VolumeSourceFetcher::getPersistentVolume(const std::string&) {
  throw std::runtime_error("this kubelet cannot read PersistentVolumes");
}

PodVolume VolumeManager::claimVolume(const core::Pod& pod, const core::Volume& volume,
                                     const std::string& what) {
  const std::string& uid = pod.metadata().uid();
  const auto& source = volume.persistent_volume_claim();
  {
    std::lock_guard lock(claims_mu_);
    auto it = claims_.find(uid);
    if (it != claims_.end()) {
      auto v = it->second.find(volume.name());
      if (v != it->second.end()) return v->second;
    }
  }
  if (fetcher_ == nullptr) throw VolumeError(what + ": this kubelet has no API access");
  const std::string& ns = pod.metadata().namespace_();
  const std::string claim_key = ns + "/" + source.claim_name();
  std::optional<core::PersistentVolumeClaim> claim;
  try {
    claim = fetcher_->getPersistentVolumeClaim(ns, source.claim_name());
  } catch (const std::exception& e) {
    throw VolumeError(what + ": persistentvolumeclaim \"" + claim_key + "\": " + e.what());
  }
  if (!claim) throw VolumeError(what + ": persistentvolumeclaim \"" + claim_key + "\" not found");
  if (claim->metadata().has_deletion_timestamp()) {
    throw VolumeError(what + ": persistentvolumeclaim \"" + claim_key + "\" is being deleted");
  }
  const std::string& pv_name = claim->spec().volume_name();
  if (claim->status().phase() != "Bound" || pv_name.empty()) {
    throw VolumeError(what + ": persistentvolumeclaim \"" + claim_key + "\" is not bound (phase " +
                      (claim->status().phase().empty() ? "Pending" : claim->status().phase()) +
                      ")");
  }
  std::optional<core::PersistentVolume> pv;
  try {
    pv = fetcher_->getPersistentVolume(pv_name);
  } catch (const std::exception& e) {
    throw VolumeError(what + ": persistentvolume \"" + pv_name + "\": " + e.what());
  }
  if (!pv) throw VolumeError(what + ": persistentvolume \"" + pv_name + "\" not found");
  if (pv->spec().claim_ref().uid() != claim->metadata().uid()) {
    throw VolumeError(what + ": persistentvolume \"" + pv_name + "\" is not bound to claim \"" +
                      claim_key + "\"");
  }
  if (pv->spec().volume_mode() == "Block") {
    throw VolumeError(what + ": persistentvolume \"" + pv_name +
                      "\": volumeMode Block is not "
                      "supported");
  }
  PodVolume out;
  out.read_only = source.read_only();
  const std::string pv_what = what + ": persistentvolume \"" + pv_name + "\"";
  if (pv->spec().has_host_path()) {
    checkHostPath(pv->spec().host_path(), pv_what);
    out.host_path = pv->spec().host_path().path();
  } else if (pv->spec().has_local()) {
    const std::string& path = pv->spec().local().path();
    if (path.empty() || path[0] != '/') {
      throw VolumeError(pv_what + ": local.path \"" + path + "\" must be absolute");
    }
    std::error_code ec;
    auto provisioned = pv->metadata().annotations().find("pv.kubernetes.io/provisioned-by");
    if (provisioned != pv->metadata().annotations().end() &&
        provisioned->second == "skiff.io/local-path" && !fs::exists(path, ec)) {
      fs::create_directories(path, ec);
      if (ec) throw VolumeError(pv_what + ": cannot create " + path + ": " + ec.message());
      ::chmod(path.c_str(), 0777);
    }
    if (!fs::is_directory(path, ec)) {
      throw VolumeError(pv_what + ": local.path " + path + " is not a directory on this node");
    }
    out.host_path = path;
  } else {
    throw VolumeError(pv_what + ": only hostPath and local PersistentVolumes are supported");
  }
  std::lock_guard lock(claims_mu_);
  claims_[uid][volume.name()] = out;
  return out;
}

api::authentication::v1::TokenRequest VolumeSourceFetcher::requestServiceAccountToken(
    const std::string&, const std::string&, const api::authentication::v1::TokenRequest&) {
  throw std::runtime_error("this kubelet cannot request ServiceAccount tokens");
}

std::map<std::string, ProjectedFile> VolumeManager::projectedFiles(
    const core::Pod& pod, const core::ProjectedVolumeSource& source, const std::string& what) {
  const std::string& ns = pod.metadata().namespace_();
  const int mode = source.has_default_mode() ? source.default_mode() : 0644;
  const auto& psc = pod.spec().security_context();
  const std::optional<int64_t> fs_group =
      psc.has_fs_group() ? std::optional<int64_t>(psc.fs_group()) : std::nullopt;
  std::map<std::string, ProjectedFile> files;
  auto add = [&](std::map<std::string, ProjectedFile> more) {
    for (auto& [path, file] : more)
      files[path] = std::move(file);
  };
  for (const auto& s : source.sources()) {
    if (s.has_secret()) {
      const auto& p = s.secret();
      add(projectKeys(secretData(fetcher_, ns, p.name(), p.optional(), what), p.items(),
                      p.optional(), mode, what));
    } else if (s.has_config_map()) {
      const auto& p = s.config_map();
      add(projectKeys(configMapData(fetcher_, ns, p.name(), p.optional(), what), p.items(),
                      p.optional(), mode, what));
    } else if (s.has_downward_api()) {
      add(downwardFiles(pod, s.downward_api().items(), mode, what));
    } else if (s.has_service_account_token()) {
      const auto& p = s.service_account_token();
      checkRelative(p.path(), what);
      if (fetcher_ == nullptr) throw VolumeError(what + ": this kubelet has no API access");
      const std::string sa =
          pod.spec().service_account_name().empty() ? "default" : pod.spec().service_account_name();
      api::authentication::v1::TokenRequest request;
      if (!p.audience().empty()) request.mutable_spec()->add_audiences(p.audience());
      request.mutable_spec()->set_expiration_seconds(
          p.has_expiration_seconds() ? p.expiration_seconds() : 3600);
      auto* ref = request.mutable_spec()->mutable_bound_object_ref();
      ref->set_api_version("v1");
      ref->set_kind("Pod");
      ref->set_name(pod.metadata().name());
      ref->set_uid(pod.metadata().uid());
      std::string token;
      try {
        token = tokens_.token(*fetcher_, ns, sa, request).status().token();
      } catch (const std::exception& e) {
        throw VolumeError(what + ": serviceaccount \"" + sa + "\": " + e.what());
      }
      ProjectedFile file{std::move(token), mode};
      const std::optional<int64_t> fs_user = fsUserOf(pod);
      if (fs_user || fs_group) file.mode = 0600;
      if (fs_user) file.uid = *fs_user;
      files[p.path()] = std::move(file);
    } else {
      throw VolumeError(what +
                        ": a projected source without secret, configMap, downwardAPI or "
                        "serviceAccountToken");
    }
  }
  if (fs_group) {
    // SetVolumeOwnership of a read-only volume: the group, and group read on every file.
    for (auto& [path, file] : files) {
      file.gid = *fs_group;
      file.mode |= 0440;
    }
  }
  return files;
}

std::map<std::string, PodVolume> VolumeManager::setUp(const core::Pod& pod,
                                                      const std::string& pod_dir) {
  std::map<std::string, PodVolume> out;
  const std::string& ns = pod.metadata().namespace_();
  if (fetcher_ != nullptr) fetcher_->registerPod(pod);
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
    if (v.has_persistent_volume_claim()) {
      out[v.name()] = claimVolume(pod, v, what);
      continue;
    }
    if (v.has_empty_dir() || v.has_config_map() || v.has_secret() || v.has_downward_api() ||
        v.has_projected()) {
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
      const auto& source = v.config_map();
      const int mode = source.has_default_mode() ? source.default_mode() : 0644;
      writeAtomically(
          dir, projectKeys(configMapData(fetcher_, ns, source.name(), source.optional(), what),
                           source.items(), source.optional(), mode, what));
      out[v.name()] = {dir, true};
    } else if (v.has_secret()) {
      if (fetcher_ == nullptr) throw VolumeError(what + ": this kubelet has no API access");
      const auto& source = v.secret();
      if (options_.use_tmpfs) mountTmpfs(dir, what);
      const int mode = source.has_default_mode() ? source.default_mode() : 0644;
      writeAtomically(
          dir, projectKeys(secretData(fetcher_, ns, source.secret_name(), source.optional(), what),
                           source.items(), source.optional(), mode, what));
      out[v.name()] = {dir, true};
    } else if (v.has_downward_api()) {
      const auto& source = v.downward_api();
      if (options_.use_tmpfs) mountTmpfs(dir, what);
      const int mode = source.has_default_mode() ? source.default_mode() : 0644;
      writeAtomically(dir, downwardFiles(pod, source.items(), mode, what));
      out[v.name()] = {dir, true};
    } else if (v.has_projected()) {
      if (options_.use_tmpfs) mountTmpfs(dir, what);
      writeAtomically(dir, projectedFiles(pod, v.projected(), what));
      out[v.name()] = {dir, true};
    } else {
      throw VolumeError(what +
                        ": only emptyDir, hostPath, persistentVolumeClaim, configMap, secret, "
                        "downwardAPI and projected are supported");
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
  tokens_.forgetPod(fs::path(pod_dir).filename().string());
  {
    std::lock_guard lock(claims_mu_);
    claims_.erase(fs::path(pod_dir).filename().string());
  }
  if (fetcher_ != nullptr) fetcher_->unregisterPod(fs::path(pod_dir).filename().string());
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
