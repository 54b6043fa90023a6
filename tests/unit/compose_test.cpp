#include "../support/support.hpp"
#include <pcr/config/loader.hpp>
#include <pcr/docker/compose.hpp>
#include <pcr/proc/runs.hpp>
#include <pcr/pipeline/engine.hpp>

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <unistd.h>

#include <set>

using namespace pcr;
using namespace pcr::docker;

TEST(Compose, CommandShapesOfBothVersions) {
  EXPECT_EQ(compose_argv(ComposeVersion::v2, {"/a/dc.yml", "/a/dc.ci.yml"}, "shop-r1-2"),
            (std::vector<std::string>{"docker", "compose", "-f", "/a/dc.yml", "-f", "/a/dc.ci.yml",
                                      "-p", "shop-r1-2"}));
  EXPECT_EQ(compose_argv(ComposeVersion::v1, {"/a/dc.yml"}, "p"),
            (std::vector<std::string>{"docker-compose", "-f", "/a/dc.yml", "-p", "p"}));
}

TEST(Compose, ProjectNamesAreValidForV1AndV2) {
  EXPECT_EQ(project_name("shop", "ab12cd34", 3), "shop-ab12cd34-3");
  EXPECT_EQ(project_name("My Shop.App", "r", 1), "my-shop-app-r-1");
  EXPECT_EQ(project_name("_x", "r", 1), "x-r-1");
  EXPECT_EQ(project_name("", "r", 2), "pcr-r-2");
  // A long base (a pipeline's name, `project:`) is cut: the name goes into file names.
  EXPECT_EQ(project_name(std::string(300, 'a'), "r", 2), std::string(40, 'a') + "-r-2");
}

TEST(Compose, RecordsRoundTripAndLiveness) {
  ProjectRecord r;
  r.project = "p-1";
  r.files = {"/x/dc.yml"};
  r.version = ComposeVersion::v2;
  r.pid = ::getpid();
  r.pid_start = process_start(r.pid);
  r.run_id = "abc";
  auto back = parse_record(record_json(r));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->project, "p-1");
  EXPECT_EQ(back->files, r.files);
  EXPECT_EQ(back->version, ComposeVersion::v2);
  test::TempDir d;
  const std::string state = state_dir(d.path());
  EXPECT_EQ(owner_of(state, *back), Owner::running);
  back->pid_start += 1;  // the pid now belongs to another process
  EXPECT_EQ(owner_of(state, *back), Owner::gone);
  EXPECT_FALSE(parse_record("{broken"));
}

// A run lives while either of its processes does: the record's writer (the engine) was
// killed, but the run's supervisor still runs its cleanup steps, which use the projects.
TEST(Compose, RunWithOneProcessLeftIsFinishingNotGone) {
  test::TempDir d;
  const std::string state = state_dir(d.path());
  ProjectRecord r;
  r.project = "p-1";
  r.run_id = "run1";
  r.pid = ::getpid();
  r.pid_start = process_start(r.pid) + 1;  // the engine: gone
  proc::RunRecord run;
  run.run_id = "run1";
  run.pid = ::getpid();  // the supervisor: alive
  run.pid_start = process_start(run.pid);
  run.engine = r.pid;
  run.engine_start = r.pid_start;
  ASSERT_EQ(proc::write_run_record(proc::runs_dir(d.path()), run), "");
  EXPECT_EQ(owner_of(state, r), Owner::finishing);
  run.pid_start += 1;  // both gone
  ASSERT_EQ(proc::write_run_record(proc::runs_dir(d.path()), run), "");
  EXPECT_EQ(owner_of(state, r), Owner::gone);
  // The engine alive, its supervisor killed: tearing down, still the run's.
  run.engine_start = process_start(run.engine);
  r.pid_start = run.engine_start;
  ASSERT_EQ(proc::write_run_record(proc::runs_dir(d.path()), run), "");
  EXPECT_EQ(owner_of(state, r), Owner::finishing);
}

