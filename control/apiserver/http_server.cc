#include "control/apiserver/http_server.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

#include "control/api/codec.h"
#include "control/apiserver/errors.h"
#include "control/apiserver/response_encoding.h"

namespace skiff::apiserver {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string statusBody(const ApiError& error) {
  return api::encodeJson(error.toStatus());
}

// The verified client certificate of a TLS connection as PEM, or "" without one.
std::string peerCertificate(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return {};
  std::string pem;
  if (SSL_get_verify_result(ssl) == X509_V_OK) {
    BIO* bio = BIO_new(BIO_s_mem());
    if (PEM_write_bio_X509(bio, cert) == 1) {
      char* data = nullptr;
      long n = BIO_get_mem_data(bio, &data);
      pem.assign(data, static_cast<size_t>(n));
    }
    BIO_free(bio);
  }
  X509_free(cert);
  return pem;
}

template <typename Stream>
std::string clientCertificate(Stream& stream) {
  if constexpr (std::is_same_v<Stream, tcp::socket>) {
    return {};
  } else {
    return peerCertificate(stream.native_handle());
  }
}

bool isLoopback(const asio::ip::address& address) {
  if (address.is_loopback()) return true;
  return address.is_v6() && address.to_v6().is_v4_mapped() && address.to_v6().to_v4().is_loopback();
}

void setTimeouts(int fd, int seconds) {
  timeval tv{seconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

template <typename Stream>
class ChunkStream : public ResponseStream {
 public:
  ChunkStream(Stream& stream, int fd, const std::atomic<bool>& stopping)
      : stream_(stream), fd_(fd), stopping_(stopping) {}
  bool alive() override {
    if (!ok_ || stopping_.load()) return false;
    pollfd p{fd_, POLLRDHUP, 0};
    if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) ok_ = false;
    return ok_;
  }
  bool write(std::string_view chunk) override {
    if (!ok_ || chunk.empty()) return ok_;
    beast::error_code ec;
    asio::write(stream_, http::make_chunk(asio::buffer(chunk.data(), chunk.size())), ec);
    ok_ = !ec;
    return ok_;
  }
  void finish() {
    if (!ok_) return;
    beast::error_code ec;
    asio::write(stream_, http::make_chunk_last(), ec);
  }

 private:
  Stream& stream_;
  int fd_;
  const std::atomic<bool>& stopping_;
  bool ok_ = true;
};

template <typename Stream>
void writeResponse(Stream& stream, const HttpResponse& r, bool keep_alive, bool head,
                   beast::error_code& ec) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), 11};
  res.set(http::field::content_type, r.content_type);
  for (const auto& [name, value] : r.headers)
    res.insert(name, value);
  res.keep_alive(keep_alive);
  res.body() = head ? std::string() : r.body;
  res.prepare_payload();
  if (head) res.content_length(r.body.size());
  http::write(stream, res, ec);
}

}  // namespace

