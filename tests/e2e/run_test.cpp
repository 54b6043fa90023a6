// `pcr run` end to end: the real binary, real shells, real signals.
#include "../support/pcr_binary.hpp"
#include <pcr/util/text.hpp>

#include <gtest/gtest.h>

#include <regex>

using namespace pcr::test;

namespace {
PcrOptions long_run() {
  PcrOptions o;
  o.timeout_s = 300;
  return o;
}

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}
}  // namespace

TEST(Run, PassingPipelineExitsZero) {
  TempDir d;
  auto r = run_yaml(d, "steps:\n  - run: echo hello\n  - parallel: 3\n    run: echo part {n} of {total}\n");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("hello"), std::string::npos);
  EXPECT_NE(r.out.find("part 3 of 3"), std::string::npos);
  EXPECT_NE(r.out.find("PASSED"), std::string::npos);
}

TEST(Run, FailedStepSkipsTheRestAndEveryCleanupRuns) {
  TempDir d;
  auto r = run_yaml(d, R"(
steps:
  - name: breaks
    run: echo broken; exit 3
  - name: never
    run: touch never
cleanup:
  - name: first cleanup fails
    run: exit 1
  - name: second cleanup still runs
    run: touch cleaned
)");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_FALSE(exists(d.file("never")));
  EXPECT_TRUE(exists(d.file("cleaned")));
  EXPECT_NE(r.out.find("failed with exit code 3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("skipped"), std::string::npos) << r.out;
}

TEST(Run, FailingCleanupDoesNotChangeTheExitCode) {
  TempDir d;
  auto r = run_yaml(d, "steps:\n  - run: 'true'\ncleanup:\n  - run: exit 7\n");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("failed with exit code 7"), std::string::npos) << r.out;
}

TEST(Run, BadFileExitsTwoAndRunsNothing) {
  TempDir d;
  auto r = run_yaml(d, "steps:\n  - run: touch ran\n  - run: echo {oops}\n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_FALSE(exists(d.file("ran")));
  EXPECT_NE(r.err.find("ci.yaml:3:15: unknown placeholder '{oops}'"), std::string::npos) << r.err;
  auto missing = run_pcr({"run", d.file("absent.yaml")});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("absent.yaml:1:1: cannot read the pipeline file"), std::string::npos) << missing.err;
}

TEST(Run, BadFlagsExitTwo) {
  TempDir d;
  d.write("ci.yaml", "steps:\n  - run: touch ran\n");
  for (auto args : std::vector<std::vector<std::string>>{{"run", "--bogus"},
                                                         {"run", "-j", "0"},
                                                         {"run", "--output", "sideways"},
                                                         {"run", "--heartbeat", "soon"},
                                                         {"run", "--step", "nope"},
                                                         {"frobnicate"}}) {
    PcrOptions o;
    o.cwd = d.path();
    auto r = run_pcr(args, o);
    EXPECT_EQ(r.exit_code, 2) << args[1];
    EXPECT_FALSE(r.err.empty());
  }
  EXPECT_FALSE(exists(d.file("ran")));
}

TEST(Run, CountsAreWholeNumbersOfOneOrMoreAndSaySo) {
  // -j, --total and --index: the flag, the value, and what it should be, in one line.
  TempDir d;
  d.write("ci.yaml", "steps:\n  - run: touch ran\n");
  PcrOptions o;
  o.cwd = d.path();
  for (const auto& [args, said] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"run", "-j", "0"}, "pcr: --jobs: give a whole number of 1 or more, not '0'\n"},
           {{"run", "-j", "2.5"}, "pcr: --jobs: give a whole number of 1 or more, not '2.5'\n"},
           {{"split", "--total", "0", "--index", "1", "a"}, "pcr: --total: give a whole number of 1 or more, not '0'\n"},
           {{"split", "--total", "2", "--index", "-1", "a"}, "pcr: --index: give a whole number of 1 or more, not '-1'\n"},
           {{"split", "--total", "99999999999999999999999", "a"}, "pcr: --total: '99999999999999999999999' is too large (at most 1000000)\n"},
           {{"run", "-j", "4294967297"}, "pcr: --jobs: '4294967297' is too large (at most 1000000)\n"},
           {{"split", "--total", "\x1b[2J", "a"}, "pcr: --total: give a whole number of 1 or more, not '\\e[2J'\n"}}) {
    auto r = run_pcr(args, o);
    EXPECT_EQ(r.exit_code, 2) << args[1];
    EXPECT_EQ(r.err.substr(0, r.err.find('\n') + 1), said);
  }
  EXPECT_FALSE(exists(d.file("ran")));
}