TEST(Compose, LoaderGivesEnvironmentAndPlaceholders) {
  test::TempDir d;
  d.write("dc.yml", "services: {}\n");
  d.write("ci.yaml",
          "name: shop\ncompose:\n  file: dc.yml\n  env: {IMAGE: shop:ci}\nsteps:\n  - parallel: "
          "2\n    run: "
          "\"{exec web} rspec && echo {project} && {compose} ps\"\n");
  auto p = config::load_file(d.file("ci.yaml"));
  ASSERT_EQ(p.extensions.size(), 1u);
  pipeline::JobContext ctx{2, 2, 2, {}, "run9", "s", {}, {}, {}};
  auto env = p.extensions[0].env(ctx);
  std::map<std::string, std::string> vars(env.begin(), env.end());
  EXPECT_EQ(vars["COMPOSE_PROJECT_NAME"], "shop-run9-2");
  EXPECT_EQ(vars["PROJECT_NAME"], "shop-run9-2");
  EXPECT_EQ(vars["COMPOSE_FILE"], d.file("dc.yml"));
  EXPECT_EQ(vars["IMAGE"], "shop:ci");
  // Recorded before use, as the job starts, with the DOCKER_HOST the job gets.
  EXPECT_FALSE(test::exists(d.file(".pcr/projects/shop-run9-2.json")));
  p.extensions[0].starting(ctx, {{"DOCKER_HOST", "tcp://box:2375"}, {"HOME", "/root"}});
  auto record = parse_record(test::read_file(d.file(".pcr/projects/shop-run9-2.json")));
  ASSERT_TRUE(record);
  EXPECT_EQ(record->docker_host, "tcp://box:2375");
  // The teardown script with it (a disk full by the end of the run could not take it), and
  // not written again when it is there as it should be.
  struct stat down {};
  ASSERT_EQ(::stat(d.file(".pcr/down.sh").c_str(), &down), 0);
  EXPECT_TRUE(down.st_mode & S_IXUSR);
  ctx.number = 1;
  p.extensions[0].starting(ctx, {});
  struct stat again {};
  ASSERT_EQ(::stat(d.file(".pcr/down.sh").c_str(), &again), 0);
  EXPECT_EQ(again.st_ino, down.st_ino) << "rewritten (a rename gives a new inode)";
  ctx.number = 2;
  ctx.resolve = [&](const std::string& n, const std::string& a) {
    return p.extensions[0].placeholder(n, a, ctx);
  };
  std::string cmd = p.steps[0].commands[0](ctx);
  // {exec web}: the wrapper that stops the process inside the container too.
  EXPECT_NE(cmd.find(d.file(".pcr/exec.sh") + " 'docker"), std::string::npos) << cmd;
  EXPECT_NE(cmd.find(" -p shop-run9-2' web " + d.file(".pcr/exec/shop-run9-2.log") + " rspec"),
            std::string::npos)
      << cmd;
  // Nothing started in a container yet: nothing to stop after the job.
  EXPECT_FALSE(p.extensions[0].after_job(ctx));
  test::TempDir::write_file(
      d.file(".pcr/exec/shop-run9-2.log"),
      "start /tmp/.pcr-exec-1-2 web\nstart /tmp/.pcr-exec-3-4 db\nend /tmp/.pcr-exec-1-2\n");
  auto stop = p.extensions[0].after_job(ctx);
  ASSERT_TRUE(stop);
  EXPECT_NE(stop->find(d.file(".pcr/exec-stop.sh") + " 'docker"), std::string::npos) << *stop;
  EXPECT_NE(stop->find("-p shop-run9-2' " + d.file(".pcr/exec/shop-run9-2.log")), std::string::npos)
      << *stop;
  test::TempDir::write_file(d.file(".pcr/exec/shop-run9-2.log"), "start /tmp/a web\nend /tmp/a\n");
  EXPECT_FALSE(p.extensions[0].after_job(ctx)) << "every command ended by itself";
  EXPECT_TRUE(test::exists(d.file(".pcr/exec.sh")));
  EXPECT_NE(cmd.find("echo shop-run9-2"), std::string::npos) << cmd;
  ASSERT_EQ(p.cleanup.size(), 1u);
  EXPECT_EQ(p.cleanup[0].name, "compose teardown");
}

TEST(Compose, LoadErrors) {
  test::TempDir d;
  d.write("ci.yaml", "compose:\n  file: missing.yml\nsteps:\n  - run: echo {project}\n");
  try {
    config::load_file(d.file("ci.yaml"));
    FAIL();
  } catch (const config::LoadError& e) {
    EXPECT_EQ(e.diagnostics()[0].line, 2);
    EXPECT_NE(e.diagnostics()[0].message.find("missing.yml does not exist"), std::string::npos);
  }
  d.write("ci.yaml", "steps:\n  - run: echo {exec web}\n");
  EXPECT_THROW(config::load_file(d.file("ci.yaml")), config::LoadError);  // no compose: no {exec}
  // A FIFO (or a device) as the compose file would hang the lint and compose itself.
  ASSERT_EQ(::mkfifo(d.file("fifo.yml").c_str(), 0600), 0);
  d.write("ci.yaml", "compose:\n  file: fifo.yml\nsteps:\n  - run: echo {project}\n");
  try {
    config::load_file(d.file("ci.yaml"));
    FAIL();
  } catch (const config::LoadError& e) {
    EXPECT_NE(e.diagnostics()[0].message.find("fifo.yml is not a regular file"), std::string::npos);
  }
}

