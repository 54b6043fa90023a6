#pragma once

#include <pcr/util/duration.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pcr::pipeline {

using util::Millis;
using Env = std::vector<std::pair<std::string, std::string>>;

// The run id a plan shows, before any run has one; extensions recognise a plan by it.
inline constexpr const char* k_planned_run_id = "{run_id}";

// Everything a command may depend on. `number` is the worker slot `{n}` (1-based; 0 only
// in a plan printed before the run, where the slot is not known yet).
struct JobContext {
  unsigned number = 0;
  unsigned job = 0;    // 1-based position among the step's jobs
  unsigned total = 0;  // jobs in the step
  std::vector<std::string> items;
  std::string run_id;
  std::string step;
  // The host of the job's worker (`CI_HOST`) and the environment it gives its jobs; empty
  // without `hosts`.
  std::string host;
  Env host_env;
  // Placeholders an extension provides (`{project}`, `{exec web}`): name and argument to
  // value. Set by the engine; empty when the pipeline has no extension.
  std::function<std::optional<std::string>(const std::string& name, const std::string& arg)> resolve;

  // Whether this is a plan's context (`pcr check`), not a run's: nothing may be written.
  bool planned() const { return run_id == k_planned_run_id; }
};

// A command is a function of the job's context returning one `/bin/sh -c` string.
using Command = std::function<std::string(const JobContext&)>;

// An output check gets the job's stdout lines; returning false fails the job as
// "unexpected output".
using OutputCheck = std::function<bool(const std::vector<std::string>& stdout_lines)>;

enum class OutputMode { show, hide, on_failure };

// Where a job's test results are (`results:`): none, TAP on its stdout, or JUnit XML files
// it writes, found by `junit` (a glob under the step's folder; `{job}` and `{n}` in it are
// the job's number and worker) among files written since the job started.
struct ResultsSpec {
  enum class Format { none, tap, junit };
  Format format = Format::none;
  std::string junit;
};

