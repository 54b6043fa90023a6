// Worker pools end to end: the dynamic queue, recorded timings, groups, set-up and
// tear-down, pcr split.
#include <gtest/gtest.h>

#include <pcr/util/text.hpp>

#include "../support/pcr_binary.hpp"

using namespace pcr::test;

namespace {
std::vector<std::string> lines_of(const std::string& path) { return pcr::util::split_lines(read_file(path)); }
}  // namespace

TEST(Pool, SlowFirstItemDoesNotHoldBackTheRest) {
  TempDir d;
  // Worker 1 takes "slow"; the other four must all pass through worker 2 meanwhile.
  auto r = run_yaml(d, R"(
steps:
  - name: pool
    workers: 2
    for_each: [slow, a, b, c, d]
    run: if [ {items} = slow ]; then while [ ! -e d.done ]; do sleep 0.05; done; fi; echo {items} {n} >> ran; touch {items}.done
    timeout: 20s
)");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(lines_of(d.file("ran")), (std::vector<std::string>{"a 2", "b 2", "c 2", "d 2", "slow 1"}));
  EXPECT_NE(r.out.find("workers busy: n=1 "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("against a lower bound of"), std::string::npos) << r.out;
}

TEST(Pool, RecordedTimingsStartTheLongestFirst) {
  TempDir d;
  const std::string yaml = R"(
steps:
  - name: pool
    workers: 1
    for_each: {list: [short, long, middle]}
    run: echo {items} >> order; case {items} in long) sleep 0.6;; middle) sleep 0.3;; esac
)";
  ASSERT_EQ(run_yaml(d, yaml).exit_code, 0);
  EXPECT_EQ(lines_of(d.file("order")), (std::vector<std::string>{"short", "long", "middle"}))
      << "with nothing recorded the queue keeps the listed order";
  ASSERT_TRUE(exists(d.file(".pcr/timings.json")));
  std::remove(d.file("order").c_str());
  ASSERT_EQ(run_yaml(d, yaml).exit_code, 0);
  EXPECT_EQ(lines_of(d.file("order")), (std::vector<std::string>{"long", "middle", "short"}));
}

TEST(Pool, UnknownItemsGetTheMedianAndTiesBreakByName) {
  TempDir d;
  d.write("t.json", R"({"version": 1, "unit": "ms", "steps": {"pool": {"a": 100, "b": 500, "c": 900}}})");
  d.write("ci.yaml", R"(
steps:
  - name: pool
    workers: 1
    for_each: {list: [new2, a, c, new1, b]}
    run: echo {items} >> order
)");
  // The plan lists the jobs in the queue's order (checked before the run rewrites t.json).
  auto check = run_pcr({"check", d.file("ci.yaml"), "--timings", d.file("t.json")});
  EXPECT_LT(check.out.find("echo c >> order"), check.out.find("echo b >> order")) << check.out;
  EXPECT_LT(check.out.find("echo new2 >> order"), check.out.find("echo a >> order")) << check.out;
  PcrOptions o;
  o.cwd = d.path();
  auto r = run_pcr({"run", d.file("ci.yaml"), "--timings", d.file("t.json")}, o);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  // Unknown = median 500: ties with b, broken by name: b, new1, new2.
  EXPECT_EQ(lines_of(d.file("order")), (std::vector<std::string>{"c", "b", "new1", "new2", "a"}));
}

TEST(Pool, DamagedTimingsFileIsReportedIgnoredAndRewritten) {
  TempDir d;
  d.write(".pcr/timings.json", "{\"steps\": [garbage");
  auto r = run_yaml(d, "steps:\n  - name: s\n    for_each: [a, b]\n    run: echo {items}\n");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("damaged timings file, ignored"), std::string::npos) << r.out;
  EXPECT_NE(read_file(d.file(".pcr/timings.json")).find("\"a\""), std::string::npos);
}

