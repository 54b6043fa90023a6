#pragma once

#include <pcr/pipeline/engine.hpp>
#include <pcr/pipeline/model.hpp>

#include <exception>
#include <optional>
#include <string>
#include <vector>

namespace pcr::session {

// One `pcr run` of a loaded pipeline, as the command line asks for it: the options, the
// supervisor and its engine, the reports wired to the run, what a killed run left behind,
// and the records the daily loop keeps (`--rerun-failed`, `--keep-clusters`). The cli
// parses flags into RunFlags and maps what comes back to the process's exit.

inline constexpr int k_exit_usage = 2;     // bad flags or file: nothing ran
inline constexpr int k_exit_internal = 3;  // pcr itself failed during a run (docs/cli.md)

// The flags of `pcr run` (and of a C++ pipeline's `run_main`), as given.
struct RunFlags {
  unsigned jobs = 0;
  std::string step;
  bool dry_run = false;
  std::string output = "grouped";
  bool no_color = false;
  std::string heartbeat = "30s";
  std::string timings;
  std::string log_dir, junit, json, html;
  bool fail_on_flaky = false;
  std::string shard;
  bool require_all_hosts = false;
  bool rerun_failed = false;
  bool keep_clusters = false;
  std::vector<std::string> only;
  std::string queue;                   // --queue redis://HOST:PORT/NAME
  std::string queue_timeout = "30s";   // a machine silent this long loses its items
  std::string queue_machine;           // this machine's name in the queue
};

// `pcr report --queue URL`: waits (up to `timeout`) until every item of the build is
// done or no machine is alive, prints the build's result, writes `junit` when given;
// 0 when every item passed, 1 otherwise, 2 for a bad URL, 3 when Redis cannot be read.
struct ReportFlags {
  std::string queue;
  std::string timeout = "30m";
  std::string junit, json, html;
  bool no_color = false;
};
int report_queue(const ReportFlags& f);

// Run `p` as `f` asks; the exit code (docs/cli.md). It returns in the supervisor, the
// process that called it, when the run is over; the engine it forks ends its process
// with the run's own code instead of returning (so a C++ program's code after run_main
// runs once).
// `text`: what `p` was loaded from, when pcr read it from a file (the supervisor keeps it,
// to run the cleanup steps should the engine die).
int execute(const pipeline::Pipeline& p, const RunFlags& f, const std::string* text = nullptr);

// `pcr run`, before anything is parsed or loaded: fork the engine (proc/supervise.hpp).
// Returns nullopt in the engine, which goes on to load and run the pipeline; in the
// supervisor, the run's exit code once the engine has ended, having ended what it left
// if it was killed. Nothing happens (nullopt) under PCR_SUPERVISOR=0.
std::optional<int> supervise_first();

// Whether a run has started in this process: an exception out of it is then pcr's own
// failure (3), not a usage error (2).
bool run_started();

// An exception that left pcr's code, said on stderr ("pcr: error: …"); the exit code
// for it: 3 once a run has started, else 2.
int exit_code_after(const std::exception_ptr& error);

// Whether this run keeps its clusters: asked with --keep-clusters, and not under CI=true
// (a CI machine's clusters would outlive the job that could clean them; said once here).
bool keep_clusters(const RunFlags& f);

// `--shard TEXT` (none when empty) into `ro`; false, having said why, when it is bad.
bool apply_shard(const std::string& text, pipeline::RunOptions& ro);

// `pcr check` and `--dry-run`: the plan of `p` under `ro` on stdout (JSON with `json`).
int print_plan(const pipeline::Pipeline& p, pipeline::RunOptions ro, bool no_color, bool json = false);

// `pcr clean FILE`: end what killed runs left in FILE's folder (processes, spool folders,
// compose projects, kept clusters); 0, or 1 when a project could not be taken down.
int clean(const std::string& file);

}  // namespace pcr::session
