#include "control/controllers/local_path_provisioner.h"

#include "control/client/typed.h"

namespace skiff::controllers {

using api::core::v1::Node;
using api::core::v1::PersistentVolume;
using api::core::v1::PersistentVolumeClaim;
using api::storage::v1::StorageClass;

namespace {

constexpr std::string_view kClassKey = "class:";
constexpr std::string_view kClaimKey = "claim:";
constexpr std::string_view kVolumeKey = "volume:";

std::string annotation(const api::meta::v1::ObjectMeta& meta, std::string_view key) {
  auto it = meta.annotations().find(std::string(key));
  return it == meta.annotations().end() ? "" : it->second;
}

}  // namespace

StorageClass localPathStorageClass() {
  StorageClass sc;
  sc.mutable_metadata()->set_name(std::string(kLocalPathClassName));
  (*sc.mutable_metadata()->mutable_annotations())["storageclass.kubernetes.io/is-default-class"] =
      "true";
  sc.set_provisioner(std::string(kLocalPathProvisionerName));
  sc.set_reclaim_policy("Delete");
  sc.set_volume_binding_mode("WaitForFirstConsumer");
  sc.set_allow_volume_expansion(false);
  return sc;
}

Provisioning provisionLocalPath(const PersistentVolumeClaim& claim, const StorageClass* sc,
                                const Node* node, bool existing) {
  Provisioning out;
  const auto& meta = claim.metadata();
  if (meta.has_deletion_timestamp() || !claim.spec().volume_name().empty() || existing) return out;
  if (annotation(meta, kAnnStorageProvisioner) != kLocalPathProvisionerName &&
      annotation(meta, kAnnBetaStorageProvisioner) != kLocalPathProvisionerName) {
    return out;
  }
  if (sc == nullptr || sc->provisioner() != kLocalPathProvisionerName) return out;
  const std::string selected = annotation(meta, kAnnSelectedNode);
  if (selected.empty()) {
    if (sc->volume_binding_mode() != "WaitForFirstConsumer") {
      out.event_type = "Warning";
      out.event_reason = "ProvisioningFailed";
      out.event_message = "failed to provision volume with StorageClass \"" +
                          sc->metadata().name() + "\": " + std::string(kLocalPathProvisionerName) +
                          " needs a node: use volumeBindingMode WaitForFirstConsumer";
    }
    return out;
  }
  for (const auto& mode : claim.spec().access_modes()) {
    if (mode != "ReadWriteOnce" && mode != "ReadWriteOncePod") {
      out.event_type = "Warning";
      out.event_reason = "ProvisioningFailed";
      out.event_message = "failed to provision volume with StorageClass \"" +
                          sc->metadata().name() + "\": access mode " + mode +
                          " is not supported by " + std::string(kLocalPathProvisionerName) +
                          " (only ReadWriteOnce and ReadWriteOncePod)";
      return out;
    }
  }
  if (claim.spec().volume_mode() == "Block") {
    out.event_type = "Warning";
    out.event_reason = "ProvisioningFailed";
    out.event_message = "failed to provision volume with StorageClass \"" + sc->metadata().name() +
                        "\": volumeMode Block is not supported by " +
                        std::string(kLocalPathProvisionerName);
    return out;
  }
  std::string dir = std::string(kDefaultLocalStorageDir);
  std::string hostname = selected;
  if (node != nullptr) {
    if (std::string d = annotation(node->metadata(), kLocalStorageDirAnnotation); !d.empty())
      dir = d;
    auto it = node->metadata().labels().find("kubernetes.io/hostname");
    if (it != node->metadata().labels().end() && !it->second.empty()) hostname = it->second;
  }
  while (dir.size() > 1 && dir.back() == '/')
    dir.pop_back();
  PersistentVolume pv;
  const std::string name = "pvc-" + meta.uid();
  pv.mutable_metadata()->set_name(name);
  (*pv.mutable_metadata()->mutable_annotations())[std::string(kAnnProvisionedBy)] =
      std::string(kLocalPathProvisionerName);
  (*pv.mutable_metadata()->mutable_annotations())["local.path.provisioner/selected-node"] =
      selected;
  // Held until the node's kubelet removed the data (kubelet/volumes/local_path_cleaner.h).
  pv.mutable_metadata()->add_finalizers(std::string(kLocalPathDataFinalizer));
  auto* spec = pv.mutable_spec();
  api::runtime::Quantity size = requestedStorage(claim).toProto();
  (*spec->mutable_capacity())["storage"] = size;
  *spec->mutable_access_modes() = claim.spec().access_modes();
  if (spec->access_modes_size() == 0) spec->add_access_modes("ReadWriteOnce");
  spec->set_persistent_volume_reclaim_policy(sc->reclaim_policy().empty() ? "Delete"
                                                                          : sc->reclaim_policy());
  spec->set_storage_class_name(sc->metadata().name());
  spec->set_volume_mode("Filesystem");
  *spec->mutable_mount_options() = sc->mount_options();
  spec->mutable_local()->set_path(dir + "/" + name + "_" + meta.namespace_() + "_" + meta.name());
  auto* term = spec->mutable_node_affinity()->mutable_required()->add_node_selector_terms();
  auto* req = term->add_match_expressions();
  req->set_key("kubernetes.io/hostname");
  req->set_operator_("In");
  req->add_values(hostname);
  auto* ref = spec->mutable_claim_ref();
  ref->set_kind("PersistentVolumeClaim");
  ref->set_api_version("v1");
  ref->set_namespace_(meta.namespace_());
  ref->set_name(meta.name());
  ref->set_uid(meta.uid());
  ref->set_resource_version(meta.resource_version());
  out.volume = std::move(pv);
  out.event_type = "Normal";
  out.event_reason = "ProvisioningSucceeded";
  out.event_message = "Successfully provisioned volume " + name;
  return out;
}

bool deletesLocalPathVolume(const PersistentVolume& volume) {
  return !volume.metadata().has_deletion_timestamp() &&
         annotation(volume.metadata(), kAnnProvisionedBy) == kLocalPathProvisionerName &&
         volume.status().phase() == "Released" &&
         volume.spec().persistent_volume_reclaim_policy() == "Delete";
}

LocalPathProvisioner::LocalPathProvisioner(client::Client& client, client::SharedInformer& claims,
                                           client::SharedInformer& volumes,
                                           client::SharedInformer& classes,
                                           client::SharedInformer& nodes,
                                           client::EventRecorder* events, bool create_default_class)
    : QueueController("local-path-provisioner"),
      client_(client),
      claims_(claims),
      volumes_(volumes),
      classes_(classes),
      nodes_(nodes),
      events_(events) {
  auto onClaim = [this](const client::ObjectPtr& o) {
    enqueue(std::string(kClaimKey) + client::objectKey(*o));
  };
  claims_.addEventHandler({
      .on_add = onClaim,
      .on_update = [onClaim](const client::ObjectPtr&, const client::ObjectPtr& o) { onClaim(o); },
      .on_delete = nullptr,
  });
  auto onVolume = [this](const client::ObjectPtr& o) {
    enqueue(std::string(kVolumeKey) + client::objectKey(*o));
  };
  volumes_.addEventHandler({
      .on_add = onVolume,
      .on_update = [onVolume](const client::ObjectPtr&,
                              const client::ObjectPtr& o) { onVolume(o); },
      .on_delete = nullptr,
  });
  if (create_default_class) enqueue(std::string(kClassKey) + std::string(kLocalPathClassName));
}

LocalPathProvisioner::~LocalPathProvisioner() {
  stop();
}

std::optional<std::chrono::milliseconds> LocalPathProvisioner::sync(const std::string& key) {
  if (key.starts_with(kClassKey)) {
    if (classes_.cache().get(std::string_view(key).substr(kClassKey.size()))) return std::nullopt;
    try {
      client::create(client_, localPathStorageClass());
    } catch (const client::ApiError& e) {
      if (!e.isAlreadyExists()) throw;
    }
    return std::nullopt;
  }
  if (key.starts_with(kVolumeKey)) {
    auto o = volumes_.cache().get(std::string_view(key).substr(kVolumeKey.size()));
    if (!o) return std::nullopt;
    const auto& pv = client::as<PersistentVolume>(o);
    if (!deletesLocalPathVolume(pv)) return std::nullopt;
    try {
      client::DeleteOptions options;
      options.precondition_uid = pv.metadata().uid();
      client::remove<PersistentVolume>(client_, "", pv.metadata().name(), options);
    } catch (const client::ApiError& e) {
      if (!e.isNotFound() && !e.isConflict()) throw;
    }
    return std::nullopt;
  }
  if (!key.starts_with(kClaimKey)) return std::nullopt;
  auto [ns, name] = client::splitObjectKey(std::string_view(key).substr(kClaimKey.size()));
  auto o = claims_.cache().get(ns, name);
  if (!o) return std::nullopt;
  const auto& claim = client::as<PersistentVolumeClaim>(o);
  client::ObjectPtr sc_obj;
  if (!claim.spec().storage_class_name().empty())
    sc_obj = classes_.cache().get(claim.spec().storage_class_name());
  client::ObjectPtr node_obj;
  if (std::string node = annotation(claim.metadata(), kAnnSelectedNode); !node.empty())
    node_obj = nodes_.cache().get(node);
  const bool existing = volumes_.cache().get("pvc-" + claim.metadata().uid()) != nullptr;
  Provisioning p = provisionLocalPath(claim, sc_obj ? &client::as<StorageClass>(sc_obj) : nullptr,
                                      node_obj ? &client::as<Node>(node_obj) : nullptr, existing);
  if (p.volume) {
    try {
      client::create(client_, *p.volume);
    } catch (const client::ApiError& e) {
      if (!e.isAlreadyExists()) {
        if (events_ != nullptr) {
          events_->record(typeOf<PersistentVolumeClaim>(), claim, "Warning", "ProvisioningFailed",
                          std::string("failed to provision volume: ") + e.what());
        }
        throw;
      }
      return std::nullopt;
    }
  }
  if (!p.event_reason.empty() && events_ != nullptr) {
    events_->record(typeOf<PersistentVolumeClaim>(), claim, p.event_type, p.event_reason,
                    p.event_message);
  }
  return std::nullopt;
}

}  // namespace skiff::controllers
