#include <pcr/proc/process.hpp>
#include <pcr/proc/supervise.hpp>
#include <pcr/util/io.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <thread>

namespace pcr::proc {

namespace {

// Interrupts, job control, and the status request (SIGUSR1, as `dd` and nextest take it):
// no signal a user sends by habit ends the supervisor without the engine knowing.
const std::vector<int> k_forwarded = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGTSTP, SIGCONT};

// Every live process below `root`, parents before children.
std::vector<pid_t> descendants(pid_t root) {
  std::vector<pid_t> out, todo = children_of(root);
  std::set<pid_t> seen;
  while (!todo.empty()) {
    pid_t pid = todo.back();
    todo.pop_back();
    if (!seen.insert(pid).second) continue;
    out.push_back(pid);
    for (pid_t child : children_of(pid)) todo.push_back(child);
  }
  return out;
}

void reap_all() {
  int status;
  while (::waitpid(-1, &status, WNOHANG) > 0) {
  }
}

// Alive and not a zombie waiting to be reaped.
bool running(pid_t pid) {
  std::string stat = util::read_file(fmt::format("/proc/{}/stat", pid)).value_or("");
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

}  // namespace

util::Expected<Split> split(const std::function<void(pid_t)>& on_started) {
  using Result = util::Expected<Split>;
  // The engine's jobs come to us when the engine dies, and to no one else.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return Result::failure(std::strerror(errno));

  // Interrupts are taken synchronously (sigwaitinfo) and forwarded; SIGCHLD too. Blocked
  // before the fork, so none is lost in between.
  sigset_t waited;
  sigemptyset(&waited);
  for (int sig : k_forwarded) sigaddset(&waited, sig);
  sigaddset(&waited, SIGCHLD);
  sigset_t before;
  ::sigprocmask(SIG_BLOCK, &waited, &before);
  std::fflush(nullptr);  // nothing buffered is written twice

  const pid_t engine = ::fork();
  if (engine < 0) {
    const int err = errno;
    ::close(pipe_fds[0]), ::close(pipe_fds[1]);
    ::sigprocmask(SIG_SETMASK, &before, nullptr);
    return Result::failure(fmt::format("cannot start pcr's engine: {}", std::strerror(err)));
  }
  if (engine == 0) {
    // The engine: a process group of its own, so that an interrupt from the terminal
    // reaches the supervisor, which forwards it once, rather than both of them. In the
    // background on a terminal, `stty tostop` would stop it for writing: SIGTTOU
    // ignored here (every job gets default signals again).
    ::setpgid(0, 0);
    ::signal(SIGTTOU, SIG_IGN);
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);  // not inherited
    ::close(pipe_fds[1]);
    ::sigprocmask(SIG_SETMASK, &before, nullptr);
    Split engine_side;
    engine_side.engine = true;
    engine_side.fd = pipe_fds[0];
    return engine_side;
  }
  ::setpgid(engine, engine);  // also here: whichever runs first
  ::close(pipe_fds[0]);
  ::signal(SIGPIPE, SIG_IGN);
  Split result;
  result.exit.pid = engine;
  bool stopping = false;  // ^Z passed on: the supervisor stops once the engine has
  if (on_started) on_started(engine);
  for (;;) {
    siginfo_t info{};
    int sig = ::sigwaitinfo(&waited, &info);
    if (sig < 0) continue;  // EINTR
    if (sig == SIGTSTP) {
      // ^Z: the engine pauses its jobs and stops itself; once it has (WIFSTOPPED below),
      // the supervisor stops too, and the shell sees the job stopped. `fg`/`bg` send
      // SIGCONT to the supervisor, which passes it on.
      stopping = true;
      ::kill(engine, SIGTSTP);
      continue;
    }
    if (sig != SIGCHLD) {
      ::kill(engine, sig);
      continue;
    }
    // Reap the engine and any orphan handed to us; signals coalesce, so loop.
    int status = 0;
    bool engine_done = false;
    for (pid_t pid; (pid = ::waitpid(-1, &status, WNOHANG | WUNTRACED)) > 0;) {
      if (pid != engine) continue;
      if (WIFSTOPPED(status)) {
        if (stopping) ::raise(SIGSTOP);  // until SIGCONT, forwarded above
        stopping = false;
        continue;
      }
      engine_done = true;
      if (WIFEXITED(status)) result.exit.exit_code = WEXITSTATUS(status);
      if (WIFSIGNALED(status)) result.exit.signal = WTERMSIG(status);
    }
    if (engine_done) break;
  }
  ::close(pipe_fds[1]);
  ::sigprocmask(SIG_SETMASK, &before, nullptr);
  return result;
}

