// Job control end to end: the real binary under an interactive bash in a pty, ^Z typed
// as a user types it, `fg` to resume.
#include "../support/pcr_binary.hpp"

#include <gtest/gtest.h>

#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

using namespace pcr::test;
using namespace std::chrono_literals;

namespace {

// An interactive bash in a pty: what it prints is collected; `type` writes keys.
class Terminal {
 public:
  explicit Terminal(const std::string& dir) {
    m_pid = ::forkpty(&m_fd, nullptr, nullptr, nullptr);
    if (m_pid == 0) {
      if (::chdir(dir.c_str()) != 0) ::_exit(126);
      ::setenv("PS1", "PROMPT$ ", 1);
      ::setenv("TERM", "xterm", 1);
      ::execlp("bash", "bash", "--norc", "--noprofile", "-i", static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~Terminal() {
    if (m_pid > 0) {
      ::kill(m_pid, SIGKILL);
      ::waitpid(m_pid, nullptr, 0);
    }
    if (m_fd >= 0) ::close(m_fd);
  }
  bool started() const { return m_pid > 0; }
  void type(const std::string& keys) { ASSERT_EQ(::write(m_fd, keys.data(), keys.size()), static_cast<ssize_t>(keys.size())); }
  // Read until `text` has appeared after `from` (an offset in `out()`), or `limit` passed.
  bool wait_for(const std::string& text, std::size_t from, std::chrono::milliseconds limit = 20s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (m_out.find(text, from) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{m_fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(m_fd, buf, sizeof buf);
      if (n <= 0) return false;
      m_out.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  }
  const std::string& out() const { return m_out; }

 private:
  pid_t m_pid = -1;
  int m_fd = -1;
  std::string m_out;
};

// The state letter of process `pid` (R, S, T, ...), or '?' when it is gone.
char state_of(const std::string& pid) {
  const std::string stat = read_file("/proc/" + pid + "/stat");
  const auto paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() ? '?' : stat[paren + 2];
}

}  // namespace

// ^Z stops every job, the engine and the supervisor (the shell says "Stopped" and gives
// the prompt back, and nothing draws over it); the time stopped counts against no
// timeout; `fg` resumes and the run passes.
TEST(JobControl, CtrlZStopsEveryJobAndFgResumesThem) {
  if (!have("bash")) GTEST_SKIP() << "bash is missing";
  TempDir d;
  // Two seconds of work in steps (a `sleep 2` would count the stopped time as slept),
  // against a timeout shorter than the work plus the time stopped.
  d.write("ci.yaml",
          "steps:\n  - name: work\n    parallel: 2\n    timeout: 4s\n"
          "    run: echo $$ > pid{n}; i=0; while [ $i -lt 20 ]; do sleep 0.1; i=$((i+1)); done; touch done{n}\n");
  Terminal t(d.path());
  ASSERT_TRUE(t.started());
  ASSERT_TRUE(t.wait_for("PROMPT$ ", 0));
  t.type(std::string("'") + PCR_BINARY + "' run ci.yaml\n");
  ASSERT_TRUE(wait_until([&] { return exists(d.file("pid1")) && exists(d.file("pid2")); }));
  const std::size_t before = t.out().size();
  t.type("\x1a");
  ASSERT_TRUE(t.wait_for("Stopped", before)) << t.out();
  const std::size_t stopped_at = t.out().size();
  ASSERT_TRUE(t.wait_for("PROMPT$ ", before)) << t.out();
  const std::string pid1 = read_file(d.file("pid1")), pid2 = read_file(d.file("pid2"));
  // SIGSTOP takes effect when each process next runs: on a loaded machine, a moment later.
  const std::string job1 = pid1.substr(0, pid1.find('\n')), job2 = pid2.substr(0, pid2.find('\n'));
  EXPECT_TRUE(wait_until([&] { return state_of(job1) == 'T' && state_of(job2) == 'T'; }))
      << state_of(job1) << state_of(job2);
  // Stopped for longer than the timeout leaves of the work: it must not count.
  std::this_thread::sleep_for(3s);
  EXPECT_FALSE(exists(d.file("done1")) || exists(d.file("done2"))) << "a job ran on while stopped";
  EXPECT_EQ(t.out().find("passed", stopped_at), std::string::npos) << "pcr drew over the prompt:\n" << t.out();
  t.type("fg\n");
  ASSERT_TRUE(t.wait_for("PASSED", stopped_at)) << t.out();
  t.type("echo EXIT=$?\n");
  ASSERT_TRUE(t.wait_for("EXIT=0", stopped_at)) << t.out();
  EXPECT_TRUE(exists(d.file("done1")) && exists(d.file("done2")));
  EXPECT_EQ(t.out().find("timed out"), std::string::npos) << t.out();
  EXPECT_NE(t.out().find("resumed after"), std::string::npos) << t.out();
}
