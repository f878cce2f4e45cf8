// A create's managed fields: the walk that marks the FieldsV1 tree directly (addedFieldsV1, what
// trackUpdate does for a create) beside the general path it replaced (the Comparison of nothing
// against the object, sets of paths, FieldsV1 written from the set), on a typical Deployment's pod,
// side by side in one run. Medians: `managed_fields_bench --benchmark_repetitions=5
// --benchmark_report_aggregates_only=true`.
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "control/api/codec.h"
#include "control/apiserver/managed_fields.h"
#include "skiff/api/apps_v1.pb.h"
#include "skiff/api/core_v1.pb.h"

namespace {

using skiff::api::apps::v1::Deployment;
using skiff::api::core::v1::Pod;
using skiff::apiserver::FieldScope;
using skiff::apiserver::FieldType;

std::string readFile(const std::string& relative) {
  std::ifstream in(std::string(SKIFF_SOURCE_DIR) + "/" + relative);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The nginx Deployment's pod as its ReplicaSet creates it, in the JSON form trackUpdate walks.
const skiff::api::Value& owned() {
  static const skiff::api::Value value = [] {
    auto objects =
        skiff::api::decodeManifests(readFile("tests/fixtures/manifests/nginx-deployment.yaml"));
    const auto& d = dynamic_cast<const Deployment&>(*objects.at(0).message);
    Pod p;
    p.mutable_metadata()->set_name("web-7d4b9c6f5-x2x9q");
    *p.mutable_metadata()->mutable_labels() = d.spec().template_().metadata().labels();
    *p.mutable_spec() = d.spec().template_().spec();
    return skiff::apiserver::ownedPart(skiff::api::encode(p), FieldScope::kMainResource);
  }();
  return value;
}

const FieldType& podType() {
  static const FieldType t = FieldType::ofMessage(Pod::descriptor());
  return t;
}

void BM_CreateFieldsByComparison(benchmark::State& state) {
  for (auto _ : state) {
    std::string fields =
        skiff::apiserver::compareObjects(nullptr, owned(), podType()).added.toFieldsV1();
    benchmark::DoNotOptimize(fields);
  }
}
BENCHMARK(BM_CreateFieldsByComparison);

void BM_CreateFieldsInOneWalk(benchmark::State& state) {
  if (skiff::apiserver::addedFieldsV1(owned(), podType()) !=
      skiff::apiserver::compareObjects(nullptr, owned(), podType()).added.toFieldsV1()) {
    state.SkipWithError("the two ways disagree");
    return;
  }
  for (auto _ : state) {
    std::string fields = skiff::apiserver::addedFieldsV1(owned(), podType());
    benchmark::DoNotOptimize(fields);
  }
}
BENCHMARK(BM_CreateFieldsInOneWalk);

}  // namespace

BENCHMARK_MAIN();
