// Every verb end to end against a real apiserver in this process (HTTPS, its admin kubeconfig),
// called as the `skiff` binary calls them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "control/api/json.h"
#include "control/apiserver/server.h"
#include "control/cli/apply_command.h"
#include "control/cli/apply_patch.h"
#include "control/cli/describe_command.h"
#include "control/cli/get_command.h"
#include "control/cli/info_commands.h"
#include "control/cli/object_commands.h"
#include "control/cli/rollout_command.h"
#include "control/client/rest_client.h"

namespace skiff::cli {
namespace {

using api::Value;
namespace fs = std::filesystem;

const std::string kFixtures = std::string(SKIFF_SOURCE_DIR) + "/tests/fixtures/cli";

// A Client that answers the first `conflicts` patches with 409 Conflict, as a concurrent writer
// would make the apiserver answer, and passes everything else to the real client.
class ConflictingClient : public client::Client {
 public:
  ConflictingClient(client::ClientPtr inner, int conflicts)
      : inner_(std::move(inner)), conflicts_(conflicts) {}
  Value get(const api::ResourceType& t, std::string_view ns, std::string_view n) override {
    return inner_->get(t, ns, n);
  }
  Value list(const api::ResourceType& t, std::string_view ns,
             const client::ListOptions& o) override {
    return inner_->list(t, ns, o);
  }
  Value create(const api::ResourceType& t, std::string_view ns, const Value& v,
               const client::WriteOptions& o) override {
    return inner_->create(t, ns, v, o);
  }
  Value update(const api::ResourceType& t, std::string_view ns, const Value& v,
               const client::WriteOptions& o) override {
    return inner_->update(t, ns, v, o);
  }
  Value updateStatus(const api::ResourceType& t, std::string_view ns, const Value& v,
                     const client::WriteOptions& o) override {
    return inner_->updateStatus(t, ns, v, o);
  }
  Value patch(const api::ResourceType& t, std::string_view ns, std::string_view n,
              client::PatchType p, std::string_view body, const client::WriteOptions& o,
              std::string_view sub) override {
    ++patches;
    if (!o.dry_run && conflicts_ > 0) {
      --conflicts_;
      throw client::ApiError(409, "Conflict",
                             "Operation cannot be fulfilled: the object has been "
                             "modified; please apply your changes to the latest "
                             "version and try again");
    }
    return inner_->patch(t, ns, n, p, body, o, sub);
  }
  Value remove(const api::ResourceType& t, std::string_view ns, std::string_view n,
               const client::DeleteOptions& o) override {
    return inner_->remove(t, ns, n, o);
  }
  Value removeCollection(const api::ResourceType& t, std::string_view ns,
                         const client::ListOptions& l, const client::DeleteOptions& o) override {
    return inner_->removeCollection(t, ns, l, o);
  }
  client::WatchStreamPtr watch(const api::ResourceType& t, std::string_view ns,
                               const client::WatchOptions& o) override {
    return inner_->watch(t, ns, o);
  }
  Value getScale(const api::ResourceType& t, std::string_view ns, std::string_view n) override {
    return inner_->getScale(t, ns, n);
  }
  Value updateScale(const api::ResourceType& t, std::string_view ns, const Value& s) override {
    return inner_->updateScale(t, ns, s);
  }
  void bind(std::string_view ns, std::string_view pod, std::string_view node) override {
    inner_->bind(ns, pod, node);
  }
  client::RawResponse raw(const client::RawRequest& r) override { return inner_->raw(r); }
  std::vector<std::string> lastWarnings() const override { return inner_->lastWarnings(); }

  std::atomic<int> patches{0};

 private:
  client::ClientPtr inner_;
  std::atomic<int> conflicts_;
};

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("skiff-cli-" + std::to_string(::getpid())));
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    server_ = new apiserver::ApiServer(
        {.data_dir = (*dir_ / "server").string(), .port = 0, .fsync = false});
    server_->start();
  }
  static void TearDownTestSuite() {
    server_->stop();
    delete server_;
    fs::remove_all(*dir_);
    delete dir_;
  }
  void SetUp() override {
    saved_factory_ = clientFactory();
    // Each test in its own namespace.
    ns_ = "t-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name());
    for (auto& ch : ns_)
      ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    ASSERT_EQ(run([&](CliContext& c, std::ostream& o, std::ostream& e) {
                return runCreate(c, {.what = "namespace", .name = ns_}, o, e);
              }),
              0)
        << err_;
  }
  void TearDown() override { clientFactory() = saved_factory_; }

  GlobalOptions globals() const { return {.kubeconfig = server_->adminKubeconfig(), .ns = ns_}; }
  int run(const std::function<int(CliContext&, std::ostream&, std::ostream&)>& verb,
          GlobalOptions g = {}) {
    if (g.kubeconfig.empty()) g = globals();
    CliContext context(g);
    std::ostringstream out, err;
    int code = verb(context, out, err);
    out_ = out.str();
    err_ = err.str();
    return code;
  }
  int apply(ApplyOptions options) {
    return run([&](CliContext& c, std::ostream& o, std::ostream& e) {
      return runApply(c, options, o, e);
    });
  }
  int get(GetOptions options) {
    return run(
        [&](CliContext& c, std::ostream& o, std::ostream& e) { return runGet(c, options, o, e); });
  }
  client::ClientPtr client() const {
    return client::makeRestClient(
        client::loadClientConfig({.kubeconfig = server_->adminKubeconfig()}));
  }
  std::string write(const std::string& name, const std::string& text) {
    fs::path p = *dir_ / (ns_ + "-" + name);
    std::ofstream(p) << text;
    return p.string();
  }
  size_t count(const char* type) {
    Value list = client()->list(resolveType(type), ns_);
    return list.find("items")->items().size();
  }

  static fs::path* dir_;
  static apiserver::ApiServer* server_;
  ClientFactory saved_factory_;
  std::string ns_;
  std::string out_, err_;
};

