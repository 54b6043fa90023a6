#include "../support/support.hpp"
#include <pcr/proc/process.hpp>

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>

using namespace pcr;
using namespace pcr::proc;
using pcr::test::TempDir;
using namespace std::chrono_literals;

extern char** environ;

namespace {

struct Outcome {
  Exit exit;
  std::string output;   // as streamed through on_output
  std::string spooled;  // as written to the spool file
  std::string stdout_only;
  int exits = 0;
};

std::vector<std::string> our_env() {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) env.emplace_back(*e);
  return env;
}

// Run `spec` to its end on a fresh loop; with `stdout_file`, its stdout spooled alone too.
Outcome run_one(Spawn spec, const std::function<void(ProcessSet&, ProcessSet::Id)>& after_spawn = nullptr,
                bool stdout_file = true, std::vector<std::string> secrets = {}) {
  TempDir dir;
  if (spec.env.empty()) spec.env = our_env();
  spec.spool_path = dir.file("job.log");
  if (stdout_file) spec.stdout_path = dir.file("job.out");
  Outcome out;
  Loop loop;
  {
    ProcessSet set(loop);
    set.mask(std::move(secrets));
    auto id = set.spawn(
        spec, [&](Stream, std::string_view data) { out.output.append(data); },
        [&](const Exit& e) {
          out.exit = e;
          ++out.exits;
          loop.stop();
        });
    if (after_spawn) after_spawn(set, id);
    loop.run();
  }
  out.spooled = test::read_file(dir.file("job.log"));
  out.stdout_only = test::read_file(dir.file("job.out"));
  return out;
}

Spawn job(std::string command) {
  Spawn s;
  s.command = std::move(command);
  return s;
}

}  // namespace

TEST(ProcessSet, ReportsExitCodes) {
  for (int code : {0, 1, 3, 42, 255}) {
    auto o = run_one(job("exit " + std::to_string(code)));
    EXPECT_EQ(o.exit.exit_code, code);
    EXPECT_EQ(o.exit.signal, 0);
    EXPECT_EQ(o.exits, 1);
  }
}

TEST(ProcessSet, ReportsTheKillingSignal) {
  auto o = run_one(job("kill -KILL $$"));
  EXPECT_EQ(o.exit.signal, SIGKILL);
  EXPECT_FALSE(o.exit.timed_out);
  EXPECT_FALSE(o.exit.stopped);
}

TEST(ProcessSet, SpoolsBothStreamsAndStdoutAlone) {
  auto o = run_one(job("echo out1; echo err1 >&2; echo out2"));
  EXPECT_EQ(o.output.size(), o.spooled.size());
  EXPECT_NE(o.spooled.find("err1"), std::string::npos);
  EXPECT_EQ(o.stdout_only, "out1\nout2\n");
  EXPECT_EQ(o.exit.bytes, o.spooled.size());
}

// spool_tail: the spool keeps the last bytes only, in order, however the output came in
// pieces (smaller than the tail, straddling its end, one larger than it), from a line's
// start; every byte still streams through.
TEST(ProcessSet, SpoolTailKeepsTheLastBytesInOrder) {
  for (const char* command :
       {"printf 0123; sleep 0.05; printf 4567; sleep 0.05; printf 89abcdef",  // pieces wrap the ring
        "printf 0123456789abcdef",                                          // one piece, larger
        "printf 0123; sleep 0.05; printf 456789abcdef",                     // a small one, then larger
        "printf abc"}) {                                                     // never full
    Spawn s = job(command);
    s.spool_tail = 10;
    auto o = run_one(s);
    const std::string all = o.output;
    // A tail that lost its start drops its cut first part: with no newline, its first
    // eighth (here 1 byte of 10).
    EXPECT_EQ(o.spooled, all.size() > 10 ? all.substr(all.size() - 9) : all) << command;
    EXPECT_EQ(o.exit.bytes, all.size());
  }
  // With newlines, the cut line goes: it may be the end of a secret nothing can recognise.
  Spawn lines = job("printf 'aaaa\\nbbbbbbbb\\ncc'");
  lines.spool_tail = 10;
  EXPECT_EQ(run_one(lines).spooled, "cc");
  auto silent = run_one([] {
    Spawn s = job("true");
    s.spool_tail = 10;
    return s;
  }());
  EXPECT_EQ(silent.spooled, "");
}

