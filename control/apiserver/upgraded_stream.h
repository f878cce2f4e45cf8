#pragma once

// Before Asio, whose awaitable.hpp uses std::exchange without including it.
#include <utility>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <cstring>
#include <future>
#include <string>
#include <string_view>
#include <thread>

// A connection taken over after `101 Switching Protocols` (exec's WebSocket streams): raw bytes
// both ways, full duplex. The HTTP server hands one to an upgrade handler (HttpResponse::upgrade),
// the apiserver's exec proxy holds one to the kubelet, and `skiff exec` one to the apiserver.

namespace skiff::apiserver {

class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // Blocks until some bytes arrive; 0 at the end of the stream, on an error or after close().
  // One reader at a time.
  virtual size_t read(char* data, size_t size) = 0;
  // Blocks until all of `data` is sent; false once the connection is broken or closed. One writer
  // at a time, which may run while a read() is blocked on another thread.
  virtual bool write(std::string_view data) = 0;
  // Shuts the connection down both ways: a blocked read() or write() returns. Idempotent.
  virtual void close() = 0;
};

// A ByteStream on an Asio stream (a TCP socket or a TLS stream over one). TLS streams allow no
// concurrent synchronous reads and writes, so both are asynchronous operations on `io`, which a
// thread of this object runs (nothing else may run `io` meanwhile); read() and write() wait for
// them. `pending` holds bytes already read past the HTTP head, returned first.
template <typename AsyncStream>
class AsioByteStream final : public ByteStream {
 public:
  AsioByteStream(AsyncStream& stream, boost::asio::ip::tcp::socket& socket,
                 boost::asio::io_context& io, std::string pending = {})
      : stream_(stream),
        socket_(socket),
        io_(io),
        work_(boost::asio::make_work_guard(io)),
        pending_(std::move(pending)) {
    io_.restart();
    thread_ = std::thread([this] { io_.run(); });
  }
  // No read() or write() may still be running.
  ~AsioByteStream() override {
    close();
    work_.reset();
    thread_.join();
  }
  AsioByteStream(const AsioByteStream&) = delete;
  AsioByteStream& operator=(const AsioByteStream&) = delete;

  size_t read(char* data, size_t size) override {
    if (size == 0) return 0;
    if (!pending_.empty()) {
      const size_t n = std::min(size, pending_.size());
      std::memcpy(data, pending_.data(), n);
      pending_.erase(0, n);
      return n;
    }
    if (closed_.load()) return 0;
    std::promise<size_t> done;
    auto result = done.get_future();
    boost::asio::post(io_, [&] {
      stream_.async_read_some(boost::asio::buffer(data, size),
                              [&](const boost::system::error_code&, size_t n) {
                                done.set_value(n);  // 0 with an error (or the end)
                              });
    });
    return result.get();
  }

  bool write(std::string_view data) override {
    if (closed_.load()) return false;
    if (data.empty()) return true;
    std::promise<bool> done;
    auto result = done.get_future();
    boost::asio::post(io_, [&] {
      boost::asio::async_write(
          stream_, boost::asio::buffer(data.data(), data.size()),
          [&](const boost::system::error_code& ec, size_t) { done.set_value(!ec); });
    });
    return result.get();
  }

  void close() override {
    if (closed_.exchange(true)) return;
    std::promise<void> done;
    auto result = done.get_future();
    // Shut down, not closed: the owner closes the descriptor (the HTTP server keeps its number to
    // shut every connection down on stop).
    boost::asio::post(io_, [&] {
      boost::system::error_code ec;
      socket_.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
      socket_.cancel(ec);
      done.set_value();
    });
    result.wait();
  }

 private:
  AsyncStream& stream_;
  boost::asio::ip::tcp::socket& socket_;
  boost::asio::io_context& io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::string pending_;
  std::atomic<bool> closed_{false};
  std::thread thread_;
};

}  // namespace skiff::apiserver
