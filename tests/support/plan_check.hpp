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
  const auto both = plan_and_run({"check", "--json", file}, {"run", "--no-color", file}, o);
  if (both.plan.exit_code != 0)
    return "pcr check exited " + std::to_string(both.plan.exit_code) + ": " + both.plan.err;
  if (both.run.exit_code != run_exit)
    return "pcr run exited " + std::to_string(both.run.exit_code) + ":\n" + both.run.out + both.run.err;
  return plan_differs(both.plan.out, both.events);
}

}  // namespace pcr::test
