#include "../support/support.hpp"
#include <pcr/cli/split.hpp>
#include <pcr/sched/timings.hpp>

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <set>

using namespace pcr;
using namespace pcr::sched;
using pcr::test::TempDir;

TEST(Timings, SaveSmoothsIntoTheFileAndLoadReadsItBack) {
  TempDir d;
  std::string path = d.file(".pcr/timings.json");
  Timings first;
  first.record("specs", "a", 1000);
  first.record("specs", "b", 200);
  ASSERT_EQ(first.save(path), "");
  Timings second;
  second.record("specs", "a", 3000);
  ASSERT_EQ(second.save(path), "");
  std::string warning;
  Timings loaded = Timings::load(path, "ci.yaml", &warning);
  EXPECT_EQ(warning, "");
  EXPECT_EQ(loaded.get("specs", "a"), 2000);  // (1000 + 3000) / 2
  EXPECT_EQ(loaded.get("specs", "b"), 200);   // untouched by the second run
  EXPECT_FALSE(loaded.get("specs", "c"));
  // No temporary file is left beside the record: only it and its lock.
  std::vector<std::string> left;
  for (const auto& e : std::filesystem::directory_iterator(d.file(".pcr"))) left.push_back(e.path().filename().string());
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"timings.json", "timings.json.lock"}));
}

