// `pcr run --queue`: several real `pcr run` processes ("machines") share one build's items
// through a real redis-server the fixture starts on a loopback port, with no persistence.

#include "../support/pcr_binary.hpp"
#include "../support/support.hpp"

#include <pcr/util/text.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <vector>

using namespace pcr::test;

namespace {

// A redis-server of the test's own, on a free loopback port; killed with the test.
struct Redis {
  int port = 0;
  pid_t pid = -1;
  Redis() {
    std::random_device rd;
    for (int tries = 0; tries < 20 && pid < 0; ++tries) {
      port = 20000 + static_cast<int>(rd() % 20000);
      pid_t p = ::fork();
      if (p == 0) {
        ::setpgid(0, 0);
        int devnull = ::open("/dev/null", O_RDWR);
        ::dup2(devnull, 0), ::dup2(devnull, 1), ::dup2(devnull, 2);
        const std::string ports = std::to_string(port);
        ::execlp("redis-server", "redis-server", "--port", ports.c_str(), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", static_cast<char*>(nullptr));
        _exit(127);
      }
      const bool up = wait_until([&] { return sh("redis-cli -p " + std::to_string(port) + " ping 2>/dev/null") == "PONG\n"; },
                                 std::chrono::seconds(5));
      if (up) {
        pid = p;
      } else {
        ::kill(p, SIGKILL);
        ::waitpid(p, nullptr, 0);
      }
    }
  }
  ~Redis() { stop(); }
  void stop() {
    if (pid < 0) return;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = -1;
  }
  std::string url(const std::string& name) const { return "redis://127.0.0.1:" + std::to_string(port) + "/" + name; }
};

// One `pcr run --queue` process group: a CI machine of the build.
struct Machine {
  pid_t pid = -1;
  std::string out;
  Machine(const TempDir& dir, const std::string& name, std::vector<std::string> args) : out(dir.file(name + ".out")) {
    pid = ::fork();
    if (pid == 0) {
      ::setpgid(0, 0);
      if (::chdir(dir.path().c_str()) != 0) _exit(126);
      int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int devnull = ::open("/dev/null", O_RDONLY);
      ::dup2(devnull, 0), ::dup2(fd, 1), ::dup2(fd, 2);
      const std::string env = "MACHINE=" + name;
      ::putenv(const_cast<char*>(env.c_str()));
      std::vector<std::string> all = {PCR_BINARY, "run", "--no-color", "--queue-machine", name};
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(PCR_BINARY, argv.data());
      _exit(127);
    }
    ::setpgid(pid, pid);
  }
  // Its exit code (128+N for signal N); -1 when it did not end within `limit`.
  int wait(std::chrono::seconds limit = std::chrono::seconds(120)) {
    int status = 0;
    const bool ended = wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, limit);
    if (!ended) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  std::string output() const { return read_file(out); }
};

// Signal every process of machine `name` (its supervisor and its engine, each in a group
// of its own), as when the whole machine dies or stops.
void signal_machine(const std::string& name, int sig) {
  for (int pid : processes_with(std::string("--queue-machine") + '\0' + name + '\0')) ::kill(pid, sig);
}

std::string fmt_item(int i) {
  char b[16];
  std::snprintf(b, sizeof b, "t%02d", i);
  return b;
}

// A pipeline of `n` items t01…tN; each job logs "start ITEM MACHINE" and "end ITEM
// MACHINE" around `body`.
std::string pipeline(int n, const std::string& body, const std::string& extra = "") {
  std::string items;
  for (int i = 1; i <= n; ++i) items += (i > 1 ? ", " : "") + fmt_item(i);
  return "steps:\n  - name: prep\n    run: \"true\"\n  - name: tests\n    workers: 2\n" + extra + "    for_each: [" +
         items + "]\n    run: \"echo start {items} $MACHINE >> log; " + body + "; echo end {items} $MACHINE >> log\"\n";
}

// What the jobs logged: for each "start"/"end", item → the machines, in order.
std::map<std::string, std::vector<std::string>> logged(const TempDir& dir, const std::string& what) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& line : pcr::util::split_lines(read_file(dir.file("log")))) {
    std::istringstream in(line);
    std::string kind, item, machine;
    in >> kind >> item >> machine;
    if (kind == what) out[item].push_back(machine);
  }
  return out;
}

PcrRun report(const Redis& redis, const std::string& name, const std::string& junit = "") {
  std::vector<std::string> args = {"report", "--queue", redis.url(name), "--timeout", "60s"};
  if (!junit.empty()) args.push_back("--junit"), args.push_back(junit);
  return run_pcr_once(args);
}

}  // namespace

