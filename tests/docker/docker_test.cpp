// Compose support against a real dockerd (started by the `docker.ready` fixture): isolated
// clusters per worker, teardown on success, failure and interrupt, kill -9 + pcr clean.
#include "../support/pcr_binary.hpp"
#include "../support/plan_check.hpp"
#include "cluster.hpp"
#include <pcr/util/text.hpp>

#include <gtest/gtest.h>

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <regex>

using namespace pcr::test;
namespace fs = std::filesystem;

namespace {

// Containers, networks and volumes of the suite's engine whose name contains `marker`.
std::string docker_leftovers(const std::string& marker) { return leftovers_on(k_engine, marker); }

struct Cluster {
  TempDir dir;
  std::string base = unique_marker("pcrdk");  // the project base name: unique per test
  Cluster() { dir.write("docker-compose.yml", cluster_compose(true)); }
  std::string pipeline(const std::string& steps) const {
    return "name: " + base + "\ncompose:\n  file: docker-compose.yml\nsteps:\n" + steps;
  }
};

const char* k_up = R"Y(  - name: up
    parallel: 4
    run: docker-compose up -d 2>&1
    timeout: 2m
)Y";

}  // namespace

TEST(Compose, FourIsolatedClustersUpInParallelAndNothingLeft) {
  Cluster c;
  auto r = run_yaml(c.dir, c.pipeline(std::string(k_up) + R"Y(  - name: each talks to its own db
    parallel: 4
    run: for i in 1 2 3 4 5 6 7 8 9 10; do page=$({exec web} wget -qO- http://db:8080/) && break; sleep 0.5; done; test "$page" = "db-of-$PROJECT_NAME" && echo "isolated $page"
  - name: the container_name way
    parallel: 4
    run: docker exec "${PROJECT_NAME}_web" echo "web of {project}" && stat -c 'exec log %a' .pcr/exec/$PROJECT_NAME.log
)Y"));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  for (int n = 1; n <= 4; ++n)
    EXPECT_NE(r.out.find("isolated db-of-" + c.base), std::string::npos) << r.out;
  // pcr's bookkeeping is the user's only: each worker's {exec} log while it runs.
  EXPECT_EQ(occurrences(r.out, "exec log 600\n"), 4u) << r.out;
  EXPECT_NE(r.out.find("compose teardown"), std::string::npos);
  EXPECT_EQ(docker_leftovers(c.base), "");
  EXPECT_TRUE(
      pcr::util::split_lines(sh("ls '" + c.dir.file(".pcr/projects") + "' 2>/dev/null")).empty())
      << "records were not removed after teardown";
  // Timings keys hold neither the run's id (in its project names) nor the checkout's
  // folder: the next run, here or elsewhere, finds the same entries.
  const std::string timings = read_file(c.dir.file(".pcr/timings.json"));
  EXPECT_EQ(timings.find(c.base + "-"), timings.find(c.base + "-{run}-")) << timings;
  EXPECT_NE(timings.find(c.base + "-{run}-1"), std::string::npos) << timings;
  EXPECT_EQ(timings.find(c.dir.path()), std::string::npos) << timings;
  // pcr's bookkeeping is the user's only.
  for (const char* dir : {".pcr/projects", ".pcr/exec"})
    EXPECT_EQ(fs::status(c.dir.file(dir)).permissions() & fs::perms::all, fs::perms::owner_all) << dir;
  // The teardown took each project's {exec} log with its record.
  EXPECT_TRUE(fs::is_empty(c.dir.file(".pcr/exec"))) << "exec logs were not removed after teardown";
}

// `pcr check` shows the commands a run gives its jobs: `{exec}` through the wrapper with
// its log, the teardown of each project the run hands out, on as many workers.
TEST(Compose, CheckShowsWhatTheRunDoes) {
  Cluster c;
  c.dir.write("tests/a.sh", "true\n");
  c.dir.write("tests/b.sh", "true\n");
  c.dir.write("tests/c.sh", "true\n");
  c.dir.write("ci.yaml", c.pipeline(std::string(k_up) + R"Y(  - name: tests
    workers: 3
    for_each: {glob: "tests/*.sh"}
    run: "{exec web} echo {items} in {project}"
)Y"));
  EXPECT_EQ(check_matches_run(c.dir.path(), "ci.yaml"), "");
  EXPECT_EQ(docker_leftovers(c.base), "");
}

// The shipped compose example (PostgreSQL clusters, the split suite, teardown) as its
// README says, with `pcr check` showing what it runs; nothing of it left afterwards.
TEST(Compose, ShippedExampleRunsAsPlannedAndLeavesNothing) {
  const std::string dir = std::string(PCR_SOURCE_DIR) + "/examples/compose";
  PcrOptions o;
  o.timeout_s = 900;
  EXPECT_EQ(check_matches_run(dir, "ci.yaml", 0, o), "");
  EXPECT_EQ(docker_leftovers("shop-"), "");
}

// The five-cluster example: the integration suite alone on one worker while the unit
// tests run in four groups on the other four, five clusters at once, all torn down.
TEST(Compose, FiveClustersExampleRunsAsPlannedAndLeavesNothing) {
  const std::string dir = std::string(PCR_SOURCE_DIR) + "/examples/compose";
  PcrOptions o;
  o.timeout_s = 900;
  o.cwd = dir;
  const auto check = run_pcr({"check", "five.yaml"}, o);
  EXPECT_NE(check.out.find("tests — 5 jobs on 5 workers"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("compose teardown — 5 jobs on 5 workers"), std::string::npos) << check.out;
  EXPECT_EQ(check_matches_run(dir, "five.yaml", 0, o), "");
  EXPECT_EQ(docker_leftovers("shop5-"), "");
}

TEST(Compose, AFailureInOneClusterFailsTheRunAndEverythingGoes) {
  Cluster c;
  auto r = run_yaml(c.dir, c.pipeline(std::string(k_up) + R"Y(  - name: worker 3 fails
    parallel: 4
    run: test {n} != 3
)Y"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(docker_leftovers(c.base), "");
}

// Once the clusters are up (the step after `up` touched up.done), SIGINT to `pid`.
void interrupt_once_up(const Cluster& c, pid_t pid) {
  ASSERT_TRUE(wait_until([&] { return exists(c.dir.file("up.done")); }, std::chrono::seconds(120)));
  ::kill(pid, SIGINT);
}

TEST(Compose, InterruptTearsDownToo) {
  Cluster c;
  PcrOptions o;
  o.while_running = [&](pid_t pid) { interrupt_once_up(c, pid); };
  auto r =
      run_yaml(c.dir, c.pipeline(std::string(k_up) + "  - run: touch up.done; sleep 60\n"), {}, o);
  EXPECT_EQ(r.exit_code, 130) << r.out;
  EXPECT_EQ(docker_leftovers(c.base), "");
}

// A second interrupt during the teardown cuts it short (SPEC: it kills the cleanup jobs
// at once): pcr says which projects are still up and how to finish, and `pcr clean` does.
TEST(Compose, ASecondInterruptDuringTeardownSaysWhatIsLeft) {
  Cluster c;
  PcrOptions o;
  o.while_running = [&](pid_t pid) {
    interrupt_once_up(c, pid);
    if (::testing::Test::HasFatalFailure()) return;
    ASSERT_TRUE(wait_until([&] { return !processes_with(c.dir.file(".pcr/down.sh")).empty(); },
                           std::chrono::seconds(60)));
    ::kill(pid, SIGINT);
  };
  auto r =
      run_yaml(c.dir, c.pipeline(std::string(k_up) + "  - run: touch up.done; sleep 60\n"), {}, o);
  EXPECT_EQ(r.exit_code, 130) << r.out;
  ASSERT_NE(docker_leftovers(c.base), "") << "the teardown should have been cut short";
  EXPECT_NE(r.err.find("compose project(s) of this run are still up (" + c.base), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("`pcr clean "), std::string::npos) << r.err;
  PcrOptions in_dir;
  in_dir.cwd = c.dir.path();
  EXPECT_EQ(run_pcr({"clean"}, in_dir).exit_code, 0);
  EXPECT_EQ(docker_leftovers(c.base), "");
}

std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  for (pid_t c; in >> c;) out.push_back(c);
  return out;
}

// The clusters up, then a step that waits; once it runs, `kill` gets pcr's two pids (the
// supervisor the user started, its engine) to kill as the test likes.
PcrRun run_and_kill(const Cluster& c, const std::string& marker,
                    const std::function<void(pid_t supervisor, pid_t engine)>& kill) {
  PcrOptions o;
  o.while_running = [&](pid_t pid) {
    ASSERT_TRUE(
        wait_until([&] { return exists(c.dir.file("up.done")); }, std::chrono::seconds(120)));
    auto kids = children_of(pid);
    ASSERT_EQ(kids.size(), 1u) << "the supervisor has one child, the engine";
    kill(pid, kids[0]);
  };
  return run_yaml(
      c.dir,
      c.pipeline(std::string(k_up) + "  - run: touch up.done; sleep 60; true " + marker + "\n"), {},
      o);
}

// kill -9 of the `pcr` the user started, while the clusters run a step: the engine goes on
// alone, stops the jobs and tears every cluster down, with no command from the user.
TEST(Compose, KillNineOfPcrTearsDownWithoutPcrClean) {
  Cluster c;
  std::string marker = unique_marker("pcrk9");
  auto r = run_and_kill(c, marker, [](pid_t supervisor, pid_t) { ::kill(supervisor, SIGKILL); });
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_TRUE(wait_until([&] { return docker_leftovers(c.base).empty(); }, std::chrono::seconds(120)))
      << docker_leftovers(c.base);
  EXPECT_TRUE(processes_with(marker).empty());
  PcrOptions in_dir;
  in_dir.cwd = c.dir.path();
  EXPECT_TRUE(wait_until([&] { return !exists(c.dir.file(".pcr/projects")) ||
                                      std::filesystem::is_empty(c.dir.file(".pcr/projects")); },
                         std::chrono::seconds(30)));
  EXPECT_NE(run_pcr({"clean"}, in_dir).out.find("nothing left behind"), std::string::npos);
}

// The same while `docker-compose up` is still creating the clusters.
TEST(Compose, KillNineDuringComposeUpTearsDownToo) {
  Cluster c;
  PcrOptions o;
  o.while_running = [&](pid_t pid) {
    ASSERT_TRUE(wait_until([&] { return !docker_leftovers(c.base).empty(); },
                           std::chrono::seconds(120)));
    ::kill(pid, SIGKILL);
  };
  auto r = run_yaml(c.dir, c.pipeline(k_up), {}, o);
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_TRUE(wait_until([&] { return docker_leftovers(c.base).empty(); }, std::chrono::seconds(180)))
      << docker_leftovers(c.base);
}

// kill -9 of pcr's engine: the supervisor ends the jobs and takes the clusters down.
TEST(Compose, KillNineOfTheEngineTearsDownToo) {
  Cluster c;
  std::string marker = unique_marker("pcrk9e");
  auto r = run_and_kill(c, marker, [](pid_t, pid_t engine) { ::kill(engine, SIGKILL); });
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("took down " + c.base), std::string::npos) << r.err;
  EXPECT_EQ(docker_leftovers(c.base), "");
  EXPECT_TRUE(processes_with(marker).empty());
}

// A supervisor whose engine died takes down its own run's projects only, and none with
// `teardown: false`: it took down every project recorded in the folder, another run's
// kept clusters too.
TEST(Compose, KillNineOfTheEngineTakesDownOnlyItsOwnRunsProjects) {
  Cluster c;
  const std::string keep = "name: " + c.base + "\ncompose:\n  file: docker-compose.yml\n  teardown: false\nsteps:\n" + k_up;
  auto kept = run_yaml(c.dir, keep);
  ASSERT_EQ(kept.exit_code, 0) << kept.out;
  const std::string before = docker_leftovers(c.base);
  ASSERT_NE(before, "") << "teardown: false keeps the clusters";
  std::string marker = unique_marker("pcrk9own");
  auto r = run_and_kill(c, marker, [](pid_t, pid_t engine) { ::kill(engine, SIGKILL); });
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("took down " + c.base), std::string::npos) << r.err;
  EXPECT_EQ(docker_leftovers(c.base), before) << "the first run's clusters are kept, the second's gone";
  // And with `teardown: false` itself, a killed engine's run keeps its clusters too.
  PcrOptions o;
  o.while_running = [&](pid_t pid) {
    ASSERT_TRUE(wait_until([&] { return exists(c.dir.file("up2.done")); }, std::chrono::seconds(120)));
    auto kids = children_of(pid);
    ASSERT_EQ(kids.size(), 1u);
    ::kill(kids[0], SIGKILL);
  };
  auto second = run_yaml(c.dir, keep + "  - run: touch up2.done; sleep 60\n", {}, o);
  EXPECT_EQ(second.exit_code, 3) << second.err;
  EXPECT_EQ(second.err.find("took down"), std::string::npos) << second.err;
  EXPECT_NE(docker_leftovers(c.base), before) << "more clusters now: the second keeping run's";
  PcrOptions in_dir;
  in_dir.cwd = c.dir.path();
  EXPECT_EQ(run_pcr({"clean"}, in_dir).exit_code, 0);
  EXPECT_EQ(docker_leftovers(c.base), "");
}

// Both of pcr's processes killed at once: only the records remain; the next run warns and
// `pcr clean` takes everything down.
TEST(Compose, BothKilledIsCleanedByPcrClean) {
  Cluster c;
  std::string marker = unique_marker("pcrk9b");
  run_and_kill(c, marker, [](pid_t supervisor, pid_t engine) {
    ::kill(supervisor, SIGSTOP);  // so that it cannot act between the two kills
    ::kill(engine, SIGKILL);
    ::kill(supervisor, SIGKILL);
  });
  ASSERT_NE(docker_leftovers(c.base), "") << "the clusters should have survived";
  PcrOptions in_dir;
  in_dir.cwd = c.dir.path();
  auto warn = run_pcr({"run", "--dry-run"}, in_dir);
  EXPECT_NE(warn.err.find("left behind by an earlier run (killed"), std::string::npos) << warn.err;
  // Another pipeline of the folder, without compose, is told of the projects too.
  c.dir.write("plain.yaml", "steps:\n  - run: \"true\"\n");
  auto plain = run_pcr({"run", "--dry-run", "plain.yaml"}, in_dir);
  EXPECT_NE(plain.err.find("compose project(s)"), std::string::npos) << plain.err;
  auto clean = run_pcr({"clean"}, in_dir);
  EXPECT_EQ(clean.exit_code, 0) << clean.out;
  EXPECT_NE(clean.out.find("took down " + c.base), std::string::npos) << clean.out;
  EXPECT_NE(clean.out.find("process(es)"), std::string::npos) << clean.out;
  EXPECT_EQ(clean.out.find("\\n"), std::string::npos) << "lines end in newlines, not a shown \\n: " << clean.out;
  EXPECT_EQ(docker_leftovers(c.base), "");
  EXPECT_TRUE(processes_with(marker).empty());
  EXPECT_NE(run_pcr({"clean"}, in_dir).out.find("nothing left behind"), std::string::npos);
}

TEST(Compose, TwoRunsAtOnceDoNotTouchEachOther) {
  Cluster c;
  c.dir.write("ci.yaml", c.pipeline(std::string(k_up) + R"Y(  - name: own clusters only
    parallel: 4
    run: sleep 1; test "$(docker ps --filter label=com.docker.compose.project=$COMPOSE_PROJECT_NAME -q | wc -l)" = 2
)Y"));
  PcrOptions o;
  o.cwd = c.dir.path();
  auto a = std::async(std::launch::async, [&] { return run_pcr({"run", "ci.yaml"}, o); });
  auto b = std::async(std::launch::async, [&] { return run_pcr({"run", "ci.yaml"}, o); });
  auto ra = a.get(), rb = b.get();
  EXPECT_EQ(ra.exit_code, 0) << ra.out;
  EXPECT_EQ(rb.exit_code, 0) << rb.out;
  EXPECT_EQ(docker_leftovers(c.base), "");
}

TEST(Compose, ExecThatTimesOutIsStoppedInsideTheContainer) {
  Cluster c;
  // Worker 1 uses {exec web}; worker 2 the plain client, whose process docker leaves
  // running in the container: the control that shows the test can fail.
  auto r = run_yaml(c.dir, c.pipeline(R"Y(  - name: up
    parallel: 2
    run: docker-compose up -d 2>&1
  - name: hangs
    timeout: 3s
    kill_grace: 1s
    commands:
      - "{exec web} sh -c 'sleep 297 & sleep 299 | cat'"
      - docker-compose exec -T web sleep 298
cleanup:
  - name: look inside
    parallel: 2
    run: docker exec "${PROJECT_NAME}_web" ps > ps-{n}.txt
)Y"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n') > 0, true);
  EXPECT_NE(r.out.find("timed out after 3s"), std::string::npos) << r.out;
  std::string inside1 = read_file(c.dir.file("ps-1.txt")),
              inside2 = read_file(c.dir.file("ps-2.txt"));
  EXPECT_NE(inside2.find("sleep 298"), std::string::npos)
      << "control: docker kept the plain exec's process:\n"
      << inside2;
  EXPECT_EQ(inside1.find("sleep 299"), std::string::npos)
      << "{exec web} left its process in the container:\n"
      << inside1;
  // Its whole tree: the background child and the other side of the pipe too.
  EXPECT_EQ(inside1.find("sleep 297"), std::string::npos) << inside1;
  EXPECT_EQ(inside1.find(" cat"), std::string::npos) << inside1;
  EXPECT_EQ(docker_leftovers(c.base), "");
}

// A read-only container: /tmp cannot hold the command's pid, /dev/shm can, and the
// command is still stopped when its job times out (it ran on, out of reach, with only a
// "can't create" line in the job's output).
TEST(Compose, ExecInAReadOnlyContainerIsStoppedToo) {
  Cluster c;
  c.dir.write("docker-compose.yml", "version: \"2.4\"\nservices:\n  web:\n    image: pcr-busybox:test\n"
                                    "    init: true\n    read_only: true\n    container_name: ${PROJECT_NAME}_web\n"
                                    "    command: [\"sleep\", \"3600\"]\n");
  auto r = run_yaml(c.dir, c.pipeline(R"Y(  - name: up
    run: docker-compose up -d 2>&1
  - name: hangs
    timeout: 3s
    kill_grace: 1s
    run: "{exec web} sh -c 'sleep 296 | cat'"
cleanup:
  - name: look inside
    run: docker exec "${PROJECT_NAME}_web" ps > ps.txt
)Y"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("timed out after 3s"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("can't create"), std::string::npos) << r.out;
  const std::string inside = read_file(c.dir.file("ps.txt"));
  EXPECT_NE(inside.find("sleep 3600"), std::string::npos) << "the control: ps saw the container\n" << inside;
  EXPECT_EQ(inside.find("sleep 296"), std::string::npos) << "{exec web} left its process:\n" << inside;
  EXPECT_EQ(docker_leftovers(c.base), "");
}

// Where the wrapper cannot log a command (a full or broken .pcr), pcr could not stop it
// afterwards: it does not start, and the job says why.
TEST(Compose, ExecThatCannotBeLoggedDoesNotStart) {
  Cluster c;
  c.dir.write(".pcr/exec", "not a folder");
  auto r = run_yaml(c.dir, c.pipeline(R"Y(  - name: up
    run: docker-compose up -d 2>&1
  - name: unlogged
    run: "{exec web} touch /ran"
cleanup:
  - name: look inside
    run: docker exec "${PROJECT_NAME}_web" ls / > root.txt
)Y"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("cannot log the command in "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("failed with exit code 125"), std::string::npos) << r.out;
  EXPECT_NE(read_file(c.dir.file("root.txt")).find("bin"), std::string::npos) << "the control: ls saw /";
  EXPECT_EQ(read_file(c.dir.file("root.txt")).find("ran"), std::string::npos) << "the command ran";
  EXPECT_EQ(docker_leftovers(c.base), "");
}

// `pcr clean` after both processes were killed, with the compose file moved away since:
// compose cannot take the projects down; what carries their label goes through docker
// (the record stayed forever, and every run warned).
TEST(Compose, PcrCleanTakesDownAProjectWhoseComposeFileIsGone) {
  Cluster c;
  std::string marker = unique_marker("pcrk9gone");
  run_and_kill(c, marker, [](pid_t supervisor, pid_t engine) {
    ::kill(supervisor, SIGSTOP);
    ::kill(engine, SIGKILL);
    ::kill(supervisor, SIGKILL);
  });
  ASSERT_NE(docker_leftovers(c.base), "") << "the clusters should have survived";
  std::filesystem::rename(c.dir.file("docker-compose.yml"), c.dir.file("moved.yml"));
  PcrOptions in_dir;
  in_dir.cwd = c.dir.path();
  auto clean = run_pcr({"clean"}, in_dir);
  EXPECT_EQ(clean.exit_code, 0) << clean.out << clean.err;
  EXPECT_NE(clean.out.find("took down " + c.base), std::string::npos) << clean.out;
  EXPECT_EQ(docker_leftovers(c.base), "");
  EXPECT_TRUE(processes_with(marker).empty());
  EXPECT_NE(run_pcr({"clean"}, in_dir).out.find("nothing left behind"), std::string::npos);
}

// A pipeline folder with ':' in its name: plain `docker-compose` in a job split
// COMPOSE_FILE there and found no file; another separator is named for it.
TEST(Compose, AColonInThePipelinesFolderStillFindsTheComposeFile) {
  Cluster c;
  TempDir& d = c.dir;
  std::filesystem::create_directories(d.file("co:lon"));
  std::filesystem::copy_file(d.file("docker-compose.yml"), d.file("co:lon/docker-compose.yml"));
  d.write("co:lon/ci.yaml", c.pipeline(R"Y(  - name: up
    run: docker-compose up -d 2>&1 && docker-compose ps -q web | wc -l
)Y"));
  PcrOptions o;
  o.cwd = d.file("co:lon");
  auto r = run_pcr({"run", "ci.yaml"}, o);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(docker_leftovers(c.base), "");
}

TEST(Compose, InvalidComposeFileFailsTheStepClearlyAndCleanupRuns) {
  Cluster c;
  c.dir.write(
      "docker-compose.yml",
      "version: \"2.4\"\nservices:\n  web:\n    image: pcr-busybox:test\n    bogus_key: 1\n");
  auto r = run_yaml(c.dir, c.pipeline(std::string(k_up) + "cleanup:\n  - run: touch cleaned\n"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("bogus_key"), std::string::npos) << "compose's own error is not shown:\n"
                                                        << r.out;
  EXPECT_TRUE(exists(c.dir.file("cleaned")));
  EXPECT_NE(r.out.find("compose teardown"), std::string::npos);
  EXPECT_EQ(docker_leftovers(c.base), "");
}

namespace {
// TERM-ignoring services: compose's stop waits its 10 s for them.
const char* k_stubborn_compose = R"Y(version: "2.4"
services:
  web:
    image: pcr-busybox:test
    command: ["sh", "-c", "trap '' TERM; while :; do sleep 0.2; done"]
)Y";
}  // namespace

// A run is alive while either of its processes is: with its engine killed, the supervisor
// still runs the cleanup steps, which use the clusters. `pcr clean` at that moment took
// them down ("data loss"), and the cleanup step failed on both workers.
TEST(Compose, PcrCleanLeavesAHalfKilledRunsClustersToIt) {
  Cluster c;
  const std::string marker = unique_marker("pcrhalf");
  PcrOptions o;
  PcrRun clean;
  o.while_running = [&](pid_t pid) {
    ASSERT_TRUE(wait_until([&] { return exists(c.dir.file("w1")) && exists(c.dir.file("w2")); },
                           std::chrono::seconds(120)));
    auto kids = children_of(pid);
    ASSERT_EQ(kids.size(), 1u);
    ::kill(kids[0], SIGKILL);
    PcrOptions in_dir;
    in_dir.cwd = c.dir.path();
    clean = run_pcr({"clean"}, in_dir);
  };
  auto r = run_yaml(c.dir, c.pipeline(R"(  - name: up
    parallel: 2
    run: docker-compose up -d 2>&1
    timeout: 2m
  - name: work
    parallel: 2
    kill_grace: 6s
    run: "touch w{n}; trap '' TERM; sleep 300; true )" + marker + R"("
cleanup:
  - name: collect
    parallel: 2
    run: "{exec web} echo alive > alive{n}"
)"),
                    {"--no-color"}, o);
  EXPECT_EQ(clean.out.find("took down"), std::string::npos) << clean.out;
  EXPECT_NE(clean.out.find("was killed and is still tearing down"), std::string::npos) << clean.out;
  EXPECT_TRUE(exists(c.dir.file("alive1")) && exists(c.dir.file("alive2"))) << r.out << r.err;
  EXPECT_EQ(docker_leftovers(c.base), "");
  EXPECT_TRUE(processes_with(marker).empty());
}

// The supervisor killed: the engine tears down alone, slowly (services that ignore TERM).
// `pcr clean` right then must not say "nothing left" and return with clusters up: it waits
// for that teardown, saying so, and what it reports left is what is left.
TEST(Compose, PcrCleanWaitsForAKilledRunsTeardown) {
  Cluster c;
  c.dir.write("docker-compose.yml", k_stubborn_compose);
  const std::string marker = unique_marker("pcrtd");
  PcrOptions o;
  o.while_running = [&](pid_t pid) {
    ASSERT_TRUE(wait_until([&] { return exists(c.dir.file("up.done")); }, std::chrono::seconds(120)));
    ::kill(pid, SIGKILL);
  };
  run_yaml(c.dir, c.pipeline(std::string(k_up) + "  - run: touch up.done; sleep 60; true " + marker + "\n"), {}, o);
  ASSERT_NE(docker_leftovers(c.base), "") << "the teardown should still be under way";
  PcrOptions in_dir;
  in_dir.cwd = c.dir.path();
  auto clean = run_pcr({"clean"}, in_dir);
  const std::string left = docker_leftovers(c.base);
  EXPECT_EQ(clean.out.find("nothing left behind"), std::string::npos) << clean.out;
  EXPECT_NE(clean.out.find("is still tearing down"), std::string::npos) << clean.out;
  EXPECT_EQ(left, "") << clean.out;
  EXPECT_EQ(clean.exit_code, 0) << clean.out;
}

// A secret in a project name (`compose: project:` from the env) is masked where pcr
// shows leftovers after both processes were killed: the next run's warning and `pcr clean`.
TEST(Compose, ASecretInAProjectNameIsMaskedInLeftoverMessages) {
  Cluster c;
  c.base = "tok3nvalue";
  const std::string marker = unique_marker("pcrsec");
  PcrOptions o;
  o.while_running = [&](pid_t pid) {
    ASSERT_TRUE(wait_until([&] { return exists(c.dir.file("up.done")); }, std::chrono::seconds(120)));
    auto kids = children_of(pid);
    ASSERT_EQ(kids.size(), 1u);
    ::kill(pid, SIGSTOP);
    ::kill(kids[0], SIGKILL);
    ::kill(pid, SIGKILL);
  };
  c.dir.write("ci.yaml", "name: shop\nenv: {TOKEN: tok3nvalue}\nsecrets: [TOKEN]\ncompose:\n  file: docker-compose.yml\n"
                         "  project: tok3nvalue\nsteps:\n" + std::string(k_up) +
                         "  - run: touch up.done; sleep 60; true " + marker + "\n");
  run_pcr({"run", c.dir.file("ci.yaml")}, o);
  ASSERT_NE(docker_leftovers("tok3nvalue"), "");
  PcrOptions in_dir;
  in_dir.cwd = c.dir.path();
  auto warn = run_pcr({"run", "--dry-run"}, in_dir);
  EXPECT_NE(warn.err.find("left behind"), std::string::npos) << warn.err;
  EXPECT_EQ(warn.err.find("tok3nvalue"), std::string::npos) << warn.err;
  auto clean = run_pcr({"clean"}, in_dir);
  EXPECT_NE(clean.out.find("took down"), std::string::npos) << clean.out;
  EXPECT_EQ(clean.out.find("tok3nvalue"), std::string::npos) << clean.out;
  EXPECT_EQ(docker_leftovers("tok3nvalue"), "");
  EXPECT_TRUE(processes_with(marker).empty());
}

// A project record that cannot be written keeps the job from starting (no record, no
// `pcr clean`), and that is pcr's failure, not the tests': exit 3, not 1.
TEST(Compose, ARecordThatCannotBeWrittenIsPcrsFailure) {
  Cluster c;
  fs::create_directories(c.dir.file(".pcr"));
  c.dir.write(".pcr/projects", "a file where the folder goes\n");
  c.dir.write("ci.yaml", c.pipeline("  - parallel: 2\n    run: docker-compose up -d 2>&1\n"));
  // Not checked against the plan: its teardown of two projects is what this run cannot do.
  auto r = run_pcr_once({"run", "--no-color", c.dir.file("ci.yaml")});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.out.find("cannot record compose project"), std::string::npos) << r.out;
  EXPECT_EQ(docker_leftovers(c.base), "");
}

// A failing job's services' logs, `ps` and state are saved before its cluster goes down,
// under --log-dir, masked; the summary and the JUnit point at them. A failing set-up too.
TEST(Compose, AFailingWorkersServiceLogsAreKept) {
  Cluster c;
  c.dir.write("docker-compose.yml", R"Y(version: "2.4"
services:
  db:
    image: pcr-busybox:test
    init: true
    command: ["sh", "-c", "echo db says the password is $$DB_PASSWORD; echo duplicate key in orders; sleep 3600"]
    environment:
      DB_PASSWORD: ${DB_PASSWORD}
  web:
    image: pcr-busybox:test
    init: true
    command: ["sleep", "3600"]
)Y");
  c.dir.write("ci.yaml", "name: " + c.base + R"(
env: {DB_PASSWORD: hunter2-secret}
secrets: [DB_PASSWORD]
compose:
  file: docker-compose.yml
steps:
  - name: tests
    workers: 2
    setup: docker-compose up -d 2>&1
    for_each: [good, bad]
    run: "{exec web} sh -c 'test {items} = good'"
)");
  auto r = run_pcr({"run", "--no-color", "--log-dir", c.dir.file("logs"), "--junit", c.dir.file("j.xml"),
                    c.dir.file("ci.yaml")});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  const std::string dir = c.dir.file("logs/services/tests");
  std::string found;
  for (const auto& e : fs::directory_iterator(dir)) found += e.path().filename().string() + " ";
  EXPECT_EQ(found.find("good"), std::string::npos) << "a passing job saves nothing: " << found;
  const std::string bad = dir + "/bad-n" + (exists(dir + "/bad-n1") ? "1" : "2");
  const std::string db = read_file(bad + "/db.log");
  EXPECT_NE(db.find("duplicate key in orders"), std::string::npos) << db;
  EXPECT_EQ(db.find("hunter2"), std::string::npos) << "a secret in a service's log is masked: " << db;
  EXPECT_NE(db.find("***"), std::string::npos) << db;
  EXPECT_NE(read_file(bad + "/state.txt").find("db running"), std::string::npos);
  EXPECT_TRUE(exists(bad + "/ps.txt") && exists(bad + "/web.log"));
  EXPECT_NE(r.out.find("saved: " + bad), std::string::npos) << r.out;
  EXPECT_NE(read_file(c.dir.file("j.xml")).find("[[ATTACHMENT|" + bad + "/db.log]]"), std::string::npos);
  EXPECT_EQ(docker_leftovers(c.base), "");
}

// A service that dies on start fails the set-up; its logs are saved before the worker's
// tear-down, named in the summary with its exit code and last line.
TEST(Compose, AFailingSetUpsServiceLogsAreKeptAndTheDeadServiceNamed) {
  Cluster c;
  c.dir.write("docker-compose.yml", R"Y(version: "2.4"
services:
  db:
    image: pcr-busybox:test
    command: ["sh", "-c", "echo FATAL could not open the data directory; exit 3"]
)Y");
  c.dir.write("ci.yaml", "name: " + c.base + R"(
compose:
  file: docker-compose.yml
steps:
  - name: tests
    setup: docker-compose up -d 2>&1 && sleep 1 && docker-compose ps | grep -q 'Exit 3' && exit 1
    for_each: [t]
    run: "true"
)");
  auto r = run_pcr({"run", "--no-color", "--log-dir", c.dir.file("logs"), c.dir.file("ci.yaml")});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  const std::string saved = c.dir.file("logs/services/tests/setup-n1");
  EXPECT_NE(read_file(saved + "/db.log").find("FATAL could not open the data directory"), std::string::npos)
      << read_file(saved + "/db.log");
  EXPECT_NE(r.out.find("db exited with code 3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("│ "), std::string::npos);
  EXPECT_EQ(docker_leftovers(c.base), "");
}

// Clusters are removed with their volumes: the teardown does not wait compose's 10 s for
// services that ignore SIGTERM.
TEST(Compose, TeardownOfTermIgnoringServicesIsQuick) {
  Cluster c;
  c.dir.write("docker-compose.yml", k_stubborn_compose);
  auto r = run_yaml(c.dir, c.pipeline(R"(  - name: up
    parallel: 2
    run: docker-compose up -d 2>&1
)"),
                    {"--no-color", "--json", c.dir.file("e.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  long longest = 0;
  for (const auto& line : pcr::util::split_lines(read_file(c.dir.file("e.jsonl"))))
    if (line.find("\"job_end\"") != std::string::npos && line.find("\"step\":\"compose teardown\"") != std::string::npos) {
      const auto at = line.find("\"duration_ms\":");
      longest = std::max(longest, std::stol(line.substr(at + 14)));
    }
  EXPECT_GT(longest, 0);
  EXPECT_LE(longest, 3000) << "a cluster of TERM-ignoring services took " << longest << " ms to go down";
  EXPECT_EQ(docker_leftovers(c.base), "");
}

// `{wait}` waits for a healthcheck that turns healthy after 3 s, then the tests run.
TEST(Compose, WaitWaitsUntilAServiceIsHealthy) {
  Cluster c;
  c.dir.write("docker-compose.yml", R"Y(version: "2.4"
services:
  db:
    image: pcr-busybox:test
    init: true
    command: ["sh", "-c", "sleep 3; touch /ready; sleep 3600"]
    healthcheck:
      test: ["CMD", "test", "-e", "/ready"]
      interval: 500ms
      retries: 60
)Y");
  auto r = run_yaml(c.dir, c.pipeline(R"(  - name: tests
    setup: "docker-compose up -d 2>&1 && {wait db}"
    for_each: [t]
    run: "{exec db} test -e /ready"
)"),
                    {"--no-color"});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(docker_leftovers(c.base), "");
}

// A service that exits 3 after 1 s fails the wait in seconds (not at the timeout), naming
// it, its exit code and its last log line.
TEST(Compose, WaitFailsAtOnceForAServiceThatExits) {
  Cluster c;
  c.dir.write("docker-compose.yml", R"Y(version: "2.4"
services:
  db:
    image: pcr-busybox:test
    command: ["sh", "-c", "sleep 1; echo cannot bind port 5432; exit 3"]
    healthcheck:
      test: ["CMD", "false"]
      interval: 10s
)Y");
  const auto started = std::chrono::steady_clock::now();
  auto r = run_yaml(c.dir, c.pipeline(R"(  - name: tests
    setup: "docker-compose up -d 2>&1 && {wait db}"
    for_each: [t]
    run: "true"
)"),
                    {"--no-color"});
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("{wait}: db exited with code 3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cannot bind port 5432"), std::string::npos) << r.out;
  EXPECT_LT(took, 30) << "it waited for a timeout";
  EXPECT_EQ(docker_leftovers(c.base), "");
}

// A set-up has its own timeout, not the tests': one stuck in `{wait}` names the service
// that was not ready.
TEST(Compose, ASetUpTimingOutInWaitNamesTheService) {
  Cluster c;
  c.dir.write("docker-compose.yml", R"Y(version: "2.4"
services:
  db:
    image: pcr-busybox:test
    init: true
    command: ["sleep", "3600"]
    healthcheck:
      test: ["CMD", "false"]
      interval: 30s
      start_period: 60s
)Y");
  auto r = run_yaml(c.dir, c.pipeline(R"(  - name: tests
    timeout: 1s
    setup_timeout: 4s
    setup: "docker-compose up -d 2>&1 && {wait db}"
    for_each: [t]
    run: "true"
)"),
                    {"--no-color"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("timed out after 4s"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("gave up waiting for db"), std::string::npos) << r.out;
  EXPECT_EQ(docker_leftovers(c.base), "");
}

namespace {
// The ids of the running containers of projects whose name contains `marker`, sorted.
std::string container_ids(const std::string& marker) {
  return sh("docker ps -q --no-trunc --filter name=" + marker + " | sort");
}
}  // namespace

// Warm clusters: two --keep-clusters runs use the same containers; `reset:` runs before
// each worker's first test on them; a changed compose file brings them up afresh; `pcr
// clean` takes them down, saying so; under CI=true the flag is refused.
TEST(Compose, KeptClustersAreReusedResetAndCleaned) {
  Cluster c;
  const std::string steps = R"(steps:
  - name: tests
    workers: 2
    setup: echo "$CI_CLUSTER_REUSED" >> reused && docker-compose up -d 2>&1
    for_each: [a, b, c, d]
    run: "{exec web} true"
)";
  // What each worker's set-up was told, run after run.
  const auto told = [&c] { return sh("sort '" + c.dir.file("reused") + "' | uniq -c | tr -s ' '"); };
  // `reset:` with a placeholder: it reaches the worker's own cluster.
  c.dir.write("ci.yaml", "name: " + c.base +
                             "\ncompose:\n  file: docker-compose.yml\n  reset: \"{exec web} true && echo reset >> resets\"\n" +
                             steps);
  PcrOptions in_dir;
  in_dir.cwd = c.dir.path();
  in_dir.env = {"CI="};  // a local run, even where the suite runs under CI=true
  auto first = run_pcr({"run", "--no-color", "--keep-clusters"}, in_dir);
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_NE(first.err.find("kept 2 cluster(s) up for the next"), std::string::npos) << first.err;
  const std::string ids = container_ids(c.base);
  ASSERT_NE(ids, "") << "the clusters stay up";
  EXPECT_EQ(sh("cat '" + c.dir.file("resets") + "' | wc -l"), "2\n") << "once per worker";
  // Another run without the flag is told they are kept, not killed.
  auto plain = run_pcr({"run", "--dry-run"}, in_dir);
  EXPECT_NE(plain.err.find("kept up by `pcr run --keep-clusters`"), std::string::npos) << plain.err;
  EXPECT_EQ(plain.err.find("killed"), std::string::npos) << plain.err;
  auto second = run_pcr({"run", "--no-color", "--keep-clusters"}, in_dir);
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_EQ(container_ids(c.base), ids) << "the same containers, reused";
  EXPECT_EQ(sh("cat '" + c.dir.file("resets") + "' | wc -l"), "4\n");
  EXPECT_EQ(told(), " 2 false\n 2 true\n") << "kept, unchanged, running: reused";
  // One container stopped: that worker's cluster is not reused as it is.
  sh("docker stop -t 0 $(docker ps -q --filter name=" + c.base + " | head -n 1) > /dev/null");
  auto stopped = run_pcr({"run", "--no-color", "--keep-clusters"}, in_dir);
  ASSERT_EQ(stopped.exit_code, 0) << stopped.out << stopped.err;
  EXPECT_EQ(told(), " 3 false\n 3 true\n");
  // A changed compose file: the kept clusters go, and come up afresh.
  c.dir.write("docker-compose.yml", cluster_compose(true) + "# changed\n");
  auto third = run_pcr({"run", "--no-color", "--keep-clusters"}, in_dir);
  ASSERT_EQ(third.exit_code, 0) << third.out << third.err;
  const std::string fresh = container_ids(c.base);
  EXPECT_NE(fresh, "");
  EXPECT_NE(fresh, ids);
  EXPECT_EQ(told(), " 5 false\n 3 true\n") << "changed compose files: not reused";
  // Under CI, refused: torn down as usual.
  PcrOptions ci = in_dir;
  ci.env = {"CI=true"};
  auto under_ci = run_pcr({"run", "--no-color", "--keep-clusters"}, ci);
  EXPECT_NE(under_ci.err.find("ignored under CI=true"), std::string::npos) << under_ci.err;
  auto clean = run_pcr({"clean"}, in_dir);
  EXPECT_EQ(clean.exit_code, 0) << clean.out;
  EXPECT_NE(clean.out.find("took down kept cluster " + c.base), std::string::npos) << clean.out;
  EXPECT_EQ(docker_leftovers(c.base), "");
}

// Tests through `{exec}` are named by their item everywhere a reader looks — the result
// lines, the summary, slowest jobs, prefixed tags, a GitHub annotation — never by the
// wrapper; the JUnit has exactly the user's tests, none named with the run id.
TEST(Compose, ExecTestsAreNamedByTheirItemNotTheWrapper) {
  Cluster c;
  c.dir.write("ci.yaml", "name: " + c.base + R"(
compose:
  file: docker-compose.yml
steps:
  - name: tests
    workers: 2
    setup: docker-compose up -d 2>&1
    teardown: "true"
    for_each: [tests/cart_test.sh, tests/payments_test.sh, tests/search_test.sh]
    run: "{exec web} sh -c 'echo running {items}; case {items} in *search*) exit 1;; esac'"
)");
  PcrOptions o;
  o.env = {"GITHUB_ACTIONS=true"};
  auto grouped = run_pcr({"run", "--no-color", "--junit", c.dir.file("j.xml"), c.dir.file("ci.yaml")}, o);
  EXPECT_EQ(grouped.exit_code, 1) << grouped.out;
  EXPECT_EQ(grouped.out.find(".pcr/exec.sh"), std::string::npos) << grouped.out;
  EXPECT_NE(grouped.out.find("✗ tests › tests/search_test.sh [n="), std::string::npos) << grouped.out;
  EXPECT_NE(grouped.out.find("::error title=tests/search_test.sh::"), std::string::npos) << grouped.out;
  const auto slowest = grouped.out.find("slowest jobs:");
  ASSERT_NE(slowest, std::string::npos);
  EXPECT_NE(grouped.out.find("tests › tests/", slowest), std::string::npos) << grouped.out.substr(slowest);
  const std::string junit = read_file(c.dir.file("j.xml"));
  std::size_t cases = 0;
  for (auto at = junit.find("<testcase "); at != std::string::npos; at = junit.find("<testcase ", at + 1)) ++cases;
  EXPECT_EQ(cases, 3u) << junit;
  EXPECT_EQ(junit.find("name=\"" + c.base + "-"), std::string::npos) << "a name with the run id: " << junit;
  EXPECT_EQ(junit.find("compose teardown"), std::string::npos) << junit;
  auto prefixed = run_pcr({"run", "--no-color", "--output", "prefixed", c.dir.file("ci.yaml")});
  EXPECT_NE(prefixed.out.find("[tests/cart_test.sh] running tests/cart_test.sh"), std::string::npos) << prefixed.out;
  EXPECT_EQ(prefixed.out.find(".pcr/exec.sh"), std::string::npos) << prefixed.out;
  EXPECT_EQ(docker_leftovers(c.base), "");
}

// A service killed from outside while a job uses it is named in that job's failure, from
// the run's docker events: its exit code, the kill, and when it died.
TEST(Compose, AServiceDyingUnderARunningJobIsNamed) {
  Cluster c;
  PcrOptions o;
  o.while_running = [&](pid_t) {
    ASSERT_TRUE(wait_until([&] { return exists(c.dir.file("polling")); }, std::chrono::seconds(120)));
    sh("docker kill " + read_file(c.dir.file("db.id")).substr(0, 64) + " > /dev/null");
  };
  auto r = run_yaml(c.dir, c.pipeline(R"(  - name: tests
    setup: docker-compose up -d 2>&1 && docker-compose ps -q db > db.id
    for_each: [t]
    timeout: 60s
    run: "touch polling; {exec web} sh -c 'while wget -q -O- http://db:8080/ > /dev/null; do sleep 0.2; done; exit 1'"
)"),
                    {"--no-color", "--log-dir", c.dir.file("logs")}, o);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(std::regex_search(
      r.out, std::regex("db exited with code 137 \\(docker kill, signal [A-Z0-9]+\\), [0-9]+\\.[0-9] s into the job")))
      << r.out;
  EXPECT_EQ(docker_leftovers(c.base), "");
}

// A service that crashed and was brought back by its restart policy is running again when
// the job's failure is looked at: only the run's docker events know it died, and when.
TEST(Compose, AServiceRestartedAfterACrashIsStillNamed) {
  Cluster c;
  c.dir.write("docker-compose.yml", R"Y(version: "2.4"
services:
  db:
    image: pcr-busybox:test
    restart: on-failure
    command: ["sh", "-c", "[ -e /crashed ] && exec sleep 3600; while [ ! -e /crash ]; do sleep 0.1; done; touch /crashed; echo db lost its disk; exit 3"]
)Y");
  auto r = run_yaml(c.dir, c.pipeline(R"Y(  - name: tests
    setup: docker-compose up -d 2>&1
    for_each: [t]
    timeout: 60s
    run: |
      {exec db} touch /crash
      until [ "$(docker inspect -f '{{{{.RestartCount}}}} {{{{.State.Running}}}}' $(docker-compose ps -q db))" = "1 true" ]; do sleep 0.2; done
      exit 1
)Y"),
                    {"--no-color"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("db exited with code 3, [0-9]+\\.[0-9] s into the job"))) << r.out;
  EXPECT_NE(r.out.find("db lost its disk"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("timed out"), std::string::npos) << "the job never saw db back: " << r.out;
  EXPECT_EQ(docker_leftovers(c.base), "");
}
