#include "dataplane/dpdk/control_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "dataplane/dpdk/control_codec.h"

namespace skiff::dataplane::dpdk {
namespace {

Status sysError(const std::string& what) {
  return Status::failure(what + ": " + std::strerror(errno));
}

void setTimeouts(int fd) {
  timeval tv{};
  tv.tv_sec = 2;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

}  // namespace

ControlServer::~ControlServer() {
  if (unixFd_ >= 0) {
    ::close(unixFd_);
    ::unlink(socketPath_.c_str());
  }
  if (httpFd_ >= 0) ::close(httpFd_);
}

Result<std::unique_ptr<ControlServer>> ControlServer::listen(const std::string& socketPath,
                                                             const std::string& metricsAddress,
                                                             int metricsPort,
                                                             ControlHandlers handlers) {
  std::unique_ptr<ControlServer> s(new ControlServer());
  s->handlers_ = std::move(handlers);
  sockaddr_un addr{};
  if (socketPath.empty() || socketPath.size() >= sizeof(addr.sun_path))
    return Status::failure("control socket path \"" + socketPath + "\": empty or too long");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socketPath.c_str(), socketPath.size());
  s->unixFd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s->unixFd_ < 0) return sysError("control socket");
  // A socket file left by a dead process is replaced; a live server keeps its own.
  struct stat st {};
  if (::lstat(socketPath.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool live = ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
    ::close(probe);
    if (live) return Status::failure("control socket " + socketPath + ": another server is live");
    ::unlink(socketPath.c_str());
  }
  if (::bind(s->unixFd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0)
    return sysError("control socket " + socketPath + ": bind");
  s->socketPath_ = socketPath;
  ::chmod(socketPath.c_str(), 0600);
  if (::listen(s->unixFd_, 16) != 0) return sysError("control socket: listen");

  if (metricsPort >= 0) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(static_cast<uint16_t>(metricsPort));
    if (::inet_pton(AF_INET, metricsAddress.c_str(), &in.sin_addr) != 1)
      return Status::failure("metrics address \"" + metricsAddress + "\": not an IPv4 address");
    s->httpFd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->httpFd_ < 0) return sysError("metrics socket");
    const int one = 1;
    setsockopt(s->httpFd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(s->httpFd_, reinterpret_cast<const sockaddr*>(&in), sizeof(in)) != 0)
      return sysError("metrics " + metricsAddress + ":" + std::to_string(metricsPort) + ": bind");
    if (::listen(s->httpFd_, 16) != 0) return sysError("metrics: listen");
    socklen_t len = sizeof(in);
    ::getsockname(s->httpFd_, reinterpret_cast<sockaddr*>(&in), &len);
    s->metricsPort_ = ntohs(in.sin_port);
  }
  return s;
}

void ControlServer::run(const std::atomic<bool>& stop) {
  while (!stop.load())
    poll(100);
}

void ControlServer::poll(int timeoutMs) {
  pollfd fds[2] = {{unixFd_, POLLIN, 0}, {httpFd_, POLLIN, 0}};
  const nfds_t n = httpFd_ >= 0 ? 2 : 1;
  if (::poll(fds, n, timeoutMs) <= 0) return;
  if (fds[0].revents & POLLIN) {
    const int fd = ::accept4(unixFd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      setTimeouts(fd);
      serveControl(fd);
      ::close(fd);
    }
  }
  if (n == 2 && (fds[1].revents & POLLIN)) {
    const int fd = ::accept4(httpFd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      setTimeouts(fd);
      serveHttp(fd);
      ::close(fd);
    }
  }
}

void ControlServer::serveControl(int fd) {
  // Requests until the client closes (or stalls, or sends garbage).
  for (;;) {
    v1::Request req;
    const Status read = readMessage(fd, req);
    if (!read.ok()) {
      if (read.message().find("closed") == std::string::npos &&
          read.message().find("malformed") != std::string::npos) {
        v1::Response bad;
        bad.set_ok(false);
        bad.set_error(read.message());
        (void)writeMessage(fd, bad);
      }
      return;
    }
    const v1::Response resp = handlers_.request(req);
    if (!writeMessage(fd, resp).ok()) return;
  }
}

void ControlServer::serveHttp(int fd) {
  std::string req;
  char buf[2048];
  while (req.find("\r\n\r\n") == std::string::npos && req.size() < 16384) {
    const ssize_t r = ::recv(fd, buf, sizeof(buf), 0);
    if (r <= 0) return;
    req.append(buf, static_cast<size_t>(r));
  }
  std::string status = "200 OK", type = "text/plain; version=0.0.4; charset=utf-8", body;
  if (req.rfind("GET /metrics ", 0) == 0 || req.rfind("GET /metrics?", 0) == 0) {
    body = handlers_.metrics();
  } else if (req.rfind("GET ", 0) == 0) {
    status = "404 Not Found";
    type = "text/plain";
    body = "only /metrics is served here\n";
  } else {
    status = "405 Method Not Allowed";
    type = "text/plain";
    body = "GET only\n";
  }
  const std::string resp = "HTTP/1.1 " + status + "\r\nContent-Type: " + type +
                           "\r\nContent-Length: " + std::to_string(body.size()) +
                           "\r\nConnection: close\r\n\r\n" + body;
  size_t off = 0;
  while (off < resp.size()) {
    const ssize_t w = ::send(fd, resp.data() + off, resp.size() - off, MSG_NOSIGNAL);
    if (w <= 0) return;
    off += static_cast<size_t>(w);
  }
}

}  // namespace skiff::dataplane::dpdk
