#include "kubelet/images/reference.h"

#include <stdexcept>

#include "kubelet/images/digest.h"

namespace skiff::kubelet::images {
namespace {

bool isLowerAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// One path component: [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)*
bool validComponent(std::string_view c) {
  if (c.empty() || !isLowerAlnum(c.front()) || !isLowerAlnum(c.back())) return false;
  for (size_t i = 0; i < c.size(); ++i) {
    const char ch = c[i];
    if (isLowerAlnum(ch)) continue;
    if (ch == '.' || ch == '-' || ch == '_') {
      // A separator is followed by more of its own kind only for "__" and "--...".
      if (ch == '.' && c[i + 1] == '.') return false;
      if (ch == '_' && c[i + 1] == '_' && i + 2 < c.size() && c[i + 2] == '_') return false;
      if (ch == '.' && c[i + 1] != '.' && !isLowerAlnum(c[i + 1])) return false;
      continue;
    }
    return false;
  }
  return true;
}

bool validTag(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  for (size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    const bool word =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!word && (i == 0 || (c != '.' && c != '-'))) return false;
  }
  return true;
}

bool validDomain(std::string_view d) {
  if (d.empty()) return false;
  for (char c : d) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

Reference Reference::parse(std::string_view text) {
  auto fail = [&](const std::string& why) {
    throw std::invalid_argument("invalid image reference \"" + std::string(text) + "\": " + why);
  };
  if (text.empty()) fail("empty");
  Reference ref;
  std::string_view rest = text;
  if (const size_t at = rest.find('@'); at != std::string_view::npos) {
    std::string error;
    if (!Digest::parse(rest.substr(at + 1), &error)) fail(error);
    ref.digest = std::string(rest.substr(at + 1));
    rest = rest.substr(0, at);
  }
  // A tag is after the last ':' that follows the last '/'.
  const size_t slash = rest.rfind('/');
  const size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    ref.tag = std::string(rest.substr(colon + 1));
    if (!validTag(ref.tag)) fail("invalid tag \"" + ref.tag + "\"");
    rest = rest.substr(0, colon);
  }
  std::string_view path = rest;
  const size_t first_slash = rest.find('/');
  if (first_slash != std::string_view::npos) {
    const std::string_view first = rest.substr(0, first_slash);
    if (first.find('.') != std::string_view::npos || first.find(':') != std::string_view::npos ||
        first == "localhost") {
      if (!validDomain(first)) fail("invalid registry host \"" + std::string(first) + "\"");
      ref.domain = std::string(first);
      path = rest.substr(first_slash + 1);
    }
  }
  if (ref.domain.empty()) ref.domain = "docker.io";
  if (ref.domain == "index.docker.io") ref.domain = "docker.io";
  if (path.empty()) fail("no repository name");
  size_t start = 0;
  while (true) {
    const size_t end = path.find('/', start);
    const std::string_view component =
        path.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (!validComponent(component)) {
      fail("invalid repository component \"" + std::string(component) +
           "\" (lower-case letters, digits and separators . _ -)");
    }
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  ref.repository = std::string(path);
  if (ref.domain == "docker.io" && ref.repository.find('/') == std::string::npos) {
    ref.repository = "library/" + ref.repository;
  }
  if (ref.tag.empty() && ref.digest.empty()) ref.tag = "latest";
  if (ref.name().size() > 255) fail("name longer than 255 characters");
  return ref;
}

std::string Reference::str() const {
  std::string s = name();
  if (!tag.empty()) s += ":" + tag;
  if (!digest.empty()) s += "@" + digest;
  return s;
}

std::string Reference::registryHost() const {
  return domain == "docker.io" ? "registry-1.docker.io" : domain;
}

}  // namespace skiff::kubelet::images