fs::path* CliTest::dir_ = nullptr;
apiserver::ApiServer* CliTest::server_ = nullptr;

TEST_F(CliTest, ApplyCreatesConfiguresAndLeavesUnchanged) {
  ASSERT_EQ(apply({.files = {kFixtures + "/v1"}}), 0) << err_;
  EXPECT_EQ(out_,
            "configmap/app-config created\ndeployment.apps/shop created\nservice/shop created\n");
  ASSERT_EQ(apply({.files = {kFixtures + "/v1"}}), 0) << err_;
  EXPECT_EQ(out_,
            "configmap/app-config unchanged\ndeployment.apps/shop unchanged\nservice/shop "
            "unchanged\n");
  ASSERT_EQ(apply({.files = {kFixtures + "/v2/app.yaml"}}), 0) << err_;
  EXPECT_EQ(out_,
            "configmap/app-config configured\ndeployment.apps/shop configured\nservice/shop "
            "configured\nsecret/shop-secret created\n");
  Value d = client()->get(resolveType("deployments"), ns_, "shop");
  EXPECT_EQ(fieldInt(d, "spec.replicas"), 2);
  EXPECT_EQ(fieldText(d, "spec.strategy.type"), "Recreate");
  EXPECT_EQ(field(d, "spec.strategy.rollingUpdate"), nullptr);
  EXPECT_EQ(field(d, "spec.template.spec.containers")->items().size(), 1u);
  EXPECT_EQ(field(d, "metadata.labels.stage"), nullptr);
  // The annotation holds what was applied, as kubectl writes it.
  std::string annotation = field(d, "metadata.annotations")->find(kLastAppliedAnnotation)->text();
  EXPECT_TRUE(annotation.ends_with("}\n"));
  EXPECT_NE(annotation.find("\"namespace\":\"" + ns_ + "\""), std::string::npos);
  // -o name and server dry run.
  ASSERT_EQ(apply({.files = {kFixtures + "/v1"}, .dry_run = "server", .output = ""}), 0) << err_;
  EXPECT_NE(out_.find("deployment.apps/shop configured (server dry run)"), std::string::npos);
  EXPECT_EQ(fieldInt(client()->get(resolveType("deployments"), ns_, "shop"), "spec.replicas"), 2);
}

TEST_F(CliTest, ApplyOfBadInputAppliesNothing) {
  EXPECT_EQ(apply({.files = {kFixtures + "/bad/unknown-field.yaml"}}), 1);
  EXPECT_NE(err_.find("unknown-field.yaml:23:9: spec.template.spec.containers[0].imagePullPolcy: "
                      "unknown field"),
            std::string::npos)
      << err_;
  EXPECT_EQ(apply({.files = {kFixtures + "/bad/broken.yaml"}}), 1);
  EXPECT_NE(err_.find("broken.yaml:"), std::string::npos) << err_;
  EXPECT_EQ(apply({.files = {kFixtures + "/bad/server-invalid.yaml"}}), 1);
  EXPECT_NE(err_.find("Error from server (Invalid): error when creating \"" + kFixtures +
                      "/bad/server-invalid.yaml:10:1\": Service \"invalid-port\" is invalid: "
                      "spec.ports[0].port"),
            std::string::npos)
      << err_;
  EXPECT_NE(err_.find("nothing was applied"), std::string::npos);
  EXPECT_EQ(out_, "");
  EXPECT_EQ(count("configmaps"), 0u);
  EXPECT_EQ(count("services"), 0u);
  // An object for another namespace than -n is refused before anything is sent.
  std::string other = write("other.yaml",
                            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n"
                            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: x}\n");
  EXPECT_EQ(apply({.files = {other}}), 1);
  EXPECT_NE(err_.find("does not match the namespace"), std::string::npos) << err_;
  EXPECT_EQ(count("configmaps"), 0u);
}

