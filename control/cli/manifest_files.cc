#include "control/cli/manifest_files.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <stdexcept>

namespace skiff::cli {
namespace {

namespace fs = std::filesystem;

bool isManifestName(const fs::path& p) {
  auto ext = p.extension().string();
  return ext == ".yaml" || ext == ".yml" || ext == ".json";
}

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

std::vector<ManifestFile> readManifestFiles(const std::vector<std::string>& paths, bool recursive) {
  std::vector<ManifestFile> files;
  for (const auto& path : paths) {
    if (path == "-") {
      files.push_back(
          {"<stdin>",
           {std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()}});
      continue;
    }
    std::error_code ec;
    auto status = fs::status(path, ec);
    if (ec || !fs::exists(status))
      throw std::runtime_error("the path \"" + path + "\" does not exist");
    if (!fs::is_directory(status)) {
      files.push_back({path, readFile(path)});
      continue;
    }
    std::vector<fs::path> found;
    auto collect = [&](const auto& iterator) {
      for (const auto& entry : iterator) {
        if (entry.is_regular_file() && isManifestName(entry.path())) found.push_back(entry.path());
      }
    };
    if (recursive) {
      collect(fs::recursive_directory_iterator(path));
    } else {
      collect(fs::directory_iterator(path));
    }
    std::sort(found.begin(), found.end());
    for (const auto& f : found)
      files.push_back({f.string(), readFile(f)});
  }
  return files;
}

}  // namespace skiff::cli