// `{exec ap}` (a typo for `app`) passed `pcr check`, and every test failed at run time with
// "exit code 1" and no output. A name no compose file defines is a load error at its
// place, with a did-you-mean; a name built from a variable cannot be known: not checked.
TEST(Compose, ServiceNamesAreCheckedAtLoad) {
  test::TempDir d;
  d.write("dc.yml", "services:\n  app: {image: x}\n  db: {image: y}\n");
  d.write("extra.yml", "services:\n  cache: {image: z}\n");
  d.write("ci.yaml", "compose:\n  file: [dc.yml, extra.yml]\nsteps:\n  - run: \"{exec ap} make test\"\n"
                     "  - setup: \"{wait db cach}\"\n    run: \"{exec app} true\"\n");
  try {
    config::load_file(d.file("ci.yaml"));
    FAIL();
  } catch (const config::LoadError& e) {
    ASSERT_EQ(e.diagnostics().size(), 2u);
    EXPECT_EQ(e.diagnostics()[0].line, 4);
    EXPECT_EQ(e.diagnostics()[0].column, 11);  // the brace
    EXPECT_EQ(e.diagnostics()[0].message,
              "{exec ap}: the compose file has no service 'ap' (did you mean 'app'?); services: app, cache, db");
    EXPECT_NE(e.diagnostics()[1].message.find("no service 'cach' (did you mean 'cache'?)"), std::string::npos);
  }
  d.write("ci.yaml", "compose:\n  file: dc.yml\nsteps:\n  - run: \"{exec $SVC} true && {exec db} true\"\n"
                     "    setup: \"{wait app db}\"\n");
  EXPECT_NO_THROW(config::load_file(d.file("ci.yaml")));
  d.write("ci.yaml", "compose:\n  file: dc.yml\nsteps:\n  - run: \"{exec} true\"\n");
  EXPECT_THROW(config::load_file(d.file("ci.yaml")), config::LoadError);
}

#include <pcr/docker/lint.hpp>

TEST(ComposeLint, FixedNamesPortsAndRemoteBindMounts) {
  test::TempDir d;
  d.write("dc.yml", R"(services:
  web:
    container_name: web_fixed
    ports: ["8080:80", "127.0.0.1:9090:90", "80", "${PORT}:80"]
    volumes: ["./src:/app", "data:/data"]
    build: .
  db:
    container_name: ${PROJECT_NAME}_db
    ports:
      - target: 5432
        published: 5432
)");
  auto local = docker::lint_compose({d.file("dc.yml")}, "");
  ASSERT_EQ(local.size(), 4u) << ::testing::PrintToString(local);
  EXPECT_NE(local[0].find(d.file("dc.yml") +
                          ":3:21: warning: service web: container_name 'web_fixed' is fixed"),
            std::string::npos)
      << local[0];
  EXPECT_NE(local[1].find("host port 8080"), std::string::npos);
  EXPECT_NE(local[2].find("host port 9090"), std::string::npos);
  EXPECT_NE(local[3].find("service db: host port 5432"), std::string::npos);
  auto remote = docker::lint_compose({d.file("dc.yml")}, "ssh://ci@box2");
  ASSERT_EQ(remote.size(), 6u) << ::testing::PrintToString(remote);
  auto any = [&](const std::string& text) {
    return std::any_of(remote.begin(), remote.end(),
                       [&](const std::string& w) { return w.find(text) != std::string::npos; });
  };
  EXPECT_TRUE(any("bind mount of ./src will not exist on the remote docker host ssh://ci@box2"));
  EXPECT_TRUE(any("the build context is sent from here"));
  EXPECT_FALSE(any("data"));  // a named volume is fine anywhere
  // Several hosts: the isolation warnings once; the remote ones for each remote host, by name.
  auto hosts = docker::lint_compose(
      {d.file("dc.yml")}, std::vector<docker::LintHost>{{"here", "unix:///var/run/docker.sock"},
                                                        {"box2", "ssh://ci@box2"},
                                                        {"box3", "tcp://10.0.0.3:2376"},
                                                        {"loop", "tcp://127.0.0.1:2375"}});
  ASSERT_EQ(hosts.size(), 8u) << ::testing::PrintToString(hosts);
  auto count = [&](const std::string& text) {
    return std::count_if(hosts.begin(), hosts.end(),
                         [&](const std::string& w) { return w.find(text) != std::string::npos; });
  };
  EXPECT_EQ(count("container_name 'web_fixed'"), 1);
  EXPECT_EQ(
      count("bind mount of ./src will not exist on the remote docker host box2 (ssh://ci@box2)"),
      1);
  EXPECT_EQ(count("bind mount of ./src will not exist on the remote docker host box3 "
                  "(tcp://10.0.0.3:2376)"),
            1);
  EXPECT_EQ(count("loop"), 0) << "the loopback is this machine";
  EXPECT_TRUE(docker::is_remote("ssh://ci@box2"));
  EXPECT_TRUE(docker::is_remote("tcp://box2:2375"));
  EXPECT_FALSE(docker::is_remote("tcp://localhost:2375"));
  EXPECT_FALSE(docker::is_remote("ssh://me@127.0.0.1"));
  EXPECT_FALSE(docker::is_remote("unix:///var/run/docker.sock"));
  d.write("bad.yml", "services: [\n");
  EXPECT_NE(docker::lint_compose({d.file("bad.yml")}, "")[0].find("cannot read the compose file"),
            std::string::npos);
}

