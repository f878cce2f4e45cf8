#include "kubelet/pods/container_env.h"

#include <map>
#include <optional>
#include <stdexcept>

namespace skiff::kubelet {
namespace core = api::core::v1;
namespace {

// "metadata.labels['app']" -> "app" for `prefix` "metadata.labels".
std::optional<std::string> subscript(const std::string& path, const std::string& prefix) {
  if (!path.starts_with(prefix + "['") || !path.ends_with("']")) return std::nullopt;
  return path.substr(prefix.size() + 2, path.size() - prefix.size() - 4);
}

std::string fieldValue(const core::Pod& pod, const PodAddresses& addresses, const std::string& path,
                       const std::string& field) {
  const auto& meta = pod.metadata();
  if (path == "metadata.name") return meta.name();
  if (path == "metadata.namespace") return meta.namespace_();
  if (path == "metadata.uid") return meta.uid();
  if (path == "spec.nodeName") return pod.spec().node_name();
  if (path == "spec.serviceAccountName") return pod.spec().service_account_name();
  if (path == "status.podIP" || path == "status.podIPs") return addresses.pod_ip;
  if (path == "status.hostIP" || path == "status.hostIPs") return addresses.host_ip;
  if (auto key = subscript(path, "metadata.labels")) {
    auto it = meta.labels().find(*key);
    return it == meta.labels().end() ? std::string() : it->second;
  }
  if (auto key = subscript(path, "metadata.annotations")) {
    auto it = meta.annotations().find(*key);
    return it == meta.annotations().end() ? std::string() : it->second;
  }
  throw std::invalid_argument(field + ".fieldRef.fieldPath: \"" + path +
                              "\" is not a supported field");
}

class Sources {
 public:
  Sources(volumes::VolumeSourceFetcher* fetcher, std::string ns)
      : fetcher_(fetcher), ns_(std::move(ns)) {}

  // The object's data, or nullopt when it does not exist.
  const std::optional<std::map<std::string, std::string>>& configMap(const std::string& name,
                                                                     const std::string& field) {
    auto it = config_maps_.find(name);
    if (it != config_maps_.end()) return it->second;
    need(field);
    std::optional<std::map<std::string, std::string>> data;
    if (auto cm = fetcher_->getConfigMap(ns_, name)) {
      data.emplace(cm->data().begin(), cm->data().end());
      data->insert(cm->binary_data().begin(), cm->binary_data().end());
    }
    return config_maps_[name] = std::move(data);
  }
  const std::optional<std::map<std::string, std::string>>& secret(const std::string& name,
                                                                  const std::string& field) {
    auto it = secrets_.find(name);
    if (it != secrets_.end()) return it->second;
    need(field);
    std::optional<std::map<std::string, std::string>> data;
    if (auto s = fetcher_->getSecret(ns_, name)) data.emplace(s->data().begin(), s->data().end());
    return secrets_[name] = std::move(data);
  }

 private:
  void need(const std::string& field) const {
    if (fetcher_ == nullptr) {
      throw std::invalid_argument(field +
                                  ": this kubelet has no API access for configmaps and "
                                  "secrets");
    }
  }
  volumes::VolumeSourceFetcher* fetcher_;
  std::string ns_;
  std::map<std::string, std::optional<std::map<std::string, std::string>>> config_maps_, secrets_;
};

}  // namespace

ResolvedEnv resolveContainerEnv(const core::Pod& pod, const core::Container& container,
                                volumes::VolumeSourceFetcher* fetcher,
                                const PodAddresses& addresses, const std::string& field) {
  ResolvedEnv out;
  out.container = container;
  Sources sources(fetcher, pod.metadata().namespace_());
  for (int i = 0; i < container.env_from_size(); ++i) {
    const core::EnvFromSource& from = container.env_from(i);
    const std::string where = field + ".envFrom[" + std::to_string(i) + "]";
    const std::optional<std::map<std::string, std::string>>* data = nullptr;
    bool optional = false;
    std::string what;
    if (from.has_config_map_ref()) {
      data = &sources.configMap(from.config_map_ref().name(), where);
      optional = from.config_map_ref().optional();
      what = "configmap \"" + from.config_map_ref().name() + "\"";
    } else if (from.has_secret_ref()) {
      data = &sources.secret(from.secret_ref().name(), where);
      optional = from.secret_ref().optional();
      what = "secret \"" + from.secret_ref().name() + "\"";
    } else {
      throw std::invalid_argument(where + ": neither configMapRef nor secretRef");
    }
    if (!data->has_value()) {
      if (optional) continue;
      throw std::invalid_argument(where + ": " + what + " not found");
    }
    for (const auto& [k, v] : **data)
      out.env_from.emplace_back(from.prefix() + k, v);
  }
  std::vector<bool> drop(static_cast<size_t>(out.container.env_size()), false);
  for (int i = 0; i < out.container.env_size(); ++i) {
    core::EnvVar& e = *out.container.mutable_env(i);
    if (!e.has_value_from()) continue;
    const std::string where = field + ".env[" + std::to_string(i) + "].valueFrom";
    const core::EnvVarSource& src = e.value_from();
    std::optional<std::string> value;
    if (src.has_field_ref()) {
      value = fieldValue(pod, addresses, src.field_ref().field_path(), where);
    } else if (src.has_config_map_key_ref() || src.has_secret_key_ref()) {
      const bool is_cm = src.has_config_map_key_ref();
      const std::string& name =
          is_cm ? src.config_map_key_ref().name() : src.secret_key_ref().name();
      const std::string& key = is_cm ? src.config_map_key_ref().key() : src.secret_key_ref().key();
      const bool optional =
          is_cm ? src.config_map_key_ref().optional() : src.secret_key_ref().optional();
      const auto& data = is_cm ? sources.configMap(name, where) : sources.secret(name, where);
      const std::string what = (is_cm ? "configmap \"" : "secret \"") + name + "\"";
      if (!data) {
        if (!optional) throw std::invalid_argument(where + ": " + what + " not found");
      } else if (auto it = data->find(key); it != data->end()) {
        value = it->second;
      } else if (!optional) {
        throw std::invalid_argument(where + ": couldn't find key " + key + " in " + what);
      }
    } else {
      throw std::invalid_argument(where +
                                  ": only fieldRef, configMapKeyRef and secretKeyRef are "
                                  "supported by this kubelet");
    }
    e.clear_value_from();
    if (value) {
      // A literal value is not $(VAR)-expanded again: escape what expansion would touch.
      std::string escaped;
      for (char c : *value) {
        escaped += c;
        if (c == '$') escaped += '$';
      }
      e.set_value(escaped);
    } else {
      drop[static_cast<size_t>(i)] = true;  // an optional reference to nothing: no variable
    }
  }
  auto* env = out.container.mutable_env();
  for (int i = env->size() - 1; i >= 0; --i) {
    if (drop[static_cast<size_t>(i)]) env->DeleteSubrange(i, 1);
  }
  return out;
}

}  // namespace skiff::kubelet
