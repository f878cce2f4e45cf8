// Secrets encryption at rest: the aescbc/aesgcm/identity transformers (round trip, key rotation,
// wrong keys, damaged data), the EncryptionConfiguration parser's errors, and the EncryptingStore
// over a real SQLite store (ciphertext inside, plaintext through gets, lists and watches).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "control/api/base64.h"
#include "control/apiserver/encryption/config_reloader.h"
#include "control/apiserver/encryption/encrypting_store.h"
#include "control/apiserver/encryption/encryption_config.h"
#include "control/apiserver/encryption/transformer.h"
#include "control/store/sqlite_store.h"

namespace skiff::apiserver::encryption {
namespace {

const std::string kKey1 = api::base64Encode(std::string(32, '\x01'));
const std::string kKey2 = api::base64Encode(std::string(32, '\x02'));

std::string config(const std::string& providers, const std::string& resources = "[secrets]") {
  return "apiVersion: apiserver.config.k8s.io/v1\n"
         "kind: EncryptionConfiguration\n"
         "resources:\n"
         "  - resources: " +
         resources +
         "\n"
         "    providers:\n" +
         providers;
}

std::string aes(const std::string& type, const std::string& name, const std::string& secret) {
  return "      - " + type + ":\n          keys:\n            - name: " + name +
         "\n              secret: " + secret + "\n";
}

const std::string kIdentity = "      - identity: {}\n";
constexpr std::string_view kKeyPath = "/registry/secrets/default/s1";

std::string configError(const std::string& text) {
  try {
    parseEncryptionConfig(text, "enc.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Transformer, AesCbcRoundTripWithKubernetesPrefix) {
  auto c = parseEncryptionConfig(config(aes("aescbc", "key1", kKey1)), "enc.yaml");
  const Transformer* t = c.forKey(kKeyPath);
  ASSERT_NE(t, nullptr);
  std::string stored = t->toStorage("hello secret", kKeyPath);
  EXPECT_TRUE(stored.starts_with("k8s:enc:aescbc:v1:key1:")) << stored;
  EXPECT_EQ(stored.find("hello secret"), std::string::npos);
  // IV (16) + one block of PKCS#7-padded ciphertext (12 bytes -> 16).
  EXPECT_EQ(stored.size(), std::string("k8s:enc:aescbc:v1:key1:").size() + 16 + 16);
  EXPECT_EQ(t->fromStorage(stored, kKeyPath), "hello secret");
  // Random IVs: the same plaintext never stores the same twice.
  EXPECT_NE(t->toStorage("hello secret", kKeyPath), stored);
  // A full block of padding for a block-aligned plaintext; an empty plaintext round-trips too.
  std::string aligned(32, 'x');
  EXPECT_EQ(t->fromStorage(t->toStorage(aligned, kKeyPath), kKeyPath), aligned);
  EXPECT_EQ(t->fromStorage(t->toStorage("", kKeyPath), kKeyPath), "");
  // Keys not configured pass through.
  EXPECT_EQ(c.forKey("/registry/configmaps/default/c"), nullptr);
  EXPECT_EQ(c.forKey("/registry/secretsx/default/c"), nullptr);
}

TEST(Transformer, AesGcmRoundTripBindsTheStoreKey) {
  auto c = parseEncryptionConfig(config(aes("aesgcm", "k", kKey1)), "enc.yaml");
  const Transformer* t = c.forKey(kKeyPath);
  std::string stored = t->toStorage("payload", kKeyPath);
  EXPECT_TRUE(stored.starts_with("k8s:enc:aesgcm:v1:k:"));
  EXPECT_EQ(stored.size(), std::string("k8s:enc:aesgcm:v1:k:").size() + 12 + 7 + 16);
  EXPECT_EQ(t->fromStorage(stored, kKeyPath), "payload");
  // The same bytes under another key do not authenticate.
  EXPECT_THROW(t->fromStorage(stored, "/registry/secrets/default/other"), TransformError);
}

TEST(Transformer, KeyRotationReadsOldDataAndWritesWithTheNewKey) {
  auto old_config = parseEncryptionConfig(config(aes("aescbc", "key1", kKey1)), "enc.yaml");
  std::string old_value = old_config.forKey(kKeyPath)->toStorage("v1 data", kKeyPath);
  // Step 1 of Kubernetes' rotation: the new key first, the old one still listed.
  auto rotated = parseEncryptionConfig(
      config("      - aescbc:\n          keys:\n"
             "            - name: key2\n              secret: " +
             kKey2 + "\n            - name: key1\n              secret: " + kKey1 + "\n"),
      "enc.yaml");
  const Transformer* t = rotated.forKey(kKeyPath);
  EXPECT_EQ(t->fromStorage(old_value, kKeyPath), "v1 data");
  std::string new_value = t->toStorage("v2 data", kKeyPath);
  EXPECT_TRUE(new_value.starts_with("k8s:enc:aescbc:v1:key2:"));
  EXPECT_EQ(t->fromStorage(new_value, kKeyPath), "v2 data");
  // The old key alone cannot read what the new key wrote: it names the prefix it lacks.
  try {
    old_config.forKey(kKeyPath)->fromStorage(new_value, kKeyPath);
    FAIL() << "read with a key that is not configured";
  } catch (const TransformError& e) {
    EXPECT_NE(std::string(e.what()).find("k8s:enc:aescbc:v1:key2:"), std::string::npos) << e.what();
  }
  // A provider change (aescbc -> aesgcm) with the old provider kept second reads both.
  auto switched = parseEncryptionConfig(
      config(aes("aesgcm", "g1", kKey2) + aes("aescbc", "key1", kKey1)), "enc.yaml");
  EXPECT_EQ(switched.forKey(kKeyPath)->fromStorage(old_value, kKeyPath), "v1 data");
  EXPECT_TRUE(switched.forKey(kKeyPath)->toStorage("x", kKeyPath).starts_with("k8s:enc:aesgcm:"));
}

TEST(Transformer, IdentityReadsPlaintextAndRefusesCiphertext) {
  auto plain_first = parseEncryptionConfig(config(kIdentity + aes("aescbc", "key1", kKey1)), "e");
  const Transformer* t = plain_first.forKey(kKeyPath);
  // identity first: writes plaintext (decrypting everything back), reads both kinds.
  EXPECT_EQ(t->toStorage("plain", kKeyPath), "plain");
  auto enc = parseEncryptionConfig(config(aes("aescbc", "key1", kKey1) + kIdentity), "e");
  std::string stored = enc.forKey(kKeyPath)->toStorage("secret", kKeyPath);
  EXPECT_EQ(t->fromStorage(stored, kKeyPath), "secret");
  EXPECT_EQ(t->fromStorage("plain", kKeyPath), "plain");
  // With encryption first and identity as the fallback, data from before encryption reads.
  EXPECT_EQ(enc.forKey(kKeyPath)->fromStorage("from before", kKeyPath), "from before");
  // identity alone never hands out ciphertext as if it were the object.
  auto identity_only = parseEncryptionConfig(config(kIdentity), "e");
  EXPECT_THROW(identity_only.forKey(kKeyPath)->fromStorage(stored, kKeyPath), TransformError);
  // Without identity, plaintext is an error, not silently accepted.
  auto no_identity = parseEncryptionConfig(config(aes("aescbc", "key1", kKey1)), "e");
  EXPECT_THROW(no_identity.forKey(kKeyPath)->fromStorage("plain", kKeyPath), TransformError);
}

TEST(Transformer, WrongKeyAndDamagedDataAreErrors) {
  auto right = parseEncryptionConfig(config(aes("aescbc", "key1", kKey1)), "e");
  auto wrong = parseEncryptionConfig(config(aes("aescbc", "key1", kKey2)), "e");
  std::string stored = right.forKey(kKeyPath)->toStorage(std::string(100, 's'), kKeyPath);
  // Same key name, other secret: bad padding (or, once in 256, garbage is caught by the caller;
  // a run of 50 makes sure the error is the rule).
  int errors = 0;
  for (int i = 0; i < 50; ++i) {
    std::string s = right.forKey(kKeyPath)->toStorage(std::string(100, 's'), kKeyPath);
    try {
      if (wrong.forKey(kKeyPath)->fromStorage(s, kKeyPath) != std::string(100, 's')) ++errors;
    } catch (const TransformError&) {
      ++errors;
    }
  }
  EXPECT_EQ(errors, 50);
  // Truncated, not a block multiple, too short.
  const Transformer* t = right.forKey(kKeyPath);
  EXPECT_THROW(t->fromStorage(stored.substr(0, stored.size() - 1), kKeyPath), TransformError);
  EXPECT_THROW(t->fromStorage("k8s:enc:aescbc:v1:key1:short", kKeyPath), TransformError);
  // A flipped bit of the last block breaks the padding.
  std::string flipped = stored;
  flipped.back() = static_cast<char>(flipped.back() ^ 0x01);
  EXPECT_THROW(t->fromStorage(flipped, kKeyPath), TransformError);
  // GCM catches any flipped bit.
  auto gcm = parseEncryptionConfig(config(aes("aesgcm", "k", kKey1)), "e");
  std::string g = gcm.forKey(kKeyPath)->toStorage("authenticated", kKeyPath);
  for (size_t i = std::string("k8s:enc:aesgcm:v1:k:").size(); i < g.size(); ++i) {
    std::string bad = g;
    bad[i] = static_cast<char>(bad[i] ^ 0x80);
    EXPECT_THROW(gcm.forKey(kKeyPath)->fromStorage(bad, kKeyPath), TransformError) << i;
  }
  auto gcm_wrong = parseEncryptionConfig(config(aes("aesgcm", "k", kKey2)), "e");
  EXPECT_THROW(gcm_wrong.forKey(kKeyPath)->fromStorage(g, kKeyPath), TransformError);
}

TEST(EncryptionConfig, ErrorsNameTheFileAndTheFieldPath) {
  // A 16-byte key is AES-128 (Kubernetes accepts 16, 24 and 32); 8 bytes is not.
  std::string short_key = api::base64Encode("12345678");
  std::string e = configError(config(kIdentity + aes("aescbc", "key1", short_key)));
  EXPECT_NE(e.find("enc.yaml:"), std::string::npos) << e;
  EXPECT_NE(e.find("resources[0].providers[1].aescbc.keys[0].secret: must be 16, 24 or 32 bytes "
                   "base64"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("got 8 bytes"), std::string::npos) << e;
  e = configError(config(aes("aescbc", "key1", "not*base64")));
  EXPECT_NE(e.find("resources[0].providers[0].aescbc.keys[0].secret: must be base64"),
            std::string::npos)
      << e;
  e = configError(config(aes("secretbox", "key1", kKey1)));
  EXPECT_NE(e.find("resources[0].providers[0].secretbox: provider not supported"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("libsodium"), std::string::npos) << e;
  e = configError(config("      - kms:\n          name: x\n"));
  EXPECT_NE(e.find("resources[0].providers[0].kms: provider not supported"), std::string::npos)
      << e;
  e = configError(config("      - aesbc:\n          keys: []\n"));
  EXPECT_NE(e.find("resources[0].providers[0].aesbc: unknown provider \"aesbc\""),
            std::string::npos)
      << e;
  e = configError(config("      - aescbc:\n          keys: []\n"));
  EXPECT_NE(e.find("resources[0].providers[0].aescbc.keys: must list at least one key"),
            std::string::npos)
      << e;
  e = configError(
      config("      - aescbc:\n          keys:\n            - secret: " + kKey1 + "\n"));
  EXPECT_NE(e.find("resources[0].providers[0].aescbc.keys[0].name: required"), std::string::npos)
      << e;
  e =
      configError(config("      - aescbc:\n          keys:\n            - name: a\n"
                         "              secret: " +
                         kKey1 + "\n            - name: a\n              secret: " + kKey2 + "\n"));
  EXPECT_NE(e.find("resources[0].providers[0].aescbc.keys[1].name: duplicate key name"),
            std::string::npos)
      << e;
  e = configError(config("      - identity: {}\n        aescbc: {}\n"));
  EXPECT_NE(e.find("resources[0].providers[0]: must name exactly one provider"), std::string::npos)
      << e;
  e = configError(config(kIdentity, "[]"));
  EXPECT_NE(e.find("resources[0].resources: must list at least one resource"), std::string::npos)
      << e;
  e = configError(config("", "[secrets]"));
  EXPECT_NE(e.find("resources[0].providers: required"), std::string::npos) << e;
  e = configError(config(kIdentity, "['*']"));
  EXPECT_NE(e.find("resources[0].resources[0]: \"*\" is not a resource"), std::string::npos) << e;
  e = configError("apiVersion: v1\nkind: EncryptionConfiguration\nresources: []\n");
  EXPECT_NE(e.find("apiVersion: must be apiserver.config.k8s.io/v1"), std::string::npos) << e;
  e = configError("apiVersion: apiserver.config.k8s.io/v1\nkind: Config\nresources: []\n");
  EXPECT_NE(e.find("kind: must be EncryptionConfiguration"), std::string::npos) << e;
  e = configError(
      "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
      "resource: []\n");
  EXPECT_NE(e.find("resource: unknown field"), std::string::npos) << e;
  e = configError("resources: [unclosed\n");
  EXPECT_NE(e.find("enc.yaml"), std::string::npos) << e;
  // A later rule masked by an earlier one.
  e = configError(
      "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
      "  - resources: ['*.*']\n    providers: [{identity: {}}]\n"
      "  - resources: [secrets]\n    providers: [{identity: {}}]\n");
  EXPECT_NE(e.find("resources[1].resources[0]: \"secrets\" is already covered by "
                   "resources[0].resources[0]"),
            std::string::npos)
      << e;
  EXPECT_THROW(loadEncryptionConfig("/nonexistent/enc.yaml"), ConfigError);
  try {
    loadEncryptionConfig("/nonexistent/enc.yaml");
  } catch (const ConfigError& err) {
    EXPECT_NE(std::string(err.what()).find("/nonexistent/enc.yaml"), std::string::npos);
  }
}

TEST(EncryptionConfig, ResourceNamesAndPrecedence) {
  auto c = parseEncryptionConfig(
      "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
      "  - resources: [secrets]\n    providers:\n" +
          aes("aesgcm", "s", kKey1) + "  - resources: ['*.apps', configmaps]\n    providers:\n" +
          aes("aescbc", "a", kKey2) + "  - resources: ['*.*']\n    providers: [{identity: {}}]\n",
      "enc.yaml");
  EXPECT_TRUE(
      c.forKey("/registry/secrets/ns/x")->toStorage("v", "k").starts_with("k8s:enc:aesgcm:v1:s:"));
  EXPECT_TRUE(c.forKey("/registry/deployments/ns/x")
                  ->toStorage("v", "k")
                  .starts_with("k8s:enc:aescbc:v1:a:"));
  EXPECT_TRUE(c.forKey("/registry/configmaps/ns/x")
                  ->toStorage("v", "k")
                  .starts_with("k8s:enc:aescbc:v1:a:"));
  EXPECT_EQ(c.forKey("/registry/pods/ns/x")->toStorage("v", "k"), "v");
  ASSERT_EQ(c.summary().size(), 3u);
  EXPECT_EQ(c.summary()[0], "secrets: aesgcm(s)");
}

class EncryptingStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("skiff-encrypting-store-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    raw_ = store::SqliteStore::open({.path = (dir_ / "state.db").string(), .fsync = false});
  }
  void TearDown() override {
    raw_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
  store::StorePtr raw_;
};

TEST_F(EncryptingStoreTest, InnerStoreHoldsCiphertextReadersSeePlaintext) {
  EncryptingStore store(
      *raw_, parseEncryptionConfig(config(aes("aescbc", "key1", kKey1) + kIdentity), "enc.yaml"));
  auto watch = store.watch("/registry/", store.currentRevision());
  int64_t rev = store.create("/registry/secrets/ns/a", "password=hunter2");
  store.create("/registry/configmaps/ns/c", "plain config");
  EXPECT_TRUE(raw_->get("/registry/secrets/ns/a")->value.starts_with("k8s:enc:aescbc:v1:key1:"));
  EXPECT_EQ(raw_->get("/registry/secrets/ns/a")->value.find("hunter2"), std::string::npos);
  EXPECT_EQ(raw_->get("/registry/configmaps/ns/c")->value, "plain config");
  EXPECT_EQ(store.get("/registry/secrets/ns/a")->value, "password=hunter2");
  store.update("/registry/secrets/ns/a", "password=changed", rev);
  auto list = store.list("/registry/secrets/", {});
  ASSERT_EQ(list.kvs.size(), 1u);
  EXPECT_EQ(list.kvs[0].value, "password=changed");
  EXPECT_EQ(store.list("/registry/secrets/", {.count_only = true}).count, 1);
  store::KeyValue removed = store.remove("/registry/secrets/ns/a", 0);
  EXPECT_EQ(removed.value, "password=changed");

  std::vector<store::Event> events;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (events.size() < 4 && std::chrono::steady_clock::now() < deadline)
    watch->next(events, std::chrono::milliseconds(100));
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].kv.value, "password=hunter2");
  EXPECT_EQ(events[1].kv.value, "plain config");
  EXPECT_EQ(events[2].kv.value, "password=changed");
  ASSERT_TRUE(events[2].prev.has_value());
  EXPECT_EQ(events[2].prev->value, "password=hunter2");
  EXPECT_EQ(events[3].type, store::Event::Type::kDelete);
  ASSERT_TRUE(events[3].prev.has_value());
  EXPECT_EQ(events[3].prev->value, "password=changed");
}

TEST_F(EncryptingStoreTest, UnreadableValuesFailReadsAndEndWatches) {
  EncryptingStore writer(*raw_, parseEncryptionConfig(config(aes("aescbc", "key1", kKey1)), "e"));
  EncryptingStore wrong(*raw_, parseEncryptionConfig(config(aes("aescbc", "key1", kKey2)), "e"));
  auto watch = wrong.watch("/registry/secrets/", raw_->currentRevision());
  writer.create("/registry/secrets/ns/a", std::string(64, 'p'));
  try {
    wrong.get("/registry/secrets/ns/a");
    FAIL() << "read with the wrong key";
  } catch (const store::StoreError& e) {
    EXPECT_EQ(e.code(), store::ErrorCode::kInternal);
    EXPECT_NE(std::string(e.what()).find("cannot decrypt /registry/secrets/ns/a"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(wrong.list("/registry/secrets/", {}), store::StoreError);
  std::vector<store::Event> events;
  bool alive = true;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (alive && std::chrono::steady_clock::now() < deadline)
    alive = watch->next(events, std::chrono::milliseconds(100));
  EXPECT_FALSE(alive);
  EXPECT_TRUE(events.empty());
  ASSERT_TRUE(watch->error().has_value());
  EXPECT_EQ(watch->error()->code(), store::ErrorCode::kInternal);
  // Damaged bytes in the file itself.
  raw_->update("/registry/secrets/ns/a", "k8s:enc:aescbc:v1:key1:garbage-garbage-garbage", 0);
  EXPECT_THROW(writer.get("/registry/secrets/ns/a"), store::StoreError);
}

void writeFile(const std::filesystem::path& path, const std::string& text) {
  // A new file renamed over the old one, as editors and config management write it.
  const auto tmp = path.string() + ".tmp";
  std::ofstream(tmp, std::ios::binary) << text;
  std::filesystem::rename(tmp, path);
}

// Key rotation without a restart: the new key added first is taken by the reloader and encrypts
// every write from then on, the old key still reads; a file that no longer parses keeps the
// configuration in use, and the next good one is taken.
TEST_F(EncryptingStoreTest, ReloaderTakesAChangedConfigurationAndKeepsTheOneInUseOnErrors) {
  const auto path = dir_ / "enc.yaml";
  const std::string first = config(aes("aescbc", "key1", kKey1));
  writeFile(path, first);
  EncryptingStore store(*raw_, parseEncryptionConfig(first, path.string()));
  ConfigReloader reloader(path.string(), first, store, std::chrono::milliseconds(20));
  EXPECT_FALSE(reloader.check()) << "the same content is not a reload";

  store.create("/registry/secrets/ns/old", "old secret");
  EXPECT_TRUE(raw_->get("/registry/secrets/ns/old")->value.starts_with("k8s:enc:aescbc:v1:key1:"));

  // key2 first, key1 after it.
  const std::string rotated = config(
      "      - aescbc:\n          keys:\n            - name: key2\n              secret: " + kKey2 +
      "\n            - name: key1\n              secret: " + kKey1 + "\n");
  writeFile(path, rotated);
  reloader.start();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (reloader.status().reloads == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  reloader.stop();
  ASSERT_EQ(reloader.status().reloads, 1u);
  EXPECT_EQ(store.config()->summary()[0], "secrets: aescbc(key2,key1)");
  store.create("/registry/secrets/ns/new", "new secret");
  EXPECT_TRUE(raw_->get("/registry/secrets/ns/new")->value.starts_with("k8s:enc:aescbc:v1:key2:"));
  EXPECT_EQ(store.get("/registry/secrets/ns/old")->value, "old secret") << "key1 still reads";

  // A broken file: refused once, the configuration in use stays.
  writeFile(path, config("      - aescbc:\n          keys:\n            - name: key3\n"
                         "              secret: c2hvcnQ=\n"));
  EXPECT_FALSE(reloader.check());
  EXPECT_FALSE(reloader.check());
  ReloadStatus status = reloader.status();
  EXPECT_EQ(status.failures, 1u) << "the same bad content counts once";
  EXPECT_NE(
      status.last_error.find("enc.yaml:9:23: resources[0].providers[0].aescbc.keys[0].secret: "
                             "must be 16, 24 or 32 bytes"),
      std::string::npos)
      << status.last_error;
  store.create("/registry/secrets/ns/during", "x");
  EXPECT_TRUE(
      raw_->get("/registry/secrets/ns/during")->value.starts_with("k8s:enc:aescbc:v1:key2:"));
  std::filesystem::remove(path);
  EXPECT_FALSE(reloader.check());
  EXPECT_EQ(reloader.status().failures, 2u);

  // Turning encryption off: identity first, aescbc after it to read what is there.
  writeFile(path,
            config(kIdentity +
                   "      - aescbc:\n          keys:\n            - name: key2\n"
                   "              secret: " +
                   kKey2 + "\n            - name: key1\n              secret: " + kKey1 + "\n"));
  EXPECT_TRUE(reloader.check());
  EXPECT_TRUE(reloader.status().last_error.empty());
  store.create("/registry/secrets/ns/plain", "plain now");
  EXPECT_EQ(raw_->get("/registry/secrets/ns/plain")->value, "plain now");
  EXPECT_EQ(store.get("/registry/secrets/ns/new")->value, "new secret");
}

}  // namespace
}  // namespace skiff::apiserver::encryption
