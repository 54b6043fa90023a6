#pragma once

#include <pcr/proc/loop.hpp>
#include <pcr/util/mask.hpp>

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace pcr::proc {

// What to run: `/bin/sh -c command`, in a process group (and session) of its own, stdin
// from /dev/null, stdout and stderr through one pipe, in the order written (two pipes
// when `stdout_path` wants stdout alone: the order between them is then as read).
struct Spawn {
  std::string command;
  std::vector<std::string> env;  // the whole environment, "NAME=value"
  std::string workdir;           // empty: pcr's own
  std::string spool_path;        // both streams in arrival order, masked (`mask`); 0600
  std::string stdout_path;       // when set, stdout alone is written here too, whole (0600)
  // Where a command longer than an argument may be (the kernel takes 128 KiB; all of
  // {items} of a big group can be megabytes) is written (0600) to run as `/bin/sh PATH`,
  // removed when the job ends. Empty: such a command cannot start ("Argument list too long").
  std::string script_path;
  // > 0: the spool keeps only the last `spool_tail` bytes, held in memory and written
  // when the process ends — for output its observers showed as it came and never read
  // back whole, which then costs no disk write per byte.
  std::size_t spool_tail = 0;
  // Nobody will read the output: stdout and stderr are /dev/null itself, with no pipe
  // between, and nothing is spooled or reported (Exit::bytes stays 0).
  bool discard_output = false;
  Millis timeout{0};             // 0: none
  Millis idle_timeout{0};        // 0: none; fails a job silent for this long
  Millis kill_grace{10'000};     // between SIGTERM and SIGKILL
};

// The folder a run's spool files go in, made when the first of them is written (0700, and
// new: mkdir fails on a folder already there, as mkdtemp's does), so that a run whose
// processes print nothing makes none (its mkdir and rmdir were a twentieth of a one-job
// run's time here).
class SpoolFolder {
 public:
  // `path`, made already (`made`) or to make when first needed.
  void reset(std::string path, bool made) {
    m_path = std::move(path);
    m_made = made;
  }
  const std::string& path() const { return m_path; }
  bool made() const { return m_made; }
  // Make it, unless made already: false, with errno set, when it cannot be.
  bool make();

 private:
  std::string m_path;
  bool m_made = false;
};

enum class Stream { out, err };

// How a process ended. Exactly one story is true: it could not be started
// (`spawn_error`), or it exited with `exit_code`, or it died of `signal`. The flags say
// who sent that signal: a timeout, an idle timeout, or a `stop`.
struct Exit {
  int exit_code = 0;
  int signal = 0;
  bool timed_out = false;
  bool idle_timed_out = false;
  bool stopped = false;
  int leftovers = 0;         // processes still in the group when the shell exited; killed
  std::string spawn_error;   // non-empty: nothing ran
  Millis duration{0};
  std::uint64_t bytes = 0;   // output bytes, both streams
  // The first failure to write the spool or the stdout file ("PATH: reason"): output was
  // lost (the job itself ran on; its pipes were still drained).
  std::string spool_error;
};

// Supervises shell jobs on a `Loop`. A job ends when its shell exits — not when its pipes
// close — so a background child holding the output open cannot hang it: the group is then
// killed, output still in flight is drained for a moment, and the job is reported.
//
// Every process runs with signals at their defaults and an empty mask. Spool files and
// pipe ends are close-on-exec, so no job inherits another's.
class ProcessSet {
 public:
  using Id = std::uint64_t;
  using OnOutput = std::function<void(Stream, std::string_view)>;
  using OnExit = std::function<void(const Exit&)>;

  explicit ProcessSet(Loop& loop);
  ~ProcessSet();  // SIGKILLs the group of every job still running.
  ProcessSet(const ProcessSet&) = delete;
  ProcessSet& operator=(const ProcessSet&) = delete;

  // Start `spec`. `on_output` sees every chunk as it arrives (already spooled); `on_exit`
  // is called once, from the loop, never from within `spawn` — also when spawning failed.
  Id spawn(Spawn spec, OnOutput on_output, OnExit on_exit);

  // Replace these values by "***" in what jobs started from now on print, before it is
  // spooled or seen by `on_output`: no secret reaches a spool file on disk (where a killed
  // run may leave it), and the spool and `on_output` see the same bytes. A value split
  // across two reads is still caught: the bytes that could start one wait for the next
  // read or the end. The `stdout_path` file alone keeps stdout as printed: what a step
  // reads from it (items, captured values) must stay what the job printed.
  void mask(std::vector<std::string> secrets) { m_secrets = util::Masker(std::move(secrets)); }

  // The folder every spool, stdout and script file of this set's processes is in, made
  // (`SpoolFolder::make`) before the first is written. Null: they are made as they are.
  void spool_in(SpoolFolder* folder) { m_folder = folder; }

  // End job `id`: SIGTERM to its group and SIGKILL after its grace, or SIGKILL now when
  // `immediately`. The exit is reported with `stopped` set. No-op for a finished job.
  void stop(Id id, bool immediately);

  size_t running() const { return m_children.size(); }

  // Job control (^Z): `pause` SIGSTOPs every job's process group; `resume` moves every
  // job's deadlines (timeout, grace, idle timeout) and its start by the time since
  // `pause`, so a stopped interval counts against nothing, then SIGCONTs the groups.
  void pause();
  void resume();

  // Make pcr the child subreaper of its descendants (Linux), so that orphans of jobs
  // become its children rather than init's. Returns false where unsupported.
  static bool become_subreaper();

  // Reap every child that has exited: report job shells, forget orphans handed to us as
  // subreaper. Runs on every SIGCHLD.
  void reap();

  // SIGKILL and reap every descendant that is not a running job's shell: what escaped its
  // job's group (setsid, daemons). Returns how many live processes were killed.
  int kill_orphans();

 private:
  struct Child;
  void exited(Child* child, int status);
  void drain_and_finish(Child* child);
  void finish(Child* child);
  Loop& m_loop;
  util::Masker m_secrets;
  SpoolFolder* m_folder = nullptr;
  std::unordered_map<Id, Child*> m_children;
  std::unordered_set<pid_t> m_job_pids;  // job shells not reaped yet
  std::unordered_map<pid_t, Child*> m_by_pid;
  Id m_next_id = 1;
  Clock::time_point m_paused_at{};
  bool m_paused = false;
};

// The pids of the live processes in process group `pgid`.
std::vector<pid_t> processes_in_group(pid_t pgid);

// Every process id in /proc now.
std::vector<pid_t> all_pids();

// The direct children of `pid`, from /proc.
std::vector<pid_t> children_of(pid_t pid);

}  // namespace pcr::proc
