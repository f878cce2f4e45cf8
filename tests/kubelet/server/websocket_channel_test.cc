// The WebSocket framing and Kubernetes channel codec of exec (kubelet/server/websocket_channel.h):
// frames byte for byte against RFC 6455's examples, masking, the three length encodings,
// fragments with control frames between them, bytes arriving one at a time, the handshake key,
// subprotocol choice, the channel-3 Status both ways, and a ChannelConnection pair over a pipe.
#include "kubelet/server/websocket_channel.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace skiff::kubelet::ws {
namespace {

std::string bytes(std::initializer_list<int> list) {
  std::string out;
  for (int b : list)
    out.push_back(static_cast<char>(b));
  return out;
}

// Masks as a client would with a fixed key (RFC 6455 5.7's example key 37 fa 21 3d).
std::string maskedFrame(int first_byte, std::string_view payload) {
  const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
  std::string out;
  out.push_back(static_cast<char>(first_byte));
  out.push_back(static_cast<char>(0x80 | payload.size()));
  out.append(reinterpret_cast<const char*>(key), 4);
  for (size_t i = 0; i < payload.size(); ++i)
    out.push_back(static_cast<char>(static_cast<unsigned char>(payload[i]) ^ key[i % 4]));
  return out;
}

TEST(WebSocketFrame, EncodesRfcExamples) {
  // RFC 6455 5.7: a single-frame unmasked text message "Hello".
  EXPECT_EQ(encodeFrame(Opcode::kText, "Hello", false), bytes({0x81, 0x05}) + "Hello");
  // 256 bytes: 16-bit length; 65536 bytes: 64-bit length.
  const std::string medium = encodeFrame(Opcode::kBinary, std::string(256, 'a'), false);
  EXPECT_EQ(medium.substr(0, 4), bytes({0x82, 0x7E, 0x01, 0x00}));
  EXPECT_EQ(medium.size(), 4u + 256u);
  const std::string large = encodeFrame(Opcode::kBinary, std::string(65536, 'b'), false);
  EXPECT_EQ(large.substr(0, 10), bytes({0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}));
  EXPECT_EQ(large.size(), 10u + 65536u);
}

TEST(WebSocketFrame, DecodesRfcMaskedExample) {
  // RFC 6455 5.7: a single-frame masked text message "Hello".
  const std::string wire =
      bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58});
  FrameDecoder server(/*expect_masked=*/true);
  server.feed(wire);
  auto m = server.next();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->opcode, Opcode::kText);
  EXPECT_EQ(m->payload, "Hello");
  EXPECT_FALSE(server.next());
}

TEST(WebSocketFrame, MaskedRoundTripOfEveryLengthEncoding) {
  for (size_t size : {0u, 1u, 125u, 126u, 65535u, 65536u, 200000u}) {
    std::string payload(size, '\0');
    for (size_t i = 0; i < size; ++i)
      payload[i] = static_cast<char>(i * 7);
    const std::string wire = encodeFrame(Opcode::kBinary, payload, /*mask=*/true);
    EXPECT_NE(wire[1] & 0x80, 0) << "client frames carry the mask bit";
    FrameDecoder server(true);
    server.feed(wire);
    auto m = server.next();
    ASSERT_TRUE(m) << size;
    EXPECT_EQ(m->payload, payload) << size;
  }
}

TEST(WebSocketFrame, BytesOneAtATime) {
  const std::string wire = encodeFrame(Opcode::kBinary, bytes({kStdout}) + "hi\n", false) +
                           encodeFrame(Opcode::kPing, "p", false);
  FrameDecoder client(/*expect_masked=*/false);
  std::vector<Message> got;
  for (char c : wire) {
    client.feed(std::string_view(&c, 1));
    while (auto m = client.next())
      got.push_back(*m);
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].payload, bytes({kStdout}) + "hi\n");
  EXPECT_EQ(got[1].opcode, Opcode::kPing);
  EXPECT_EQ(got[1].payload, "p");
}

TEST(WebSocketFrame, FragmentsJoinedAroundAControlFrame) {
  // RFC 6455 5.4: a fragmented message with a ping between its fragments (as gorilla/websocket
  // sends a 32 KiB stdin chunk through its 4 KiB write buffer).
  std::string wire = maskedFrame(0x02, bytes({kStdin}) + "abc");  // binary, FIN clear
  wire += maskedFrame(0x89, "ping");                              // ping, FIN
  wire += maskedFrame(0x00, "def");                               // continuation, FIN clear
  wire += maskedFrame(0x80, "ghi");                               // continuation, FIN
  FrameDecoder server(true);
  server.feed(wire);
  auto ping = server.next();
  ASSERT_TRUE(ping);
  EXPECT_EQ(ping->opcode, Opcode::kPing);
  auto data = server.next();
  ASSERT_TRUE(data);
  EXPECT_EQ(data->opcode, Opcode::kBinary);
  EXPECT_EQ(data->payload, bytes({kStdin}) + "abcdefghi");
  EXPECT_FALSE(server.next());
}

