#include <pcr/proc/process.hpp>
#include <pcr/proc/spawn_attr.hpp>
#include <pcr/util/expected.hpp>
#include <pcr/util/io.hpp>
#include <pcr/util/text.hpp>

#include <uv.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace pcr::proc {

namespace {

// One read buffer serves every pipe: libuv reads into it and hands it to the read
// callback before asking for another, so it is never shared by two reads at once.
// 128 KiB stays in the CPU's cache between the read and the writes that pass it on; a
// 1 MiB buffer (as big as the job's pipe) did not, and cost 0.1 s per GiB passed to a
// pipe (bench/output.sh: 0.87 s against 0.77 s, medians of 11, same run).
constexpr size_t k_read_buffer_size = 128 * 1024;
char g_read_buffer[k_read_buffer_size];
// A read smaller than this, within this long of the previous one, means the job writes
// faster than pcr reads: pcr then pauses this long before reading on — only with pipes
// of k_pipe_size, which the job cannot fill in that time at any rate a job writes (a
// 64 KiB pipe paced so would cap it at 300 MB/s: measured 3.4 s for 1 GiB, not 0.8 s).
constexpr size_t k_flood_read = k_read_buffer_size / 4;
constexpr std::chrono::microseconds k_flood_pause{200};
// How long reading a job that writes a little at a time pauses, to read its lines in
// batches: well under the 100 ms live output may lag.
constexpr Millis k_batch_pause{25};

constexpr int k_pipe_size = 1024 * 1024;

// How long output may still arrive after the shell exited and its group was killed.
// Only a process that left the group (and kept the pipe) makes us wait this long.
constexpr Millis k_drain_window{500};

int open_spool(SpoolFolder* folder, const std::string& path) {
  if (path.empty()) return -1;
  if (folder && !folder->make()) return -1;
  return ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
}

bool read_stat(pid_t pid, char& state, pid_t& ppid, pid_t& pgrp) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[512];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  const char* close_paren = std::strrchr(buf, ')');
  if (close_paren == nullptr) return false;
  int pp = 0, pg = 0;
  if (std::sscanf(close_paren + 1, " %c %d %d", &state, &pp, &pg) != 3) return false;
  ppid = pp;
  pgrp = pg;
  return true;
}

template <typename Fn>
void for_each_pid(Fn fn) {
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return;
  while (dirent* entry = ::readdir(dir)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (end != entry->d_name && *end == '\0') fn(static_cast<pid_t>(pid));
  }
  ::closedir(dir);
}

// A started shell: its pid, and whether both its pipes got k_pipe_size.
struct Shell {
  pid_t pid = -1;
  bool big_pipes = false;
};

// A command longer than this goes to the shell in a file (Spawn::script_path): one
// argument may hold 128 KiB, and the environment shares the rest of the bound.
constexpr std::size_t k_inline_command = 64u << 10;

bool runs_from_script(const Spawn& spec) {
  return spec.command.size() > k_inline_command && !spec.script_path.empty();
}

// posix_spawn `/bin/sh -c spec.command` in a session of its own, stdin from /dev/null,
// spec.workdir, spec.env; `outputs` adds the file actions that give it fds 1 and 2.
template <typename Outputs>
int posix_spawn_shell(const Spawn& spec, pid_t& pid, Outputs outputs) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  outputs(actions);
  if (!spec.workdir.empty()) posix_spawn_file_actions_addchdir_np(&actions, spec.workdir.c_str());

  const SpawnAttr attr(POSIX_SPAWN_SETSID);  // pcr's mask and ignored signals are not the job's

  std::vector<char*> env;
  env.reserve(spec.env.size() + 1);
  for (const auto& e : spec.env) env.push_back(const_cast<char*>(e.c_str()));
  env.push_back(nullptr);
  char sh[] = "/bin/sh", dash_c[] = "-c";
  char* argv[] = {sh, dash_c, const_cast<char*>(spec.command.c_str()), nullptr};
  if (runs_from_script(spec)) {
    // Too long for an argument: the shell reads it from a file instead (`sh FILE` runs
    // it as `sh -c` would, but for $0).
    const int fd = ::open(spec.script_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const bool written = fd >= 0 && util::write_all(fd, spec.command);
    const int err = errno;
    if (fd >= 0) ::close(fd);
    if (!written) {
      posix_spawn_file_actions_destroy(&actions);
      ::unlink(spec.script_path.c_str());
      return err ? err : EIO;
    }
    argv[1] = const_cast<char*>(spec.script_path.c_str());
    argv[2] = nullptr;
  }

  const int rc = ::posix_spawn(&pid, sh, &actions, attr.get(), argv, env.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0 && runs_from_script(spec)) ::unlink(spec.script_path.c_str());
  return rc;
}

