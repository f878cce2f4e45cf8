#include "dataplane/dataplane.h"

#include <map>
#include <set>

namespace skiff::dataplane {

Status validate(const ServiceDelta& delta) {
  if (delta.replaceAll && !delta.removed.empty()) {
    return Status::failure("a replaceAll delta lists services to remove");
  }
  std::set<std::string_view> upserted;
  std::map<FrontendKey, std::string_view> owner;
  for (const Service& service : delta.upserted) {
    if (Status s = validate(service); !s.ok()) return s;
    if (!upserted.insert(service.id).second) {
      return Status::failure("service \"" + service.id + "\" is upserted twice");
    }
    for (const Frontend& f : service.frontends) {
      auto [it, inserted] = owner.emplace(f.key, service.id);
      if (!inserted) {
        return Status::failure("frontend " + f.key.toString() + " belongs to both \"" +
                               std::string(it->second) + "\" and \"" + service.id + "\"");
      }
    }
  }
  std::set<std::string_view> removed;
  for (const std::string& id : delta.removed) {
    if (upserted.count(id) != 0) {
      return Status::failure("service \"" + id + "\" is both upserted and removed");
    }
    if (!removed.insert(id).second) {
      return Status::failure("service \"" + id + "\" is removed twice");
    }
  }
  return {};
}

std::string_view toString(DropReason reason) {
  switch (reason) {
    case DropReason::kNoBackend:
      return "NoBackend";
    case DropReason::kNoLocalBackend:
      return "NoLocalBackend";
    case DropReason::kSourceRangeDenied:
      return "SourceRangeDenied";
    case DropReason::kConntrackFull:
      return "ConntrackFull";
    case DropReason::kMalformedPacket:
      return "MalformedPacket";
    case DropReason::kTxFailed:
      return "TxFailed";
  }
  return "?";
}

}  // namespace skiff::dataplane
