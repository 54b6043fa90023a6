// The layout of a step's jobs and the placement of workers on hosts: pure code, tested
// without a process (the run and `pcr check` both use it).

#include <pcr/pipeline/builder.hpp>
#include <pcr/pipeline/host_pool.hpp>
#include <pcr/pipeline/layout.hpp>

#include "../support/support.hpp"

#include <gtest/gtest.h>

#include <fstream>

using namespace pcr::pipeline;

namespace {

Command echo() {
  return [](const JobContext&) { return std::string("true"); };
}

std::vector<std::string> items_of(const Layout& l) {
  std::vector<std::string> out;
  for (std::size_t i : l.order) out.push_back(job_name(l.jobs[i]));
  return out;
}

Host host(const std::string& name, unsigned workers) {
  Host h;
  h.name = name;
  h.workers = workers;
  return h;
}

}  // namespace

TEST(Layout, ForEachHasNoMoreWorkersThanJobs) {
  Step s = for_each_step("t", {"a", "b", "c"}, echo(), 8);
  Layout l = lay_out(s, s.for_each.list, {}, {});
  EXPECT_EQ(l.jobs.size(), 3u);
  EXPECT_EQ(l.workers, 3u);
  EXPECT_EQ(items_of(l), (std::vector<std::string>{"a", "b", "c"}));
}

TEST(Layout, APoolWithoutWorkersTakesTheCapacityItIsGiven) {
  Step s = for_each_step("t", {"a", "b", "c", "d", "e", "f"}, echo());
  LayoutInput in;
  in.pool = 5;
  EXPECT_EQ(lay_out(s, s.for_each.list, {}, in).workers, 5u);
}

TEST(Layout, BatchesAndSeparateItems) {
  Step s = for_each_step("t", {"a", "b", "c", "d", "e"}, echo(), 2);
  s.batch = 2;
  s.separate = {"c"};
  Layout l = lay_out(s, s.for_each.list, {}, {});
  EXPECT_EQ(items_of(l), (std::vector<std::string>{"c", "a b", "d e"}));
}

TEST(Layout, RecordedTimingsPutTheLongestFirstAndBalanceGroups) {
  pcr::test::TempDir dir;
  const std::string path = dir.file("layout-timings.json");
  std::ofstream(path) << R"({"version": 1, "unit": "ms", "steps": {"t": {"short": 10, "long": 1000, "mid": 500, "mid2": 490}}})";
  std::string warning;
  const auto t = pcr::sched::Timings::load(path, "ci.yaml", &warning);
  ASSERT_EQ(warning, "");
  Step s = for_each_step("t", {"short", "mid", "long", "mid2"}, echo(), 2);
  Layout l = lay_out(s, s.for_each.list, t, {});
  EXPECT_EQ(items_of(l), (std::vector<std::string>{"long", "mid", "mid2", "short"}));
  s.groups = 2;
  Layout g = lay_out(s, s.for_each.list, t, {});
  ASSERT_EQ(g.jobs.size(), 2u);
  // long (1000) alone against mid + mid2 + short (1000): balanced.
  EXPECT_EQ(g.jobs[g.order[0]].cost + 0, 1000);
  EXPECT_EQ(g.jobs[g.order[1]].cost + 0, 1000);
}

TEST(Layout, TooManyItemsOrANulByteIsAnErrorWithNoJobs) {
  Step s = for_each_step("t", {}, echo(), 2);
  Layout l = lay_out(s, {std::string("a\0b", 3)}, {}, {});
  EXPECT_NE(l.error.find("NUL"), std::string::npos);
  EXPECT_TRUE(l.jobs.empty());
  std::vector<std::string> many(max_items + 1, "x");
  EXPECT_NE(lay_out(s, many, {}, {}).error.find("more than"), std::string::npos);
}

TEST(Layout, ShardTakesItsShareOfMainStepsOnly) {
  Step s = for_each_step("t", {"a", "b", "c", "d"}, echo(), 4);
  LayoutInput in;
  in.shard_total = 2;
  in.shard_index = 0;
  const auto first = items_of(lay_out(s, s.for_each.list, {}, in));
  in.shard_index = 1;
  const auto second = items_of(lay_out(s, s.for_each.list, {}, in));
  EXPECT_EQ(first.size() + second.size(), 4u);
  for (const auto& i : first) EXPECT_EQ(std::count(second.begin(), second.end(), i), 0);
  in.cleanup = true;
  EXPECT_EQ(lay_out(s, s.for_each.list, {}, in).jobs.size(), 4u);
}

TEST(Layout, PinnedFormsKeepTheirWorkers) {
  EXPECT_TRUE(pinned(parallel_step("p", 3, echo())));
  EXPECT_TRUE(pinned(commands_step("c", {echo(), echo()})));
  EXPECT_FALSE(pinned(run_step("r", echo())));
  EXPECT_FALSE(pinned(for_each_step("f", {"a"}, echo())));
  Step per_host = run_step("r", echo());
  per_host.per_host = true;
  LayoutInput in;
  in.hosts = 3;
  Layout l = lay_out(per_host, {}, {}, in);
  EXPECT_EQ(l.jobs.size(), 3u);
  EXPECT_EQ(l.workers, 3u);
}

TEST(HostPool, WorkersInterleaveByCapacity) {
  const std::vector<Host> hosts = {host("a", 2), host("b", 1)};
  EXPECT_EQ(HostPool::placement(hosts, 6), (std::vector<std::size_t>{0, 0, 1, 0, 0, 1}));
  const std::vector<Host> equal = {host("a", 2), host("b", 2)};
  EXPECT_EQ(HostPool::placement(equal, 4), (std::vector<std::size_t>{0, 1, 0, 1}));
}

TEST(HostPool, ADownHostGetsNoNewWorkerAndItsSlotsMove) {
  const std::vector<Host> hosts = {host("a", 1), host("b", 1), host("c", 1)};
  HostPool pool(hosts);
  EXPECT_EQ(pool.slot_host(1), 0u);
  EXPECT_EQ(pool.slot_host(2), 1u);
  EXPECT_EQ(pool.capacity_up(), 3u);
  pool.set_down(1, "connection refused");
  EXPECT_FALSE(pool.up(1));
  EXPECT_EQ(pool.up_count(), 2u);
  EXPECT_EQ(pool.capacity_up(), 2u);
  EXPECT_EQ(pool.lost(1), "host b stopped answering (connection refused)");
  EXPECT_EQ(pool.slot_host(3), 2u);  // new slots skip the down host
  EXPECT_EQ(pool.move(1), std::nullopt);  // its host answers: it stays
  auto moved = pool.move(2);
  ASSERT_TRUE(moved.has_value());
  EXPECT_NE(*moved, 1u);
  EXPECT_EQ(pool.slot_host(2), *moved);
}

TEST(HostPool, WhenNoHostAnswersSlotsStayWhereTheyAre) {
  const std::vector<Host> hosts = {host("a", 1), host("b", 1)};
  HostPool pool(hosts);
  pool.slot_host(2);
  pool.set_down(0, "x");
  pool.set_down(1, "y");
  EXPECT_EQ(pool.move(1), std::nullopt);
  EXPECT_EQ(pool.move(2), std::nullopt);
  EXPECT_EQ(pool.up_count(), 0u);
}
