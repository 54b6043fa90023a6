#pragma once

// A run and its plan, side by side (plan_diff.hpp compares them). run_pcr makes the same
// comparison for every `pcr run` of the suite it can (see run_pcr); this is for tests that
// ask for it by name.

#include "pcr_binary.hpp"
#include "plan_diff.hpp"

#include <string>

namespace pcr::test {

// Runs `pcr check --json FILE` and `pcr run --json … FILE` in `dir` and compares them.
// `run_exit` is the exit code the run must have.
inline std::string check_matches_run(const std::string& dir, const std::string& file,
                                     int run_exit = 0, const PcrOptions& options = {}) {
  PcrOptions o = options;
  o.cwd = dir;
  const auto check = run_pcr_once({"check", "--json", file}, o);
  if (check.exit_code != 0) return "pcr check exited " + std::to_string(check.exit_code) + ": " + check.err;
  TempDir out;
  const std::string events = out.file("events.jsonl");
  const auto run = run_pcr_once({"run", "--no-color", "--json", events, file}, o);
  if (run.exit_code != run_exit)
    return "pcr run exited " + std::to_string(run.exit_code) + ":\n" + run.out + run.err;
  return plan_differs(check.out, read_file(events));
}

}  // namespace pcr::test
