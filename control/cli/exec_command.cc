#include "control/cli/exec_command.h"

#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <thread>

#include "control/api/base64.h"
#include "control/api/json.h"
#include "control/apiserver/upgraded_stream.h"
#include "control/client/client.h"
#include "control/client/rest_client.h"
#include "kubelet/server/websocket_channel.h"

namespace skiff::cli {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
namespace ws = kubelet::ws;

// The container to run in: -c, else the pod's default-container annotation, else its first
// container (named on `err` when there are several, as kubectl does).
std::string containerFor(CliContext& context, const std::string& ns, const ExecOptions& options,
                         std::ostream& err) {
  if (!options.container.empty()) return options.container;
  const api::Value pod = context.client().get(resolveType("pods"), ns, options.pod);
  std::string annotated;
  if (const api::Value* annotations = field(pod, "metadata.annotations"))
    if (const api::Value* name = annotations->find("kubectl.kubernetes.io/default-container");
        name && name->isString())
      annotated = name->text();
  std::vector<std::string> names;
  if (const api::Value* containers = field(pod, "spec.containers"))
    for (const auto& c : containers->items())
      names.push_back(fieldText(c, "name"));
  if (!annotated.empty()) return annotated;
  if (names.empty()) throw CliError("pod " + options.pod + " has no containers");
  if (names.size() > 1) {
    std::string list;
    for (const auto& n : names)
      list += (list.empty() ? "" : ", ") + n;
    err << "Defaulted container \"" << names[0] << "\" out of: " << list << "\n";
  }
  return names[0];
}

// Where the kubeconfig's server is.
struct Endpoint {
  bool tls = false;
  std::string host, port, authority, base;
};

Endpoint endpointOf(const std::string& server) {
  Endpoint e;
  e.tls = server.rfind("https://", 0) == 0;
  if (!e.tls && server.rfind("http://", 0) != 0)
    throw CliError("server " + server + ": want an http:// or https:// URL");
  e.authority = server.substr(e.tls ? 8 : 7);
  if (size_t slash = e.authority.find('/'); slash != std::string::npos) {
    e.base = e.authority.substr(slash);
    e.authority.resize(slash);
    while (!e.base.empty() && e.base.back() == '/')
      e.base.pop_back();
  }
  e.host = e.authority;
  e.port = e.tls ? "443" : "80";
  if (size_t colon = e.authority.rfind(':');
      colon != std::string::npos && e.authority.find(']', colon) == std::string::npos) {
    e.host = e.authority.substr(0, colon);
    e.port = e.authority.substr(colon + 1);
  }
  if (e.host.size() > 1 && e.host.front() == '[') e.host = e.host.substr(1, e.host.size() - 2);
  return e;
}

// The socket to the apiserver, TLS as the REST client sets it up from the kubeconfig.
struct Connection {
  asio::io_context io;
  tcp::socket socket{io};
  std::optional<asio::ssl::context> ctx;
  std::optional<asio::ssl::stream<tcp::socket&>> tls;

