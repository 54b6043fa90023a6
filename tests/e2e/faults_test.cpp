// Output under faults a real CI meets: a reader that stops reading, a full stdout, a full
// disk under --log-dir, the reports and the spool. Real processes, a real tmpfs.
#include "../support/pcr_binary.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <regex>
#include <thread>

using namespace pcr::test;

namespace {

namespace fs = std::filesystem;

// A 1 MiB tmpfs for the test's life; skipped (with the reason) where one cannot be mounted.
struct SmallDisk {
  TempDir holder;
  std::string path = holder.file("disk");
  bool mounted = false;
  SmallDisk() {
    fs::create_directories(path);
    mounted = ::mount("tmpfs", path.c_str(), "tmpfs", 0, "size=1m,mode=0700") == 0;
  }
  ~SmallDisk() {
    if (mounted) ::umount2(path.c_str(), MNT_DETACH);
  }
};

#define NEED_DISK(disk)                                                                    \
  if (!(disk).mounted) GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << std::strerror(errno)

}  // namespace

TEST(Faults, AFullStdoutIsAnErrorAndCleanupStillRuns) {
  TempDir d;
  PcrOptions o;
  o.stdout_path = "/dev/full";
  auto r = run_yaml(d, "steps:\n  - run: echo hello\ncleanup:\n  - run: touch cleaned\n", {}, o);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("pcr: error: could not write stdout: No space left on device"),
            std::string::npos) << r.err;
  EXPECT_TRUE(exists(d.file("cleaned")));
}

TEST(Faults, AClosedStdoutStopsPrintingQuietly) {
  // `pcr run | head -1`: EPIPE is not an error; the run finishes and cleans up.
  TempDir d;
  d.write("ci.yaml", "steps:\n  - run: seq 100000\ncleanup:\n  - run: touch cleaned\n");
  auto code = sh("cd " + d.path() + " && bash -c 'set -o pipefail; " + PCR_BINARY +
                 " run ci.yaml 2> err.txt | head -1 > /dev/null; echo ${PIPESTATUS[0]}'");
  EXPECT_EQ(code, "0\n");
  EXPECT_EQ(read_file(d.file("err.txt")), "");
  EXPECT_TRUE(exists(d.file("cleaned")));
}

