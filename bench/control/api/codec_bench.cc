// Decode and encode of a typical Pod in JSON and YAML, beside protobuf's binary parse and
// serialisation of the same Pod (the store's form): the baseline the text codec is measured
// against.
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>

#include "control/api/codec.h"
#include "skiff/api/apps_v1.pb.h"
#include "skiff/api/core_v1.pb.h"

namespace {

using skiff::api::core::v1::Pod;

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

void setCounters(benchmark::State& state, size_t bytes) {
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}

void BM_DecodeJson(benchmark::State& state) {
  std::string json = skiff::api::encodeJson(typicalPod());
  for (auto _ : state) {
    Pod p;
    skiff::api::decodeJson(json, p);
    benchmark::DoNotOptimize(p);
  }
  setCounters(state, json.size());
}

void BM_EncodeJson(benchmark::State& state) {
  size_t bytes = 0;
  for (auto _ : state) {
    std::string json = skiff::api::encodeJson(typicalPod());
    bytes = json.size();
    benchmark::DoNotOptimize(json);
  }
  setCounters(state, bytes);
}

void BM_DecodeYaml(benchmark::State& state) {
  std::string yaml = skiff::api::encodeYaml(typicalPod());
  for (auto _ : state) {
    Pod p;
    skiff::api::decodeYaml(yaml, p);
    benchmark::DoNotOptimize(p);
  }
  setCounters(state, yaml.size());
}

void BM_EncodeYaml(benchmark::State& state) {
  size_t bytes = 0;
  for (auto _ : state) {
    std::string yaml = skiff::api::encodeYaml(typicalPod());
    bytes = yaml.size();
    benchmark::DoNotOptimize(yaml);
  }
  setCounters(state, bytes);
}

void BM_ProtobufParse(benchmark::State& state) {
  std::string binary = typicalPod().SerializeAsString();
  for (auto _ : state) {
    Pod p;
    p.ParseFromString(binary);
    benchmark::DoNotOptimize(p);
  }
  setCounters(state, binary.size());
}

void BM_ProtobufSerialize(benchmark::State& state) {
  size_t bytes = 0;
  for (auto _ : state) {
    std::string binary = typicalPod().SerializeAsString();
    bytes = binary.size();
    benchmark::DoNotOptimize(binary);
  }
  setCounters(state, bytes);
}

BENCHMARK(BM_DecodeJson)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EncodeJson)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_DecodeYaml)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EncodeYaml)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ProtobufParse)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ProtobufSerialize)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
