// The informer's cost with a cluster's worth of pods (100,000 by default; SKIFF_BENCH_PODS sets
// it, the bench-smoke run uses a few hundred):
//
// - BM_InformerSync: a full informer (its own thread) lists every pod in pages of 500 from an
//   in-memory Client, decodes each into a typed Pod, files it in the cache with the built-in
//   namespace/owner/nodeName indexes and calls a handler. Counters: pods_per_s of the initial
//   sync and bytes_per_pod, the heap the cache holds per cached pod (glibc mallinfo2, measured
//   after the sync with the list answers freed).
// - BM_InformerEvents: MODIFIED events fed straight into a synced informer of that many pods:
//   decode of the event's object, cache update with re-indexing, and the handler. events_per_s.
// - BM_CacheUpsert: the same without the decode (already typed objects): the cache and index cost
//   alone.
//
// Not measured here: JSON parsing and HTTP (the REST client's work before an event reaches the
// informer); bench/control/api measures the codec's text parse.
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "control/api/codec.h"
#include "control/client/informer_internal.h"
#include "control/client/typed.h"
#include "skiff/api/apps_v1.pb.h"
#include "skiff/api/core_v1.pb.h"

namespace {

using namespace skiff;
using api::Value;
using api::core::v1::Pod;

std::string readFile(const std::string& relative) {
  std::ifstream in(std::string(SKIFF_SOURCE_DIR) + "/" + relative);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t podCount() {
  const char* env = std::getenv("SKIFF_BENCH_PODS");
  return env != nullptr ? std::stoul(env) : 100000;
}

// A Pod as a Deployment's ReplicaSet makes it, with the status a kubelet reports (the same pod
// bench/control/api measures).
const Pod& typicalPod() {
  static const Pod pod = [] {
    Pod p;
    api::decodeJson(readFile("tests/fixtures/manifests/pod.json"), p);
    auto objects = api::decodeManifests(readFile("tests/fixtures/manifests/nginx-deployment.yaml"));
    const auto& d = dynamic_cast<const api::apps::v1::Deployment&>(*objects[0].message);
    *p.mutable_spec() = d.spec().template_().spec();
    return p;
  }();
  return pod;
}

Pod podNumber(size_t i, int64_t revision) {
  Pod p = typicalPod();
  auto* meta = p.mutable_metadata();
  meta->set_name("web-" + std::to_string(i));
  meta->set_namespace_("ns-" + std::to_string(i % 20));
  meta->set_uid("uid-" + std::to_string(i));
  meta->set_resource_version(std::to_string(revision));
  meta->clear_owner_references();
  auto* owner = meta->add_owner_references();
  owner->set_api_version("apps/v1");
  owner->set_kind("ReplicaSet");
  owner->set_name("web-rs-" + std::to_string(i % 1000));
  owner->set_uid("rs-uid-" + std::to_string(i % 1000));
  owner->set_controller(true);
  (*meta->mutable_labels())["app"] = "web-" + std::to_string(i % 1000);
  p.mutable_spec()->set_node_name("node-" + std::to_string(i % 500));
  return p;
}

const std::vector<Value>& podValues() {
  static const std::vector<Value> values = [] {
    std::vector<Value> out;
    size_t n = podCount();
    out.reserve(n);
    for (size_t i = 0; i < n; ++i)
      out.push_back(api::encode(podNumber(i, static_cast<int64_t>(i + 1))));
    return out;
  }();
  return values;
}

// A Client that answers list from memory in pages and opens watches that stay quiet.
class FeedClient : public client::Client {
 public:
  explicit FeedClient(const std::vector<Value>& items) : items_(items) {}

  Value list(const api::ResourceType&, std::string_view, const client::ListOptions& o) override {
    size_t start = o.continue_token.empty() ? 0 : std::stoul(o.continue_token);
    size_t limit = o.limit > 0 ? static_cast<size_t>(o.limit) : items_.size();
    size_t end = std::min(items_.size(), start + limit);
    Value answer = Value::object();
    answer.append("kind", Value::string("PodList"));
    Value meta = Value::object();
    meta.append("resourceVersion", Value::string(std::to_string(items_.size() + 1)));
    if (end < items_.size()) meta.append("continue", Value::string(std::to_string(end)));
    answer.append("metadata", std::move(meta));
    Value items = Value::array();
    items.items().reserve(end - start);
    for (size_t i = start; i < end; ++i)
      items.push(items_[i]);
    answer.append("items", std::move(items));
    return answer;
  }

  client::WatchStreamPtr watch(const api::ResourceType&, std::string_view,
                               const client::WatchOptions&) override {
    return std::make_unique<QuietWatch>();
  }

  [[noreturn]] static void unused() { throw std::logic_error("FeedClient: not used"); }
  Value get(const api::ResourceType&, std::string_view, std::string_view) override { unused(); }
  Value create(const api::ResourceType&, std::string_view, const Value&,
               const client::WriteOptions&) override {
    unused();
  }
  Value update(const api::ResourceType&, std::string_view, const Value&,
               const client::WriteOptions&) override {
    unused();
  }
  Value updateStatus(const api::ResourceType&, std::string_view, const Value&,
                     const client::WriteOptions&) override {
    unused();
  }
  Value patch(const api::ResourceType&, std::string_view, std::string_view, client::PatchType,
              std::string_view, const client::WriteOptions&, std::string_view) override {
    unused();
  }
  Value remove(const api::ResourceType&, std::string_view, std::string_view,
               const client::DeleteOptions&) override {
    unused();
  }
  Value removeCollection(const api::ResourceType&, std::string_view, const client::ListOptions&,
                         const client::DeleteOptions&) override {
    unused();
  }
  Value getScale(const api::ResourceType&, std::string_view, std::string_view) override {
    unused();
  }
  Value updateScale(const api::ResourceType&, std::string_view, const Value&) override { unused(); }
  void bind(std::string_view, std::string_view, std::string_view) override { unused(); }
  client::RawResponse raw(const client::RawRequest&) override { unused(); }
  std::vector<std::string> lastWarnings() const override { return {}; }

 private:
  class QuietWatch : public client::WatchStream {
   public:
    bool next(client::WatchEvent&, std::chrono::milliseconds timeout) override {
      std::unique_lock lock(mutex_);
      cv_.wait_for(lock, timeout, [&] { return cancelled_; });
      return false;
    }
    bool ended() const override {
      std::lock_guard lock(mutex_);
      return cancelled_;
    }
    std::optional<client::ApiError> error() const override { return std::nullopt; }
    void cancel() override {
      std::lock_guard lock(mutex_);
      cancelled_ = true;
      cv_.notify_all();
    }

   private:
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    bool cancelled_ = false;
  };

  const std::vector<Value>& items_;
};

size_t heapInUse() {
  struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

void BM_InformerSync(benchmark::State& state) {
  const auto& values = podValues();
  FeedClient feed(values);
  const api::ResourceType& pods = client::resourceTypeOf<Pod>();
  double bytes_per_pod = 0;
  for (auto _ : state) {
    std::atomic<size_t> added{0};
    malloc_trim(0);
    size_t before = heapInUse();
    auto informer =
        std::make_unique<client::internal::Informer>(feed, pods, client::InformerOptions{});
    informer->addEventHandler({.on_add = [&](const client::ObjectPtr&) { ++added; }});
    informer->start();
    if (!informer->waitForSync(std::chrono::minutes(10))) state.SkipWithError("no sync");
    state.PauseTiming();
    malloc_trim(0);
    size_t after = heapInUse();
    bytes_per_pod = static_cast<double>(after - before) / static_cast<double>(values.size());
    if (added.load() != values.size()) state.SkipWithError("handler missed pods");
    informer.reset();
    state.ResumeTiming();
  }
  state.counters["pods"] = static_cast<double>(values.size());
  state.counters["pods_per_s"] = benchmark::Counter(
      static_cast<double>(values.size() * state.iterations()), benchmark::Counter::kIsRate);
  state.counters["bytes_per_pod"] = bytes_per_pod;
}

std::unique_ptr<client::internal::Informer> syncedInformer(std::atomic<size_t>& handled) {
  static FeedClient feed(podValues());
  auto informer = std::make_unique<client::internal::Informer>(feed, client::resourceTypeOf<Pod>(),
                                                               client::InformerOptions{});
  std::vector<client::ObjectPtr> objects;
  objects.reserve(podValues().size());
  for (const auto& v : podValues())
    objects.push_back(informer->decode(v));
  informer->replace(std::move(objects), std::to_string(podValues().size()));
  informer->addEventHandler({
      .on_update = [&](const client::ObjectPtr&, const client::ObjectPtr&) { ++handled; },
  });
  handled = 0;
  return informer;
}

void BM_InformerEvents(benchmark::State& state) {
  const size_t n = podValues().size();
  // The MODIFIED objects: each pod at a later revision with its status changed.
  std::vector<Value> modified;
  modified.reserve(std::min<size_t>(n, 10000));
  for (size_t i = 0; i < std::min<size_t>(n, 10000); ++i) {
    Pod p = podNumber(i * (n / std::min<size_t>(n, 10000)), static_cast<int64_t>(n + i + 1));
    p.mutable_status()->set_phase("Running");
    modified.push_back(api::encode(p));
  }
  std::atomic<size_t> handled{0};
  auto informer = syncedInformer(handled);
  size_t i = 0;
  for (auto _ : state) {
    client::ObjectPtr object = informer->decode(modified[i]);
    informer->applyUpsert(object);
    if (++i == modified.size()) i = 0;
  }
  if (handled.load() != static_cast<size_t>(state.iterations())) {
    state.SkipWithError("handler missed events");
  }
  state.counters["pods"] = static_cast<double>(n);
  state.counters["events_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_CacheUpsert(benchmark::State& state) {
  const size_t n = podValues().size();
  std::atomic<size_t> handled{0};
  auto informer = syncedInformer(handled);
  std::vector<client::ObjectPtr> objects;
  for (size_t i = 0; i < std::min<size_t>(n, 10000); ++i)
    objects.push_back(informer->decode(podValues()[i * (n / std::min<size_t>(n, 10000))]));
  size_t i = 0;
  for (auto _ : state) {
    informer->applyUpsert(objects[i]);
    if (++i == objects.size()) i = 0;
  }
  state.counters["pods"] = static_cast<double>(n);
  state.counters["events_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

BENCHMARK(BM_InformerSync)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_InformerEvents);
BENCHMARK(BM_CacheUpsert);

}  // namespace

BENCHMARK_MAIN();
