#pragma once

#include <pcr/util/expected.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace pcr::pipeline {

// What a run leaves for the next `pcr run --rerun-failed`, per pipeline and shard: each
// main step that ran, whether it passed, and for a for_each step the items whose jobs did
// not pass (failed, timed out, cancelled, or never started). Pure data and its file; the
// engine fills it, the CLI reads it.
struct StepRecord {
  bool passed = false;
  bool for_each = false;
  std::set<std::string> not_passed;  // for_each: items to run again
};

struct LastRun {
  bool passed = false;  // every main step passed
  std::map<std::string, StepRecord> steps;  // by step name; a step that never ran is absent
};

// `<pipeline folder>/.pcr/last-run/<key>.json`, `<key>.shard-I-of-N.json` for a shard.
std::string last_run_path(const std::string& pipeline_dir, const std::string& key, std::size_t shard_index,
                          std::size_t shard_total);

// Write `run` to `path` whole (through a temporary file); "" or why not.
std::string save_last_run(const std::string& path, const LastRun& run);

// The record at `path`; an error when there is none or it cannot be read (it is then
// ignored: a run that cannot tell what failed runs everything).
util::Expected<LastRun> load_last_run(const std::string& path);

// The items of for_each step `step` that a rerun of `last` runs, out of `items`: those
// recorded as not passed, and all of them when the step did not run last time. A step
// that passed whole runs none.
std::vector<std::string> rerun_items(const LastRun& last, const std::string& step, const std::vector<std::string>& items);

// The items of `items` that match one of the shell globs `patterns` (`*`, `?`, `[...]`;
// `*` matches `/` too, so `*payments*` finds `tests/payments_test.sh`).
std::vector<std::string> only_items(const std::vector<std::string>& patterns, const std::vector<std::string>& items);

}  // namespace pcr::pipeline