// `$$` is compose's literal `$`: a name with only escaped dollars is fixed too.
TEST(ComposeLint, EscapedDollarsAreNotVariables) {
  test::TempDir d;
  d.write("dc.yml", "services:\n  a:\n    container_name: $$literal\n  b:\n    container_name: fixed_$${X}\n"
                    "  c:\n    container_name: ${PROJECT_NAME}_c\n  e:\n    container_name: $$$${PROJECT_NAME}\n"
                    "  f:\n    container_name: $$${PROJECT_NAME}\n  g:\n    ports: [\"$${P}:80\"]\n");
  auto warnings = docker::lint_compose({d.file("dc.yml")}, "");
  ASSERT_EQ(warnings.size(), 4u) << ::testing::PrintToString(warnings);
  EXPECT_NE(warnings[0].find("service a: container_name '$$literal' is fixed"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[1].find("service b: container_name 'fixed_$${X}' is fixed"), std::string::npos) << warnings[1];
  EXPECT_NE(warnings[2].find("service e: container_name"), std::string::npos) << warnings[2];
  EXPECT_NE(warnings[3].find("service g: host port $${P}"), std::string::npos) << warnings[3];
}

// Bounded like a pipeline file: a 9 MiB compose file is not parsed (it took 1.6 GB).
TEST(ComposeLint, AHugeComposeFileIsNotRead) {
  test::TempDir d;
  d.write("dc.yml", "services:\n  web:\n    container_name: fixed\n" + std::string(9u << 20, '#') + "\n");
  auto warnings = docker::lint_compose({d.file("dc.yml")}, "");
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("dc.yml:1:1: warning: the compose file has more than 8 MiB: not checked"), std::string::npos)
      << warnings[0];
}

TEST(ComposeLint, FollowsYamlMergeKeys) {
  // A fixed name or port that a service gets through `<<:` (one map, a list of maps, a
  // merge of a merge) is as fixed as its own; its own key wins over a merged one.
  test::TempDir d;
  d.write("dc.yml", R"(x-named: &named
  container_name: shop_web
x-ported: &ported
  ports: ["8080:80"]
x-both: &both
  <<: [*named, *ported]
x-loop: &loop
  <<: *loop
services:
  web:
    <<: *named
    image: shop
  api:
    <<: [*ported]
  worker:
    <<: *both
  own:
    <<: *named
    container_name: ${PROJECT_NAME}_own
  odd:
    <<: *loop
)");
  auto warnings = docker::lint_compose({d.file("dc.yml")}, "");
  auto count = [&](const std::string& text) {
    return std::count_if(warnings.begin(), warnings.end(),
                         [&](const std::string& w) { return w.find(text) != std::string::npos; });
  };
  EXPECT_EQ(count("service web: container_name 'shop_web' is fixed"), 1) << ::testing::PrintToString(warnings);
  EXPECT_EQ(count("service api: host port 8080 is fixed"), 1);
  EXPECT_EQ(count("service worker: container_name 'shop_web'"), 1);
  EXPECT_EQ(count("service worker: host port 8080"), 1);
  EXPECT_EQ(count("service own:"), 0) << "its own container_name wins";
  EXPECT_EQ(count("service odd:"), 0);
  EXPECT_EQ(warnings.size(), 4u) << ::testing::PrintToString(warnings);
  // The warning points at where the fixed value is written: the anchored map.
  EXPECT_EQ(count(d.file("dc.yml") + ":2:19: warning: service web"), 1);
}