TEST(WebSocketFrame, RejectsWhatRfc6455Forbids) {
  auto rejects = [](bool expect_masked, const std::string& wire, const std::string& why) {
    FrameDecoder d(expect_masked, 1024);
    d.feed(wire);
    try {
      d.next();
      ADD_FAILURE() << "accepted: " << why;
    } catch (const ProtocolError& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  rejects(true, bytes({0x82, 0x01, 0x00}), "unmasked websocket frame from a client");
  rejects(false, maskedFrame(0x82, "x"), "masked websocket frame from a server");
  rejects(true, maskedFrame(0xC2, "x"), "reserved bits");
  rejects(true, maskedFrame(0x83, "x"), "unknown opcode 3");
  rejects(true, maskedFrame(0x80, "x"), "continuation frame without a message");
  rejects(true, maskedFrame(0x02, "x") + maskedFrame(0x82, "y"), "inside a fragmented message");
  rejects(true, maskedFrame(0x09, "x"), "control frame fragmented");
  rejects(false, bytes({0x82, 0x7E, 0x08, 0x00}), "over 1024 bytes");
}

TEST(WebSocketHandshake, AcceptKeyOfRfcExample) {
  EXPECT_EQ(acceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WebSocketHandshake, ChoosesV5ThenV4) {
  // What kubectl v1.32 offers (remotecommand's WebSocket executor).
  EXPECT_EQ(chooseProtocol("v5.channel.k8s.io, v4.channel.k8s.io, v3.channel.k8s.io, "
                           "v2.channel.k8s.io"),
            "v5.channel.k8s.io");
  EXPECT_EQ(chooseProtocol("v4.channel.k8s.io,v5.channel.k8s.io"), "v5.channel.k8s.io");
  EXPECT_EQ(chooseProtocol("base64.channel.k8s.io, v4.channel.k8s.io"), "v4.channel.k8s.io");
  EXPECT_EQ(chooseProtocol("channel.k8s.io"), "");
  EXPECT_EQ(chooseProtocol(""), "");
}

TEST(ExecStatus, AsKubectlDecodesIt) {
  std::string message;
  EXPECT_EQ(exitStatus(0, "true"), R"({"metadata":{},"status":"Success"})");
  EXPECT_EQ(statusExitCode(exitStatus(0, "true"), message), 0);
  const std::string three = exitStatus(3, "sh -c exit 3");
  EXPECT_EQ(three,
            R"({"metadata":{},"status":"Failure","message":"command terminated with non-zero )"
            R"(exit code: error executing command [sh -c exit 3], exit code 3",)"
            R"("reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode",)"
            R"("message":"3"}]}})");
  EXPECT_EQ(statusExitCode(three, message), 3);
  const std::string failed = failureStatus("exec failed: \"nosuch\": not found");
  EXPECT_EQ(statusExitCode(failed, message), std::nullopt);
  EXPECT_EQ(message, "exec failed: \"nosuch\": not found");
  EXPECT_THROW(statusExitCode("{}", message), ProtocolError);
  EXPECT_THROW(statusExitCode("not json", message), ProtocolError);
}

// One direction of an in-memory connection.
class Pipe {
 public:
  void put(std::string_view data) {
    std::lock_guard lock(mu_);
    data_.insert(data_.end(), data.begin(), data.end());
    cv_.notify_all();
  }
  void end() {
    std::lock_guard lock(mu_);
    ended_ = true;
    cv_.notify_all();
  }
  size_t get(char* out, size_t size) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !data_.empty() || ended_; });
    size_t n = 0;
    while (n < size && !data_.empty()) {
      out[n++] = data_.front();
      data_.pop_front();
    }
    return n;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<char> data_;
  bool ended_ = false;
};

class PipeStream : public apiserver::ByteStream {
 public:
  PipeStream(Pipe& in, Pipe& out) : in_(in), out_(out) {}
  size_t read(char* data, size_t size) override { return in_.get(data, size); }
  bool write(std::string_view data) override {
    out_.put(data);
    return true;
  }
  void close() override {
    in_.end();
    out_.end();
  }

 private:
  Pipe& in_;
  Pipe& out_;
};

TEST(ChannelConnection, ClientAndServerExchangeChannelsAndClose) {
  Pipe to_server, to_client;
  PipeStream server_side(to_server, to_client), client_side(to_client, to_server);
  ChannelConnection server(server_side, /*client=*/false);
  ChannelConnection client(client_side, /*client=*/true);

  ASSERT_TRUE(client.send(kStdin, "input"));
  ASSERT_TRUE(client.send(kClose, std::string(1, static_cast<char>(kStdin))));
  auto m = server.receive();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->first, kStdin);
  EXPECT_EQ(m->second, "input");
  m = server.receive();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->first, kClose);
  EXPECT_EQ(m->second, std::string(1, '\0'));

  // A ping from the client is answered by the server's next receive; the client drops the pong.
  client_side.write(encodeFrame(Opcode::kPing, "hb", true));
  ASSERT_TRUE(server.send(kStdout, "out"));
  ASSERT_TRUE(server.send(kError, exitStatus(0, "true")));
  std::thread serve([&] {
    // Sees the ping (answers it), then the client's close (answers that too).
    EXPECT_FALSE(server.receive());
  });
  m = client.receive();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->first, kStdout);
  EXPECT_EQ(m->second, "out");
  m = client.receive();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->first, kError);
  client.close();
  EXPECT_FALSE(client.receive());  // the pong is dropped, the server's close ends it
  serve.join();
  EXPECT_FALSE(server.send(kStdout, "late")) << "nothing is sent after a close frame";
}

}  // namespace
}  // namespace skiff::kubelet::ws
