// --encryption-provider-config end to end: a Secret created through the apiserver is ciphertext in
// the SQLite file (read with sqlite3 directly) and plaintext through the API (get, list, watch);
// after a key rotation (new key first, old key second) the old Secret still reads and new writes
// use the new key; a bad configuration stops the server from starting, naming file and field.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "control/api/base64.h"
#include "control/api/json.h"
#include "control/apiserver/server.h"
#include "control/client/rest_client.h"
#include "control/client/typed.h"
#include "skiff/api/core_v1.pb.h"

namespace skiff::apiserver {
namespace {

const std::string kKey1 = api::base64Encode(std::string(32, 'A'));
const std::string kKey2 = api::base64Encode(std::string(32, 'B'));

void writeConfig(const std::filesystem::path& path, const std::string& keys) {
  std::ofstream(path) << "apiVersion: apiserver.config.k8s.io/v1\n"
                         "kind: EncryptionConfiguration\n"
                         "resources:\n"
                         "  - resources: [secrets]\n"
                         "    providers:\n"
                         "      - aescbc:\n"
                         "          keys:\n"
                      << keys << "      - identity: {}\n";
}

std::string key(const std::string& name, const std::string& secret) {
  return "            - name: " + name + "\n              secret: " + secret + "\n";
}

// The newest row of `name` in the SQLite file, read without Skiff's store.
std::string rawValue(const std::filesystem::path& db, const std::string& name) {
  sqlite3* conn = nullptr;
  EXPECT_EQ(sqlite3_open_v2(db.c_str(), &conn, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(conn, "SELECT value FROM kv WHERE name = ? ORDER BY id DESC LIMIT 1",
                               -1, &stmt, nullptr),
            SQLITE_OK);
  sqlite3_bind_blob(stmt, 1, name.data(), static_cast<int>(name.size()), SQLITE_TRANSIENT);
  std::string out;
  if (sqlite3_step(stmt) == SQLITE_ROW) {
    out.assign(static_cast<const char*>(sqlite3_column_blob(stmt, 0)),
               static_cast<size_t>(sqlite3_column_bytes(stmt, 0)));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(conn);
  return out;
}

std::string secretJson(const std::string& name, const std::string& password) {
  return R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":")" + name +
         R"("},"data":{"password":")" + api::base64Encode(password) + R"("}})";
}

std::string password(const api::Value& secret) {
  return *api::base64Decode(secret.find("data")->find("password")->text());
}

class ServerEncryption : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("skiff-apiserver-encryption-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  ApiServerOptions options() const {
    return {.data_dir = (dir_ / "data").string(),
            .port = 0,
            .plain_http = true,
            .fsync = false,
            .encryption_provider_config = (dir_ / "enc.yaml").string()};
  }
  std::filesystem::path db() const { return dir_ / "data" / "state.db"; }
  std::filesystem::path dir_;
};

