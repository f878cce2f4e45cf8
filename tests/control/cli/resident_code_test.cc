// releaseStartupCode (control/cli/resident_code.h) on this test process itself: the read-only
// segments of the test binary leave the resident set, and everything that lives in them (code,
// read-only data, unwind tables) and in the written segments (RELRO vtables, globals) still works
// afterwards. waitForStopSignalReleasingStartupCode returns the stop signal either way.

#include "control/cli/resident_code.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "control/cli/stop_signals.h"

namespace skiff::cli {
namespace {
using namespace std::chrono_literals;

// Resident kB of this executable's mappings without write permission (text and read-only data).
size_t residentReadOnlyKb() {
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool ours = false;
  size_t kb = 0;
  while (std::getline(smaps, line)) {
    std::istringstream fields(line);
    std::string first;
    fields >> first;
    if (first.find('-') != std::string::npos && first.back() != ':') {
      std::string perms, offset, dev, inode, path;
      fields >> perms >> offset >> dev >> inode >> path;
      ours = path == exe && perms.find('w') == std::string::npos;
    } else if (ours && first == "Rss:") {
      size_t value = 0;
      fields >> value;
      kb += value;
    }
  }
  return kb;
}

struct Shape {
  virtual ~Shape() = default;
  virtual std::string name() const = 0;
};
struct Square : Shape {
  std::string name() const override { return "square"; }
};
int g_written_global = 41;

[[gnu::noinline]] void throwFromDeep(int depth) {
  if (depth == 0) throw std::runtime_error("from the bottom");
  throwFromDeep(depth - 1);
}

TEST(ResidentCode, ReleasesReadOnlySegmentsAndTheProcessGoesOn) {
  std::unique_ptr<Shape> before = std::make_unique<Square>();
  ++g_written_global;
  const size_t resident_before = residentReadOnlyKb();
  ASSERT_GT(resident_before, 0u);

  const ReleasedCode released = releaseStartupCode();
  // Two read-only segments of this binary at least (read-only data and text), plus libraries.
  EXPECT_GE(released.segments, 2u);
  EXPECT_GT(released.bytes, resident_before * 1024 / 2);
  const size_t resident_after = residentReadOnlyKb();
  EXPECT_LT(resident_after, resident_before / 2)
      << "before " << resident_before << " kB, after " << resident_after << " kB";

  // Code and read-only data come back on use; the relocated vtables and globals were kept.
  EXPECT_EQ(before->name(), "square");
  EXPECT_EQ(std::make_unique<Square>()->name(), "square");
  EXPECT_EQ(g_written_global, 42);
  // The unwinder reads .eh_frame (read-only, released) again.
  try {
    throwFromDeep(20);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "from the bottom");
  }
  std::ostringstream out;
  out << 1.5 << " " << std::string(100, 'x').size();
  EXPECT_EQ(out.str(), "1.5 100");
}

TEST(ResidentCode, WaitReturnsTheStopSignalBeforeAndAfterTheRelease) {
  const sigset_t signals = blockStopSignals();
  for (auto release_after :
       {std::chrono::milliseconds(3600 * 1000), std::chrono::milliseconds(10)}) {
    std::thread sender([] {
      std::this_thread::sleep_for(100ms);
      kill(getpid(), SIGTERM);
    });
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(waitForStopSignalReleasingStartupCode(signals, release_after), SIGTERM);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
    sender.join();
  }
}

}  // namespace
}  // namespace skiff::cli
