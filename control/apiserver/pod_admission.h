#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "skiff/api/core_v1.pb.h"

namespace skiff::apiserver {

// Kubernetes' DefaultTolerationSeconds admission: a pod gets NoExecute tolerations of the
// node.kubernetes.io/not-ready and node.kubernetes.io/unreachable taints for 300 s, unless it
// tolerates them already, so the node lifecycle controller evicts it 5 minutes after its node
// goes away rather than at once.
void addDefaultTolerationSeconds(api::core::v1::Pod& pod, int64_t seconds = 300);

// What a pods/binding does to the pod besides spec.nodeName, as Kubernetes' binding storage: the
// binding's annotations are copied and the PodScheduled condition set to True.
void markScheduled(api::core::v1::Pod& pod, const api::core::v1::Binding& binding,
                   int64_t now_seconds);

// Kubernetes' ServiceAccount admission (plugin/pkg/admission/serviceaccount) of a pod create:
// spec.serviceAccountName defaults to "default" (or the deprecated spec.serviceAccount), which
// mirrors it; the ServiceAccount must exist (403 "error looking up service account NS/NAME:
// serviceaccount \"NAME\" not found"; "default" is looked up 10 times 100-200 ms apart, as the
// serviceaccount controller may not have made it yet); unless automountServiceAccountToken is
// false on the pod or else on the ServiceAccount, every container and init container that mounts
// nothing at /var/run/secrets/kubernetes.io/serviceaccount gets the read-only volumeMount of a
// kube-api-access-XXXXX projected volume (a bound token, kube-root-ca.crt's ca.crt, the
// namespace); the ServiceAccount's imagePullSecrets fill an empty spec.imagePullSecrets. Mirror
// pods are left alone.
inline constexpr const char* kServiceAccountTokenMountPath =
    "/var/run/secrets/kubernetes.io/serviceaccount";

struct ServiceAccountAdmissionOptions {
  // ns, name -> the ServiceAccount, nullopt when there is none. May throw ApiError.
  std::function<std::optional<api::core::v1::ServiceAccount>(const std::string& ns,
                                                             const std::string& name)>
      lookup;
  int default_attempts = 10;
  std::chrono::milliseconds retry_min{100};  // each wait: retry_min + [0, retry_min)
  // The volume name's suffix; default: five random characters of the generateName alphabet.
  std::function<std::string()> suffix;
};

// Throws ApiError (403 Forbidden) when the ServiceAccount does not exist.
void admitServiceAccount(api::core::v1::Pod& pod, const std::string& ns,
                         const ServiceAccountAdmissionOptions& options);

// The projected volume source kube-api-access-* volumes carry (TokenVolumeSource).
api::core::v1::ProjectedVolumeSource serviceAccountTokenVolumeSource();

}  // namespace skiff::apiserver