util::Expected<Shell> spawn_failure(const Spawn& spec, int rc) {
  return util::Expected<Shell>::failure(
      spec.workdir.empty() ? std::strerror(rc) : std::string(std::strerror(rc)) + " (workdir " + spec.workdir + ")");
}

// Output nobody reads goes where xargs' would: straight to /dev/null, no byte copied.
util::Expected<Shell> spawn_discarding(const Spawn& spec) {
  Shell shell;
  const int rc = posix_spawn_shell(spec, shell.pid, [](posix_spawn_file_actions_t& actions) {
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
  });
  if (rc != 0) return spawn_failure(spec, rc);
  return shell;
}

// Start `/bin/sh -c spec.command` in a session and process group of its own, stdin from
// /dev/null, stdout and stderr into two new pipes whose read ends (close-on-exec) land in
// `read_ends` (or into /dev/null with spec.discard_output; `read_ends` stay -1); or say
// why it could not. posix_spawn rather than fork: glibc's uses
// CLONE_VM|CLONE_VFORK, so pcr's pages are never marked copy-on-write, and a run of
// thousands of jobs does not pay a page fault for every page pcr touches after each spawn
// (measured: bench/README.md).
util::Expected<Shell> spawn_shell(const Spawn& spec, int read_ends[2]) {
  if (spec.discard_output) return spawn_discarding(spec);
  // One pipe for both streams unless stdout is wanted alone: then the kernel keeps their
  // order exactly (two pipes read in turn may swap a stderr line and the stdout before it).
  const bool two = !spec.stdout_path.empty();
  int out[2], err[2] = {-1, -1};
  if (::pipe2(out, O_CLOEXEC) != 0) return util::Expected<Shell>::failure(std::strerror(errno));
  if (two && ::pipe2(err, O_CLOEXEC) != 0) {
    const int e = errno;
    ::close(out[0]), ::close(out[1]);
    return util::Expected<Shell>::failure(std::strerror(e));
  }
  // Bigger pipes mean fewer wake-ups per megabyte for chatty jobs; best effort (a user
  // past pipe-user-pages-soft keeps small pipes, and such a pipe is never paced).
  Shell shell;
  const int out_size = ::fcntl(out[0], F_SETPIPE_SZ, k_pipe_size);
  const int err_size = two ? ::fcntl(err[0], F_SETPIPE_SZ, k_pipe_size) : k_pipe_size;
  shell.big_pipes = out_size >= k_pipe_size && err_size >= k_pipe_size;
  const int rc = posix_spawn_shell(spec, shell.pid, [&](posix_spawn_file_actions_t& actions) {
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);  // dup2 clears close-on-exec
    posix_spawn_file_actions_adddup2(&actions, two ? err[1] : out[1], 2);
  });
  ::close(out[1]);
  if (two) ::close(err[1]);
  if (rc != 0) {
    ::close(out[0]);
    if (two) ::close(err[0]);
    return spawn_failure(spec, rc);
  }
  read_ends[0] = out[0];
  read_ends[1] = err[0];
  return shell;
}

}  // namespace

std::vector<pid_t> processes_in_group(pid_t pgid) {
  std::vector<pid_t> found;
  if (::kill(-pgid, 0) != 0) return found;  // fast path: the group is empty
  for_each_pid([&](pid_t pid) {
    char state;
    pid_t ppid, pgrp;
    if (read_stat(pid, state, ppid, pgrp) && pgrp == pgid && state != 'Z') found.push_back(pid);
  });
  return found;
}

std::vector<pid_t> all_pids() {
  std::vector<pid_t> out;
  for_each_pid([&](pid_t pid) { out.push_back(pid); });
  return out;
}

