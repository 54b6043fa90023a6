// report::Sink on real pipes: the writer never waits for the reader, and the reader gets
// every byte, in order, once it reads.
#include "../support/support.hpp"
#include <pcr/report/sink.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

using pcr::report::Sink;

namespace {

struct Pipe {
  int read = -1, write = -1;
  Pipe() {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    read = fds[0], write = fds[1];
  }
  ~Pipe() {
    if (read >= 0) ::close(read);
  }
  std::string drain() {  // everything, until the writer closed its end
    std::string all;
    char buf[65536];
    for (ssize_t n; (n = ::read(read, buf, sizeof buf)) > 0;) all.append(buf, static_cast<size_t>(n));
    return all;
  }
};

// Distinct bytes at every position, so a reordering or a lost piece shows.
std::string numbered(std::size_t size, int piece) {
  std::string s;
  for (int line = 0; s.size() < size; ++line) s += std::to_string(piece) + ":" + std::to_string(line) + "\n";
  s.resize(size);
  return s;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

// 8 MiB in 1 MiB pieces into a pipe nobody reads yet: every write returns at once (the
// pipe takes what fits, the rest is queued, past 1 MiB on disk), and the reader then gets
// all of it in order. The first piece lands in a pipe already holding most of its size, so
// the direct write of what fits is exercised too.
// Both ways of writing only what a pipe takes now: RWF_NOWAIT, and the measured room.
class SinkIntoAPipe : public testing::TestWithParam<bool> {};
INSTANTIATE_TEST_SUITE_P(Sink, SinkIntoAPipe, testing::Values(false, true),
                         [](const testing::TestParamInfo<bool>& param) { return param.param ? "MeasuredRoom" : "NoWait"; });

TEST_P(SinkIntoAPipe, NeverWaitsForAReaderAndLosesNothing) {
  Pipe p;
  const std::string before = numbered(900 * 1024, 0);
  std::string expected = before;
  {
    Sink sink(p.write, "pipe", {}, true);
    if (GetParam()) sink.measure_room();
    ASSERT_EQ(::write(p.write, before.data(), before.size()), static_cast<ssize_t>(before.size()));
    for (int piece = 1; piece <= 8; ++piece) {
      const std::string data = numbered(1 << 20, piece);
      const auto start = std::chrono::steady_clock::now();
      sink.write(data);
      EXPECT_LT(seconds_since(start), 1.0) << "piece " << piece << " waited for the reader";
      expected += data;
    }
    // finish() waits for the reader: read on another thread meanwhile.
    std::string got;
    std::thread reader([&] { got = p.drain(); });
    sink.finish();
    reader.join();
    EXPECT_TRUE(sink.error().empty()) << sink.error();
    ASSERT_EQ(got.size(), expected.size());
    EXPECT_TRUE(got == expected) << "bytes reordered or changed";
  }
}

TEST(Sink, MasksASecretSplitAcrossWrites) {
  Pipe p;
  Sink sink(p.write, "pipe", {"hunter2-secret"}, true);
  sink.write("login hunter2");
  sink.write("-secret ok\n");
  sink.finish();
  EXPECT_EQ(p.drain(), "login *** ok\n");
}

TEST(Sink, AFailureToWriteIsKeptAndNamed) {
  auto sink = Sink::open("/dev/full", {});
  sink->write(std::string(1 << 16, 'x'));
  sink->finish();
  EXPECT_EQ(sink->error(), "/dev/full: No space left on device");
}

// A backlog that cannot be spilled to a full disk names the full disk: a short write left
// errno as the last RWF_NOWAIT write had set it, "Resource temporarily unavailable".
TEST(Sink, ABacklogOnAFullDiskSaysNoSpaceLeft) {
  pcr::test::TempDir holder;
  const std::string disk = holder.file("disk");
  ::mkdir(disk.c_str(), 0700);
  if (::mount("tmpfs", disk.c_str(), "tmpfs", 0, "size=256k,mode=0700") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << std::strerror(errno);
  const char* before = std::getenv("TMPDIR");
  const std::string saved = before ? before : "";
  ::setenv("TMPDIR", disk.c_str(), 1);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const auto old_pipe = ::signal(SIGPIPE, SIG_IGN);  // as pcr: the reader goes away below
  {
    Sink sink(fds[1], "stdout", {}, false);
    // Nobody reads: 1 MiB in memory, then the spill file, which fills the 256 KiB disk.
    const std::string piece(64 * 1024, 'x');
    for (int i = 0; i < 40 && sink.error().empty(); ++i) sink.write(piece);
    EXPECT_NE(sink.error().find("No space left on device"), std::string::npos) << sink.error();
    ::close(fds[0]);  // lets the writer thread finish
    sink.finish();
  }
  ::close(fds[1]);
  ::signal(SIGPIPE, old_pipe);
  if (before) ::setenv("TMPDIR", saved.c_str(), 1); else ::unsetenv("TMPDIR");
  ::umount2(disk.c_str(), MNT_DETACH);
}