TEST_F(CliTest, ApplyRetriesOnConflict) {
  ASSERT_EQ(apply({.files = {kFixtures + "/v1"}}), 0) << err_;
  ConflictingClient* conflicting = nullptr;
  clientFactory() = [&](const client::ClientConfig& config, const GlobalOptions&) {
    auto c = std::make_unique<ConflictingClient>(client::makeRestClient(config), 2);
    conflicting = c.get();
    return c;
  };
  ASSERT_EQ(apply({.files = {kFixtures + "/v2/app.yaml"}}), 0) << err_;
  EXPECT_NE(out_.find("deployment.apps/shop configured"), std::string::npos);
  // Three dry-run patches, then the first real patch twice more after the two conflicts.
  EXPECT_EQ(conflicting->patches.load(), 3 + 3 + 2);
  EXPECT_EQ(fieldInt(client()->get(resolveType("deployments"), ns_, "shop"), "spec.replicas"), 2);
  // With more conflicts than retries, the error is reported and the exit code is 1.
  clientFactory() = [&](const client::ClientConfig& config, const GlobalOptions&) {
    return std::make_unique<ConflictingClient>(client::makeRestClient(config), 100);
  };
  EXPECT_EQ(apply({.files = {kFixtures + "/v1"}}), 1);
  EXPECT_NE(err_.find("Error from server (Conflict)"), std::string::npos) << err_;
}

TEST_F(CliTest, ApplyPrunesWhatLeftTheFiles) {
  std::string both = write("both.yaml",
                           "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {set: "
                           "x}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, "
                           "labels: {set: x}}\n");
  std::string one =
      write("one.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {set: x}}\n");
  ASSERT_EQ(apply({.files = {both}}), 0) << err_;
  ASSERT_EQ(apply({.files = {one}, .prune = true, .selector = "set=x"}), 0) << err_;
  EXPECT_EQ(out_, "configmap/a unchanged\nconfigmap/b pruned\n");
  EXPECT_EQ(count("configmaps"), 1u);
  EXPECT_EQ(apply({.files = {one}, .prune = true}), 1);
}

// (A short name: the test namespaces share the NAMESPACE column of GetTablesObjectsAndErrors.)
TEST_F(CliTest, ServerSideApply) {
  ASSERT_EQ(apply({.files = {kFixtures + "/v1"}, .server_side = true}), 0) << err_;
  EXPECT_EQ(out_,
            "configmap/app-config serverside-applied\ndeployment.apps/shop serverside-applied\n"
            "service/shop serverside-applied\n");
  const auto& deployments = resolveType("deployments");
  Value d = client()->get(deployments, ns_, "shop");
  EXPECT_EQ(fieldInt(d, "spec.replicas"), 3);
  const Value* managed = field(d, "metadata.managedFields");
  ASSERT_NE(managed, nullptr);
  ASSERT_EQ(managed->items().size(), 1u);
  EXPECT_EQ(fieldText(managed->items()[0], "manager"), "skiff");
  EXPECT_EQ(fieldText(managed->items()[0], "operation"), "Apply");
  const Value* annotations = field(d, "metadata.annotations");
  EXPECT_TRUE(annotations == nullptr || annotations->find(kLastAppliedAnnotation) == nullptr);
  // Another manager changes the replicas: applying the file again conflicts and applies nothing.
  client()->patch(deployments, ns_, "shop", client::PatchType::kMerge, R"({"spec":{"replicas":9}})",
                  {.field_manager = "other"});
  client()->patch(resolveType("configmaps"), ns_, "app-config", client::PatchType::kMerge,
                  R"({"data":{"extra":"1"}})", {.field_manager = "other"});
  EXPECT_EQ(apply({.files = {kFixtures + "/v1"}, .server_side = true}), 1);
  EXPECT_NE(err_.find("Error from server (Conflict): error when applying \"" + kFixtures +
                      "/v1/app.yaml:11:1\": Apply failed with 1 conflict: conflict with "
                      "\"other\" using apps/v1: .spec.replicas"),
            std::string::npos)
      << err_;
  EXPECT_NE(err_.find("--force-conflicts"), std::string::npos) << err_;
  EXPECT_NE(err_.find("nothing was applied"), std::string::npos) << err_;
  EXPECT_EQ(fieldInt(client()->get(deployments, ns_, "shop"), "spec.replicas"), 9);
  // --dry-run=server with --force-conflicts changes nothing; without the dry run it takes over.
  ASSERT_EQ(apply({.files = {kFixtures + "/v1"},
                   .dry_run = "server",
                   .server_side = true,
                   .force_conflicts = true}),
            0)
      << err_;
  EXPECT_NE(out_.find("deployment.apps/shop serverside-applied (server dry run)"),
            std::string::npos);
  EXPECT_EQ(fieldInt(client()->get(deployments, ns_, "shop"), "spec.replicas"), 9);
  ASSERT_EQ(apply({.files = {kFixtures + "/v1"}, .server_side = true, .force_conflicts = true}), 0)
      << err_;
  d = client()->get(deployments, ns_, "shop");
  EXPECT_EQ(fieldInt(d, "spec.replicas"), 3);
  // What the other manager added and skiff never applied stays.
  EXPECT_EQ(fieldText(client()->get(resolveType("configmaps"), ns_, "app-config"), "data.extra"),
            "1");
  // Flags that do not go together.
  EXPECT_EQ(apply({.files = {kFixtures + "/v1"}, .force_conflicts = true}), 1);
  EXPECT_NE(err_.find("--force-conflicts only works with --server-side"), std::string::npos);
  EXPECT_EQ(apply({.files = {kFixtures + "/v1"}, .dry_run = "client", .server_side = true}), 1);
  EXPECT_NE(err_.find("--dry-run=client doesn't work with --server-side"), std::string::npos);
}

