#pragma once

// The session's rooms, as they call one another (not part of the library's API).

#include <pcr/pipeline/engine.hpp>
#include <pcr/session/run.hpp>

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>

namespace pcr::session {

// The folder of the pipeline: where `.pcr/` is.
std::string pipeline_dir(const pipeline::Pipeline& p);

// What killed runs left here (compose projects, processes, spool folders), in one
// warning; kept clusters told apart, and not at all to a run that reuses them.
void warn_about_leftovers(const pipeline::Pipeline& p, bool keeping);

// The extensions' warnings `pcr check` prints (a fixed container_name), once.
void warn_about_isolation(const pipeline::Pipeline& p);

// The supervisor of a C++ pipeline, already built (supervisor.cpp; `pcr run` forks its
// engine earlier, supervise_first in run.hpp): nullopt in the engine, and in the
// supervisor the run's exit code once the engine has ended, having ended what a killed
// engine left.
std::optional<int> supervise_run(const pipeline::Pipeline& p, const RunFlags& f);
// keep_clusters (run.hpp) without its word: what the pipeline was loaded with.
bool clusters_kept(const RunFlags& f);
// PCR_SUPERVISOR=0 turns the split off: one process.
bool supervision_enabled();
// In the engine, before the run: the brief for the supervisor (the pipeline's `text`, when
// the supervisor did not load it) and the run's record in `.pcr/runs`; returns the run id.
std::string engine_started(const pipeline::Pipeline& p, const RunFlags& f, const std::string* text);
// In the engine: the supervisor's pipe (-1 without one), and whether this is a supervised
// engine.
int supervisor_fd();
bool supervised_engine();

// The kill_grace of the step a process belongs to (its CI_STEP), else the longest.
std::function<pipeline::Millis(pid_t)> grace_of(const pipeline::Pipeline* p);

// "SIGKILL", or "signal N".
std::string signal_words(int sig);

}  // namespace pcr::session
