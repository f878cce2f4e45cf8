// Fuzz target for the three PATCH forms (control/apiserver/patch.h). Input: one selector byte (the
// form: JSON merge patch, JSON patch, strategic merge patch over Pod, Deployment or Service), then
// the target JSON, a newline, and the patch JSON. Invariants: no crash, no exception other than
// ApiError (the patch is wrong) or DecodeError (the JSON is), and the result writes as JSON that
// parses back to the same text.
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "control/api/json.h"
#include "control/apiserver/errors.h"
#include "control/apiserver/patch.h"
#include "skiff/api/apps_v1.pb.h"
#include "skiff/api/core_v1.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t form = data[0] % 5;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t nl = rest.find('\n');
  if (nl == std::string_view::npos) return 0;
  using namespace skiff;  // NOLINT(google-build-using-namespace): a fuzz entry point
  try {
    const api::Value target = api::parseJson(rest.substr(0, nl));
    const api::Value patch = api::parseJson(rest.substr(nl + 1));
    api::Value out;
    switch (form) {
      case 0:
        out = apiserver::applyMergePatch(target, patch);
        break;
      case 1:
        out = apiserver::applyJsonPatch(target, patch);
        break;
      case 2:
        out = apiserver::applyStrategicMergePatch(target, patch, api::core::v1::Pod::descriptor());
        break;
      case 3:
        out = apiserver::applyStrategicMergePatch(target, patch,
                                                  api::apps::v1::Deployment::descriptor());
        break;
      default:
        out = apiserver::applyStrategicMergePatch(target, patch,
                                                  api::core::v1::Service::descriptor());
        break;
    }
    const std::string text = api::writeJson(out);
    const std::string again = api::writeJson(api::parseJson(text));
    if (text != again) {
      std::fprintf(stderr, "patch result does not round-trip:\n%s\n%s\n", text.c_str(),
                   again.c_str());
      std::abort();
    }
  } catch (const apiserver::ApiError&) {
  } catch (const api::DecodeError&) {
  }
  return 0;
}
