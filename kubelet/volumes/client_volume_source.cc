#include "kubelet/volumes/client_volume_source.h"

#include <stdexcept>

#include "control/api/codec.h"
#include "control/api/json.h"
#include "control/client/typed.h"

namespace skiff::kubelet::volumes {
namespace {

template <class T>
std::optional<T> getOrNothing(client::Client& client, const std::string& ns,
                              const std::string& name) {
  try {
    return client::get<T>(client, ns, name);
  } catch (const client::ApiError& e) {
    if (e.isNotFound()) return std::nullopt;
    throw;
  }
}

// The message of a Status body, else the body itself.
std::string statusMessage(const std::string& body) {
  try {
    const api::Value status = api::parseJson(body);
    const api::Value* message = status.isObject() ? status.find("message") : nullptr;
    if (message != nullptr && message->isString()) return message->text();
  } catch (const std::exception&) {
    // not JSON: the body as it came
  }
  return body;
}

}  // namespace

std::optional<api::core::v1::ConfigMap> ClientVolumeSourceFetcher::getConfigMap(
    const std::string& ns, const std::string& name) {
  return getOrNothing<api::core::v1::ConfigMap>(client_, ns, name);
}

std::optional<api::core::v1::Secret> ClientVolumeSourceFetcher::getSecret(const std::string& ns,
                                                                          const std::string& name) {
  return getOrNothing<api::core::v1::Secret>(client_, ns, name);
}

std::optional<api::core::v1::PersistentVolumeClaim>
ClientVolumeSourceFetcher::getPersistentVolumeClaim(const std::string& ns,
                                                    const std::string& name) {
  return getOrNothing<api::core::v1::PersistentVolumeClaim>(client_, ns, name);
}

std::optional<api::core::v1::PersistentVolume> ClientVolumeSourceFetcher::getPersistentVolume(
    const std::string& name) {
  return getOrNothing<api::core::v1::PersistentVolume>(client_, "", name);
}

api::authentication::v1::TokenRequest ClientVolumeSourceFetcher::requestServiceAccountToken(
    const std::string& ns, const std::string& name,
    const api::authentication::v1::TokenRequest& request) {
  client::RawResponse res = client_.raw({
      .method = "POST",
      .path = client::resourcePath(client::resourceTypeOf<api::core::v1::ServiceAccount>(), ns,
                                   name, "token"),
      .body = api::encodeJson(request),
      .content_type = "application/json",
  });
  if (res.status != 200 && res.status != 201) {
    throw std::runtime_error("serviceaccounts \"" + name + "\" token: HTTP " +
                             std::to_string(res.status) + ": " + statusMessage(res.body));
  }
  api::authentication::v1::TokenRequest out;
  api::decodeJson(res.body, out, {.unknown_fields = api::UnknownFields::kIgnore});
  return out;
}

}  // namespace skiff::kubelet::volumes