#include <pcr/docker/helpers.hpp>

TEST(DockerHelpers, EveryValueIsQuoted) {
  EXPECT_EQ(docker::docker_build("ctx dir", "shop", "ci", "Dockerfile.ci", {{"GREETING", "hello world"}}),
            "docker build -t shop:ci -f Dockerfile.ci --build-arg 'GREETING=hello world' 'ctx dir'");
  pipeline::JobContext ctx{3, 1, 1, {}, "r1", "s", {}, {}, {}};
  EXPECT_EQ(docker::docker_exec("shop_web_", {"rspec", "spec/a b_spec.rb", "$HOME"})(ctx),
            "docker exec shop_web_3 rspec 'spec/a b_spec.rb' '$HOME'");
  docker::Compose compose({"/x/dc.yml"}, "shop");
  std::string exec = compose.exec("web", {"echo", "it's"})(ctx);
  EXPECT_NE(exec.find(".pcr/exec.sh '"), std::string::npos) << exec;  // stops inside the container too
  EXPECT_NE(exec.find("-f /x/dc.yml -p shop-r1-3' web - echo 'it'\\''s'"), std::string::npos) << exec;
  EXPECT_NE(compose.down()(ctx).find("-p shop-r1-3 down -v --remove-orphans"), std::string::npos);
  auto groups = docker::split_into_groups({"d", "a", "c", "b", "e"}, 2);
  EXPECT_EQ(groups, (std::vector<std::vector<std::string>>{{"a", "c", "e"}, {"b", "d"}}));
}

// The plan's teardown: one job per project the run will hand out, each taking down its
// own project, however many (names sort "-10" before "-2"), and a plan writes nothing.
TEST(Compose, PlannedTeardownTakesDownEveryProjectAndWritesNothing) {
  test::TempDir d;
  d.write("dc.yml", "services: {}\n");
  d.write("ci.yaml", "name: shop\ncompose:\n  file: dc.yml\nsteps:\n  - parallel: 12\n    run: \"{exec web} true\"\n");
  auto p = config::load_file(d.file("ci.yaml"));
  const auto plan = pipeline::plan(p, {});
  ASSERT_EQ(plan.size(), 2u);
  const auto& down = plan[1];
  EXPECT_EQ(down.name, "compose teardown");
  EXPECT_EQ(down.workers, 12u);
  ASSERT_EQ(down.jobs.size(), 12u);
  std::set<std::string> projects;
  for (const auto& job : down.jobs) {
    ASSERT_EQ(job.items.size(), 1u);
    EXPECT_NE(job.command.find("-p '\\''" + job.items[0] + "'\\''"), std::string::npos) << job.command;
    projects.insert(job.items[0]);
  }
  EXPECT_EQ(projects.size(), 12u);
  EXPECT_FALSE(test::exists(d.file(".pcr")));  // no record, no script
}

// `compose: reset:` is a command like a step's: its placeholders and service names are
// checked at load, at its place.
TEST(Compose, ResetIsCheckedAsACommand) {
  test::TempDir d;
  d.write("dc.yml", "services:\n  db: {image: y}\n");
  d.write("ci.yaml", "compose:\n  file: dc.yml\n  reset: \"{exec bd} psql\"\nsteps:\n  - run: \"true\"\n");
  try {
    config::load_file(d.file("ci.yaml"));
    FAIL();
  } catch (const config::LoadError& e) {
    EXPECT_EQ(e.diagnostics()[0].line, 3);
    EXPECT_NE(e.diagnostics()[0].message.find("no service 'bd' (did you mean 'db'?)"), std::string::npos)
        << e.diagnostics()[0].message;
  }
  d.write("ci.yaml", "compose:\n  file: dc.yml\n  reset: \"{exec db} psql -c 'truncate t'\"\nsteps:\n  - run: \"true\"\n");
  EXPECT_NO_THROW(config::load_file(d.file("ci.yaml")));
}
