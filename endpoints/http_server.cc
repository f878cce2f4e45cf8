#include "endpoints/http_server.h"

#include <boost/asio.hpp>

#include <charconv>
#include <future>
#include <map>
#include <mutex>
#include <thread>

namespace skiff::endpoints {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

constexpr size_t kMaxRequestHeader = 8192;
constexpr auto kClientTimeout = std::chrono::seconds(5);

std::string_view reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

std::string render(const HttpReply& reply, bool head) {
  std::string out = "HTTP/1.1 " + std::to_string(reply.status) + " " +
                    std::string(reason(reply.status)) + "\r\nContent-Type: " + reply.contentType +
                    "\r\nContent-Length: " + std::to_string(reply.body.size()) +
                    "\r\nConnection: close\r\n";
  for (const auto& [name, value] : reply.headers)
    out += name + ": " + value + "\r\n";
  out += "\r\n";
  if (!head) out += reply.body;
  return out;
}

HttpReply plain(int status, std::string body) {
  HttpReply r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

// One connection: read the request head, answer, close.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<const HttpRoute> route)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), route_(std::move(route)) {}

  void start() {
    timer_.expires_after(kClientTimeout);
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) {
        boost::system::error_code ignored;
        self->socket_.close(ignored);
      }
    });
    asio::async_read_until(socket_, asio::dynamic_buffer(request_, kMaxRequestHeader), "\r\n\r\n",
                           [self = shared_from_this()](const boost::system::error_code& ec,
                                                       size_t) { self->onRead(ec); });
  }

 private:
  void onRead(const boost::system::error_code& ec) {
    HttpReply reply;
    bool head = false;
    if (ec == asio::error::not_found) {
      reply = plain(431, "request header larger than 8 KiB\n");
    } else if (ec) {
      return;  // closed or timed out
    } else {
      const size_t lineEnd = request_.find("\r\n");
      const std::string_view line = std::string_view(request_).substr(0, lineEnd);
      const size_t sp1 = line.find(' ');
      const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
      if (sp2 == std::string_view::npos) {
        reply = plain(400, "malformed request line\n");
      } else {
        const std::string_view method = line.substr(0, sp1);
        std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
        target = target.substr(0, target.find('?'));
        head = method == "HEAD";
        if (method != "GET" && !head) {
          reply = plain(405, "GET or HEAD only\n");
          reply.headers.emplace_back("Allow", "GET, HEAD");
        } else {
          reply = (*route_)(method, target);
        }
      }
    }
    response_ = render(reply, head);
    asio::async_write(socket_, asio::buffer(response_),
                      [self = shared_from_this()](const boost::system::error_code&, size_t) {
                        boost::system::error_code ignored;
                        self->socket_.shutdown(tcp::socket::shutdown_both, ignored);
                        self->socket_.close(ignored);
                        self->timer_.cancel();
                      });
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  std::shared_ptr<const HttpRoute> route_;
  std::string request_;
  std::string response_;
};

}  // namespace

dataplane::Result<std::pair<std::string, uint16_t>> parseHostPort(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return dataplane::Status::failure("address \"" + std::string(text) + "\": " + std::string(why) +
                                      " (want HOST:PORT, e.g. 127.0.0.1:10249)");
  };
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return bad("no port");
  std::string_view host = text.substr(0, colon);
  const std::string_view portText = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return bad("an IPv6 address goes in brackets");
  }
  if (host.empty()) return bad("no host");
  unsigned port = 0;
  auto [end, ec] = std::from_chars(portText.data(), portText.data() + portText.size(), port);
  if (portText.empty() || ec != std::errc() || end != portText.data() + portText.size() ||
      port > 65535) {
    return bad("port \"" + std::string(portText) + "\" is not a number from 0 to 65535");
  }
  boost::system::error_code parseError;
  asio::ip::make_address(std::string(host), parseError);
  if (parseError) return bad("\"" + std::string(host) + "\" is not an IP address");
  return std::pair<std::string, uint16_t>(std::string(host), static_cast<uint16_t>(port));
}

struct HttpListeners::Impl {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread;
  mutable std::mutex mutex;
  bool stopped = false;
  // Touched on the io thread only (except size(), under `mutex`).
  std::map<std::string, std::shared_ptr<tcp::acceptor>> acceptors;

  void accept(const std::shared_ptr<tcp::acceptor>& acceptor,
              const std::shared_ptr<const HttpRoute>& route) {
    acceptor->async_accept(
        [this, acceptor, route](const boost::system::error_code& ec, tcp::socket socket) {
          if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
          if (!ec) std::make_shared<Session>(std::move(socket), route)->start();
          accept(acceptor, route);
        });
  }

  // Runs `fn` on the io thread and waits for it.
  void onIoThread(std::function<void()> fn) {
    std::promise<void> done;
    auto finished = done.get_future();
    asio::post(io, [&] {
      fn();
      done.set_value();
    });
    finished.wait();
  }
};

HttpListeners::HttpListeners() : impl_(std::make_shared<Impl>()) {
  impl_->thread = std::thread([impl = impl_.get()] { impl->io.run(); });
}

HttpListeners::~HttpListeners() {
  stop();
}

dataplane::Result<uint16_t> HttpListeners::listen(const std::string& name,
                                                  const std::string& address, uint16_t port,
                                                  HttpRoute route) {
  const std::string where =
      (address.find(':') != std::string::npos ? "[" + address + "]" : address) + ":" +
      std::to_string(port);
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(address, ec);
  if (ec) return dataplane::Status::failure(where + ": \"" + address + "\" is not an IP address");
  close(name);
  std::lock_guard lock(impl_->mutex);
  if (impl_->stopped) return dataplane::Status::failure(where + ": the server is stopped");
  auto acceptor = std::make_shared<tcp::acceptor>(impl_->io);
  const tcp::endpoint endpoint(ip, port);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return dataplane::Status::failure(where + ": " + ec.message());
  const uint16_t bound = acceptor->local_endpoint(ec).port();
  auto shared = std::make_shared<const HttpRoute>(std::move(route));
  asio::post(impl_->io, [impl = impl_.get(), name, acceptor, shared] {
    impl->acceptors[name] = acceptor;
    impl->accept(acceptor, shared);
  });
  return bound;
}

void HttpListeners::close(const std::string& name) {
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->stopped) return;
  }
  impl_->onIoThread([impl = impl_.get(), &name] {
    auto it = impl->acceptors.find(name);
    if (it == impl->acceptors.end()) return;
    boost::system::error_code ignored;
    it->second->close(ignored);
    impl->acceptors.erase(it);
  });
}

size_t HttpListeners::size() const {
  size_t n = 0;
  // The map is the io thread's; ask it.
  auto* impl = impl_.get();
  {
    std::lock_guard lock(impl->mutex);
    if (impl->stopped) return 0;
  }
  impl->onIoThread([impl, &n] { n = impl->acceptors.size(); });
  return n;
}

void HttpListeners::stop() {
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->stopped) return;
    impl_->stopped = true;
  }
  impl_->work.reset();
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->acceptors.clear();
}

}  // namespace skiff::endpoints
