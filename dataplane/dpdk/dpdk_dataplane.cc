#include "dataplane/dpdk/dpdk_dataplane.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "dataplane/dpdk/control_codec.h"

namespace skiff::dataplane::dpdk {

DpdkDataplane::DpdkDataplane(std::string socketPath) : socketPath_(std::move(socketPath)) {}

DpdkDataplane::~DpdkDataplane() {
  if (fd_ >= 0) ::close(fd_);
}

Result<v1::Response> DpdkDataplane::call(const v1::Request& req) const {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (fd_ < 0) {
      sockaddr_un addr{};
      if (socketPath_.size() >= sizeof(addr.sun_path))
        return Status::failure("control socket path too long: " + socketPath_);
      addr.sun_family = AF_UNIX;
      std::memcpy(addr.sun_path, socketPath_.c_str(), socketPath_.size());
      fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd_ < 0) return Status::failure(std::string("socket: ") + std::strerror(errno));
      if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
        const std::string why = std::strerror(errno);
        ::close(fd_);
        fd_ = -1;
        return Status::failure("cannot reach skiff dataplane at " + socketPath_ + ": " + why);
      }
      timeval tv{};
      tv.tv_sec = 30;
      setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    v1::Response resp;
    Status s = writeMessage(fd_, req);
    if (s.ok()) s = readMessage(fd_, resp);
    if (s.ok()) return resp;
    ::close(fd_);
    fd_ = -1;
    // A connection the server closed (it restarted): one more try on a new one.
    if (attempt == 1)
      return Status::failure("skiff dataplane at " + socketPath_ + ": " + s.message());
  }
  return Status::failure("unreachable");
}

Status DpdkDataplane::apply(const ServiceDelta& delta) {
  if (Status s = validate(delta); !s.ok()) return s;
  v1::Request req;
  toProto(delta, *req.mutable_apply());
  auto resp = call(req);
  if (!resp.ok()) return resp.status();
  if (!resp->ok()) return Status::failure(resp->error());
  return {};
}

Result<v1::Stats> DpdkDataplane::fullStats() const {
  v1::Request req;
  req.mutable_stats();
  auto resp = call(req);
  if (!resp.ok()) return resp.status();
  if (!resp->ok()) return Status::failure(resp->error());
  return resp->stats();
}

Result<DataplaneStats> DpdkDataplane::stats() const {
  auto s = fullStats();
  if (!s.ok()) return s.status();
  return fromProto(*s);
}

}  // namespace skiff::dataplane::dpdk
