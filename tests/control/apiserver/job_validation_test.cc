// Job validation: Kubernetes' field paths and messages for backoffLimitPerIndex, maxFailedIndexes
// and the podFailurePolicy actions, as the function reports them and as a create answers them.

#include "control/apiserver/job_validation.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <filesystem>

#include "control/api/codec.h"
#include "control/api/json.h"
#include "control/apiserver/api_handler.h"
#include "control/store/sqlite_store.h"

namespace skiff::apiserver {
namespace {

using api::batch::v1::Job;

constexpr const char* kIndexedJob = R"(
apiVersion: batch/v1
kind: Job
metadata: {name: pi, namespace: default}
spec:
  completions: 4
  parallelism: 2
  completionMode: Indexed
  template:
    spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}
)";

Job job(const std::string& yaml = kIndexedJob) {
  Job out;
  api::decodeYaml(yaml, out);
  return out;
}

std::vector<std::string> messages(const Job& j) {
  std::vector<std::string> out;
  for (const auto& c : jobValidationCauses(j))
    out.push_back(c.field + ": " + c.detail);
  return out;
}

void failIndexRule(Job& j) {
  auto* rule = j.mutable_spec()->mutable_pod_failure_policy()->add_rules();
  rule->set_action("FailIndex");
  auto* codes = rule->mutable_on_exit_codes();
  codes->set_operator_("In");
  codes->add_values(42);
}

TEST(JobValidation, AValidIndexedJobHasNoCauses) {
  Job j = job();
  EXPECT_TRUE(jobValidationCauses(j).empty());
  j.mutable_spec()->set_backoff_limit_per_index(1);
  j.mutable_spec()->set_max_failed_indexes(2);
  failIndexRule(j);
  EXPECT_TRUE(jobValidationCauses(j).empty());
  EXPECT_NO_THROW(validateJob(j));
}

TEST(JobValidation, FailIndexNeedsBackoffLimitPerIndex) {
  Job j = job();
  failIndexRule(j);
  const auto causes = jobValidationCauses(j);
  ASSERT_EQ(causes.size(), 1u);
  EXPECT_EQ(causes[0].type, "FieldValueInvalid");
  EXPECT_EQ(causes[0].field, "spec.podFailurePolicy.rules[0].action");
  EXPECT_EQ(causes[0].detail,
            "Invalid value: \"FailIndex\": requires the backoffLimitPerIndex to be set");
  try {
    validateJob(j);
    FAIL() << "no error";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), 422);
    EXPECT_EQ(e.reason(), "Invalid");
    EXPECT_STREQ(e.what(),
                 "Job.batch \"pi\" is invalid: spec.podFailurePolicy.rules[0].action: Invalid "
                 "value: \"FailIndex\": requires the backoffLimitPerIndex to be set");
  }
}

TEST(JobValidation, RuleActions) {
  Job j = job();
  for (const char* action : {"", "Retry", "Count"}) {
    auto* rule = j.mutable_spec()->mutable_pod_failure_policy()->add_rules();
    rule->set_action(action);
  }
  EXPECT_EQ(
      messages(j),
      (std::vector<std::string>{
          R"(spec.podFailurePolicy.rules[0].action: Required value: valid values: ["Count" "FailIndex" "FailJob" "Ignore"])",
          R"(spec.podFailurePolicy.rules[1].action: Unsupported value: "Retry": supported values: "Count", "FailIndex", "FailJob", "Ignore")"}));
  for (int i = 0; i < 18; ++i)
    j.mutable_spec()->mutable_pod_failure_policy()->add_rules()->set_action("Ignore");
  EXPECT_EQ(messages(j).front(),
            "spec.podFailurePolicy.rules: Too many: 21: must have at most 20 items");
}

TEST(JobValidation, PerIndexFieldsNeedIndexedCompletionMode) {
  Job j = job();
  j.mutable_spec()->set_completion_mode("NonIndexed");
  j.mutable_spec()->set_backoff_limit_per_index(1);
  j.mutable_spec()->set_max_failed_indexes(1);
  EXPECT_EQ(messages(j), (std::vector<std::string>{
                             "spec.backoffLimitPerIndex: Invalid value: 1: requires indexed "
                             "completion mode",
                             "spec.maxFailedIndexes: Invalid value: 1: requires indexed "
                             "completion mode"}));
}

TEST(JobValidation, MaxFailedIndexes) {
  Job j = job();
  j.mutable_spec()->set_max_failed_indexes(5);
  EXPECT_EQ(messages(j),
            (std::vector<std::string>{
                "spec.backoffLimitPerIndex: Required value: when maxFailedIndexes is specified",
                "spec.maxFailedIndexes: Invalid value: 5: must be less than or equal to "
                "completions"}));
  j.mutable_spec()->set_backoff_limit_per_index(-1);
  j.mutable_spec()->set_max_failed_indexes(-2);
  EXPECT_EQ(messages(j), (std::vector<std::string>{
                             "spec.backoffLimitPerIndex: Invalid value: -1: must be greater than "
                             "or equal to 0",
                             "spec.maxFailedIndexes: Invalid value: -2: must be greater than or "
                             "equal to 0"}));
  Job big = job();
  big.mutable_spec()->set_completions(200000);
  big.mutable_spec()->set_backoff_limit_per_index(1);
  EXPECT_EQ(messages(big), (std::vector<std::string>{
                               "spec.maxFailedIndexes: Required value: must be specified when "
                               "completions is above 100000"}));
}

// Through the API: a create of such a Job is answered 422 with the cause; a valid one is created.
TEST(JobValidation, CreateIsRefused) {
  namespace asio = boost::asio;
  namespace http = boost::beast::http;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("skiff-job-validation-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    auto store = store::SqliteStore::open({.path = (dir / "db").string(), .fsync = false});
    ApiHandler handler(*store, ApiHandlerOptions{.server_address = "127.0.0.1:0"});
    handler.ensureSystemNamespaces();
    HttpServer server(HttpServerOptions{},
                      [&](const HttpRequest& req, HttpResponse& res, const auto& stream) {
                        handler.handle(req, res, stream);
                      });
    server.start();
    auto post = [&](const Job& j) {
      asio::io_context io;
      asio::ip::tcp::socket socket(io);
      socket.connect({asio::ip::make_address("127.0.0.1"), server.port()});
      http::request<http::string_body> req{http::verb::post,
                                           "/apis/batch/v1/namespaces/default/jobs", 11};
      req.set(http::field::host, "localhost");
      req.set(http::field::content_type, "application/json");
      req.body() = api::encodeJson(j);
      req.prepare_payload();
      http::write(socket, req);
      boost::beast::flat_buffer buffer;
      http::response<http::string_body> res;
      http::read(socket, buffer, res);
      return std::make_pair(static_cast<int>(res.result_int()), api::parseJson(res.body()));
    };
    Job bad = job();
    failIndexRule(bad);
    auto [code, body] = post(bad);
    EXPECT_EQ(code, 422) << api::writeJson(body);
    EXPECT_EQ(body.find("reason")->text(), "Invalid");
    const auto& cause = body.find("details")->find("causes")->items().at(0);
    EXPECT_EQ(cause.find("field")->text(), "spec.podFailurePolicy.rules[0].action");
    EXPECT_EQ(cause.find("reason")->text(), "FieldValueInvalid");
    Job good = bad;
    good.mutable_spec()->set_backoff_limit_per_index(1);
    EXPECT_EQ(post(good).first, 201);
    server.stop();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace skiff::apiserver
