#include "kubelet/volumes/local_path_cleaner.h"

#include <algorithm>
#include <filesystem>
#include <iostream>

#include "control/client/typed.h"
#include "skiff/api/core_v1.pb.h"

namespace skiff::kubelet::volumes {
namespace fs = std::filesystem;
using api::core::v1::PersistentVolume;

namespace {

bool hasFinalizer(const PersistentVolume& pv) {
  const auto& f = pv.metadata().finalizers();
  return std::find(f.begin(), f.end(), kLocalPathDataFinalizer) != f.end();
}

std::string annotation(const PersistentVolume& pv, const char* key) {
  auto it = pv.metadata().annotations().find(key);
  return it == pv.metadata().annotations().end() ? "" : it->second;
}

}  // namespace

bool LocalPathCleaner::releaseVolume(const std::string& name) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    PersistentVolume pv;
    try {
      pv = client::get<PersistentVolume>(client_, "", name);
    } catch (const client::ApiError& e) {
      return e.isNotFound();  // gone: nothing holds it any more
    } catch (const std::exception&) {
      return false;
    }
    if (!hasFinalizer(pv)) return true;
    auto* f = pv.mutable_metadata()->mutable_finalizers();
    for (int i = f->size() - 1; i >= 0; --i) {
      if (f->Get(i) == kLocalPathDataFinalizer) f->DeleteSubrange(i, 1);
    }
    try {
      client::update(client_, pv);
      return true;
    } catch (const client::ApiError& e) {
      if (e.isNotFound()) return true;
      if (!e.isConflict()) {
        std::cerr << "skiff agent: local-path: volume " << name << ": " << e.what() << std::endl;
        return false;
      }
    } catch (const std::exception&) {
      return false;
    }
  }
  return false;
}

int LocalPathCleaner::cleanOnce() {
  for (auto it = pending_.begin(); it != pending_.end();)
    it = releaseVolume(*it) ? pending_.erase(it) : std::next(it);
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    const size_t sep = name.find('_');
    if (!name.starts_with("pvc-") || sep == std::string::npos || !entry.is_directory(ec)) continue;
    const std::string pv_name = name.substr(0, sep);
    PersistentVolume pv;
    try {
      pv = client::get<PersistentVolume>(client_, "", pv_name);
    } catch (const std::exception&) {
      continue;  // gone, not ours to read, or the apiserver away: leave the data
    }
    if (!pv.metadata().has_deletion_timestamp() || !hasFinalizer(pv) ||
        annotation(pv, "pv.kubernetes.io/provisioned-by") != "skiff.io/local-path" ||
        annotation(pv, "local.path.provisioner/selected-node") != node_ ||
        fs::path(pv.spec().local().path()).lexically_normal() != entry.path().lexically_normal()) {
      continue;
    }
    fs::remove_all(entry.path(), ec);
    if (ec) {
      std::cerr << "skiff agent: local-path: cannot remove " << entry.path() << ": " << ec.message()
                << std::endl;
      continue;
    }
    ++removed;
    // The data is gone: let the volume go (or try again next time).
    if (!releaseVolume(pv_name)) pending_.insert(pv_name);
  }
  return removed;
}

}  // namespace skiff::kubelet::volumes
