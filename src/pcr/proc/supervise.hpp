#pragma once

#include <pcr/proc/loop.hpp>
#include <pcr/util/expected.hpp>

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

namespace pcr::proc {

// pcr runs as two processes, so that whichever of the two is killed (kill -9, the OOM
// killer, a crash), the other ends what the run started:
//
//   supervisor — the `pcr` the user started. It forks the engine, forwards SIGINT,
//     SIGTERM and SIGHUP to it, and is a child subreaper: when the engine dies, its job
//     processes, even those that left their group or session, become the supervisor's
//     children, and it ends them (`end_descendants`).
//   engine — the fork, in a process group of its own, runs the pipeline. It holds the
//     read end of a pipe whose write end only the supervisor holds: end of file on it
//     means the supervisor is gone, and the engine stops the jobs and runs cleanup on its
//     own. A fork, not a new program: nothing is loaded twice (start-up costs a fork),
//     and a C++ pipeline needs nothing of its own.

struct EngineExit {
  pid_t pid = 0;
  int exit_code = 0;  // when it exited
  int signal = 0;     // when a signal killed it
};

// The result of `split`, in each of the two processes.
struct Split {
  bool engine = false;  // true in the engine: go on and run the pipeline
  int fd = -1;          // the engine's end of the supervisor's pipe
  EngineExit exit;      // in the supervisor, once the engine has ended
};

// Fork the engine and, in the supervisor, wait for it: forward interrupts, reap orphans,
// and return how the engine ended (`on_started` gets its pid first). In the engine it
// returns at once. Call it with no other thread running. An error when the fork failed.
util::Expected<Split> split(const std::function<void(pid_t)>& on_started);

// End every process below this one, found through /proc: SIGTERM, then SIGKILL to each
// one still alive `grace_of(pid)` later (its job's kill_grace); reaps them. Returns how
// many were signalled. For the supervisor once the engine is gone (it is their
// subreaper, so none escapes by re-parenting).
int end_descendants(const std::function<Millis(pid_t)>& grace_of);

// The value of `name` in the environment of process `pid`, or "" (none, or not ours).
std::string env_of(pid_t pid, const std::string& name);

// The start time of process `pid` (field 22 of /proc/PID/stat, in clock ticks since
// boot), or 0 when there is no such process. A pid and its start time name one process
// for good: a pid reused by another has another start time.
unsigned long long start_time(pid_t pid);

// Whether the process `pid` that started at `start` is still alive and not a zombie
// (`start` 0: unknown, any start).
bool alive(pid_t pid, unsigned long long start);

// The live processes whose environment has NAME=value, by /proc/PID/environ (readable for
// this user's own processes), this process excluded.
std::vector<pid_t> processes_with_env(const std::string& name, const std::string& value);

// SIGTERM to `pids`, SIGKILL to each still alive `grace_of(pid)` later; returns how many
// were alive to be signalled.
int end_processes(const std::vector<pid_t>& pids, const std::function<Millis(pid_t)>& grace_of);

}  // namespace pcr::proc
