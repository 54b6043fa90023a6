#pragma once

#include <pcr/pipeline/engine.hpp>
#include <pcr/pipeline/events.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pcr::report {

using pipeline::Millis;

// Pure formatting for the console: no I/O, no clocks. `color` adds ANSI colour codes.

struct Style {
  bool color = false;
  std::string paint(std::string_view code, std::string_view text) const;
  std::string green(std::string_view t) const { return paint("32", t); }
  std::string red(std::string_view t) const { return paint("31", t); }
  std::string yellow(std::string_view t) const { return paint("33", t); }
  std::string dim(std::string_view t) const { return paint("2", t); }
  std::string bold(std::string_view t) const { return paint("1", t); }
};

// "step 2/3: tests — 12 jobs on 4 workers" (cleanup steps say "cleanup 1/2").
std::string banner(const pipeline::StepInfo& step, const Style& style);

// "a: 2, b: 2": how many of a step's workers each host has, in order of first worker.
std::string host_counts(const std::vector<std::string>& worker_hosts);

// "host b (ssh://ci@b) stopped answering during step specs: …; quarantined, …".
std::string host_down_line(const pipeline::HostEvent& e);

// How a job ended, in words: "passed", "failed with exit code 2", "killed by signal 9
// (SIGKILL)", "timed out after 3s", "passed on retry 1 (flaky)", …
std::string describe(const pipeline::JobResult& result, unsigned attempt);

// The result line of a job: mark, words, duration, job, worker and command.
std::string job_line(const pipeline::JobInfo& job, const pipeline::JobResult& result,
                     const Style& style);

// The line announcing a job whose output now streams live.
std::string live_line(const pipeline::JobInfo& job, const Style& style);

// A job that is running, as progress lines name it.
struct RunningJob {
  std::size_t index = 0;  // JobInfo::index
  std::string name;       // its items, or its command
  Millis elapsed{0};
};

// The name progress lines give a job: its items joined by spaces, else its command;
// terminal-safe, elided to 40 columns.
std::string running_name(const pipeline::JobInfo& job);

// The estimated time left of a step, from recorded durations (`expected`, by job index;
// 0: none recorded): each running job's recorded duration less its elapsed time, then
// the jobs not yet started (`queued`), longest first, each on the worker that frees
// first — as the queue hands them out. A job with no record counts as the median of the
// step's records. nullopt when none of the jobs left has a record.
std::optional<Millis> time_left(const std::vector<Millis>& expected, const std::vector<RunningJob>& running,
                                const std::vector<std::size_t>& queued, unsigned workers);

// The progress of a step on one line, elided to `width` columns: "[step 2/3 tests] 5 of
// 12 jobs done, 2 running, 1m20s, ~40s left · spec/a 12s, spec/b 3s" (running jobs
// longest running first; no estimate without one).
std::string status_line(const pipeline::StepInfo& step, size_t done, const std::vector<RunningJob>& running,
                        Millis elapsed, std::optional<Millis> left, size_t width);

// The heartbeat off a terminal: "… tests: running for 1m30s, 3 of 12 jobs done, ~40s
// left; running spec/a (12s), spec/b (3s)" (at most 4 named, then "and N more").
std::string heartbeat_line(const pipeline::StepInfo& step, size_t done, Millis elapsed,
                           const std::vector<RunningJob>& running, std::optional<Millis> left);

// A note in words, as the console prints it (after "pcr: "): "SIGINT: stopping the
// running jobs, then cleanup (again to kill at once)". Not terminal-safe yet.
std::string note_text(const pipeline::Note& note);

// The name of a note's kind in the JSON event log: "interrupted", "worker_moved", …
std::string_view note_kind(pipeline::NoteKind kind);

// What the summary needs to know, gathered while the run went on.
struct StepRecord {
  pipeline::StepInfo info;
  pipeline::StepResult result;
};
struct JobRecord {
  std::string step;
  pipeline::JobKind kind = pipeline::JobKind::job;
  unsigned job = 0;
  unsigned worker = 0;
  unsigned attempt = 0;
  std::string command;
  pipeline::JobResult result;
  std::string tail;  // last lines of output, for failed jobs
  std::string name;  // pipeline::JobInfo::name: what the job tests
  bool itemized = false;  // a for_each job: its name is its item(s), its command not shown
};

// A job's name as shown (JobInfo::name; "setup"/"teardown" for a worker's tasks).
std::string job_name(const pipeline::JobInfo& job);

// A running job, for a status request: name, worker, step, cluster, age, time to its
// timeout, then its last lines of output; and the one line a `slow:` step prints.
std::string progress_text(const pipeline::JobInfo& job, const pipeline::JobProgress& p, const Style& style);
std::string slow_line(const pipeline::JobInfo& job, const pipeline::JobProgress& p);

// What an extension saved about a failed job (its services' logs): the folder and its
// files, then the services that exited or are unhealthy with their last lines; "" when
// nothing was saved.
std::string saved_text(const pipeline::JobResult& r, const Style& style);
// The tests the jobs of a run reported (`results:`), counted over their final attempts.
struct TestCounts {
  std::size_t jobs = 0;  // jobs that reported tests
  std::size_t passed = 0, failed = 0, skipped = 0, todo = 0;
  std::size_t skipped_jobs = 0;  // jobs whose tests skipped themselves as a whole
  void add(const results::Results& r) {
    ++jobs;
    passed += r.passed(), failed += r.failed(), skipped += r.skipped(), todo += r.todo();
    if (r.skip_all) ++skipped_jobs;
  }
};

// "12 tests, 1 failed, 2 skipped"
std::string test_counts(const results::Results& r);

struct Summary {
  TestCounts tests;
  std::vector<StepRecord> steps;
  std::vector<JobRecord> failed;
  std::vector<JobRecord> flaky;
  std::vector<JobRecord> slowest;  // longest first
  std::vector<pipeline::HostEvent> hosts_down;
  std::vector<JobRecord> lost;     // attempts lost with their host (run again elsewhere)
  pipeline::RunResult run;
  // Why the run fails although its steps did not (run.exit_code is then the front end's,
  // e.g. 3): "could not write logs/run.log: No space left on device". "" when not.
  std::string failure;
};

// How well a pool step used its workers: each worker's busy time, and the step's
// makespan against its lower bound max(total work / workers, longest job). "" for
// fewer than two workers. `busy[w]` is worker w+1's.
std::string straggler_report(const std::vector<Millis>& busy, Millis makespan, Millis longest);

// The end-of-run summary, several lines, ending in a newline.
std::string summary(const Summary& s, const Style& style);

// The name of signal `sig` ("SIGKILL"), or its number.
std::string signal_name(int sig);

// "INTERRUPTED by SIGINT", or what ended a run that no signal interrupted.
std::string interrupted_verdict(const pipeline::RunResult& run);

}  // namespace pcr::report

namespace pcr::report {

// The plan `pcr check` and `pcr run --dry-run` print: every step, its jobs and their
// commands as expanded before the run.
std::string plan_text(const pipeline::Pipeline& p, const std::vector<pipeline::PlannedStep>& plan,
                      const Style& style);

}  // namespace pcr::report
