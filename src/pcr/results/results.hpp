#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// The test results a CI job reports: TAP on its stdout (`results: tap`) or JUnit XML files
// it writes (`results: {junit: GLOB}`). Only parsing lives here; nothing runs a process.
namespace pcr::results {

// What one job's results may hold. Far above any real suite, low enough that a hostile or
// broken job costs bounded memory and time linear in what it printed or wrote.
namespace limits {
inline constexpr std::size_t tests = 100'000;          // of one job; more is unreadable
inline constexpr std::size_t tap_line = 64u << 10;     // longer TAP lines are cut to this
inline constexpr std::size_t details = 8u << 10;       // of one test, then "… (cut)"
inline constexpr std::size_t all_details = 32u << 20;  // of all tests of one job
inline constexpr std::size_t name = 1u << 10;          // a test, suite or class name
inline constexpr std::size_t message = 1u << 10;       // a reason; a problem's quoted text
inline constexpr std::size_t junit_file = 64u << 20;   // one JUnit file: 64 MiB
inline constexpr int xml_depth = 64;                   // element nesting in a JUnit file
}  // namespace limits

enum class Outcome {
  passed,
  failed,
  skipped,
  todo,  // a TAP `# TODO` test: not a failure, whether `ok` or `not ok`
};

struct Test {
  std::string name;       // TAP: the description (the number when none); JUnit: `name`
  std::string suite;      // JUnit: `classname` when set, else the testsuite's name; TAP: empty
  std::string classname;  // JUnit `classname`; TAP: empty
  Outcome outcome = Outcome::passed;
  std::string reason;   // a skip or todo reason; JUnit: the failure's `message`
  std::string details;  // TAP: the diagnostics after the test line (and a subtest before
                        // it); JUnit: the failure, error or skipped text. At most
                        // limits::details bytes, then "… (cut)"
  std::optional<std::chrono::milliseconds> time;  // JUnit `time`; TAP: none
  unsigned number = 0;  // TAP: the test's number, given or implied; JUnit: 1-based position
                        // in its file

  bool operator==(const Test&) const = default;
};

struct Results {
  std::vector<Test> tests;
  bool skip_all = false;  // TAP `1..0 # SKIP reason` (JUnit never sets it)
  std::string skip_reason;
  // Empty when the results are consistent; else why not, in plain words ("planned 5 tests,
  // ran 3", "bail out: database gone", "no plan"). The tests are still there.
  std::string problem;
  // Empty when the results could be read; else why not ("binary data in TAP line 3",
  // "junit.xml: line 4: ..."). For TAP nothing else is kept then; for JUnit the tests of
  // the files that could be read are.
  std::string unreadable;

  std::size_t passed() const { return count(Outcome::passed); }
  std::size_t failed() const { return count(Outcome::failed); }
  std::size_t skipped() const { return count(Outcome::skipped); }
  std::size_t todo() const { return count(Outcome::todo); }
  std::size_t count(Outcome outcome) const;

  bool operator==(const Results&) const = default;
};

}  // namespace pcr::results
