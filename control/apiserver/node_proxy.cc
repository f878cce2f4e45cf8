#include "control/apiserver/node_proxy.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <limits>
#include <vector>

#include "control/apiserver/errors.h"

namespace skiff::apiserver {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string bracketList(const std::vector<std::string>& names) {
  std::string out = "[";
  for (size_t i = 0; i < names.size(); ++i)
    out += (i ? " " : "") + names[i];
  return out + "]";
}

std::string percentEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// The container the request names, or the pod's only container; Kubernetes' errors otherwise.
std::string containerFor(const api::core::v1::Pod& pod, const HttpRequest& request) {
  std::vector<std::string> names, init_names;
  for (const auto& c : pod.spec().containers())
    names.push_back(c.name());
  for (const auto& c : pod.spec().init_containers())
    init_names.push_back(c.name());
  auto it = request.query.find("container");
  const std::string name = it == request.query.end() ? "" : it->second;
  if (name.empty()) {
    if (names.size() == 1) return names[0];
    std::string message = "a container name must be specified for pod " + pod.metadata().name() +
                          ", choose one of: " + bracketList(names);
    if (!init_names.empty())
      message += " or one of the init containers: " + bracketList(init_names);
    throw badRequest(message);
  }
  for (const auto* list : {&names, &init_names})
    for (const auto& n : *list)
      if (n == name) return name;
  throw badRequest("container " + name + " is not valid for pod " + pod.metadata().name());
}

// Sends the request on `stream` and copies the answer: the body streamed as it arrives when the
// kubelet says 200, else an ApiError with the kubelet's status and text.
template <typename Stream>
void exchange(Stream& stream, const http::request<http::empty_body>& req,
              const std::function<ResponseStream&(const HttpResponse&)>& start_stream,
              const std::string& where) {
  beast::error_code ec;
  http::write(stream, req, ec);
  if (ec) throw ApiError(503, "ServiceUnavailable", "kubelet " + where + ": " + ec.message());
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  http::read_header(stream, buffer, parser, ec);
  if (ec) throw ApiError(503, "ServiceUnavailable", "kubelet " + where + ": " + ec.message());
  const int status = static_cast<int>(parser.get().result_int());
  char chunk[16 * 1024];
  if (status != 200) {
    std::string text;
    while (!parser.is_done()) {
      parser.get().body().data = chunk;
      parser.get().body().size = sizeof chunk;
      http::read(stream, buffer, parser, ec);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) break;
      text.append(chunk, sizeof chunk - parser.get().body().size);
      if (text.size() > 64 * 1024) break;
    }
    while (!text.empty() && text.back() == '\n')
      text.pop_back();
    const std::string reason = status == 404   ? "NotFound"
                               : status == 400 ? "BadRequest"
                               : status == 401 ? "Unauthorized"
                                               : "InternalError";
    throw ApiError(status == 401 ? 500 : status, reason, text);
  }
  HttpResponse head;
  head.content_type = "text/plain";
  ResponseStream& out = start_stream(head);
  while (!parser.is_done()) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof chunk;
    http::read(stream, buffer, parser, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return;  // the kubelet went away: end the client's stream too
    const size_t got = sizeof chunk - parser.get().body().size;
    if (got > 0 && !out.write(std::string_view(chunk, got))) return;
  }
}

}  // namespace

void proxyPodLog(const api::core::v1::Pod& pod,
                 const std::function<api::core::v1::Node(const std::string&)>& getNode,
                 const HttpRequest& request,
                 const std::function<ResponseStream&(const HttpResponse&)>& start_stream,
                 const NodeProxyOptions& options) {
  const std::string container = containerFor(pod, request);
  if (pod.spec().node_name().empty())
    throw badRequest("pod " + pod.metadata().name() + " does not have a host assigned");
  const api::core::v1::Node node = getNode(pod.spec().node_name());
  std::string address;
  for (const auto& a : node.status().addresses())
    if (a.type() == "InternalIP") {
      address = a.address();
      break;
    }
  const int port = node.status().daemon_endpoints().kubelet_endpoint().port();
  if (address.empty() || port <= 0)
    throw badRequest("node " + node.metadata().name() +
                     " reports no InternalIP or kubelet port (status.daemonEndpoints)");

  std::string target = "/containerLogs/" + percentEncode(pod.metadata().namespace_()) + "/" +
                       percentEncode(pod.metadata().name()) + "/" + percentEncode(container);
  char sep = '?';
  for (const char* name :
       {"follow", "tailLines", "timestamps", "previous", "sinceSeconds", "limitBytes"}) {
    auto it = request.query.find(name);
    if (it == request.query.end()) continue;
    target += sep + std::string(name) + "=" + percentEncode(it->second);
    sep = '&';
  }
  const std::string where = address + ":" + std::to_string(port);
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, where);
  req.set(http::field::authorization, "Bearer " + options.kubelet_token);
  req.set(http::field::user_agent, "skiff-apiserver");

  asio::io_context io;
  tcp::socket socket(io);
  beast::error_code ec;
  const auto ip = asio::ip::make_address(address, ec);
  if (ec) throw badRequest("node " + node.metadata().name() + ": bad InternalIP " + address);
  socket.connect(tcp::endpoint(ip, static_cast<uint16_t>(port)), ec);
  if (ec) throw ApiError(503, "ServiceUnavailable", "kubelet " + where + ": " + ec.message());
  if (!options.kubelet_tls) return exchange(socket, req, start_stream, where);

  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.set_verify_mode(asio::ssl::verify_peer);
  if (options.kubelet_ca_file.empty()) {
    ctx.set_default_verify_paths();
  } else {
    ctx.load_verify_file(options.kubelet_ca_file, ec);
    if (ec)
      throw ApiError(500, "InternalError",
                     "kubelet CA " + options.kubelet_ca_file + ": " + ec.message());
  }
  ctx.set_verify_callback(asio::ssl::host_name_verification(address));
  asio::ssl::stream<tcp::socket> tls(std::move(socket), ctx);
  tls.handshake(asio::ssl::stream_base::client, ec);
  if (ec) throw ApiError(503, "ServiceUnavailable", "kubelet " + where + " TLS: " + ec.message());
  exchange(tls, req, start_stream, where);
}

}  // namespace skiff::apiserver
