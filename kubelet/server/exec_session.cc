#include "kubelet/server/exec_session.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <future>
#include <memory>
#include <thread>

#include "control/api/json.h"
#include "kubelet/server/websocket_channel.h"

namespace skiff::kubelet {
namespace {

// False once the descriptor no longer takes bytes (the command closed its stdin or ended).
bool writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// {"Width":80,"Height":24} from channel 4; nothing for anything else.
void applyResize(ExecProcess& process, const std::string& json) {
  try {
    const api::Value size = api::parseJson(json, {.source = "resize"});
    const api::Value* width = size.isObject() ? size.find("Width") : nullptr;
    const api::Value* height = size.isObject() ? size.find("Height") : nullptr;
    if (!width || !height || !width->isInteger() || !height->isInteger()) return;
    if (width->asInt() <= 0 || height->asInt() <= 0 || width->asInt() > 0xFFFF ||
        height->asInt() > 0xFFFF)
      return;
    process.resize(static_cast<uint16_t>(width->asInt()), static_cast<uint16_t>(height->asInt()));
  } catch (const std::exception&) {
  }
}

}  // namespace

void runExecSession(ContainerRuntime& runtime, const std::string& container_id,
                    const std::vector<std::string>& argv, const ExecStreamOptions& options,
                    const std::string& protocol, apiserver::ByteStream& stream) {
  ws::ChannelConnection connection(stream, /*client=*/false);
  std::string command;
  for (const auto& a : argv)
    command += (command.empty() ? "" : " ") + a;
  std::unique_ptr<ExecProcess> process;
  try {
    process = runtime.execStream(container_id, argv, options);
  } catch (const std::exception& e) {
    connection.send(ws::kError, ws::failureStatus(e.what()));
    connection.close();
    stream.close();
    return;
  }

  std::atomic<bool> finished{false};
  std::promise<void> input_done;
  auto input_ended = input_done.get_future();
  // The client's messages: stdin, resizes, and (v5) the end of stdin.
  std::thread input([&] {
    sigset_t pipe_signal;
    sigemptyset(&pipe_signal);
    sigaddset(&pipe_signal, SIGPIPE);
    // A write to the stdin of a command that ended fails with EPIPE instead of killing us.
    pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
    const bool v5 = protocol == ws::kProtocolV5;
    bool stdin_open = true;
    try {
      while (auto message = connection.receive()) {
        const auto& [channel, data] = *message;
        if (channel == ws::kStdin) {
          const int fd = process->stdinFd();
          if (fd >= 0 && stdin_open && !writeAll(fd, data)) stdin_open = false;
        } else if (channel == ws::kResize) {
          applyResize(*process, data);
        } else if (channel == ws::kClose && v5 && !data.empty() &&
                   static_cast<uint8_t>(data[0]) == ws::kStdin) {
          process->closeStdin();
        }
      }
    } catch (const std::exception&) {
      // A broken frame ends the session like a client that left.
    }
    if (!finished.load()) process->kill();  // the client left before the command ended
    input_done.set_value();
  });

  auto pump = [&](int fd, uint8_t channel) {
    char buf[32 * 1024];
    while (true) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // the end (EIO on a terminal whose other side closed)
      if (!connection.send(channel, std::string_view(buf, static_cast<size_t>(n)))) {
        process->kill();  // nobody to deliver to
        return;
      }
    }
  };
  std::thread out, err;
  if (process->stdoutFd() >= 0) out = std::thread(pump, process->stdoutFd(), ws::kStdout);
  if (process->stderrFd() >= 0) err = std::thread(pump, process->stderrFd(), ws::kStderr);
  if (out.joinable()) out.join();
  if (err.joinable()) err.join();
  std::string status;
  try {
    status = ws::exitStatus(process->wait(), command);
  } catch (const std::exception& e) {
    status = ws::failureStatus(e.what());
  }
  finished.store(true);
  connection.send(ws::kError, status);
  connection.close();
  // The client answers the close frame: wait a moment for that, so that shutting the connection
  // down cannot reset it before the client has read everything.
  input_ended.wait_for(std::chrono::seconds(2));
  stream.close();
  input.join();
}

}  // namespace skiff::kubelet
