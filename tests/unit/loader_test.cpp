#include "../support/support.hpp"
#include <pcr/config/loader.hpp>
#include <pcr/pipeline/engine.hpp>

#include <gtest/gtest.h>

#include <algorithm>

using namespace pcr;
using pcr::config::Diagnostic;
using pcr::config::LoadError;

namespace {

// The first diagnostic for `yaml`, or a failure when it loads.
Diagnostic first_error(const std::string& yaml) {
  try {
    config::load_string(yaml, "ci.yaml");
  } catch (const LoadError& e) {
    EXPECT_FALSE(e.diagnostics().empty());
    return e.diagnostics().front();
  }
  ADD_FAILURE() << "loaded without error:\n" << yaml;
  return {};
}

void expect_error(const std::string& yaml, int line, int column, const std::string& fragment) {
  Diagnostic d = first_error(yaml);
  EXPECT_EQ(d.file, "ci.yaml");
  EXPECT_EQ(d.line, line) << d.str();
  EXPECT_EQ(d.column, column) << d.str();
  EXPECT_NE(d.message.find(fragment), std::string::npos) << d.str();
  EXPECT_EQ(
      d.str().rfind("ci.yaml:" + std::to_string(line) + ":" + std::to_string(column) + ": ", 0),
      0u);
}

}  // namespace