struct StepOptions {
  std::optional<Millis> timeout;       // per job
  std::optional<Millis> idle_timeout;  // fail a job silent this long
  std::optional<Millis> slow;          // a SLOW line every this long for a job still running
  Millis setup_timeout{5 * 60 * 1000}; // a worker's set-up or tear-down (not `timeout`, the tests')
  Millis kill_grace{10'000};           // SIGTERM → SIGKILL
  unsigned retries = 0;
  bool fail_fast = false;
  OutputMode output = OutputMode::show;
  std::string capture;  // VAR: keep the step's stdout lines
  std::string expect;   // RE2 regex (linear time) some stdout line must match
  OutputCheck check;    // C++ output check; both must hold when both are set
  Env env;
  std::string workdir;  // relative to the pipeline's base directory
  ResultsSpec results;  // the job's test results, read when it ends
};

// The most items one for_each step takes, from any source; more is the step's error (and
// a load error for a list in the file). A bound, so a runaway glob or command cannot
// exhaust memory.
inline constexpr std::size_t max_items = 100'000;
// The longest line pcr takes from a job's stdout as an item or a captured line (as a
// value in the file); a longer one is the step's or the job's error.
inline constexpr std::size_t max_line_bytes = 1u << 20;
// The most one environment variable ("NAME=value" and its NUL) may hold: the kernel's
// MAX_ARG_STRLEN. A job given more cannot start ("Argument list too long").
inline constexpr std::size_t max_env_variable_bytes = 128u << 10;
// What one step's `capture` (or C++ output check) keeps of its jobs' stdout, in all, with
// at most max_items lines: it is held in memory, unlike the output itself. More fails the
// job that passed it.
inline constexpr std::size_t max_kept_bytes = 16u << 20;

struct ForEach {
  enum class Source { none, glob, list, lines, command, function };
  Source source = Source::none;
  std::vector<std::string> list;  // Source::list
  std::string value;              // the glob pattern, the captured VAR, or the command
  std::function<std::vector<std::string>()> items;  // Source::function: asked at step start
  // Source::function, optional: the items a plan shows, given the workers of the steps
  // before it that extensions add to (number and host of each; the run id is "{run_id}").
  std::function<std::vector<std::string>(const std::vector<JobContext>& workers)> planned;
};

enum class Form { run, parallel, commands, for_each };

struct Step {
  std::string name;
  Form form = Form::run;
  // One command, or (Form::commands) one per job. `texts` are their sources for display.
  std::vector<Command> commands;
  std::vector<std::string> texts;
  unsigned parallel = 1;  // Form::parallel
  ForEach for_each;       // Form::for_each
  unsigned batch = 1;     // items per for_each job
  unsigned groups = 0;    // for_each: exactly this many jobs, balanced up front (0: off)
  std::vector<std::string> separate;  // for_each items that get a job of their own
  unsigned workers = 0;   // for_each pool size; 0: as many as CPUs
  // Once per worker: before its first job, and after its last (always, once set up).
  Command setup, teardown;
  std::string setup_text, teardown_text;
  StepOptions options;
  bool per_host = false;  // Form::run only: once on every host that answers
  // Extensions add to its jobs, and its workers are placed on the hosts (false for the
  // extensions' own steps, which address hosts themselves).
  bool extended = true;
  // A step pcr adds for its own work (the compose teardown): not one of the user's tests,
  // so the reports that count tests (JUnit) leave it out.
  bool own = false;
};

// Where workers' commands go: a Docker engine, addressed by the environment it gives each
// job of a worker placed on it (`DOCKER_HOST=…`). A step's workers are spread over the
// hosts that answer, by capacity.
struct Host {
  std::string name;      // CI_HOST
  Env env;               // e.g. DOCKER_HOST
  unsigned workers = 1;  // capacity
  std::string address;   // for messages: what the env points at
};

// How a layer above the engine (docker-compose support) adds to every job without the
// engine knowing what it adds.
// Thrown by an extension when pcr itself could not do its part for a job (write the
// record `pcr clean` relies on, say): the job does not start, and the run ends with pcr's
// own exit code (3), not a test failure's (1). Any other exception is the job's failure.
struct OwnFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Extension {
  // Extra environment for a job, asked as it starts (under the step's own `env`).
  std::function<Env(const JobContext&)> env;
  // Told the job's whole environment (pcr's, the pipeline's, its host's, the step's and
  // the extensions') just before it starts, to record what the job will reach (compose: the
  // project and its DOCKER_HOST, for `pcr clean`). Throws to keep the job from starting.
  std::function<void(const JobContext&, const Env& job_env)> starting;
  // The part of that environment known before the run (e.g. `compose: env:`): where a
  // variable named in `secrets` may get its value, which is then masked too.
  Env fixed_env;
  // The value of placeholder `name` with `arg` ({exec web}: "exec", "web"), or nullopt.
  std::function<std::optional<std::string>(const std::string& name, const std::string& arg, const JobContext&)>
      placeholder;
  // Warnings for `pcr check` ("file:line:column: warning: …").
  std::function<std::vector<std::string>()> check;
  // When the engine of run `run_id` was killed, its supervisor asks this to end what the
  // run left outside its processes (compose: the run's projects, unless `teardown:
  // false`); appends what it did to `log`, returns how many things it could not end.
  std::function<int(const std::string& run_id, std::string& log)> engine_died;
  // Told when a host stops answering (or does not answer at the start): what lives there
  // cannot be reached any more.
  std::function<void(const Host&)> host_down;
  // A command to run when a job of this extension's steps has ended, however it ended
  // (passed, failed, timed out, stopped), before its worker takes the next job: to stop
  // what the job started outside pcr's reach (a command inside a container, which killing
  // the job's process group does not reach). nullopt: nothing to do. Bounded by its own
  // timeout, not the job's kill_grace; a failure is reported as a note.
  std::function<std::optional<std::string>(const JobContext&)> after_job;
  // A command to run in the job's shell before its command, for the first job of each
  // worker in a for_each step (`first`) and for a retry (`attempt` > 0): compose's
  // `reset:`. The job does not run when it fails. nullopt: nothing.
  std::function<std::optional<std::string>(const JobContext&, bool first, unsigned attempt)> before_job;
  // A command that saves, into folder `dir`, what the extension's world knows of a job or
  // set-up that just ended (compose: every service's log, `ps`, each container's state),
  // before anything else touches its worker; `failed` says whether it failed. nullopt:
  // nothing to save (compose `logs: on-failure` and a job that passed). The engine masks
  // the files it wrote and hands them to the observers with the job's result.
  std::function<std::optional<std::string>(const JobContext&, bool failed, const std::string& dir)> collect;
  // Of the files `collect` wrote into `dir` for the job (or set-up) of `ctx` that started
  // at `started`, what a reader should see at once (compose: the services that died or
  // turned unhealthy, when, with their last log lines); "" for none.
  std::function<std::string(const JobContext& ctx, const std::string& dir,
                            std::chrono::system_clock::time_point started)>
      summarize;
  // A command kept running beside the whole run, once per host the run uses (once, with
  // host "", without `hosts:`): started before the first step with that host's
  // environment, ended with the run. Each line it prints goes to `watched`, from the loop.
  // Empty: nothing to watch (compose: `docker events` of the run's projects, so a service
  // dying under a job is known, with when, however it was restarted since).
  std::string watch;
  std::function<void(const std::string& host, std::string_view line)> watched;
};

struct Pipeline {
  std::string name;
  // The file it was loaded from, as given; empty for a pipeline built in C++.
  std::string source;
  std::optional<Millis> timeout;  // bounds the steps, not the cleanup
  Env env;
  std::vector<std::string> secrets;
  std::vector<Step> steps;
  std::vector<Step> cleanup;
  std::string base_dir;  // jobs run and globs resolve here; empty: the current directory
  std::vector<Extension> extensions;
  // Empty: everything runs here. Else each host is probed before the first step: the
  // command `host_probe`, run with the host's env, exits 0 when the host answers (bounded
  // by `probe_timeout`). A job that fails on a host makes pcr probe it again; a host that
  // no longer answers is quarantined and the job runs again on another host.
  std::vector<Host> hosts;
  std::string host_probe;
  // `queue:` (redis://HOST:PORT/NAME, variables expanded): the build's shared queue, as
  // `pcr run --queue` gives it (the flag wins). Empty: none.
  std::string queue;
  Millis probe_timeout{20'000};
};

}  // namespace pcr::pipeline
