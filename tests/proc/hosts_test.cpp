// The engine's hosts with real shell jobs and no docker: a "host" here is a folder, its
// env names it, and the probe asks whether the folder exists. Removing the folder is a
// host that stops answering. (tests/docker does the same with two real dockerd.)
#include "../support/support.hpp"
#include <pcr/pipeline/builder.hpp>
#include <pcr/pipeline/engine.hpp>
#include <pcr/report/format.hpp>
#include <pcr/util/text.hpp>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <map>
#include <sstream>
#include <thread>

using namespace pcr;
using namespace pcr::pipeline;
using pcr::test::TempDir;

namespace {

struct Recorder : Observer {
  struct Finished {
    std::string step, host;
    unsigned job = 0, worker = 0, attempt = 0;
    JobKind kind = JobKind::job;
    JobResult result;
  };
  std::vector<Finished> finished;
  std::vector<HostEvent> down;
  std::map<std::string, StepResult> steps;
  std::map<std::string, std::vector<std::string>> worker_hosts;
  std::vector<std::string> notes;
  void step_started(const StepInfo& s) override { worker_hosts[s.name] = s.worker_hosts; }
  void job_finished(const JobInfo& j, const JobResult& r) override {
    finished.push_back({j.step->name, j.host, j.job, j.worker, j.attempt, j.kind, r});
  }
  void step_finished(const StepInfo& s, const StepResult& r) override { steps[s.name] = r; }
  void host_down(const HostEvent& e) override { down.push_back(e); }
  void note(const pipeline::Note& n) override { notes.push_back(report::note_text(n)); }
};

// Hosts named `names` with capacities `workers`, each a folder under `dir` (made now).
Pipeline with_hosts(const TempDir& dir, const std::vector<std::string>& names,
                    const std::vector<unsigned>& workers) {
  Pipeline p;
  p.base_dir = dir.path();
  for (size_t i = 0; i < names.size(); ++i) {
    Host h;
    h.name = names[i];
    h.workers = workers[i];
    h.address = dir.file(names[i]);
    h.env = {{"FAKE_HOST", dir.file(names[i])}};
    dir.write(names[i] + "/up", "");
    p.hosts.push_back(h);
  }
  p.host_probe = "test -e \"$FAKE_HOST/up\" || { echo \"$FAKE_HOST is gone\"; exit 1; }";
  p.probe_timeout = Millis(10'000);
  return p;
}

Step shell_step(const std::string& name, const std::string& text) {
  return run_step(name, command(text));
}

// Every job end the recorder saw, one per line, for failure messages.
std::string seen(const Recorder& rec) {
  std::string out;
  for (const auto& f : rec.finished)
    out += fmt::format("{} job {} n={} on {}: status {} {}\n", f.step, f.job, f.worker, f.host,
                       static_cast<int>(f.result.status), f.result.detail);
  return out;
}

std::vector<std::string> lines(const std::string& path) {
  return util::split_lines(test::read_file(path));
}

int run_pipeline(const Pipeline& p, Recorder& rec, RunOptions o = {}) {
  o.timings = "/dev/null/none";  // nothing recorded, nothing written
  return run(p, o, rec);
}

}  // namespace

TEST(Hosts, WorkersAreSpreadByCapacityAndJobsGetTheirHost) {
  TempDir d;
  Pipeline p = with_hosts(d, {"a", "b"}, {1, 3});
  Step s = for_each_step("pool", {"1", "2", "3", "4", "5", "6", "7", "8"},
                         command("echo $CI_HOST $CI_COMMAND_NUMBER $(basename $FAKE_HOST) >> log"));
  p.steps.push_back(s);
  Recorder rec;
  // The host's env wins over pcr's own, in the probe as in the jobs.
  ::setenv("FAKE_HOST", "/nonexistent", 1);
  const int code = run_pipeline(p, rec);
  ::unsetenv("FAKE_HOST");
  ASSERT_EQ(code, 0) << seen(rec);
  EXPECT_TRUE(rec.down.empty());
  // No `workers:`: the pool is the hosts' capacity, 1 + 3, interleaved by capacity.
  EXPECT_EQ(rec.worker_hosts["pool"], (std::vector<std::string>{"b", "b", "a", "b"}));
  auto log = lines(d.file("log"));
  ASSERT_EQ(log.size(), 8u);
  for (const auto& line : log) {
    std::istringstream in(line);
    std::vector<std::string> f{std::istream_iterator<std::string>(in),
                               std::istream_iterator<std::string>()};
    ASSERT_EQ(f.size(), 3u) << line;
    EXPECT_EQ(f[0], f[2]) << "CI_HOST and the host's env agree: " << line;
    EXPECT_EQ(f[0], f[1] == "3" ? "a" : "b") << line;
  }
  EXPECT_TRUE(rec.down.empty());
}

TEST(Hosts, AnUnreachableHostIsReportedAndLeftOut) {
  TempDir d;
  Pipeline p = with_hosts(d, {"a", "gone", "b"}, {1, 5, 1});
  std::filesystem::remove_all(d.file("gone"));
  Step s = for_each_step("pool", {"1", "2", "3", "4"}, command("echo $CI_HOST >> log"));
  p.steps.push_back(s);
  Step once = shell_step("image", "echo $CI_HOST >> once");
  once.per_host = true;
  p.steps.push_back(once);
  Recorder rec;
  ASSERT_EQ(run_pipeline(p, rec), 0);
  ASSERT_EQ(rec.down.size(), 1u);
  EXPECT_EQ(rec.down[0].name, "gone");
  EXPECT_TRUE(rec.down[0].at_start);
  EXPECT_NE(rec.down[0].reason.find("is gone"), std::string::npos)
      << "the probe's own words: " << rec.down[0].reason;
  EXPECT_EQ(rec.down[0].hosts_left, 2u);
  EXPECT_EQ(rec.worker_hosts["pool"], (std::vector<std::string>{"a", "b"}))
      << "the pool is the capacity that answers";
  for (const auto& line : lines(d.file("log"))) EXPECT_NE(line, "gone");
  auto once_lines = lines(d.file("once"));
  std::sort(once_lines.begin(), once_lines.end());
  EXPECT_EQ(once_lines, (std::vector<std::string>{"a", "b"}))
      << "per_host: once on every host that answers";

  // --require-all-hosts: the same is fatal, and nothing runs.
  std::filesystem::remove(d.file("log"));
  Recorder strict;
  RunOptions o;
  o.require_all_hosts = true;
  EXPECT_EQ(run_pipeline(p, strict, o), 1);
  EXPECT_FALSE(test::exists(d.file("log")));
  EXPECT_EQ(strict.steps["pool"].outcome, StepOutcome::skipped);
}

TEST(Hosts, NoHostAnsweringSkipsTheStepsButNotCleanup) {
  TempDir d;
  Pipeline p = with_hosts(d, {"a"}, {2});
  std::filesystem::remove_all(d.file("a"));
  p.steps.push_back(shell_step("s", "touch ran"));
  p.cleanup.push_back(shell_step("c", "touch cleaned"));
  Recorder rec;
  EXPECT_EQ(run_pipeline(p, rec), 1);
  EXPECT_FALSE(test::exists(d.file("ran")));
  EXPECT_TRUE(test::exists(d.file("cleaned")));
  EXPECT_TRUE(std::any_of(rec.notes.begin(), rec.notes.end(), [](const std::string& n) {
    return n.find("no host answers") != std::string::npos;
  }));
}

// Host b stops answering while its worker runs x2: x2 is an infrastructure failure, runs
// again on a (using no retry, and not flaky), b takes no more jobs, and the run passes.
TEST(Hosts, AJobWhoseHostStopsAnsweringRunsAgainOnAnother) {
  TempDir d;
  Pipeline p = with_hosts(d, {"a", "b"}, {1, 1});
  Step s = for_each_step(
      "pool", {"x1", "x2", "x3", "x4", "x5", "x6"},
      command("if [ {items} = x2 ] && [ $CI_HOST = b ]; then rm -rf \"$FAKE_HOST\"; fi; "
              "test -e \"$FAKE_HOST/up\" || exit 3; echo {items} $CI_HOST >> log"));
  p.steps.push_back(s);
  p.steps.push_back(shell_step("after", "echo $CI_HOST >> after"));
  Recorder rec;
  ASSERT_EQ(run_pipeline(p, rec), 0) << seen(rec);
  auto log = lines(d.file("log"));
  std::sort(log.begin(), log.end());
  ASSERT_EQ(log.size(), 6u);
  EXPECT_EQ(log[1], "x2 a") << "the rerun went to a";
  ASSERT_EQ(rec.down.size(), 1u);
  EXPECT_EQ(rec.down[0].name, "b");
  EXPECT_FALSE(rec.down[0].at_start);
  EXPECT_EQ(rec.down[0].step, "pool");
  unsigned infra = 0;
  for (const auto& f : rec.finished) {
    if (!f.result.infrastructure) continue;
    ++infra;
    EXPECT_EQ(f.host, "b");
    EXPECT_TRUE(f.result.will_retry);
    EXPECT_NE(f.result.detail.find("host b stopped answering"), std::string::npos)
        << f.result.detail;
  }
  EXPECT_EQ(infra, 1u);
  for (const auto& f : rec.finished) {
    if (f.step == "pool" && f.result.status == JobStatus::passed) {
      EXPECT_FALSE(f.result.flaky);
    }
  }
  EXPECT_EQ(rec.steps["pool"].rerun, 1u);
  EXPECT_EQ(rec.steps["pool"].passed, 6u);
  EXPECT_EQ(lines(d.file("after")), std::vector<std::string>{"a"}) << "later steps leave b out";
}

// A pinned job (parallel) whose host goes away moves with its worker to another host.
TEST(Hosts, APinnedJobMovesWithItsWorker) {
  TempDir d;
  Pipeline p = with_hosts(d, {"a", "b"}, {1, 1});
  Step s =
      parallel_step("up", 2,
                    command("if [ {n} = 2 ] && [ $CI_HOST = b ]; then rm -rf \"$FAKE_HOST\"; fi; "
                            "test -e \"$FAKE_HOST/up\" || exit 3; echo {n} $CI_HOST >> log"));
  p.steps.push_back(s);
  Recorder rec;
  ASSERT_EQ(run_pipeline(p, rec), 0);
  auto log = lines(d.file("log"));
  std::sort(log.begin(), log.end());
  EXPECT_EQ(log, (std::vector<std::string>{"1 a", "2 a"}));
  EXPECT_TRUE(std::any_of(rec.notes.begin(), rec.notes.end(), [](const std::string& n) {
    return n.find("worker 2 moves from host b to host a") != std::string::npos;
  }));
}

// With no other host left, the failure stands: the step fails and says why.
TEST(Hosts, TheLastHostGoingAwayFailsTheJob) {
  TempDir d;
  Pipeline p = with_hosts(d, {"a"}, {1});
  p.steps.push_back(shell_step("s", "rm -rf \"$FAKE_HOST\"; exit 3"));
  Recorder rec;
  EXPECT_EQ(run_pipeline(p, rec), 1);
  ASSERT_FALSE(rec.finished.empty());
  const auto& r = rec.finished.back().result;
  EXPECT_EQ(r.status, JobStatus::failed);
  EXPECT_TRUE(r.infrastructure);
  EXPECT_FALSE(r.will_retry);
  EXPECT_NE(r.detail.find("no other host answers"), std::string::npos) << r.detail;
}

// A job that fails on a host that still answers is the job's failure, as without hosts.
TEST(Hosts, AFailureOnAHostThatAnswersIsTheJobs) {
  TempDir d;
  Pipeline p = with_hosts(d, {"a", "b"}, {1, 1});
  Step s = shell_step("s", "exit 4");
  s.options.retries = 1;
  p.steps.push_back(s);
  Recorder rec;
  EXPECT_EQ(run_pipeline(p, rec), 1);
  ASSERT_EQ(rec.finished.size(), 2u) << "one retry, as configured";
  for (const auto& f : rec.finished) EXPECT_FALSE(f.result.infrastructure);
  EXPECT_TRUE(rec.down.empty());
}

// When a host is quarantined, its other running jobs are stopped at once (they may wait
// forever on an engine that is gone) and run again elsewhere.
TEST(Hosts, JobsStillRunningOnAQuarantinedHostAreStoppedAndRunAgain) {
  TempDir d;
  Pipeline p = with_hosts(d, {"a", "b"}, {1, 2});  // workers: 1 b, 2 a, 3 b
  Step s = for_each_step(
      "pool", {"hang", "x", "fail"},
      command("if [ $CI_HOST = b ]; then case {items} in hang) sleep 600;; fail) rm -rf "
              "\"$FAKE_HOST\"; exit 3;; "
              "esac; fi; echo {items} $CI_HOST >> log"));
  p.steps.push_back(s);
  Recorder rec;
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(run_pipeline(p, rec), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60))
      << "the hung job was not stopped";
  auto log = lines(d.file("log"));
  std::sort(log.begin(), log.end());
  EXPECT_EQ(log, (std::vector<std::string>{"fail a", "hang a", "x a"})) << seen(rec);
  unsigned lost = 0;
  for (const auto& f : rec.finished) lost += f.result.infrastructure && f.result.will_retry;
  EXPECT_EQ(lost, 2u);
}

