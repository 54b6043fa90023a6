#pragma once

#include <pcr/sched/timings.hpp>
#include <pcr/util/expected.hpp>

#include <optional>
#include <string>
#include <vector>

namespace pcr::cli {

// Which shard this machine is, from the flags or the CI system's variables.
struct Shard {
  std::size_t index = 0;  // 0-based
  std::size_t total = 0;
};

// Read the shard from the environment, first found: CI_NODE_INDEX/CI_NODE_TOTAL (GitLab,
// 1-based), CIRCLE_NODE_INDEX/CIRCLE_NODE_TOTAL (0-based),
// BUILDKITE_PARALLEL_JOB/BUILDKITE_PARALLEL_JOB_COUNT (0-based). nullopt when none is set;
// a failure saying what is wrong with a set but bad pair.
util::Expected<std::optional<Shard>> shard_from_env();

// Parse `--shard I/N` (1-based I) or `auto` (from the environment, as above).
util::Expected<Shard> parse_shard(const std::string& text);

}  // namespace pcr::cli
