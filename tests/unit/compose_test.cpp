#include <gtest/gtest.h>
#include <unistd.h>

#include <pcr/config/loader.hpp>
#include <pcr/docker/compose.hpp>
#include <pcr/pipeline/engine.hpp>

#include "../support/support.hpp"

using namespace pcr;
using namespace pcr::docker;

TEST(Compose, CommandShapesOfBothVersions) {
  EXPECT_EQ(compose_argv(ComposeVersion::v2, {"/a/dc.yml", "/a/dc.ci.yml"}, "shop-r1-2"),
            (std::vector<std::string>{"docker", "compose", "-f", "/a/dc.yml", "-f", "/a/dc.ci.yml", "-p", "shop-r1-2"}));
  EXPECT_EQ(compose_argv(ComposeVersion::v1, {"/a/dc.yml"}, "p"),
            (std::vector<std::string>{"docker-compose", "-f", "/a/dc.yml", "-p", "p"}));
}

TEST(Compose, ProjectNamesAreValidForV1AndV2) {
  EXPECT_EQ(project_name("shop", "ab12cd34", 3), "shop-ab12cd34-3");
  EXPECT_EQ(project_name("My Shop.App", "r", 1), "my-shop-app-r-1");
  EXPECT_EQ(project_name("_x", "r", 1), "x-r-1");
  EXPECT_EQ(project_name("", "r", 2), "pcr-r-2");
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
  EXPECT_TRUE(owner_alive(*back));
  back->pid_start += 1;  // the pid now belongs to another process
  EXPECT_FALSE(owner_alive(*back));
  EXPECT_FALSE(parse_record("{broken"));
}

TEST(Compose, LoaderGivesEnvironmentAndPlaceholders) {
  test::TempDir d;
  d.write("dc.yml", "services: {}\n");
  d.write("ci.yaml",
          "name: shop\ncompose:\n  file: dc.yml\n  env: {IMAGE: shop:ci}\nsteps:\n  - parallel: 2\n    run: "
          "\"{exec web} rspec && echo {project} && {compose} ps\"\n");
  auto p = config::load_file(d.file("ci.yaml"));
  ASSERT_EQ(p.extensions.size(), 1u);
  pipeline::JobContext ctx{2, 2, 2, {}, "run9", "s", {}};
  auto env = p.extensions[0].env(ctx);
  std::map<std::string, std::string> vars(env.begin(), env.end());
  EXPECT_EQ(vars["COMPOSE_PROJECT_NAME"], "shop-run9-2");
  EXPECT_EQ(vars["PROJECT_NAME"], "shop-run9-2");
  EXPECT_EQ(vars["COMPOSE_FILE"], d.file("dc.yml"));
  EXPECT_EQ(vars["IMAGE"], "shop:ci");
  EXPECT_TRUE(test::exists(d.file(".pcr/projects/shop-run9-2.json")));  // recorded before use
  ctx.resolve = [&](const std::string& n, const std::string& a) { return p.extensions[0].placeholder(n, a, ctx); };
  std::string cmd = p.steps[0].commands[0](ctx);
  EXPECT_NE(cmd.find(" -p shop-run9-2 exec -T web rspec"), std::string::npos) << cmd;
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
}
