// The daily loop end to end: `--rerun-failed` runs what did not pass last time, `--only`
// what matches; the other steps run as usual.
#include "../support/pcr_binary.hpp"
#include <pcr/util/text.hpp>

#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <set>

using namespace pcr::test;

namespace {

// Five tests: b and d fail while `fail-<item>` exists; each run appends what ran.
const char* k_pipeline = R"(steps:
  - name: up
    run: echo up >> ran
  - name: tests
    workers: 2
    for_each: [a, b, c, d, e]
    run: echo {items} >> ran; test ! -e fail-{items}
)";

std::multiset<std::string> ran(const TempDir& d) {
  std::multiset<std::string> out;
  for (const auto& line : pcr::util::split_lines(read_file(d.file("ran")))) out.insert(line);
  ::unlink(d.file("ran").c_str());
  return out;
}

}  // namespace

TEST(Rerun, RunsOnlyWhatFailedThenNothing) {
  TempDir d;
  d.write("fail-b", "");
  d.write("fail-d", "");
  auto first = run_yaml(d, k_pipeline, {"--no-color"});
  EXPECT_EQ(first.exit_code, 1) << first.out;
  EXPECT_EQ(ran(d).size(), 6u);
  // Fixed one of the two: the rerun runs exactly b and d, and the step before them.
  ::unlink(d.file("fail-b").c_str());
  auto second = run_yaml(d, k_pipeline, {"--no-color", "--rerun-failed"});
  EXPECT_EQ(second.exit_code, 1) << second.out;
  EXPECT_EQ(ran(d), (std::multiset<std::string>{"up", "b", "d"}));
  EXPECT_NE(second.out.find("tests: running 2 of its 5 items (--rerun-failed)"), std::string::npos) << second.out;
  // Now only d failed.
  ::unlink(d.file("fail-d").c_str());
  auto third = run_yaml(d, k_pipeline, {"--no-color", "--rerun-failed"});
  EXPECT_EQ(third.exit_code, 0) << third.out;
  EXPECT_EQ(ran(d), (std::multiset<std::string>{"up", "d"}));
  // Everything passed: nothing to run, and it says so.
  auto fourth = run_yaml(d, k_pipeline, {"--no-color", "--rerun-failed"});
  EXPECT_EQ(fourth.exit_code, 0) << fourth.out;
  EXPECT_NE(fourth.out.find("nothing failed in the last run"), std::string::npos) << fourth.out;
  EXPECT_TRUE(ran(d).empty());
}

TEST(Rerun, AnInterruptedRunsNeverStartedItemsRunAgain) {
  TempDir d;
  const std::string yaml = R"(steps:
  - name: tests
    workers: 1
    for_each: [a, b, c]
    run: echo {items} >> ran; if [ {items} = a ] && [ ! -e again ]; then touch started; sleep 30; fi
)";
  PcrOptions o;
  o.while_running = [&](pid_t pid) {
    ASSERT_TRUE(wait_until([&] { return exists(d.file("started")); }));
    ::kill(pid, SIGINT);
  };
  auto first = run_yaml(d, yaml, {"--no-color"}, o);
  EXPECT_EQ(first.exit_code, 130) << first.out;
  EXPECT_EQ(ran(d), (std::multiset<std::string>{"a"}));
  d.write("again", "");
  auto second = run_yaml(d, yaml, {"--no-color", "--rerun-failed"});
  EXPECT_EQ(second.exit_code, 0) << second.out;
  EXPECT_EQ(ran(d), (std::multiset<std::string>{"a", "b", "c"})) << "cancelled and never started run again";
}

// Each shard keeps its own record: a shard's rerun runs its own failures only.
TEST(Rerun, WorksPerShard) {
  TempDir d;
  for (const char* item : {"a", "b", "c", "d", "e"}) d.write(std::string("fail-") + item, "");
  // Each shard with timings of its own, as on separate machines: the same partition.
  auto one = run_yaml(d, k_pipeline, {"--no-color", "--shard", "1/2", "--timings", d.file("t1.json")});
  EXPECT_EQ(one.exit_code, 1);
  auto shard1 = ran(d);
  shard1.erase("up");
  auto two = run_yaml(d, k_pipeline, {"--no-color", "--shard", "2/2", "--timings", d.file("t2.json")});
  EXPECT_EQ(two.exit_code, 1);
  auto shard2 = ran(d);
  shard2.erase("up");
  ASSERT_EQ(shard1.size() + shard2.size(), 5u);
  auto again = run_yaml(d, k_pipeline, {"--no-color", "--shard", "2/2", "--rerun-failed", "--timings", d.file("t2.json")});
  EXPECT_EQ(again.exit_code, 1);
  auto rerun = ran(d);
  rerun.erase("up");
  EXPECT_EQ(rerun, shard2) << again.out;
}