TEST_F(ServerEncryption, SecretsAreCiphertextOnDiskAndPlaintextThroughTheApi) {
  writeConfig(dir_ / "enc.yaml", key("key1", kKey1));
  const auto& secrets = client::resourceTypeOf<api::core::v1::Secret>();
  const auto& config_maps = client::resourceTypeOf<api::core::v1::ConfigMap>();
  {
    ApiServer server(options());
    server.start();
    auto client = client::makeRestClient({.server = server.url()});
    client->create(secrets, "default", api::parseJson(secretJson("db", "hunter2-very-secret")));
    client->create(config_maps, "default", api::parseJson(R"({"apiVersion":"v1",
        "kind":"ConfigMap","metadata":{"name":"plain"},"data":{"k":"visible-value"}})"));
    std::string raw = rawValue(db(), "/registry/secrets/default/db");
    EXPECT_TRUE(raw.starts_with("k8s:enc:aescbc:v1:key1:")) << raw.substr(0, 40);
    EXPECT_EQ(raw.find("hunter2-very-secret"), std::string::npos);
    EXPECT_EQ(raw.find("password"), std::string::npos);
    // Resources not in the configuration are stored as they were.
    EXPECT_NE(rawValue(db(), "/registry/configmaps/default/plain").find("visible-value"),
              std::string::npos);
    EXPECT_EQ(password(client->get(secrets, "default", "db")), "hunter2-very-secret");
    api::Value list = client->list(secrets, "default");
    ASSERT_EQ(list.find("items")->items().size(), 1u);
    EXPECT_EQ(password(list.find("items")->items()[0]), "hunter2-very-secret");
    // An update goes through the watch cache (decrypted events) and lands encrypted again.
    api::Value updated = client->get(secrets, "default", "db");
    updated.find("data")->set("password", api::Value::string(api::base64Encode("rotated-pw")));
    client->update(secrets, "default", updated);
    EXPECT_EQ(password(client->get(secrets, "default", "db")), "rotated-pw");
    EXPECT_EQ(rawValue(db(), "/registry/secrets/default/db").find("rotated-pw"), std::string::npos);
    server.stop();
  }
  // Rotation: key2 first encrypts, key1 still decrypts what it wrote.
  writeConfig(dir_ / "enc.yaml", key("key2", kKey2) + key("key1", kKey1));
  {
    ApiServer server(options());
    server.start();
    auto client = client::makeRestClient({.server = server.url()});
    EXPECT_EQ(password(client->get(secrets, "default", "db")), "rotated-pw");
    client->create(secrets, "default", api::parseJson(secretJson("new", "second")));
    EXPECT_TRUE(
        rawValue(db(), "/registry/secrets/default/new").starts_with("k8s:enc:aescbc:v1:key2:"));
    EXPECT_TRUE(
        rawValue(db(), "/registry/secrets/default/db").starts_with("k8s:enc:aescbc:v1:key1:"));
    EXPECT_EQ(password(client->get(secrets, "default", "new")), "second");
    server.stop();
  }
  // Without key1 the old Secret is a clear 500 naming the key, not garbage.
  writeConfig(dir_ / "enc.yaml", key("key2", kKey2));
  {
    ApiServer server(options());
    server.start();
    auto client = client::makeRestClient({.server = server.url()}, {.max_retries = 0});
    EXPECT_EQ(password(client->get(secrets, "default", "new")), "second");
    try {
      client->get(secrets, "default", "db");
      ADD_FAILURE() << "a Secret written with a key no longer configured was read";
    } catch (const client::ApiError& e) {
      EXPECT_EQ(e.code(), 500) << e.what();
      EXPECT_NE(std::string(e.what()).find("k8s:enc:aescbc:v1:key1:"), std::string::npos)
          << e.what();
    }
    server.stop();
  }
}

// --encryption-provider-config-automatic-reload: the rotation above without a restart, and a
// broken file that leaves the running server as it was.
TEST_F(ServerEncryption, AutomaticReloadRotatesKeysWithoutARestart) {
  writeConfig(dir_ / "enc.yaml", key("key1", kKey1));
  const auto& secrets = client::resourceTypeOf<api::core::v1::Secret>();
  ApiServerOptions opts = options();
  opts.encryption_provider_config_automatic_reload = true;
  opts.encryption_config_reload_interval = std::chrono::milliseconds(50);
  ApiServer server(opts);
  server.start();
  auto client = client::makeRestClient({.server = server.url()});
  client->create(secrets, "default", api::parseJson(secretJson("before", "one")));
  EXPECT_TRUE(
      rawValue(db(), "/registry/secrets/default/before").starts_with("k8s:enc:aescbc:v1:key1:"));

  writeConfig(dir_ / "enc.yaml", key("key2", kKey2) + key("key1", kKey1));
  // Secrets written from the reload on are sealed with key2.
  std::string raw;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (int i = 0; std::chrono::steady_clock::now() < deadline; ++i) {
    const std::string name = "after-" + std::to_string(i);
    client->create(secrets, "default", api::parseJson(secretJson(name, "two")));
    raw = rawValue(db(), "/registry/secrets/default/" + name);
    if (raw.starts_with("k8s:enc:aescbc:v1:key2:")) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(raw.starts_with("k8s:enc:aescbc:v1:key2:")) << raw.substr(0, 30);
  EXPECT_EQ(password(client->get(secrets, "default", "before")), "one");

  // A file that no longer parses: the server keeps serving with key2.
  writeConfig(dir_ / "enc.yaml", key("key3", "c2hvcnQ="));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  client->create(secrets, "default", api::parseJson(secretJson("during", "three")));
  EXPECT_TRUE(
      rawValue(db(), "/registry/secrets/default/during").starts_with("k8s:enc:aescbc:v1:key2:"));
  EXPECT_EQ(password(client->get(secrets, "default", "during")), "three");
  server.stop();
}

TEST_F(ServerEncryption, BadConfigurationStopsTheStart) {
  writeConfig(dir_ / "enc.yaml", key("key1", api::base64Encode("too short")));
  ApiServer server(options());
  try {
    server.start();
    FAIL() << "started with a 9-byte key";
  } catch (const std::exception& e) {
    std::string what = e.what();
    EXPECT_NE(what.find((dir_ / "enc.yaml").string()), std::string::npos) << what;
    EXPECT_NE(what.find("resources[0].providers[0].aescbc.keys[0].secret"), std::string::npos)
        << what;
  }
  EXPECT_EQ(server.port(), 0);
  EXPECT_FALSE(std::filesystem::exists(db()));
}

}  // namespace
}  // namespace skiff::apiserver
