// Worker pools end to end: the dynamic queue, recorded timings, groups, set-up and
// tear-down, pcr split, pcr run --shard and pcr timings merge.
#include "../support/pcr_binary.hpp"
#include <pcr/sched/timings.hpp>
#include <pcr/util/text.hpp>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

using namespace pcr::test;

namespace {
std::vector<std::string> lines_of(const std::string& path) { return pcr::util::split_lines(read_file(path)); }
std::vector<std::string> lines_of_text(const std::string& text) { return pcr::util::split_lines(text); }
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

// Two pipeline files in one folder, each with a step called "tests" over the same items
// but a different slow one: each file's next run starts its own slow item first. (With
// timings keyed by step alone the two runs averaged into a tie: both started "x".)
TEST(Pool, TwoPipelinesInOneFolderKeepTheirOwnTimings) {
  TempDir d;
  for (const char* slow : {"x", "y"})
    d.write(std::string("slow-") + slow + ".yaml", fmt::format(R"(
steps:
  - name: tests
    workers: 1
    for_each: [x, y]
    run: echo {{items}} >> order-{slow}; if [ {{items}} = {slow} ]; then sleep 0.5; fi
)", fmt::arg("slow", slow)));
  PcrOptions o;
  o.cwd = d.path();
  for (int round = 0; round < 2; ++round)
    for (const char* slow : {"x", "y"}) {
      std::remove(d.file(std::string("order-") + slow).c_str());
      auto r = run_pcr({"run", d.file(std::string("slow-") + slow + ".yaml")}, o);
      ASSERT_EQ(r.exit_code, 0) << r.out;
    }
  EXPECT_EQ(lines_of(d.file("order-x")), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(lines_of(d.file("order-y")), (std::vector<std::string>{"y", "x"}));
  pcr::sched::Timings::Pipelines file;
  ASSERT_TRUE(pcr::sched::Timings::parse(read_file(d.file(".pcr/timings.json")), file));
  EXPECT_EQ(file.size(), 2u) << read_file(d.file(".pcr/timings.json"));
  EXPECT_GE(file["slow-y.yaml"]["tests"]["y"], 400);
  EXPECT_LT(file["slow-y.yaml"]["tests"]["x"], 400);
}

// A timings file written before pipelines had entries of their own is read by the next
// run (the recorded order holds) and rewritten under the pipeline's file name.
TEST(Pool, OldTimingsFileIsReadAndMigrated) {
  TempDir d;
  d.write(".pcr/timings.json", R"({"version": 1, "unit": "ms", "steps": {"tests": {"a": 10, "b": 900}}})");
  auto r = run_yaml(d, "steps:\n  - name: tests\n    workers: 1\n    for_each: [a, b]\n    run: echo {items} >> order\n");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(lines_of(d.file("order")), (std::vector<std::string>{"b", "a"})) << "the old file's timings were used";
  const std::string text = read_file(d.file(".pcr/timings.json"));
  EXPECT_NE(text.find("\"version\": 2"), std::string::npos) << text;
  pcr::sched::Timings::Pipelines file;
  ASSERT_TRUE(pcr::sched::Timings::parse(text, file));
  EXPECT_EQ(file.count(""), 0u) << text;
  EXPECT_EQ(file.count("ci.yaml"), 1u) << text;
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
  EXPECT_NE(r.out.find("pool › setup [n=1]: failed with exit code 1"), std::string::npos) << r.out;
}

// A command's timings key is the same in the next run and in another checkout: the
// pipeline's folder in it is stored as ".", so a copy of the folder elsewhere finds it.
TEST(Pool, TimingsKeysHoldNoFolderOfTheCheckout) {
  TempDir d;
  const std::string yaml = "steps:\n  - name: s\n    commands:\n      - test -d " + d.path() + "\n";
  auto r = run_yaml(d, yaml);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::string timings = read_file(d.file(".pcr/timings.json"));
  EXPECT_EQ(timings.find(d.path()), std::string::npos) << timings;
  EXPECT_NE(timings.find("\"test -d .\""), std::string::npos) << timings;
  auto again = run_yaml(d, yaml);
  ASSERT_EQ(again.exit_code, 0);
  EXPECT_EQ(read_file(d.file(".pcr/timings.json")).find(d.path()), std::string::npos);
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

// Items from stdin: one per line, read as a stream within bounds (a 1 GB line held 2 GB).
TEST(Split, StdinItemsAreBounded) {
  TempDir d;
  d.write("items", "b\n\na\nc");
  PcrOptions o;
  o.stdin_path = d.file("items");
  auto r = run_pcr({"split", "--total", "1", "--index", "1", "--timings", d.file("none.json")}, o);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "b\na\nc\n");
  d.write("huge", "a\n" + std::string(3u << 20, 'x') + "\n");
  o.stdin_path = d.file("huge");
  auto huge = run_pcr({"split", "--total", "1", "--index", "1"}, o);
  EXPECT_EQ(huge.exit_code, 2);
  EXPECT_EQ(huge.err, "pcr split: stdin: line 2 is longer than the 1 MiB an item may have\n");
  EXPECT_TRUE(huge.out.empty());
}

// Each of N machines runs `pcr run --shard I/N`: together they run every item exactly
// once, each shard's share is the one `pcr split` prints, and steps without for_each run
// on every shard.
TEST(Shard, ShardsRunEveryItemOnceAsPcrSplitChooses) {
  TempDir d;
  d.write("ci.yaml", R"(
steps:
  - name: prepare
    run: echo prepared >> prepared
  - name: tests
    workers: 2
    for_each: [a, b, c, d, e, f, g, h, i, j, k]
    run: echo {items} >> ran-$SHARD
)");
  const std::vector<std::string> items = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"};
  std::multiset<std::string> all;
  for (int i = 1; i <= 3; ++i) {
    // Asked before the run, which records timings into none.json (removed after it).
    std::vector<std::string> args = {"split", "--total", "3", "--index", std::to_string(i), "--step", "tests",
                                     "--timings", d.file("none.json")};
    args.insert(args.end(), items.begin(), items.end());
    auto split = lines_of_text(run_pcr(args).out);
    std::sort(split.begin(), split.end());
    PcrOptions o;
    o.cwd = d.path();
    o.env = {"SHARD=" + std::to_string(i)};
    auto r = run_pcr({"run", "--shard", std::to_string(i) + "/3", "--timings", d.file("none.json")}, o);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    auto ran = lines_of(d.file("ran-" + std::to_string(i)));
    std::sort(ran.begin(), ran.end());
    EXPECT_EQ(ran, split) << "shard " << i;
    EXPECT_FALSE(ran.empty());
    all.insert(ran.begin(), ran.end());
    std::remove(d.file("none.json").c_str());
  }
  EXPECT_EQ(all, std::multiset<std::string>(items.begin(), items.end()));
  EXPECT_EQ(lines_of(d.file("prepared")).size(), 3u) << "a step without for_each runs on every shard";

  // The plan of a shard lists its share; `pcr run --dry-run` gives the same plan.
  auto plan = run_pcr({"check", d.file("ci.yaml"), "--shard", "2/3", "--timings", d.file("none.json")});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_NE(plan.out.find("tests — " + std::to_string(lines_of(d.file("ran-2")).size()) + " jobs"), std::string::npos)
      << plan.out;
  for (const auto& item : lines_of(d.file("ran-2")))
    EXPECT_NE(plan.out.find("echo " + item + " >> ran-$SHARD"), std::string::npos) << item << "\n" << plan.out;
  EXPECT_EQ(run_pcr({"check", d.file("ci.yaml"), "--shard", "9/3"}).exit_code, 2);

  // `auto` reads the CI system's variables (GitLab: 1-based).
  PcrOptions o;
  o.cwd = d.path();
  o.env = {"SHARD=auto", "CI_NODE_INDEX=2", "CI_NODE_TOTAL=3"};
  ASSERT_EQ(run_pcr({"run", "--shard", "auto", "--timings", d.file("none.json")}, o).exit_code, 0);
  EXPECT_EQ(lines_of(d.file("ran-auto")).size(), lines_of(d.file("ran-2")).size());
}

TEST(Shard, BadShardIsAUsageErrorAndNothingRuns) {
  TempDir d;
  d.write("ci.yaml", "steps:\n  - name: s\n    run: touch ran\n");
  PcrOptions o;
  o.cwd = d.path();
  for (const std::string bad : {"0/3", "4/3", "3", "a/b", "1/0"}) {
    auto r = run_pcr({"run", "--shard", bad}, o);
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_NE(r.err.find("--shard: '" + bad + "' is not a shard"), std::string::npos) << r.err;
  }
  auto r = run_pcr({"run", "--shard", "auto"}, o);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("CI_NODE_INDEX"), std::string::npos) << r.err;
  EXPECT_FALSE(exists(d.file("ran")));
}

// Shards bring back their timings files; merged, the next run balances with all of them:
// each shard measured only its own items, and the merged file knows every item.
TEST(Shard, MergedTimingsBalanceTheNextRun) {
  TempDir d;
  d.write("ci.yaml", R"(
steps:
  - name: tests
    workers: 1
    for_each: [t1, t2, t3, t4, t5, t6]
    run: sleep 0.$(echo {items} | tr -d t)
)");
  for (int i = 1; i <= 2; ++i) {
    PcrOptions o;
    o.cwd = d.path();
    auto r = run_pcr({"run", "--shard", std::to_string(i) + "/2", "--timings", d.file("shard" + std::to_string(i) + ".json")}, o);
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  auto merged = run_pcr({"timings", "merge", "-o", d.file("merged.json"), d.file("shard1.json"), d.file("shard2.json")});
  ASSERT_EQ(merged.exit_code, 0) << merged.err;
  pcr::sched::Timings::Pipelines file;
  ASSERT_TRUE(pcr::sched::Timings::parse(read_file(d.file("merged.json")), file));
  auto& table = file["ci.yaml"];  // the pipeline's entries, under its file's name
  ASSERT_EQ(table["tests"].size(), 6u) << read_file(d.file("merged.json"));
  // t6 (0.6 s) and t5 (0.5 s) are the longest: a balanced split puts them apart, and
  // each shard's total is within one item of the other's.
  std::int64_t totals[2] = {0, 0};
  std::vector<std::string> shard[2];
  for (int i = 0; i < 2; ++i) {
    auto r = run_pcr({"split", "--total", "2", "--index", std::to_string(i + 1), "--step", "tests", "--timings",
                      d.file("merged.json"), "t1", "t2", "t3", "t4", "t5", "t6"});
    shard[i] = lines_of_text(r.out);
    for (const auto& item : shard[i]) totals[i] += table["tests"][item];
  }
  auto has = [](const std::vector<std::string>& v, const char* x) { return std::find(v.begin(), v.end(), x) != v.end(); };
  EXPECT_NE(has(shard[0], "t6"), has(shard[0], "t5"));
  EXPECT_LE(std::abs(totals[0] - totals[1]), 250) << totals[0] << " vs " << totals[1];

  EXPECT_EQ(run_pcr({"timings", "merge", "-o", d.file("m2.json"), d.file("missing.json")}).exit_code, 2);
  d.write("bad.json", "{\"steps\": 3}");
  auto bad = run_pcr({"timings", "merge", "-o", d.file("m2.json"), d.file("bad.json")});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("bad.json: not a pcr timings file"), std::string::npos) << bad.err;
}