std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> found;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/task", static_cast<int>(pid));
  bool have_children_files = false;
  if (DIR* dir = ::opendir(path)) {
    while (dirent* entry = ::readdir(dir)) {
      if (entry->d_name[0] == '.') continue;
      std::ifstream in(std::string(path) + "/" + entry->d_name + "/children");
      if (!in) continue;
      have_children_files = true;
      pid_t child;
      while (in >> child) found.push_back(child);
    }
    ::closedir(dir);
  }
  if (!have_children_files) {  // kernels without CONFIG_PROC_CHILDREN
    for_each_pid([&](pid_t candidate) {
      char state;
      pid_t ppid, pgrp;
      if (read_stat(candidate, state, ppid, pgrp) && ppid == pid) found.push_back(candidate);
    });
  }
  return found;
}

struct ProcessSet::Child {
  ProcessSet* set = nullptr;
  Id id = 0;
  pid_t pid = 0;
  uv_pipe_t pipes[2]{};
  uv_timer_t timeout_timer{}, idle_timer{}, grace_timer{}, drain_timer{}, batch_timer{};
  bool batching = false;  // reading paused to gather a chatty job's lines (pause_reading)
  int open_handles = 0;
  int open_pipes = 0;
  pid_t pgid = 0;
  int spool_fd = -1;
  int stdout_fd = -1;
  bool paced = false;      // its pipes are big enough to wait for (k_flood_pause)
  util::Masker mask;       // the set's secrets, for this job's output stream
  std::vector<char> tail;  // spec.spool_tail > 0: the last bytes, a ring from tail_at
  std::size_t tail_at = 0, tail_size = 0;
  std::uint64_t tail_seen = 0;  // every byte that passed the ring
  Spawn spec;
  OnOutput on_output;
  OnExit on_exit;
  Exit result;
  Clock::time_point started;
  Clock::time_point last_output;
  Clock::time_point timeout_at, grace_at;  // deadlines of timeout_timer and grace_timer
  bool timeout_paused = false, grace_paused = false, idle_paused = false;  // ProcessSet::pause
  bool exited = false;
  bool lingering = false;  // the shell is gone, the signalled group is still in its grace
  bool finished = false;

  uv_handle_t* handle(void* h) { return static_cast<uv_handle_t*>(h); }

  void close_handle(void* h) {
    uv_close(handle(h), [](uv_handle_t* closed) {
      auto* self = static_cast<Child*>(closed->data);
      if (--self->open_handles == 0) delete self;
    });
  }

