#include "control/cli/bench_watch_fanout.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <thread>

namespace skiff::cli {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

namespace {

struct ServerAddress {
  std::string host;
  std::string port;
};

ServerAddress parseServer(const std::string& server) {
  constexpr std::string_view kScheme = "https://";
  if (server.rfind(kScheme, 0) != 0)
    throw std::runtime_error("watch fan-out: server " + server + " is not an https:// URL");
  std::string rest = server.substr(kScheme.size());
  if (auto slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
  ServerAddress out;
  if (!rest.empty() && rest.front() == '[') {  // [v6]:port
    auto close = rest.find(']');
    if (close == std::string::npos) throw std::runtime_error("watch fan-out: bad server " + server);
    out.host = rest.substr(1, close - 1);
    out.port = close + 2 <= rest.size() ? rest.substr(close + 2) : "443";
  } else if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    out.host = rest.substr(0, colon);
    out.port = rest.substr(colon + 1);
  } else {
    out.host = rest;
    out.port = "443";
  }
  return out;
}

bool startsWithNoCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
  return true;
}

}  // namespace

struct FanoutWatchers::Impl {
  // One watch: its connection and the decoder of its chunked stream of JSON lines.
  struct Watch {
    Watch(asio::io_context& io, ssl::context& tls) : stream(io, tls) {}
    int id = 0;
    ssl::stream<tcp::socket> stream;
    std::array<char, 16 * 1024> buffer{};  // one TLS record at most
    enum class State { kHead, kSize, kData, kDataEnd } state = State::kHead;
    std::string pending;  // received and not yet decoded
    size_t chunk_left = 0;
    std::string line;  // the event line being assembled across chunks and reads
    std::vector<Clock::time_point> seen;
  };

  FanoutWatchers& owner;
  client::ClientConfig config;
  ServerAddress address;
  std::string request;
  std::string name_key;  // "name":"<prefix>
  size_t objects = 0;
  asio::io_context io;
  ssl::context tls{ssl::context::tls_client};
  std::vector<std::unique_ptr<Watch>> watches;
  std::vector<std::thread> threads;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;

  std::mutex mu;
  std::condition_variable cv;
  int started = 0;
  std::string failure;  // the first watch that failed

  Impl(FanoutWatchers& o, const client::ClientConfig& c, const std::string& path)
      : owner(o), config(c), address(parseServer(c.server)) {
    tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                    ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    if (config.insecure_skip_tls_verify) {
      tls.set_verify_mode(ssl::verify_none);
    } else {
      tls.set_verify_mode(ssl::verify_peer);
      if (config.ca_pem.empty()) {
        tls.set_default_verify_paths();
      } else {
        tls.add_certificate_authority(asio::buffer(config.ca_pem));
      }
    }
    if (!config.client_cert_pem.empty()) {
      tls.use_certificate_chain(asio::buffer(config.client_cert_pem));
      tls.use_private_key(asio::buffer(config.client_key_pem), ssl::context::pem);
    }
    request = "GET " + path + " HTTP/1.1\r\nHost: " + address.host + ":" + address.port +
              "\r\nAccept: application/json\r\nUser-Agent: skiff-bench-fanout\r\n";
    if (!config.token.empty()) request += "Authorization: Bearer " + config.token + "\r\n";
    request += "\r\n";
  }

  void fail(Watch& w, const std::string& why) {
    std::lock_guard lock(mu);
    if (failure.empty()) failure = "watcher " + std::to_string(w.id) + ": " + why;
    cv.notify_all();
  }

  void open(Watch& w, const tcp::resolver::results_type& endpoints) {
    const std::string& sni = config.tls_server_name.empty() ? address.host : config.tls_server_name;
    // SNI only for names (RFC 6066 has no addresses); the verification checks the address too.
    boost::system::error_code parse_ec;
    asio::ip::make_address(sni, parse_ec);
    if (parse_ec) {
      SSL_ctrl(w.stream.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(sni.c_str()));
    }
    if (!config.insecure_skip_tls_verify)
      w.stream.set_verify_callback(ssl::host_name_verification(sni));
    asio::async_connect(
        w.stream.lowest_layer(), endpoints,
        [this, &w](const boost::system::error_code& ec, const tcp::endpoint&) {
          if (ec) return fail(w, "connect: " + ec.message());
          w.stream.lowest_layer().set_option(tcp::no_delay(true));
          w.stream.async_handshake(
              ssl::stream_base::client, [this, &w](const boost::system::error_code& handshake_ec) {
                if (handshake_ec) return fail(w, "TLS handshake: " + handshake_ec.message());
                asio::async_write(w.stream, asio::buffer(request),
                                  [this, &w](const boost::system::error_code& send_ec, size_t) {
                                    if (send_ec) return fail(w, "send: " + send_ec.message());
                                    read(w);
                                  });
              });
        });
  }

  void read(Watch& w) {
    w.stream.async_read_some(asio::buffer(w.buffer),
                             [this, &w](const boost::system::error_code& ec, size_t n) {
                               if (ec) {
                                 if (ec != asio::error::operation_aborted)
                                   fail(w, "read: " + ec.message());
                                 return;
                               }
                               w.pending.append(w.buffer.data(), n);
                               if (decode(w, Clock::now())) read(w);
                             });
  }

