#pragma once

#include <string>
#include <vector>

#include <google/protobuf/message.h>

#include "control/api/registry.h"
#include "control/apiserver/errors.h"
#include "skiff/api/core_v1.pb.h"
#include "skiff/api/meta_v1.pb.h"

// Kubernetes' validation of what is created and updated (pkg/apis/*/validation and
// apimachinery's ValidateObjectMeta), with its field paths and messages, so that a bad manifest
// gets the 422 kubectl users know instead of being stored:
//   - metadata: the name by kind (DNS-1123 subdomain for most kinds, a DNS-1123 label for
//     Namespaces, a DNS-1035 label for Services, a path segment for RBAC and any other kind),
//     generateName, labels, annotations (keys, 256 KiB in all), ownerReferences (required fields,
//     one controller), finalizers;
//   - pod specs of Pods and of every template: containers (names unique DNS-1123 labels, image,
//     ports, env names, volumeMounts naming a volume, requests not above limits, probes with one
//     handler, pull policy), volumes (names, exactly one source), restartPolicy, dnsPolicy,
//     activeDeadlineSeconds;
//   - workloads (Deployment, ReplicaSet, DaemonSet, StatefulSet): replicas and counts, a non-empty
//     selector that matches the template's labels, restartPolicy Always, the strategies; on
//     update the selector is immutable, and a StatefulSet's spec only changes where Kubernetes
//     lets it; Job templates restart OnFailure or Never;
//   - ConfigMaps and Secrets: data keys, 1 MiB in all, the keys each Secret type needs
//     (kubernetes.io/tls, dockerconfigjson, basic-auth, ssh-auth, service-account-token), a
//     Secret's type and an immutable object's data unchanged on update;
//   - RBAC: rules with verbs and (resource rules) api groups and resources, or non-resource URLs
//     on cluster roles only; bindings' roleRef (group, kind, name; immutable) and subjects;
//   - Nodes: podCIDRs (podCIDR alone as podCIDRs[0]) valid CIDRs, at most one per family, set
//     once; providerID set once; taints (at metadata.taints, as Kubernetes reports them) with a
//     qualified key, a label value, an effect, unique by key and effect;
//   - EndpointSlices: addressType (immutable), at most 1000 endpoints of 1..100 addresses of
//     that type (IPs neither unspecified nor link-local; loopback is let through for Skiff's
//     single-machine clusters), nodeName and hostname, ports (names, protocols, 0..65535);
//   - Leases: leaseDurationSeconds > 0, leaseTransitions >= 0, strategy and preferredHolder;
//   - core/v1 Events: kube-apiserver's legacy rules (involvedObject's namespace, and with
//     eventTime set reportingComponent, reportingInstance, action, reason and their lengths);
//   - Namespaces: spec.finalizers.
// Services, Jobs' own fields and pod updates have validators of their own (service_admission,
// job_validation, pod_validation), which the apiserver runs beside these.

namespace skiff::apiserver {

// The problems of a new object of `type`, in Kubernetes' order; empty when it is valid.
std::vector<FieldCause> createCauses(const google::protobuf::Message& object,
                                     const api::ResourceType& type);
// The problems of `next` replacing `old` (both of `type`).
std::vector<FieldCause> updateCauses(const google::protobuf::Message& old,
                                     const google::protobuf::Message& next,
                                     const api::ResourceType& type);

// The parts, for other validators and tests. `path` is where the part sits ("spec",
// "spec.template.spec").
std::vector<FieldCause> objectMetaCauses(const api::meta::v1::ObjectMeta& meta,
                                         const api::ResourceType& type, bool creating);
void appendPodSpecCauses(const api::core::v1::PodSpec& spec, const std::string& path,
                         std::vector<FieldCause>& causes);

// Throw the 422 Invalid ApiError Kubernetes answers when there are causes.
void validateCreate(const google::protobuf::Message& object, const api::ResourceType& type);
void validateUpdate(const google::protobuf::Message& old, const google::protobuf::Message& next,
                    const api::ResourceType& type);

}  // namespace skiff::apiserver