  void close_pipe(int i) {
    if (uv_is_closing(handle(&pipes[i]))) return;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&pipes[i]));
    --open_pipes;
    close_handle(&pipes[i]);
  }

  // Append `data` to the spool file at `path` (fd -1: not made yet; -2: could not be).
  void spool(int& fd, const std::string& path, std::string_view data) {
    if (path.empty() || fd == -2) return;
    if (fd == -1 && (fd = open_spool(set->m_folder, path)) < 0) {
      spool_failed(path);
      fd = -2;
      return;
    }
    if (!util::write_all(fd, data)) spool_failed(path);
  }

  // Output (masked) into the spool, or its tail. A full disk loses spool, never the run:
  // the job goes on, the loss is reported.
  void keep(std::string_view data) {
    if (spec.spool_tail > 0)
      keep_tail(data);
    else
      spool(spool_fd, spec.spool_path, data);
  }

  // What the mask still held back: the end of the output.
  void flush_mask() {
    if (!mask.active()) return;
    const std::string rest = mask.flush();
    if (rest.empty()) return;
    keep(rest);
    if (on_output) on_output(Stream::out, rest);
  }

  // Keep the last spec.spool_tail bytes of the output: only the end of a big read is
  // copied.
  void keep_tail(std::string_view data) {
    const std::size_t cap = spec.spool_tail;
    if (tail.empty()) tail.resize(cap);
    tail_seen += data.size();
    if (data.size() >= cap) {
      std::memcpy(tail.data(), data.data() + data.size() - cap, cap);
      tail_at = 0;
      tail_size = cap;
      return;
    }
    const std::size_t first = std::min(data.size(), cap - tail_at);
    std::memcpy(tail.data() + tail_at, data.data(), first);
    std::memcpy(tail.data(), data.data() + first, data.size() - first);
    tail_at = (tail_at + data.size()) % cap;
    tail_size = std::min(cap, tail_size + data.size());
  }

  // The kept tail, oldest byte first, into the spool file.
  //
  // A tail that lost its beginning leaves out the cut piece (util::cut_piece): it may be
  // the end of a secret, which no masking downstream could know for one.
  void write_tail() {
    if (tail_size == 0) return;
    const std::size_t start = tail_size < spec.spool_tail ? 0 : tail_at;
    const std::size_t first = std::min(tail_size, spec.spool_tail - start);
    std::string kept(tail.data() + start, first);
    kept.append(tail.data(), tail_size - first);
    std::vector<char>().swap(tail);
    if (tail_seen > kept.size()) kept.erase(0, util::cut_piece(kept));
    spool(spool_fd, spec.spool_path, kept);
  }

  void spool_failed(const std::string& path) {
    if (result.spool_error.empty()) result.spool_error = path + ": " + std::strerror(errno);
  }

  void signal_group(int sig) {
    if (pgid > 0) ::kill(-pgid, sig);
  }

  // Escalate: SIGTERM now, SIGKILL after the grace (at once when the grace is zero).
  void terminate() {
    if (exited) return;
    if (spec.kill_grace.count() == 0) {
      signal_group(SIGKILL);
      return;
    }
    signal_group(SIGTERM);
    if (!uv_is_active(handle(&grace_timer))) {
      grace_at = Clock::now() + spec.kill_grace;
      arm_at(&grace_timer, grace_at, on_grace);
    }
  }

  void start_reading(int i) {
    uv_read_start(reinterpret_cast<uv_stream_t*>(&pipes[i]), on_alloc, on_read);
  }

  static void on_alloc(uv_handle_t*, size_t, uv_buf_t* buf) {
    buf->base = g_read_buffer;
    buf->len = k_read_buffer_size;
  }

  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto* self = static_cast<Child*>(stream->data);
    int index = stream == reinterpret_cast<uv_stream_t*>(&self->pipes[0]) ? 0 : 1;
    if (nread < 0) {
      self->close_pipe(index);
      self->set->finish(self);
      return;
    }
    if (nread == 0) return;
    const auto size = static_cast<size_t>(nread);
    self->result.bytes += size;
    const auto now = Clock::now();
    const bool flooding = self->paced && size < k_flood_read && now - self->last_output < k_flood_pause;
    self->last_output = now;
    const std::string_view printed(buf->base, size);
    std::string masked;
    const std::string_view data = self->mask.active() ? (masked = self->mask.feed(printed)) : printed;
    self->keep(data);
    if (index == 0) self->spool(self->stdout_fd, self->spec.stdout_path, printed);
    if (self->on_output && !data.empty()) self->on_output(index == 0 ? Stream::out : Stream::err, data);
    // A job writing faster than pcr wakes up (8 KiB writes at gigabytes a second)
    // would wake it for every write: a context switch per 8 KiB, for pcr and the
    // writer both. Waiting a moment lets the pipe fill, so the next read takes
    // hundreds of KiB at once (bench/output.sh: 1 GiB in 0.66 s rather than 1.0 s,
    // as fast as `cat` passing it on). Bounded, and only while it floods.
    if (flooding) std::this_thread::sleep_for(k_flood_pause);
    // A job writing a line at a time (a test suite's progress) would wake pcr, and cost a
    // read and a spool write, for every line, each taking a core from the jobs. Reading
    // paused a moment lets its lines gather in the pipe: one wake-up, one read, one write
    // for many (bench/chatty.sh). Only after a small read: a job filling the pipe is read
    // on at once; and never longer than live output may lag (docs/reports.md).
    else if (size < k_flood_read && !self->exited) self->pause_reading();
  }

  // Stop reading both pipes for k_batch_pause (see on_read); `resume_reading` at once.
  void pause_reading() {
    if (batching) return;
    batching = true;
    for (auto& p : pipes)
      if (!uv_is_closing(handle(&p))) uv_read_stop(reinterpret_cast<uv_stream_t*>(&p));
    uv_timer_start(
        &batch_timer, [](uv_timer_t* t) { static_cast<Child*>(t->data)->resume_reading(); },
        static_cast<uint64_t>(k_batch_pause.count()), 0);
  }

  void resume_reading() {
    if (!batching) return;
    batching = false;
    uv_timer_stop(&batch_timer);
    for (int i = 0; i < 2; ++i)
      if (!uv_is_closing(handle(&pipes[i]))) start_reading(i);
  }

  static void on_grace(uv_timer_t* t) {
    auto* self = static_cast<Child*>(t->data);
    if (fired_early(t, self->grace_at, on_grace)) return;
    self->signal_group(SIGKILL);
  }

  static void on_timeout(uv_timer_t* t) {
    auto* self = static_cast<Child*>(t->data);
    if (fired_early(t, self->timeout_at, on_timeout)) return;
    if (!self->result.stopped && !self->result.idle_timed_out) self->result.timed_out = true;
    self->terminate();
  }

  void arm_idle_timer(Millis after) {
    uv_update_time(idle_timer.loop);
    uv_timer_start(
        &idle_timer,
        [](uv_timer_t* t) {
          auto* self = static_cast<Child*>(t->data);
          auto silent = std::chrono::duration_cast<Millis>(Clock::now() - self->last_output);
          if (silent >= self->spec.idle_timeout) {
            if (!self->result.timed_out && !self->result.stopped) self->result.idle_timed_out = true;
            self->terminate();
          } else {
            self->arm_idle_timer(self->spec.idle_timeout - silent);
          }
        },
        static_cast<uint64_t>(std::max<Millis::rep>(after.count(), 0)), 0);
  }
};

