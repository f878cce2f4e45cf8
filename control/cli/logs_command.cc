#include "control/cli/logs_command.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <iostream>
#include <limits>
#include <memory>

#include "control/api/json.h"
#include "control/client/client.h"
#include "control/client/kubeconfig.h"
#include "control/client/rest_client.h"

namespace skiff::cli {
namespace {

// The pod a target names: POD, pod/POD, or the first pod (by name) of deploy/NAME's selector.
std::string podFor(CliContext& context, const std::string& target, const std::string& ns) {
  const size_t slash = target.find('/');
  if (slash == std::string::npos) return target;
  const std::string kind = target.substr(0, slash);
  const std::string name = target.substr(slash + 1);
  if (name.empty()) throw CliError("\"" + target + "\": want TYPE/NAME");
  const api::ResourceType& type = resolveType(kind);
  if (type.group.empty() && type.plural == "pods") return name;
  if (type.plural != "deployments")
    throw CliError("cannot get the logs of " + kindName(type) + "/" + name +
                   ": want a pod or a deployment");
  api::Value deployment = context.client().get(type, ns, name);
  std::string selector;
  if (const api::Value* labels =
          deployment.find("spec") ? deployment.find("spec")->find("selector") : nullptr) {
    if (const api::Value* match = labels->find("matchLabels"))
      for (const auto& member : match->members())
        selector += (selector.empty() ? "" : ",") + member.key + "=" + member.value.text();
  }
  if (selector.empty()) throw CliError("deployment " + name + " has no spec.selector.matchLabels");
  client::ListOptions list;
  list.label_selector = selector;
  api::Value pods = context.client().list(resolveType("pods"), ns, list);
  std::vector<std::string> names;
  if (const api::Value* items = pods.find("items"))
    for (const auto& pod : items->items())
      names.push_back(fieldText(pod, "metadata.name"));
  if (names.empty()) throw CliError("no pods found for deployment " + name);
  return *std::min_element(names.begin(), names.end());
}

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

template <typename Stream>
void copyBody(Stream& stream, const http::request<http::empty_body>& req, std::ostream& out) {
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  http::read_header(stream, buffer, parser);
  const int status = static_cast<int>(parser.get().result_int());
  std::string error;
  char chunk[16 * 1024];
  while (!parser.is_done()) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof chunk;
    beast::error_code ec;
    http::read(stream, buffer, parser, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) break;  // the server ended the stream
    const size_t got = sizeof chunk - parser.get().body().size;
    if (status == 200) {
      out.write(chunk, static_cast<std::streamsize>(got));
      out.flush();
    } else {
      error.append(chunk, got);
    }
  }
  if (status == 200) return;
  std::string message = "the server answered " + std::to_string(status);
  try {
    api::Value body = api::parseJson(error);
    if (!fieldText(body, "message").empty()) message = fieldText(body, "message");
  } catch (const std::exception&) {
  }
  throw CliError(message);
}

// GET with the body copied to `out` as it arrives (a follow has no end the client can wait for,
// and the REST client reads whole answers): the kubeconfig's server, CA, client certificate and
// token, as the REST client uses them.
void streamGet(const client::ClientConfig& config, const std::string& target, std::ostream& out) {
  const std::string& server = config.server;
  const bool tls = server.rfind("https://", 0) == 0;
  if (!tls && server.rfind("http://", 0) != 0)
    throw CliError("server " + server + ": want an http:// or https:// URL");
  std::string authority = server.substr(tls ? 8 : 7);
  std::string base;
  if (size_t slash = authority.find('/'); slash != std::string::npos) {
    base = authority.substr(slash);
    authority.resize(slash);
    while (!base.empty() && base.back() == '/')
      base.pop_back();
  }
  std::string host = authority, port = tls ? "443" : "80";
  if (size_t colon = authority.rfind(':');
      colon != std::string::npos && authority.find(']', colon) == std::string::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  http::request<http::empty_body> req{http::verb::get, base + target, 11};
  req.set(http::field::host, authority);
  req.set(http::field::accept, "text/plain, application/json");
  req.set(http::field::user_agent, "skiff-logs");
  if (!config.token.empty()) req.set(http::field::authorization, "Bearer " + config.token);

  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  asio::ip::tcp::socket socket(io);
  asio::connect(socket, resolver.resolve(host, port));
  if (!tls) return copyBody(socket, req, out);
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  if (config.insecure_skip_tls_verify) {
    ctx.set_verify_mode(asio::ssl::verify_none);
  } else {
    ctx.set_verify_mode(asio::ssl::verify_peer);
    if (config.ca_pem.empty())
      ctx.set_default_verify_paths();
    else
      ctx.add_certificate_authority(asio::buffer(config.ca_pem));
    const std::string name = config.tls_server_name.empty() ? host : config.tls_server_name;
    ctx.set_verify_callback(asio::ssl::host_name_verification(name));
  }
  if (!config.client_cert_pem.empty()) {
    ctx.use_certificate_chain(asio::buffer(config.client_cert_pem));
    ctx.use_private_key(asio::buffer(config.client_key_pem), asio::ssl::context::pem);
  }
  asio::ssl::stream<asio::ip::tcp::socket> stream(std::move(socket), ctx);
  const std::string sni = config.tls_server_name.empty() ? host : config.tls_server_name;
  beast::error_code address_ec;
  asio::ip::make_address(sni, address_ec);
  if (address_ec)  // SNI for names only; SSL_set_tlsext_host_name without the macro's C cast
    SSL_ctrl(stream.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(sni.c_str()));
  stream.handshake(asio::ssl::stream_base::client);
  copyBody(stream, req, out);
}

}  // namespace

int runLogs(CliContext& context, const LogsOptions& options, std::ostream& out, std::ostream& err) {
  try {
    const std::string ns = context.ns();
    const std::string pod = podFor(context, options.target, ns);
    client::RawRequest request;
    request.path = apiPath(resolveType("pods"), ns, pod, "log");
    request.accept = "text/plain, application/json";
    if (!options.container.empty()) request.query.emplace_back("container", options.container);
    if (options.tail >= 0) request.query.emplace_back("tailLines", std::to_string(options.tail));
    if (options.timestamps) request.query.emplace_back("timestamps", "true");
    if (options.previous) request.query.emplace_back("previous", "true");
    if (options.limit_bytes > 0)
      request.query.emplace_back("limitBytes", std::to_string(options.limit_bytes));
    if (!options.since.empty()) {
      auto since = parseDuration(options.since);
      if (!since || since->count() < 0)
        throw CliError("invalid argument \"" + options.since + "\" for \"--since\" flag");
      const int64_t seconds = std::max<int64_t>(1, (since->count() + 999) / 1000);
      request.query.emplace_back("sinceSeconds", std::to_string(seconds));
    }
    if (options.follow) {
      request.query.emplace_back("follow", "true");
      streamGet(context.config(), request.path + "?" + client::encodeQuery(request.query), out);
      return 0;
    }
    client::RawResponse response = context.client().raw(request);
    if (response.status != 200) {
      rawJson(context.client(), request);  // throws the Status as ApiError
      throw CliError("the server answered " + std::to_string(response.status));
    }
    out << response.body << std::flush;
    return 0;
  } catch (const std::exception& e) {
    return reportError(err, e, &context);
  }
}

void addLogsCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<LogsOptions>();
  auto globals = std::make_shared<GlobalOptions>();
  auto* cmd = app.add_subcommand("logs", "Print the logs of a container in a pod");
  addGlobalFlags(*cmd, *globals);
  cmd->add_option("target", options->target, "POD, pod/POD or deploy/NAME")->required();
  cmd->add_option("-c,--container", options->container, "The container (for multi-container pods)");
  cmd->add_flag("-f,--follow", options->follow, "Stream new lines");
  cmd->add_option("--tail", options->tail, "Lines from the end (-1: all)")->capture_default_str();
  cmd->add_flag("--timestamps", options->timestamps, "Prefix each line with its RFC3339 time");
  cmd->add_flag("-p,--previous", options->previous, "The previous instance of the container");
  cmd->add_option("--since", options->since, "Only lines newer than this (5s, 2m, 3h)");
  cmd->add_option("--limit-bytes", options->limit_bytes, "At most this many bytes");
  cmd->callback([options, globals, &exit_code] {
    CliContext context(*globals);
    exit_code = runLogs(context, *options, std::cout, std::cerr);
  });
}

}  // namespace skiff::cli
