#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/message.h>

#include "control/api/registry.h"
#include "control/api/value.h"

namespace skiff::apiserver {

// Whether an Accept header asks for meta.k8s.io/v1 Table (what `kubectl get` sends).
bool acceptsTable(std::string_view accept);

// What each row carries besides its cells (the includeObject query parameter).
enum class TableObjects { kNone, kMetadata, kObject };
TableObjects parseIncludeObject(std::string_view value);

// The server-side printing of objects as `kubectl get` shows them: the columns Kubernetes prints
// for each kind (priority 1 columns appear with -o wide), ages as kubectl writes them ("5m30s").
api::Value makeTable(const api::ResourceType& type,
                     const std::vector<const google::protobuf::Message*>& objects,
                     TableObjects include, const std::string& resource_version,
                     const std::string& continue_token, int64_t now_seconds);

// Kubernetes' duration.HumanDuration: "45s", "5m30s", "3h", "2d4h", "1y20d".
std::string humanDuration(int64_t seconds);

}  // namespace skiff::apiserver