  void open(const client::ClientConfig& config, const Endpoint& e) {
    tcp::resolver resolver(io);
    beast::error_code ec;
    auto addresses = resolver.resolve(e.host, e.port, ec);
    if (!ec) asio::connect(socket, addresses, ec);
    if (ec)
      throw client::ApiError(0, "",
                             "the connection to the server " + e.authority +
                                 " was refused - did you specify the right host or port?");
    if (!e.tls) return;
    ctx.emplace(asio::ssl::context::tls_client);
    const std::string name = config.tls_server_name.empty() ? e.host : config.tls_server_name;
    if (config.insecure_skip_tls_verify) {
      ctx->set_verify_mode(asio::ssl::verify_none);
    } else {
      ctx->set_verify_mode(asio::ssl::verify_peer);
      if (config.ca_pem.empty())
        ctx->set_default_verify_paths();
      else
        ctx->add_certificate_authority(asio::buffer(config.ca_pem));
      ctx->set_verify_callback(asio::ssl::host_name_verification(name));
    }
    if (!config.client_cert_pem.empty()) {
      ctx->use_certificate_chain(asio::buffer(config.client_cert_pem));
      ctx->use_private_key(asio::buffer(config.client_key_pem), asio::ssl::context::pem);
    }
    tls.emplace(socket, *ctx);
    beast::error_code address_ec;
    asio::ip::make_address(name, address_ec);
    if (address_ec)  // SNI for names only; SSL_set_tlsext_host_name without the macro's C cast
      SSL_ctrl(tls->native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(name.c_str()));
    tls->handshake(asio::ssl::stream_base::client, ec);
    if (ec) throw client::ApiError(0, "", "TLS to " + e.authority + ": " + ec.message());
  }
};

std::string randomKey() {
  std::string bytes(16, '\0');
  std::random_device random;
  for (auto& b : bytes)
    b = static_cast<char>(random() & 0xFF);
  return api::base64Encode(bytes);
}

// Sends the upgrade; on 101 returns the chosen subprotocol and the bytes read past the head,
// else throws the server's Status as client::ApiError.
template <typename Stream>
std::pair<std::string, std::string> handshake(Stream& stream,
                                              const http::request<http::empty_body>& req,
                                              const std::string& key) {
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(1 << 20);
  beast::error_code ec;
  http::read(stream, buffer, parser, ec);
  if (ec && !parser.is_header_done())
    throw client::ApiError(0, "", "exec: reading the server's answer: " + ec.message());
  const auto& res = parser.get();
  const int status = static_cast<int>(res.result_int());
  if (status != 101) {
    std::string reason, message = "the server answered " + std::to_string(status);
    api::Value body;
    try {
      body = api::parseJson(res.body());
      if (!fieldText(body, "message").empty()) message = fieldText(body, "message");
      reason = fieldText(body, "reason");
    } catch (const std::exception&) {
      if (!res.body().empty()) message += ": " + res.body();
    }
    throw client::ApiError(status, reason, message, std::move(body));
  }
  if (res[http::field::sec_websocket_accept] != ws::acceptKey(key))
    throw CliError("exec: the server's Sec-WebSocket-Accept does not answer our key");
  const std::string protocol(res[http::field::sec_websocket_protocol]);
  if (protocol != ws::kProtocolV5 && protocol != ws::kProtocolV4)
    throw CliError("exec: the server chose subprotocol \"" + protocol +
                   "\", not v5.channel.k8s.io or v4.channel.k8s.io");
  return {protocol, beast::buffers_to_string(buffer.data())};
}

// Our terminal in raw mode while a -t session runs, restored after.
class RawTerminal {
 public:
  explicit RawTerminal(int fd) : fd_(fd) {
    if (!::isatty(fd) || ::tcgetattr(fd, &saved_) != 0) return;
    termios raw = saved_;
    ::cfmakeraw(&raw);
    active_ = ::tcsetattr(fd, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) ::tcsetattr(fd_, TCSANOW, &saved_);
  }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

// The session on an upgraded connection; returns the exit code.
int session(apiserver::ByteStream& bytes, const std::string& protocol, const ExecOptions& options,
            int in_fd, std::ostream& out, std::ostream& err) {
  ws::ChannelConnection connection(bytes, /*client=*/true);
  std::optional<RawTerminal> raw;
  if (options.tty) {
    winsize size{};
    if (::ioctl(in_fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0 && size.ws_row > 0)
      connection.send(ws::kResize, "{\"Width\":" + std::to_string(size.ws_col) +
                                       ",\"Height\":" + std::to_string(size.ws_row) + "}");
    if (options.pass_stdin) raw.emplace(in_fd);
  }
  std::atomic<bool> done{false};
  std::thread input;
  if (options.pass_stdin) {
    input = std::thread([&] {
      char buf[32 * 1024];
      while (!done.load()) {
        pollfd p{in_fd, POLLIN, 0};
        const int ready = ::poll(&p, 1, 100);
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) break;
        if (ready == 0) continue;
        const ssize_t n = ::read(in_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          // v5 can say "stdin ended"; on v4 the command keeps waiting, as with kubectl.
          if (protocol == ws::kProtocolV5)
            connection.send(ws::kClose, std::string(1, static_cast<char>(ws::kStdin)));
          break;
        }
        if (!connection.send(ws::kStdin, std::string_view(buf, static_cast<size_t>(n)))) break;
      }
    });
  }
  std::optional<std::string> status;
  try {
    while (auto message = connection.receive()) {
      const auto& [channel, data] = *message;
      if (channel == ws::kStdout) {
        out.write(data.data(), static_cast<std::streamsize>(data.size()));
        out.flush();
      } else if (channel == ws::kStderr) {
        err.write(data.data(), static_cast<std::streamsize>(data.size()));
        err.flush();
      } else if (channel == ws::kError) {
        status = status.value_or("") + data;
      }
    }
  } catch (const ws::ProtocolError& e) {
    done.store(true);
    if (input.joinable()) input.join();
    throw CliError(std::string("exec: ") + e.what());
  }
  done.store(true);
  connection.close();
  bytes.close();
  if (input.joinable()) input.join();
  raw.reset();
  if (!status) throw CliError("exec: the connection closed before the command's exit status came");
  std::string message;
  const std::optional<int> code = ws::statusExitCode(*status, message);
  if (!code) throw CliError(message);
  if (*code != 0) err << "command terminated with exit code " << *code << "\n";
  return *code;
}

}  // namespace

int runExec(CliContext& context, const ExecOptions& options, int in_fd, std::ostream& out,
            std::ostream& err) {
  try {
    if (options.command.empty())
      throw CliError("you must specify at least one command for the container");
    const std::string ns = context.ns();
    const std::string container = containerFor(context, ns, options, err);
    std::vector<std::pair<std::string, std::string>> query;
    for (const auto& arg : options.command)
      query.emplace_back("command", arg);
    query.emplace_back("container", container);
    if (options.pass_stdin) query.emplace_back("stdin", "true");
    query.emplace_back("stdout", "true");
    query.emplace_back("stderr", options.tty ? "false" : "true");
    if (options.tty) query.emplace_back("tty", "true");

    const client::ClientConfig& config = context.config();
    const Endpoint endpoint = endpointOf(config.server);
    const std::string target = endpoint.base +
                               apiPath(resolveType("pods"), ns, options.pod, "exec") + "?" +
                               client::encodeQuery(query);
    const std::string key = randomKey();
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, endpoint.authority);
    req.set(http::field::user_agent, "skiff-exec");
    req.set(http::field::upgrade, "websocket");
    req.set(http::field::connection, "Upgrade");
    req.set(http::field::sec_websocket_key, key);
    req.set(http::field::sec_websocket_version, "13");
    req.set(http::field::sec_websocket_protocol,
            std::string(ws::kProtocolV5) + ", " + std::string(ws::kProtocolV4));
    if (!config.token.empty()) req.set(http::field::authorization, "Bearer " + config.token);

    Connection connection;
    connection.open(config, endpoint);
    if (connection.tls) {
      auto [protocol, pending] = handshake(*connection.tls, req, key);
      apiserver::AsioByteStream bytes(*connection.tls, connection.socket, connection.io,
                                      std::move(pending));
      return session(bytes, protocol, options, in_fd, out, err);
    }
    auto [protocol, pending] = handshake(connection.socket, req, key);
    apiserver::AsioByteStream bytes(connection.socket, connection.socket, connection.io,
                                    std::move(pending));
    return session(bytes, protocol, options, in_fd, out, err);
  } catch (const std::exception& e) {
    return reportError(err, e, &context);
  }
}

void addExecCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<ExecOptions>();
  auto globals = std::make_shared<GlobalOptions>();
  auto* cmd = app.add_subcommand("exec", "Run a command in a container of a pod");
  addGlobalFlags(*cmd, *globals);
  cmd->add_option("pod", options->pod, "The pod")->required();
  cmd->add_option("command", options->command, "The command and its arguments, after --")
      ->required();
  cmd->add_option("-c,--container", options->container,
                  "The container (default: the pod's default-container annotation, else the "
                  "first)");
  cmd->add_flag("-i,--stdin", options->pass_stdin, "Pass stdin to the container");
  cmd->add_flag("-t,--tty", options->tty, "Stdin is a TTY");
  cmd->callback([options, globals, &exit_code] {
    CliContext context(*globals);
    exit_code = runExec(context, *options, STDIN_FILENO, std::cout, std::cerr);
  });
}

}  // namespace skiff::cli