// A run whose times, smoothed into its pipeline's table as loaded, change nothing leaves
// the file alone: not replaced, not even locked. One that changes a time saves it.
TEST(Timings, ASaveThatChangesNothingTouchesNothing) {
  TempDir d;
  const std::string path = d.file("t.json");
  Timings first = Timings::load(path, "ci.yaml", nullptr);
  first.record("s", "a", 10);
  ASSERT_EQ(first.save(path), "");
  ASSERT_EQ(::unlink((path + ".lock").c_str()), 0);
  struct stat before {};
  ASSERT_EQ(::stat(path.c_str(), &before), 0);

  Timings same = Timings::load(path, "ci.yaml", nullptr);
  same.record("s", "a", 10);
  ASSERT_EQ(same.save(path), "");
  struct stat after {};
  ASSERT_EQ(::stat(path.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino) << "replaced";
  EXPECT_FALSE(test::exists(path + ".lock")) << "locked";

  Timings changed = Timings::load(path, "ci.yaml", nullptr);
  changed.record("s", "a", 30);
  ASSERT_EQ(changed.save(path), "");
  EXPECT_EQ(Timings::load(path, "ci.yaml", nullptr).get("s", "a"), 20);
}

// A key that is not UTF-8 (an item from a command's output) is stored as valid UTF-8 and
// found again by the next run's same key; the save used to fail on it (a JSON error).
TEST(Timings, KeysThatAreNotUtf8AreKeptAndFoundAgain) {
  TempDir d;
  const std::string path = d.file("t.json");
  Timings t = Timings::load(path, "ci.yaml", nullptr);
  t.record("st\xfe", "a\xff" "b", 700);
  ASSERT_EQ(t.save(path), "");
  Timings again = Timings::load(path, "ci.yaml", nullptr);
  EXPECT_EQ(again.get("st\xfe", "a\xff" "b"), 700);
  Timings::Pipelines read;
  ASSERT_TRUE(Timings::parse(test::read_file(path), read));
}

TEST(Timings, TheFileIsOneEntryPerLineKeysSorted) {
  Timings::Pipelines p;
  p["ci.yaml"]["tests"]["b \"q\""] = 20;
  p["ci.yaml"]["tests"]["a"] = 10;
  p["ci.yaml"]["empty"];
  p["other.yaml"];
  EXPECT_EQ(Timings::to_json(p),
            "{\n \"version\": 2,\n \"unit\": \"ms\",\n \"pipelines\": {\n"
            "  \"ci.yaml\": {\n   \"empty\": {},\n   \"tests\": {\n    \"a\": 10,\n"
            "    \"b \\\"q\\\"\": 20\n   }\n  },\n  \"other.yaml\": {}\n }\n}\n");
  Timings::Pipelines back;
  ASSERT_TRUE(Timings::parse(Timings::to_json(p), back));
  EXPECT_EQ(back["ci.yaml"]["tests"], p["ci.yaml"]["tests"]);
}

TEST(Timings, DamagedFileIsReportedAndIgnored) {
  TempDir d;
  for (const char* garbage : {"{not json", "[1,2]", "{\"steps\": {\"s\": {\"a\": \"slow\"}}}", ""}) {
    d.write("t.json", garbage);
    std::string warning;
    Timings t = Timings::load(d.file("t.json"), "ci.yaml", &warning);
    EXPECT_TRUE(t.empty());
    EXPECT_NE(warning.find("damaged timings file"), std::string::npos) << garbage;
  }
  std::string warning;
  EXPECT_TRUE(Timings::load(d.file("missing.json"), "ci.yaml", &warning).empty());
  EXPECT_EQ(warning, "");
}

TEST(Timings, ConcurrentSaversLoseNothing) {
  TempDir d;
  std::string path = d.file("timings.json");
  const int writers = 8, keys = 50;
  std::vector<pid_t> pids;
  for (int w = 0; w < writers; ++w) {
    pid_t pid = ::fork();
    if (pid == 0) {
      for (int round = 0; round < 5; ++round) {
        Timings t;
        for (int k = 0; k < keys; ++k) t.record("s", "w" + std::to_string(w) + "k" + std::to_string(k), 100);
        if (!t.save(path).empty()) _exit(1);
      }
      _exit(0);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::string warning;
  Timings t = Timings::load(path, "ci.yaml", &warning);
  EXPECT_EQ(warning, "");
  ASSERT_EQ(t.table().count("s"), 1u);
  EXPECT_EQ(t.table().at("s").size(), static_cast<size_t>(writers * keys));
}

TEST(Estimate, UnknownKeysGetTheMedianOfKnownOnes) {
  Timings t;
  TempDir d;
  Timings rec;
  rec.record("s", "a", 100);
  rec.record("s", "b", 300);
  rec.record("s", "c", 900);
  ASSERT_EQ(rec.save(d.file("t.json")), "");
  t = Timings::load(d.file("t.json"), "ci.yaml", nullptr);
  bool known = false;
  // The median of the known keys among those asked about: (100 + 900) / 2.
  EXPECT_EQ(estimate(t, "s", {"a", "new", "c"}, &known), (std::vector<std::int64_t>{100, 500, 900}));
  EXPECT_EQ(estimate(t, "s", {"a", "b", "c", "new"})[3], 300);
  EXPECT_TRUE(known);
  EXPECT_EQ(estimate(t, "other", {"a", "b"}, &known), (std::vector<std::int64_t>{1, 1}));
  EXPECT_FALSE(known);
  EXPECT_EQ(estimate(t, "", {"a", "zz"}), (std::vector<std::int64_t>{100, 100}));  // any step
}

TEST(LongestFirst, TiesBreakByNameThenIndex) {
  EXPECT_EQ(longest_first({5, 9, 5, 1}, {"b", "x", "a", "c"}), (std::vector<size_t>{1, 2, 0, 3}));
  EXPECT_EQ(longest_first({1, 1, 1}, {"", "", ""}), (std::vector<size_t>{0, 1, 2}));
}

TEST(Balance, GreedyIntoTheLightestGroup) {
  // Greedy: 8→A, 7→B, 6→B (13), 5→A (13), 4→A (17): the bound is 17.
  auto groups = balance({8, 7, 6, 5, 4}, {"a", "b", "c", "d", "e"}, 2);
  ASSERT_EQ(groups.size(), 2u);
  std::int64_t costs[] = {8, 7, 6, 5, 4};
  std::int64_t load[2] = {0, 0};
  for (int g = 0; g < 2; ++g)
    for (size_t i : groups[g]) load[g] += costs[i];
  EXPECT_EQ(load[0] + load[1], 30);
  EXPECT_LE(std::max(load[0], load[1]), 17);
  // Equal costs: round-robin in name order; each group lists indices ascending.
  auto rr = balance({1, 1, 1, 1, 1}, {"e", "d", "c", "b", "a"}, 2);
  EXPECT_EQ(rr[0], (std::vector<size_t>{0, 2, 4}));  // a, c, e
  EXPECT_EQ(rr[1], (std::vector<size_t>{1, 3}));     // b, d
  EXPECT_EQ(balance({1}, {"x"}, 3).size(), 1u);  // the two empty groups are not made
  // A shard count from a CI variable may be absurd: no memory per shard.
  EXPECT_EQ(balance({1, 2}, {"x", "y"}, std::size_t{1} << 62).size(), 2u);
}

TEST(Split, ShardsPartitionTheItemsExactlyAndDeterministically) {
  Timings none;
  std::vector<std::string> items;
  for (int i = 0; i < 23; ++i) items.push_back("spec/" + std::to_string(i) + "_spec.rb");
  std::vector<std::string> shuffled(items.rbegin(), items.rend());
  for (size_t total : {1u, 2u, 3u, 7u, 30u}) {
    std::multiset<std::string> seen;
    for (size_t index = 0; index < total; ++index) {
      auto shard = sched::shard_items(items, none, "", index, total);
      auto again = sched::shard_items(shuffled, none, "", index, total);
      EXPECT_EQ(std::set<std::string>(shard.begin(), shard.end()), std::set<std::string>(again.begin(), again.end()))
          << "input order changed the split";
      seen.insert(shard.begin(), shard.end());
    }
    EXPECT_EQ(seen, std::multiset<std::string>(items.begin(), items.end())) << total;
  }
}

TEST(Split, ShardFromTheCiSystemsVariables) {
  ::setenv("CI_NODE_INDEX", "2", 1), ::setenv("CI_NODE_TOTAL", "3", 1);
  auto gitlab = cli::shard_from_env();
  ASSERT_TRUE(gitlab && *gitlab);
  EXPECT_EQ((*gitlab)->index, 1u);  // 1-based
  EXPECT_EQ((*gitlab)->total, 3u);
  ::unsetenv("CI_NODE_INDEX"), ::unsetenv("CI_NODE_TOTAL");
  ::setenv("CIRCLE_NODE_INDEX", "0", 1), ::setenv("CIRCLE_NODE_TOTAL", "4", 1);
  auto circle = cli::shard_from_env();
  ASSERT_TRUE(circle && *circle);
  EXPECT_EQ((*circle)->index, 0u);  // 0-based
  ::unsetenv("CIRCLE_NODE_INDEX"), ::unsetenv("CIRCLE_NODE_TOTAL");
  ::setenv("BUILDKITE_PARALLEL_JOB", "5", 1), ::setenv("BUILDKITE_PARALLEL_JOB_COUNT", "5", 1);
  auto bad = cli::shard_from_env();
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("BUILDKITE_PARALLEL_JOB=5"), std::string::npos);
  ::unsetenv("BUILDKITE_PARALLEL_JOB"), ::unsetenv("BUILDKITE_PARALLEL_JOB_COUNT");
  auto none = cli::shard_from_env();
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  EXPECT_FALSE(cli::parse_shard("auto"));
  EXPECT_FALSE(cli::parse_shard("3/2"));
  auto two = cli::parse_shard("2/4");
  ASSERT_TRUE(two);
  EXPECT_EQ(two->index, 1u);
}

// Shards start from one file and each changes the entries of the items it ran.
TEST(Timings, CombineShardsKeepsEachShardsChanges) {
  Timings::Table base = {{"t", {{"a", 100}, {"b", 200}, {"c", 300}}}};
  Timings::Table one = base, two = base;
  one["t"]["a"] = 500;   // shard 1 ran a
  two["t"]["b"] = 1000;  // shard 2 ran b
  two["t"]["d"] = 40;    // and a new item
  one["u"]["x"] = 10, two["u"]["x"] = 30;  // a new step both ran
  combine_shards(base, {one, two});
  EXPECT_EQ(base["t"]["a"], 500) << "one shard's change is not averaged away by the others' old value";
  EXPECT_EQ(base["t"]["b"], 1000);
  EXPECT_EQ(base["t"]["c"], 300);
  EXPECT_EQ(base["t"]["d"], 40);
  EXPECT_EQ(base["u"]["x"], 20);
}

// Two pipeline files in one folder share a timings file, not their entries.
TEST(Timings, EachPipelineKeepsItsOwnEntries) {
  TempDir d;
  const std::string path = d.file("t.json");
  Timings a = Timings::load(path, "a.yaml", nullptr);
  a.record("tests", "x", 900);
  ASSERT_EQ(a.save(path), "");
  Timings b = Timings::load(path, "b.yaml", nullptr);
  EXPECT_TRUE(b.empty()) << "b.yaml sees nothing of a.yaml's";
  b.record("tests", "x", 100);
  ASSERT_EQ(b.save(path), "");
  EXPECT_EQ(Timings::load(path, "a.yaml", nullptr).get("tests", "x"), 900) << "not averaged with b.yaml's";
  EXPECT_EQ(Timings::load(path, "b.yaml", nullptr).get("tests", "x"), 100);
  // Tools that know no pipeline (pcr split) see the largest of each key.
  EXPECT_EQ(Timings::load_any(path, nullptr).get("tests", "x"), 900);
}

// A file of the first version (steps only) is read by the first pipeline that finds no
// entries of its own, and its save takes them over.
TEST(Timings, OldFileIsReadAndMigrated) {
  TempDir d;
  const std::string path = d.file("t.json");
  d.write("t.json", R"({"version": 1, "unit": "ms", "steps": {"tests": {"x": 400, "y": 40}}})");
  Timings a = Timings::load(path, "a.yaml", nullptr);
  EXPECT_EQ(a.get("tests", "x"), 400);
  a.record("tests", "x", 600);
  ASSERT_EQ(a.save(path), "");
  Timings::Pipelines file;
  ASSERT_TRUE(Timings::parse(test::read_file(path), file));
  EXPECT_EQ(file.count(""), 0u) << test::read_file(path);
  EXPECT_EQ(file["a.yaml"]["tests"]["x"], 500);  // smoothed with the old value
  EXPECT_EQ(file["a.yaml"]["tests"]["y"], 40);   // kept
  EXPECT_NE(test::read_file(path).find("\"version\": 2"), std::string::npos);
  EXPECT_TRUE(Timings::load(path, "b.yaml", nullptr).empty()) << "taken over by a.yaml";
}

TEST(Timings, CombineShardsCombinesEachPipelineApart) {
  Timings::Pipelines base = {{"a.yaml", {{"t", {{"x", 100}}}}}, {"b.yaml", {{"t", {{"x", 100}}}}}};
  Timings::Pipelines one = base, two = base;
  one["a.yaml"]["t"]["x"] = 300;
  two["b.yaml"]["t"]["x"] = 700;
  combine_shards(base, {one, two});
  EXPECT_EQ(base["a.yaml"]["t"]["x"], 300);
  EXPECT_EQ(base["b.yaml"]["t"]["x"], 700);
}
