// Interrupts end to end: a real signal to the real binary, cleanup observed on disk.
#include "../support/pcr_binary.hpp"

#include <gtest/gtest.h>

#include <signal.h>

#include <regex>

using namespace pcr::test;

namespace {

struct Case {
  int signal;
  int exit_code;
};

class Interrupt : public ::testing::TestWithParam<Case> {};

}  // namespace

TEST_P(Interrupt, StopsJobsRunsCleanupAndExitsWithTheSignalsCode) {
  TempDir d;
  std::string marker = unique_marker("pcrint");
  PcrOptions o;
  o.while_running = [&](pid_t pid) {
    ASSERT_TRUE(wait_until([&] { return exists(d.file("started")); }));
    ::kill(pid, GetParam().signal);
  };
  auto r = run_yaml(d, "steps:\n  - parallel: 2\n    run: touch started; sleep 30; true " + marker +
                           "\n  - run: touch never\ncleanup:\n  - run: touch cleaned\n",
                    {}, o);
  EXPECT_EQ(r.exit_code, GetParam().exit_code) << r.out << r.err;
  EXPECT_TRUE(exists(d.file("cleaned")));
  EXPECT_FALSE(exists(d.file("never")));
  EXPECT_TRUE(processes_with(marker).empty());
  EXPECT_LT(r.seconds, 10);
  EXPECT_NE(r.out.find("INTERRUPTED"), std::string::npos) << r.out;
}

INSTANTIATE_TEST_SUITE_P(Signals, Interrupt,
                         ::testing::Values(Case{SIGINT, 130}, Case{SIGTERM, 143}, Case{SIGHUP, 129}, Case{SIGQUIT, 131}),
                         [](const ::testing::TestParamInfo<Case>& param) {
                           return std::string(sigabbrev_np(param.param.signal));
                         });

TEST(Interrupt, SecondInterruptKillsCleanupJobsAtOnceAndMovesOn) {
  TempDir d;
  PcrOptions o;
  o.while_running = [&](pid_t pid) {
    ASSERT_TRUE(wait_until([&] { return exists(d.file("started")); }));
    ::kill(pid, SIGINT);
    ASSERT_TRUE(wait_until([&] { return exists(d.file("c1")); }));
    ::kill(pid, SIGINT);
  };
  auto r = run_yaml(d, R"(
steps:
  - run: touch started; sleep 30
cleanup:
  - name: stubborn
    run: trap '' TERM INT; touch c1; sleep 60
  - name: after
    run: touch c2
)",
                    {"--json", d.file("events.json")}, o);
  EXPECT_EQ(r.exit_code, 130) << r.out;
  EXPECT_TRUE(exists(d.file("c2")));
  EXPECT_LT(r.seconds, 8) << "the second interrupt waited for the grace";
  // The killed cleanup step reads as interrupted everywhere, not passed.
  EXPECT_NE(r.out.find(" stubborn"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("stubborn                       passed"), std::string::npos) << r.out;
  const std::regex summary_line(R"(! stubborn +interrupted)");
  EXPECT_TRUE(std::regex_search(r.out, summary_line)) << r.out;
  const std::string events = read_file(d.file("events.json"));
  const std::regex step_end(R"(\{"event":"step_end"[^\n]*"step":"stubborn"[^\n]*"outcome":"interrupted")");
  EXPECT_TRUE(std::regex_search(events, step_end)) << events;
}

TEST(Interrupt, TermIgnoringJobIsKilledAfterItsGrace) {
  TempDir d;
  PcrOptions o;
  o.while_running = [&](pid_t pid) {
    ASSERT_TRUE(wait_until([&] { return exists(d.file("started")); }));
    ::kill(pid, SIGTERM);
  };
  auto r = run_yaml(d, "steps:\n  - kill_grace: 1s\n    run: trap '' TERM; touch started; sleep 60\ncleanup:\n  - run: touch cleaned\n",
                    {}, o);
  EXPECT_EQ(r.exit_code, 143);
  EXPECT_TRUE(exists(d.file("cleaned")));
  EXPECT_GE(r.seconds, 1.0);
  EXPECT_LT(r.seconds, 6);
}

// A second interrupt during the steps kills at once also what is left of a job whose
// shell already died of the first (its TERM-ignoring child kept the step's 30 s grace),
// and the workers' tear-downs still run, like cleanup.
TEST(Interrupt, SecondInterruptKillsLeftoversAtOnceAndTeardownsStillRun) {
  TempDir d;
  const std::string shell = unique_marker("pcrshell"), child = unique_marker("pcrchild");
  PcrOptions o;
  o.while_running = [&](pid_t pid) {
    // Both children run and ignore TERM (their trap is set) before the first interrupt.
    ASSERT_TRUE(wait_until([&] { return exists(d.file("trapped1")) && exists(d.file("trapped2")); }));
    ::kill(pid, SIGINT);
    // The shells die of the TERM; their children ignore it.
    ASSERT_TRUE(wait_until([&] { return processes_with(shell).empty(); }));
    ASSERT_EQ(processes_with(child).size(), 2u);
    ::kill(pid, SIGINT);
  };
  auto r = run_yaml(d,
                    "steps:\n  - parallel: 2\n    kill_grace: 30s\n    setup: 'true'\n    teardown: touch td{n}\n"
                    "    run: |\n      sh -c \"trap '' TERM; touch trapped{n}; sleep 60; : " + child +
                        "\" & wait; : " + shell + "\n"
                    "cleanup:\n  - run: touch cleaned\n",
                    {}, o);
  EXPECT_EQ(r.exit_code, 130) << r.out;
  EXPECT_LT(r.seconds, 10) << "the second interrupt waited for the grace";
  EXPECT_TRUE(processes_with(child).empty());
  EXPECT_TRUE(exists(d.file("td1"))) << r.out;
  EXPECT_TRUE(exists(d.file("td2"))) << r.out;
  EXPECT_TRUE(exists(d.file("cleaned")));
}

// An interrupt while workers set up: the step reads as interrupted, like one whose jobs
// were running (it read as failed: the stopped set-ups counted as failures).
TEST(Interrupt, DuringSetupTheStepIsInterruptedNotFailed) {
  TempDir d;
  PcrOptions o;
  o.while_running = [&](pid_t pid) {
    ASSERT_TRUE(wait_until([&] { return exists(d.file("setting-up")); }));
    ::kill(pid, SIGINT);
  };
  auto r = run_yaml(d, "steps:\n  - name: pooled\n    parallel: 2\n    setup: touch setting-up; sleep 30\n    run: 'true'\n",
                    {}, o);
  EXPECT_EQ(r.exit_code, 130) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(! pooled +interrupted)"))) << r.out;
}

// A pool cut short by an interrupt gets no balance line: its lower bound would count only
// the work done ("makespan 21.5s against a lower bound of 0ms").
TEST(Interrupt, APoolCutShortHasNoBalanceLine) {
  TempDir d;
  PcrOptions o;
  o.while_running = [&](pid_t pid) {
    ASSERT_TRUE(wait_until([&] { return exists(d.file("started-1")) && exists(d.file("started-2")); }));
    ::kill(pid, SIGINT);
  };
  auto r = run_yaml(d, "steps:\n  - workers: 2\n    for_each: [1, 2, 3, 4]\n    run: touch started-{items}; sleep 30\n", {}, o);
  EXPECT_EQ(r.exit_code, 130) << r.out;
  EXPECT_EQ(r.out.find("makespan"), std::string::npos) << r.out;
}