// 3 machines × 2 workers share 30 items; one is killed with kill -9 mid-run. The other two
// finish with exit 0, every item is done, and none ran twice on the survivors: only the
// items the dead machine was running when it died run again.
TEST(Queue, AKilledMachinesItemsAreTakenOverAndNothingRunsTwiceOnTheSurvivors) {
  Redis redis;
  ASSERT_GT(redis.pid, 0) << "redis-server did not start";
  TempDir dir;
  dir.write("ci.yaml", pipeline(30, "sleep 0.4"));
  const std::vector<std::string> args = {"--queue", redis.url("b1"), "--queue-timeout", "2s", "ci.yaml"};
  Machine m1(dir, "m1", args), m2(dir, "m2", args), m3(dir, "m3", args);
  // Killed while it runs two items, after it ended at least one.
  ASSERT_TRUE(wait_until([&] { return read_file(dir.file("log")).find("end t") != std::string::npos &&
                                      read_file(dir.file("log")).find(" m3\n") != std::string::npos; },
                         std::chrono::seconds(60)));
  signal_machine("m3", SIGKILL);
  EXPECT_EQ(m3.wait(), 128 + SIGKILL);
  EXPECT_EQ(m1.wait(), 0) << m1.output();
  EXPECT_EQ(m2.wait(), 0) << m2.output();
  const auto starts = logged(dir, "start"), ends = logged(dir, "end");
  for (int i = 1; i <= 30; ++i) {
    const std::string item = fmt_item(i);
    ASSERT_FALSE(ends.count(item) == 0) << item << " never ended";
    std::size_t on_survivors = 0;
    for (const auto& m : starts.at(item)) {
      if (m != "m3") ++on_survivors;
    }
    EXPECT_LE(on_survivors, 1u) << item << " ran twice on the survivors";
    if (starts.at(item).size() > 1) {
      EXPECT_EQ(starts.at(item).front(), "m3") << item << " ran twice, not after m3's death";
    }
  }
  auto r = report(redis, "b1");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("30 item(s) — 30 passed, 0 failed"), std::string::npos) << r.out;
}

// A machine stopped (SIGSTOP) past the queue's timeout loses its item to another; when it
// goes on (SIGCONT), its late acknowledgement counts for nothing: the item is counted once,
// as the machine that took it over ran it.
TEST(Queue, AStoppedMachinesLateAcknowledgementDoesNotCount) {
  Redis redis;
  ASSERT_GT(redis.pid, 0);
  TempDir dir;
  // t01 is long on m2 only: m2 is stopped while it runs.
  dir.write("ci.yaml", pipeline(6, "case {items}$MACHINE in t01m2) sleep 3;; *) sleep 0.2;; esac"));
  const std::vector<std::string> args = {"--queue", redis.url("b2"), "--queue-timeout", "1s", "ci.yaml"};
  Machine m2(dir, "m2", args);
  ASSERT_TRUE(wait_until([&] { return !logged(dir, "start")["t01"].empty(); }, std::chrono::seconds(60)));
  signal_machine("m2", SIGSTOP);
  Machine m1(dir, "m1", args);
  EXPECT_EQ(m1.wait(), 0) << m1.output();
  signal_machine("m2", SIGCONT);
  EXPECT_EQ(m2.wait(), 0) << m2.output();
  EXPECT_EQ(logged(dir, "start")["t01"], (std::vector<std::string>{"m2", "m1"}));
  auto r = report(redis, "b2", dir.file("j.xml"));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("6 item(s) — 6 passed, 0 failed"), std::string::npos) << r.out;
  const std::string junit = read_file(dir.file("j.xml"));
  EXPECT_TRUE(std::regex_search(junit, std::regex("name=\"t01\"[^>]*><system-out>ran on m1<"))) << junit;
}

// redis-server killed mid-run: every machine exits 3 within a bound, naming the URL.
TEST(Queue, RedisLostMidRunEveryMachineExits3NamingTheQueue) {
  Redis redis;
  ASSERT_GT(redis.pid, 0);
  TempDir dir;
  dir.write("ci.yaml", pipeline(40, "sleep 0.3"));
  const std::vector<std::string> args = {"--queue", redis.url("b3"), "--queue-timeout", "2s", "ci.yaml"};
  Machine m1(dir, "m1", args), m2(dir, "m2", args);
  ASSERT_TRUE(wait_until([&] { return logged(dir, "end").size() >= 4; }, std::chrono::seconds(60)));
  redis.stop();
  const auto lost = std::chrono::steady_clock::now();
  EXPECT_EQ(m1.wait(std::chrono::seconds(30)), 3) << m1.output();
  EXPECT_EQ(m2.wait(std::chrono::seconds(30)), 3) << m2.output();
  EXPECT_LT(std::chrono::steady_clock::now() - lost, std::chrono::seconds(20));
  for (const auto* m : {&m1, &m2}) EXPECT_NE(m->output().find(redis.url("b3")), std::string::npos) << m->output();
  EXPECT_LT(logged(dir, "end").size(), 40u);
}

