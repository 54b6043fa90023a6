#pragma once

#include <pcr/pipeline/model.hpp>
#include <pcr/results/results.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pcr::pipeline {

// What the engine tells its observers. Observers (console, reports) watch; they never
// steer the run. All events arrive on the engine's thread, in order.
//
// The order a reporter can rely on:
//   run_started
//   host_down*                       (at the start: hosts that did not answer)
//   for each main step, then each cleanup step:
//     step_started                   (not for a skipped step: it gets step_finished alone)
//       job_started → job_output* → job_finished     per attempt of each job, and per
//                                    worker set-up / tear-down (JobInfo::kind); attempts of
//                                    different jobs interleave; a retried attempt is a new
//                                    job_started with attempt + 1 after a job_finished
//                                    whose `will_retry` is set
//       host_down*                   (a host found lost after a job failed on it)
//     step_finished                  (after every job_finished of the step)
//   run_finished                     (last; nothing follows)
// note and tick may come at any point between run_started and run_finished; a run that
// cannot start at all (NoteKind::spool_unavailable) sends that note alone, and nothing else. Every
// job_started has exactly one job_finished; a job that could not start gets both, with
// status not_started. Pointers in the infos (StepInfo::step, JobInfo::step) stay valid
// until the matching *_finished event returns.

struct RunInfo {
  std::string name;
  std::string run_id;
  std::size_t steps = 0;    // main steps that will be attempted
  std::size_t cleanup = 0;  // cleanup steps
  std::vector<Host> hosts;  // as configured (before probing)
};

struct StepInfo {
  std::size_t index = 0;  // 1-based among its list
  std::size_t of = 0;     // length of its list
  bool cleanup = false;
  std::string name;
  std::size_t jobs = 0;
  unsigned workers = 0;
  unsigned at_once = 0;  // how many of its jobs run at once: `workers`, fewer under a -j cap
  const Step* step = nullptr;
  // With hosts: the host of each worker (index 0: worker 1); retired ones included.
  std::vector<std::string> worker_hosts;
  // Each job's recorded duration (by JobInfo::index), 0 where none is recorded. A
  // for_each job's is known when the step starts; another job's, which is keyed by its
  // command, when it starts (before its job_started).
  std::vector<Millis> expected;
};

// A job of the step, or a worker's set-up or tear-down.
enum class JobKind { job, setup, teardown };

struct JobInfo {
  const StepInfo* step = nullptr;
  JobKind kind = JobKind::job;
  std::size_t index = 0;  // 0-based job index in the step
  unsigned job = 0;       // 1-based, as {job}
  unsigned worker = 0;    // {n}
  unsigned attempt = 0;   // 0 = first run
  std::string name;       // what it tests (pipeline::job_name): never its expanded command
  std::string command;
  std::vector<std::string> items;
  std::string project;    // its `{project}` (the compose project), when it has one
  std::string spool;      // both streams of this attempt, in arrival order
  std::string host;       // its worker's host (CI_HOST); empty without hosts
};

// A job still running, as a status request (`kill -USR1`) or a SLOW line tells it.
struct JobProgress {
  const JobInfo* job = nullptr;
  Millis age{0};                // since its attempt started
  std::optional<Millis> left;   // to its timeout, when it has one
  std::string tail;             // the last lines of its output (masked), when kept
};

enum class JobStatus {
  passed,
  failed,             // non-zero exit
  signalled,          // killed by a signal not sent by pcr
  timed_out,          // its own timeout or the pipeline's
  idle_timeout,       // printed nothing for idle_timeout
  unexpected_output,  // exit 0 but `expect`/check failed
  cancelled,          // stopped by fail_fast or an interrupt
  not_started,        // could not be spawned (bad workdir, …)
};

struct JobResult {
  JobStatus status = JobStatus::passed;
  int exit_code = 0;
  int signal = 0;
  Millis duration{0};
  Millis limit{0};        // the timeout that expired, for timed_out / idle_timeout
  int leftovers = 0;      // processes killed after the shell exited
  bool will_retry = false;
  bool flaky = false;     // passed on a retry
  bool flaky_fails = false;  // ...and --fail-on-flaky makes that a failure
  // The attempt was lost with its host (which stopped answering), not failed by the job:
  // with `will_retry` it runs again on another host, using none of its retries.
  bool infrastructure = false;
  std::string detail;     // why, in words, where the status alone does not say
  std::uint64_t bytes = 0;
  std::string output_error;  // its output could not all be kept ("PATH: reason")
  // The failure is pcr's own, not the job's: its output could not be kept for the step to
  // read, or pcr could not prepare it (a record it must write). The run then exits 3.
  bool own_fault = false;
  // What an extension saved about it (compose: its services' logs): the folder, its files
  // (masked), and what to read first (services that exited or are unhealthy).
  std::string saved_dir;
  std::vector<std::string> saved_files;
  std::string saved_summary;
  // The tests it reported (`results:`), when the step reads them; null otherwise.
  std::shared_ptr<const results::Results> tests;
  bool skipped = false;  // its tests skipped themselves as a whole (TAP `1..0 # SKIP`)
};

enum class StepOutcome { passed, failed, skipped, interrupted };

struct StepResult {
  StepOutcome outcome = StepOutcome::passed;
  Millis duration{0};
  std::size_t passed = 0, failed = 0, cancelled = 0, flaky = 0;
  std::size_t rerun = 0;  // attempts lost with their host, run again on another
  std::string error;  // a failure of the step itself (e.g. its for_each command)
};

