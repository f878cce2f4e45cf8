#include "control/cli/cli_context.h"

#include <iostream>

#include "control/api/json.h"
#include "control/client/rest_client.h"
#include "skiff/version.h"

namespace skiff::cli {

ClientFactory& clientFactory() {
  static ClientFactory factory = [](const client::ClientConfig& config,
                                    const GlobalOptions& options) -> client::ClientPtr {
    client::RestClientOptions rest;
    rest.user_agent = std::string("skiff/") + kVersion;
    if (!options.request_timeout.empty() && options.request_timeout != "0") {
      auto timeout = parseDuration(options.request_timeout);
      if (!timeout) {
        throw CliError("invalid --request-timeout \"" + options.request_timeout +
                       "\": use a number of seconds or a duration such as 30s or 1m");
      }
      rest.request_timeout = *timeout;
    }
    try {
      return client::makeRestClient(config, rest);
    } catch (const std::invalid_argument& e) {
      throw CliError(e.what());
    }
  };
  return factory;
}

const client::ClientConfig& CliContext::config() {
  if (!config_) {
    config_ =
        client::loadClientConfig({.kubeconfig = options_.kubeconfig, .context = options_.context});
  }
  return *config_;
}

client::Client& CliContext::client() {
  if (!client_) client_ = clientFactory()(config(), options_);
  return *client_;
}

std::string CliContext::ns() {
  if (!options_.ns.empty()) return options_.ns;
  const auto& c = config();
  return c.default_namespace.empty() ? "default" : c.default_namespace;
}

void addGlobalFlags(CLI::App& cmd, GlobalOptions& options) {
  cmd.add_option("--kubeconfig", options.kubeconfig, "Path to the kubeconfig file to use");
  cmd.add_option("--context", options.context, "The kubeconfig context to use");
  cmd.add_option("-n,--namespace", options.ns, "The namespace scope for this request");
  cmd.add_option("--request-timeout", options.request_timeout,
                 "How long to wait for one server request (e.g. 1s, 2m); 0: no timeout");
}

std::optional<std::chrono::milliseconds> parseDuration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  if (text.find_first_not_of("0123456789") == std::string_view::npos) {
    return std::chrono::seconds(std::stoll(std::string(text)));
  }
  double total_ms = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.'))
      ++i;
    if (start == i) return std::nullopt;
    double number = 0;
    try {
      number = std::stod(std::string(text.substr(start, i - start)));
    } catch (const std::exception&) {
      return std::nullopt;
    }
    size_t unit_start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i])))
      ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    if (unit == "ms") {
      total_ms += number;
    } else if (unit == "s") {
      total_ms += number * 1000;
    } else if (unit == "m") {
      total_ms += number * 60'000;
    } else if (unit == "h") {
      total_ms += number * 3'600'000;
    } else {
      return std::nullopt;
    }
  }
  return std::chrono::milliseconds(static_cast<int64_t>(total_ms));
}

const api::ResourceType& resolveType(std::string_view name) {
  const api::ResourceType* type = api::Registry::builtin().resolve(name);
  if (type == nullptr) {
    throw CliError("the server doesn't have a resource type \"" + std::string(name) + "\"");
  }
  return *type;
}

