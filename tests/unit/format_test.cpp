#include <pcr/report/format.hpp>
#include <pcr/report/html.hpp>
#include <pcr/util/text.hpp>

#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

using namespace pcr;
using namespace pcr::report;
using pipeline::JobStatus;
using pipeline::Millis;

TEST(Describe, TellsEveryEndingApart) {
  pipeline::JobResult r;
  EXPECT_EQ(describe(r, 0), "passed");
  r.status = JobStatus::failed, r.exit_code = 2;
  EXPECT_EQ(describe(r, 0), "failed with exit code 2");
  r.status = JobStatus::signalled, r.signal = SIGKILL;
  EXPECT_EQ(describe(r, 0), "killed by signal 9 (SIGKILL)");
  r.status = JobStatus::timed_out, r.limit = Millis(3000);
  EXPECT_EQ(describe(r, 0), "timed out after 3s");
  r.status = JobStatus::idle_timeout;
  EXPECT_EQ(describe(r, 0), "no output for 3s (idle timeout)");
  r.status = JobStatus::unexpected_output, r.detail = "no line of stdout matches /ok/";
  EXPECT_EQ(describe(r, 0), "unexpected output: no line of stdout matches /ok/");
  r = {};
  r.flaky = true;
  EXPECT_EQ(describe(r, 2), "passed on retry 2 (flaky)");
  r = {};
  r.status = JobStatus::failed, r.exit_code = 1, r.will_retry = true, r.leftovers = 2;
  EXPECT_EQ(describe(r, 0), "failed with exit code 1 (2 leftover processes killed), retrying");
}

TEST(JobLine, NoColourWhenOff) {
  pipeline::StepInfo step;
  step.jobs = 3;
  pipeline::JobInfo job;
  job.step = &step;
  job.job = 2;
  job.worker = 1;
  job.command = "make test";
  job.name = "tests #2";  // a `parallel:` job: its name does not say what ran
  pipeline::JobResult r;
  r.duration = Millis(2100);
  EXPECT_EQ(job_line(job, r, Style{false}), "✓ passed 2.1s tests #2 [n=1]  make test");
  // A for_each job leads with its item, and its command (a wrapper, say) is not shown.
  job.name = "spec/a_spec.rb";
  job.items = {"spec/a_spec.rb"};
  job.command = ".pcr/exec.sh 'docker-compose -p shop-x7k2-2' app rspec spec/a_spec.rb";
  EXPECT_EQ(job_line(job, r, Style{false}), "✓ passed 2.1s spec/a_spec.rb [n=1]");
  EXPECT_NE(job_line(job, r, Style{true}).find("\x1b[32m"), std::string::npos);
}

TEST(Banner, StepShape) {
  pipeline::StepInfo s;
  s.index = 2, s.of = 3, s.name = "tests", s.jobs = 12, s.workers = 4;
  EXPECT_EQ(banner(s, Style{false}), "━━ step 2/3: tests — 12 jobs on 4 workers");
  s.cleanup = true, s.jobs = 1, s.workers = 1;
  EXPECT_EQ(banner(s, Style{false}), "━━ cleanup 2/3: tests — 1 job on 1 worker");
}

