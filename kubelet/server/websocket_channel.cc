#include "kubelet/server/websocket_channel.h"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>

#include "control/api/base64.h"
#include "control/api/json.h"

namespace skiff::kubelet::ws {
namespace {

constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr size_t kMaxControlPayload = 125;

bool isControl(Opcode opcode) {
  return (static_cast<uint8_t>(opcode) & 0x8) != 0;
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
    s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

std::string encodeFrame(Opcode opcode, std::string_view payload, bool mask) {
  std::string out;
  out.reserve(payload.size() + 14);
  out.push_back(static_cast<char>(0x80 | static_cast<uint8_t>(opcode)));  // FIN
  const uint8_t mask_bit = mask ? 0x80 : 0;
  const uint64_t n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<char>(mask_bit | n));
  } else if (n <= 0xFFFF) {
    out.push_back(static_cast<char>(mask_bit | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xFF));
  } else {
    out.push_back(static_cast<char>(mask_bit | 127));
    for (int shift = 56; shift >= 0; shift -= 8)
      out.push_back(static_cast<char>((n >> shift) & 0xFF));
  }
  if (!mask) {
    out.append(payload);
    return out;
  }
  unsigned char key[4];
  if (RAND_bytes(key, sizeof key) != 1) throw ProtocolError("no random bytes for a frame mask");
  out.append(reinterpret_cast<const char*>(key), sizeof key);
  const size_t start = out.size();
  out.append(payload);
  for (size_t i = 0; i < payload.size(); ++i)
    out[start + i] = static_cast<char>(static_cast<unsigned char>(out[start + i]) ^ key[i % 4]);
  return out;
}

FrameDecoder::FrameDecoder(bool expect_masked, size_t max_message_bytes)
    : expect_masked_(expect_masked), max_message_bytes_(max_message_bytes) {}

void FrameDecoder::feed(std::string_view bytes) {
  if (offset_ > 0 && offset_ >= buffer_.size() / 2) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  buffer_.append(bytes);
}

std::optional<Message> FrameDecoder::next() {
  while (true) {
    const auto* p = reinterpret_cast<const unsigned char*>(buffer_.data()) + offset_;
    const size_t avail = buffer_.size() - offset_;
    if (avail < 2) return std::nullopt;
    const bool fin = (p[0] & 0x80) != 0;
    if ((p[0] & 0x70) != 0)
      throw ProtocolError("websocket frame with reserved bits set (no extension was negotiated)");
    const auto opcode = static_cast<Opcode>(p[0] & 0x0F);
    const uint8_t op = p[0] & 0x0F;
    if (op != 0 && op != 1 && op != 2 && op != 8 && op != 9 && op != 10)
      throw ProtocolError("websocket frame with unknown opcode " + std::to_string(op));
    const bool masked = (p[1] & 0x80) != 0;
    if (masked != expect_masked_)
      throw ProtocolError(expect_masked_ ? "unmasked websocket frame from a client"
                                         : "masked websocket frame from a server");
    uint64_t length = p[1] & 0x7F;
    size_t header = 2;
    if (length == 126) {
      if (avail < 4) return std::nullopt;
      length = (uint64_t{p[2]} << 8) | p[3];
      header = 4;
    } else if (length == 127) {
      if (avail < 10) return std::nullopt;
      length = 0;
      for (int i = 0; i < 8; ++i)
        length = (length << 8) | p[2 + i];
      header = 10;
      if (length >> 63) throw ProtocolError("websocket frame length with the top bit set");
    }
    if (isControl(opcode) && (length > kMaxControlPayload || !fin))
      throw ProtocolError("websocket control frame fragmented or over 125 bytes");
    if (length > max_message_bytes_ ||
        (!isControl(opcode) && fragments_.size() + length > max_message_bytes_))
      throw ProtocolError("websocket message over " + std::to_string(max_message_bytes_) +
                          " bytes");
    const size_t key_at = header;
    if (masked) header += 4;
    if (avail < header + length) return std::nullopt;
    std::string payload(reinterpret_cast<const char*>(p + header), static_cast<size_t>(length));
    if (masked) {
      for (size_t i = 0; i < payload.size(); ++i)
        payload[i] = static_cast<char>(static_cast<unsigned char>(payload[i]) ^ p[key_at + i % 4]);
    }
    offset_ += header + static_cast<size_t>(length);

    if (isControl(opcode)) return Message{opcode, std::move(payload)};
    if (opcode == Opcode::kContinuation) {
      if (!fragmented_) throw ProtocolError("websocket continuation frame without a message");
      fragments_ += payload;
      if (!fin) continue;
      Message m{*fragmented_, std::move(fragments_)};
      fragments_.clear();
      fragmented_.reset();
      return m;
    }
    if (fragmented_) throw ProtocolError("websocket data frame inside a fragmented message");
    if (fin) return Message{opcode, std::move(payload)};
    fragmented_ = opcode;
    fragments_ = std::move(payload);
  }
}

std::string acceptKey(std::string_view client_key) {
  const std::string input = trim(client_key) + std::string(kGuid);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  return api::base64Encode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

std::string chooseProtocol(std::string_view offered) {
  bool v4 = false;
  while (!offered.empty()) {
    const size_t comma = offered.find(',');
    const std::string name = trim(offered.substr(0, comma));
    if (name == kProtocolV5) return std::string(kProtocolV5);
    if (name == kProtocolV4) v4 = true;
    if (comma == std::string_view::npos) break;
    offered.remove_prefix(comma + 1);
  }
  return v4 ? std::string(kProtocolV4) : "";
}

std::string exitStatus(int exit_code, std::string_view command) {
  if (exit_code == 0) return R"({"metadata":{},"status":"Success"})";
  const std::string code = std::to_string(exit_code);
  std::string message = "command terminated with non-zero exit code: error executing command [";
  message += command;
  message += "], exit code " + code;
  std::string out = R"({"metadata":{},"status":"Failure","message":)";
  api::appendJsonString(out, message);
  out += R"(,"reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":")" +
         code + R"("}]}})";
  return out;
}

