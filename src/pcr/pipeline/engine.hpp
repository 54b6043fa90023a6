#pragma once

#include <pcr/pipeline/events.hpp>
#include <pcr/pipeline/model.hpp>
#include <pcr/pipeline/rerun.hpp>
#include <pcr/sched/shared_queue.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace pcr::pipeline {

// How much of a streamed job's output its spool keeps (RunOptions::only_jobs_streamed): as
// much as the console's summary and the HTML report show of a failed job.
inline constexpr std::size_t k_streamed_tail = 64 * 1024;

// A step's jobs as offered to a shared queue (RunOptions::shared_queue).
struct SharedJobs {
  std::string step;
  std::vector<std::pair<std::size_t, std::string>> jobs;  // local index, identity (items)
  std::function<std::string(std::size_t job)> result_of;   // JSON: name, status, duration_ms, tail
};

struct RunOptions {
  unsigned jobs = 0;      // cap on jobs running at once across the run; 0: none
  std::string only_step;  // run only the step of this name (plus cleanup)
  std::string run_id;     // empty: a fresh one
  std::string spool_dir;  // empty: a private temporary folder, removed at the end
  std::string timings;    // recorded job durations; empty: <pipeline folder>/.pcr/timings.json
  bool fail_on_flaky = false;  // a pass on a retry fails the step
  // Run only shard `shard_index` (0-based) of `shard_total` of every for_each step's items
  // (main steps; not cleanup), chosen as `pcr split --step NAME` chooses. 0 total: all.
  std::size_t shard_index = 0, shard_total = 0;
  bool require_all_hosts = false;  // an unreachable host at the start fails the run
  // The engine's end of the supervisor's pipe (proc/supervise.hpp), or -1: when it
  // closes, the supervisor is gone and the run stops and cleans up as on SIGTERM.
  int supervisor_fd = -1;
  // Run the cleanup steps only: the supervisor's last act when the engine died. From
  // step `cleanup_from` (0-based): those before it had finished (engine_cleanup_done).
  bool cleanup_only = false;
  std::size_t cleanup_from = 0;
  // When the run began, if before this engine started: the supervisor's cleanup run
  // reports the whole run's duration, not its own.
  std::optional<std::chrono::steady_clock::time_point> started;
  bool save_timings = true;  // false: the timings file is read, never written
  // The observers show a step's only job's output as it comes (when the step shows
  // output) and never read it back whole: the console streams such a job live, and no
  // --log-dir copies it. Then its spool keeps only the tail the summary and the HTML
  // report show (k_streamed_tail), and a job printing gigabytes writes none of it to disk.
  bool only_jobs_streamed = false;
  // Nothing will read the jobs' output (the front end knows: its stdout is /dev/null and
  // it writes no log or report). A job whose step does not read its output itself
  // (capture, expect, results, idle_timeout) then writes straight to /dev/null, as under
  // xargs: pcr copies no byte that nobody could see.
  bool output_unread = false;
  // The values of the pipeline's secrets (the front end resolves them): kept out of the
  // timings file's keys and of the jobs' spool files.
  std::vector<std::string> secrets;
  // `--rerun-failed`: each for_each step runs only the items of `last_run` that did not
  // pass (all of a step that did not run); `--only`: only the items matching one of these
  // globs. Every other step runs as usual (rerun.hpp).
  // Where extensions save what they know of a failed job (compose: its services' logs):
  // `<dir>/<step>/<job>/`. "" : nowhere.
  std::string saved_dir;
  bool rerun_failed = false;
  std::vector<std::string> only;
  // The last run's record, when there is one, and where this run leaves its own ("":
  // nowhere). A filtered run merges into the last record: what it did not run keeps the
  // outcome it had.
  std::optional<LastRun> last_run;
  std::string last_run_path;
  // `--queue`: each main for_each step takes its jobs from a queue shared with the build's
  // other machines. Given the step, its jobs' identities (their items) in queue order and
  // how to describe a job's result (JSON), returns that queue; throws saying why it cannot.
  std::function<std::unique_ptr<sched::SharedQueue>(const SharedJobs&)> shared_queue;
  Millis shared_heartbeat{10'000};  // how often the queue hears this machine is alive
};

// Where `pipeline`'s runs under `options` (its shard) leave their record for
// `--rerun-failed`.
std::string last_run_path(const Pipeline& pipeline, const RunOptions& options);

// Where the timings of `pipeline` live under `options`.
std::string timings_path(const Pipeline& pipeline, const RunOptions& options);

// The key of `pipeline`'s entries in its timings file: its file's name ("ci.yaml"), else
// its `name`, else "pipeline"; masked, as every key of the file is.
std::string timings_key(const Pipeline& pipeline, const RunOptions& options);

// Run `pipeline` to its end and return the exit code: 0 passed, 1 a step failed or the
// pipeline timed out, 128+N interrupted by signal N. Cleanup steps always run. Job
// processes and whatever escaped them are gone when this returns.
int run(const Pipeline& pipeline, const RunOptions& options, Observer& observer);

// A job as a plan shows it: the command expanded as far as is known before the run.
struct PlannedJob {
  unsigned job = 0;
  unsigned worker = 0;  // 0: the first free worker takes it
  std::string host;     // with hosts, for a job whose worker is known
  std::string name;     // job_name: the same the run's events carry
  std::string command;
  std::vector<std::string> items;
};

struct PlannedStep {
  std::string name;
  const Step* step = nullptr;  // in the planned pipeline
  bool cleanup = false;
  unsigned workers = 0;
  bool workers_bound = false;  // the items are known at run time: at most `workers`
  std::vector<PlannedJob> jobs;
  std::string note;  // e.g. items that are only known at run time
  std::vector<std::string> worker_hosts;  // with hosts: the host of each worker (index 0: worker 1)
};

// The plan of `pipeline`: every step with its jobs, running nothing. Items of `for_each`
// from a `command` or a captured variable cannot be known and are described instead.
std::vector<PlannedStep> plan(const Pipeline& pipeline, const RunOptions& options);

// Whether one of `pipeline`'s steps (not cleanup steps) is named `name`.
bool has_step(const Pipeline& pipeline, const std::string& name);

// A fresh run id: lowercase letters and digits, unique per run.
std::string make_run_id();

// The default size of a for_each pool: the number of CPUs.
unsigned default_workers();

// How many of the pipeline's cleanup steps the run whose spool folder is `spool_dir` had
// finished (0 when it had not started cleanup): a supervisor whose engine died runs the
// rest only.
std::size_t cleanup_steps_done(const std::string& spool_dir);

}  // namespace pcr::pipeline
