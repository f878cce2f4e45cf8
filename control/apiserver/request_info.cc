#include "control/apiserver/request_info.h"

#include <algorithm>
#include <cctype>

namespace skiff::apiserver {
namespace {

std::vector<std::string> splitPath(std::string_view path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > start) parts.push_back(percentDecode(path.substr(start, slash - start), false));
    start = slash + 1;
  }
  return parts;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool isWatch(const QueryParams& query) {
  auto it = query.find("watch");
  return it != query.end() && queryTrue(it->second);
}

}  // namespace

bool queryTrue(std::string_view v) {
  return v == "1" || v == "t" || v == "T" || v == "TRUE" || v == "true" || v == "True";
}

std::string percentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 2 < s.size()) {
      int hi = hexValue(s[i + 1]);
      int lo = hexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += plus_is_space && c == '+' ? ' ' : c;
  }
  return out;
}

QueryParams parseQuery(std::string_view query) {
  QueryParams params;
  size_t start = 0;
  while (start < query.size()) {
    size_t amp = query.find('&', start);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view pair = query.substr(start, amp - start);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      std::string_view key = pair.substr(0, eq);
      std::string_view value = eq == std::string_view::npos ? "" : pair.substr(eq + 1);
      params.emplace(percentDecode(key, true), percentDecode(value, true));
    }
    start = amp + 1;
  }
  return params;
}

RequestInfo parseRequestInfo(std::string_view method, std::string_view path,
                             const QueryParams& query) {
  RequestInfo info;
  info.path = std::string(path);
  info.verb = lower(method);
  std::vector<std::string> parts = splitPath(path);

  // /api/{version}/... or /apis/{group}/{version}/...
  size_t at = 0;
  if (parts.empty() || (parts[0] != "api" && parts[0] != "apis")) return info;
  info.api_prefix = parts[0];
  at = 1;
  if (info.api_prefix == "apis") {
    if (parts.size() < 3) return info;  // /apis, /apis/{group}: discovery
    info.api_group = parts[1];
    at = 2;
  } else if (parts.size() < 2) {
    return info;  // /api: discovery
  }
  info.api_version = parts[at++];
  if (at >= parts.size()) return info;  // /api/v1, /apis/apps/v1: discovery

  info.is_resource_request = true;
  if (method == "GET" || method == "HEAD") {
    info.verb = "get";
  } else if (method == "POST") {
    info.verb = "create";
  } else if (method == "PUT") {
    info.verb = "update";
  } else if (method == "PATCH") {
    info.verb = "patch";
  } else if (method == "DELETE") {
    info.verb = "delete";
  } else {
    info.verb = "";
  }

  // The deprecated /watch/ prefix turns a get or list into a watch.
  if (parts[at] == "watch") {
    info.verb = "watch";
    ++at;
  }
  std::vector<std::string> rest(parts.begin() + static_cast<std::ptrdiff_t>(at), parts.end());

  // namespaces/{ns}/{resource}/... is a namespaced resource; namespaces/{name}[/status|/finalize]
  // is the Namespace itself (and its namespace is its own name, as in Kubernetes).
  if (!rest.empty() && rest[0] == "namespaces" && rest.size() > 1) {
    info.namespace_ = rest[1];
    if (rest.size() > 2 && rest[2] != "status" && rest[2] != "finalize") {
      rest.erase(rest.begin(), rest.begin() + 2);
    }
  }
  info.parts = rest;
  if (rest.size() >= 3) info.subresource = rest[2];
  if (rest.size() >= 2) info.name = rest[1];
  if (!rest.empty()) info.resource = rest[0];

  // A get without a name is a list or a watch; a list naming one object by field selector is
  // about that object (kubectl get pod x -w).
  if (info.name.empty() && info.verb == "get") {
    info.verb = isWatch(query) ? "watch" : "list";
  }
  if (info.name.empty() && (info.verb == "list" || info.verb == "watch")) {
    auto it = query.find("fieldSelector");
    if (it != query.end()) {
      std::string_view selector = it->second;
      for (std::string_view prefix : {"metadata.name==", "metadata.name="}) {
        if (selector.starts_with(prefix) && selector.find(',') == std::string_view::npos) {
          std::string_view name = selector.substr(prefix.size());
          if (!name.empty() && name.find('/') == std::string_view::npos && name != "." &&
              name != "..") {
            info.name = std::string(name);
          }
          break;
        }
      }
    }
  }
  if (info.name.empty() && info.verb == "delete") info.verb = "deletecollection";
  return info;
}

}  // namespace skiff::apiserver
