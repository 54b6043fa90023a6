#pragma once

#include <optional>
#include <string>
#include <vector>

#include <pcr/sched/timings.hpp>

namespace pcr::cli {

// Which shard this machine is, from the flags or the CI system's variables.
struct Shard {
  std::size_t index = 0;  // 0-based
  std::size_t total = 0;
};

// Read the shard from the environment, first found: CI_NODE_INDEX/CI_NODE_TOTAL (GitLab,
// 1-based), CIRCLE_NODE_INDEX/CIRCLE_NODE_TOTAL (0-based),
// BUILDKITE_PARALLEL_JOB/BUILDKITE_PARALLEL_JOB_COUNT (0-based). Empty when none is set;
// `error` says what is wrong with a set but bad pair.
std::optional<Shard> shard_from_env(std::string& error);

// The items of shard `index` (0-based) of `total`: the items split by recorded timings
// (`step` empty: any step's) exactly as `groups` would split them, listed in input order.
// The same inputs give the same answer on every machine.
std::vector<std::string> shard_items(const std::vector<std::string>& items, const sched::Timings& timings,
                                     const std::string& step, std::size_t index, std::size_t total);

}  // namespace pcr::cli