// A host found not answering: at the start (then it is left out) or after a job failed
// on it (then it is quarantined for the rest of the run).
struct HostEvent {
  std::string name;
  std::string address;
  unsigned workers = 0;  // its capacity
  bool at_start = false;
  std::string reason;    // what the probe said
  std::string step;      // the step running when it was quarantined
  std::size_t hosts_left = 0;  // hosts still answering
};

struct RunResult {
  int exit_code = 0;
  Millis duration{0};
  int signal = 0;            // the interrupt that ended the run, if any
  bool supervisor_gone = false;  // no signal: pcr's supervisor died (`signal` is SIGTERM)
  bool timed_out = false;    // the pipeline's timeout expired
  int orphans_killed = 0;    // escaped processes killed at the end
  // The first job output that could not be kept (its spool could not be written: a full
  // disk), as "PATH: reason"; the run fails for it (docs/cli.md, exit 3).
  std::string output_error;
};

// Something the engine tells in passing, as facts; reporters word it (report::note_text).
// Which fields a kind sets is listed beside it; the rest stay empty.
enum class NoteKind {
  spool_unavailable,    // detail: the folder and why (the run cannot start)
  timings_unreadable,   // detail: the file and why (it is ignored, and rewritten)
  timings_not_saved,    // detail: the file and why
  record_not_saved,     // detail: the file and why (the record --rerun-failed reads)
  shard,                // index (1-based), total
  shared_queue,         // step, count (jobs run here), total (the step's), detail (the queue)
  supervisor_gone,      // (pcr's supervisor process died: the engine stops and cleans up)
  pipeline_timeout,     // limit
  interrupted,          // signal; again: the second one, which kills at once
  interrupted_in_cleanup,  // signal; again: the current cleanup jobs are killed
  hosts_answering,      // hosts: "name (N workers)" each
  no_host_answers,      // (the steps are skipped)
  host_required,        // (--require-all-hosts and a host does not answer: steps skipped)
  worker_moved,         // worker, from, to (host names)
  orphans_killed,       // count
  after_job_failed,     // step, job, timed_out, detail: the last lines of its output
  capture_not_exported,  // step, detail: the variable and why (too big for the environment)
  items_filtered,       // step, count of total items run, detail: the flags (--rerun-failed, --only)
  suspended,            // count: the running jobs (job control, ^Z: every one is stopped)
  resumed,              // limit: how long the run was stopped (no deadline counts it)
};

struct Note {
  Note(NoteKind k) : kind(k) {}  // NOLINT(google-explicit-constructor): note(NoteKind::x)
  Note(NoteKind k, std::string what) : kind(k), detail(std::move(what)) {}
  NoteKind kind;
  std::string signal;   // "SIGINT"
  bool again = false;
  std::string detail;
  std::string step;
  unsigned job = 0;
  unsigned worker = 0;
  std::string from, to;
  std::vector<std::string> hosts;
  std::size_t index = 0, total = 0, count = 0;
  Millis limit{0};
  bool timed_out = false;
};

class Observer {
 public:
  virtual ~Observer() = default;
  virtual void run_started(const RunInfo&) {}
  virtual void step_started(const StepInfo&) {}
  virtual void job_started(const JobInfo&) {}
  virtual void job_output(const JobInfo&, std::string_view) {}
  virtual void job_finished(const JobInfo&, const JobResult&) {}
  // A skipped step gets only this event, with outcome `skipped`.
  virtual void step_finished(const StepInfo&, const StepResult&) {}
  virtual void run_finished(const RunResult&) {}
  virtual void host_down(const HostEvent&) {}
  // Once a second while the run goes on.
  virtual void tick() {}
  // Asked for (SIGUSR1): every job running now, the run going on unchanged.
  virtual void status(const std::vector<JobProgress>&) {}
  // A job of a step with `slow:` still running, every `slow` of its life.
  virtual void job_slow(const JobProgress&) {}
  // Something the engine tells in passing: an interrupt, the pipeline timeout, leftovers.
  virtual void note(const Note&) {}
};

// Forwards every event to several observers, in order.
class Observers : public Observer {
 public:
  void add(Observer& o) { m_list.push_back(&o); }
  void run_started(const RunInfo& r) override { for (auto* o : m_list) o->run_started(r); }
  void step_started(const StepInfo& s) override { for (auto* o : m_list) o->step_started(s); }
  void job_started(const JobInfo& j) override { for (auto* o : m_list) o->job_started(j); }
  void job_output(const JobInfo& j, std::string_view d) override {
    for (auto* o : m_list) o->job_output(j, d);
  }
  void job_finished(const JobInfo& j, const JobResult& r) override {
    for (auto* o : m_list) o->job_finished(j, r);
  }
  void step_finished(const StepInfo& s, const StepResult& r) override {
    for (auto* o : m_list) o->step_finished(s, r);
  }
  void run_finished(const RunResult& r) override { for (auto* o : m_list) o->run_finished(r); }
  void host_down(const HostEvent& h) override { for (auto* o : m_list) o->host_down(h); }
  void tick() override { for (auto* o : m_list) o->tick(); }
  void note(const Note& n) override { for (auto* o : m_list) o->note(n); }
  void status(const std::vector<JobProgress>& jobs) override { for (auto* o : m_list) o->status(jobs); }
  void job_slow(const JobProgress& p) override { for (auto* o : m_list) o->job_slow(p); }

 private:
  std::vector<Observer*> m_list;
};

}  // namespace pcr::pipeline