TEST(Pool, GroupsAndSeparate) {
  TempDir d;
  auto r = run_yaml(d, R"(
steps:
  - name: grouped
    workers: 2
    groups: 2
    separate: [slow_spec]
    for_each: [a, b, slow_spec, c, d, e]
    run: echo "{items}" >> jobs
)");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto jobs = lines_of(d.file("jobs"));
  std::sort(jobs.begin(), jobs.end());
  // Nothing recorded: round-robin in listed order; slow_spec alone.
  EXPECT_EQ(jobs, (std::vector<std::string>{"a c e", "b d", "slow_spec"}));
  EXPECT_NE(r.out.find("3 jobs on 2 workers"), std::string::npos) << r.out;
}

TEST(Pool, GroupsBalanceByRecordedTimings) {
  TempDir d;
  d.write("t.json", R"({"steps": {"g": {"a": 800, "b": 700, "c": 600, "d": 500, "e": 400}}})");
  auto r = run_yaml(d, "steps:\n  - name: g\n    groups: 2\n    for_each: [a, b, c, d, e]\n    run: echo \"{items}\" >> jobs\n",
                    {"--timings", d.file("t.json")});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto jobs = lines_of(d.file("jobs"));
  std::sort(jobs.begin(), jobs.end());
  EXPECT_EQ(jobs, (std::vector<std::string>{"a d e", "b c"}));  // 1700 and 1300: greedy longest-first
}

TEST(Pool, SetupAndTeardownBracketEachWorkersJobs) {
  TempDir d;
  auto r = run_yaml(d, R"(
steps:
  - name: pool
    workers: 2
    for_each: [a, b, c, d]
    setup: echo "setup {n}" >> log-{n}
    run: echo "job {items}" >> log-{n}
    teardown: echo "teardown {n}" >> log-{n}
)");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  size_t jobs = 0;
  for (int n : {1, 2}) {
    auto log = lines_of(d.file("log-" + std::to_string(n)));
    ASSERT_GE(log.size(), 2u) << "worker " << n << " had no set-up or tear-down";
    EXPECT_EQ(log.front(), "setup " + std::to_string(n));
    EXPECT_EQ(log.back(), "teardown " + std::to_string(n));
    jobs += log.size() - 2;
  }
  EXPECT_EQ(jobs, 4u);
  EXPECT_NE(r.out.find("setup [n=1]"), std::string::npos) << r.out;
}

TEST(Pool, FailedSetupMovesTheJobsAndFailsTheStepTeardownStillRuns) {
  TempDir d;
  auto r = run_yaml(d, R"(
steps:
  - name: pool
    workers: 2
    for_each: [a, b, c, d]
    setup: test {n} != 1
    run: echo "{items} on {n}" >> ran
    teardown: touch torn-{n}
  - name: after
    run: touch after
)");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(lines_of(d.file("ran")), (std::vector<std::string>{"a on 2", "b on 2", "c on 2", "d on 2"}));
  EXPECT_TRUE(exists(d.file("torn-1")));
  EXPECT_TRUE(exists(d.file("torn-2")));
  EXPECT_FALSE(exists(d.file("after")));
  EXPECT_NE(r.out.find("pool setup [n=1] failed with exit code 1"), std::string::npos) << r.out;
}

TEST(Split, CommandLinePartitionsAndBalances) {
  TempDir d;
  d.write("t.json", R"({"steps": {"s": {"a": 900, "b": 100, "c": 100, "d": 100, "e": 600}}})");
  std::string all;
  for (int i = 1; i <= 2; ++i) {
    auto r = run_pcr({"split", "--total", "2", "--index", std::to_string(i), "--timings", d.file("t.json"), "a", "b",
                      "c", "d", "e"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    all += r.out;
    if (i == 1) {
      EXPECT_EQ(r.out, "a\n");  // 900 alone vs 600+100+100+100
    }
  }
  auto lines = pcr::util::split_lines(all);
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  PcrOptions env;
  env.env = {"CI_NODE_TOTAL=2", "CI_NODE_INDEX=1"};
  EXPECT_EQ(run_pcr({"split", "--timings", d.file("t.json"), "a", "b", "c", "d", "e"}, env).out, "a\n");
  EXPECT_EQ(run_pcr({"split", "--total", "2", "--index", "3", "a"}).exit_code, 2);
  EXPECT_EQ(run_pcr({"split", "a"}).exit_code, 2);
}