TEST(Faults, LogDirOnAFullDiskIsAnErrorNamingTheFile) {
  SmallDisk disk;
  NEED_DISK(disk);
  TempDir d;
  auto r = run_yaml(d,
                    "steps:\n  - run: head -c 3000000 /dev/zero | tr '\\\\0' x\ncleanup:\n"
                    "  - run: echo cleaning; touch cleaned\n",
                    {"--log-dir", disk.path + "/logs"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("pcr: error: could not write " + disk.path + "/logs/"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("No space left on device"), std::string::npos) << r.err;
  EXPECT_TRUE(exists(d.file("cleaned")));
  // The summary's last line tells the same exit code, not "PASSED ... (exit 0)".
  EXPECT_NE(r.out.find("FAILED: could not write " + disk.path + "/logs/"), std::string::npos) << r.out;
  // Every log that failed is counted, in one line.
  EXPECT_NE(r.err.find("(and 1 more job log in " + disk.path + "/logs)"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("(exit 3)\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("PASSED"), std::string::npos) << r.out;
}

TEST(Faults, ReportsOnAFullDiskAreErrors) {
  SmallDisk disk;
  NEED_DISK(disk);
  TempDir d;
  // Fill the disk but for a few bytes, so the reports open and then cannot be written.
  sh("head -c 1040000 /dev/zero > " + disk.path + "/filler 2>/dev/null");
  auto r = run_yaml(d, "steps:\n  - parallel: 50\n    run: echo job {n} with some output to report\n",
                    {"--junit", disk.path + "/junit.xml", "--json", disk.path + "/events.json",
                     "--html", disk.path + "/report.html"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("could not write " + disk.path + "/"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("No space left on device"), std::string::npos) << r.err;
  // Half a report is none: the JUnit and HTML files that could not be written are gone
  // (the JSON event log, written as the run goes, keeps what it has).
  EXPECT_FALSE(exists(disk.path + "/junit.xml"));
  EXPECT_FALSE(exists(disk.path + "/report.html"));
  // The reports are written before the summary's last line, which knows they failed.
  EXPECT_NE(r.out.find("FAILED: could not write " + disk.path + "/"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(exit 3)\n"), std::string::npos) << r.out;
}

TEST(Faults, SpoolOnAFullDiskIsSaidOnTheJobAndFailsTheRun) {
  SmallDisk disk;
  NEED_DISK(disk);
  TempDir d;
  PcrOptions o;
  o.env = {"TMPDIR=" + disk.path};
  o.stdout_path = d.file("out.txt");
  // Two jobs: each one's output is spooled whole, to be shown in one piece.
  auto r = run_yaml(d, "steps:\n  - parallel: 2\n    run: head -c 10000000 /dev/zero | tr '\\\\0' y\n", {}, o);
  const std::string out = read_file(d.file("out.txt"));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(out.find("its output could not all be kept"), std::string::npos) << out.substr(0, 300);
  EXPECT_NE(r.err.find("could not write a job's output to " + disk.path), std::string::npos) << r.err;
  EXPECT_NE(out.find("FAILED: could not write a job's output to " + disk.path), std::string::npos) << out;
  EXPECT_NE(out.find("(exit 3)\n"), std::string::npos) << out;
}

// A job that cleans TMPDIR under pcr removes its spool: the output of the others is lost
// with it. A step that reads its jobs' stdout (capture) must not pass on what is left —
// it passed an empty list to the next step, which then ran nothing and passed.
TEST(Faults, ASpoolRemovedUnderAJobFailsTheStepThatReadsIt) {
  TempDir d;
  fs::create_directories(d.file("tmp"));
  PcrOptions o;
  o.env = {"TMPDIR=" + d.file("tmp")};
  constexpr const char* wait_for = "i=0; while [ ! -e {} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; ";
  auto r = run_yaml(d,
                    "steps:\n  - name: list\n    capture: OUT\n    commands:\n"
                    "      - '" + fmt::format(fmt::runtime(wait_for), "started") + "rm -rf \"$TMPDIR\"/pcr-*; touch removed; echo one'\n"
                    "      - 'echo before; touch started; " + fmt::format(fmt::runtime(wait_for), "removed") + "seq 3'\n"
                    "  - name: each\n    for_each: {lines: OUT}\n    run: touch ran-{items}\n"
                    "cleanup:\n  - run: touch cleaned\n",
                    {}, o);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(exists(d.file("removed")));
  EXPECT_NE(r.out.find("removed while the job ran"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("unexpected output"), std::string::npos) << r.out;
  EXPECT_FALSE(exists(d.file("ran-1"))) << "the step after it is skipped";
  EXPECT_FALSE(exists(d.file("ran-before")));
  EXPECT_TRUE(exists(d.file("cleaned")));
}

// No spool folder can be made: pcr cannot run, says where and why, and exits 3 (it said
// 1, "a step failed", though none ran).
TEST(Faults, AnUnusableTmpdirIsPcrsOwnFailure) {
  TempDir d;
  d.write("file", "");
  for (const std::string& tmp : {d.file("missing"), d.file("file")}) {
    PcrOptions o;
    o.env = {"TMPDIR=" + tmp};
    auto r = run_yaml(d, "steps:\n  - run: touch ran\n", {}, o);
    EXPECT_EQ(r.exit_code, 3) << tmp;
    EXPECT_NE((r.out + r.err).find("cannot create a spool folder " + tmp + "/pcr-"), std::string::npos) << r.out << r.err;
    EXPECT_FALSE(exists(d.file("ran")));
  }
}

// A step's only job streams live and is never replayed: its spool keeps only the tail
// the summary shows, so 10 MB of output pass through a 1 MiB spool disk whole, and a
// failure still shows its last lines.
TEST(Faults, AStreamedJobNeedsNoSpoolDisk) {
  SmallDisk disk;
  NEED_DISK(disk);
  TempDir d;
  PcrOptions o;
  o.env = {"TMPDIR=" + disk.path};
  o.stdout_path = d.file("out.txt");
  auto r = run_yaml(d, "steps:\n  - run: seq 1500000; echo the end; exit 4\n", {"--html", d.file("r.html")}, o);
  const std::string out = read_file(d.file("out.txt"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(out.find("\n1\n2\n3\n"), std::string::npos) << out.substr(0, 300);
  EXPECT_NE(out.find("\n1499999\n1500000\nthe end\n"), std::string::npos);
  EXPECT_GT(out.size(), 10'000'000u);
  // The summary's tail of the failed job, and the HTML report's.
  const auto summary = out.find("━━ summary");
  ASSERT_NE(summary, std::string::npos);
  EXPECT_NE(out.find("1500000\n", summary), std::string::npos) << out.substr(summary);
  EXPECT_NE(out.find("the end", summary), std::string::npos) << out.substr(summary);
  EXPECT_NE(read_file(d.file("r.html")).find("the end"), std::string::npos);
  // With --log-dir every job's log is whole: the spool is whole too (and here it fails).
  auto logged = run_yaml(d, "steps:\n  - run: seq 1500000\n", {"--log-dir", d.file("logs")}, o);
  EXPECT_EQ(logged.exit_code, 3) << logged.err;
}

// Also with a non-blocking stdout (a parent such as a CI agent may leave the pipe so):
// "would block" is not a write failure (it was: exit 3 and the rest of the output lost).
class SlowReader : public testing::TestWithParam<bool> {};
INSTANTIATE_TEST_SUITE_P(Faults, SlowReader, testing::Values(false, true),
                         [](const testing::TestParamInfo<bool>& param) { return param.param ? "NonBlockingStdout" : "BlockingStdout"; });

TEST_P(SlowReader, NeverDelaysTimeoutsAndLosesNothing) {
  TempDir d;
  const std::string fifo = d.file("stdout.fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Our read end is open (so pcr's open for writing does not wait), but nobody reads yet.
  int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  PcrOptions o;
  o.stdout_path = fifo;
  o.stdout_nonblocking = GetParam();
  std::string got;
  o.while_running = [&](pid_t) {
    // 10 s of not reading, while a chatty job fills the pipe and another must time out.
    std::this_thread::sleep_for(std::chrono::seconds(10));
    ::fcntl(reader, F_SETFL, 0);
    char buf[65536];
    for (ssize_t n; (n = ::read(reader, buf, sizeof buf)) > 0;) got.append(buf, static_cast<size_t>(n));
  };
  auto r = run_yaml(d,
                    "steps:\n  - name: both\n    commands:\n      - seq 1 400000\n"
                    "      - sleep 30\n    timeout: 2s\n",
                    {"--json", d.file("events.json")}, o);
  ::close(reader);
  EXPECT_EQ(r.exit_code, 1);
  // The timeout struck on time: the sleeping job's recorded duration.
  const std::string events = read_file(d.file("events.json"));
  std::smatch m;
  ASSERT_TRUE(std::regex_search(events, m, std::regex(R"("job":2[^\n]*"duration_ms":([0-9]+))")))
      << events;
  EXPECT_LT(std::stol(m[1]), 4000) << "the timeout waited for the reader";
  // Everything arrived, in order.
  std::string expected;
  for (int i = 1; i <= 400000; ++i) expected += std::to_string(i) + "\n";
  EXPECT_NE(got.find(expected), std::string::npos) << "output lost or reordered (" << got.size() << " bytes)";
  EXPECT_NE(got.find("timed out after 2s"), std::string::npos);
  if (!k_sanitized) {
    EXPECT_LT(r.max_rss_kb, 10 * 1024) << "pcr's memory grew with the backlog";
  }
}

// A capture lost to a full TMPDIR is pcr's failure, not the job's: exit 3, not 1 (a CI
// would blame the user's code for a 1).
TEST(Faults, ACaptureLostToAFullDiskIsPcrsFailure) {
  SmallDisk disk;
  NEED_DISK(disk);
  TempDir d;
  PcrOptions o;
  o.env = {"TMPDIR=" + disk.path};
  auto r = run_yaml(d, "steps:\n  - run: seq 1 400000\n    capture: NUMS\n  - run: touch never\n", {"--no-color"}, o);
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.out.find("No space left on device"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(exit 3)\n"), std::string::npos) << r.out;
  EXPECT_FALSE(exists(d.file("never")));
}

// A failed run whose report could not be written says so too (its exit code stays 1).
TEST(Faults, AFailedRunStillSaysItsReportCouldNotBeWritten) {
  SmallDisk disk;
  NEED_DISK(disk);
  TempDir d;
  sh("head -c 1040000 /dev/zero > " + disk.path + "/filler 2>/dev/null");
  auto r = run_yaml(d, "steps:\n  - parallel: 50\n    run: echo job {n} with some output to report; exit 1\n",
                    {"--no-color", "--junit", disk.path + "/junit.xml"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.out.find("FAILED: could not write " + disk.path + "/junit.xml"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("could not write " + disk.path + "/junit.xml"), std::string::npos) << r.err;
  EXPECT_FALSE(exists(disk.path + "/junit.xml"));
}

// Whatever dies, no reader finds half a report: an engine killed with SIGKILL leaves no
// file cut short (it left both at 0 bytes), and no earlier run's report either.
TEST(Faults, AKilledRunLeavesNoEmptyOrStaleReport) {
  TempDir d;
  auto first = run_yaml(d, "steps:\n  - run: \"true\"\n", {"--junit", d.file("j.xml")});
  ASSERT_EQ(first.exit_code, 0);
  ASSERT_GT(fs::file_size(d.file("j.xml")), 0u);
  PcrOptions o;
  o.while_running = [&](pid_t supervisor) {
    ASSERT_TRUE(wait_until([&] { return exists(d.file("started")); }));
    const std::string engine = sh("pgrep -P " + std::to_string(supervisor) + " | head -1");
    ASSERT_FALSE(engine.empty());
    ::kill(std::stoi(engine), SIGKILL);
  };
  auto r = run_yaml(d, "steps:\n  - run: touch started; sleep 30\n",
                    {"--junit", d.file("j.xml"), "--html", d.file("j.html")}, o);
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  for (const char* name : {"j.xml", "j.html"})
    EXPECT_FALSE(exists(d.file(name))) << name << " left behind: " << read_file(d.file(name)).size() << " bytes";
  // Nor a temporary file beside them.
  for (const auto& e : fs::directory_iterator(d.path()))
    EXPECT_EQ(e.path().filename().string().find(".j."), std::string::npos) << e.path();
}
