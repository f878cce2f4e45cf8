#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace skiff::api {

// Standard base64 with padding (RFC 4648), as Kubernetes writes []byte fields, Secret data,
// kubeconfig *-data fields and continue tokens.
std::string base64Encode(std::string_view data);
// Decodes standard base64; line breaks are ignored (PEM-like input), anything else malformed
// (wrong characters, data after padding, a bad length) gives nullopt.
std::optional<std::string> base64Decode(std::string_view text);

}  // namespace skiff::api
