#pragma once

#include <fstream>
#include <sstream>
#include <string>

namespace skiff::testing {

// Reads a file under tests/fixtures/.
inline std::string readFixture(const std::string& relative) {
  std::ifstream in(std::string(SKIFF_SOURCE_DIR) + "/tests/fixtures/" + relative, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read fixture " + relative);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace skiff::testing
