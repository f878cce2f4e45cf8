// What the apiserver spends writing a list of pods and a watch event in JSON against Kubernetes'
// protobuf (application/vnd.kubernetes.protobuf, what client-go's informers ask for), through the
// very writers the handler uses. Medians of repetitions, side by side in one run.
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>

#include "control/api/codec.h"
#include "control/apiserver/response_encoding.h"
#include "skiff/api/apps_v1.pb.h"
#include "skiff/api/core_v1.pb.h"

namespace {

using skiff::api::core::v1::Pod;
using skiff::apiserver::MediaType;
using skiff::apiserver::ResponseFormat;

std::string readFile(const std::string& relative) {
  std::ifstream in(std::string(SKIFF_SOURCE_DIR) + "/" + relative);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A Pod as a Deployment's ReplicaSet makes it (probes, env, resources, volumes, affinity) with the
// status a kubelet reports.
const Pod& typicalPod() {
  static const Pod pod = [] {
    Pod p;
    skiff::api::decodeJson(readFile("tests/fixtures/manifests/pod.json"), p);
    auto objects =
        skiff::api::decodeManifests(readFile("tests/fixtures/manifests/nginx-deployment.yaml"));
    const auto& d = dynamic_cast<const skiff::api::apps::v1::Deployment&>(*objects[0].message);
    std::string node = p.spec().node_name();
    *p.mutable_spec() = d.spec().template_().spec();
    p.mutable_spec()->set_node_name(node);
    return p;
  }();
  return pod;
}

skiff::apiserver::ListResponse podList(int64_t n) {
  skiff::apiserver::ListResponse list;
  for (int64_t i = 0; i < n; ++i) {
    auto pod = std::make_shared<Pod>(typicalPod());
    pod->mutable_metadata()->set_name("web-5d4f8c7b9-" + std::to_string(100000 + i));
    pod->mutable_metadata()->set_resource_version(std::to_string(1000 + i));
    list.items.push_back(std::move(pod));
  }
  list.resource_version = std::to_string(1000 + n);
  return list;
}

void encodeList(benchmark::State& state, MediaType media) {
  const auto& type = *skiff::api::Registry::builtin().byKind("v1", "Pod");
  auto list = podList(state.range(0));
  skiff::apiserver::HttpResponse response;
  for (auto _ : state) {
    skiff::apiserver::writeList(ResponseFormat{.media = media}, response, type, list);
    benchmark::DoNotOptimize(response.body);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * response.body.size()));
  state.counters["body_bytes"] = static_cast<double>(response.body.size());
}

void BM_PodListJson(benchmark::State& state) {
  encodeList(state, MediaType::kJson);
}
void BM_PodListProtobuf(benchmark::State& state) {
  encodeList(state, MediaType::kProtobuf);
}

// One watch event: the object (encoded once per event in the watch cache) and its frame.
void watchEvent(benchmark::State& state, MediaType media) {
  std::string event;
  for (auto _ : state) {
    event = skiff::apiserver::watchEvent(media, "MODIFIED",
                                         skiff::apiserver::encodeEventObject(media, typicalPod()));
    benchmark::DoNotOptimize(event);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["event_bytes"] = static_cast<double>(event.size());
}

void BM_WatchEventJson(benchmark::State& state) {
  watchEvent(state, MediaType::kJson);
}
void BM_WatchEventProtobuf(benchmark::State& state) {
  watchEvent(state, MediaType::kProtobuf);
}

BENCHMARK(BM_PodListJson)->Arg(1000)->Unit(benchmark::kMillisecond)->Repetitions(5);
BENCHMARK(BM_PodListProtobuf)->Arg(1000)->Unit(benchmark::kMillisecond)->Repetitions(5);
BENCHMARK(BM_WatchEventJson)->Unit(benchmark::kMicrosecond)->Repetitions(5);
BENCHMARK(BM_WatchEventProtobuf)->Unit(benchmark::kMicrosecond)->Repetitions(5);

}  // namespace

BENCHMARK_MAIN();
