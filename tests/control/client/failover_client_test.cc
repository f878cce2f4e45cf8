// The failover client over real in-process apiservers: which server a call goes to, the move to
// the next one when a server is down, watches resumed on the other server, and the error when
// none answers.
#include "control/client/failover_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "control/client/typed.h"
#include "skiff/api/core_v1.pb.h"
#include "tests/control/client/test_server.h"

namespace skiff::client {
namespace {

using ::testing::HasSubstr;
using testing::ServerMode;
using ::testing::StartsWith;
using testing::TestApiServer;
using namespace std::chrono_literals;
namespace core = api::core::v1;

const api::ResourceType& configMaps() {
  return resourceTypeOf<core::ConfigMap>();
}

core::ConfigMap configMap(const std::string& name) {
  core::ConfigMap cm;
  cm.mutable_metadata()->set_name(name);
  cm.mutable_metadata()->set_namespace_("default");
  (*cm.mutable_data())["key"] = "value";
  return cm;
}

// Whether `server` (its own store) holds ConfigMap default/`name`.
bool holds(TestApiServer& server, const std::string& name) {
  try {
    server.client({.max_retries = 0})->get(configMaps(), "default", name);
    return true;
  } catch (const ApiError& e) {
    if (e.isNotFound()) return false;
    throw;
  }
}

std::string metaOf(const api::Value& object, std::string_view field) {
  const api::Value* metadata = object.find("metadata");
  const api::Value* value = metadata ? metadata->find(field) : nullptr;
  return value ? value->text() : std::string();
}

const RestClientOptions kQuick{.max_retries = 1,
                               .initial_backoff = std::chrono::milliseconds(5),
                               .max_backoff = std::chrono::milliseconds(20),
                               .request_timeout = std::chrono::milliseconds(5000)};

TEST(SplitServers, TrimsAndSkipsEmptyEntries) {
  EXPECT_EQ(splitServers("https://a:6443, https://b:6443,,https://c:6443 "),
            (std::vector<std::string>{"https://a:6443", "https://b:6443", "https://c:6443"}));
  EXPECT_EQ(splitServers("https://a:6443"), (std::vector<std::string>{"https://a:6443"}));
  EXPECT_TRUE(splitServers(" , ").empty());
}

TEST(FailoverClient, RefusesAnEmptyListAndABadUrl) {
  EXPECT_THROW(makeFailoverClient({}, {}), std::invalid_argument);
  EXPECT_THROW(makeClientForServers({}, " , "), std::invalid_argument);
  EXPECT_THROW(makeFailoverClient({}, {"http://127.0.0.1:1", "ftp://x"}), std::invalid_argument);
}

// Two apiservers of separate stores, so each object tells which server took the write.
TEST(FailoverClient, UsesTheFirstServerThenMovesOnWhenItIsDownAndStays) {
  TestApiServer a(ServerMode::kPlain);
  TestApiServer b(ServerMode::kPlain);
  ClientPtr client = makeFailoverClient({}, {a.url(), b.url()}, kQuick);

  create(*client, configMap("first"));
  EXPECT_TRUE(holds(a, "first"));
  EXPECT_FALSE(holds(b, "first"));

  // A create (not idempotent) is resent to b: a refused the connection, so it never got it.
  a.stopServing();
  auto start = std::chrono::steady_clock::now();
  create(*client, configMap("second"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s) << "the move to b waited";
  EXPECT_TRUE(holds(b, "second"));
  EXPECT_EQ(get<core::ConfigMap>(*client, "default", "second").data().at("key"), "value");
  EXPECT_EQ(list<core::ConfigMap>(*client, "default").size(), 1u);

  // a is back, but calls stay with b, the server that answered last.
  a.resumeServing();
  create(*client, configMap("third"));
  EXPECT_TRUE(holds(b, "third"));
  EXPECT_FALSE(holds(a, "third"));

  // b down: back to a.
  b.stopServing();
  create(*client, configMap("fourth"));
  EXPECT_TRUE(holds(a, "fourth"));
}

TEST(FailoverClient, RawRequestsMoveOnToo) {
  TestApiServer a(ServerMode::kPlain);
  TestApiServer b(ServerMode::kPlain);
  create(*b.client(), configMap("only-on-b"));
  ClientPtr client = makeFailoverClient({}, {a.url(), b.url()}, kQuick);
  a.stopServing();
  RawResponse r = client->raw({.path = "/api/v1/namespaces/default/configmaps/only-on-b"});
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr("only-on-b"));
}

// One store behind two addresses (one apiserver's handler on two ports): the cluster two
// apiservers on one etcd make. A watch on the first resumes on the second from its last revision,
// missing nothing written while it moved.
TEST(FailoverClient, WatchResumesOnTheOtherServerFromItsRevision) {
  TestApiServer server(ServerMode::kPlain);
  std::string second = server.sideUrl();
  ClientPtr client = makeFailoverClient({}, {server.url(), second}, kQuick);
  std::string rv = create(*client, configMap("before")).metadata().resource_version();

  WatchStreamPtr watch = client->watch(configMaps(), "default", {.resource_version = rv});
  create(*client, configMap("w1"));
  WatchEvent event;
  ASSERT_TRUE(watch->next(event, 5s));
  EXPECT_EQ(metaOf(event.object, "name"), "w1");
  rv = metaOf(event.object, "resourceVersion");

  server.stopServing();  // the watch's connection goes with it
  // Written while no watch is open, through the second address.
  ClientPtr side = makeRestClient({.server = second}, {.max_retries = 0});
  create(*side, configMap("w2"));
  while (watch->next(event, 5s)) {
    ASSERT_EQ(event.type, WatchEvent::Type::kBookmark) << "an event after the server went away";
  }
  ASSERT_TRUE(watch->ended()) << "the watch outlived its server";

  WatchStreamPtr resumed = client->watch(configMaps(), "default", {.resource_version = rv});
  create(*client, configMap("w3"));
  std::vector<std::string> names;
  while (names.size() < 2 && resumed->next(event, 5s)) {
    if (event.type == WatchEvent::Type::kBookmark) continue;
    EXPECT_EQ(event.type, WatchEvent::Type::kAdded);
    names.push_back(metaOf(event.object, "name"));
  }
  EXPECT_EQ(names, (std::vector<std::string>{"w2", "w3"}));
}

TEST(FailoverClient, AnErrorNamesEveryServerWhenNoneAnswers) {
  TestApiServer a(ServerMode::kPlain);
  TestApiServer b(ServerMode::kPlain);
  ClientPtr client = makeFailoverClient({}, {a.url(), b.url()}, kQuick);
  a.stopServing();
  b.stopServing();
  for (bool write : {false, true}) {
    try {
      if (write) {
        create(*client, configMap("nowhere"));
      } else {
        client->get(configMaps(), "default", "nowhere");
      }
      ADD_FAILURE() << "no error with both servers down";
    } catch (const ApiError& e) {
      EXPECT_TRUE(e.isUnreachable());
      EXPECT_THAT(e.what(), HasSubstr(a.url()));
      EXPECT_THAT(e.what(), HasSubstr(b.url()));
      // Still says the request never left (so an outer retry may resend even a write).
      EXPECT_THAT(e.what(), StartsWith("cannot reach "));
    }
  }
  // One comes back: calls succeed again.
  b.resumeServing();
  create(*client, configMap("back"));
  EXPECT_TRUE(holds(b, "back"));
}

}  // namespace
}  // namespace skiff::client