std::string_view HttpRequest::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return {};
}

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpHandler handler;
  asio::io_context io;
  std::optional<asio::ssl::context> ssl;
  tcp::acceptor acceptor{io};
  std::thread accept_thread;
  std::atomic<bool> stopping{false};
  std::mutex mu;
  std::condition_variable all_closed;
  std::unordered_map<uint64_t, int> open_fds;  // connection id -> socket, to unblock on stop
  uint64_t next_id = 0;
  std::atomic<size_t>* open_count = nullptr;
  // setCertificate(): the pair each new handshake uses (cert_cb), instead of the context's.
  struct CertifiedKey {
    std::vector<X509*> chain;  // leaf first
    EVP_PKEY* key = nullptr;
    ~CertifiedKey() {
      for (X509* c : chain)
        X509_free(c);
      EVP_PKEY_free(key);
    }
  };
  std::mutex cert_mu;
  std::shared_ptr<CertifiedKey> certified;

  template <typename Stream>
  void serve(Stream& stream, tcp::socket& socket, asio::io_context& conn_io,
             const std::string& remote) {
    const int fd = socket.native_handle();
    beast::flat_buffer buffer;
    while (!stopping.load()) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(options.max_body_bytes);
      parser.header_limit(64 * 1024);
      beast::error_code ec;
      http::read(stream, buffer, parser, ec);
      if (ec == http::error::body_limit) {
        HttpResponse r{413, "application/json", {}, statusBody(tooLarge(options.max_body_bytes))};
        writeResponse(stream, r, false, false, ec);
        return;
      }
      if (ec == http::error::end_of_stream || ec == asio::error::eof ||
          ec == asio::ssl::error::stream_truncated) {
        return;
      }
      if (ec) {
        if (parser.got_some()) {
          HttpResponse r{400,
                         "application/json",
                         {},
                         statusBody(badRequest("malformed HTTP request: " + ec.message()))};
          writeResponse(stream, r, false, false, ec);
        }
        return;
      }
      auto& req = parser.get();
      HttpRequest request;
      request.method = std::string(req.method_string());
      request.target = std::string(req.target());
      size_t q = request.target.find('?');
      request.path = request.target.substr(0, q);
      if (q != std::string::npos) request.query = parseQuery(request.target.substr(q + 1));
      for (const auto& field : req) {
        std::string name(field.name_string());
        for (auto& c : name)
          c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        request.headers.emplace_back(std::move(name), std::string(field.value()));
      }
      request.body = std::move(req.body());
      request.remote_address = remote;
      request.client_certificate = clientCertificate(stream);
      bool keep_alive = req.keep_alive();
      bool head = req.method() == http::verb::head;

      HttpResponse response;
      std::optional<ChunkStream<Stream>> chunks;
      auto start_stream = [&](const HttpResponse& first) -> ResponseStream& {
        http::response<http::empty_body> res{static_cast<http::status>(first.status), 11};
        res.set(http::field::content_type, first.content_type);
        for (const auto& [name, value] : first.headers)
          res.insert(name, value);
        res.chunked(true);
        http::response_serializer<http::empty_body> serializer{res};
        beast::error_code write_ec;
        http::write_header(stream, serializer, write_ec);
        chunks.emplace(stream, fd, stopping);
        if (write_ec) chunks->write("");  // the stream reports the client as gone
        return *chunks;
      };
      try {
        handler(request, response, start_stream);
      } catch (const ApiError& e) {
        if (chunks) return;
        response = errorResponse(request.header("accept"), e);
      } catch (const std::exception& e) {
        if (chunks) return;
        response = errorResponse(request.header("accept"), internalError(e.what()));
      }
      if (chunks) {
        chunks->finish();
        return;
      }
      if (response.status == 101 && response.upgrade) {
        http::response<http::empty_body> res{http::status::switching_protocols, 11};
        for (const auto& [name, value] : response.headers)
          res.insert(name, value);
        http::write(stream, res, ec);
        if (ec) return;
        AsioByteStream<Stream> upgraded(stream, socket, conn_io,
                                        beast::buffers_to_string(buffer.data()));
        try {
          response.upgrade(upgraded);
        } catch (const std::exception&) {
          // The handler owns the protocol now; nothing can be answered in HTTP any more.
        }
        return;
      }
      writeResponse(stream, response, keep_alive, head, ec);
      if (ec || !keep_alive) return;
    }
  }

  // A connection's socket on its own io_context, which only an upgraded connection runs.
  struct Connection {
    asio::io_context io;
    tcp::socket socket{io};
  };

  void runConnection(Connection& connection, uint64_t id) {
    tcp::socket& socket = connection.socket;
    std::string remote;
    beast::error_code ec;
    auto endpoint = socket.remote_endpoint(ec);
    if (!ec) remote = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
    setTimeouts(socket.native_handle(), options.idle_timeout_seconds);
    socket.set_option(tcp::no_delay(true), ec);
    if (ssl) {
      asio::ssl::stream<tcp::socket&> tls(socket, *ssl);
      tls.handshake(asio::ssl::stream_base::server, ec);
      if (!ec) {
        serve(tls, socket, connection.io, remote);
        tls.shutdown(ec);
      }
    } else {
      serve(socket, socket, connection.io, remote);
    }
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
    std::lock_guard lock(mu);
    open_fds.erase(id);
    open_count->fetch_sub(1);
    all_closed.notify_all();
  }

  void acceptLoop() {
    while (!stopping.load()) {
      auto connection = std::make_unique<Connection>();
      tcp::socket& socket = connection->socket;
      beast::error_code ec;
      acceptor.accept(socket, ec);
      if (ec) {
        if (stopping.load()) return;
        continue;  // a failed accept (EMFILE, aborted handshake) must not stop the server
      }
      std::unique_lock lock(mu);
      if (open_fds.size() >= options.max_connections) {
        lock.unlock();
        socket.close(ec);  // over the limit: refuse rather than exhaust threads
        continue;
      }
      uint64_t id = next_id++;
      open_fds.emplace(id, socket.native_handle());
      open_count->fetch_add(1);
      lock.unlock();
      std::thread([this, c = std::move(connection), id]() mutable {
        runConnection(*c, id);
      }).detach();
    }
  }
};

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
  impl_->open_count = &open_connections_;
}

HttpServer::~HttpServer() {
  stop();
}

bool HttpServer::tls() const {
  return impl_->ssl.has_value();
}

