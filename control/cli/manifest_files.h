#pragma once

#include <string>
#include <vector>

namespace skiff::cli {

// A manifest file's name and text, as `-f` reads them.
struct ManifestFile {
  std::string name;
  std::string text;
};

// Reads what `-f` names, as kubectl does: a file, a directory (its *.yaml, *.yml and *.json files,
// sorted; with `recursive`, sub-directories too) or "-" for standard input.
// Throws std::runtime_error naming the path that cannot be read.
std::vector<ManifestFile> readManifestFiles(const std::vector<std::string>& paths, bool recursive);

}  // namespace skiff::cli