ProcessSet::ProcessSet(Loop& loop) : m_loop(loop) {
  m_loop.watch_signal(SIGCHLD, [this](int) { reap(); });
}

void ProcessSet::reap() {
  // Every child of pcr is either a job shell of ours or an orphan handed to us as
  // subreaper, so waiting for any child steals no one's status. Signals coalesce: loop.
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    auto it = m_by_pid.find(pid);
    if (it == m_by_pid.end()) continue;  // an orphan: reaped, nothing to report
    Child* c = it->second;
    m_by_pid.erase(it);
    m_job_pids.erase(pid);
    exited(c, status);
  }
}

void ProcessSet::exited(Child* c, int status) {
  c->exited = true;
  c->resume_reading();  // what is left in the pipes is read now, not after a pause
  if (WIFSIGNALED(status))
    c->result.signal = WTERMSIG(status);
  else if (WIFEXITED(status))
    c->result.exit_code = WEXITSTATUS(status);
  uv_timer_stop(&c->timeout_timer);
  uv_timer_stop(&c->idle_timer);
  // Only a job that ended on its own can have left something behind; after a timeout or
  // a stop the group was already signalled, and its members are merely finishing.
  auto left = processes_in_group(c->pgid);
  const bool signalled_by_us = c->result.timed_out || c->result.idle_timed_out || c->result.stopped;
  c->result.leftovers = signalled_by_us ? 0 : static_cast<int>(left.size());
  if (!left.empty() && signalled_by_us && uv_is_active(reinterpret_cast<uv_handle_t*>(&c->grace_timer))) {
    // The shell died of SIGTERM first; the rest of the group (a trap cleaning up, say)
    // keeps its grace. The grace timer SIGKILLs what is left; poll until the group is gone.
    c->lingering = true;
    uv_timer_start(
        &c->drain_timer,
        [](uv_timer_t* t) {
          auto* self = static_cast<Child*>(t->data);
          if (!processes_in_group(self->pgid).empty()) return;
          uv_timer_stop(&self->drain_timer);
          self->lingering = false;
          self->set->drain_and_finish(self);
        },
        50, 50);
    return;
  }
  if (!left.empty()) c->signal_group(SIGKILL);
  drain_and_finish(c);
}

void ProcessSet::drain_and_finish(Child* c) {
  uv_timer_stop(&c->grace_timer);
  if (c->open_pipes > 0) {
    uv_timer_start(
        &c->drain_timer,
        [](uv_timer_t* t) {
          auto* self = static_cast<Child*>(t->data);
          self->close_pipe(0);
          self->close_pipe(1);
          self->set->finish(self);
        },
        static_cast<uint64_t>(k_drain_window.count()), 0);
  }
  finish(c);
}