TEST_F(CliTest, GetTablesObjectsAndErrors) {
  ASSERT_EQ(apply({.files = {kFixtures + "/v1"}}), 0) << err_;
  ASSERT_EQ(get({.args = {"deploy"}}), 0) << err_;
  EXPECT_TRUE(out_.starts_with("NAME   READY   UP-TO-DATE   AVAILABLE   AGE\nshop   0/3     0    "))
      << out_;
  ASSERT_EQ(get({.args = {"deploy,svc"}, .no_headers = true}), 0) << err_;
  EXPECT_NE(out_.find("deployment.apps/shop   0/3"), std::string::npos) << out_;
  EXPECT_NE(out_.find("\n\nservice/shop   ClusterIP"), std::string::npos) << out_;
  ASSERT_EQ(get({.args = {"svc", "shop"}, .output = "wide", .show_labels = true}), 0) << err_;
  EXPECT_NE(out_.find("SELECTOR   LABELS\n"), std::string::npos) << out_;
  EXPECT_NE(out_.find("app=shop"), std::string::npos) << out_;
  ASSERT_EQ(get({.args = {"cm"}, .all_namespaces = true, .selector = "tier=config"}), 0) << err_;
  EXPECT_EQ(out_.substr(0, out_.find('\n')),
            "NAMESPACE" + std::string(ns_.size() - 6, ' ') + "NAME         DATA   AGE");
  ASSERT_EQ(get({.args = {"deploy/shop", "svc/shop"}, .output = "name"}), 0) << err_;
  EXPECT_EQ(out_, "deployment.apps/shop\nservice/shop\n");
  ASSERT_EQ(get({.args = {"deploy", "shop"},
                 .output = "jsonpath={.spec.replicas} {.spec.template.spec.containers[*].name}"}),
            0);
  EXPECT_EQ(out_, "3 web sidecar");
  ASSERT_EQ(get({.args = {"cm", "app-config"}, .output = "yaml"}), 0);
  EXPECT_NE(out_.find("kind: ConfigMap\n"), std::string::npos);
  ASSERT_EQ(get({.args = {"cm"}, .field_selector = "metadata.name=app-config", .output = "json"}),
            0);
  Value list = api::parseJson(out_);
  EXPECT_EQ(fieldText(list, "kind"), "List");
  EXPECT_EQ(list.find("items")->items().size(), 1u);
  EXPECT_EQ(fieldText(list.find("items")->items()[0], "kind"), "ConfigMap");

  EXPECT_EQ(get({.args = {"deploy", "nope", "shop"}, .output = "name"}), 1);
  EXPECT_EQ(out_, "deployment.apps/shop\n");
  EXPECT_EQ(err_, "Error from server (NotFound): deployments.apps \"nope\" not found\n");
  EXPECT_EQ(get({.args = {"foo"}}), 1);
  EXPECT_EQ(err_, "error: the server doesn't have a resource type \"foo\"\n");
  EXPECT_EQ(get({.args = {"pods"}}), 0);
  EXPECT_EQ(err_, "No resources found in " + ns_ + " namespace.\n");
  EXPECT_EQ(get({.args = {"deploy"}, .output = "xml"}), 1);
}

TEST_F(CliTest, GetWatchStreamsRows) {
  ASSERT_EQ(apply({.files = {kFixtures + "/v1"}}), 0) << err_;
  std::thread changer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto c = client();
    c->patch(resolveType("deployments"), ns_, "shop", client::PatchType::kMerge,
             R"({"spec":{"replicas":7}})");
  });
  int code = get({.args = {"deploy", "shop"}, .watch = true, .watch_event_limit = 1});
  changer.join();
  ASSERT_EQ(code, 0) << err_;
  // The table, then the changed row (replicas 7) in the same columns.
  std::istringstream lines(out_);
  std::string header, first, change;
  std::getline(lines, header);
  std::getline(lines, first);
  std::getline(lines, change);
  EXPECT_TRUE(header.starts_with("NAME   READY")) << out_;
  EXPECT_TRUE(first.starts_with("shop   0/3 ")) << out_;
  EXPECT_TRUE(change.starts_with("shop   0/7 ")) << out_;
}

