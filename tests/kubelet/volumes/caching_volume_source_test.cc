#include "kubelet/volumes/caching_volume_source.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <stdexcept>
#include <thread>
#include <vector>

namespace skiff::kubelet::volumes {
namespace {

namespace core = api::core::v1;
using namespace std::chrono_literals;

// The apiserver: counts GETs.
class Counting final : public VolumeSourceFetcher {
 public:
  std::optional<core::ConfigMap> getConfigMap(const std::string& ns,
                                              const std::string& name) override {
    ++config_map_gets;
    if (unreachable) throw std::runtime_error("connection refused");
    std::this_thread::sleep_for(delay);
    auto it = config_maps.find(ns + "/" + name);
    if (it == config_maps.end()) return std::nullopt;
    return it->second;
  }
  std::optional<core::Secret> getSecret(const std::string& ns, const std::string& name) override {
    ++secret_gets;
    auto it = secrets.find(ns + "/" + name);
    if (it == secrets.end()) return std::nullopt;
    return it->second;
  }
  api::authentication::v1::TokenRequest requestServiceAccountToken(
      const std::string&, const std::string&,
      const api::authentication::v1::TokenRequest& request) override {
    ++token_requests;
    return request;
  }
  void set(const std::string& key, const std::string& value) {
    core::ConfigMap cm;
    (*cm.mutable_data())["k"] = value;
    config_maps[key] = cm;
  }
  std::map<std::string, core::ConfigMap> config_maps;
  std::map<std::string, core::Secret> secrets;
  std::atomic<int> config_map_gets{0}, secret_gets{0}, token_requests{0};
  bool unreachable = false;
  std::chrono::milliseconds delay{0};
};

struct Clock {
  std::chrono::steady_clock::time_point t{std::chrono::hours(1)};
  std::function<std::chrono::steady_clock::time_point()> fn() {
    return [this] { return t; };
  }
};

core::Pod podUsing(const std::string& uid, const std::string& config_map,
                   const std::string& secret) {
  core::Pod p;
  p.mutable_metadata()->set_namespace_("default");
  p.mutable_metadata()->set_uid(uid);
  auto* v = p.mutable_spec()->add_volumes();
  v->set_name("api");
  auto* sources = v->mutable_projected();
  sources->add_sources()->mutable_config_map()->set_name(config_map);
  auto* c = p.mutable_spec()->add_containers();
  c->add_env_from()->mutable_secret_ref()->set_name(secret);
  return p;
}

TEST(CachingVolumeSourceTest, OneGetPerObjectPerTtlForAnyNumberOfPods) {
  Counting api;
  api.set("default/kube-root-ca.crt", "ca-1");
  Clock clock;
  CachingVolumeSourceFetcher cache(api, {.ttl = 60s, .now = clock.fn()});
  // 20 pods, each resynced once a second for a minute.
  for (int i = 0; i < 20; ++i)
    cache.registerPod(podUsing("uid-" + std::to_string(i), "kube-root-ca.crt", "s"));
  const int after_register = api.config_map_gets;
  for (int second = 0; second < 59; ++second) {
    for (int i = 0; i < 20; ++i)
      EXPECT_EQ(cache.getConfigMap("default", "kube-root-ca.crt")->data().at("k"), "ca-1");
    clock.t += 1s;
  }
  EXPECT_EQ(after_register, 0);
  EXPECT_EQ(api.config_map_gets, 1);  // instead of 20 * 59
  // After the TTL, a change shows.
  api.set("default/kube-root-ca.crt", "ca-2");
  EXPECT_EQ(cache.getConfigMap("default", "kube-root-ca.crt")->data().at("k"), "ca-1");
  clock.t += 1s;
  EXPECT_EQ(cache.getConfigMap("default", "kube-root-ca.crt")->data().at("k"), "ca-2");
  EXPECT_EQ(api.config_map_gets, 2);
}

TEST(CachingVolumeSourceTest, ANewPodGetsFreshObjectsAKnownOneDoesNot) {
  Counting api;
  api.set("default/cfg", "v1");
  Clock clock;
  CachingVolumeSourceFetcher cache(api, {.ttl = 60s, .now = clock.fn()});
  cache.registerPod(podUsing("a", "cfg", "s"));
  EXPECT_EQ(cache.getConfigMap("default", "cfg")->data().at("k"), "v1");
  api.set("default/cfg", "v2");
  cache.registerPod(podUsing("a", "cfg", "s"));  // the same pod again (a resync): cached
  EXPECT_EQ(cache.getConfigMap("default", "cfg")->data().at("k"), "v1");
  cache.registerPod(podUsing("b", "cfg", "s"));  // a new pod: fetched anew
  EXPECT_EQ(cache.getConfigMap("default", "cfg")->data().at("k"), "v2");
  EXPECT_EQ(api.config_map_gets, 2);
}

TEST(CachingVolumeSourceTest, NotFoundIsCachedErrorsAreNot) {
  Counting api;
  Clock clock;
  CachingVolumeSourceFetcher cache(api, {.ttl = 60s, .now = clock.fn()});
  EXPECT_FALSE(cache.getSecret("default", "missing").has_value());
  EXPECT_FALSE(cache.getSecret("default", "missing").has_value());
  EXPECT_EQ(api.secret_gets, 1);
  api.unreachable = true;
  EXPECT_THROW(cache.getConfigMap("default", "cfg"), std::runtime_error);
  api.unreachable = false;
  api.set("default/cfg", "v1");
  EXPECT_EQ(cache.getConfigMap("default", "cfg")->data().at("k"), "v1");
  EXPECT_EQ(api.config_map_gets, 2);
}

TEST(CachingVolumeSourceTest, ConcurrentMissesMakeOneRequest) {
  Counting api;
  api.set("default/cfg", "v1");
  api.delay = 50ms;
  CachingVolumeSourceFetcher cache(api);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] { EXPECT_TRUE(cache.getConfigMap("default", "cfg").has_value()); });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(api.config_map_gets, 1);
}

TEST(CachingVolumeSourceTest, ObjectsNoPodReferencesAreDropped) {
  Counting api;
  api.set("default/cfg", "v1");
  CachingVolumeSourceFetcher cache(api);
  cache.registerPod(podUsing("a", "cfg", "s"));
  cache.registerPod(podUsing("b", "cfg", "s"));
  cache.getConfigMap("default", "cfg");
  cache.getSecret("default", "s");
  EXPECT_EQ(cache.size(), 2u);
  cache.unregisterPod("a");
  EXPECT_EQ(cache.size(), 2u);  // b still reads them
  cache.unregisterPod("b");
  EXPECT_EQ(cache.size(), 0u);
}

TEST(CachingVolumeSourceTest, TokensPassThrough) {
  Counting api;
  CachingVolumeSourceFetcher cache(api);
  api::authentication::v1::TokenRequest request;
  cache.requestServiceAccountToken("default", "default", request);
  cache.requestServiceAccountToken("default", "default", request);
  EXPECT_EQ(api.token_requests, 2);
}

}  // namespace
}  // namespace skiff::kubelet::volumes
