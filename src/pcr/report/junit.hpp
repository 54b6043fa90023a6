#pragma once

#include <pcr/report/record.hpp>

#include <string>

namespace pcr::report {

// The run as one JUnit XML document: a <testsuite> per step (cleanup steps included, named
// "cleanup: NAME"), a <testcase> per job (classname = step, name = the job's items or its
// command; set-ups and tear-downs as "setup [n=W]" / "teardown [n=W]") with its time.
// A failed job has a <failure> with the exit code, signal or timeout in `message` and the
// tail of its output as text; jobs of skipped steps and cancelled jobs are <skipped/>;
// a flaky job passes with status="flaky". Worker and attempts go in <system-out>. All
// text is escaped for XML, so nothing a job prints can break the file.
std::string junit_xml(const RunRecord& run);

}  // namespace pcr::report