// With hosts: where the workers are, which host a job ran on, and a job lost with its host.
TEST(Hosts, BannerJobLineAndHostDownSayWhere) {
  pipeline::StepInfo s;
  s.index = 1, s.of = 1, s.name = "specs", s.jobs = 6, s.workers = 3;
  s.worker_hosts = {"box2", "here", "box2"};
  EXPECT_EQ(banner(s, Style{false}), "━━ step 1/1: specs — 6 jobs on 3 workers (box2: 2, here: 1)");
  pipeline::JobInfo job;
  job.step = &s;
  job.job = 4, job.worker = 3, job.host = "box2", job.command = "rspec a";
  job.name = "a", job.items = {"a"};
  pipeline::JobResult r;
  r.status = JobStatus::failed, r.exit_code = 1, r.duration = Millis(1500);
  r.infrastructure = true, r.will_retry = true;
  r.detail = "host box2 stopped answering (Cannot connect): the job runs again on another host";
  EXPECT_EQ(job_line(job, r, Style{false}),
            "↻ lost with its host (failed with exit code 1): host box2 stopped answering (Cannot connect): the job "
            "runs again on another host 1.5s a [n=3 @box2]");
  pipeline::HostEvent e;
  e.name = "box2", e.address = "ssh://ci@box2", e.reason = "Cannot connect", e.hosts_left = 1;
  e.at_start = true;
  EXPECT_EQ(host_down_line(e), "host box2 (ssh://ci@box2) does not answer: Cannot connect; left out (1 host left)");
  e.at_start = false, e.step = "specs";
  EXPECT_EQ(host_down_line(e), "host box2 (ssh://ci@box2) stopped answering during step specs: Cannot connect; "
                               "quarantined, its jobs run again on the other host (1 left)");
}

