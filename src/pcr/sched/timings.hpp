#pragma once

#include <pcr/util/mask.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pcr::sched {

// Recorded job durations, in whole milliseconds so that every machine computes the same
// plan from the same file. A file holds several pipelines (two pipeline files in one
// folder share it); each pipeline's entries are keyed by step name, then by item (a
// for_each job records each of its items at its duration divided by the number of items)
// or, for other jobs, by the command. A `Timings` is one pipeline's view of the file.
//
// Files written before timings had pipelines (version 1: steps only) are read as entries
// of no pipeline yet, the key "": a pipeline with no entries of its own reads those, and
// its first save takes them over (the file is then version 2).
class Timings {
 public:
  using Table = std::map<std::string, std::map<std::string, std::int64_t>>;
  using Pipelines = std::map<std::string, Table>;  // by pipeline key

  // Read `pipeline`'s entries from `path`. A missing file is empty; a damaged one is
  // empty too, with `warning` set (never fatal: timings only order work).
  static Timings load(const std::string& path, const std::string& pipeline, std::string* warning);

  // Every pipeline's entries as one table, for tools that know no pipeline (`pcr split`):
  // a step that several pipelines have gets the largest duration of each key.
  static Timings load_any(const std::string& path, std::string* warning);

  // Parse the JSON text of a timings file (either version); false when damaged.
  static bool parse(const std::string& text, Pipelines& out);

  // Secrets never reach the file, nor bytes its JSON cannot hold: every step name and key
  // is stored and looked up masked ("deploy ***", with `mask` set) and as valid UTF-8
  // (U+FFFD for a byte that is not), which still matches the next run's same job.
  void mask_keys(util::Masker mask) { m_mask = std::move(mask); }
  // Keys that hold this run's id (a compose project's name) or the pipeline's folder (a
  // wrapper's path) are stored with "{run}" and "." in their place: the same in the next
  // run and in another checkout, where they would otherwise never be found again.
  void portable_keys(std::string run_id, std::string folder) {
    m_run_id = std::move(run_id), m_folder = std::move(folder);
  }
  std::string stored(const std::string& key) const;

  std::optional<std::int64_t> get(const std::string& step, const std::string& key) const;

  // A sample of this run: `ms` for `key` in `step` (the last one per key wins).
  void record(const std::string& step, const std::string& key, std::int64_t ms);

  // Merge this run's samples into the file at `path`: under an exclusive lock of
  // `path.lock`, re-read the file, smooth each sample into it (new = (old + sample) / 2),
  // write a temporary file and rename it over `path`. Concurrent savers therefore lose
  // nothing and never leave a half-written file. Returns "" or what went wrong.
  // Other pipelines' entries are kept as they are.
  std::string save(const std::string& path) const;

  const std::string& pipeline() const { return m_pipeline; }
  const Table& table() const { return m_table; }
  const Table& samples() const { return m_samples; }
  bool empty() const { return m_table.empty(); }

  // The JSON text of a file, keys sorted, one entry per line (version 2).
  static std::string to_json(const Pipelines& pipelines);

 private:
  std::string m_pipeline;  // the key of the pipeline this view belongs to
  Table m_table;           // as loaded (plus merges)
  bool m_found_own = false;  // the file had this pipeline's own table
  Table m_samples;         // this run's
  util::Masker m_mask;
  std::string m_run_id, m_folder;
};

// A cost per key for planning: the recorded duration of each key in `step` (any step
// when `step` is empty: the largest), the median of the known ones for the rest, and 1
// for all when none is known (then `any_known`, when given, is set false).
// Deterministic.
std::vector<std::int64_t> estimate(const Timings& timings, const std::string& step,
                                   const std::vector<std::string>& keys, bool* any_known = nullptr);

// The start order of jobs with these costs and names: longest first, ties by name
// (bytewise), then by index. Pass equal names to keep ties in index order.
std::vector<std::size_t> longest_first(const std::vector<std::int64_t>& costs,
                                       const std::vector<std::string>& names);

// Split indices 0..n-1 into `groups` groups: in longest-first order, each goes to the
// group with the least total so far (the lowest group number on a tie). With equal costs
// this is round-robin in name order. Each group lists its indices in ascending order.
// Groups past the n-th would be empty and are not returned: min(groups, n) of them (one
// at least), so a huge `groups` costs nothing.
std::vector<std::vector<std::size_t>> balance(const std::vector<std::int64_t>& costs,
                                              const std::vector<std::string>& names, std::size_t groups);

// Combine the timings files that shards of one run brought back into `base`, the file
// they all started from: an entry a shard changed takes the mean of the shards' changed
// values (shards ran different items, so mostly one shard changed it); an entry that
// none changed keeps its value; an entry `base` lacks takes the mean of the shards'.
// Each pipeline is combined on its own.
void combine_shards(Timings::Table& base, const std::vector<Timings::Table>& shards);
void combine_shards(Timings::Pipelines& base, const std::vector<Timings::Pipelines>& shards);

// `combine_shards` on the file at `path` (missing: empty), under the same lock and
// atomic rename as `Timings::save`. Returns "" or what went wrong.
std::string merge_shard_files(const std::string& path, const std::vector<Timings::Pipelines>& shards);

// The items of shard `index` (0-based) of `total`: the items split by recorded timings
// (`step` empty: any step's) exactly as `groups` would split them, listed in input order.
// The same inputs give the same answer on every machine (`pcr split`, `pcr run --shard`).
std::vector<std::string> shard_items(const std::vector<std::string>& items, const Timings& timings,
                                     const std::string& step, std::size_t index, std::size_t total);

}  // namespace pcr::sched
