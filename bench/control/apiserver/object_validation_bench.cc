// What the apiserver's validation of a create costs beside what the create already spends
// decoding the body: a typical Deployment's pod (probes, env, resources, volumes) decoded from
// JSON and validated (createCauses), and the Deployment itself, side by side in one run. Medians
// of repetitions: `object_validation_bench --benchmark_repetitions=5
// --benchmark_report_aggregates_only=true`.
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>

#include "control/api/codec.h"
#include "control/api/json.h"
#include "control/api/registry.h"
#include "control/apiserver/object_validation.h"
#include "skiff/api/apps_v1.pb.h"
#include "skiff/api/core_v1.pb.h"

namespace {

using skiff::api::apps::v1::Deployment;
using skiff::api::core::v1::Pod;

std::string readFile(const std::string& relative) {
  std::ifstream in(std::string(SKIFF_SOURCE_DIR) + "/" + relative);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const Deployment& deployment() {
  static const Deployment d = [] {
    auto objects =
        skiff::api::decodeManifests(readFile("tests/fixtures/manifests/nginx-deployment.yaml"));
    return dynamic_cast<const Deployment&>(*objects[0].message);
  }();
  return d;
}

// The Deployment's pod, named, as its ReplicaSet creates it.
const std::string& podJson() {
  static const std::string json = [] {
    Pod p;
    p.mutable_metadata()->set_name("web-7d4b9c6f5-x2x9q");
    p.mutable_metadata()->set_namespace_("default");
    *p.mutable_metadata()->mutable_labels() = deployment().spec().template_().metadata().labels();
    *p.mutable_spec() = deployment().spec().template_().spec();
    return skiff::api::writeJson(skiff::api::encode(p));
  }();
  return json;
}

template <class T>
const skiff::api::ResourceType& typeOf() {
  return *skiff::api::Registry::builtin().byDescriptor(T::descriptor());
}

void BM_DecodePod(benchmark::State& state) {
  for (auto _ : state) {
    Pod p;
    skiff::api::decodeJson(podJson(), p);
    benchmark::DoNotOptimize(p);
  }
}
BENCHMARK(BM_DecodePod);

void BM_ValidatePod(benchmark::State& state) {
  Pod p;
  skiff::api::decodeJson(podJson(), p);
  const auto& type = typeOf<Pod>();
  for (auto _ : state) {
    auto causes = skiff::apiserver::createCauses(p, type);
    if (!causes.empty()) state.SkipWithError(causes[0].detail.c_str());
    benchmark::DoNotOptimize(causes);
  }
}
BENCHMARK(BM_ValidatePod);

void BM_ValidateDeployment(benchmark::State& state) {
  const auto& type = typeOf<Deployment>();
  for (auto _ : state) {
    auto causes = skiff::apiserver::createCauses(deployment(), type);
    if (!causes.empty()) state.SkipWithError(causes[0].detail.c_str());
    benchmark::DoNotOptimize(causes);
  }
}
BENCHMARK(BM_ValidateDeployment);

}  // namespace

BENCHMARK_MAIN();