TEST_F(CliTest, DeleteScaleAndCreate) {
  ASSERT_EQ(apply({.files = {kFixtures + "/v1"}}), 0) << err_;
  auto scale = [&](ScaleOptions o) {
    return run(
        [&](CliContext& c, std::ostream& out, std::ostream& e) { return runScale(c, o, out, e); });
  };
  ASSERT_EQ(scale({.args = {"deploy/shop"}, .replicas = 5}), 0) << err_;
  EXPECT_EQ(out_, "deployment.apps/shop scaled\n");
  EXPECT_EQ(scale({.args = {"deploy", "shop"}, .replicas = 6, .current_replicas = 3}), 1);
  EXPECT_EQ(err_, "error: Expected replicas to be 3, was 5\n");
  ASSERT_EQ(scale({.args = {"deploy", "shop"}, .replicas = 6, .current_replicas = 5}), 0) << err_;
  EXPECT_EQ(fieldInt(client()->get(resolveType("deployments"), ns_, "shop"), "spec.replicas"), 6);
  EXPECT_EQ(scale({.args = {"cm/app-config"}, .replicas = 1}), 1);

  auto create = [&](CreateOptions o) {
    return run(
        [&](CliContext& c, std::ostream& out, std::ostream& e) { return runCreate(c, o, out, e); });
  };
  std::string file = write("payload.txt", "file contents\n");
  ASSERT_EQ(create({.what = "configmap",
                    .name = "made",
                    .from_literal = {"a=1", "b=x=y"},
                    .from_file = {"f=" + file}}),
            0)
      << err_;
  EXPECT_EQ(out_, "configmap/made created\n");
  Value cm = client()->get(resolveType("cm"), ns_, "made");
  EXPECT_EQ(fieldText(cm, "data.a"), "1");
  EXPECT_EQ(fieldText(cm, "data.b"), "x=y");
  EXPECT_EQ(fieldText(cm, "data.f"), "file contents\n");
  ASSERT_EQ(create({.what = "secret", .name = "pw", .from_literal = {"password=s3cret"}}), 0)
      << err_;
  EXPECT_EQ(fieldText(client()->get(resolveType("secret"), ns_, "pw"), "data.password"),
            "czNjcmV0");
  EXPECT_EQ(create({.what = "configmap", .name = "bad", .from_literal = {"novalue"}}), 1);
  EXPECT_EQ(create({.what = "configmap", .name = "made"}), 1);
  EXPECT_NE(err_.find("AlreadyExists"), std::string::npos) << err_;

  auto remove = [&](DeleteOptions o) {
    // The apiserver in this test runs no garbage collector, so --wait is left to the e2e tests.
    o.wait = false;
    return run(
        [&](CliContext& c, std::ostream& out, std::ostream& e) { return runDelete(c, o, out, e); });
  };
  ASSERT_EQ(remove({.args = {"cm", "made", "pw"}}), 1);  // pw is a secret, not a config map
  EXPECT_EQ(out_, "configmap \"made\" deleted\n");
  EXPECT_EQ(err_, "Error from server (NotFound): configmaps \"pw\" not found\n");
  // Foreground deletion waits for the garbage collector; without --wait it returns at once.
  ASSERT_EQ(remove({.args = {"secret/pw"}, .cascade = "foreground", .wait = false}), 0) << err_;
  EXPECT_EQ(out_, "secret \"pw\" deleted\n");
  EXPECT_EQ(remove({.args = {"cm"}}), 1);
  EXPECT_NE(err_.find("no name was specified"), std::string::npos);
  ASSERT_EQ(remove({.args = {"cm"}, .selector = "tier=config"}), 0) << err_;
  EXPECT_EQ(out_, "configmap \"app-config\" deleted\n");
  ASSERT_EQ(remove({.files = {kFixtures + "/v1"}, .ignore_not_found = true}), 0) << err_;
  EXPECT_EQ(out_, "deployment.apps \"shop\" deleted\nservice \"shop\" deleted\n");
  EXPECT_EQ(remove({.args = {"deploy", "shop"}, .cascade = "sideways"}), 1);
}

// Sets a Deployment's status as its controller would.
void setStatus(client::Client& c, const std::string& ns, const std::string& name,
               const std::string& status_json) {
  Value d = c.get(resolveType("deployments"), ns, name);
  d.set("status", api::parseJson(status_json));
  c.updateStatus(resolveType("deployments"), ns, d);
}