int end_descendants(const std::function<Millis(pid_t)>& grace_of) {
  std::map<pid_t, Clock::time_point> kill_at;  // every process signalled, and when to KILL it
  for (;;) {
    reap_all();
    bool any = false;
    const auto now = Clock::now();
    // New processes may appear (a trap that forks): each is found and signalled in turn.
    for (pid_t pid : descendants(::getpid())) {
      if (!running(pid)) continue;
      any = true;
      auto it = kill_at.find(pid);
      if (it == kill_at.end()) {
        kill_at.emplace(pid, now + grace_of(pid));
        ::kill(pid, SIGTERM);
      } else if (now >= it->second) {
        ::kill(pid, SIGKILL);
      }
    }
    if (!any) break;
    std::this_thread::sleep_for(Millis(10));
  }
  return static_cast<int>(kill_at.size());
}

std::string env_of(pid_t pid, const std::string& name) {
  auto text = util::read_file(fmt::format("/proc/{}/environ", pid));
  if (!text) return "";
  const std::string prefix = name + "=";
  for (size_t at = 0; at < text->size();) {
    size_t end = text->find('\0', at);
    if (end == std::string::npos) end = text->size();
    if (text->compare(at, prefix.size(), prefix) == 0)
      return text->substr(at + prefix.size(), end - at - prefix.size());
    at = end + 1;
  }
  return "";
}

unsigned long long start_time(pid_t pid) {
  std::string stat = util::read_file(fmt::format("/proc/{}/stat", pid)).value_or("");
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  // After the command: field 3 (state) ... field 22 (starttime).
  size_t pos = paren + 2;
  for (int field = 3; field < 22; ++field) {
    pos = stat.find(' ', pos);
    if (pos == std::string::npos) return 0;
    ++pos;
  }
  return std::strtoull(stat.c_str() + pos, nullptr, 10);
}

bool alive(pid_t pid, unsigned long long start) {
  return pid > 0 && running(pid) && (start == 0 || start_time(pid) == start);
}

std::vector<pid_t> processes_with_env(const std::string& name, const std::string& value) {
  std::vector<pid_t> found;
  for (pid_t pid : all_pids())
    if (pid != ::getpid() && env_of(pid, name) == value && running(pid)) found.push_back(pid);
  return found;
}

int end_processes(const std::vector<pid_t>& pids, const std::function<Millis(pid_t)>& grace_of) {
  std::map<pid_t, Clock::time_point> kill_at;
  const auto now = Clock::now();
  for (pid_t pid : pids)
    if (running(pid)) {
      kill_at.emplace(pid, now + grace_of(pid));  // before the signal: its environ is needed
      ::kill(pid, SIGTERM);
    }
  const int signalled = static_cast<int>(kill_at.size());
  while (!kill_at.empty()) {
    for (auto it = kill_at.begin(); it != kill_at.end();) {
      if (!running(it->first)) {
        it = kill_at.erase(it);
        continue;
      }
      if (Clock::now() >= it->second) ::kill(it->first, SIGKILL);
      ++it;
    }
    std::this_thread::sleep_for(Millis(10));
  }
  return signalled;
}

}  // namespace pcr::proc
