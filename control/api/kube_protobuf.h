#pragma once

// Kubernetes' protobuf wire format (application/vnd.kubernetes.protobuf).
//
// An object travels as the 4-byte magic "k8s\0" and a runtime.Unknown message:
//   message Unknown { TypeMeta typeMeta = 1; bytes raw = 2; string contentEncoding = 3;
//                     string contentType = 4; }
//   message TypeMeta { string apiVersion = 1; string kind = 2; }
// where raw is the object's k8s.io/api generated.proto encoding. Skiff's .proto types carry the
// same field numbers as Kubernetes' generated.proto (and the same encodings for Time, Quantity,
// IntOrString, RawExtension and maps), so raw is the Skiff message's own serialization.
//
// Lists are {ListMeta metadata = 1; repeated Item items = 2}. A watch stream is a sequence of
// frames, each a 4-byte big-endian length and a metav1.WatchEvent {string type = 1;
// RawExtension object = 2} serialized without magic or envelope, whose object.raw is the
// embedded object in the full envelope above.

#include <google/protobuf/message.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "skiff/api/meta_v1.pb.h"

namespace skiff::api::kubepb {

inline constexpr std::string_view kMediaType = "application/vnd.kubernetes.protobuf";
inline constexpr std::string_view kStreamMediaType =
    "application/vnd.kubernetes.protobuf;stream=watch";

class ProtobufError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Unknown {
  std::string api_version;
  std::string kind;
  std::string raw;
  std::string content_encoding;
  std::string content_type;
};

// True for "application/vnd.kubernetes.protobuf" with or without parameters.
bool isMediaType(std::string_view content_type);

// True when an Accept header's first acceptable media type is Kubernetes' protobuf (kubectl's
// typed clients send "application/vnd.kubernetes.protobuf, */*"; a JSON-first or Table Accept
// header is answered in JSON).
bool prefersProtobuf(std::string_view accept);

// Parses "k8s\0" + Unknown. Throws ProtobufError on a missing magic or malformed bytes.
Unknown parseEnvelope(std::string_view body);
std::string writeEnvelope(const Unknown& unknown);

// Decodes an enveloped object into out (whose type the caller chose). Throws ProtobufError when
// the bytes do not parse, or when the envelope names another kind. Field numbers Skiff does not
// know are reported in unknown_fields (as "field N" paths) and otherwise dropped.
void decodeObject(std::string_view body, google::protobuf::Message& out,
                  std::vector<std::string>* unknown_fields = nullptr);

// The object in the envelope, apiVersion and kind from its resource option (or the given ones).
std::string encodeObject(const google::protobuf::Message& object, std::string_view api_version = {},
                         std::string_view kind = {});

// The raw (un-enveloped) bytes of an object, deterministic (map entries sorted by key).
std::string serialize(const google::protobuf::Message& object);

// A <Kind>List in the envelope: metadata = 1, items = 2 (each item's raw serialization).
std::string encodeList(std::string_view api_version, std::string_view list_kind,
                       const meta::v1::ListMeta& metadata,
                       const std::vector<const google::protobuf::Message*>& items);

// One watch frame: length prefix + WatchEvent{type, object.raw = enveloped object}.
std::string encodeWatchFrame(std::string_view type, std::string_view enveloped_object);

// Splits a stream of watch frames (for tests and clients): each frame's type and object bytes.
struct WatchFrame {
  std::string type;
  std::string object;  // the enveloped object
};
std::vector<WatchFrame> parseWatchFrames(std::string_view stream);

}  // namespace skiff::api::kubepb
