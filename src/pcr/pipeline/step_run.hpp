#pragma once

// Internal to the engine (not installed): one step of a run, between the scheduler and
// processes. The engine (engine.cpp) owns the step order, interrupts, the pipeline timeout
// and host probing; a StepRun finds its items, lays out its jobs (layout.hpp), and as the
// scheduler's JobRunner builds each command and spawns it, classifies how it ended and
// tells the observers.

#include <pcr/pipeline/engine.hpp>
#include <pcr/pipeline/host_pool.hpp>
#include <pcr/pipeline/layout.hpp>
#include <pcr/proc/loop.hpp>
#include <pcr/proc/process.hpp>
#include <pcr/sched/scheduler.hpp>
#include <pcr/sched/timings.hpp>
#include <pcr/util/regex.hpp>

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace pcr::pipeline {

using Vars = std::map<std::string, std::string>;

// How long a process may take and how it is stopped.
struct Limits {
  Millis timeout{0};       // 0: none
  Millis idle_timeout{0};  // 0: none
  Millis kill_grace{StepOptions{}.kill_grace};
};

// A step's limits, for its jobs, set-ups, tear-downs and its for_each command.
Limits limits_of(const StepOptions& options);

// The grace of pcr's own helper commands (host probes, after-job commands): they are
// short, and a user's kill_grace is about the user's jobs.
inline constexpr Millis k_helper_grace{2000};

// The one place a process is described: every process of a run (jobs, set-ups,
// tear-downs, the for_each command, after-job commands, probes) is built here.
proc::Spawn make_spawn(std::string command, const Vars& env, std::string workdir,
                       std::string spool, const Limits& limits);

// What the steps of one run share with the engine.
struct RunState {
  RunState(const Pipeline& p, const RunOptions& o, Observer& obs, proc::Loop& l,
           proc::ProcessSet& ps)
      : pipeline(p), options(o), observer(obs), loop(l), procs(ps), hosts(p.hosts) {}

  const Pipeline& pipeline;
  const RunOptions& options;
  Observer& observer;
  proc::Loop& loop;
  proc::ProcessSet& procs;
  HostPool hosts;
  std::string run_id;
  std::string spool_dir;
  std::string saved_dir;  // RunOptions::saved_dir, for this run ("" : nothing saved)
  Vars base_env;  // pcr's environment, then the pipeline's `env`
  std::map<std::string, std::vector<std::string>> captures;  // `capture:` VAR → lines
  std::map<std::string, std::string> exported;  // VAR → its lines joined, when they fit the environment
  sched::Timings timings;
  RunResult result;
  bool timed_out = false;  // the pipeline's timeout expired
  // Jobs that failed for good through pcr's own fault (JobResult::own_fault), and any
  // other failure (a job's, a set-up's, a step's own error, no host answering): a run
  // whose only failures are pcr's own exits 3, not 1.
  bool own_failures = false, other_failures = false;
  // What this run's main steps did, for the next `--rerun-failed` (rerun.hpp).
  LastRun outcome;
  int interrupt = 0;       // the first interrupting signal
  unsigned pool = 0;  // a for_each pool's default size with hosts: the capacity that answered
  // Ask `host` whether it still answers, then call `then` (the engine probes).
  std::function<void(std::size_t host, std::function<void()> then)> probe;

  // Whether `step`'s workers are placed on the pipeline's hosts.
  bool placed(const Step& step) const { return !pipeline.hosts.empty() && step.extended; }
  // Move worker `slot` off a host that stopped answering, and say so.
  void move_slot(unsigned slot);
};

class StepRun : public sched::JobRunner {
 public:
  StepRun(RunState& run, const Step& step, StepInfo info);
  ~StepRun() override;

  // Find the items (perhaps by running the for_each command), lay out the jobs and start
  // them; `done` is called (posted) when the step has ended.
  void start(std::function<void()> done);
  // Stop the step's jobs (and its for_each command): after their grace, or `immediately`.
  void cancel(bool immediately);
  // `host` stopped answering: stop this step's jobs there and move or retire its workers.
  void host_gone(std::size_t host);
  // The step's outcome once `done` was called; captured lines go to `run.captures`.
  StepResult finish(Millis duration);

  const StepInfo& info() const { return m_info; }
  // Its jobs running now: for a status request (SIGUSR1).
  std::vector<JobProgress> running() const;

  // sched::JobRunner
  void start(std::size_t index, unsigned worker, unsigned attempt) override;
  void stop(std::size_t index, bool immediately) override;
  void start_setup(unsigned worker) override;
  void start_teardown(unsigned worker) override;
  void stop_worker_task(unsigned worker, bool immediately) override;

 private:
  struct Job;

  void launch(const std::vector<std::string>& items);
  void record_outcome(bool failed);
  JobProgress progress(std::size_t index) const;
  void start_task(unsigned worker, JobKind kind);
  std::optional<std::size_t> host_of(unsigned worker, std::size_t index);
  void place(JobContext& ctx, JobInfo& info, std::optional<std::size_t> host) const;
  // The process of a job (or task) of this step, or why it must not start: an extension
  // could not prepare it.
  util::Expected<proc::Spawn> spawn_for(const std::string& command, const JobContext& ctx,
                                        const std::string& spool, bool* own = nullptr) const;
  // A job's or task's process: `cmd` built for `ctx`. When that, or an extension, fails,
  // the process is `exit 127` and `error` says why (the job is reported as not started).
  struct Prepared {
    proc::Spawn spawn;
    std::string command;
    std::string error;
    bool own = false;  // `error` is pcr's own failure (pipeline::OwnFailure)
  };
  Prepared prepare(const Command& cmd, const JobContext& ctx, const std::string& spool) const;
  JobResult classify(const proc::Exit& exit, const std::string& build_error,
                     bool pipeline_timed_out) const;
  void export_capture(const std::string& var, const std::vector<std::string>& lines);
  void after_job(std::size_t index, bool failed, std::function<void()> then);
  void run_helper(const std::string& command, const JobContext& ctx, const std::string& spool, unsigned job,
                  std::function<void()> then);
  void task_ended(unsigned worker, const proc::Exit& exit, JobResult result);
  std::string saved_dir_for(const std::string& name, unsigned worker, unsigned attempt) const;
  std::string collect_command(const JobContext& ctx, bool failed, const std::string& dir) const;
  void take_saved(const std::string& dir, const JobContext& ctx, std::chrono::system_clock::time_point started,
                  JobResult& r) const;
  void record_timing(const Job& job, const JobResult& r);
  void ended(std::size_t index, const proc::Exit& exit, const std::string& build_error);
  void conclude(std::size_t index, JobResult r, std::optional<std::size_t> host);
  void read_results(const Job& job, JobResult& r) const;
  // The `results: junit` glob for `job` ({job} and {n} filled in), and the files it
  // matches now (absolute); a bad pattern leaves `error` set.
  std::string junit_pattern(const Job& job) const;
  std::vector<std::string> junit_files(const Job& job, std::string* error = nullptr) const;
  void leave_down_hosts();

  RunState& m_run;
  const Step& m_step;
  StepInfo m_info;
  std::vector<Job> m_jobs;
  std::unique_ptr<sched::Scheduler> m_scheduler;
  Vars m_env;
  std::vector<std::vector<std::string>> m_stdout_lines;  // per job, when captured
  std::size_t m_kept_bytes = 0, m_kept_lines = 0;         // in m_stdout_lines (max_kept_bytes, max_items)
  std::optional<util::Regex> m_expect;
  StepResult m_result;
  proc::ProcessSet::Id m_lister = 0;  // the for_each command, while it runs
  bool m_keep_stdout = false;  // its jobs' stdout goes to a file of its own too
  bool m_read_stdout = false;  // ...read as lines when a job passes (capture, expect, check)
  std::vector<JobInfo> m_tasks;  // per worker: its set-up or tear-down
  std::set<unsigned> m_reset_workers;  // workers whose first job had the extensions' before_job
  std::vector<proc::ProcessSet::Id> m_task_process;
  std::vector<std::size_t> m_job_host;  // per_host: job → host
  std::function<void()> m_done;
  // --queue: the queue shared with the build's other machines, its timers, and each job's
  // last result as the queue records it.
  void share(const std::vector<std::size_t>& order);
  void stop_sharing();
  std::unique_ptr<sched::SharedQueue> m_shared;
  proc::Loop::TimerId m_heartbeat = 0, m_poll = 0;
  std::vector<std::string> m_shared_results;
  bool m_shared_failed = false;  // the queue itself failed: pcr's fault (exit 3), not the jobs'
};

}  // namespace pcr::pipeline
