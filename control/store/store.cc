#include "control/store/store.h"

namespace skiff::store {

std::string_view errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kNotFound:
      return "NotFound";
    case ErrorCode::kAlreadyExists:
      return "AlreadyExists";
    case ErrorCode::kConflict:
      return "Conflict";
    case ErrorCode::kCompacted:
      return "Compacted";
    case ErrorCode::kFutureRevision:
      return "FutureRevision";
    case ErrorCode::kTooLarge:
      return "TooLarge";
    case ErrorCode::kUnavailable:
      return "Unavailable";
    case ErrorCode::kCorrupt:
      return "Corrupt";
    case ErrorCode::kInternal:
      return "Internal";
  }
  return "Unknown";
}

std::string objectKey(std::string_view resource, std::string_view ns, std::string_view name) {
  std::string key = resourcePrefix(resource, ns);
  key += name;
  return key;
}

std::string resourcePrefix(std::string_view resource, std::string_view ns) {
  std::string key = "/registry/";
  key += resource;
  key += '/';
  if (!ns.empty()) {
    key += ns;
    key += '/';
  }
  return key;
}

}  // namespace skiff::store