TEST(StatusLine, ElidedToWidth) {
  pipeline::StepInfo s;
  s.index = 1, s.of = 1, s.name = "a very long step name indeed", s.jobs = 10;
  const std::vector<RunningJob> two = {{0, "spec/a", Millis(3'000)}, {1, "spec/b", Millis(12'000)}};
  std::string line = status_line(s, 3, two, Millis(80'000), std::nullopt, 30);
  EXPECT_EQ(util::display_width(line), 30u);
  EXPECT_EQ(status_line(s, 3, two, Millis(80'000), std::nullopt, 200),
            "[step 1/1 a very long step name indeed] 3 of 10 jobs done, 2 running, 1m20s · spec/b 12.0s, spec/a 3.0s");
  EXPECT_EQ(status_line(s, 3, {}, Millis(80'000), Millis(40'200), 200),
            "[step 1/1 a very long step name indeed] 3 of 10 jobs done, 0 running, 1m20s, ~41s left");
  EXPECT_EQ(heartbeat_line(s, 3, Millis(90'000), {}, std::nullopt),
            "… a very long step name indeed: running for 1m30s, 3 of 10 jobs done");
  std::vector<RunningJob> six;
  for (std::size_t i = 0; i < 6; ++i) six.push_back({i, "t" + std::to_string(i), Millis(1000 * (i + 1))});
  EXPECT_EQ(heartbeat_line(s, 3, Millis(90'000), six, Millis(125'000)),
            "… a very long step name indeed: running for 1m30s, 3 of 10 jobs done, ~2m05s left; running "
            "t5 (6.0s), t4 (5.0s), t3 (4.0s), t2 (3.0s) and 2 more");
}

TEST(StatusLine, NamesAJobByItsNameTerminalSafe) {
  pipeline::JobInfo j;
  j.command = "rspec \x1b[2J";
  EXPECT_EQ(running_name(j), "rspec \\e[2J");  // no name given: its command
  j.name = "spec/a, spec/b";
  j.command = ".pcr/exec.sh app rspec spec/a spec/b";
  EXPECT_EQ(running_name(j), "spec/a, spec/b");
}

// The time left of a step: running jobs' remaining records, then the queue, longest
// first, each on the worker that frees first.
TEST(TimeLeft, LaysTheRecordsOnTheWorkers) {
  const std::vector<Millis> rec = {Millis(10'000), Millis(4'000), Millis(6'000), Millis(2'000)};
  // Nothing running, 2 workers: 10 | 6+4 ... then 2 on the second: max(10, 12) = 12.
  EXPECT_EQ(time_left(rec, {}, {0, 1, 2, 3}, 2), Millis(12'000));
  // Job 0 ran 7 s of its 10, job 2 1 s of its 6: workers free at 3 and 5; 4 goes on the
  // first (7), 2 on the second (7).
  EXPECT_EQ(time_left(rec, {{0, "", Millis(7'000)}, {2, "", Millis(1'000)}}, {1, 3}, 2), Millis(7'000));
  // A job past its record has no time left, not a negative one.
  EXPECT_EQ(time_left(rec, {{0, "", Millis(30'000)}}, {}, 2), Millis(0));
  // One worker: the sum.
  EXPECT_EQ(time_left(rec, {}, {0, 1, 2, 3}, 1), Millis(22'000));
  // No record among the jobs left: no estimate.
  EXPECT_EQ(time_left({Millis(5'000), Millis(0)}, {}, {1}, 2), std::nullopt);
  EXPECT_EQ(time_left({}, {}, {0, 1}, 2), std::nullopt);
  // A job with no record counts as the median of the step's records (6 s here).
  EXPECT_EQ(time_left({Millis(2'000), Millis(6'000), Millis(9'000), Millis(0)}, {}, {0, 3}, 1), Millis(8'000));
}

TEST(Summary, ListsStepsFailuresFlakyAndVerdict) {
  Summary s;
  pipeline::StepInfo a;
  a.name = "build";
  a.jobs = 1;
  pipeline::StepResult ar;
  ar.duration = Millis(1000);
  s.steps.push_back({a, ar});
  pipeline::StepInfo b;
  b.name = "test";
  b.jobs = 3;
  pipeline::StepResult br;
  br.outcome = pipeline::StepOutcome::failed;
  br.failed = 1;
  s.steps.push_back({b, br});
  pipeline::StepInfo c;
  c.name = "deploy";
  pipeline::StepResult cr;
  cr.outcome = pipeline::StepOutcome::skipped;
  s.steps.push_back({c, cr});
  JobRecord failed{"test", pipeline::JobKind::job, 3, 3, 0, "sleep 10", {}, "foo\n", "test #3"};
  failed.result.status = JobStatus::timed_out;
  failed.result.limit = Millis(3000);
  s.failed.push_back(failed);
  s.run.exit_code = 1;
  s.run.duration = Millis(5000);
  std::string text = summary(s, Style{false});
  EXPECT_NE(text.find("✓ build"), std::string::npos) << text;
  EXPECT_NE(text.find("failed (1 of 3 jobs)"), std::string::npos) << text;
  EXPECT_NE(text.find("- deploy"), std::string::npos) << text;
  EXPECT_NE(text.find("✗ test #3 [n=3]: timed out after 3s: sleep 10"), std::string::npos) << text;
  // A for_each job is named by its item, under its step, and its command is not shown.
  JobRecord item{"test", pipeline::JobKind::job, 2, 1, 0, ".pcr/exec.sh app rspec a.rb", {}, "", "a.rb", true};
  item.result.status = JobStatus::failed;
  item.result.exit_code = 1;
  s.failed.push_back(item);
  EXPECT_NE(summary(s, Style{false}).find("✗ test › a.rb [n=1]: failed with exit code 1\n"), std::string::npos)
      << summary(s, Style{false});
  EXPECT_NE(text.find("│ foo"), std::string::npos) << text;
  EXPECT_NE(text.find("FAILED in 5.0s (exit 1)"), std::string::npos) << text;
  s.run.signal = SIGINT;
  s.run.exit_code = 130;
  EXPECT_NE(summary(s, Style{false}).find("INTERRUPTED by SIGINT"), std::string::npos);
}

// The HTML report's policy names its script by hash: the two must agree, or a browser
// blocks the script. Checked with openssl, not with pcr's own code.
TEST(Html, TheScriptsHashIsItsSha256) {
  if (std::system("command -v openssl > /dev/null") != 0) GTEST_SKIP() << "openssl is missing";
  const std::string path = "/tmp/pcr-sort-script-" + std::to_string(::getpid());
  { std::ofstream(path) << pcr::report::html_sort_script(); }
  FILE* p = ::popen(("openssl dgst -sha256 -binary '" + path + "' | base64").c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[128] = {};
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, p);
  ::pclose(p);
  ::unlink(path.c_str());
  EXPECT_EQ(std::string(buf, n), pcr::report::html_sort_hash() + "\n");
}
