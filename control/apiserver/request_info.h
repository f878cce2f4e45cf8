#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace skiff::apiserver {

// Query parameters, URL-decoded. A key given several times keeps every value in order.
using QueryParams = std::multimap<std::string, std::string, std::less<>>;

// Splits "a=1&b=x%20y" into decoded pairs ('+' is a space, as Go's url.ParseQuery reads it).
// Malformed escapes are kept as written.
QueryParams parseQuery(std::string_view query);
std::string percentDecode(std::string_view s, bool plus_is_space);
// A boolean query value as Go's strconv.ParseBool reads it (1, t, T, TRUE, true, True).
bool queryTrue(std::string_view value);

// What a request asks for, read from its method, path and query as Kubernetes'
// RequestInfoFactory reads them:
//   /api/v1/namespaces/{ns}/{resource}/{name}/{subresource}
//   /apis/{group}/{version}/{resource}            (cluster-scoped, or all namespaces)
//   /api/v1/watch/...                             (the deprecated watch prefix)
// Anything else (/healthz, /version, /openapi/v2, /api, /apis) is a non-resource request.
struct RequestInfo {
  bool is_resource_request = false;
  std::string path;
  // get, list, watch, create, update, patch, delete, deletecollection; for a non-resource request,
  // the lower-case HTTP method.
  std::string verb;
  std::string api_prefix;  // "api" or "apis"
  std::string api_group;   // "" for core
  std::string api_version;
  std::string namespace_;
  std::string resource;
  std::string subresource;
  std::string name;
  std::vector<std::string> parts;  // the path segments after the group and version
};

RequestInfo parseRequestInfo(std::string_view method, std::string_view path,
                             const QueryParams& query);

}  // namespace skiff::apiserver