// A failure on any machine fails that machine and makes `pcr report` exit 1, naming the
// item and its output; a retry goes back through the queue and its pass is counted.
TEST(Queue, AFailureAnywhereFailsTheReportAndARetryGoesThroughTheQueue) {
  Redis redis;
  ASSERT_GT(redis.pid, 0);
  TempDir dir;
  dir.write("ci.yaml", pipeline(8,
                                "case {items} in t03) echo disk is full; exit 1;; t05) [ -e flaked ] || "
                                "{{ touch flaked; exit 1; }};; esac",
                                "    retries: 1\n"));
  const std::vector<std::string> args = {"--queue", redis.url("b4"), "ci.yaml"};
  Machine m1(dir, "m1", args), m2(dir, "m2", args);
  const int c1 = m1.wait(), c2 = m2.wait();
  EXPECT_EQ(std::min(c1, c2), 0) << m1.output() << m2.output();
  EXPECT_EQ(std::max(c1, c2), 1) << m1.output() << m2.output();
  EXPECT_EQ(logged(dir, "end")["t05"].size(), 1u);  // its pass; its failure ended before "end"
  auto r = report(redis, "b4");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("8 item(s) — 7 passed (1 after a retry), 1 failed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("✗ tests › t03: failed on m"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("disk is full"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("items by machine: m1 "), std::string::npos) << r.out;
  // The merged reports: JSON and HTML of the whole build.
  auto files = run_pcr_once({"report", "--queue", redis.url("b4"), "--json", dir.file("b.json"), "--html",
                             dir.file("b.html")});
  EXPECT_EQ(files.exit_code, 1) << files.err;
  const auto j = nlohmann::json::parse(read_file(dir.file("b.json")));
  ASSERT_EQ(j.at("items").size(), 8u) << j.dump();
  for (const auto& item : j.at("items"))
    EXPECT_EQ(item.at("status"), item.at("item") == "t03" ? "failed" : "passed") << item.dump();
  const std::string html = read_file(dir.file("b.html"));
  EXPECT_NE(html.find("<tr class=\"failed\"><td>t03</td>"), std::string::npos) << html;
  EXPECT_NE(html.find("disk is full"), std::string::npos) << html;
  // A CI retry of the machine that failed (same NAME, same machine name) runs only what
  // failed on it.
  const std::string failed_on = c1 == 1 ? "m1" : "m2";
  const auto before = logged(dir, "start");
  Machine again(dir, failed_on, args);
  EXPECT_EQ(again.wait(), 1) << again.output();
  auto after = logged(dir, "start");
  for (const auto& [item, machines] : after) {
    const std::size_t more = machines.size() - (before.count(item) ? before.at(item).size() : 0);
    EXPECT_EQ(more, item == "t03" ? 1u : 0u) << item;
  }
}

// Two builds (two NAMEs) on one Redis never mix.
TEST(Queue, BuildsWithDifferentNamesNeverMix) {
  Redis redis;
  ASSERT_GT(redis.pid, 0);
  TempDir a, b;
  a.write("ci.yaml", pipeline(4, "true"));
  b.write("ci.yaml", pipeline(6, "true"));
  Machine ma(a, "ma", {"--queue", redis.url("build-a"), "ci.yaml"});
  Machine mb(b, "mb", {"--queue", redis.url("build-b"), "ci.yaml"});
  EXPECT_EQ(ma.wait(), 0) << ma.output();
  EXPECT_EQ(mb.wait(), 0) << mb.output();
  EXPECT_EQ(logged(a, "end").size(), 4u);
  EXPECT_EQ(logged(b, "end").size(), 6u);
  EXPECT_NE(report(redis, "build-a").out.find("4 item(s) — 4 passed"), std::string::npos);
  EXPECT_NE(report(redis, "build-b").out.find("6 item(s) — 6 passed"), std::string::npos);
  // A machine whose items differ from its build's queue is refused, naming the step.
  b.write("ci.yaml", pipeline(5, "true"));
  Machine other(b, "other", {"--queue", redis.url("build-a"), "ci.yaml"});
  EXPECT_EQ(other.wait(), 3) << other.output();
  EXPECT_NE(other.output().find("other items than the queue's"), std::string::npos) << other.output();
}

// Bad queue flags are usage errors naming the flag; nothing runs.
TEST(Queue, BadFlagsAreUsageErrors) {
  TempDir dir;
  dir.write("ci.yaml", "steps:\n  - run: touch ran\n");
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--queue", "http://x/b"}, {"--queue", "redis://host:99999/b"}, {"--queue", "redis://host:6379/"},
           {"--queue", "redis://h/b", "--queue-timeout", "100ms"}, {"--queue", "redis://h/b", "--shard", "1/2"}}) {
    std::vector<std::string> all = {"run"};
    all.insert(all.end(), args.begin(), args.end());
    all.push_back(dir.file("ci.yaml"));
    auto r = run_pcr_once(all);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("--queue"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(exists(dir.file("ran")));
}
