#include <pcr/proc/capture.hpp>
#include <pcr/proc/spawn_attr.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace pcr::proc {

Captured run_capture(const std::vector<std::string>& argv, Millis timeout, std::size_t max_output) {
  Captured c;
  if (argv.empty()) {
    c.error = "nothing to run";
    return c;
  }
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    c.error = std::strerror(errno);
    return c;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, out[1], 2);
  const SpawnAttr attr(POSIX_SPAWN_SETPGROUP);  // its own group: a timeout kills all of it
  std::vector<std::string> args = argv;
  std::vector<char*> argvp;
  for (auto& a : args) argvp.push_back(a.data());
  argvp.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, argvp[0], &actions, attr.get(), argvp.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  if (rc != 0) {
    ::close(out[0]);
    c.error = std::strerror(rc);
    return c;
  }
  const auto deadline = Clock::now() + timeout;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    if (left <= 0) {
      c.timed_out = true;
      ::kill(-pid, SIGKILL);
      break;
    }
    pollfd p{out[0], POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    const ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // every writer closed it: the command (and its children) are done
    if (c.output.size() < max_output)
      c.output.append(buf, std::min(static_cast<std::size_t>(n), max_output - c.output.size()));
  }
  ::close(out[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!c.timed_out && WIFEXITED(status)) c.exit_code = WEXITSTATUS(status);
  return c;
}

}  // namespace pcr::proc
