// The rest of the command line: check, --dry-run, --version, --help, the terminal.
#include "../support/pcr_binary.hpp"

#include <gtest/gtest.h>

#include <regex>

using namespace pcr::test;

namespace {
const char* k_pipeline = R"(
name: demo
steps:
  - name: up
    parallel: 2
    run: touch ran-{n}
  - name: specs
    workers: 2
    for_each: {list: [a b, c]}
    run: touch spec {items}
cleanup:
  - run: touch cleaned
)";
}

TEST(Check, PrintsThePlanAndRunsNothing) {
  TempDir d;
  d.write("ci.yaml", k_pipeline);
  auto r = run_pcr({"check", d.file("ci.yaml")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("step 1/2: up — 2 jobs on 2 workers"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("n=2   touch ran-2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("touch spec 'a b'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cleanup 1/1"), std::string::npos) << r.out;
  EXPECT_FALSE(exists(d.file("ran-1")));
  EXPECT_FALSE(exists(d.file("cleaned")));
}

TEST(Check, BadFileExitsTwo) {
  TempDir d;
  d.write("ci.yaml", "steps:\n  - run: a\n    retries: lots\n");
  auto r = run_pcr({"check", d.file("ci.yaml")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("ci.yaml:3:14: retries: expected a whole number"), std::string::npos) << r.err;
}

TEST(DryRun, PrintsThePlanAndRunsNothing) {
  TempDir d;
  auto r = run_yaml(d, k_pipeline, {"--dry-run"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("touch ran-1"), std::string::npos);
  EXPECT_FALSE(exists(d.file("ran-1")));
  EXPECT_FALSE(exists(d.file("cleaned")));
}

TEST(Cli, VersionAndHelpForEverySubcommand) {
  auto v = run_pcr({"--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_EQ(v.out.rfind("pcr ", 0), 0u);
  for (auto args : std::vector<std::vector<std::string>>{{"--help"}, {"run", "--help"}, {"check", "--help"}}) {
    auto h = run_pcr(args);
    EXPECT_EQ(h.exit_code, 0);
    EXPECT_NE(h.out.find("Usage"), std::string::npos) << h.out;
  }
  EXPECT_NE(run_pcr({"run", "--help"}).out.find("--dry-run"), std::string::npos);
  // Output like any other: a failure to write it is an error, not a silent 0.
  PcrOptions full;
  full.stdout_path = "/dev/full";
  for (auto args : std::vector<std::vector<std::string>>{{"--version"}, {"--help"}, {"run", "--help"}}) {
    auto r = run_pcr(args, full);
    EXPECT_EQ(r.exit_code, 3) << args[0];
    EXPECT_EQ(r.err, "pcr: error: could not write to standard output\n");
  }
}

// Under a real pseudo-terminal (script(1)), pcr draws one status line and colour.
TEST(Terminal, StatusLineAndColourUnderAPty) {
  if (std::system("command -v script > /dev/null") != 0) GTEST_SKIP() << "script(1) is missing";
  TempDir d;
  d.write("ci.yaml", "steps:\n  - name: waits\n    commands: [sleep 2.5, echo quick]\n");
  auto run_in_pty = [&](const std::string& env) {
    std::string cmd = "cd '" + d.path() + "' && " + env + " TERM=xterm script -qec \"'" + PCR_BINARY +
                      "' run ci.yaml\" /dev/null > pty.out 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
    return read_file(d.file("pty.out"));
  };
  std::string out = run_in_pty("");
  EXPECT_NE(out.find("\r\x1b[K"), std::string::npos) << "no status line redraw";
  EXPECT_NE(out.find("[step 1/1 waits] 1 of 2 jobs done, 1 running"), std::string::npos) << out;
  EXPECT_NE(out.find("\x1b[32m"), std::string::npos) << "no colour on a terminal";
  EXPECT_EQ(out.find("… waits: running for"), std::string::npos) << "heartbeat on a terminal";
  std::string plain = run_in_pty("NO_COLOR=1");
  EXPECT_EQ(plain.find("\x1b[32m"), std::string::npos) << "NO_COLOR ignored";
  EXPECT_NE(plain.find("jobs done"), std::string::npos);
  // One line that redraws, naming the running job; with the durations the first runs
  // recorded, an estimate of the time left (the step's only job left: ~2.5 s less 1 s).
  EXPECT_TRUE(std::regex_search(plain, std::regex(R"(1 running, 1\.0s, ~[23]s left · sleep 2\.5 [0-9.]+m?s)"))) << plain;
  EXPECT_EQ(plain.find("\x1b[1A"), std::string::npos) << "the status is one line, never a block";
}

// `pcr check` with hosts: the hosts, where each worker goes, and what a remote host
// cannot see (bind mounts, build contexts), named by host. Nothing is probed or run.
TEST(Check, HostsShowWhereWorkersGoAndWhatRemoteHostsCannotSee) {
  TempDir d;
  d.write("docker-compose.yml", "services:\n  web:\n    image: busybox\n    volumes: [\"./src:/app\"]\n");
  d.write("ci.yaml", R"(
hosts:
  - name: here
    docker: unix:///var/run/docker.sock
    workers: 1
  - name: box2
    docker: ssh://ci@box2
    workers: 1
compose:
  file: docker-compose.yml
steps:
  - name: image
    per_host: true
    run: touch built-$CI_HOST
  - name: up
    parallel: 2
    run: docker-compose up -d
)");
  auto r = run_pcr({"check", d.file("ci.yaml")});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("box2         1 worker   ssh://ci@box2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("image — 2 jobs on 2 workers, once per host"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("workers: n=1 here, n=2 box2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("n=2 @box2 docker-compose up -d"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("docker-compose.yml:4:15: warning: service web: bind mount of ./src will not exist on the "
                       "remote docker host box2 (ssh://ci@box2)"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("host here"), std::string::npos) << "a local host gets no remote warning";
  EXPECT_FALSE(exists(d.file("built-here")));
}

// docs/docker.md's placement example, as `pcr check` shows it.
TEST(Check, WorkersInterleaveByCapacity) {
  TempDir d;
  d.write("ci.yaml", "hosts:\n  - {name: here, docker: \"unix:///var/run/docker.sock\", workers: 2}\n"
                     "  - {name: box2, docker: \"ssh://ci@box2\", workers: 4}\n"
                     "steps:\n  - name: up\n    parallel: 6\n    run: \"true\"\n"
                     "  - name: pool\n    for_each: [a, b, c, d, e, f, g, h]\n    run: echo {items}\n");
  auto r = run_pcr({"check", d.file("ci.yaml")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("workers: n=1 box2, n=2 here, n=3 box2, n=4 box2, n=5 here, n=6 box2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pool — 8 jobs on 6 workers"), std::string::npos) << "a pool without `workers:` is the capacity\n"
                                                                        << r.out;
}
