#pragma once

// What the apiserver answers in: content negotiation on the Accept header as kube-apiserver does
// it (k8s.io/apiserver/pkg/endpoints/handlers/negotiation), and the writers of each
// representation: JSON, YAML and Kubernetes' protobuf (application/vnd.kubernetes.protobuf).
//
// Accept clauses are tried by q-value, highest first (among equal q, specific types before
// wildcards, else in the order sent); the first one served decides. An empty header, "*/*" and
// "application/*" are JSON. Tables (application/json;as=Table;g=meta.k8s.io;v=v1) are JSON or
// YAML only, as in Kubernetes; a protobuf Table clause is passed over for the next one. A watch is
// served as a JSON stream or as length-delimited protobuf frames
// (application/vnd.kubernetes.protobuf;stream=watch); YAML has no stream form. When no clause is
// served, the request fails with 406 NotAcceptable and Kubernetes' message, written in JSON.

#include <google/protobuf/message.h>

#include <string>
#include <string_view>

#include "control/api/registry.h"
#include "control/api/value.h"
#include "control/apiserver/errors.h"
#include "control/apiserver/http_server.h"
#include "control/apiserver/resource_storage.h"

namespace skiff::apiserver {

enum class MediaType { kJson, kYaml, kProtobuf };

// What a request's answer is made of.
enum class Endpoint {
  kObject,  // an object (get, create, update, patch, delete, subresources)
  kTable,   // get and list of a resource: may also be answered as a Table
  kWatch,   // a watch stream (Tables too, as kubectl get -w asks)
};

struct ResponseFormat {
  MediaType media = MediaType::kJson;
  bool table = false;  // a meta.k8s.io Table (JSON or YAML)
  // The Content-Type of the answer ("application/vnd.kubernetes.protobuf;stream=watch" for a
  // protobuf watch; a JSON watch is plain "application/json", as in Kubernetes).
  std::string contentType(bool stream = false) const;
};

// The format of an answer to `accept`. Throws ApiError 406 when nothing acceptable is served.
ResponseFormat negotiate(std::string_view accept, Endpoint endpoint);
// The same for a request (its Accept header).
ResponseFormat negotiate(const HttpRequest& request, Endpoint endpoint);

// Writes an object (apiVersion and kind from its type) in the format.
void writeObject(const ResponseFormat& format, HttpResponse& response, int status,
                 const google::protobuf::Message& object);

// Writes a JSON value (a Table) in the format: YAML when asked for, else JSON (Tables are never
// protobuf).
void writeValue(const ResponseFormat& format, HttpResponse& response, int status,
                const api::Value& value);

// Writes a <Kind>List of the type's objects with its metadata (resourceVersion, continue).
void writeList(const ResponseFormat& format, HttpResponse& response, const api::ResourceType& type,
               const ListResponse& list);

// A failed request's Status: negotiated from the Accept header as kube-apiserver's
// ErrorNegotiated does (Tables passed over), JSON when nothing else fits, and always JSON for 406.
HttpResponse errorResponse(std::string_view accept, const ApiError& error);

// One watch event in the format: a JSON line {"type":...,"object":...} or a protobuf frame.
// `encoded_object` is the object already in the format (JSON text, or the enveloped protobuf).
std::string watchEvent(MediaType media, std::string_view type, std::string_view encoded_object);
// The object of a watch event in the format (JSON text, or the enveloped protobuf).
std::string encodeEventObject(MediaType media, const google::protobuf::Message& object);

}  // namespace skiff::apiserver