TEST_F(CliTest, WaitAndRolloutStatus) {
  ASSERT_EQ(apply({.files = {kFixtures + "/v1"}}), 0) << err_;
  auto c = client();
  auto wait = [&](WaitOptions o) {
    o.poll_interval = std::chrono::milliseconds(20);
    return run(
        [&](CliContext& cx, std::ostream& out, std::ostream& e) { return runWait(cx, o, out, e); });
  };
  EXPECT_EQ(
      wait({.args = {"deploy/shop"}, .for_condition = "condition=Available", .timeout = "200ms"}),
      1);
  EXPECT_EQ(err_, "error: timed out waiting for the condition on deployments/shop\n");
  auto status = [&](RolloutOptions o) {
    o.verb = "status";
    o.poll_interval = std::chrono::milliseconds(20);
    return run([&](CliContext& cx, std::ostream& out, std::ostream& e) {
      return runRollout(cx, o, out, e);
    });
  };
  ASSERT_EQ(status({.args = {"deploy/shop"}, .watch = false}), 0) << err_;
  EXPECT_EQ(out_, "Waiting for deployment spec update to be observed...\n");
  setStatus(*c, ns_, "shop",
            R"({"observedGeneration":1,"replicas":3,"updatedReplicas":1,"availableReplicas":0})");
  ASSERT_EQ(status({.args = {"deploy/shop"}, .watch = false}), 0) << err_;
  EXPECT_EQ(out_,
            "Waiting for deployment \"shop\" rollout to finish: 1 out of 3 new replicas "
            "have been updated...\n");
  // A rollout that completes while `rollout status` and `wait` watch it.
  std::thread controller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto c2 = client();
    setStatus(*c2, ns_, "shop",
              R"({"observedGeneration":1,"replicas":4,"updatedReplicas":3,"availableReplicas":2})");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    setStatus(*c2, ns_, "shop",
              R"({"observedGeneration":1,"replicas":3,"updatedReplicas":3,"availableReplicas":3,
                  "conditions":[{"type":"Available","status":"True","reason":"MinimumReplicasAvailable"},
                                {"type":"Progressing","status":"True","reason":"NewReplicaSetAvailable"}]})");
  });
  int code = status({.args = {"deploy/shop"}, .timeout = "10s"});
  controller.join();
  ASSERT_EQ(code, 0) << err_;
  EXPECT_NE(out_.find("Waiting for deployment \"shop\" rollout to finish: 1 old replicas are "
                      "pending termination...\n"),
            std::string::npos)
      << out_;
  EXPECT_TRUE(out_.ends_with("deployment \"shop\" successfully rolled out\n")) << out_;
  ASSERT_EQ(wait({.args = {"deploy/shop"}, .for_condition = "condition=available=TRUE"}), 0)
      << err_;
  EXPECT_EQ(out_, "deployment.apps/shop condition met\n");
  ASSERT_EQ(wait({.args = {"deploy/shop"}, .for_condition = "jsonpath={.status.replicas}=3"}), 0);
  setStatus(*c, ns_, "shop",
            R"({"observedGeneration":1,"conditions":[{"type":"Progressing","status":"False",
                "reason":"ProgressDeadlineExceeded"}]})");
  EXPECT_EQ(status({.args = {"deploy/shop"}}), 1);
  EXPECT_EQ(err_, "error: deployment \"shop\" exceeded its progress deadline\n");
  std::thread deleter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    client()->remove(resolveType("deployments"), ns_, "shop");
  });
  code = wait({.args = {"deploy", "shop"}, .for_condition = "delete", .timeout = "10s"});
  deleter.join();
  EXPECT_EQ(code, 0) << err_;
  EXPECT_EQ(out_, "deployment.apps/shop deleted\n");
  EXPECT_EQ(wait({.args = {"deploy/shop"}, .for_condition = "ready"}), 1);
}

TEST_F(CliTest, RolloutHistoryUndoAndRestart) {
  ASSERT_EQ(apply({.files = {kFixtures + "/v1"}}), 0) << err_;
  auto c = client();
  Value d = c->get(resolveType("deployments"), ns_, "shop");
  // The ReplicaSets the deployment controller would have made for two revisions.
  for (int revision : {1, 2}) {
    Value rs = Value::object();
    rs.append("apiVersion", Value::string("apps/v1"));
    rs.append("kind", Value::string("ReplicaSet"));
    Value meta = api::parseJson(R"({"labels":{"app":"shop"}})");
    meta.set("name", Value::string("shop-r" + std::to_string(revision)));
    Value annotations = Value::object();
    annotations.append("deployment.kubernetes.io/revision",
                       Value::string(std::to_string(revision)));
    annotations.append("kubernetes.io/change-cause",
                       Value::string(revision == 1 ? "first release" : "second release"));
    meta.append("annotations", std::move(annotations));
    Value owner =
        api::parseJson(R"({"apiVersion":"apps/v1","kind":"Deployment","controller":true})");
    owner.set("name", Value::string("shop"));
    owner.set("uid", Value::string(fieldText(d, "metadata.uid")));
    Value owners = Value::array();
    owners.push(std::move(owner));
    meta.append("ownerReferences", std::move(owners));
    rs.append("metadata", std::move(meta));
    Value spec = Value::object();
    spec.append("replicas", Value::integer(0));
    spec.append("selector", *field(d, "spec.selector"));
    Value tmpl = *field(d, "spec.template");
    tmpl.find("metadata")
        ->find("labels")
        ->set("pod-template-hash", Value::string("h" + std::to_string(revision)));
    Value* containers = tmpl.find("spec")->find("containers");
    containers->items()[0].set("image", Value::string("img:" + std::to_string(revision)));
    spec.append("template", std::move(tmpl));
    rs.append("spec", std::move(spec));
    c->create(resolveType("replicasets"), ns_, rs);
  }
  Value live = c->get(resolveType("deployments"), ns_, "shop");
  live.find("metadata")
      ->find("annotations")
      ->set("deployment.kubernetes.io/revision", Value::string("2"));
  c->update(resolveType("deployments"), ns_, live);

  auto rollout = [&](RolloutOptions o) {
    return run([&](CliContext& cx, std::ostream& out, std::ostream& e) {
      return runRollout(cx, o, out, e);
    });
  };
  ASSERT_EQ(rollout({.verb = "history", .args = {"deployment/shop"}}), 0) << err_;
  EXPECT_EQ(out_,
            "deployment.apps/shop \nREVISION  CHANGE-CAUSE\n1         first release\n2    "
            "     second release\n\n");
  ASSERT_EQ(rollout({.verb = "undo", .args = {"deployment/shop"}}), 0) << err_;
  EXPECT_EQ(out_, "deployment.apps/shop rolled back\n");
  Value undone = c->get(resolveType("deployments"), ns_, "shop");
  EXPECT_EQ(fieldText(field(undone, "spec.template.spec.containers")->items()[0], "image"),
            "img:1");
  EXPECT_EQ(field(undone, "spec.template.metadata.labels")->find("pod-template-hash"), nullptr);
  EXPECT_EQ(field(undone, "metadata.annotations")->find("kubernetes.io/change-cause")->text(),
            "first release");
  EXPECT_EQ(rollout({.verb = "undo", .args = {"deployment/shop"}, .revision = 9}), 1);
  EXPECT_EQ(err_, "error: unable to find specified revision 9 in history\n");
  ASSERT_EQ(rollout({.verb = "restart", .args = {"deploy/shop"}}), 0) << err_;
  EXPECT_EQ(out_, "deployment.apps/shop restarted\n");
  Value restarted = c->get(resolveType("deployments"), ns_, "shop");
  const Value* at = field(restarted, "spec.template.metadata.annotations");
  ASSERT_NE(at, nullptr);
  EXPECT_NE(at->find("kubectl.kubernetes.io/restartedAt"), nullptr);
  EXPECT_EQ(rollout({.verb = "status", .args = {"cm/app-config"}}), 1);
}

