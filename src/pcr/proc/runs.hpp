#pragma once

#include <pcr/proc/loop.hpp>

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace pcr::proc {

// What a run writes to `.pcr/runs/<run id>.json` beside its pipeline while it runs, so that
// if both of its processes are killed at once (a `kill -9` of both, a machine-wide OOM
// kill), `pcr clean` and the next `pcr run` can find what it left. The run's jobs are
// found by the `CI_RUN_ID=<run id>` every job has in its environment (also those that
// left their group or session); the two pcr processes by pid *and* start time, so a pid
// reused by an unrelated process never counts as the run's.
struct RunRecord {
  std::string run_id;
  pid_t pid = 0;  // the supervisor
  unsigned long long pid_start = 0;
  pid_t engine = 0;
  unsigned long long engine_start = 0;
  std::string tmpdir;  // where its spool folder (pcr-<run id>-XXXXXX) is made
};

std::string runs_dir(const std::string& pipeline_dir);

// Write `r` (atomically, 0600) to runs_dir; "" or why it failed.
std::string write_run_record(const std::string& dir, const RunRecord& r);
void remove_run_record(const std::string& dir, const std::string& run_id);

// The record of run `run_id` in `dir`, if there is one.
std::optional<RunRecord> read_run_record(const std::string& dir, const std::string& run_id);

// The records in `dir` of runs neither of whose processes is alive.
std::vector<RunRecord> dead_runs(const std::string& dir);

struct RunLeftovers {
  std::vector<pid_t> processes;         // live processes with the run's CI_RUN_ID
  std::vector<std::string> spool_dirs;  // its spool folders still on disk
  bool empty() const { return processes.empty() && spool_dirs.empty(); }
};
RunLeftovers leftovers_of(const RunRecord& r);

// The spool folders of run `run_id` under `tmpdir`.
std::vector<std::string> spool_dirs_of(const std::string& tmpdir, const std::string& run_id);

// Where runs make their spool folders: $TMPDIR, or /tmp.
std::string spool_parent();

}  // namespace pcr::proc
