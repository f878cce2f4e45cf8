#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "control/client/client.h"

// Bootstrap tokens for kubelet TLS bootstrap, in kubeadm's shape:
//   skiff token create [--ttl 24h] [--description TEXT] [--groups G] [--kubeconfig F]
//       a Secret kube-system/bootstrap-token-<id> of type bootstrap.kubernetes.io/token; prints
//       `<id>.<secret>`;
//   skiff token list      TOKEN TTL EXPIRES USAGES DESCRIPTION EXTRA GROUPS;
//   skiff bootstrap-kubeconfig --token T [-o FILE] [--server URL]
//       the kubeconfig `skiff agent --bootstrap-kubeconfig` joins with: the apiserver and CA of
//       --kubeconfig (or --server) and the token.

namespace skiff::cli {

struct TokenCreateOptions {
  std::chrono::seconds ttl{24 * 3600};  // 0: never expires
  std::string description;
  std::string groups = "system:bootstrappers:skiff:default-node-token";
  std::string token;  // empty: a new random one
};

// Creates the Secret; returns the token. Throws std::invalid_argument for a malformed --token or
// a group outside system:bootstrappers:, client::ApiError from the apiserver.
std::string createBootstrapToken(
    client::Client& client, const TokenCreateOptions& options,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// A random token: 6 and 16 characters of [a-z0-9], from the CSPRNG.
std::string generateBootstrapToken();

void addTokenCommands(CLI::App& app, int& exit_code);

}  // namespace skiff::cli
