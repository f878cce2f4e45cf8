#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "control/apiserver/upgraded_stream.h"

// Kubernetes' channel protocol for exec (v4.channel.k8s.io, v5.channel.k8s.io) on WebSocket
// (RFC 6455): every binary message starts with one byte naming its stream. Used by the kubelet
// (server side) and by `skiff exec` (client side); the apiserver only copies bytes.

namespace skiff::kubelet::ws {

inline constexpr std::string_view kProtocolV5 = "v5.channel.k8s.io";
inline constexpr std::string_view kProtocolV4 = "v4.channel.k8s.io";

// The streams: 0-2 stdio, 3 the final metav1.Status (JSON), 4 terminal resizes
// ({"Width":80,"Height":24}), 255 (v5 only) "close stream N" ([255, N]).
enum Channel : uint8_t {
  kStdin = 0,
  kStdout = 1,
  kStderr = 2,
  kError = 3,
  kResize = 4,
  kClose = 255,
};

enum class Opcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

class ProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One unfragmented frame. Clients mask their frames (RFC 6455 5.3), servers never do.
std::string encodeFrame(Opcode opcode, std::string_view payload, bool mask);

struct Message {
  Opcode opcode = Opcode::kBinary;  // kText, kBinary, kClose, kPing or kPong
  std::string payload;
};

// Parses frames from bytes as they arrive: data messages are joined from their fragments, control
// frames (which may come between fragments) are returned on their own.
class FrameDecoder {
 public:
  // A server expects masked frames (from clients), a client unmasked ones.
  explicit FrameDecoder(bool expect_masked, size_t max_message_bytes = 16 << 20);
  void feed(std::string_view bytes);
  // The next whole message, or nullopt until more bytes are fed. Throws ProtocolError (what and
  // where) on a frame RFC 6455 forbids or a message over the limit.
  std::optional<Message> next();

 private:
  bool expect_masked_;
  size_t max_message_bytes_;
  std::string buffer_;
  size_t offset_ = 0;
  std::optional<Opcode> fragmented_;  // the opcode of a data message still in fragments
  std::string fragments_;
};

// Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + RFC 6455's GUID)).
std::string acceptKey(std::string_view client_key);

// The subprotocol the kubelet speaks from a Sec-WebSocket-Protocol list ("a, b"): v5 before v4;
// "" when neither is offered.
std::string chooseProtocol(std::string_view offered);

// The channel-3 Status, as the kubelet writes it: Success for 0, else Failure with reason
// NonZeroExitCode and the code in details.causes[{reason: ExitCode, message: "N"}].
std::string exitStatus(int exit_code, std::string_view command);
// A Failure Status without an exit code (the command could not be run at all).
std::string failureStatus(std::string_view message);

// What a Status on channel 3 says: the exit code (0 for Success), or nullopt with `message` set
// when it is a failure without one. Throws ProtocolError when it is not a Status.
std::optional<int> statusExitCode(std::string_view status_json, std::string& message);

// Channel messages on a ByteStream. send() may be called from several threads; receive() from
// one. Pings are answered, pongs dropped.
class ChannelConnection {
 public:
  ChannelConnection(apiserver::ByteStream& stream, bool client);
  // One binary message [channel, data...]; false once the connection is gone.
  bool send(uint8_t channel, std::string_view data);
  // The next data message as {channel, data}, or nullopt when the peer closed the connection
  // (a close frame or the end of the stream). Throws ProtocolError on a broken frame.
  std::optional<std::pair<uint8_t, std::string>> receive();
  // Sends a close frame (once) with a status code.
  void close(uint16_t code = 1000);

 private:
  bool sendFrame(Opcode opcode, std::string_view payload);

  apiserver::ByteStream& stream_;
  bool client_;
  FrameDecoder decoder_;
  std::mutex write_mu_;
  bool close_sent_ = false;
};

}  // namespace skiff::kubelet::ws