// Without a stdout file both streams share one pipe: the spool has them exactly in the
// order written (two pipes read in turn gave all of stdout's lines, then stderr's).
TEST(ProcessSet, SecretsAreMaskedBeforeTheSpoolAndTheStream) {
  // Split across two writes a read apart, and on stderr: the spool (on disk, where a killed
  // run may leave it) and on_output both get the masked text, the same bytes; the stdout
  // file, which a step reads for items or captured values, keeps what was printed.
  const std::string script = "printf 'a hunter2'; sleep 0.3; printf -- '-secret b\\n'; printf 'c hunter2-secret' >&2";
  for (std::size_t tail : {std::size_t{0}, std::size_t{64}}) {
    Spawn spec = job(script);
    spec.spool_tail = tail;
    auto o = run_one(spec, nullptr, true, {"hunter2-secret"});
    EXPECT_EQ(o.spooled, "a *** b\nc ***") << "tail " << tail;
    EXPECT_EQ(o.output, o.spooled) << "tail " << tail;
    EXPECT_EQ(o.stdout_only, "a hunter2-secret b\n") << "tail " << tail;
  }
}

TEST(ProcessSet, StdoutAndStderrKeepTheirOrder) {
  auto o = run_one(job("for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done"), nullptr, false);
  const std::string expected = "out1\nerr1\nout2\nerr2\nout3\nerr3\nout4\nerr4\nout5\nerr5\n";
  EXPECT_EQ(o.spooled, expected);
  EXPECT_EQ(o.output, expected);
}

// discard_output: the job's stdout and stderr are /dev/null itself (no pipe), nothing is
// spooled or streamed, and exit codes, timeouts and the group kill still hold.
TEST(ProcessSet, DiscardedOutputGoesStraightToDevNull) {
  TempDir dir;
  // The shell's own fds, read in a command substitution (a redirection would show itself).
  Spawn s = job("a=$(readlink /proc/$$/fd/1); b=$(readlink /proc/$$/fd/2); echo \"$a\" > '" +
                dir.file("fd1") + "'; echo \"$b\" > '" + dir.file("fd2") + "'; echo lost; echo lost >&2; exit 3");
  s.discard_output = true;
  auto o = run_one(s);
  EXPECT_EQ(o.exit.exit_code, 3);
  EXPECT_EQ(test::read_file(dir.file("fd1")), "/dev/null\n");
  EXPECT_EQ(test::read_file(dir.file("fd2")), "/dev/null\n");
  EXPECT_EQ(o.output, "");
  EXPECT_EQ(o.spooled, "");
  EXPECT_EQ(o.exit.bytes, 0u);

  Spawn slow = job("sleep 30 & sleep 30");
  slow.discard_output = true;
  slow.timeout = 200ms;
  const auto start = Clock::now();
  auto t = run_one(slow);
  EXPECT_TRUE(t.exit.timed_out);
  EXPECT_LT(Clock::now() - start, 5s);
}

