// `pcr check` shows what `pcr run` does: for each pipeline, the plan's worker counts and
// every job's command (and worker, where the plan knows it) against the run's events.

#include "../support/plan_check.hpp"

#include <gtest/gtest.h>

namespace pcr::test {
namespace {

TEST(PlanIsTheRun, ShippedExamples) {
  const std::string examples = std::string(PCR_SOURCE_DIR) + "/examples";
  EXPECT_EQ(check_matches_run(examples + "/passing", "ci.yaml"), "");
  EXPECT_EQ(check_matches_run(examples + "/basic", "ci.yaml", 1), "");
  EXPECT_EQ(check_matches_run(examples + "/tap", "ci.yaml"), "");
}

TEST(PlanIsTheRun, EveryFormOfStep) {
  TempDir d;
  for (const char* f : {"a_test.sh", "b_test.sh", "c_test.sh", "d_test.sh", "e_test.sh"})
    d.write(std::string("t/") + f, "true\n");
  d.write("ci.yaml", R"(name: forms
env: {GREETING: hi}
steps:
  - name: one
    run: echo "$GREETING" {n} {job}
  - name: copies
    parallel: 3
    run: echo copy {n} of {total}
  - name: named
    commands: ["echo a {n}", "echo b {n}", "echo c {n}"]
  - name: pool
    workers: 2
    for_each: {glob: "t/*_test.sh"}
    run: sh {items} && echo {n}
  - name: batches
    workers: 2
    batch: 2
    for_each: ["x", "y", "z"]
    run: echo {items}
  - name: groups
    groups: 2
    separate: [t/a_test.sh]
    for_each: {glob: "t/*_test.sh"}
    run: echo {items}
  - name: set up
    workers: 3
    for_each: [p, q]
    setup: echo setup {n}
    teardown: echo teardown {n}
    run: echo {items} on {n}
  - name: capture
    run: printf 'l1\nl2\nl3\n'
    capture: LINES
  - name: from lines
    workers: 4
    for_each: {lines: LINES}
    run: echo {items}
  - name: from a command
    for_each: {command: "printf 'c1\nc2\n'"}
    run: echo {items}
cleanup:
  - name: tidy
    run: echo tidy {run_id}
)");
  EXPECT_EQ(check_matches_run(d.path(), "ci.yaml"), "");
}

TEST(PlanIsTheRun, ComparisonCatchesADifference) {
  // The comparison itself: a plan that differs from the run is reported.
  const std::string plan = R"({"pipeline":"x","steps":[{"name":"s","cleanup":false,"workers":2,
    "workers_bound":false,"worker_hosts":[],"note":"","jobs":[{"job":1,"worker":1,"host":"",
    "command":"echo {run_id}","items":[]}]}]})";
  const std::string events =
      "{\"event\":\"run_start\",\"run_id\":\"abc\"}\n"
      "{\"event\":\"step_start\",\"step\":\"s\",\"workers\":1}\n"
      "{\"event\":\"job_start\",\"step\":\"s\",\"kind\":\"job\",\"job\":1,\"worker\":1,"
      "\"attempt\":0,\"host\":null,\"command\":\"echo abc\"}\n";
  EXPECT_NE(plan_differs(plan, events).find("2 workers"), std::string::npos);
  const std::string same =
      "{\"event\":\"run_start\",\"run_id\":\"abc\"}\n"
      "{\"event\":\"step_start\",\"step\":\"s\",\"workers\":2}\n"
      "{\"event\":\"job_start\",\"step\":\"s\",\"kind\":\"job\",\"job\":1,\"worker\":1,"
      "\"attempt\":0,\"host\":null,\"command\":\"echo abd\"}\n";
  EXPECT_NE(plan_differs(plan, same).find("planned: echo abc"), std::string::npos);
}

}  // namespace
}  // namespace pcr::test
