#pragma once

#include <pcr/results/results.hpp>

#include <string>
#include <vector>

namespace pcr::results {

// The tests of JUnit XML files, in the order of `paths` and then of the file. The root
// element is <testsuites> or <testsuite>; suites may nest. A <testcase> with a <failure> or
// <error> child failed (its `message` is the reason, its text the details), one with a
// <skipped> child was skipped; `time` is in seconds.
//
// Each file is streamed through libxml2's reader with no entity substitution, no DTD
// loading and no network, so entity bombs and external entities cannot bite; files over
// limits::junit_file bytes or nested deeper than limits::xml_depth are refused. A file
// that cannot be read or parsed adds "FILE: why" (with the line when the XML is broken)
// to `unreadable` and none of its tests; the other files' tests are kept. No paths at all
// is unreadable too. Nothing is printed and nothing is thrown.
Results read_junit(const std::vector<std::string>& paths);

}  // namespace pcr::results