TEST_F(CliTest, DescribeShowsSectionsAndEvents) {
  ASSERT_EQ(apply({.files = {kFixtures + "/v1"}}), 0) << err_;
  auto c = client();
  Value d = c->get(resolveType("deployments"), ns_, "shop");
  Value event = api::parseJson(R"({"apiVersion":"v1","kind":"Event","metadata":{"name":"e1"},
      "involvedObject":{"apiVersion":"apps/v1","kind":"Deployment","name":"shop"},
      "reason":"ScalingReplicaSet","message":"Scaled up replica set shop-abc to 3",
      "type":"Normal","source":{"component":"deployment-controller"},"count":1})");
  event.find("involvedObject")->set("uid", Value::string(fieldText(d, "metadata.uid")));
  event.find("involvedObject")->set("namespace", Value::string(ns_));
  event.set("firstTimestamp", *field(d, "metadata.creationTimestamp"));
  event.set("lastTimestamp", *field(d, "metadata.creationTimestamp"));
  c->create(resolveType("events"), ns_, event);
  ASSERT_EQ(run([&](CliContext& cx, std::ostream& out, std::ostream& e) {
              return runDescribe(cx, {.args = {"deploy", "shop"}}, out, e);
            }),
            0)
      << err_;
  EXPECT_TRUE(out_.starts_with("Name:                   shop\nNamespace:              " + ns_))
      << out_;
  for (const char* want :
       {"Labels:                 app=shop\n                        stage=beta\n",
        "Annotations:            kubernetes.io/change-cause: first release\n",
        "Selector:               app=shop\n",
        "Replicas:               3 desired | 0 updated | 0 total | 0 available | 0 unavailable\n",
        "StrategyType:           RollingUpdate\n",
        "RollingUpdateStrategy:  25% max unavailable, 1 max surge\n", "   web:\n",
        "    Image:      skiff.local/busybox-httpd:1.35\n", "      MODE:   blue\n",
        "      /etc/app from config (rw)\n", "  Type    Reason             Age",
        "  Normal  ScalingReplicaSet  ",
        "deployment-controller  Scaled up replica set shop-abc to 3\n"}) {
    EXPECT_NE(out_.find(want), std::string::npos) << "missing: " << want << "\n" << out_;
  }
  EXPECT_EQ(out_.find("last-applied"), std::string::npos);
  ASSERT_EQ(run([&](CliContext& cx, std::ostream& out, std::ostream& e) {
              return runDescribe(cx, {.args = {"svc/shop"}}, out, e);
            }),
            0);
  EXPECT_NE(out_.find("Port:              http  80/TCP\nTargetPort:        http/TCP\n"),
            std::string::npos)
      << out_;
  EXPECT_NE(out_.find("Events:            <none>\n"), std::string::npos) << out_;
  EXPECT_EQ(run([&](CliContext& cx, std::ostream& out, std::ostream& e) {
              return runDescribe(cx, {.args = {"deploy", "nope"}}, out, e);
            }),
            1);
  EXPECT_EQ(err_, "Error from server (NotFound): deployments.apps \"nope\" not found\n");
}

