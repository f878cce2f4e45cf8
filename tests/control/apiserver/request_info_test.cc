#include "control/apiserver/request_info.h"

#include <gtest/gtest.h>

namespace skiff::apiserver {
namespace {

struct Case {
  const char* method;
  const char* target;  // path?query
  bool resource;
  const char* verb;
  const char* group;
  const char* version;
  const char* ns;
  const char* resource_name;
  const char* name;
  const char* subresource;
};

RequestInfo parse(const std::string& target, const char* method) {
  size_t q = target.find('?');
  std::string path = target.substr(0, q);
  QueryParams query = q == std::string::npos ? QueryParams{} : parseQuery(target.substr(q + 1));
  return parseRequestInfo(method, path, query);
}

TEST(RequestInfo, ReadsPathsAsKubernetesDoes) {
  // Cases from Kubernetes' requestinfo_test.go, plus Skiff's own.
  const Case cases[] = {
      {"GET", "/api/v1/namespaces", true, "list", "", "v1", "", "namespaces", "", ""},
      {"GET", "/api/v1/namespaces/other", true, "get", "", "v1", "other", "namespaces", "other",
       ""},
      {"PUT", "/api/v1/namespaces/other/status", true, "update", "", "v1", "other", "namespaces",
       "other", "status"},
      {"PUT", "/api/v1/namespaces/other/finalize", true, "update", "", "v1", "other", "namespaces",
       "other", "finalize"},
      {"GET", "/api/v1/namespaces/other/pods", true, "list", "", "v1", "other", "pods", "", ""},
      {"GET", "/api/v1/namespaces/other/pods/foo", true, "get", "", "v1", "other", "pods", "foo",
       ""},
      {"GET", "/api/v1/pods", true, "list", "", "v1", "", "pods", "", ""},
      {"GET", "/api/v1/namespaces/other/pods/foo/log?container=a", true, "get", "", "v1", "other",
       "pods", "foo", "log"},
      {"POST", "/api/v1/namespaces/other/pods", true, "create", "", "v1", "other", "pods", "", ""},
      {"POST", "/api/v1/namespaces/other/pods/foo/binding", true, "create", "", "v1", "other",
       "pods", "foo", "binding"},
      {"PUT", "/api/v1/namespaces/other/pods/foo", true, "update", "", "v1", "other", "pods", "foo",
       ""},
      {"PATCH", "/api/v1/namespaces/other/pods/foo", true, "patch", "", "v1", "other", "pods",
       "foo", ""},
      {"DELETE", "/api/v1/namespaces/other/pods/foo", true, "delete", "", "v1", "other", "pods",
       "foo", ""},
      {"DELETE", "/api/v1/namespaces/other/pods", true, "deletecollection", "", "v1", "other",
       "pods", "", ""},
      {"GET", "/api/v1/namespaces/other/pods?watch=true", true, "watch", "", "v1", "other", "pods",
       "", ""},
      {"GET", "/api/v1/watch/namespaces/other/pods", true, "watch", "", "v1", "other", "pods", "",
       ""},
      {"GET", "/api/v1/watch/namespaces/other/pods/foo", true, "watch", "", "v1", "other", "pods",
       "foo", ""},
      {"GET", "/api/v1/namespaces/other/pods?watch=true&fieldSelector=metadata.name%3Dfoo", true,
       "watch", "", "v1", "other", "pods", "foo", ""},
      {"GET", "/api/v1/namespaces/other/pods?fieldSelector=metadata.name==foo,spec.nodeName=n",
       true, "list", "", "v1", "other", "pods", "", ""},
      {"GET", "/api/v1/nodes/node-1", true, "get", "", "v1", "", "nodes", "node-1", ""},
      {"GET", "/apis/apps/v1/namespaces/web/deployments/nginx", true, "get", "apps", "v1", "web",
       "deployments", "nginx", ""},
      {"PUT", "/apis/apps/v1/namespaces/web/deployments/nginx/scale", true, "update", "apps", "v1",
       "web", "deployments", "nginx", "scale"},
      {"GET", "/apis/discovery.k8s.io/v1/endpointslices", true, "list", "discovery.k8s.io", "v1",
       "", "endpointslices", "", ""},
      {"GET", "/apis/apps/v1/deployments?watch=1", true, "watch", "apps", "v1", "", "deployments",
       "", ""},
      {"GET", "/api/v1/pods?watch=True", true, "watch", "", "v1", "", "pods", "", ""},
      {"GET", "/api/v1/pods?watch=false", true, "list", "", "v1", "", "pods", "", ""},
      {"GET", "/api/v1/namespaces/other/pods/foo%20bar", true, "get", "", "v1", "other", "pods",
       "foo bar", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.method) + " " + c.target);
    RequestInfo info = parse(c.target, c.method);
    EXPECT_EQ(info.is_resource_request, c.resource);
    EXPECT_EQ(info.verb, c.verb);
    EXPECT_EQ(info.api_group, c.group);
    EXPECT_EQ(info.api_version, c.version);
    EXPECT_EQ(info.namespace_, c.ns);
    EXPECT_EQ(info.resource, c.resource_name);
    EXPECT_EQ(info.name, c.name);
    EXPECT_EQ(info.subresource, c.subresource);
  }
}

TEST(RequestInfo, NonResourceRequests) {
  for (const char* path : {"/healthz", "/version", "/api", "/api/v1", "/apis", "/apis/apps",
                           "/apis/apps/v1", "/openapi/v2", "/metrics", "/"}) {
    RequestInfo info = parse(path, "GET");
    EXPECT_FALSE(info.is_resource_request) << path;
    EXPECT_EQ(info.verb, "get") << path;
  }
  EXPECT_EQ(parse("/apis/apps/v1", "GET").api_group, "apps");
}

TEST(Query, DecodesPairs) {
  QueryParams q =
      parseQuery("labelSelector=app%3Dweb%2Ctier+in+(a)&limit=500&x&dryRun=All&dryRun=x");
  EXPECT_EQ(q.find("labelSelector")->second, "app=web,tier in (a)");
  EXPECT_EQ(q.find("limit")->second, "500");
  EXPECT_EQ(q.find("x")->second, "");
  EXPECT_EQ(q.count("dryRun"), 2u);
  EXPECT_EQ(percentDecode("%zz%4", false), "%zz%4");
  EXPECT_EQ(percentDecode("a+b", false), "a+b");
}

}  // namespace
}  // namespace skiff::apiserver
