#include "kubelet/server/log_reader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

namespace skiff::kubelet {
namespace {

namespace fs = std::filesystem;

class LogReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("skiff-logreader-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    container_dir_ = dir_ / "default_web_0b1c-2d" / "app";
    fs::create_directories(container_dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void append(const std::string& file, const std::string& text) {
    std::ofstream out(container_dir_ / file, std::ios::app | std::ios::binary);
    out << text;
  }
  std::string read(const std::string& file, const LogOptions& options, int64_t now = 0) {
    std::string out;
    streamContainerLog((container_dir_ / file).string(), options,
                       [&](std::string_view s) {
                         out.append(s);
                         return true;
                       },
                       [] { return true; }, now);
    return out;
  }

  fs::path dir_;
  fs::path container_dir_;
};

const char* kLog =
    "2026-01-01T00:00:01.000000000Z stdout F one\n"
    "2026-01-01T00:00:02.000000000Z stderr F two\n"
    "2026-01-01T00:00:03.000000000Z stdout P thr\n"
    "2026-01-01T00:00:03.000000001Z stdout F ee\n"
    "2026-01-01T00:00:04.000000000Z stdout F \n";

TEST(CriLogLine, Parses) {
  auto line = parseCriLogLine("2026-01-01T00:00:00.000000000Z stderr P some text");
  ASSERT_TRUE(line);
  EXPECT_EQ(line->timestamp, "2026-01-01T00:00:00.000000000Z");
  EXPECT_EQ(line->stream, "stderr");
  EXPECT_TRUE(line->partial);
  EXPECT_EQ(line->text, "some text");
  auto empty = parseCriLogLine("2026-01-01T00:00:00.000000000Z stdout F");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->text, "");
  EXPECT_FALSE(parseCriLogLine("plain text"));
  EXPECT_FALSE(parseCriLogLine("2026 stdin F x"));
  EXPECT_FALSE(parseCriLogLine("2026 stdout X x"));
  EXPECT_EQ(criTimestamp(1767225600), "2026-01-01T00:00:00.000000000Z");
}

TEST_F(LogReaderTest, TextWithoutPrefixAndPartialLinesJoined) {
  append("0.log", kLog);
  EXPECT_EQ(read("0.log", {}), "one\ntwo\nthree\n\n");
}

TEST_F(LogReaderTest, Timestamps) {
  append("0.log", kLog);
  LogOptions o;
  o.timestamps = true;
  o.tail_lines = 2;
  EXPECT_EQ(read("0.log", o),
            "2026-01-01T00:00:03.000000001Z ee\n2026-01-01T00:00:04.000000000Z \n");
}

TEST_F(LogReaderTest, TailSinceAndLimit) {
  append("0.log", kLog);
  LogOptions tail;
  tail.tail_lines = 3;
  EXPECT_EQ(read("0.log", tail), "three\n\n");
  tail.tail_lines = 0;
  EXPECT_EQ(read("0.log", tail), "");
  LogOptions since;
  since.since_seconds = 2;  // now = 2026-01-01T00:00:04Z: from 00:00:02 on
  EXPECT_EQ(read("0.log", since, 1767225604), "two\nthree\n\n");
  LogOptions limit;
  limit.limit_bytes = 6;
  EXPECT_EQ(read("0.log", limit), "one\ntw");
}

TEST_F(LogReaderTest, FindsCurrentAndPreviousRestart) {
  append("0.log", "2026-01-01T00:00:01.000000000Z stdout F first run\n");
  append("1.log", "2026-01-01T00:00:05.000000000Z stdout F second run\n");
  const std::string dir = dir_.string();
  EXPECT_EQ(findContainerLog(dir, "default", "web", "app", false),
            (container_dir_ / "1.log").string());
  EXPECT_EQ(findContainerLog(dir, "default", "web", "app", true),
            (container_dir_ / "0.log").string());
  EXPECT_THROW(findContainerLog(dir, "default", "nope", "app", false), LogNotFound);
  EXPECT_THROW(findContainerLog(dir, "other", "web", "app", false), LogNotFound);
  try {
    findContainerLog(dir, "default", "web", "sidecar", false);
    FAIL();
  } catch (const LogNotFound& e) {
    EXPECT_NE(std::string(e.what()).find("container sidecar in pod default/web"), std::string::npos)
        << e.what();
  }
  fs::remove(container_dir_ / "0.log");
  EXPECT_THROW(findContainerLog(dir, "default", "web", "app", true), LogNotFound);
}

TEST_F(LogReaderTest, FollowStreamsAGrowingFileUntilTheContainerRestarts) {
  append("0.log", "2026-01-01T00:00:01.000000000Z stdout F before\n");
  LogOptions o;
  o.follow = true;
  std::string out;
  std::atomic<int> writes{0};
  std::thread reader([&] {
    streamContainerLog((container_dir_ / "0.log").string(), o,
                       [&](std::string_view s) {
                         out.append(s);
                         ++writes;
                         return true;
                       },
                       [] { return true; }, 0);
  });
  while (writes.load() < 1)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  // A line written in two pieces (the shim mid-write) comes out once, whole.
  append("0.log", "2026-01-01T00:00:02.000000000Z stdout F af");
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  append("0.log", "ter\n");
  while (writes.load() < 2)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  append("1.log", "2026-01-01T00:00:03.000000000Z stdout F next run\n");
  reader.join();
  EXPECT_EQ(out, "before\nafter\n");
}

TEST_F(LogReaderTest, FollowStopsWhenTheClientLeaves) {
  append("0.log", "2026-01-01T00:00:01.000000000Z stdout F x\n");
  LogOptions o;
  o.follow = true;
  std::atomic<bool> client_here{true};
  std::thread reader([&] {
    streamContainerLog((container_dir_ / "0.log").string(), o,
                       [](std::string_view) { return true; }, [&] { return client_here.load(); },
                       0);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  client_here = false;
  reader.join();  // returns: the test would hang otherwise
}

}  // namespace
}  // namespace skiff::kubelet