std::string failureStatus(std::string_view message) {
  std::string out = R"({"metadata":{},"status":"Failure","message":)";
  api::appendJsonString(out, message);
  out += R"(,"reason":"InternalError","code":500})";
  return out;
}

std::optional<int> statusExitCode(std::string_view status_json, std::string& message) {
  api::Value doc;
  try {
    doc = api::parseJson(status_json, {.source = "exec status"});
  } catch (const std::exception& e) {
    throw ProtocolError(std::string("exec status is not JSON: ") + e.what());
  }
  const api::Value* status = doc.isObject() ? doc.find("status") : nullptr;
  if (!status || !status->isString())
    throw ProtocolError("exec status without a status field: " + std::string(status_json));
  if (status->text() == "Success") return 0;
  const api::Value* text = doc.find("message");
  message = text && text->isString() ? text->text() : "exec failed";
  const api::Value* reason = doc.find("reason");
  const api::Value* details = doc.find("details");
  const api::Value* causes = details && details->isObject() ? details->find("causes") : nullptr;
  if (reason && reason->isString() && reason->text() == "NonZeroExitCode" && causes &&
      causes->isArray()) {
    for (const auto& cause : causes->items()) {
      const api::Value* r = cause.isObject() ? cause.find("reason") : nullptr;
      const api::Value* m = cause.isObject() ? cause.find("message") : nullptr;
      if (!r || !m || !r->isString() || r->text() != "ExitCode" || !m->isString()) continue;
      try {
        size_t used = 0;
        const int code = std::stoi(m->text(), &used);
        if (used == m->text().size()) return code;
      } catch (const std::exception&) {
      }
    }
  }
  return std::nullopt;
}

ChannelConnection::ChannelConnection(apiserver::ByteStream& stream, bool client)
    : stream_(stream), client_(client), decoder_(/*expect_masked=*/!client) {}

bool ChannelConnection::sendFrame(Opcode opcode, std::string_view payload) {
  const std::string frame = encodeFrame(opcode, payload, client_);
  std::lock_guard lock(write_mu_);
  if (close_sent_) return false;
  if (opcode == Opcode::kClose) close_sent_ = true;
  return stream_.write(frame);
}

bool ChannelConnection::send(uint8_t channel, std::string_view data) {
  std::string payload;
  payload.reserve(data.size() + 1);
  payload.push_back(static_cast<char>(channel));
  payload.append(data);
  return sendFrame(Opcode::kBinary, payload);
}

std::optional<std::pair<uint8_t, std::string>> ChannelConnection::receive() {
  char buf[32 * 1024];
  while (true) {
    while (std::optional<Message> m = decoder_.next()) {
      switch (m->opcode) {
        case Opcode::kPing:
          sendFrame(Opcode::kPong, m->payload);
          break;
        case Opcode::kPong:
          break;
        case Opcode::kClose:
          close(1000);
          return std::nullopt;
        default:
          if (m->payload.empty()) break;  // no channel byte: nothing to deliver
          return std::make_pair(static_cast<uint8_t>(m->payload[0]), m->payload.substr(1));
      }
    }
    const size_t n = stream_.read(buf, sizeof buf);
    if (n == 0) return std::nullopt;
    decoder_.feed(std::string_view(buf, n));
  }
}

void ChannelConnection::close(uint16_t code) {
  std::string payload;
  payload.push_back(static_cast<char>(code >> 8));
  payload.push_back(static_cast<char>(code & 0xFF));
  sendFrame(Opcode::kClose, payload);
}

}  // namespace skiff::kubelet::ws