TEST(Run, AHugeShardCountCostsNoMemoryPerShard) {
  // From a CI variable or --shard, a count far beyond the items: the shards past the items
  // are empty and are never made (it took 3 GB for 100,000,000, bad_alloc past 2^31).
  PcrOptions o;
  o.env = {"CI_NODE_TOTAL=4294967297", "CI_NODE_INDEX=2"};
  auto r = run_pcr({"split", "a", "b", "c"}, o);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "b\n");
  EXPECT_LT(r.max_rss_kb, 200 * 1024) << "memory per shard";
  TempDir d;
  d.write("ci.yaml", "steps:\n  - for_each: [a, b, c]\n    run: echo {items}\n");
  auto checked = run_pcr({"check", "--shard", "3/18446744073709551615", d.file("ci.yaml")});
  EXPECT_EQ(checked.exit_code, 0) << checked.err;
  EXPECT_LT(checked.max_rss_kb, 200 * 1024) << "memory per shard";
}

TEST(Run, DefaultFileIsCiYamlInTheCurrentFolder) {
  TempDir d;
  d.write("ci.yaml", "steps:\n  - run: touch ran\n");
  PcrOptions o;
  o.cwd = d.path();
  EXPECT_EQ(run_pcr({"run"}, o).exit_code, 0);
  EXPECT_TRUE(exists(d.file("ran")));
}

TEST(Run, RetriesMakeAFlakyPass) {
  TempDir d;
  auto r = run_yaml(d, R"(
steps:
  - name: flaky
    retries: 2
    run: if [ -e tried ]; then echo second; else touch tried; echo first; exit 1; fi
)");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("retrying"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("passed on retry 1 (flaky)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("flaky jobs"), std::string::npos) << r.out;
}