  // Decodes what `w` has received; false once the watch is over (failure set).
  bool decode(Watch& w, Clock::time_point now) {
    size_t at = 0;
    std::string_view data = w.pending;
    bool going = true;
    while (going && at < data.size()) {
      switch (w.state) {
        case Watch::State::kHead: {
          const size_t end = data.find("\r\n\r\n");
          if (end == std::string_view::npos) {
            going = false;
            break;
          }
          std::string_view head = data.substr(0, end);
          if (head.rfind("HTTP/1.1 200", 0) != 0) {
            fail(w, "answered " + std::string(head.substr(0, head.find("\r\n"))));
            return false;
          }
          bool chunked = false;
          for (size_t pos = head.find("\r\n"); pos != std::string_view::npos;) {
            const size_t next = head.find("\r\n", pos + 2);
            std::string_view header = head.substr(
                pos + 2, next == std::string_view::npos ? std::string_view::npos : next - pos - 2);
            if (startsWithNoCase(header, "transfer-encoding:") &&
                header.find("chunked") != std::string_view::npos)
              chunked = true;
            pos = next;
          }
          if (!chunked) {
            fail(w, "the watch answer is not chunked");
            return false;
          }
          at = end + 4;
          w.state = Watch::State::kSize;
          std::lock_guard lock(mu);
          ++started;
          cv.notify_all();
          break;
        }
        case Watch::State::kSize: {
          const size_t end = data.find("\r\n", at);
          if (end == std::string_view::npos) {
            going = false;
            break;
          }
          size_t size = 0;
          auto [ptr, ec] = std::from_chars(data.data() + at, data.data() + end, size, 16);
          if (ec != std::errc() || ptr == data.data() + at) {
            fail(w, "bad chunk size line");
            return false;
          }
          if (size == 0) {
            fail(w, "the server ended the watch");
            return false;
          }
          w.chunk_left = size;
          at = end + 2;
          w.state = Watch::State::kData;
          break;
        }
        case Watch::State::kData: {
          const size_t take = std::min(w.chunk_left, data.size() - at);
          lines(w, data.substr(at, take), now);
          at += take;
          w.chunk_left -= take;
          if (w.chunk_left == 0) w.state = Watch::State::kDataEnd;
          break;
        }
        case Watch::State::kDataEnd:
          if (data.size() - at < 2) {
            going = false;
            break;
          }
          at += 2;
          w.state = Watch::State::kSize;
          break;
      }
    }
    w.pending.erase(0, at);
    return true;
  }

  // Splits chunk payload into event lines.
  void lines(Watch& w, std::string_view data, Clock::time_point now) {
    while (!data.empty()) {
      const size_t newline = data.find('\n');
      if (newline == std::string_view::npos) {
        w.line.append(data);
        return;
      }
      if (w.line.empty()) {
        event(w, data.substr(0, newline), now);
      } else {
        w.line.append(data.substr(0, newline));
        event(w, w.line, now);
        w.line.clear();
      }
      data.remove_prefix(newline + 1);
    }
  }

  void event(Watch& w, std::string_view line, Clock::time_point now) {
    if (line.rfind(R"({"type":"ADDED")", 0) != 0) return;
    const size_t meta = line.find(R"("metadata":{)");
    if (meta == std::string_view::npos) return;
    const size_t name = line.find(name_key, meta);
    if (name == std::string_view::npos) return;
    const char* digits = line.data() + name + name_key.size();
    size_t index = 0;
    auto [ptr, ec] = std::from_chars(digits, line.data() + line.size(), index);
    if (ec != std::errc() || ptr == digits || *ptr != '"' || index >= objects) return;
    if (w.seen[index] != Clock::time_point{}) return;
    w.seen[index] = now;
    owner.arrivals_.fetch_add(1, std::memory_order_relaxed);
  }
};

FanoutWatchers::FanoutWatchers(const client::ClientConfig& config, std::string path, int watchers,
                               std::string name_prefix, size_t objects)
    : impl_(std::make_unique<Impl>(*this, config, path)), watchers_(watchers) {
  impl_->name_key = R"("name":")" + name_prefix;
  impl_->objects = objects;
}

FanoutWatchers::~FanoutWatchers() {
  stop();
}

void FanoutWatchers::start(std::chrono::seconds timeout) {
  Impl& impl = *impl_;
  tcp::resolver resolver(impl.io);
  const auto endpoints = resolver.resolve(impl.address.host, impl.address.port);
  impl.work.emplace(impl.io.get_executor());
  for (int i = 0; i < watchers_; ++i) {
    auto w = std::make_unique<Impl::Watch>(impl.io, impl.tls);
    w->id = i;
    w->seen.assign(impl.objects, Clock::time_point{});
    impl.watches.push_back(std::move(w));
  }
  for (auto& w : impl.watches)
    impl.open(*w, endpoints);
  // Two readers: decryption is most of the client's work, and a connection never has two
  // operations outstanding, so no watch is touched by both at once.
  for (int t = 0; t < 2; ++t)
    impl.threads.emplace_back([&impl] { impl.io.run(); });
  std::unique_lock lock(impl.mu);
  const bool ready = impl.cv.wait_for(
      lock, timeout, [&] { return impl.started == watchers_ || !impl.failure.empty(); });
  if (!impl.failure.empty()) throw std::runtime_error("watch fan-out: " + impl.failure);
  if (!ready) {
    throw std::runtime_error("watch fan-out: only " + std::to_string(impl.started) + " of " +
                             std::to_string(watchers_) + " watches were open after " +
                             std::to_string(timeout.count()) + " s");
  }
}

std::string FanoutWatchers::failure() const {
  std::lock_guard lock(impl_->mu);
  return impl_->failure;
}

void FanoutWatchers::stop() {
  Impl& impl = *impl_;
  impl.work.reset();
  impl.io.stop();
  for (auto& t : impl.threads)
    t.join();
  impl.threads.clear();
  for (auto& w : impl.watches) {
    boost::system::error_code ec;
    w->stream.lowest_layer().close(ec);
  }
}

FanoutWatchers::Clock::time_point FanoutWatchers::arrival(int watcher, size_t index) const {
  return impl_->watches.at(static_cast<size_t>(watcher))->seen.at(index);
}

}  // namespace skiff::cli
