#pragma once

// Runs the real `pcr` binary as a user would, capturing its output.

#include "plan_diff.hpp"
#include "support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#ifndef PCR_BINARY
#error "PCR_BINARY must name the pcr executable"
#endif

namespace pcr::test {

struct PcrRun {
  int exit_code = -1;
  int signal = 0;
  std::string out;
  std::string err;
  long max_rss_kb = 0;  // of pcr itself (not its jobs: they are its children's children)
  double seconds = 0;
};

struct PcrOptions {
  std::string cwd;
  std::vector<std::string> env;  // extra NAME=value
  std::function<void(pid_t)> while_running;  // called once pcr started
  int timeout_s = 120;
  std::string stdout_path;  // instead of capturing: e.g. /dev/null for huge output
  bool stdout_nonblocking = false;  // pcr's stdout is O_NONBLOCK, as some parents leave it
  std::string stdin_path;           // pcr's stdin (default /dev/null)
  std::string program;              // instead of pcr: a C++ pipeline program (run_main)
};

// `pcr ARGS`, once.
inline PcrRun run_pcr_once(const std::vector<std::string>& args, const PcrOptions& o = {}) {
  TempDir io;
  std::string out_path = io.file("out"), err_path = io.file("err");
  auto start = std::chrono::steady_clock::now();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    std::string target = o.stdout_path.empty() ? out_path : o.stdout_path;
    int out = ::open(target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | (o.stdout_nonblocking ? O_NONBLOCK : 0), 0600);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int devnull = ::open(o.stdin_path.empty() ? "/dev/null" : o.stdin_path.c_str(), O_RDONLY);
    ::dup2(devnull, 0), ::dup2(out, 1), ::dup2(err, 2);
    if (!o.cwd.empty() && ::chdir(o.cwd.c_str()) != 0) _exit(126);
    for (const auto& e : o.env) ::putenv(const_cast<char*>(e.c_str()));
    ::unsetenv("TERM");
    std::vector<char*> argv;
    std::string bin = o.program.empty() ? PCR_BINARY : o.program;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    _exit(127);
  }
  if (o.while_running) o.while_running(pid);
  int status = 0;
  rusage usage{};
  auto deadline = start + std::chrono::seconds(o.timeout_s);
  for (;;) {
    pid_t r = ::wait4(pid, &status, WNOHANG, &usage);
    if (r == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(-pid, SIGKILL);
      ::wait4(pid, &status, 0, &usage);
      ADD_FAILURE() << "pcr did not finish within " << o.timeout_s << "s";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  PcrRun r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  r.max_rss_kb = usage.ru_maxrss;
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  return r;
}

// The plan is the run, for every pipeline the suite runs: `pcr run FILE` with only
// flags that do not change what runs (reports, colour, heartbeat, output style, timings,
// shard) is preceded by `pcr check --json FILE` in the same folder, with the same timings
// and shard, and followed by a comparison of the plan with the run's JSON events: each
// started step's worker and job counts, each started job's command, worker and host. A
// difference fails the test that ran it. Not for runs a test interrupts or watches, runs
// with `--step`, `-j` or `--dry-run`, runs that ran nothing (exit 2), runs that found a
// host down (the plan assumes every host answers), nor steps whose items only the run
// knows. PCR_TEST_PLAN=0 turns it off. In the whole suite: 99 runs compared, 39 not.
// `pcr CHECK…` (a `check --json`), then `pcr RUN…` (a `run`) with `--json` added unless
// `events` names the file it already writes; both with `o`. The plan, the run, and the
// run's events.
struct PlanAndRun {
  PcrRun plan, run;
  std::string events;
};
inline PlanAndRun plan_and_run(const std::vector<std::string>& check, std::vector<std::string> run,
                               const PcrOptions& o, std::string events = "") {
  PcrOptions quiet = o;
  quiet.stdout_path.clear();  // the plan is read from its stdout
  PlanAndRun out;
  out.plan = run_pcr_once(check, quiet);
  TempDir own;
  if (events.empty()) {
    events = own.file("events.jsonl");
    run.insert(run.begin() + 1, {"--json", events});
  }
  out.run = run_pcr_once(run, o);
  out.events = read_file(events);
  return out;
}

// PCR_TEST_PLAN_LOG=FILE: a line per `pcr run` saying whether it was compared, and if
// not why (how much of the suite the comparison covers).
inline void plan_log(const std::string& what) {
  if (const char* path = std::getenv("PCR_TEST_PLAN_LOG")) {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    std::ofstream(path, std::ios::app) << what << "\t" << (test ? test->test_suite_name() : "") << "."
                                       << (test ? test->name() : "") << "\n";
  }
}

inline PcrRun run_pcr(const std::vector<std::string>& args, const PcrOptions& o = {}) {
  const char* off = std::getenv("PCR_TEST_PLAN");
  if (args.empty() || args[0] != "run" || (off && std::string(off) == "0")) return run_pcr_once(args, o);
  if (o.while_running) {
    plan_log("skipped: interrupted or watched");
    return run_pcr_once(args, o);
  }
  std::vector<std::string> check = {"check", "--json"};
  std::string file, events;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    // Flags of how the run is shown or judged, not of what runs; and the two the plan
    // takes too.
    const bool shown =
        a == "--junit" || a == "--html" || a == "--log-dir" || a == "--heartbeat" || a == "--output";
    const bool planned = a == "--timings" || a == "--shard";
    if ((shown || planned || a == "--json") && i + 1 < args.size()) {
      if (a == "--json") events = args[i + 1];
      if (planned) check.push_back(a), check.push_back(args[i + 1]);
      ++i;
    } else if (a == "--no-color" || a == "--fail-on-flaky" || a == "--require-all-hosts") {
    } else if (a.rfind("-", 0) != 0 && file.empty()) {
      file = a;
    } else {
      plan_log("skipped: flag " + a);
      return run_pcr_once(args, o);  // a flag that may change what runs
    }
  }
  if (file.empty()) return run_pcr_once(args, o);
  check.push_back(file);
  const PlanAndRun both = plan_and_run(check, args, o, events);
  const PcrRun& plan = both.plan;
  const PcrRun& r = both.run;
  // 0, 1 and 3 (pcr could not write something) ran to the end; 2 ran nothing.
  if (plan.exit_code != 0 || !(r.exit_code == 0 || r.exit_code == 1 || r.exit_code == 3) || r.signal != 0) {
    plan_log("skipped: check exit " + std::to_string(plan.exit_code) + ", run exit " + std::to_string(r.exit_code));
    return r;
  }
  std::string diff;
  const std::string& log = both.events;
  // A plan assumes every host answers: a run that found one down placed its workers
  // otherwise, as it should.
  if (log.find("\"event\":\"host_down\"") != std::string::npos) {
    plan_log("skipped: a host was down");
    return r;
  }
  try {
    diff = plan_differs(plan.out, log, true);
  } catch (const std::exception& e) {
    diff = std::string("unreadable plan or events: ") + e.what();
  }
  plan_log(diff.empty() ? "compared" : "differs");
  if (!diff.empty()) ADD_FAILURE() << "pcr check showed another run than `pcr run` did: " << diff;
  return r;
}

// Write `yaml` as ci.yaml in `dir` and run `pcr run` on it with `extra` arguments.
inline PcrRun run_yaml(const TempDir& dir, const std::string& yaml, std::vector<std::string> extra = {},
                       PcrOptions o = {}) {
  dir.write("ci.yaml", yaml);
  std::vector<std::string> args = {"run", dir.file("ci.yaml")};
  args.insert(args.end(), extra.begin(), extra.end());
  if (o.cwd.empty()) o.cwd = dir.path();
  return run_pcr(args, o);
}

}  // namespace pcr::test
