#include <fmt/format.h>

#include <cstdlib>
#include <pcr/cli/split.hpp>

namespace pcr::cli {

namespace {

bool parse_count(const char* text, std::size_t& out) {
  if (text == nullptr || *text == '\0') return false;
  char* end = nullptr;
  long long v = std::strtoll(text, &end, 10);
  if (*end != '\0' || v < 0) return false;
  out = static_cast<std::size_t>(v);
  return true;
}

}  // namespace

std::optional<Shard> shard_from_env(std::string& error) {
  struct Source {
    const char* index;
    const char* total;
    std::size_t base;
  };
  for (const Source& s : {Source{"CI_NODE_INDEX", "CI_NODE_TOTAL", 1}, Source{"CIRCLE_NODE_INDEX", "CIRCLE_NODE_TOTAL", 0},
                          Source{"BUILDKITE_PARALLEL_JOB", "BUILDKITE_PARALLEL_JOB_COUNT", 0}}) {
    const char* index = std::getenv(s.index);
    const char* total = std::getenv(s.total);
    if (!index && !total) continue;
    Shard shard;
    std::size_t raw = 0;
    if (!parse_count(total, shard.total) || shard.total == 0 || !parse_count(index, raw) || raw < s.base ||
        raw - s.base >= shard.total) {
      error = fmt::format("{}={} and {}={} do not name a shard ({}-based index below the total)", s.index,
                          index ? index : "", s.total, total ? total : "", s.base);
      return std::nullopt;
    }
    shard.index = raw - s.base;
    return shard;
  }
  return std::nullopt;
}

std::vector<std::string> shard_items(const std::vector<std::string>& items, const sched::Timings& timings,
                                     const std::string& step, std::size_t index, std::size_t total) {
  auto costs = sched::estimate(timings, step, items);
  auto groups = sched::balance(costs, items, total);
  std::vector<std::string> out;
  if (index < groups.size())
    for (std::size_t i : groups[index]) out.push_back(items[i]);
  return out;
}

}  // namespace pcr::cli
