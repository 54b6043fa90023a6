// Nothing outlives pcr, even kill -9: of the `pcr` the user started (the engine carries
// on alone and cleans up), of the engine (the supervisor ends what it started), of both
// (`pcr clean` and the next run's warning). Real processes, real signals.
#include "../support/pcr_binary.hpp"

#include <gtest/gtest.h>

#include <regex>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

using namespace pcr::test;

namespace {

namespace fs = std::filesystem;

// Jobs that escape in every way: a double fork, setsid, and a shell that ignores SIGTERM.
// They print, so that the run has a spool folder (made on the first byte) to remove.
std::string escaping_jobs(const std::string& marker) {
  return "    run: |\n"
         "      echo job {n}\n"
         "      (sh -c 'sleep 300' " + marker + " &)\n"
         "      setsid sh -c 'sleep 310' " + marker + " &\n"
         "      touch started-{n}\n"
         "      sh -c 'trap \"\" TERM; sleep 320; true' " + marker + "\n";
}

// Both jobs of `escaping_jobs` have started all their processes.
bool escaped(const TempDir& d, const std::string& marker) {
  return wait_until([&] { return exists(d.file("started-1")) && exists(d.file("started-2")); }) &&
         wait_until([&] { return processes_with(marker).size() >= 6; });
}

std::vector<pid_t> children(pid_t pid) {
  std::vector<pid_t> out;
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  for (pid_t c; in >> c;) out.push_back(c);
  return out;
}

bool spool_left(const TempDir& d) {
  for (const auto& e : fs::directory_iterator(d.file("tmp")))
    if (e.path().filename().string().rfind("pcr-", 0) == 0) return true;
  return false;
}

// Seconds until `marker` is on no live process (or the limit).
double seconds_until_gone(const std::string& marker, std::chrono::seconds limit) {
  auto start = std::chrono::steady_clock::now();
  wait_until([&] { return processes_with(marker).empty(); }, limit);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

TEST(Lifetime, KillNineOfPcrDuringAStepEndsEverythingAndCleanupStillRuns) {
  TempDir d;
  fs::create_directories(d.file("tmp"));
  const std::string marker = unique_marker("pcrk9a");
  double gone_after = -1;
  PcrOptions o;
  o.env = {"TMPDIR=" + d.file("tmp")};
  o.while_running = [&](pid_t pid) {
    ASSERT_TRUE(escaped(d, marker));
    ::kill(pid, SIGKILL);
  };
  auto r = run_yaml(d,
                    "steps:\n  - parallel: 2\n    kill_grace: 1s\n" + escaping_jobs(marker) +
                        "  - run: touch never\ncleanup:\n  - run: touch cleaned\n",
                    {"--json", d.file("events.json")}, o);
  EXPECT_EQ(r.signal, SIGKILL);
  gone_after = seconds_until_gone(marker, std::chrono::seconds(15));
  EXPECT_TRUE(processes_with(marker).empty());
  // TERM, then KILL after the 1 s grace for the one that ignores TERM: within grace + 2 s.
  EXPECT_LT(gone_after, 3.0 + 1.0) << "slack of 1 s for a loaded machine";
  ASSERT_TRUE(wait_until([&] { return exists(d.file("cleaned")); }));
  EXPECT_FALSE(exists(d.file("never")));
  ASSERT_TRUE(wait_until([&] { return !spool_left(d); }));
  ASSERT_TRUE(wait_until([&] { return read_file(d.file("events.json")).find("\"run_end\"") != std::string::npos; }));
  const std::string events = read_file(d.file("events.json"));
  EXPECT_NE(events.find("supervisor process is gone"), std::string::npos) << events;
  // It says what happened: no SIGTERM was sent.
  EXPECT_EQ(events.find("\"kind\":\"interrupted\""), std::string::npos) << events;
  EXPECT_NE(events.find("\"signal\":null,\"supervisor_gone\":true"), std::string::npos) << events;
  EXPECT_EQ(events.find("INTERRUPTED by"), std::string::npos) << events;
  ASSERT_TRUE(wait_until([&] { return !fs::exists(d.file(".pcr/runs")) || fs::is_empty(d.file(".pcr/runs")); }));
}

TEST(Lifetime, KillNineOfPcrDuringCleanupLetsCleanupFinish) {
  TempDir d;
  fs::create_directories(d.file("tmp"));
  const std::string marker = unique_marker("pcrk9c");
  PcrOptions o;
  o.env = {"TMPDIR=" + d.file("tmp")};
  o.while_running = [&](pid_t pid) {
    ASSERT_TRUE(wait_until([&] { return exists(d.file("cleanup-started")); }));
    ::kill(pid, SIGKILL);
  };
  auto r = run_yaml(d,
                    "steps:\n  - run: 'true'\ncleanup:\n  - run: touch cleanup-started; sleep 1; "
                    "sh -c 'sleep 300' " + marker + " & touch cleaned\n  - run: touch cleaned-2\n",
                    {}, o);
  EXPECT_EQ(r.signal, SIGKILL);
  ASSERT_TRUE(wait_until([&] { return exists(d.file("cleaned-2")); }));
  EXPECT_TRUE(exists(d.file("cleaned")));
  seconds_until_gone(marker, std::chrono::seconds(10));
  EXPECT_TRUE(processes_with(marker).empty());
  ASSERT_TRUE(wait_until([&] { return !spool_left(d); }));
}

TEST(Lifetime, KillNineOfTheEngineIsCleanedUpByTheSupervisor) {
  TempDir d;
  fs::create_directories(d.file("tmp"));
  const std::string marker = unique_marker("pcrk9e");
  pid_t engine = 0;
  PcrOptions o;
  o.env = {"TMPDIR=" + d.file("tmp")};
  std::chrono::steady_clock::time_point killed;
  double took = -1;
  o.while_running = [&](pid_t pid) {
    ASSERT_TRUE(escaped(d, marker));
    auto kids = children(pid);
    ASSERT_EQ(kids.size(), 1u) << "the supervisor has one child, the engine";
    engine = kids[0];
    killed = std::chrono::steady_clock::now();
    ::kill(engine, SIGKILL);
    // TERM, then KILL after the 1 s grace for the one that ignores TERM: within grace + 2 s.
    wait_until([&] { return processes_with(marker).empty(); }, std::chrono::seconds(15));
    took = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  };
  auto r = run_yaml(d,
                    "steps:\n  - parallel: 2\n    kill_grace: 1s\n" + escaping_jobs(marker) +
                        "cleanup:\n  - run: touch cleaned\n",
                    {"--json", d.file("events.json")}, o);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("engine (pid " + std::to_string(engine) + ") was killed by SIGKILL"),
            std::string::npos) << r.err;
  EXPECT_NE(r.err.find("process(es), ran 1 cleanup step(s), removed 1 spool folder(s)"),
            std::string::npos) << r.err;
  EXPECT_TRUE(processes_with(marker).empty());
  EXPECT_LT(took, 3.0 + 1.0) << "slack of 1 s for a loaded machine";
  EXPECT_GT(took, 0.9) << "the TERM-ignoring job keeps its 1 s grace";
  EXPECT_TRUE(exists(d.file("cleaned")));
  EXPECT_FALSE(spool_left(d));
  EXPECT_NE(read_file(d.file("events.json")).find("\"event\":\"engine_died\",\"time\":\""), std::string::npos);
  // The cleanup run's summary ends with the code pcr exits with.
  EXPECT_NE(r.out.find("FAILED: pcr's engine was killed by SIGKILL"), std::string::npos) << r.out;
  // The whole run's duration (seconds: the kill came after the jobs started), not the
  // supervisor's cleanup run's few milliseconds.
  EXPECT_TRUE(std::regex_search(r.out, std::regex("killed by SIGKILL in [0-9]+\\.[0-9]s"))) << r.out;
  EXPECT_NE(r.out.find("(exit 3)\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("PASSED"), std::string::npos) << r.out;
}

// `pcr run` forks its engine before loading the pipeline; the engine hands the supervisor
// the text it loaded. Killed after the file changed on disk (here: no longer valid), the
// run still ends with the cleanup it started with, not the file as it is now.
TEST(Lifetime, AKilledEngineIsCleanedUpWithThePipelineItLoaded) {
  TempDir d;
  fs::create_directories(d.file("tmp"));
  PcrOptions o;
  o.env = {"TMPDIR=" + d.file("tmp")};
  o.while_running = [&](pid_t pid) {
    // Two jobs, so that their output is spooled as it comes (a step's only job is streamed,
    // and only its tail is written, at its end): the run has a spool folder to remove.
    ASSERT_TRUE(wait_until([&] { return exists(d.file("started-1")) && exists(d.file("started-2")) && spool_left(d); }));
    d.write("ci.yaml", "steps: [\ncleanup:\n  - run: touch new-cleanup\n");
    auto kids = children(pid);
    ASSERT_EQ(kids.size(), 1u) << "the supervisor has one child, the engine";
    ::kill(kids[0], SIGKILL);
  };
  auto r = run_yaml(d,
                    "steps:\n  - parallel: 2\n    run: echo started; touch started-{n}; sleep 300\n"
                    "cleanup:\n  - run: touch old-cleanup\n",
                    {}, o);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("ran 1 cleanup step(s), removed 1 spool folder(s)"), std::string::npos) << r.err;
  EXPECT_TRUE(exists(d.file("old-cleanup"))) << r.err;
  EXPECT_FALSE(exists(d.file("new-cleanup")));
  EXPECT_FALSE(spool_left(d));
  EXPECT_TRUE(!fs::exists(d.file(".pcr/runs")) || fs::is_empty(d.file(".pcr/runs")));
}

// The same for a C++ pipeline, whose engine is forked when run_main runs: the supervisor
// has the pipeline itself.
TEST(Lifetime, AKilledEngineOfACppPipelineIsCleanedUp) {
  TempDir d;
  fs::create_directories(d.file("tmp"));
  PcrOptions o;
  o.cwd = d.path();
  o.env = {"TMPDIR=" + d.file("tmp"), "PCR_TEST_HOLD=1"};
  o.program = PCR_API_AFTER_RUN_MAIN;
  o.while_running = [&](pid_t pid) {
    ASSERT_TRUE(wait_until([&] { return exists(d.file("started")); }));
    auto kids = children(pid);
    ASSERT_EQ(kids.size(), 1u) << "the supervisor has one child, the engine";
    ::kill(kids[0], SIGKILL);
  };
  auto r = run_pcr_once({"--no-color"}, o);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("ran 1 cleanup step(s), removed 0 spool folder(s)"), std::string::npos)
      << "its only job streams, and was killed before its tail was written\n" << r.err;
  EXPECT_TRUE(exists(d.file("cleaned"))) << r.err;
  EXPECT_EQ(occurrences(read_file(d.file("after.log")), "after run_main: 3"), 1u);
  EXPECT_FALSE(spool_left(d));
  EXPECT_TRUE(!fs::exists(d.file(".pcr/runs")) || fs::is_empty(d.file(".pcr/runs")));
}

// Before its run starts (here: opening a FIFO as its pipeline file, which blocks until a
// writer comes), the engine has nothing to clean up: an interrupt ends pcr as it would
// end one process, killed by the same signal; a kill -9 of the engine is said as such.
TEST(Lifetime, TheEngineEndedWhileLoadingEndsPcrPlainly) {
  for (const int sig : {SIGINT, SIGKILL}) {
    TempDir d;
    ASSERT_EQ(::mkfifo(d.file("ci.yaml").c_str(), 0600), 0);
    PcrOptions o;
    o.cwd = d.path();
    o.while_running = [&](pid_t pid) {
      pid_t engine = 0;
      // The engine is in open(2) on the FIFO (syscall 257, openat).
      ASSERT_TRUE(wait_until([&] {
        auto kids = children(pid);
        if (kids.size() != 1) return false;
        engine = kids[0];
        return read_file("/proc/" + std::to_string(engine) + "/syscall").rfind("257 ", 0) == 0;
      }));
      ::kill(sig == SIGINT ? pid : engine, sig);  // an interrupt goes to pcr, and on
    };
    auto r = run_pcr_once({"run", "ci.yaml"}, o);
    if (sig == SIGINT) {
      EXPECT_EQ(r.signal, SIGINT) << r.exit_code << r.err;
      EXPECT_EQ(r.err, "");
    } else {
      EXPECT_EQ(r.exit_code, 3) << r.err;
      EXPECT_NE(r.err.find("was killed by SIGKILL before the run started"), std::string::npos) << r.err;
    }
    EXPECT_FALSE(fs::exists(d.file(".pcr/runs")));
  }
}

// The engine killed during cleanup step 2 of 3: the supervisor runs steps 2 and 3, not
// the first again (a cleanup that posts a message or drops a table ran twice).
TEST(Lifetime, KillNineOfTheEngineDuringCleanupRunsOnlyWhatWasLeft) {
  TempDir d;
  fs::create_directories(d.file("tmp"));
  PcrOptions o;
  o.env = {"TMPDIR=" + d.file("tmp")};
  o.while_running = [&](pid_t pid) {
    ASSERT_TRUE(wait_until([&] { return exists(d.file("second-started")); }));
    auto kids = children(pid);
    ASSERT_EQ(kids.size(), 1u);
    ::kill(kids[0], SIGKILL);
  };
  auto r = run_yaml(d,
                    "steps:\n  - run: 'true'\ncleanup:\n  - run: echo ran >> first\n"
                    "  - run: 'echo ran >> second; [ -e second-started ] || {{ touch second-started; sleep 30; }}'\n"
                    "  - run: echo ran >> third\n",
                    {}, o);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_EQ(read_file(d.file("first")), "ran\n") << "the finished cleanup step ran again";
  EXPECT_EQ(read_file(d.file("second")), "ran\nran\n") << "the killed one runs again, whole";
  EXPECT_EQ(read_file(d.file("third")), "ran\n");
  EXPECT_NE(r.err.find("ran 2 cleanup step(s)"), std::string::npos) << r.err;
}

TEST(Lifetime, BothKilledLeavesWorkForPcrCleanAndAWarning) {
  TempDir d;
  fs::create_directories(d.file("tmp"));
  const std::string marker = unique_marker("pcrk9b");
  PcrOptions o;
  o.env = {"TMPDIR=" + d.file("tmp")};
  o.while_running = [&](pid_t pid) {
    ASSERT_TRUE(escaped(d, marker));
    // Both at once, as a machine-wide OOM kill might: stop the supervisor so that it
    // cannot act between the two kills.
    auto kids = children(pid);
    ASSERT_EQ(kids.size(), 1u);
    ::kill(pid, SIGSTOP);
    ::kill(kids[0], SIGKILL);
    ::kill(pid, SIGKILL);
  };
  auto r = run_yaml(d, "steps:\n  - parallel: 2\n    kill_grace: 1s\n" + escaping_jobs(marker), {}, o);
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_GE(processes_with(marker).size(), 6u) << "nobody was left to end them";
  EXPECT_TRUE(spool_left(d));
  PcrOptions env_only;
  env_only.env = o.env;

  // The next run says so, in one line, and runs.
  // (Another file in the same folder: ci.yaml stays as it was, for `pcr clean` to read the
  // steps' kill_grace from.)
  d.write("next.yaml", "steps:\n  - run: 'true'\n");
  env_only.cwd = d.path();
  auto next = run_pcr({"run", d.file("next.yaml")}, env_only);
  EXPECT_EQ(next.exit_code, 0) << next.err;
  EXPECT_NE(next.err.find(" process(es) and 1 spool folder(s) left behind by an earlier run"),
            std::string::npos)
      << next.err;
  EXPECT_EQ(std::count(next.err.begin(), next.err.end(), '\n'), 1) << next.err;

  auto clean = run_pcr({"clean", d.file("ci.yaml")}, env_only);
  EXPECT_EQ(clean.exit_code, 0) << clean.err;
  EXPECT_NE(clean.out.find(" process(es), removed 1 spool folder(s)"), std::string::npos)
      << clean.out;
  EXPECT_TRUE(processes_with(marker).empty());
  EXPECT_FALSE(spool_left(d));
  auto again = run_pcr({"clean", d.file("ci.yaml")}, env_only);
  EXPECT_NE(again.out.find("nothing left behind"), std::string::npos) << again.out;
}

TEST(Lifetime, BothKilledLeaveNoSecretOnDisk) {
  // What a killed run leaves (spool files, .pcr/) never holds a secret's value: the jobs'
  // output is masked before it is spooled, also a value split across two writes.
  TempDir d;
  fs::create_directories(d.file("tmp"));
  const std::string marker = unique_marker("pcrk9s");
  const std::string secret = "k9-secret-value-" + marker;
  PcrOptions o;
  o.env = {"TMPDIR=" + d.file("tmp"), "TOKEN=" + secret};
  o.while_running = [&](pid_t pid) {
    ASSERT_TRUE(wait_until([&] { return exists(d.file("printed-1")) && exists(d.file("printed-2")); }));
    auto kids = children(pid);
    ASSERT_EQ(kids.size(), 1u);
    ::kill(pid, SIGSTOP);
    ::kill(kids[0], SIGKILL);
    ::kill(pid, SIGKILL);
  };
  auto r = run_yaml(d,
                    "secrets: [TOKEN]\n"
                    "steps:\n"
                    "  - parallel: 2\n"
                    "    kill_grace: 1s\n"
                    "    run: |\n"
                    "      echo \"token: $TOKEN\"; echo \"on stderr: $TOKEN\" >&2\n"
                    "      printf 'split: '; printf %s \"$TOKEN\" | head -c 10; sleep 0.3\n"
                    "      printf %s \"$TOKEN\" | tail -c +11; echo\n"
                    "      touch printed-{n}; sh -c 'sleep 300' " + marker + "\n",
                    {}, o);
  EXPECT_EQ(r.signal, SIGKILL) << r.out << r.err;
  ASSERT_TRUE(spool_left(d));
  std::size_t spooled = 0;
  std::string seen;
  for (const auto& e : fs::recursive_directory_iterator(d.path())) {
    if (!e.is_regular_file()) continue;
    const std::string text = read_file(e.path().string());
    EXPECT_EQ(text.find(secret), std::string::npos) << e.path();
    if (text.find("token: ***") != std::string::npos && text.find("split: ***") != std::string::npos) ++spooled;
    seen += e.path().string() + ": " + text + "\n";
  }
  EXPECT_EQ(spooled, 2u) << "each job's spool holds its (masked) output:\n" << seen;
  PcrOptions env_only;
  env_only.env = o.env;
  auto clean = run_pcr({"clean", d.file("ci.yaml")}, env_only);
  EXPECT_EQ(clean.exit_code, 0) << clean.err;
  EXPECT_TRUE(processes_with(marker).empty());
}

TEST(Lifetime, PcrCleanNeverKillsAReusedPid) {
  TempDir d;
  d.write("ci.yaml", "steps:\n  - run: 'true'\n");
  const std::string marker = unique_marker("pcrreuse");
  // An unrelated process holds the pid a dead run recorded (with another start time), and
  // a leftover job of that run carries its CI_RUN_ID.
  pid_t unrelated = ::fork();
  if (unrelated == 0) {
    ::execl("/bin/sh", "sh", "-c", ("sleep 60; true " + marker + "-unrelated").c_str(), nullptr);
    _exit(127);
  }
  pid_t leftover = ::fork();
  if (leftover == 0) {
    ::setenv("CI_RUN_ID", "deadrun1", 1);
    ::execl("/bin/sh", "sh", "-c", ("sleep 60; true " + marker + "-leftover").c_str(), nullptr);
    _exit(127);
  }
  ASSERT_TRUE(wait_until([&] { return processes_with(marker).size() == 2; }));
  d.write(".pcr/runs/deadrun1.json",
          "{\"run_id\": \"deadrun1\", \"pid\": " + std::to_string(unrelated) +
              ", \"pid_start\": 1, \"engine\": " + std::to_string(unrelated) +
              ", \"engine_start\": 2, \"tmpdir\": \"" + d.file("tmp") + "\"}\n");
  auto clean = run_pcr({"clean", d.file("ci.yaml")});
  EXPECT_NE(clean.out.find("run deadrun1 (pid " + std::to_string(unrelated) + " is gone): ended 2 process(es)"),
            std::string::npos) << clean.out;
  int status = 0;
  EXPECT_EQ(::waitpid(leftover, &status, 0), leftover);
  EXPECT_TRUE(WIFSIGNALED(status)) << "the run's own leftover is ended";
  EXPECT_EQ(::waitpid(unrelated, &status, WNOHANG), 0) << "the reused pid is left alone";
  ::kill(unrelated, SIGKILL);
  ::waitpid(unrelated, &status, 0);
}

TEST(Lifetime, TimingsIntoDevNullLeaveTheDeviceAlone) {
  // Found with the supervisor: a timings save renamed a file over /dev/null (as root).
  TempDir d;
  auto r = run_yaml(d, "steps:\n  - run: 'true'\n", {"--timings", "/dev/null"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  struct stat st {};
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode)) << "/dev/null is no longer a device";
}

// A C++ program that calls run_main goes on after it once: in the process that called it
// (the supervisor), not also in the engine, which is a fork of the program. Without and
// with the supervisor, the program's own code after the run runs in exactly one process.
TEST(Lifetime, ACppProgramGoesOnAfterRunMainOnce) {
  for (const char* supervisor : {"1", "0"}) {
    TempDir d;
    const std::string out = sh("cd '" + d.path() + "' && PCR_SUPERVISOR=" + supervisor + " " +
                               PCR_API_AFTER_RUN_MAIN + " --no-color 2>&1; echo \"exit $?\"");
    EXPECT_NE(out.find("the job ran"), std::string::npos) << out;
    EXPECT_EQ(occurrences(out, "after run_main: 0"), 1u) << "PCR_SUPERVISOR=" << supervisor << "\n" << out;
    EXPECT_EQ(occurrences(read_file(d.file("after.log")), "after run_main: 0"), 1u) << out;
    EXPECT_NE(out.find("exit 0"), std::string::npos) << out;
  }
}