void HttpServer::setCertificate(const std::string& cert_pem, const std::string& key_pem) {
  if (!impl_->ssl) throw std::runtime_error("setCertificate: the server has no TLS");
  auto pair = std::make_shared<Impl::CertifiedKey>();
  BIO* certs = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
  while (X509* c = PEM_read_bio_X509(certs, nullptr, nullptr, nullptr))
    pair->chain.push_back(c);
  BIO_free(certs);
  BIO* key = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  pair->key = PEM_read_bio_PrivateKey(key, nullptr, nullptr, nullptr);
  BIO_free(key);
  if (pair->chain.empty()) throw std::runtime_error("setCertificate: no certificate in the PEM");
  if (pair->key == nullptr) throw std::runtime_error("setCertificate: no private key in the PEM");
  if (X509_check_private_key(pair->chain.front(), pair->key) != 1) {
    throw std::runtime_error("setCertificate: the key does not match the certificate");
  }
  std::lock_guard lock(impl_->cert_mu);
  if (!impl_->certified) {
    SSL_CTX_set_cert_cb(
        impl_->ssl->native_handle(),
        [](SSL* ssl, void* arg) -> int {
          auto* impl = static_cast<Impl*>(arg);
          std::shared_ptr<Impl::CertifiedKey> current;
          {
            std::lock_guard cert_lock(impl->cert_mu);
            current = impl->certified;
          }
          if (!current) return 1;
          if (SSL_use_certificate(ssl, current->chain.front()) != 1 ||
              SSL_use_PrivateKey(ssl, current->key) != 1) {
            return 0;
          }
          SSL_clear_chain_certs(ssl);
          for (size_t i = 1; i < current->chain.size(); ++i) {
            if (SSL_add1_chain_cert(ssl, current->chain[i]) != 1) return 0;
          }
          return 1;
        },
        impl_.get());
  }
  impl_->certified = std::move(pair);
}

void HttpServer::start() {
  auto& o = impl_->options;
  beast::error_code ec;
  auto address = asio::ip::make_address(o.bind_address, ec);
  if (ec) throw std::runtime_error("invalid bind address \"" + o.bind_address + "\"");
  if (o.cert_file.empty() != o.key_file.empty()) {
    throw std::runtime_error("TLS needs both a certificate and a key file");
  }
  if (o.cert_file.empty() && !isLoopback(address)) {
    throw std::runtime_error("plain HTTP is served only on loopback addresses, not " +
                             o.bind_address + ": give a certificate and key");
  }
  if (!o.cert_file.empty()) {
    impl_->ssl.emplace(asio::ssl::context::tls_server);
    impl_->ssl->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                            asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                            asio::ssl::context::no_tlsv1_1);
    impl_->ssl->use_certificate_chain_file(o.cert_file, ec);
    if (ec)
      throw std::runtime_error("cannot load certificate " + o.cert_file + ": " + ec.message());
    impl_->ssl->use_private_key_file(o.key_file, asio::ssl::context::pem, ec);
    if (ec) throw std::runtime_error("cannot load key " + o.key_file + ": " + ec.message());
    if (!o.client_ca_file.empty()) {
      // Verify a certificate when one is given, but do not require one (tokens work too).
      impl_->ssl->load_verify_file(o.client_ca_file, ec);
      if (ec) {
        throw std::runtime_error("cannot load client CA " + o.client_ca_file + ": " + ec.message());
      }
      impl_->ssl->set_verify_mode(asio::ssl::verify_peer);
      if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.client_ca_file.c_str())) {
        SSL_CTX_set_client_CA_list(impl_->ssl->native_handle(), names);
      }
    }
  }
  tcp::endpoint endpoint(address, o.port);
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec && o.free_bind) {
    int on = 1;
    if (::setsockopt(acceptor.native_handle(), IPPROTO_IP, IP_FREEBIND, &on, sizeof(on)) != 0)
      ec.assign(errno, boost::system::system_category());
  }
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::runtime_error("cannot listen on " + o.bind_address + ":" + std::to_string(o.port) +
                             ": " + ec.message());
  }
  port_ = acceptor.local_endpoint().port();
  impl_->accept_thread = std::thread([this] { impl_->acceptLoop(); });
}

void HttpServer::stop() {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  beast::error_code ec;
  // Unblock the accept() call; closing the descriptor alone does not wake it on Linux.
  ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);
  if (impl_->accept_thread.joinable()) impl_->accept_thread.join();
  impl_->acceptor.close(ec);
  std::unique_lock lock(impl_->mu);
  for (const auto& [id, fd] : impl_->open_fds)
    ::shutdown(fd, SHUT_RDWR);
  impl_->all_closed.wait(lock, [this] { return impl_->open_fds.empty(); });
}

}  // namespace skiff::apiserver
