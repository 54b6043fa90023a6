#include <pcr/cli/split.hpp>

#include <fmt/format.h>

#include <cstdlib>

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

util::Expected<std::optional<Shard>> shard_from_env() {
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
      return util::Expected<std::optional<Shard>>::failure(
          fmt::format("{}={} and {}={} do not name a shard (the index counts from {} to {})", s.index,
                      index ? index : "", s.total, total ? total : "", s.base,
                      s.base == 0 ? "the total minus 1" : "the total"));
    }
    shard.index = raw - s.base;
    return std::optional<Shard>(shard);
  }
  return std::optional<Shard>();
}

util::Expected<Shard> parse_shard(const std::string& text) {
  if (text == "auto") {
    auto shard = shard_from_env();
    if (!shard) return util::Expected<Shard>::failure(shard.error());
    if (!*shard)
      return util::Expected<Shard>::failure(
          "auto: none of CI_NODE_INDEX/CI_NODE_TOTAL, CIRCLE_NODE_INDEX/CIRCLE_NODE_TOTAL, "
          "BUILDKITE_PARALLEL_JOB/BUILDKITE_PARALLEL_JOB_COUNT is set");
    return **shard;
  }
  auto slash = text.find('/');
  std::size_t index = 0, total = 0;
  if (slash == std::string::npos || !parse_count(text.substr(0, slash).c_str(), index) ||
      !parse_count(text.substr(slash + 1).c_str(), total) || total == 0 || index == 0 || index > total) {
    return util::Expected<Shard>::failure(
        fmt::format("'{}' is not a shard: give I/N with 1 <= I <= N (e.g. 2/4), or auto", text));
  }
  return Shard{index - 1, total};
}

}  // namespace pcr::cli