TEST(ProcessSet, SpoolFilesAreTheUsersOnly) {
  TempDir dir;
  Loop loop;
  ProcessSet set(loop);
  Spawn s = job("echo hi");
  s.env = our_env();
  s.spool_path = dir.file("a.log");
  set.spawn(s, nullptr, [&](const Exit&) { loop.stop(); });
  loop.run();
  struct stat st {};
  ASSERT_EQ(::stat(dir.file("a.log").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// The run's spool folder is made when the first spool byte is written (0700), never for
// processes that print nothing; one already there is refused, as mkdtemp's name would be.
TEST(ProcessSet, TheSpoolFolderIsMadeOnTheFirstByte) {
  TempDir dir;
  const std::string folder_path = dir.file("spool");
  SpoolFolder folder;
  folder.reset(folder_path, false);
  Loop loop;
  ProcessSet set(loop);
  set.spool_in(&folder);
  auto run = [&](const std::string& command, const std::string& name) {
    Spawn s = job(command);
    s.env = our_env();
    s.spool_path = folder_path + "/" + name + ".log";
    Exit exit;
    set.spawn(s, nullptr, [&](const Exit& e) {
      exit = e;
      loop.stop();
    });
    loop.run();
    return exit;
  };
  EXPECT_EQ(run("true", "silent").spool_error, "");
  EXPECT_FALSE(folder.made());
  EXPECT_FALSE(test::exists(folder_path));
  EXPECT_EQ(run("echo hi", "speaks").spool_error, "");
  EXPECT_TRUE(folder.made());
  struct stat st {};
  ASSERT_EQ(::stat(folder_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(test::read_file(folder_path + "/speaks.log"), "hi\n");

  // Someone else's folder under that name: not written into.
  const std::string taken = dir.file("taken");
  ASSERT_EQ(::mkdir(taken.c_str(), 0777), 0);
  folder.reset(taken, false);
  const Exit refused = run("echo hi", "x");
  EXPECT_NE(refused.spool_error.find("File exists"), std::string::npos) << refused.spool_error;
  EXPECT_FALSE(test::exists(taken + "/x.log"));
}

TEST(ProcessSet, StdinIsDevNull) {
  auto start = Clock::now();
  auto o = run_one(job("cat; echo read-eof"));
  EXPECT_EQ(o.exit.exit_code, 0);
  EXPECT_EQ(o.output, "read-eof\n");
  EXPECT_LT(Clock::now() - start, 5s);
}

TEST(ProcessSet, TimeoutKillsTheWholeTree) {
  std::string marker = test::unique_marker("pcrtree");
  Spawn s = job("sh -c 'sleep 300; : " + marker + "' & sh -c 'sh -c \"sleep 300; : " + marker +
                "\"; :' & sleep 300; : " + marker);
  s.timeout = 300ms;
  s.kill_grace = 2s;
  auto o = run_one(s);
  EXPECT_TRUE(o.exit.timed_out);
  EXPECT_EQ(o.exit.signal, SIGTERM);
  EXPECT_LT(o.exit.duration, 2s);  // SIGTERM was enough: no wait for the grace
  EXPECT_TRUE(test::wait_until([&] { return test::processes_with(marker).empty(); }, 3s))
      << "processes survived the timeout";
}

TEST(ProcessSet, TermIgnoringJobIsKilledAfterTheGrace) {
  Spawn s = job("trap '' TERM; while :; do sleep 0.05; done");
  s.timeout = 200ms;
  s.kill_grace = 500ms;
  auto o = run_one(s);
  EXPECT_TRUE(o.exit.timed_out);
  EXPECT_EQ(o.exit.signal, SIGKILL);
  EXPECT_GE(o.exit.duration, 700ms);
  EXPECT_LT(o.exit.duration, 3s);
}

TEST(ProcessSet, BackgroundChildHoldingThePipeDoesNotHang) {
  std::string marker = test::unique_marker("pcrbg");
  TempDir dir;
  std::string ready = dir.file("ready");
  // The shell exits as soon as its background child runs; the child keeps stdout open.
  auto o = run_one(job("sh -c 'touch " + ready + "; sleep 30; : " + marker + "' & while [ ! -e " + ready +
                       " ]; do sleep 0.01; done; echo done"));
  EXPECT_EQ(o.exit.exit_code, 0);
  EXPECT_EQ(o.output, "done\n");
  EXPECT_GE(o.exit.leftovers, 1);
  EXPECT_LT(o.exit.duration, 1s);
  EXPECT_TRUE(test::wait_until([&] { return test::processes_with(marker).empty(); }, 2s));
}

TEST(ProcessSet, IdleTimeoutFailsASilentJob) {
  Spawn s = job("echo started; sleep 30");
  s.idle_timeout = 300ms;
  s.kill_grace = 1s;
  auto o = run_one(s);
  EXPECT_TRUE(o.exit.idle_timed_out);
  EXPECT_FALSE(o.exit.timed_out);
  EXPECT_EQ(o.output, "started\n");
}

TEST(ProcessSet, IdleTimeoutSparesAChattyJob) {
  Spawn s = job("for i in 1 2 3 4 5 6; do echo $i; sleep 0.1; done");
  s.idle_timeout = 400ms;
  auto o = run_one(s);
  EXPECT_FALSE(o.exit.idle_timed_out);
  EXPECT_EQ(o.exit.exit_code, 0);
}

TEST(ProcessSet, StopIsReportedAsStopped) {
  Spawn s = job("sleep 30");
  auto o = run_one(s, [](ProcessSet& set, ProcessSet::Id id) { set.stop(id, false); });
  EXPECT_TRUE(o.exit.stopped);
  EXPECT_EQ(o.exit.signal, SIGTERM);
  auto k = run_one(job("trap '' TERM; sleep 30"), [](ProcessSet& set, ProcessSet::Id id) { set.stop(id, true); });
  EXPECT_EQ(k.exit.signal, SIGKILL);
}

TEST(ProcessSet, SpawnFailureIsReportedNotThrown) {
  Spawn s = job("true");
  s.workdir = "/nonexistent/folder";
  auto o = run_one(s);
  EXPECT_FALSE(o.exit.spawn_error.empty());
  EXPECT_EQ(o.exits, 1);
}

TEST(ProcessSet, JobsGetDefaultSignalsAndAnEmptyMask) {
  // pcr ignores SIGPIPE and the loop watches SIGTERM; jobs must not inherit either.
  auto old = ::signal(SIGPIPE, SIG_IGN);
  sigset_t block, previous;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  ::sigprocmask(SIG_BLOCK, &block, &previous);
  auto pipe = run_one(job("kill -PIPE $$; echo survived"));
  auto usr1 = run_one(job("kill -USR1 $$; echo survived"));
  ::sigprocmask(SIG_SETMASK, &previous, nullptr);
  ::signal(SIGPIPE, old);
  EXPECT_EQ(pipe.exit.signal, SIGPIPE);
  EXPECT_EQ(usr1.exit.signal, SIGUSR1);
}

TEST(ProcessSet, OrphansThatLeftTheGroupAreKilledAtTheEnd) {
  ASSERT_TRUE(ProcessSet::become_subreaper());
  std::string marker = test::unique_marker("pcrescape");
  Loop loop;
  ProcessSet set(loop);
  TempDir dir;
  std::string ready = dir.file("ready");
  Spawn s = job("setsid sh -c 'touch " + ready + "; sleep 300; : " + marker + "' > /dev/null 2>&1 & while [ ! -e " +
                ready + " ]; do sleep 0.01; done");
  s.env = our_env();
  set.spawn(s, nullptr, [&](const Exit&) { loop.stop(); });
  loop.run();
  ASSERT_TRUE(test::wait_until([&] { return !test::processes_with(marker).empty(); }, 2s));
  EXPECT_GE(set.kill_orphans(), 1);
  EXPECT_TRUE(test::processes_with(marker).empty());
}

TEST(ProcessSet, ManyJobsAtOnce) {
  Loop loop;
  ProcessSet set(loop);
  int ended = 0, passed = 0;
  auto env = our_env();
  const int total = 400;
  for (int i = 0; i < total; ++i) {
    Spawn s = job("echo " + std::to_string(i));
    s.env = env;
    set.spawn(s, nullptr, [&](const Exit& e) {
      ++ended;
      passed += e.exit_code == 0 && e.bytes > 0;
      if (ended == total) loop.stop();
    });
  }
  loop.run();
  EXPECT_EQ(passed, total);
}

TEST(ProcessSet, GroupKeepsItsGraceAfterTheShellDiesOfSigterm) {
  // The shell dies of SIGTERM at once; its child traps TERM and needs a moment to clean
  // up. SIGKILL must wait for the grace, not follow the shell's death.
  TempDir dir;
  std::string ready = dir.file("ready"), cleaned = dir.file("cleaned");
  Spawn s = job("sh -c 'trap \"sleep 0.3; touch " + cleaned + "; exit 0\" TERM; touch " + ready +
                "; while :; do sleep 0.05; done' & while [ ! -e " + ready + " ]; do sleep 0.01; done; wait");
  s.timeout = 300ms;
  s.kill_grace = 5s;
  auto o = run_one(s);
  EXPECT_TRUE(o.exit.timed_out);
  EXPECT_TRUE(test::exists(cleaned)) << "the child's TERM trap was cut short";
  EXPECT_LT(o.exit.duration, 3s) << "waited for the whole grace instead of the group";
}

// libuv starts a timer from its cached loop time, which lags by what the current
// iteration has spent: a slow iteration (many jobs started at once) made the timeouts of
// the jobs it started fire early. Here the iteration is made slow on purpose, before the
// spawn: the job, well within its timeout, must not be reported timed out.
TEST(ProcessSet, TimeoutNeverFiresBeforeItsTime) {
  Loop loop;
  Exit got;
  {
    ProcessSet set(loop);
    loop.post([&] {
      const auto until = Clock::now() + 400ms;  // a slow iteration: the cached time goes stale
      while (Clock::now() < until) {
      }
      Spawn s = job("sleep 0.5");
      s.env = our_env();
      s.timeout = 700ms;
      set.spawn(s, nullptr, [&](const Exit& e) {
        got = e;
        loop.stop();
      });
    });
    loop.run();
  }
  EXPECT_FALSE(got.timed_out) << "timed out after " << got.duration.count() << " ms of a 700 ms timeout";
  EXPECT_EQ(got.exit_code, 0);
  EXPECT_GE(got.duration, 500ms);
}

// A one-shot loop timer (the pipeline's timeout) is never early either.
TEST(Loop, OneShotTimerNeverFiresEarly) {
  Loop loop;
  Clock::time_point set_at, fired_at;
  loop.post([&] {
    const auto until = Clock::now() + 300ms;
    while (Clock::now() < until) {
    }
    set_at = Clock::now();
    loop.add_timer(200ms, 0ms, [&] {
      fired_at = Clock::now();
      loop.stop();
    });
  });
  loop.run();
  EXPECT_GE(fired_at - set_at, 200ms);
}

// Job control: a paused job is stopped (state T), its stopped time counts against no
// timeout, and it finishes once resumed.
TEST(ProcessSet, PausedJobsAreStoppedAndTheirTimeoutWaits) {
  Loop loop;
  Exit got;
  char state_paused = '?';
  {
    ProcessSet set(loop);
    Spawn s = job("echo $$ > /dev/null; sleep 0.4");
    s.env = our_env();
    s.timeout = 800ms;
    set.spawn(s, nullptr, [&](const Exit& e) {
      got = e;
      loop.stop();
    });
    loop.add_timer(100ms, 0ms, [&] {
      set.pause();
      // The shell (the group's leader) stops: its state in /proc says so (SIGSTOP is
      // delivered asynchronously: waited for, bounded).
      test::wait_until([&] {
        for (pid_t p : all_pids()) {
          char st;
          int ppid, pgrp;
          std::string stat = test::read_file("/proc/" + std::to_string(p) + "/stat");
          auto paren = stat.rfind(')');
          if (paren == std::string::npos || paren + 2 >= stat.size()) continue;
          if (std::sscanf(stat.c_str() + paren + 2, "%c %d %d", &st, &ppid, &pgrp) == 3 && ppid == ::getpid() &&
              p == pgrp)
            state_paused = st;
        }
        return state_paused == 'T';
      });
      // Stopped for longer than the whole timeout: it must not count.
      loop.add_timer(1000ms, 0ms, [&] { set.resume(); });
    });
    loop.run();
  }
  EXPECT_EQ(state_paused, 'T');
  EXPECT_FALSE(got.timed_out) << "the stopped second counted against the timeout";
  EXPECT_EQ(got.exit_code, 0);
  EXPECT_LT(got.duration, 800ms) << "the stopped time is not the job's";
}

// Lines of a job that writes a little at a time are read in batches (a paused read), but
// never later than live output may lag: each line reaches on_output within 100 ms of
// being written.
TEST(ProcessSet, ALineReachesTheObserverWithin100ms) {
  Loop loop;
  std::vector<double> lags;
  {
    ProcessSet set(loop);
    Spawn s = job("for i in 1 2 3 4 5; do date +%s.%N; sleep 0.2; done");
    s.env = our_env();
    std::string partial;
    set.spawn(
        s,
        [&](Stream, std::string_view data) {
          const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
          partial.append(data);
          for (std::size_t nl; (nl = partial.find('\n')) != std::string::npos; partial.erase(0, nl + 1))
            lags.push_back(now - std::stod(partial.substr(0, nl)));
        },
        [&](const Exit&) { loop.stop(); });
    loop.run();
  }
  ASSERT_EQ(lags.size(), 5u);
  for (double lag : lags) EXPECT_LT(lag, 0.1) << "a line came " << lag << " s after it was written";
}

// A chatty job's lines are batched, yet its idle timeout only counts real silence: a line
// every 10 ms for 2 s never trips an idle timeout of 300 ms.
TEST(ProcessSet, BatchedReadsNeverTripAnIdleTimeout) {
  Spawn s = job("i=0; while [ $i -lt 200 ]; do echo line $i; sleep 0.01; i=$((i+1)); done");
  s.idle_timeout = 300ms;
  auto out = run_one(s);
  EXPECT_FALSE(out.exit.idle_timed_out);
  EXPECT_EQ(out.exit.exit_code, 0);
  EXPECT_NE(out.output.find("line 199\n"), std::string::npos);
}
