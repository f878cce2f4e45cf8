#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "control/client/client.h"
#include "control/client/kubeconfig.h"
#include "control/client/rest_client.h"

// Client-side apiserver failover: one Client over several apiservers of one cluster (the same
// store, CA and credentials), the compact stand-in for the load balancer kubelets use in an HA
// Kubernetes control plane. Calls go to the apiserver that answered last; when it cannot be
// reached, the connection is lost or it answers 5xx, the call moves on to the next one at once
// (`skiff agent|scheduler|controller-manager --server URL1,URL2,...`).
//
// The write-safety rule of RestClient holds across servers: a request that is not idempotent
// (POST; PATCH, which may lack a precondition) is resent elsewhere only when it could not be sent
// at all (no connection) or the server answered 429 or 503 (it did nothing). Once every server
// was tried, the round repeats after an exponential backoff, max_retries rounds in all. When no
// server answered in the last round, the ApiError (code 0) names every server and why.

namespace skiff::client {

// "https://a:6443,https://b:6443" -> its URLs (spaces trimmed, empty entries skipped).
std::vector<std::string> splitServers(std::string_view list);

// `config` with each of `servers` in turn as its server. One server: a plain RestClient. Throws
// std::invalid_argument for an empty list or a URL RestClient rejects.
ClientPtr makeFailoverClient(const ClientConfig& config, const std::vector<std::string>& servers,
                             RestClientOptions options = {});

// What the components' --server flag does: empty `servers` keeps the kubeconfig's server, else
// the comma-separated list replaces it.
ClientPtr makeClientForServers(const ClientConfig& config, std::string_view servers,
                               RestClientOptions options = {});

}  // namespace skiff::client
