// The apiserver's --event-ttl: Events are stored with a lease and vanish after their TTL; other
// objects stay.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "control/api/json.h"
#include "control/apiserver/server.h"
#include "control/client/rest_client.h"
#include "control/client/typed.h"
#include "skiff/api/core_v1.pb.h"

namespace skiff::apiserver {
namespace {

TEST(ApiServerEventTtl, EventsVanishAfterTheirTtl) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("skiff-apiserver-event-ttl-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  {
    ApiServer server({.data_dir = dir.string(),
                      .port = 0,
                      .plain_http = true,
                      .fsync = false,
                      .event_ttl = std::chrono::seconds(1)});
    server.start();
    auto client = client::makeRestClient({.server = server.url()});
    const auto& events = client::resourceTypeOf<api::core::v1::Event>();
    const auto& config_maps = client::resourceTypeOf<api::core::v1::ConfigMap>();
    client->create(events, "default", api::parseJson(R"({"apiVersion":"v1","kind":"Event",
        "metadata":{"name":"started"},"reason":"Started","message":"hello","type":"Normal",
        "involvedObject":{"kind":"Pod","namespace":"default","name":"web"}})"));
    client->create(config_maps, "default", api::parseJson(R"({"apiVersion":"v1",
        "kind":"ConfigMap","metadata":{"name":"kept"}})"));
    EXPECT_EQ(client->get(events, "default", "started").find("reason")->text(), "Started");
    bool gone = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (!gone && std::chrono::steady_clock::now() < deadline) {
      try {
        client->get(events, "default", "started");
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      } catch (const client::ApiError& e) {
        ASSERT_TRUE(e.isNotFound()) << e.what();
        gone = true;
      }
    }
    EXPECT_TRUE(gone) << "the Event outlived its 1 s TTL by 15 s";
    api::Value list = client->list(events, "default");
    const api::Value* items = list.find("items");
    EXPECT_TRUE(items == nullptr || items->items().empty());
    EXPECT_EQ(client->get(config_maps, "default", "kept").find("metadata")->find("name")->text(),
              "kept");
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace skiff::apiserver