std::string kindName(const api::ResourceType& type) {
  std::string name = type.singular;
  if (name.empty()) {
    for (char c : type.kind)
      name += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return type.group.empty() ? name : name + "." + type.group;
}

std::string objectRef(const api::ResourceType& type, std::string_view name) {
  return kindName(type) + "/" + std::string(name);
}

std::string apiErrorText(const client::ApiError& e) {
  std::string message = e.what();
  if (const api::Value* m = e.status().isObject() ? e.status().find("message") : nullptr;
      m != nullptr && m->isString() && !m->text().empty()) {
    message = m->text();
  }
  return message;
}

int reportError(std::ostream& err, const std::exception& e, CliContext* context) {
  if (const auto* api_error = dynamic_cast<const client::ApiError*>(&e)) {
    if (api_error->isUnreachable()) {
      std::string server;
      if (context != nullptr) {
        try {
          server = context->config().server;
        } catch (const std::exception&) {
        }
      }
      std::string host = server;
      if (auto p = host.find("://"); p != std::string::npos) host = host.substr(p + 3);
      std::string what = api_error->what();
      if (what.find("refused") != std::string::npos && !host.empty()) {
        err << "The connection to the server " << host
            << " was refused - did you specify the right host or port?\n";
      } else {
        err << "Unable to connect to the server: " << what << "\n";
      }
      return 1;
    }
    std::string reason = api_error->reason();
    if (reason.empty()) reason = "Unknown";
    err << "Error from server (" << reason << "): " << apiErrorText(*api_error) << "\n";
    return 1;
  }
  if (const auto* decode = dynamic_cast<const api::DecodeError*>(&e)) {
    for (const auto& d : decode->diagnostics())
      err << "error: " << d.toString() << "\n";
    return 1;
  }
  err << "error: " << e.what() << "\n";
  return 1;
}

int runGuarded(std::ostream& err, CliContext& context, const std::function<int()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    return reportError(err, e, &context);
  }
}

const api::Value* field(const api::Value& object, std::string_view dotted_path) {
  const api::Value* v = &object;
  while (!dotted_path.empty()) {
    size_t dot = dotted_path.find('.');
    std::string_view key = dotted_path.substr(0, dot);
    if (!v->isObject()) return nullptr;
    v = v->find(key);
    if (v == nullptr) return nullptr;
    dotted_path = dot == std::string_view::npos ? std::string_view{} : dotted_path.substr(dot + 1);
  }
  return v;
}

std::string fieldText(const api::Value& object, std::string_view dotted_path) {
  const api::Value* v = field(object, dotted_path);
  if (v == nullptr || v->isNull() || v->isObject() || v->isArray()) return {};
  if (v->isBool()) return v->asBool() ? "true" : "false";
  return v->text();
}

int64_t fieldInt(const api::Value& object, std::string_view dotted_path, int64_t fallback) {
  const api::Value* v = field(object, dotted_path);
  if (v == nullptr || !v->isNumber()) return fallback;
  return v->isInteger() ? v->asInt() : static_cast<int64_t>(v->asDouble());
}

}  // namespace skiff::cli

namespace skiff::cli {

std::string apiPath(const api::ResourceType& type, std::string_view ns, std::string_view name,
                    std::string_view subresource) {
  std::string path =
      type.group.empty() ? "/api/" + type.version : "/apis/" + type.group + "/" + type.version;
  if (type.namespaced && !ns.empty()) path += "/namespaces/" + std::string(ns);
  path += "/" + type.plural;
  if (!name.empty()) path += "/" + std::string(name);
  if (!subresource.empty()) path += "/" + std::string(subresource);
  return path;
}

api::Value rawJson(client::Client& c, const client::RawRequest& request) {
  client::RawResponse response = c.raw(request);
  api::Value body;
  try {
    body = response.body.empty() ? api::Value::object() : api::parseJson(response.body);
  } catch (const std::exception&) {
    if (response.status < 300) throw;
  }
  if (response.status >= 200 && response.status < 300) return body;
  std::string reason = fieldText(body, "reason");
  std::string message = fieldText(body, "message");
  if (message.empty()) {
    message = "the server answered " + std::to_string(response.status) + " to " + request.method +
              " " + request.path;
  }
  throw client::ApiError(response.status, reason, message, body);
}

api::Value getTable(client::Client& c, const api::ResourceType& type, std::string_view ns,
                    std::string_view name, const client::ListOptions& options) {
  client::RawRequest request;
  request.path = apiPath(type, ns, name);
  request.accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
  request.query.emplace_back("includeObject", "Metadata");
  if (!options.label_selector.empty())
    request.query.emplace_back("labelSelector", options.label_selector);
  if (!options.field_selector.empty())
    request.query.emplace_back("fieldSelector", options.field_selector);
  return rawJson(c, request);
}

}  // namespace skiff::cli