TEST(Loader, EveryStepForm) {
  auto p = config::load_string(R"(
name: shop
timeout: 45m
env: {A: "1"}
defaults: {timeout: 20m, retries: 1}
steps:
  - name: one
    run: echo {n}
  - name: four
    parallel: 4
    run: echo {n}/{total}
  - commands: [make lint, make unit]
  - name: list
    run: ls
    capture: FILES
    output: hide
  - name: each
    for_each: {lines: FILES}
    batch: 2
    workers: 3
    run: wc {items}
    timeout: 90s
    idle_timeout: 10s
    kill_grace: 2s
    fail_fast: true
    expect: "ok"
    env: {B: x}
    workdir: sub
  - name: globbed
    for_each: {glob: "*.cpp"}
    run: echo {items}
  - for_each: [a, b]
    run: echo {items}
  - for_each: {command: "seq 3"}
    run: echo {items}
cleanup:
  - parallel: 2
    run: echo down {n}
)",
                               "dir/ci.yaml");
  ASSERT_EQ(p.steps.size(), 8u);
  EXPECT_EQ(p.name, "shop");
  EXPECT_EQ(p.timeout->count(), 45 * 60'000);
  EXPECT_EQ(p.steps[0].form, pipeline::Form::run);
  EXPECT_EQ(p.steps[0].options.timeout->count(), 20 * 60'000);  // from defaults
  EXPECT_EQ(p.steps[1].form, pipeline::Form::parallel);
  EXPECT_EQ(p.steps[1].parallel, 4u);
  EXPECT_EQ(p.steps[2].form, pipeline::Form::commands);
  EXPECT_EQ(p.steps[2].commands.size(), 2u);
  EXPECT_EQ(p.steps[3].options.capture, "FILES");
  EXPECT_EQ(p.steps[3].options.output, pipeline::OutputMode::hide);
  const auto& each = p.steps[4];
  EXPECT_EQ(each.form, pipeline::Form::for_each);
  EXPECT_EQ(each.for_each.source, pipeline::ForEach::Source::lines);
  EXPECT_EQ(each.batch, 2u);
  EXPECT_EQ(each.workers, 3u);
  EXPECT_EQ(each.options.timeout->count(), 90'000);
  EXPECT_EQ(each.options.idle_timeout->count(), 10'000);
  EXPECT_EQ(each.options.kill_grace.count(), 2'000);
  EXPECT_EQ(each.options.retries, 1u);
  EXPECT_TRUE(each.options.fail_fast);
  EXPECT_EQ(each.options.workdir, "sub");
  EXPECT_EQ(p.steps[5].for_each.source, pipeline::ForEach::Source::glob);
  EXPECT_EQ(p.steps[6].for_each.list, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(p.steps[7].for_each.source, pipeline::ForEach::Source::command);
  ASSERT_EQ(p.cleanup.size(), 1u);
  EXPECT_EQ(p.cleanup[0].parallel, 2u);
  EXPECT_EQ(p.steps[2].name, "2 commands");
  EXPECT_NE(p.base_dir.find("dir"), std::string::npos);
}

TEST(Loader, PlaceholdersExpandAndItemsAreQuoted) {
  auto p = config::load_string(
      "steps:\n  - for_each: {list: [\"a b\", \"c\"]}\n    batch: 2\n    run: "
      "\"x {n} {job}/{total} {items} {run_id} {{literal}} ${HOME}\"\n",
      "ci.yaml");
  pipeline::JobContext ctx{3, 1, 1, {"a b", "c"}, "rid", "s", {}, {}, {}};
  EXPECT_EQ(p.steps[0].commands[0](ctx), "x 3 1/1 'a b' c rid {literal} ${HOME}");
}

TEST(LoaderErrors, UnknownKeyWithDidYouMean) {
  expect_error("steps:\n  - run: echo\n    timout: 3s\n", 3, 5,
               "unknown key 'timout' in a step (did you mean 'timeout'?)");
  expect_error("stepz:\n  - run: echo\n", 1, 1, "did you mean 'steps'?");
}

TEST(LoaderErrors, WrongTypes) {
  expect_error("steps:\n  - run: echo\n    parallel: many\n", 3, 15,
               "parallel: expected a whole number");
  expect_error("steps:\n  - run: [a, b]\n", 2, 10, "run: expected a string");
  expect_error("steps:\n  - run: echo\n    fail_fast: maybe\n", 3, 16, "expected true or false");
  expect_error("steps: 3\n", 1, 8, "steps: expected a list");
  expect_error("steps:\n  - run: echo\n    env: [A]\n", 3, 10, "env: expected a mapping");
}

TEST(LoaderErrors, BadDuration) {
  expect_error("steps:\n  - run: echo\n    timeout: 10 minutes\n", 3, 14,
               "bad duration '10 minutes'");
  expect_error("timeout: forever\nsteps:\n  - run: echo\n", 1, 10, "bad duration");
}

TEST(LoaderErrors, EmptyStepsAndCommands) {
  expect_error("steps:\n  - {}\n", 2, 5, "empty step");
  expect_error("steps:\n  - name: nothing\n", 2, 5, "empty step");
  expect_error("steps: []\n", 1, 8, "is empty");
  expect_error("name: x\n", 1, 1, "no `steps:`");
  expect_error("steps:\n  - run: \"  \"\n", 2, 10, "the command is empty");
  expect_error("steps:\n  - commands: []\n", 2, 15, "commands: the list is empty");
}

TEST(LoaderErrors, TwoFormsInOneStep) {
  expect_error("steps:\n  - run: a\n    commands: [b]\n", 3, 5,
               "two forms in one step: `run` and `commands`");
  expect_error("steps:\n  - run: a\n    parallel: 2\n    for_each: [x]\n", 4, 5, "two forms");
  expect_error("steps:\n  - parallel: 2\n", 2, 5, "empty step");
  expect_error("steps:\n  - run: a\n    batch: 2\n", 3, 5,
               "`batch` only applies to a `for_each` step");
}

TEST(LoaderErrors, UnknownPlaceholderPointsIntoTheCommand) {
  expect_error("steps:\n  - run: echo {nn}\n", 2, 15,
               "unknown placeholder '{nn}' (did you mean '{n}'?)");
  expect_error("steps:\n  - run: \"echo {item}\"\n", 2, 16, "did you mean '{items}'?");
  expect_error("steps:\n  - run: awk '{print $1}'\n", 2, 15, "write '{{' for a literal brace");
}

TEST(LoaderErrors, ForEachSources) {
  expect_error("steps:\n  - run: a\n    for_each: {glob: x, list: [y]}\n", 3, 25, "exactly one of");
  expect_error("steps:\n  - run: a\n    for_each: {lines: NOPE}\n", 3, 23,
               "no earlier step has `capture: NOPE`");
  // Errors come in file order: the mapping (column 15) before its unknown key (16).
  try {
    config::load_string("steps:\n  - run: a\n    for_each: {globe: x}\n", "ci.yaml");
    ADD_FAILURE() << "loaded";
  } catch (const LoadError& e) {
    EXPECT_EQ(std::string(e.what()),
              "ci.yaml:3:15: for_each: give one of glob, list, lines, command\n"
              "ci.yaml:3:16: unknown key 'globe' in for_each (did you mean 'glob'?)");
  }
}

TEST(LoaderErrors, HostsAndPerHost) {
  expect_error("hosts: []\nsteps:\n  - run: a\n", 1, 8, "hosts: the list is empty");
  expect_error("hosts:\n  - name: a\n    workers: 2\nsteps:\n  - run: a\n", 2, 5,
               "a host needs `docker:`");
  expect_error("hosts:\n  - name: a\n    docker: box2:2375\nsteps:\n  - run: a\n", 3, 13,
               "docker: 'box2:2375' is not a DOCKER_HOST value");
  expect_error(
      "hosts:\n  - name: a\n    docker: unix:///s\n  - name: a\n    docker: unix:///t\nsteps:\n  - "
      "run: a\n",
      4, 11, "two hosts are named 'a'");
  expect_error("hosts:\n  - docker: unix:///s\nsteps:\n  - run: a\n", 2, 5,
               "a host needs a `name:`");
  expect_error("hosts:\n  - name: a b\n    docker: unix:///s\nsteps:\n  - run: a\n", 2, 11,
               "host name 'a b'");
  expect_error("hosts:\n  - name: a\n    docker: unix:///s\n    workers: 0\nsteps:\n  - run: a\n",
               4, 14, "workers");
  expect_error("hosts:\n  - name: a\n    docker: unix:///s\n    capacity: 2\nsteps:\n  - run: a\n",
               4, 5, "unknown key 'capacity' in a host");
  expect_error(
      "steps:\n  - run: a\n    parallel: 2\n    per_host: true\n", 4, 5,
      "`per_host` runs one `run:` command once on every host; it does not combine with `parallel`");
  expect_error("steps:\n  - run: a\n    per_host: maybe\n", 3, 15, "per_host");
  pcr::test::TempDir d;
  d.write("dc.yml", "services: {}\n");
  try {
    config::load_string("compose: {file: " + d.file("dc.yml") +
                            "}\nsteps:\n  - run: \"{compose} build\"\n    per_host: true\n",
                        d.file("ci.yaml"));
    ADD_FAILURE() << "a per_host step with {compose} loaded";
  } catch (const LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("ci.yaml:3:10: a `per_host` job belongs to a host"),
              std::string::npos)
        << e.what();
  }
}

TEST(Loader, HostsGiveDockerHostAndCapacity) {
  auto p = config::load_string(R"(
hosts:
  - name: here
    docker: unix:///var/run/docker.sock
    workers: 2
  - name: box2
    docker: ssh://ci@box2
steps:
  - name: image
    per_host: true
    run: docker build -t shop:ci .
)",
                               "ci.yaml");
  ASSERT_EQ(p.hosts.size(), 2u);
  EXPECT_EQ(p.hosts[0].name, "here");
  EXPECT_EQ(p.hosts[0].workers, 2u);
  EXPECT_EQ(p.hosts[1].workers, 1u);
  EXPECT_EQ(p.hosts[1].env, (pipeline::Env{{"DOCKER_HOST", "ssh://ci@box2"}}));
  EXPECT_NE(p.host_probe.find("docker info"), std::string::npos);
  EXPECT_TRUE(p.steps[0].per_host);
}

TEST(LoaderErrors, YamlSyntaxAndMissingFile) {
  Diagnostic d = first_error("steps:\n  - run: [unclosed\n");
  EXPECT_GE(d.line, 2);
  try {
    config::load_file("/nonexistent/ci.yaml");
    FAIL();
  } catch (const LoadError& e) {
    EXPECT_EQ(std::string(e.what()),
              "/nonexistent/ci.yaml:1:1: cannot read the pipeline file: No such file or directory");
  }
}

TEST(LoaderErrors, ReportsEveryProblemAtOnce) {
  try {
    config::load_string("steps:\n  - run: echo {x}\n    retries: -1\n    output: loud\n",
                        "ci.yaml");
    FAIL();
  } catch (const LoadError& e) {
    EXPECT_EQ(e.diagnostics().size(), 3u);
  }
}

TEST(Plan, ExpandsEveryCommand) {
  auto p = config::load_string(
      "steps:\n  - parallel: 2\n    run: up {n}\n  - for_each: [a, b c]\n    workers: 2\n    run: "
      "t {n} {items}\n"
      "  - for_each: {command: ls}\n    run: t {items}\ncleanup:\n  - run: down\n",
      "ci.yaml");
  auto plan = pipeline::plan(p, {});
  ASSERT_EQ(plan.size(), 4u);
  EXPECT_EQ(plan[0].jobs[1].command, "up 2");
  EXPECT_EQ(plan[1].jobs[1].command, "t {n} 'b c'");
  EXPECT_TRUE(plan[2].jobs.empty());
  EXPECT_NE(plan[2].note.find("ls"), std::string::npos);
  EXPECT_TRUE(plan[3].cleanup);
}

// A secret's value may come from pcr's environment, the pipeline's `env` or `compose:
// env:`; every one of them is masked (compose's was not).
TEST(Loader, SecretValuesComeFromEveryEnvironment) {
  pcr::test::TempDir d;
  d.write("dc.yml", "services: {}\n");
  ::setenv("PCR_TEST_SECRET_FROM_ENV", "from-environment", 1);
  const auto p = config::load_string(
      "secrets: [PCR_TEST_SECRET_FROM_ENV, A, B]\nenv: {A: from-pipeline}\ncompose: {file: " +
          d.file("dc.yml") + ", env: {B: from-compose}}\nsteps:\n  - run: \"true\"\n",
      d.file("ci.yaml"));
  const auto values = config::secret_values(p);
  ::unsetenv("PCR_TEST_SECRET_FROM_ENV");
  for (const char* v : {"from-environment", "from-pipeline", "from-compose"})
    EXPECT_NE(std::find(values.begin(), values.end(), v), values.end()) << v;
}

// `compose:` given as a scalar is an error at its place, never an exception escaping the
// loader (a fuzzed file made `compose: x` throw YAML::BadSubscript on the `reset:` lookup).
TEST(Loader, ComposeThatIsNotAMappingIsAnError) {
  expect_error("compose: mma}\nsteps:\n  - run: \"true\"\n", 1, 10, "compose: expected a mapping");
}

// `queue:` takes $VAR / ${VAR} from the environment (the CI's build id) and must be a
// queue URL; an unset variable or a bad URL is an error at its place.
TEST(Loader, QueueTakesTheBuildIdFromTheEnvironment) {
  ::setenv("PCR_TEST_BUILD_ID", "4711", 1);
  auto p = config::load_string("queue: redis://ci-redis:6379/${PCR_TEST_BUILD_ID}-$PCR_TEST_BUILD_ID\nsteps:\n  - run: \"true\"\n",
                               "ci.yaml");
  EXPECT_EQ(p.queue, "redis://ci-redis:6379/4711-4711");
  ::unsetenv("PCR_TEST_BUILD_ID_UNSET");
  expect_error("queue: redis://h:6379/$PCR_TEST_BUILD_ID_UNSET\nsteps:\n  - run: \"true\"\n", 1, 8,
               "$PCR_TEST_BUILD_ID_UNSET is not set");
  expect_error("queue: http://h/b\nsteps:\n  - run: \"true\"\n", 1, 8, "a queue is redis://");
  expect_error("queue: redis://h:6379/${x\nsteps:\n  - run: \"true\"\n", 1, 8, "a '$' starts a variable");
}
