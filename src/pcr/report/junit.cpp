#include <pcr/report/format.hpp>
#include <pcr/report/junit.hpp>
#include <pcr/util/escape.hpp>

#include <fmt/format.h>

namespace pcr::report {

using pipeline::JobKind;
using pipeline::JobStatus;
using util::xml_escape;

namespace {

std::string seconds(Millis d) { return fmt::format("{:.3f}", static_cast<double>(d.count()) / 1000.0); }

std::string iso(std::chrono::system_clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return buf;
}

std::string case_name(const JobEntry& j) {
  if (j.kind == JobKind::setup) return fmt::format("setup [n={}]", j.worker);
  if (j.kind == JobKind::teardown) return fmt::format("teardown [n={}]", j.worker);
  if (!j.items.empty()) {
    std::string name;
    for (const auto& i : j.items) name += (name.empty() ? "" : " ") + i;
    return name;
  }
  return j.command;
}

}  // namespace

std::string junit_xml(const RunRecord& run) {
  // The final attempt of each job is its testcase; earlier failed attempts are retries.
  std::vector<const JobEntry*> finals;
  for (const auto& j : run.jobs)
    if (!j.result.will_retry) finals.push_back(&j);

  std::string suites;
  size_t all_tests = 0, all_failures = 0, all_skipped = 0;
  for (size_t s = 0; s < run.steps.size(); ++s) {
    const StepEntry& step = run.steps[s];
    const std::string suite_name = (step.cleanup ? "cleanup: " : "") + step.name;
    std::string cases;
    size_t tests = 0, failures = 0, skipped = 0;
    if (!step.ran) {
      tests = skipped = 1;
      cases += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"0.000\">\n      <skipped message=\"step "
                           "skipped: an earlier step failed or the run was stopped\"/>\n    </testcase>\n",
                           xml_escape(suite_name), xml_escape(step.name));
    }
    for (const JobEntry* j : finals) {
      if (j->step != s) continue;
      ++tests;
      unsigned retries = j->attempt;
      const auto& r = j->result;
      std::string status = r.status == JobStatus::passed ? (r.flaky ? "flaky" : "passed")
                           : r.status == JobStatus::cancelled ? "skipped"
                                                              : "failed";
      std::string body;
      if (r.status == JobStatus::cancelled) {
        ++skipped;
        body += "      <skipped message=\"cancelled\"/>\n";
      } else if (r.status != JobStatus::passed) {
        ++failures;
        body += fmt::format("      <failure type=\"{}\" message=\"{}\">{}</failure>\n", status_name(r.status),
                            xml_escape(describe(r, j->attempt)), xml_escape(j->tail));
      }
      std::string meta = fmt::format("worker: {}\n{}attempts: {}\ncommand: {}\n", j->worker,
                                     j->host.empty() ? "" : "host: " + j->host + "\n", retries + 1, j->command);
      for (const auto& earlier : run.jobs)
        if (&earlier != j && earlier.step == s && earlier.job == j->job && earlier.kind == j->kind &&
            earlier.result.infrastructure)
          meta += fmt::format("attempt {} lost with its host: {}\n", earlier.attempt + 1, earlier.result.detail);
      if (r.flaky) meta += fmt::format("flaky: passed on retry {}\n", retries);
      body += fmt::format("      <system-out>{}</system-out>\n", xml_escape(meta));
      cases += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"{}\" status=\"{}\">\n{}    </testcase>\n",
                           xml_escape(suite_name), xml_escape(case_name(*j)), seconds(r.duration), status, body);
    }
    all_tests += tests, all_failures += failures, all_skipped += skipped;
    suites += fmt::format(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{}\" "
        "timestamp=\"{}\">\n{}  </testsuite>\n",
        xml_escape(suite_name), tests, failures, skipped, seconds(step.result.duration),
        iso(run.started + step.start), cases);
  }
  return fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" "
      "errors=\"0\" skipped=\"{}\" time=\"{}\">\n{}</testsuites>\n",
      xml_escape(run.info.name.empty() ? "pcr" : run.info.name), all_tests, all_failures, all_skipped,
      seconds(run.result.duration), suites);
}

}  // namespace pcr::report