TEST_F(CliTest, VersionApiResourcesExplainAndConfig) {
  ASSERT_EQ(
      run([&](CliContext& c, std::ostream& o, std::ostream& e) { return runVersion(c, {}, o, e); }),
      0)
      << err_;
  EXPECT_NE(out_.find("Client Version: skiff "), std::string::npos);
  EXPECT_NE(out_.find("Server Version: v1."), std::string::npos);
  ASSERT_EQ(run([&](CliContext& c, std::ostream& o, std::ostream& e) {
              return runApiResources(c, {}, o, e);
            }),
            0);
  EXPECT_TRUE(out_.starts_with("NAME ")) << out_;
  // Columns as wide as the longest name (certificatesigningrequests) and group version
  // (rbac.authorization.k8s.io/v1), plus three.
  EXPECT_NE(out_.find("deployments" + std::string(18, ' ') + "deploy       apps/v1" +
                      std::string(24, ' ') + "true         Deployment\n"),
            std::string::npos)
      << out_;
  ASSERT_EQ(run([&](CliContext& c, std::ostream& o, std::ostream& e) {
              return runApiResources(c, {.output = "name", .api_group = "apps"}, o, e);
            }),
            0);
  EXPECT_NE(out_.find("deployments.apps\n"), std::string::npos);
  EXPECT_EQ(out_.find("pods"), std::string::npos);
  ASSERT_EQ(run([&](CliContext& c, std::ostream& o, std::ostream& e) {
              return runExplain(c, {.path = "deployment.spec.replicas"}, o, e);
            }),
            0)
      << err_;
  EXPECT_TRUE(
      out_.starts_with("GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n\n"
                       "FIELD: replicas <integer>\n"))
      << out_;
  ASSERT_EQ(run([&](CliContext& c, std::ostream& o, std::ostream& e) {
              return runExplain(c, {.path = "pods.spec"}, o, e);
            }),
            0);
  EXPECT_NE(out_.find("  containers\t<[]Container> -required-\n"), std::string::npos) << out_;
  EXPECT_EQ(run([&](CliContext& c, std::ostream& o, std::ostream& e) {
              return runExplain(c, {.path = "deployment.spec.nope"}, o, e);
            }),
            1);
  EXPECT_EQ(err_, "error: field \"nope\" does not exist\n");

  // config verbs work on a copy of the admin kubeconfig with a second context.
  std::string path = write("kubeconfig", [&] {
    std::ifstream in(server_->adminKubeconfig());
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text;
  }());
  auto config = [&](ConfigOptions o) {
    return run(
        [&](CliContext& c, std::ostream& out, std::ostream& e) { return runConfig(c, o, out, e); },
        {.kubeconfig = path});
  };
  ASSERT_EQ(config({.verb = "current-context"}), 0) << err_;
  EXPECT_EQ(out_, "skiff\n");
  ASSERT_EQ(config({.verb = "get-contexts"}), 0) << err_;
  EXPECT_EQ(out_,
            "CURRENT   NAME    CLUSTER   AUTHINFO   NAMESPACE\n*         skiff   skiff     admin   "
            "   \n");
  ASSERT_EQ(config({.verb = "view"}), 0);
  EXPECT_NE(out_.find("certificate-authority-data: DATA+OMITTED"), std::string::npos) << out_;
  EXPECT_NE(out_.find("token: REDACTED"), std::string::npos) << out_;
  ASSERT_EQ(config({.verb = "view", .raw = true}), 0);
  EXPECT_EQ(out_.find("REDACTED"), std::string::npos);
  EXPECT_EQ(config({.verb = "use-context", .name = "nope"}), 1);
  EXPECT_EQ(err_, "error: no context exists with the name: \"nope\"\n");
  ASSERT_EQ(config({.verb = "use-context", .name = "skiff"}), 0) << err_;
  EXPECT_EQ(out_, "Switched to context \"skiff\".\n");
  EXPECT_EQ(client::loadClientConfig({.kubeconfig = path}).context_name, "skiff");
}

TEST_F(CliTest, UnreachableServerAndBadKubeconfig) {
  std::string dead = write("dead", [&] {
    std::ifstream in(server_->adminKubeconfig());
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string url = server_->url();
    text.replace(text.find(url), url.size(), "https://127.0.0.1:1");
    return text;
  }());
  EXPECT_EQ(run([&](CliContext& c, std::ostream& o,
                    std::ostream& e) { return runGet(c, {.args = {"pods"}}, o, e); },
                {.kubeconfig = dead}),
            1);
  EXPECT_EQ(err_,
            "The connection to the server 127.0.0.1:1 was refused - did you specify the right "
            "host or port?\n");
  EXPECT_EQ(run([&](CliContext& c, std::ostream& o,
                    std::ostream& e) { return runApply(c, {.files = {kFixtures + "/v1"}}, o, e); },
                {.kubeconfig = dead}),
            1);
  EXPECT_EQ(std::count(err_.begin(), err_.end(), '\n'), 1) << err_;
  std::string broken = write("broken-kubeconfig", "apiVersion: v1\nclusters: 5\n");
  EXPECT_EQ(run([&](CliContext& c, std::ostream& o,
                    std::ostream& e) { return runGet(c, {.args = {"pods"}}, o, e); },
                {.kubeconfig = broken}),
            1);
  EXPECT_TRUE(err_.starts_with("error: " + broken + ":2:")) << err_;
  EXPECT_EQ(run([&](CliContext& c, std::ostream& o,
                    std::ostream& e) { return runGet(c, {.args = {"pods"}}, o, e); },
                {.kubeconfig = (*dir_ / "missing").string()}),
            1);
  EXPECT_NE(err_.find("missing"), std::string::npos) << err_;
}

}  // namespace
}  // namespace skiff::cli
