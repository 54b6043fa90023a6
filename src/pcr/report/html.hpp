#pragma once

#include <pcr/report/record.hpp>

#include <string>

namespace pcr::report {

// The run as one self-contained HTML page (no script, nothing loaded from the network):
// a summary, a timeline — a row per step and worker, a bar per job, coloured by outcome,
// its command and duration on hover — a table per step, and the output of failed jobs.
// Everything a job printed or ran is escaped: a `<script>` in its output is shown as text.
std::string html_report(const RunRecord& run);

// The report's one script (its job tables sorted by a click on a column) and its SHA-256
// (base64), which the report's Content-Security-Policy allows and nothing else.
std::string html_sort_script();
std::string html_sort_hash();

}  // namespace pcr::report