// A failed `parallel:` step reruns whole; batches rerun the items of the failed batch.
TEST(Rerun, AFailedParallelStepRerunsWhole) {
  TempDir d;
  d.write("fail-x", "");
  const std::string yaml = R"(steps:
  - name: setup
    parallel: 2
    run: echo p{n} >> ran; test {n} = 1 || test ! -e fail-x
  - name: tests
    for_each: [a, b, c, d]
    batch: 2
    run: echo {items} >> ran; for i in {items}; do test ! -e fail-$i || exit 1; done
)";
  auto first = run_yaml(d, yaml, {"--no-color"});
  EXPECT_EQ(first.exit_code, 1);
  EXPECT_EQ(ran(d), (std::multiset<std::string>{"p1", "p2"}));
  ::unlink(d.file("fail-x").c_str());
  d.write("fail-c", "");
  auto second = run_yaml(d, yaml, {"--no-color", "--rerun-failed"});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_EQ(ran(d), (std::multiset<std::string>{"p1", "p2", "a b", "c d"})) << "the tests never ran: all of them";
  ::unlink(d.file("fail-c").c_str());
  auto third = run_yaml(d, yaml, {"--no-color", "--rerun-failed"});
  EXPECT_EQ(third.exit_code, 0) << third.out;
  EXPECT_EQ(ran(d), (std::multiset<std::string>{"p1", "p2", "c d"}));
}

TEST(Only, RunsTheMatchingItemsAndEveryOtherStep) {
  TempDir d;
  auto r = run_yaml(d, k_pipeline, {"--no-color", "--only", "[bd]", "--only", "e*"});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(ran(d), (std::multiset<std::string>{"up", "b", "d", "e"}));
  EXPECT_NE(r.out.find("tests: running 3 of its 5 items (--only)"), std::string::npos) << r.out;
  // A filtered run merges into the record: b's earlier failure is kept until b runs.
  d.write("fail-b", "");
  EXPECT_EQ(run_yaml(d, k_pipeline, {"--no-color", "--only", "b"}).exit_code, 1);
  ran(d);
  EXPECT_EQ(run_yaml(d, k_pipeline, {"--no-color", "--only", "a"}).exit_code, 0);
  ran(d);
  auto rerun = run_yaml(d, k_pipeline, {"--no-color", "--rerun-failed"});
  EXPECT_EQ(rerun.exit_code, 1);
  EXPECT_EQ(ran(d), (std::multiset<std::string>{"up", "b"})) << rerun.out;
}

// `kill -USR1` by habit (as for `dd`) asks what is running: both running jobs' names and
// output tails are printed while they run, and the run goes on to pass.
TEST(Status, Usr1PrintsTheRunningJobsAndTheRunGoesOn) {
  TempDir d;
  PcrOptions o;
  o.while_running = [&](pid_t pid) {
    ASSERT_TRUE(wait_until([&] { return exists(d.file("go-a")) && exists(d.file("go-b")); }));
    ::kill(pid, SIGUSR1);
    ASSERT_TRUE(wait_until([&] { return read_file(d.file("events.jsonl")).find("\"status\"") != std::string::npos; }));
    d.write("finish", "");
  };
  auto r = run_yaml(d, R"(steps:
  - name: tests
    workers: 2
    timeout: 60s
    for_each: [a, b]
    run: echo working on {items}; touch go-{items}; while [ ! -e finish ]; do sleep 0.05; done
)",
                    {"--no-color", "--json", d.file("events.jsonl")}, o);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("pcr: status: 2 jobs running in step tests"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("│ working on a"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("│ working on b"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("to its timeout"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("PASSED"), std::string::npos) << r.out;
  // The status came before the jobs ended, not after.
  EXPECT_LT(r.out.find("pcr: status:"), r.out.find("✓ passed")) << r.out;
}

// Signals a user may send by habit never end a run silently: SIGUSR2 is a status
// request too.
TEST(Status, Usr2IsAStatusRequestToo) {
  TempDir d;
  PcrOptions o;
  o.while_running = [&](pid_t pid) {
    ASSERT_TRUE(wait_until([&] { return exists(d.file("started")); }));
    ::kill(pid, SIGUSR2);
    ASSERT_TRUE(wait_until([&] { return read_file(d.file("events.jsonl")).find("\"status\"") != std::string::npos; }));
    d.write("finish", "");
  };
  auto r = run_yaml(d, "steps:\n  - run: touch started; while [ ! -e finish ]; do sleep 0.05; done\n",
                    {"--no-color", "--json", d.file("events.jsonl")}, o);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

// `slow:` prints a SLOW line at each period of a job's life, on the console and as a
// `job_slow` event.
TEST(Slow, ASlowJobIsToldAtEachPeriod) {
  TempDir d;
  auto r = run_yaml(d, R"(steps:
  - name: tests
    slow: 300ms
    for_each: [quick, lingering]
    run: if [ {items} = lingering ]; then echo still here; sleep 1.1; fi
)",
                    {"--no-color", "--json", d.file("events.jsonl")});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  const std::string events = read_file(d.file("events.jsonl"));
  std::size_t slow = 0;
  for (auto at = events.find("\"job_slow\""); at != std::string::npos; at = events.find("\"job_slow\"", at + 1)) ++slow;
  EXPECT_GE(slow, 3u) << events;  // at 0.3, 0.6 and 0.9 s of a 1.1 s job
  EXPECT_LE(slow, 4u) << events;
  EXPECT_NE(r.out.find("SLOW lingering"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("still running after"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("last: still here"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("SLOW quick"), std::string::npos) << r.out;
}