bool SpoolFolder::make() {
  if (m_made) return true;
  if (m_path.empty() || ::mkdir(m_path.c_str(), 0700) != 0) return false;
  m_made = true;
  return true;
}

ProcessSet::~ProcessSet() {
  for (auto& [id, child] : m_children) {
    child->signal_group(SIGKILL);
    child->on_exit = nullptr;
    child->on_output = nullptr;
  }
}

bool ProcessSet::become_subreaper() { return ::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0; }

ProcessSet::Id ProcessSet::spawn(Spawn spec, OnOutput on_output, OnExit on_exit) {
  auto* c = new Child;
  c->set = this;
  c->id = m_next_id++;
  c->spec = std::move(spec);
  c->on_output = std::move(on_output);
  c->on_exit = std::move(on_exit);
  c->mask = m_secrets;
  uv_loop_t* loop = m_loop.raw();
  for (auto* t : {&c->timeout_timer, &c->idle_timer, &c->grace_timer, &c->drain_timer, &c->batch_timer}) {
    uv_timer_init(loop, t);
    t->data = c;
  }
  for (auto& p : c->pipes) {
    uv_pipe_init(loop, &p, 0);
    p.data = c;
  }
  c->open_handles = 7;
  c->open_pipes = 2;
  m_children.emplace(c->id, c);

  // The spool files are made on the first byte: a job that prints nothing costs no file
  // (creating one is about 1 ms on a busy ext4; most of a trivial job's dispatch).
  c->started = c->last_output = Clock::now();

  int read_ends[2] = {-1, -1};
  const auto spawned = runs_from_script(c->spec) && m_folder && !m_folder->make()
                           ? util::Expected<Shell>::failure(m_folder->path() + ": " + std::strerror(errno))
                           : spawn_shell(c->spec, read_ends);
  if (!spawned) {
    c->result.spawn_error = spawned.error();
    c->result.exit_code = 127;
    c->exited = true;
    c->close_pipe(0);
    c->close_pipe(1);
    uv_timer_start(
        &c->drain_timer,
        [](uv_timer_t* t) {
          auto* self = static_cast<Child*>(t->data);
          self->set->finish(self);
        },
        0, 0);
    return c->id;
  }
  const pid_t pid = spawned->pid;
  c->pid = c->pgid = pid;  // POSIX_SPAWN_SETSID: the shell leads its own group
  m_job_pids.insert(pid);
  m_by_pid.emplace(pid, c);
  c->paced = spawned->big_pipes;
  // A pipe not made (both streams share the first, or output is discarded) is closed now.
  for (int i = 0; i < 2; ++i)
    if (read_ends[i] < 0) c->close_pipe(i);
  for (int i = 0; i < 2; ++i) {
    if (read_ends[i] < 0) continue;
    uv_pipe_open(&c->pipes[i], read_ends[i]);
    c->start_reading(i);
  }
  if (c->spec.timeout.count() > 0) {
    // From `started`, as the job's duration is: no job is reported timed out in less.
    c->timeout_at = c->started + c->spec.timeout;
    arm_at(&c->timeout_timer, c->timeout_at, Child::on_timeout);
  }
  if (c->spec.idle_timeout.count() > 0) c->arm_idle_timer(c->spec.idle_timeout);
  return c->id;
}

void ProcessSet::stop(Id id, bool immediately) {
  auto it = m_children.find(id);
  if (it == m_children.end()) return;
  Child* c = it->second;
  if (c->exited) {
    // The shell is gone, the rest of its group still has its grace (lingering): a stop
    // "at once" (a second interrupt) ends that too.
    if (immediately && c->lingering) c->signal_group(SIGKILL);
    return;
  }
  if (!c->result.timed_out && !c->result.idle_timed_out) c->result.stopped = true;
  if (immediately)
    c->signal_group(SIGKILL);
  else
    c->terminate();
}

void ProcessSet::pause() {
  if (m_paused) return;
  m_paused = true;
  m_paused_at = Clock::now();
  for (auto& [id, c] : m_children) {
    c->signal_group(SIGSTOP);
    // Their timers wait too (the loop may go on: the engine stops itself, a test not).
    c->timeout_paused = uv_is_active(c->handle(&c->timeout_timer));
    c->grace_paused = uv_is_active(c->handle(&c->grace_timer));
    c->idle_paused = uv_is_active(c->handle(&c->idle_timer));
    uv_timer_stop(&c->timeout_timer);
    uv_timer_stop(&c->grace_timer);
    uv_timer_stop(&c->idle_timer);
  }
}

