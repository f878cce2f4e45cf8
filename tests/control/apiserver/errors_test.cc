#include "control/apiserver/errors.h"

#include <gtest/gtest.h>

#include "control/api/codec.h"

namespace skiff::apiserver {
namespace {

TEST(ApiErrors, MessagesAndCodesAsKubernetes) {
  GroupResource deployments{"apps", "deployments"};
  GroupResource pods{"", "pods"};
  EXPECT_STREQ(notFound(pods, "web").what(), "pods \"web\" not found");
  EXPECT_EQ(notFound(pods, "web").code(), 404);
  EXPECT_STREQ(alreadyExists(deployments, "web").what(), "deployments.apps \"web\" already exists");
  EXPECT_EQ(alreadyExists(deployments, "web").reason(), "AlreadyExists");
  EXPECT_STREQ(staleUpdate(deployments, "web").what(),
               "Operation cannot be fulfilled on deployments.apps \"web\": the object has been "
               "modified; please apply your changes to the latest version and try again");
  EXPECT_EQ(staleUpdate(deployments, "web").code(), 409);
  EXPECT_EQ(gone("too old resource version: 5 (9)").reason(), "Expired");
  EXPECT_EQ(tooLarge(3145728).code(), 413);
  EXPECT_EQ(unsupportedMediaType("text/plain").code(), 415);
  EXPECT_EQ(methodNotAllowed().code(), 405);
  EXPECT_EQ(tooManyRequests("slow down", 1).details().retry_after_seconds(), 1);
  EXPECT_STREQ(forbidden(pods, "", "User \"bob\" cannot list resource \"pods\"").what(),
               "pods is forbidden: User \"bob\" cannot list resource \"pods\"");
}

TEST(ApiErrors, InvalidCarriesFieldCauses) {
  ApiError one = invalid("Deployment", "apps", "web",
                         {{"FieldValueInvalid", "spec.replicas",
                           "Invalid value: -1: must be greater than or equal to 0"}});
  EXPECT_STREQ(one.what(),
               "Deployment.apps \"web\" is invalid: spec.replicas: Invalid value: -1: must be "
               "greater than or equal to 0");
  ApiError two = invalid("Pod", "", "p",
                         {{"FieldValueRequired", "spec.containers[0].name", "Required value"},
                          {"FieldValueRequired", "spec.containers[0].image", "Required value"}});
  EXPECT_STREQ(two.what(),
               "Pod \"p\" is invalid: [spec.containers[0].name: Required value, "
               "spec.containers[0].image: Required value]");
  EXPECT_EQ(two.code(), 422);
  EXPECT_EQ(two.details().causes_size(), 2);
}

TEST(ApiErrors, StatusObjectAsKubectlReadsIt) {
  auto status = notFound({"apps", "deployments"}, "web").toStatus();
  EXPECT_EQ(api::encodeJson(status),
            R"({"apiVersion":"v1","kind":"Status","metadata":{},"status":"Failure",)"
            R"("message":"deployments.apps \"web\" not found","reason":"NotFound",)"
            R"("details":{"name":"web","group":"apps","kind":"deployments"},"code":404})");
}

}  // namespace
}  // namespace skiff::apiserver
