#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "control/client/client.h"
#include "control/client/kubeconfig.h"

// The Client over Kubernetes' REST API: HTTP/1.1 with Boost.Beast, HTTPS with OpenSSL (the
// kubeconfig's CA or the system's roots, client certificates, a bearer token re-read from its
// tokenFile when the file changes), or plain http://.
//
// - Connections are kept alive and reused across calls and threads (at most max_idle_connections
//   wait idle; an idle connection the server has closed is never reused).
// - 429 (honouring Retry-After), 5xx answers and lost connections are retried with exponential
//   backoff and jitter. A request that is not idempotent (POST, and PATCH without a resourceVersion
//   precondition) is never sent twice once it may have reached the server: it is retried only
//   when it could not be sent (no connection) or the server answered 429 or 503 (it did nothing).
// - Errors are ApiError: the server's Status (code, reason, message, details.causes), or code 0
//   with a message naming the server ("cannot reach https://127.0.0.1:6443: connection refused").
// - watch() opens a chunked stream read by its own thread; it throws ApiError when the server
//   answers anything but 200 (after the retries above).
//
// Thread-safe: one RestClient serves every thread of a process.

namespace skiff::client {

struct RestClientOptions {
  std::string user_agent;               // default "skiff/<version>"
  std::string field_manager = "skiff";  // when WriteOptions.field_manager is empty
  int max_retries = 5;                  // on 429 (honour Retry-After), 5xx and lost connections
  std::chrono::milliseconds initial_backoff{100};
  std::chrono::milliseconds max_backoff{5000};
  std::chrono::milliseconds request_timeout{30000};
  // Kept-alive connections reused across calls and threads. A connection given back to a full
  // pool is closed, and the next call pays a TCP and TLS handshake: room for as many as a
  // controller's parallel creates (16) and its informers' and workers' calls use at once.
  size_t max_idle_connections = 64;
};

// Throws std::invalid_argument for a server URL that cannot be used or TLS material OpenSSL
// rejects, naming the kubeconfig it came from.
ClientPtr makeRestClient(const ClientConfig& config, RestClientOptions options = {});

// "a=b&c=d" with each name and value percent-encoded (RFC 3986 unreserved characters kept).
std::string encodeQuery(const std::vector<std::pair<std::string, std::string>>& query);

}  // namespace skiff::client
