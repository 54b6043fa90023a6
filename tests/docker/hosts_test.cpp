// `hosts:` against two real Docker engines on this machine: the suite's dockerd (the
// `docker.ready` fixture) and a second one with its own socket, data root, exec root,
// pid file and address pool (tests/docker/second_docker.sh, the `docker.second` fixture).
#include "../support/pcr_binary.hpp"
#include "cluster.hpp"
#include <pcr/util/text.hpp>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <fstream>
#include <tuple>

using namespace pcr::test;

namespace {

const std::string k_one = k_engine;
const std::string k_two = "unix:///var/run/pcr-docker2.sock";

std::string second_docker(const std::string& what) {
  return sh(std::string(PCR_SOURCE_DIR) + "/tests/docker/second_docker.sh " + what + " 2>&1");
}

// A pipeline folder with the compose file and the busybox image's build context, whose
// pipeline starts by building the image on every host (the second engine has none).
struct TwoHosts {
  TempDir dir;
  std::string base = unique_marker("pcrhx");
  TwoHosts() {
    dir.write("docker-compose.yml", cluster_compose(false));
    dir.write("image/Dockerfile",
              "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", "
              "\"-s\", \"/bin\"]\nCMD [\"sh\"]\n");
    sh("cp \"$(command -v busybox || echo /bin/busybox)\" '" + dir.file("image/busybox") + "'");
    EXPECT_EQ(second_docker("start"), k_two + "\n");
  }
  ~TwoHosts() { second_docker("start"); }  // a test that stopped it leaves it running again
  std::string pipeline(const std::string& steps, const std::string& extra_hosts = "") const {
    return "name: " + base + "\nhosts:\n  - name: one\n    docker: " + k_one +
           "\n    workers: 2\n  - name: two\n    docker: " + k_two + "\n    workers: 2\n" +
           extra_hosts + "compose:\n  file: docker-compose.yml\nsteps:\n" +
           "  - name: image\n    per_host: true\n    run: docker build -q -t pcr-busybox:test "
           "image > /dev/null\n    timeout: 2m\n" +
           "  - name: up\n    parallel: 4\n    run: docker-compose up -d 2>&1\n    timeout: 2m\n" +
           steps;
  }
};

// The lines of `path`'s JSON events with "event" = `event`.
std::vector<nlohmann::json> events(const std::string& path, const std::string& event) {
  std::vector<nlohmann::json> out;
  for (const auto& line : pcr::util::split_lines(read_file(path))) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.value("event", "") == event) out.push_back(j);
  }
  return out;
}

}  // namespace

TEST(Hosts, WorkersLandOnBothEnginesByCapacityAndTeardownClearsBoth) {
  TwoHosts h;
  auto r = run_yaml(h.dir,
                    h.pipeline(R"Y(  - name: count
    run: for e in )Y" + k_one + " " +
                               k_two + R"Y(; do docker -H $e ps -q --filter name=)Y" + h.base +
                               R"Y( | wc -l > "count-$(basename $e)"; done
  - name: each talks to its own db
    parallel: 4
    run: page=""; for i in 1 2 3 4 5 6 7 8 9 10; do page=$({exec web} wget -qO- http://db:8080/) && break; sleep 0.5; done; test "$page" = "db-of-$PROJECT_NAME" && echo "$CI_HOST $DOCKER_HOST {n} $page"
)Y"),
                    {"--json", h.dir.file("events.json")});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // Two workers (two clusters of two containers) on each engine.
  EXPECT_EQ(read_file(h.dir.file("count-docker.sock")), "4\n");
  EXPECT_EQ(read_file(h.dir.file("count-pcr-docker2.sock")), "4\n");
  for (const auto& [n, host, engine] :
       {std::tuple{1, "one", k_one}, {2, "two", k_two}, {3, "one", k_one}, {4, "two", k_two}})
    EXPECT_NE(r.out.find(fmt::format("{} {} {} db-of-{}", host, engine, n, h.base)),
              std::string::npos)
        << "worker " << n << " on " << host << ":\n"
        << r.out;
  EXPECT_NE(r.out.find("4 jobs on 4 workers (one: 2, two: 2)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2 jobs on 2 workers (one: 1, two: 1)"), std::string::npos)
      << "per_host: " << r.out;
  auto run_start = events(h.dir.file("events.json"), "run_start");
  ASSERT_EQ(run_start.size(), 1u);
  EXPECT_EQ(run_start[0]["hosts"][1]["name"], "two");
  EXPECT_EQ(run_start[0]["hosts"][1]["address"], k_two);
  EXPECT_EQ(run_start[0]["hosts"][1]["workers"], 2);
  auto starts = events(h.dir.file("events.json"), "job_start");
  ASSERT_FALSE(starts.empty());
  EXPECT_TRUE(starts[0].contains("host"));
  EXPECT_EQ(leftovers_on(k_one, h.base), "");
  EXPECT_EQ(leftovers_on(k_two, h.base), "");
  EXPECT_EQ(sh("ls '" + h.dir.file(".pcr/projects") + "' 2>/dev/null"), "")
      << "records are removed after teardown";
}

