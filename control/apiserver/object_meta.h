#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <google/protobuf/message.h>

#include "skiff/api/meta_v1.pb.h"

namespace skiff::apiserver {

// The metadata of any top-level API object (every kind has `metadata` as an ObjectMeta).
api::meta::v1::ObjectMeta& mutableMeta(google::protobuf::Message& object);
const api::meta::v1::ObjectMeta& meta(const google::protobuf::Message& object);

// The object's field at a JSON path such as "spec.nodeName" or "status.phase", as text (numbers
// and booleans as Kubernetes prints them); nullopt when a message on the way is unset.
std::optional<std::string> fieldText(const google::protobuf::Message& object,
                                     std::string_view json_path);

// A random RFC 4122 version 4 UUID, as Kubernetes gives every object.
std::string newUid();
// Five characters from Kubernetes' generateName alphabet (no vowels, no look-alikes).
std::string randomSuffix(size_t length = 5);

}  // namespace skiff::apiserver
