// Fuzz target for the decoders: any bytes as a manifest (JSON or multi-document YAML) and as a
// JSON Pod. Invariants: no crash, no exception other than DecodeError, and whatever decodes
// re-encodes to JSON and YAML that decode back to the same message.
#include <google/protobuf/util/message_differencer.h>

#include <cstdio>
#include <cstdlib>

#include "control/api/codec.h"
#include "skiff/api/core_v1.pb.h"

namespace {

using skiff::api::DecodeError;

void checkRoundTrip(const google::protobuf::Message& m) {
  std::unique_ptr<google::protobuf::Message> back(m.New());
  skiff::api::decodeJson(skiff::api::encodeJson(m), *back);
  if (!google::protobuf::util::MessageDifferencer::Equals(m, *back)) {
    std::fprintf(stderr, "JSON round trip changed the message:\n%s\n",
                 skiff::api::encodeJson(m, skiff::api::JsonStyle::kPretty).c_str());
    std::abort();
  }
  back->Clear();
  skiff::api::decodeYaml(skiff::api::encodeYaml(m), *back);
  if (!google::protobuf::util::MessageDifferencer::Equals(m, *back)) {
    std::fprintf(stderr, "YAML round trip changed the message:\n%s\n",
                 skiff::api::encodeYaml(m).c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    for (const auto& object : skiff::api::decodeManifests(text, {.source = "fuzz"})) {
      checkRoundTrip(*object.message);
    }
  } catch (const DecodeError&) {
  }
  try {
    skiff::api::core::v1::Pod pod;
    std::vector<skiff::api::Diagnostic> warnings;
    skiff::api::decodeJson(
        text, pod, {.unknown_fields = skiff::api::UnknownFields::kWarn, .warnings = &warnings});
    checkRoundTrip(pod);
  } catch (const DecodeError&) {
  }
  return 0;
}