TEST(Hosts, UnreachableHostAtTheStartIsReportedAndLeftOut) {
  TwoHosts h;
  const std::string gone =
      "  - name: gone\n    docker: unix:///var/run/pcr-no-such-engine.sock\n    workers: 8\n";
  auto r = run_yaml(h.dir, h.pipeline("  - run: echo on $CI_HOST\n", gone));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(
      r.out.find(
          "host gone (unix:///var/run/pcr-no-such-engine.sock) does not answer: Cannot connect"),
      std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("4 jobs on 4 workers (one: 2, two: 2)"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("on gone"), std::string::npos);
  auto strict = run_yaml(h.dir, h.pipeline("  - run: touch ran\n", gone), {"--require-all-hosts"});
  EXPECT_EQ(strict.exit_code, 1) << strict.out;
  EXPECT_NE(strict.out.find("--require-all-hosts"), std::string::npos) << strict.out;
  EXPECT_FALSE(exists(h.dir.file("ran")));
  EXPECT_EQ(leftovers_on(k_one, h.base), "");
  EXPECT_EQ(leftovers_on(k_two, h.base), "");
}

// The second engine stops while its workers run: their jobs are infrastructure failures,
// run again on the first engine, and the run passes. Its projects stay recorded; once it
// is back, `pcr clean` takes them down: nothing is left on either engine.
TEST(Hosts, EngineStoppedMidRunItsJobsRerunOnTheOther) {
  TwoHosts h;
  PcrOptions o;
  o.while_running = [&](pid_t) {
    ASSERT_TRUE(
        wait_until([&] { return exists(h.dir.file("waiting")); }, std::chrono::seconds(180)));
    second_docker("stop");
    h.dir.write("stopped", "");
  };
  auto r = run_yaml(h.dir, h.pipeline(R"Y(  - name: specs
    for_each: [s1, s2, s3, s4, s5, s6, s7, s8]
    timeout: 2m
    run: if [ "$CI_HOST" = two ]; then touch waiting; while [ ! -e stopped ]; do sleep 0.1; done; fi; {exec web} wget -qO- http://db:8080/ | grep -q "db-of-$PROJECT_NAME" && echo "{items} passed on $CI_HOST"
)Y"),
                    {"--json", "events.json", "--junit", "junit.xml", "--html", "report.html"}, o);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  for (int i = 1; i <= 8; ++i)
    EXPECT_NE(r.out.find(fmt::format("s{} passed on one", i)), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("passed on two"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("host two (" + k_two + ") stopped answering during step specs"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("lost with its host"), std::string::npos) << r.out;
  auto down = events(h.dir.file("events.json"), "host_down");
  ASSERT_EQ(down.size(), 1u);
  EXPECT_EQ(down[0]["host"], "two");
  EXPECT_EQ(down[0]["at_start"], false);
  size_t lost = 0;
  for (const auto& e : events(h.dir.file("events.json"), "job_end"))
    if (e["infrastructure"] == true) {
      ++lost;
      EXPECT_EQ(e["host"], "two");
    }
  EXPECT_GE(lost, 1u);
  EXPECT_NE(read_file(h.dir.file("junit.xml")).find("lost with its host"), std::string::npos);
  EXPECT_NE(read_file(h.dir.file("report.html"))
                .find("host two (" + k_two + ") stopped answering during step specs"),
            std::string::npos);
  EXPECT_NE(read_file(h.dir.file("report.html")).find("specs · n=2 @two</div>"), std::string::npos)
      << "the timeline's lanes name their host";
  // The next run warns about what is still recorded on the host that went away.
  PcrOptions here;
  here.cwd = h.dir.path();
  EXPECT_NE(run_pcr({"run", "--dry-run"}, here).err.find("left behind by an earlier run"),
            std::string::npos);
  EXPECT_EQ(leftovers_on(k_one, h.base), "") << "the first engine's clusters were taken down";

  // The second engine's clusters could not be taken down while it was away.
  ASSERT_EQ(second_docker("start"), k_two + "\n");
  ASSERT_NE(leftovers_on(k_two, h.base), "");
  PcrOptions in_dir;
  in_dir.cwd = h.dir.path();
  auto clean = run_pcr({"clean"}, in_dir);
  EXPECT_EQ(clean.exit_code, 0) << clean.out;
  EXPECT_NE(clean.out.find("on host two (" + k_two + ")"), std::string::npos) << clean.out;
  EXPECT_EQ(leftovers_on(k_two, h.base), "");
  EXPECT_EQ(leftovers_on(k_one, h.base), "");
}

// `context: NAME` takes the engine a docker context points at: jobs get its DOCKER_HOST.
TEST(Hosts, ADockerContextNamesAHost) {
  TempDir d;
  ASSERT_EQ(second_docker("start"), k_two + "\n");
  const std::string context = unique_marker("pcrctx");
  ASSERT_EQ(
      std::system(("docker context create " + context + " --docker host=" + k_two + " > /dev/null")
                      .c_str()),
      0);
  auto r = run_yaml(d, "hosts:\n  - name: two\n    context: " + context +
                           "\nsteps:\n  - run: echo \"$DOCKER_HOST\" > dh && docker info --format "
                           "'{{{{.DockerRootDir}}}}' > root\n");
  std::system(("docker context rm -f " + context + " > /dev/null").c_str());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(read_file(d.file("dh")), k_two + "\n");
  EXPECT_EQ(read_file(d.file("root")), "/var/lib/pcr-docker2\n");
  auto bad = run_yaml(d, "hosts:\n  - name: two\n    context: no-such-context-" + context +
                             "\nsteps:\n  - run: touch ran\n");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("ci.yaml:3:14: context 'no-such-context-"), std::string::npos) << bad.err;
  EXPECT_FALSE(exists(d.file("ran")));
}

// A host reached over SSH, as a remote one is (tests/docker/ssh_docker.sh: an sshd on
// 127.0.0.1:2222 whose sessions talk to the second engine): probed and used through
// `ssh://`; with its sshd gone, it is reported with ssh's own words and left out.
TEST(Hosts, AHostOverSsh) {
  TempDir d;
  const std::string bin = pcr::util::split_lines(sh(std::string(PCR_SOURCE_DIR) + "/tests/docker/ssh_docker.sh start")).back();
  ASSERT_EQ(bin, "/var/lib/pcr-ssh/bin");
  PcrOptions o;
  o.env = {"PATH=" + bin + ":" + std::getenv("PATH")};
  const std::string yaml = "hosts:\n  - name: one\n    docker: " + k_one +
                           "\n  - name: far\n    docker: ssh://root@127.0.0.1:2222\nsteps:\n  - name: where\n    parallel: 2\n"
                           "    run: echo \"$CI_HOST $(docker info --format '{{{{.DockerRootDir}}}}')\" > where-{n}\n";
  auto r = run_yaml(d, yaml, {}, o);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(read_file(d.file("where-1")), "one /var/lib/docker\n");
  EXPECT_EQ(read_file(d.file("where-2")), "far /var/lib/pcr-docker2\n");

  sh(std::string(PCR_SOURCE_DIR) + "/tests/docker/ssh_docker.sh stop");
  std::remove(d.file("where-2").c_str());
  auto gone = run_yaml(d, yaml, {}, o);
  ASSERT_EQ(gone.exit_code, 0) << gone.out << gone.err;
  EXPECT_NE(gone.out.find("host far (ssh://root@127.0.0.1:2222) does not answer"), std::string::npos) << gone.out;
  EXPECT_NE(gone.out.find("Connection refused"), std::string::npos) << gone.out;
  EXPECT_EQ(read_file(d.file("where-2")), "one /var/lib/docker\n") << "worker 2 went to the host that answers";
}

// No `hosts:`, but the pipeline's `env:` sends every docker command to the second engine:
// the projects are recorded with that DOCKER_HOST, so a supervisor whose engine was killed
// (and `pcr clean`) takes them down there. It looked at its own DOCKER_HOST, said "took
// down", and left every cluster running.
TEST(Hosts, ADockerHostFromThePipelinesEnvIsWhereTheClustersAreTakenDown) {
  TwoHosts h;
  PcrOptions o;
  o.while_running = [&](pid_t pid) {
    ASSERT_TRUE(wait_until([&] { return exists(h.dir.file("up.done")); }, std::chrono::seconds(180)));
    std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
    pid_t engine = 0;
    ASSERT_TRUE(in >> engine) << "the supervisor has one child, the engine";
    ::kill(engine, SIGKILL);
  };
  auto r = run_yaml(h.dir,
                    "name: " + h.base + "\nenv:\n  DOCKER_HOST: " + k_two +
                        "\ncompose:\n  file: docker-compose.yml\nsteps:\n"
                        "  - name: image\n    run: docker build -q -t pcr-busybox:test image > /dev/null\n    timeout: 2m\n"
                        "  - name: up\n    parallel: 2\n    run: docker-compose up -d 2>&1\n    timeout: 2m\n"
                        "  - run: touch up.done; sleep 60\n",
                    {}, o);
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.err.find("took down " + h.base), std::string::npos) << r.err;
  EXPECT_EQ(leftovers_on(k_two, h.base), "") << "the clusters are gone from the engine they were on";
  EXPECT_EQ(leftovers_on(k_one, h.base), "");
}

// A `parallel` step whose workers set up their own cluster (`setup:`): when a host stops
// answering, its worker moves, sets up again on the new host, and the job reruns there
// and passes (it used to keep its old set-up, which stayed on the lost host).
TEST(Hosts, AMovedWorkerSetsUpAgainOnItsNewHost) {
  TwoHosts h;
  PcrOptions o;
  o.while_running = [&](pid_t) {
    ASSERT_TRUE(wait_until([&] { return exists(h.dir.file("waiting")); }, std::chrono::seconds(180)));
    second_docker("stop");
    h.dir.write("stopped", "");
  };
  auto r = run_yaml(h.dir,
                    "name: " + h.base + "\nhosts:\n  - name: one\n    docker: " + k_one +
                        "\n    workers: 1\n  - name: two\n    docker: " + k_two +
                        "\n    workers: 1\ncompose:\n  file: docker-compose.yml\nsteps:\n"
                        "  - name: image\n    per_host: true\n    run: docker build -q -t pcr-busybox:test image > /dev/null\n"
                        "    timeout: 2m\n"
                        "  - name: work\n    parallel: 2\n    timeout: 2m\n"
                        "    setup: echo \"$CI_HOST\" >> setups-{n}; docker-compose up -d 2>&1\n"
                        "    run: if [ \"$CI_HOST\" = two ]; then touch waiting; while [ ! -e stopped ]; do sleep 0.1; done; fi; "
                        "for i in 1 2 3 4 5 6 7 8 9 10; do page=$({exec web} wget -qO- http://db:8080/) && break; sleep 0.5; done; "
                        "test \"$page\" = \"db-of-$PROJECT_NAME\" && echo \"{n} passed on $CI_HOST\"\n",
                    {}, o);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("1 passed on one"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2 passed on one"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("worker 2 moves from host two to host one"), std::string::npos) << r.out;
  EXPECT_EQ(read_file(h.dir.file("setups-2")), "two\none\n") << "set up again where it moved";
  EXPECT_EQ(leftovers_on(k_one, h.base), "");
  ASSERT_EQ(second_docker("start"), k_two + "\n");
  PcrOptions in_dir;
  in_dir.cwd = h.dir.path();
  EXPECT_EQ(run_pcr({"clean"}, in_dir).exit_code, 0);
  EXPECT_EQ(leftovers_on(k_two, h.base), "");
}
