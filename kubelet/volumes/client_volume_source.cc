#include "kubelet/volumes/client_volume_source.h"

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

}  // namespace

std::optional<api::core::v1::ConfigMap> ClientVolumeSourceFetcher::getConfigMap(
    const std::string& ns, const std::string& name) {
  return getOrNothing<api::core::v1::ConfigMap>(client_, ns, name);
}

std::optional<api::core::v1::Secret> ClientVolumeSourceFetcher::getSecret(const std::string& ns,
                                                                          const std::string& name) {
  return getOrNothing<api::core::v1::Secret>(client_, ns, name);
}

}  // namespace skiff::kubelet::volumes