void ProcessSet::resume() {
  if (!m_paused) return;
  m_paused = false;
  const auto stopped = Clock::now() - m_paused_at;
  for (auto& [id, c] : m_children) {
    c->started += stopped;
    c->last_output += stopped;
    c->timeout_at += stopped;
    c->grace_at += stopped;
    if (c->timeout_paused) arm_at(&c->timeout_timer, c->timeout_at, Child::on_timeout);
    if (c->grace_paused) arm_at(&c->grace_timer, c->grace_at, Child::on_grace);
    if (c->idle_paused) c->arm_idle_timer(c->spec.idle_timeout - std::chrono::duration_cast<Millis>(Clock::now() - c->last_output));
    c->timeout_paused = c->grace_paused = c->idle_paused = false;
    c->signal_group(SIGCONT);
  }
  m_loop.shift_timers(stopped);
}

void ProcessSet::finish(Child* c) {
  if (c->finished || !c->exited || c->lingering || c->open_pipes > 0) return;
  c->finished = true;
  uv_timer_stop(&c->drain_timer);
  c->flush_mask();
  c->write_tail();
  // A spool file removed while the job wrote to it (a job that cleans TMPDIR) took the
  // output with it: lost, like a write that failed.
  for (auto [fd, path] : {std::pair{c->spool_fd, &c->spec.spool_path}, std::pair{c->stdout_fd, &c->spec.stdout_path}}) {
    struct stat st {};
    if (fd < 0) continue;
    if (::fstat(fd, &st) == 0 && st.st_nlink == 0 && c->result.spool_error.empty())
      c->result.spool_error = *path + ": removed while the job ran";
    ::close(fd);
  }
  if (runs_from_script(c->spec)) ::unlink(c->spec.script_path.c_str());
  c->result.duration = std::chrono::duration_cast<Millis>(Clock::now() - c->started);
  m_children.erase(c->id);
  auto on_exit = std::move(c->on_exit);
  Exit result = c->result;
  for (auto* h : {static_cast<void*>(&c->timeout_timer), static_cast<void*>(&c->idle_timer),
                  static_cast<void*>(&c->grace_timer), static_cast<void*>(&c->drain_timer),
                  static_cast<void*>(&c->batch_timer)})
    c->close_handle(h);
  if (on_exit) on_exit(result);
}

int ProcessSet::kill_orphans() {
  // No child at all (jobs reaped, no orphan handed to us): nothing to look for in /proc,
  // whose walk cost more than the rest of a one-job run's end. WNOWAIT: nobody reaped.
  siginfo_t any{};
  if (::waitid(P_ALL, 0, &any, WEXITED | WSTOPPED | WCONTINUED | WNOHANG | WNOWAIT) != 0 &&
      errno == ECHILD)
    return 0;
  std::unordered_set<pid_t> killed;
  const auto deadline = Clock::now() + std::chrono::seconds(3);
  while (Clock::now() < deadline) {
    std::vector<pid_t> orphans;
    for (pid_t pid : children_of(::getpid()))
      if (m_job_pids.count(pid) == 0) orphans.push_back(pid);
    if (orphans.empty()) break;
    // Kill whole subtrees; grandchildren are handed to us as their parents die.
    std::vector<pid_t> stack = orphans;
    while (!stack.empty()) {
      pid_t pid = stack.back();
      stack.pop_back();
      char state;
      pid_t ppid, pgrp;
      if (read_stat(pid, state, ppid, pgrp) && state != 'Z') {
        ::kill(pid, SIGKILL);
        killed.insert(pid);
      }
      for (pid_t child : children_of(pid)) stack.push_back(child);
    }
    for (pid_t pid : orphans) {
      int status;
      for (int i = 0; i < 100 && ::waitpid(pid, &status, WNOHANG) == 0; ++i)
        std::this_thread::sleep_for(Millis(10));
    }
  }
  return static_cast<int>(killed.size());
}

}  // namespace pcr::proc