// An interrupt while the hosts are being probed stops the probes at once: no step runs,
// cleanup does, and the run ends 130 without waiting out the probe's bound.
TEST(Hosts, AnInterruptDuringProbingStopsTheProbes) {
  TempDir d;
  Pipeline p = with_hosts(d, {"a"}, {1});
  const std::string marker = test::unique_marker("probe");
  p.host_probe = "sleep 60; : " + marker;
  p.probe_timeout = Millis(120'000);
  p.steps.push_back(shell_step("s", "touch ran"));
  p.cleanup.push_back(shell_step("c", "touch cleaned"));
  Recorder rec;
  std::thread interrupter([&] {
    if (test::wait_until([&] { return !test::processes_with(marker).empty(); },
                         std::chrono::seconds(20)))
      ::kill(::getpid(), SIGINT);
  });
  const auto start = std::chrono::steady_clock::now();
  const int code = run_pipeline(p, rec);
  interrupter.join();
  EXPECT_EQ(code, 130);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  EXPECT_FALSE(test::exists(d.file("ran")));
  EXPECT_TRUE(test::exists(d.file("cleaned")));
  EXPECT_TRUE(rec.down.empty()) << "a stopped probe says nothing about the host";
  EXPECT_TRUE(test::processes_with(marker).empty());
}

// A per_host step that fails before it has jobs (a bad `expect`) fails cleanly.
TEST(Hosts, APerHostStepWithoutJobsFailsCleanly) {
  TempDir d;
  Pipeline p = with_hosts(d, {"a", "b"}, {1, 1});
  Step once = shell_step("image", "touch ran");
  once.per_host = true;
  once.options.expect = "(";
  p.steps.push_back(once);
  Recorder rec;
  EXPECT_EQ(run_pipeline(p, rec), 1);
  EXPECT_EQ(rec.steps["image"].outcome, StepOutcome::failed);
  EXPECT_NE(rec.steps["image"].error.find("bad regular expression"), std::string::npos);
  EXPECT_FALSE(test::exists(d.file("ran")));
}
