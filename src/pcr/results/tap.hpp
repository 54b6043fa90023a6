#pragma once

#include <pcr/results/results.hpp>
#include <pcr/results/text.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace pcr::results {

// Reads TAP (versions 13 and 14, and the older unversioned form) as it arrives: `feed` the
// job's stdout in pieces cut anywhere, then `finish` once. Lines that are not TAP are
// ignored, as the TAP spec asks, so a job may print other things around its tests.
//
// Memory is bounded whatever the input (at most limits::tap_line bytes of a partial line,
// limits::tests tests, limits::details per test), and time is linear in the input.
//
// What is read:
//   `TAP version 13|14`, `pragma ...`            accepted, no effect
//   `1..N [# reason]`                            the plan, first or last; `1..0` skips all
//   `ok|not ok [N] [-] [description] [# SKIP|TODO [reason]]`
//                                                a test; `\#` and `\\` escape in the
//                                                description; directives in any case
//   `Bail out! [reason]`                         stops reading; a problem
//   `# diagnostic` and an indented YAML block (`  ---` ... `  ...`) right after a test line
//                                                that test's details
//   `# Subtest: name` and indented lines         a subtest: details of the test line that
//                                                ends it (its summary at this level)
// `not ok # SKIP` counts as failed (the test said it failed), `# TODO` as todo either way.
class TapParser {
 public:
  void feed(std::string_view chunk);
  // The results of everything fed. Call once; the parser is spent afterwards.
  Results finish();

 private:
  void line(std::string_view text);
  void top_level(std::string_view text);
  void indented(std::string_view text);
  // `Bail out!` at any depth: nothing after it counts, and the job fails for it.
  void bail_out(std::string_view text);
  bool test_line(std::string_view text);
  bool plan_line(std::string_view text);
  void add_problem(std::string message);
  void make_unreadable(std::string message);

  std::string m_partial;          // the line being received, at most limits::tap_line bytes
  std::size_t m_line_number = 0;  // of the last line handled, 1-based
  bool m_done = false;            // after a bail out or when unreadable: the rest is ignored

  Results m_results;
  bool m_any_tap = false;  // a plan, test line or bail out was seen
  bool m_bailed_out = false;
  std::string m_bail_out;  // the problem it is
  bool m_plan_seen = false;
  bool m_plan_after_tests = false;  // the plan came after test lines: it ends the stream
  unsigned long long m_planned = 0;
  std::vector<std::string> m_problems;
  std::unordered_set<unsigned> m_numbers;  // seen so far, to report duplicates
  unsigned long long m_last_number = 0;
  bool m_more_problems = false;  // some were left out of m_problems

  // Where details go: the last test line's test, until the next test line or plan.
  bool m_attach = false;
  bool m_after_test = false;  // the previous line was a test line: a YAML block may start
  bool m_in_yaml = false;
  std::size_t m_yaml_indent = 0;
  std::string m_subtest;  // indented lines, for the test line that ends the subtest
  detail::DetailsWriter m_subtest_writer;
  detail::DetailsWriter m_details;
};

}  // namespace pcr::results
