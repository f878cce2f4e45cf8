#pragma once

#include <chrono>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "control/api/registry.h"
#include "control/api/value.h"
#include "control/client/client.h"
#include "control/client/kubeconfig.h"

// What every verb that talks to the apiserver shares: kubectl's global flags, the kubeconfig, the
// client made from it, resource names as users type them, and errors printed as kubectl prints
// them.

namespace skiff::cli {

// kubectl's global flags.
struct GlobalOptions {
  std::string kubeconfig;
  std::string context;
  std::string ns;               // -n/--namespace; empty: the context's namespace
  std::string request_timeout;  // "0", "30s", "1m"
};

// Makes the client for a resolved kubeconfig (tests swap it; the default is the REST client).
using ClientFactory =
    std::function<client::ClientPtr(const client::ClientConfig&, const GlobalOptions&)>;
ClientFactory& clientFactory();

// A failure a verb reports as kubectl does: the text is printed after "error: ".
class CliError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One invocation's connection state: the kubeconfig is read and the client made on first use.
class CliContext {
 public:
  explicit CliContext(GlobalOptions options) : options_(std::move(options)) {}

  const GlobalOptions& options() const { return options_; }
  // Throws api::DecodeError for a missing or broken kubeconfig.
  const client::ClientConfig& config();
  client::Client& client();
  // -n when given, else the context's namespace, else "default".
  std::string ns();
  bool namespaceGiven() const { return !options_.ns.empty(); }

 private:
  GlobalOptions options_;
  std::optional<client::ClientConfig> config_;
  client::ClientPtr client_;
};

// Adds --kubeconfig, --context, -n/--namespace and --request-timeout to a verb.
void addGlobalFlags(CLI::App& cmd, GlobalOptions& options);

// Parses kubectl durations: "30s", "1m30s", "500ms", a bare number of seconds. nullopt when bad.
std::optional<std::chrono::milliseconds> parseDuration(std::string_view text);

// Resolves what a user types ("deploy", "deployments.apps", "Service") or throws CliError with
// kubectl's `the server doesn't have a resource type "foo"`.
const api::ResourceType& resolveType(std::string_view name);
// "deployment.apps", "service": how kubectl names a kind in its output.
std::string kindName(const api::ResourceType& type);
// "deployment.apps/web".
std::string objectRef(const api::ResourceType& type, std::string_view name);

// Prints an exception as kubectl does and returns the exit code (1):
// `Error from server (NotFound): deployments.apps "web" not found`,
// `The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or
// port?`, `error: <kubeconfig file>:7:5: ...`.
int reportError(std::ostream& err, const std::exception& e, CliContext* context = nullptr);
// The one-line text of an API error, without a prefix.
std::string apiErrorText(const client::ApiError& e);

// Field access on unstructured objects: "metadata.name" style paths; nullptr when absent.
const api::Value* field(const api::Value& object, std::string_view dotted_path);
std::string fieldText(const api::Value& object, std::string_view dotted_path);
int64_t fieldInt(const api::Value& object, std::string_view dotted_path, int64_t fallback = 0);

// Runs `body` and turns any exception into kubectl's message and exit code 1.
int runGuarded(std::ostream& err, CliContext& context, const std::function<int()>& body);

}  // namespace skiff::cli

namespace skiff::cli {

// "/apis/apps/v1/namespaces/default/deployments/web" (ns ignored for cluster-scoped kinds; empty
// ns of a namespaced kind: all namespaces).
std::string apiPath(const api::ResourceType& type, std::string_view ns, std::string_view name = {},
                    std::string_view subresource = {});

// A raw call whose answer must be 2xx JSON; anything else throws client::ApiError built from the
// Status the server sent.
api::Value rawJson(client::Client& c, const client::RawRequest& request);

// The server-side Table of one object (name given) or of a collection, rows carrying metadata.
api::Value getTable(client::Client& c, const api::ResourceType& type, std::string_view ns,
                    std::string_view name, const client::ListOptions& options = {});

}  // namespace skiff::cli
