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
    case ErrorCode::kLeaseNotFound:
      return "LeaseNotFound";
    case ErrorCode::kOutcomeUnknown:
      return "OutcomeUnknown";
  }
  return "Unknown";
}

namespace {

[[noreturn]] void noLeases() {
  throw StoreError(ErrorCode::kInternal, "this store does not support leases");
}

}  // namespace

int64_t Store::grantLease(int64_t /*ttl_seconds*/) {
  noLeases();
}

void Store::revokeLease(int64_t /*lease*/) {
  noLeases();
}

int64_t Store::keepAliveLease(int64_t /*lease*/) {
  noLeases();
}

LeaseStatus Store::leaseTimeToLive(int64_t /*lease*/, bool /*with_keys*/) {
  noLeases();
}

int64_t Store::createWithLease(std::string_view key, std::string_view value, int64_t lease) {
  if (lease != 0) noLeases();
  return create(key, value);
}

int64_t Store::updateWithLease(std::string_view key, std::string_view value,
                               int64_t expected_mod_revision, int64_t lease) {
  if (lease != 0) noLeases();
  return update(key, value, expected_mod_revision);
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
