#pragma once

// What the kubelet server's tests share: a real apiserver (apiserver::ApiServer as `skiff server`
// runs it: HTTPS, its cluster CA, RBAC and the Node authorizer) in a temporary directory, Node n1
// at 127.0.0.1, and the kubelet server's options as `skiff agent` sets them for n1: a serving
// certificate from the cluster CA, the cluster CA as its client CA, and TokenReviews and
// SubjectAccessReviews through n1's own node credentials (system:node:n1).

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "control/api/json.h"
#include "control/apiserver/pki.h"
#include "control/apiserver/server.h"
#include "control/client/kubeconfig.h"
#include "control/client/rest_client.h"
#include "kubelet/server/kubelet_server.h"

namespace skiff::kubelet::testutil {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct Reply {
  int status = 0;
  std::string body;
};

struct CallOptions {
  bool tls = true;
  std::string ca_file;   // verifies the server (TLS)
  std::string token;     // Authorization: Bearer
  std::string cert_pem;  // a client certificate and its key (TLS)
  std::string key_pem;
  std::string body;  // JSON
  std::vector<std::pair<std::string, std::string>> headers;
};

// One request to 127.0.0.1:port. Throws when the connection or TLS fails.
inline Reply httpCall(uint16_t port, http::verb method, const std::string& target,
                      const CallOptions& o) {
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), port});
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "127.0.0.1");
  if (!o.token.empty()) req.set(http::field::authorization, "Bearer " + o.token);
  for (const auto& [name, value] : o.headers)
    req.set(name, value);
  if (!o.body.empty()) req.set(http::field::content_type, "application/json");
  req.body() = o.body;
  req.prepare_payload();
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(boost::none);
  if (!o.tls) {
    http::write(socket, req);
    http::read(socket, buffer, parser);
  } else {
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.set_verify_mode(asio::ssl::verify_peer);
    ctx.load_verify_file(o.ca_file);
    if (!o.cert_pem.empty()) {
      ctx.use_certificate(asio::buffer(o.cert_pem), asio::ssl::context::pem);
      ctx.use_private_key(asio::buffer(o.key_pem), asio::ssl::context::pem);
    }
    asio::ssl::stream<asio::ip::tcp::socket&> tls(socket, ctx);
    tls.handshake(asio::ssl::stream_base::client);
    http::write(tls, req);
    http::read(tls, buffer, parser);
  }
  return {static_cast<int>(parser.get().result_int()), parser.get().body()};
}

class KubeletApiCluster {
 public:
  explicit KubeletApiCluster(std::filesystem::path dir) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
    server_ = std::make_unique<apiserver::ApiServer>(
        apiserver::ApiServerOptions{.data_dir = dir_.string(), .port = 0, .fsync = false});
    server_->start();
    paths_ = apiserver::pkiPaths(dir_.string());
    admin_ = client::loadClientConfig({.kubeconfig = server_->adminKubeconfig()});
    // The agent's own credentials, as skiff node-kubeconfig issues them.
    const apiserver::NodeCertificate node = apiserver::ensureNodeCertificate(dir_.string(), "n1");
    client::ClientConfig node_config = admin_;
    node_config.token.clear();
    node_config.user_name = "system:node:n1";
    node_config.client_cert_pem = node.pem.cert_pem;
    node_config.client_key_pem = node.pem.key_pem;
    node_client_ = client::makeRestClient(node_config);
    serving_ = apiserver::issueKubeletServingCertificate(dir_.string(), "n1", {"127.0.0.1"});
  }
  ~KubeletApiCluster() {
    node_client_.reset();
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  KubeletApiCluster(const KubeletApiCluster&) = delete;
  KubeletApiCluster& operator=(const KubeletApiCluster&) = delete;

  // The kubelet server's options as skiff agent gives them (TLS unless `tls` is false: plain
  // HTTP on loopback, bearer tokens only).
  KubeletServerOptions kubeletOptions(const std::string& log_dir, bool tls = true) const {
    KubeletServerOptions o;
    o.bind_address = "127.0.0.1";
    o.port = 0;
    o.log_dir = log_dir;
    if (tls) {
      o.cert_file = serving_.cert_file;
      o.key_file = serving_.key_file;
      o.client_ca_file = paths_.ca_cert;
    }
    o.node_name = "n1";
    o.reviewer = std::make_shared<ApiserverAuthReviewer>(*node_client_);
    return o;
  }

  // Node n1 at 127.0.0.1 with this kubelet port (as the admin).
  void registerNode(uint16_t kubelet_port) {
    Reply created = api(http::verb::post, "/api/v1/nodes", R"({"metadata":{"name":"n1"}})");
    if (created.status != 201) throw std::runtime_error("create node n1: " + created.body);
    Reply status = api(http::verb::put, "/api/v1/nodes/n1/status",
                       R"({"metadata":{"name":"n1"},"status":{"addresses":[)"
                       R"({"type":"InternalIP","address":"127.0.0.1"}],)"
                       R"("daemonEndpoints":{"kubeletEndpoint":{"Port":)" +
                           std::to_string(kubelet_port) + "}}}}");
    if (status.status != 200) throw std::runtime_error("node n1 status: " + status.body);
  }

  // A request to the apiserver as the admin.
  Reply api(http::verb method, const std::string& target, const std::string& body = "") const {
    return httpCall(server_->port(), method, target,
                    {.ca_file = paths_.ca_cert, .token = admin_.token, .body = body});
  }

  apiserver::ApiServer& server() { return *server_; }
  const apiserver::PkiPaths& pki() const { return paths_; }
  const std::string& adminToken() const { return admin_.token; }
  std::string adminKubeconfig() const { return server_->adminKubeconfig(); }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<apiserver::ApiServer> server_;
  apiserver::PkiPaths paths_;
  client::ClientConfig admin_;
  client::ClientPtr node_client_;
  apiserver::NodeCertificate serving_;
};

}  // namespace skiff::kubelet::testutil
