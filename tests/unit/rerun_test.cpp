#include "../support/support.hpp"
#include <pcr/pipeline/rerun.hpp>

#include <gtest/gtest.h>

using namespace pcr::pipeline;

TEST(LastRun, RoundTripsAndRefusesWhatPcrDidNotWrite) {
  pcr::test::TempDir d;
  const std::string path = last_run_path(d.path(), "ci.yaml", 1, 3);
  EXPECT_NE(path.find(".pcr/last-run/ci.yaml.shard-2-of-3.json"), std::string::npos) << path;
  LastRun run;
  run.steps["tests"] = {false, true, {"b", "d"}};
  run.steps["up"] = {true, false, {}};
  ASSERT_EQ(save_last_run(path, run), "");
  auto back = load_last_run(path);
  ASSERT_TRUE(back) << back.error();
  EXPECT_FALSE(back->passed);
  EXPECT_EQ(back->steps.at("tests").not_passed, (std::set<std::string>{"b", "d"}));
  EXPECT_TRUE(back->steps.at("up").passed);
  d.write("broken.json", "{\"passed\": tru");
  EXPECT_FALSE(load_last_run(d.file("broken.json")));
  d.write("other.json", "{\"passed\": true, \"steps\": {\"x\": {\"passed\": 1}}}");
  EXPECT_FALSE(load_last_run(d.file("other.json")));
  EXPECT_FALSE(load_last_run(d.file("missing.json")));
  // A key with a slash stays one file name.
  EXPECT_EQ(last_run_path("/p", "a/b", 0, 0), "/p/.pcr/last-run/a_b.json");
}

TEST(LastRun, RerunItemsAreWhatDidNotPassOrAllOfAStepThatNeverRan) {
  LastRun run;
  run.steps["tests"] = {false, true, {"b", "d", "gone"}};
  run.steps["lint"] = {true, true, {}};
  const std::vector<std::string> items = {"a", "b", "c", "d"};
  EXPECT_EQ(rerun_items(run, "tests", items), (std::vector<std::string>{"b", "d"}));
  EXPECT_TRUE(rerun_items(run, "lint", items).empty());
  EXPECT_EQ(rerun_items(run, "never-ran", items), items);
}

TEST(LastRun, OnlyItemsMatchShellGlobsAcrossSlashes) {
  const std::vector<std::string> items = {"tests/cart_test.sh", "tests/payments_test.sh", "tests/users_test.sh"};
  EXPECT_EQ(only_items({"*payments*"}, items), (std::vector<std::string>{"tests/payments_test.sh"}));
  EXPECT_EQ(only_items({"tests/[cu]*", "nothing"}, items),
            (std::vector<std::string>{"tests/cart_test.sh", "tests/users_test.sh"}));
  EXPECT_TRUE(only_items({"cart"}, items).empty()) << "a pattern matches whole items";
}