TEST(Run, RetriesRunOutThenTheStepFails) {
  TempDir d;
  auto r = run_yaml(d, "steps:\n  - retries: 2\n    run: echo try >> tries; exit 1\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(read_file(d.file("tries")), "try\ntry\ntry\n");
}

TEST(Run, FailFastStopsTheOtherJobs) {
  TempDir d;
  std::string marker = unique_marker("pcrff");
  auto r = run_yaml(d, "steps:\n  - fail_fast: true\n    commands:\n      - exit 1\n      - sleep 30; true " + marker +
                           "\n      - sleep 30; true " + marker + "\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_LT(r.seconds, 10);
  EXPECT_EQ(count(r.out, "cancelled"), 2u) << r.out;
  EXPECT_TRUE(processes_with(marker).empty());
}

TEST(Run, WithoutFailFastTheOtherJobsFinish) {
  TempDir d;
  auto r = run_yaml(d, "steps:\n  - commands:\n      - exit 1\n      - sleep 0.3; touch finished\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(exists(d.file("finished")));
}

TEST(Run, GlobalCapHoldsAcrossJobs) {
  TempDir d;
  // Two jobs running at once would both try to create the lock: the second mkdir fails.
  auto r = run_yaml(d, "steps:\n  - parallel: 4\n    run: mkdir lock && sleep 0.2 && rmdir lock\n", {"-j", "1"});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  auto uncapped = run_yaml(d, "steps:\n  - parallel: 4\n    run: mkdir lock && sleep 0.5 && rmdir lock\n");
  EXPECT_EQ(uncapped.exit_code, 1) << "the lock test could not fail";
}

TEST(Run, StepOptionRunsOnlyThatStepAndCleanup) {
  TempDir d;
  auto r = run_yaml(d, "steps:\n  - name: a\n    run: touch a\n  - name: b\n    run: touch b\ncleanup:\n  - run: touch c\n",
                    {"--step", "b"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_FALSE(exists(d.file("a")));
  EXPECT_TRUE(exists(d.file("b")));
  EXPECT_TRUE(exists(d.file("c")));
}

TEST(Run, ItemsReachTheCommandUnchanged) {
  TempDir d;
  const std::vector<std::string> items = {"with space", "it's", "$HOME", "a;b", "*", "back\\slash", "\"dq\"",
                                          "`tick`", "$(echo x)", "semi;colon && rm -rf nothing"};
  std::string yaml = "steps:\n  - workers: 3\n    for_each:\n      list:\n";
  for (const auto& item : items) {
    std::string escaped;
    for (char c : item) escaped += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
    yaml += "        - \"" + escaped + "\"\n";
  }
  yaml += "    run: printf '%s' {items} > out-{job}\n";
  auto r = run_yaml(d, yaml);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  for (size_t i = 0; i < items.size(); ++i) EXPECT_EQ(read_file(d.file("out-" + std::to_string(i + 1))), items[i]);
}

TEST(Run, BatchesAndWorkerSlots) {
  TempDir d;
  auto r = run_yaml(d, R"(
steps:
  - workers: 2
    batch: 2
    for_each: {list: [a, b, c, d, e]}
    run: echo "job {job}/{total} on {n} of $CI_WORKERS:" {items}
)");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("job 1/3 on "), std::string::npos);
  EXPECT_NE(r.out.find(" of 2: a b"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" of 2: e"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(" on 3 of"), std::string::npos);
}

TEST(Run, EnvironmentOfEveryJob) {
  TempDir d;
  auto r = run_yaml(d, R"(
env: {SHARED: pipe, OVER: pipe}
steps:
  - name: envstep
    parallel: 2
    env: {OVER: step}
    run: echo "vars n=$CI_COMMAND_NUMBER job=$CI_JOB_NUMBER total=$CI_TOTAL_JOBS workers=$CI_WORKERS step=$CI_STEP run=$CI_RUN_ID/{run_id} $SHARED $OVER"
)");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("vars n=2 job=2 total=2 workers=2 step=envstep run=([a-z0-9]+)/([a-z0-9]+) pipe step")))
      << r.out;
  EXPECT_EQ(m[1], m[2]);
  auto again = run_yaml(d, "steps:\n  - run: echo id=$CI_RUN_ID\n");
  EXPECT_EQ(again.out.find("id=" + m[1].str()), std::string::npos) << "run ids must differ between runs";
}

TEST(Run, CaptureFeedsLaterStepsAndEnv) {
  TempDir d;
  auto r = run_yaml(d, R"Y(
steps:
  - name: list
    run: printf 'one\ntwo\nthree\n'
    capture: NAMES
    output: hide
  - name: each
    for_each: {lines: NAMES}
    run: echo "item:{items}"
  - name: env
    run: test "$NAMES" = "$(printf 'one\ntwo\nthree')" && echo env-ok
)Y");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("3 jobs"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("item:two"), std::string::npos);
  EXPECT_NE(r.out.find("env-ok"), std::string::npos);
}

TEST(Run, ExpectFailsUnexpectedOutput) {
  TempDir d;
  auto ok = run_yaml(d, "steps:\n  - run: echo all tests passed\n    expect: 'tests passed$'\n");
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  auto bad = run_yaml(d, "steps:\n  - run: echo 3 failures\n    expect: 'tests passed$'\n");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.out.find("unexpected output"), std::string::npos) << bad.out;
}

TEST(Run, ForEachGlobAndCommandResolveFromThePipelineFolder) {
  TempDir d;
  d.write("spec/a_spec.rb", "");
  d.write("spec/sub/b_spec.rb", "");
  d.write("sub/marker", "");
  PcrOptions elsewhere;
  elsewhere.cwd = "/";
  auto r = run_yaml(d, R"(
steps:
  - for_each: {glob: "spec/**/*_spec.rb"}
    run: echo "spec:{items}"
  - for_each: {command: "ls sub"}
    run: echo "listed:{items}"
  - run: ls marker
    workdir: sub
)",
                    {}, elsewhere);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("spec:spec/a_spec.rb"), std::string::npos);
  EXPECT_NE(r.out.find("spec:spec/sub/b_spec.rb"), std::string::npos);
  EXPECT_NE(r.out.find("listed:marker"), std::string::npos);
}

TEST(Run, FailingForEachCommandFailsTheStep) {
  TempDir d;
  auto r = run_yaml(d, "steps:\n  - for_each: {command: 'echo oops >&2; exit 4'}\n    run: echo {items}\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("failed (exit code 4)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("oops"), std::string::npos) << r.out;
}

TEST(Run, TimeoutIsReportedAndKillsTheTree) {
  TempDir d;
  std::string marker = unique_marker("pcrto");
  auto r = run_yaml(d, "steps:\n  - timeout: 500ms\n    kill_grace: 1s\n    run: sh -c 'sleep 60; true " + marker +
                           "' & sleep 60; true " + marker + "\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("timed out after 500ms"), std::string::npos) << r.out;
  EXPECT_TRUE(processes_with(marker).empty());
  EXPECT_LT(r.seconds, 5);
}

TEST(Run, IdleTimeoutIsReported) {
  TempDir d;
  auto r = run_yaml(d, "steps:\n  - idle_timeout: 300ms\n    run: echo hi; sleep 30\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("no output for 300ms (idle timeout)"), std::string::npos) << r.out;
}

TEST(Run, SignalDeathIsReported) {
  TempDir d;
  auto r = run_yaml(d, "steps:\n  - run: kill -SEGV $$\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("killed by signal 11 (SIGSEGV)"), std::string::npos) << r.out;
}

TEST(Run, PipelineTimeoutFailsTheRunAndCleanupStillRuns) {
  TempDir d;
  auto r = run_yaml(d, "timeout: 1s\nsteps:\n  - run: sleep 30\n  - run: touch never\ncleanup:\n  - run: touch cleaned\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_LT(r.seconds, 10);
  EXPECT_TRUE(exists(d.file("cleaned")));
  EXPECT_FALSE(exists(d.file("never")));
  EXPECT_NE(r.out.find("pipeline's timeout"), std::string::npos) << r.out;
}

TEST(Run, BackgroundChildDoesNotHangTheRun) {
  TempDir d;
  auto r = run_yaml(d, "steps:\n  - run: sleep 30 & echo left behind\n");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_LT(r.seconds, 5);
  EXPECT_NE(r.out.find("1 leftover process killed"), std::string::npos) << r.out;
}

TEST(Run, EscapedDaemonsDoNotOutliveTheRun) {
  TempDir d;
  std::string marker = unique_marker("pcrdaemon");
  auto r = run_yaml(d, "steps:\n  - run: setsid sh -c 'touch up; sleep 300; true " + marker +
                           "' >/dev/null 2>&1 & while [ ! -e up ]; do sleep 0.01; done\n");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("left behind by jobs"), std::string::npos) << r.out;
  EXPECT_TRUE(processes_with(marker).empty());
}

TEST(Run, ManyJobsOnManyWorkers) {
  TempDir d;
  auto r = run_yaml(d, "steps:\n  - name: many\n    workers: 200\n    for_each: {command: seq 1000}\n    run: echo job-{items}\n",
                    {}, long_run());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("1000 jobs on 200 workers"), std::string::npos);
  EXPECT_EQ(count(r.out, "✓ passed"), 1000u);
  for (int i : {1, 500, 1000}) EXPECT_NE(r.out.find("job-" + std::to_string(i) + "\n"), std::string::npos);
}

TEST(Run, GroupedOutputOfConcurrentChattyJobsStaysContiguous) {
  TempDir d;
  auto r = run_yaml(d, R"(
steps:
  - commands:
      - for i in $(seq 300); do echo "A $i"; [ $((i % 50)) = 0 ] && sleep 0.05; done; true
      - for i in $(seq 300); do echo "B $i"; [ $((i % 50)) = 0 ] && sleep 0.05; done; true
)");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::string tags;
  for (const auto& line : pcr::util::split_lines(r.out))
    if (line.size() > 2 && (line[0] == 'A' || line[0] == 'B') && line[1] == ' ') tags += line[0];
  ASSERT_EQ(tags.size(), 600u);
  size_t switches = 0;
  for (size_t i = 1; i < tags.size(); ++i) switches += tags[i] != tags[i - 1];
  EXPECT_EQ(switches, 1u) << "output of the two jobs interleaved";
}

TEST(Run, PrefixedOutputTagsEveryLine) {
  TempDir d;
  auto r = run_yaml(d, "steps:\n  - name: two\n    commands: [echo one, printf 'two\\nlast']\n", {"--output", "prefixed"});
  EXPECT_EQ(r.exit_code, 0);
  // Each line is tagged with its job's name: a `commands:` job's command as written.
  EXPECT_NE(r.out.find("[echo one] one\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[printf 'two\\nlast'] two\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[printf 'two\\nlast'] last\n"), std::string::npos) << r.out;
  // A for_each job's lines by its item, never by its command.
  auto items = run_yaml(d, "steps:\n  - name: t\n    for_each: [a.sh, b.sh]\n    run: echo ran {items}\n",
                        {"--output", "prefixed"});
  EXPECT_NE(items.out.find("[a.sh] ran a.sh\n"), std::string::npos) << items.out;
  EXPECT_NE(items.out.find("[b.sh] ran b.sh\n"), std::string::npos) << items.out;
}

TEST(Run, OutputModes) {
  TempDir d;
  auto r = run_yaml(d, R"(
steps:
  - output: hide
    run: echo hidden-$((1+1))
  - output: on-failure
    commands: [echo quiet-$((1+1)), echo loud-$((1+1)); exit 1]
)");
  EXPECT_EQ(r.exit_code, 1);
  // The commands are printed; only the output ("…-2") tells whether output was shown.
  EXPECT_EQ(r.out.find("hidden-2"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("quiet-2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("loud-2"), std::string::npos) << r.out;
}

TEST(Run, ColourCodesAreStrippedOffTerminal) {
  TempDir d;
  auto r = run_yaml(d, "steps:\n  - run: printf '\\033[31mred\\033[0m\\n'\n");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("red"), std::string::npos);
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos);
}

TEST(Run, HeartbeatOffTerminal) {
  TempDir d;
  auto r = run_yaml(d, "steps:\n  - name: slow\n    commands: [sleep 2.5, sleep 2.5]\n", {"--heartbeat", "1s"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("… slow: running for 1.0s, 0 of 2 jobs done"), std::string::npos) << r.out;
}

// With timings recorded, the heartbeat estimates the time left from them and names the
// running job; the first run, with nothing recorded, gives no estimate.
TEST(Run, HeartbeatEstimatesTimeLeftFromRecordedTimings) {
  TempDir d;
  const std::string yaml =
      "steps:\n  - name: pool\n    workers: 3\n    for_each: [first, second, third]\n    run: sleep 1.5\n";
  // Three workers, but -j 1 runs one job at a time: the estimate counts what runs at once.
  auto first = run_yaml(d, yaml, {"--heartbeat", "1s", "-j", "1"});
  ASSERT_EQ(first.exit_code, 0) << first.out;
  EXPECT_NE(first.out.find("… pool: running for 1.0s, 0 of 3 jobs done; running first ("), std::string::npos)
      << first.out;
  EXPECT_EQ(first.out.find(" left"), std::string::npos) << "an estimate with nothing recorded:\n" << first.out;
  auto second = run_yaml(d, yaml, {"--heartbeat", "1s", "-j", "1"});
  ASSERT_EQ(second.exit_code, 0) << second.out;
  // After 1 s of the first job: its remaining ~0.5 s plus two more of ~1.5 s = ~4 s.
  std::smatch m;
  const std::regex line(R"(… pool: running for 1\.0s, 0 of 3 jobs done, ~(\d)s left; running (first|second|third) \()");
  ASSERT_TRUE(std::regex_search(second.out, m, line)) << second.out;
  EXPECT_GE(std::stoi(m[1]), 3) << second.out;
  EXPECT_LE(std::stoi(m[1]), 5) << second.out;
  // Later heartbeats count down.
  EXPECT_NE(second.out.find("1 of 3 jobs done, ~"), std::string::npos) << second.out;
}

TEST(Run, ClosedStdoutStillRunsCleanup) {
  TempDir d;
  d.write("ci.yaml", "steps:\n  - run: seq 100000\ncleanup:\n  - run: touch cleaned\n");
  PcrOptions o;
  o.cwd = d.path();
  // Through a pipe whose reader quits at once: pcr must ignore SIGPIPE and go on.
  d.write("piped.sh", std::string("'") + PCR_BINARY + "' run ci.yaml | head -c 10 > /dev/null\necho ${PIPESTATUS[0]} > rc\n");
  ASSERT_EQ(std::system(("cd '" + d.path() + "' && bash piped.sh").c_str()), 0);
  EXPECT_TRUE(exists(d.file("cleaned")));
  EXPECT_EQ(read_file(d.file("rc")), "0\n");
}

TEST(Run, HugeOutputStaysOutOfMemory) {
  TempDir d;
  PcrOptions o;
  // Not /dev/null: output nobody reads is never read (UnreadOutputIsNeverRead); /dev/zero
  // swallows every byte as well, but pcr cannot know it does, so the gigabyte passes through.
  o.stdout_path = "/dev/zero";
  o.timeout_s = 300;
  auto r = run_yaml(d, "steps:\n  - run: yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 1073741824\n", {}, o);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  if (!k_sanitized) {
    EXPECT_LT(r.max_rss_kb, 30 * 1024) << "pcr held output in memory";
  }
}

// `pcr run > /dev/null` with no log or report: nobody can read the jobs' output, so a job
// whose step does not read it itself writes straight to /dev/null. Anything that does read
// it gets it through pcr's pipes as always.
TEST(Run, UnreadOutputIsNeverRead) {
  TempDir d;
  d.write("ci.yaml", R"(steps:
  - name: expects
    run: a=$(readlink /proc/$$/fd/1); echo "$a" > fd-expects; echo ready
    expect: ready
  - name: idle
    idle_timeout: 30s
    run: a=$(readlink /proc/$$/fd/1); echo "$a" > fd-idle
  - name: plain
    parallel: 2
    run: a=$(readlink /proc/$$/fd/1); echo "$a" > fd-plain-{job}; echo printed; exit $(({job} - 1))
)");
  const auto fd = [&](const std::string& name) { return read_file(d.file("fd-" + name)).substr(0, 5); };
  PcrOptions o;
  o.cwd = d.path();
  o.stdout_path = "/dev/null";
  // Once: the plan sweep of run_pcr would add --json, a report that reads the output.
  auto r = run_pcr_once({"run", "ci.yaml"}, o);
  EXPECT_EQ(r.exit_code, 1) << "job 2 failed: " << r.err;
  EXPECT_EQ(fd("plain-1"), "/dev/");
  EXPECT_EQ(fd("plain-2"), "/dev/");
  EXPECT_EQ(fd("expects"), "pipe:") << "expect reads the output";
  EXPECT_EQ(fd("idle"), "pipe:") << "idle_timeout watches the output";
  EXPECT_TRUE(r.err.empty()) << r.err;

  // Read by someone: a log folder, a report, or a console that is not /dev/null.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"run", "--log-dir", "logs", "ci.yaml"},
        {"run", "--json", "events.json", "ci.yaml"}}) {
    auto again = run_pcr(args, o);
    EXPECT_EQ(again.exit_code, 1);
    EXPECT_EQ(fd("plain-1"), "pipe:") << args[1];
  }
  EXPECT_NE(read_file(d.file("logs/run.log")).find("printed"), std::string::npos);
  o.stdout_path.clear();
  auto shown = run_pcr({"run", "ci.yaml"}, o);
  EXPECT_EQ(fd("plain-1"), "pipe:");
  EXPECT_NE(shown.out.find("printed"), std::string::npos);
}

TEST(Run, SecretsNeverReachTheConsole) {
  TempDir d;
  PcrOptions o;
  o.env = {"API_TOKEN=tok-SECRET-9f8e"};
  auto r = run_yaml(d, R"(
secrets: [API_TOKEN, DB_PASSWORD]
env: {DB_PASSWORD: pw-SECRET-1234}
steps:
  - name: grouped
    commands:
      - echo "token=$API_TOKEN"
      - sleep 0.2; echo "db=$DB_PASSWORD"; exit 1
  - name: never
    run: "true"
cleanup:
  - name: split across chunks, streamed live
    run: printf 'tok-SEC'; sleep 0.2; printf 'RET-9f8e\n'
  - name: prefixed too
    run: echo "$DB_PASSWORD"
)",
                    {"--output", "grouped"}, o);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(r.out.find("SECRET"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("token=***"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("db=***"), std::string::npos) << r.out;  // in the output and the summary tail
  auto prefixed = run_yaml(d, "secrets: [API_TOKEN]\nsteps:\n  - run: echo \"$API_TOKEN\"\n", {"--output", "prefixed"}, o);
  EXPECT_EQ(prefixed.out.find("SECRET"), std::string::npos) << prefixed.out;
  EXPECT_NE(prefixed.out.find("***"), std::string::npos) << prefixed.out;
}

TEST(Run, ColourCodesAreStrippedFromGroupedJobsToo) {
  TempDir d;
  // Job 1 ends first and is replayed from its spool; job 2 streams live.
  auto r = run_yaml(d, "steps:\n  - commands:\n      - printf '\\033[32mgreen\\033[0m\\n'\n      - sleep 0.5; printf 'plain\\n'\n");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("green\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos);
}

// The for_each command runs with the step's CI_STEP, as its jobs do (a supervisor whose
// engine died finds a process's kill_grace by it).
TEST(Run, TheForEachCommandKnowsItsStep) {
  TempDir d;
  auto r = run_yaml(d, "steps:\n  - name: listed\n    for_each: {command: 'echo \"$CI_STEP\"'}\n    run: echo item={items}\n");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("item=listed"), std::string::npos) << r.out;
}
