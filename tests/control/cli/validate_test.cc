#include "control/cli/validate.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace skiff::cli {
namespace {

class ValidateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("skiff-validate-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    auto path = dir_ / name;
    std::ofstream(path) << text;
    return path.string();
  }

  int run(ValidateOptions options) {
    out_.str("");
    err_.str("");
    return runValidate(options, out_, err_);
  }

  std::filesystem::path dir_;
  std::ostringstream out_, err_;
};

TEST_F(ValidateTest, ExamplesAreValid) {
  ASSERT_EQ(run({.files = {std::string(SKIFF_SOURCE_DIR) + "/examples"}}), 0) << err_.str();
  EXPECT_EQ(out_.str(),
            "deployment.apps/web (namespace default) valid\n"
            "service/web (namespace default) valid\n"
            "service/web-nodeport (namespace default) valid\n");
}

TEST_F(ValidateTest, ErrorsNameFileLineColumnAndField) {
  std::string path = write("bad.yaml",
                           "apiVersion: apps/v1\n"
                           "kind: Deployment\n"
                           "metadata:\n"
                           "  name: web\n"
                           "spec:\n"
                           "  replicas: \"3\"\n"
                           "  template:\n"
                           "    spec:\n"
                           "      containers:\n"
                           "      - name: web\n"
                           "        imagePullPolcy: Always\n");
  EXPECT_EQ(run({.files = {path}}), 1);
  EXPECT_EQ(err_.str(),
            "error: " + path + ":6:13: spec.replicas: expected integer, got string \"3\"\n" +
                "error: " + path +
                ":11:9: spec.template.spec.containers[0].imagePullPolcy: unknown field\n");
  EXPECT_EQ(out_.str(), "");
}

TEST_F(ValidateTest, WarnModeReportsUnknownFieldsAndSucceeds) {
  std::string path =
      write("warn.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\nfoo: 1\n");
  EXPECT_EQ(run({.files = {path}, .validate = "warn"}), 0);
  EXPECT_EQ(err_.str(), "warning: " + path + ":5:1: foo: unknown field\n");
  EXPECT_EQ(out_.str(), "configmap/c valid\n");
}

TEST_F(ValidateTest, PrintsObjectsAsYamlJsonOrName) {
  std::string path =
      write("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n");
  ASSERT_EQ(run({.files = {path}, .output = "yaml"}), 0);
  EXPECT_EQ(out_.str(), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n");
  ASSERT_EQ(run({.files = {path}, .output = "name"}), 0);
  EXPECT_EQ(out_.str(), "configmap/c\n");
  ASSERT_EQ(run({.files = {path}, .output = "json"}), 0);
  EXPECT_NE(out_.str().find("\"kind\": \"ConfigMap\""), std::string::npos);
  EXPECT_EQ(run({.files = {path}, .output = "table"}), 2);
  EXPECT_EQ(run({.files = {path}, .validate = "maybe"}), 2);
}

TEST_F(ValidateTest, DirectoriesReadManifestFilesInOrder) {
  write("b.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: b\n");
  write("a.json", R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}})");
  write("notes.txt", "not a manifest");
  std::filesystem::create_directories(dir_ / "sub");
  write("sub/c.yml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: c\n");
  ASSERT_EQ(run({.files = {dir_.string()}, .output = "name"}), 0);
  EXPECT_EQ(out_.str(), "namespace/a\nnamespace/b\n");
  ASSERT_EQ(run({.files = {dir_.string()}, .recursive = true, .output = "name"}), 0);
  EXPECT_EQ(out_.str(), "namespace/a\nnamespace/b\nnamespace/c\n");
}

TEST_F(ValidateTest, MissingPathsAndEmptyDirectoriesFail) {
  EXPECT_EQ(run({.files = {(dir_ / "nope.yaml").string()}}), 1);
  EXPECT_NE(err_.str().find("does not exist"), std::string::npos);
  EXPECT_EQ(run({.files = {dir_.string()}}), 1);
  EXPECT_NE(err_.str().find("no manifests found"), std::string::npos);
}

}  // namespace
}  // namespace skiff::cli
