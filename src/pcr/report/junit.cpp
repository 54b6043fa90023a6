#include <pcr/report/format.hpp>
#include <pcr/report/junit.hpp>
#include <pcr/util/escape.hpp>
#include <pcr/util/text.hpp>

#include <fmt/format.h>

#include <algorithm>

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

// A testcase's name: the job's name, what it tests (its item), the same in every run — never
// its expanded command, which may hold the run id (a compose project).
std::string case_name(const JobEntry& j) {
  if (!j.name.empty()) return j.name;
  return j.items.empty() ? j.command : util::join(j.items, " ");
}

// The earlier attempts of the job whose final attempt is `j`, as Maven Surefire writes
// them: `flakyFailure` when the job passed in the end, `rerunFailure` when it did not;
// each with its reason and the end of its output. Attempts lost with their host are not
// the job's failures: they are said in its system-out.
std::string earlier_attempts(const RunRecord& run, size_t step, const JobEntry& j) {
  const bool passed = j.result.status == JobStatus::passed;
  std::string out;
  for (const auto& e : run.jobs) {
    if (&e == &j || e.step != step || e.job != j.job || e.kind != j.kind || e.attempt >= j.attempt ||
        e.result.infrastructure || e.result.status == JobStatus::passed)
      continue;
    const char* element = passed ? "flakyFailure" : "rerunFailure";
    out += fmt::format("      <{} type=\"{}\" message=\"{}\"><system-out>{}</system-out></{}>\n", element,
                       status_name(e.result.status), xml_escape(fmt::format("attempt {}: {}", e.attempt + 1,
                                                                               describe(e.result, e.attempt))),
                       xml_escape(e.tail), element);
  }
  return out;
}

// The testsuite of a job that reported its tests: a testcase per test (a failure with its
// message and diagnostics, a skip or TODO as skipped with its reason), plus one for the job
// itself when it failed for a reason no test shows (exit code, timeout, a plan mismatch).
std::string tests_suite(const std::string& step, const JobEntry& j, size_t& tests,
                        size_t& failures, size_t& skipped) {
  const results::Results& r = *j.result.tests;
  const std::string name = step + ": " + case_name(j);
  std::string cases;
  Millis total{0};
  for (const auto& t : r.tests) {
    ++tests;
    std::string body;
    switch (t.outcome) {
      case results::Outcome::passed:
        break;
      case results::Outcome::failed:
        ++failures;
        body = fmt::format("      <failure message=\"{}\">{}</failure>\n", xml_escape(t.reason),
                           xml_escape(t.details));
        break;
      case results::Outcome::skipped:
        ++skipped;
        body = fmt::format("      <skipped message=\"{}\"/>\n", xml_escape(t.reason));
        break;
      case results::Outcome::todo:
        ++skipped;
        body = fmt::format("      <skipped message=\"{}\"/>\n",
                           xml_escape(t.reason.empty() ? "TODO" : "TODO: " + t.reason));
        break;
    }
    if (t.time) total += *t.time;
    cases += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"{}\">\n{}    </testcase>\n",
                         xml_escape(t.suite.empty() ? name : t.suite), xml_escape(t.name),
                         seconds(t.time.value_or(Millis(0))), body);
  }
  if (r.skip_all) {
    ++tests, ++skipped;
    cases += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"0.000\">\n      <skipped "
                         "message=\"{}\"/>\n    </testcase>\n",
                         xml_escape(name), xml_escape(case_name(j)), xml_escape(r.skip_reason));
  }
  const bool job_failed = j.result.status != JobStatus::passed && j.result.status != JobStatus::cancelled;
  if (job_failed && (r.failed() == 0 || !r.problem.empty())) {
    ++tests, ++failures;
    cases += fmt::format("    <testcase classname=\"{}\" name=\"{} (the job)\" time=\"{}\">\n      <failure "
                         "message=\"{}\">{}</failure>\n    </testcase>\n",
                         xml_escape(name), xml_escape(case_name(j)), seconds(j.result.duration),
                         xml_escape(describe(j.result, j.attempt)), xml_escape(j.tail));
  }
  return fmt::format(
      "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{}\">\n{}"
      "  </testsuite>\n",
      xml_escape(name), tests, failures, skipped, seconds(total > Millis(0) ? total : j.result.duration),
      cases);
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
    if (step.own) continue;  // pcr's own work (the compose teardown), not a test
    const std::string suite_name = (step.cleanup ? "cleanup: " : "") + step.name;
    std::string cases, job_suites;
    size_t tests = 0, failures = 0, skipped = 0;
    if (!step.ran) {
      tests = skipped = 1;
      cases += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"0.000\">\n      <skipped message=\"step "
                           "skipped: an earlier step failed or the run was stopped\"/>\n    </testcase>\n",
                           xml_escape(suite_name), xml_escape(step.name));
    }
    // In item (job) order, as CI systems list them.
    std::vector<const JobEntry*> step_jobs;
    for (const JobEntry* j : finals)
      if (j->step == s) step_jobs.push_back(j);
    std::stable_sort(step_jobs.begin(), step_jobs.end(), [](const JobEntry* a, const JobEntry* b) {
      return a->kind != b->kind ? a->kind < b->kind : a->job < b->job;
    });
    // A worker's set-up or tear-down is no test: its failure goes to the suite's
    // system-err (the tests it kept from running fail or are skipped on their own).
    std::string system_err;
    for (const JobEntry* j : step_jobs) {
      if (j->kind != JobKind::job) {
        if (j->result.status != JobStatus::passed && j->result.status != JobStatus::cancelled)
          system_err += fmt::format("{} [n={}{}] {}\n{}", j->kind == JobKind::setup ? "setup" : "teardown", j->worker,
                                    j->host.empty() ? "" : " @" + j->host, describe(j->result, j->attempt), j->tail);
        continue;
      }
      if (j->result.tests && j->result.tests->unreadable.empty()) {
        // A job that reported its tests: a testsuite of its own, after its step's.
        size_t t = 0, f = 0, k = 0;
        job_suites += tests_suite(suite_name, *j, t, f, k);
        all_tests += t, all_failures += f, all_skipped += k;
        continue;
      }
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
      body += earlier_attempts(run, s, *j);
      std::string meta = fmt::format("worker: {}\n{}{}attempts: {}\ncommand: {}\n", j->worker,
                                     j->host.empty() ? "" : "host: " + j->host + "\n",
                                     j->project.empty() ? "" : "project: " + j->project + "\n", retries + 1,
                                     j->command);
      for (const auto& earlier : run.jobs)
        if (&earlier != j && earlier.step == s && earlier.job == j->job && earlier.kind == j->kind &&
            earlier.result.infrastructure)
          meta += fmt::format("attempt {} lost with its host: {}\n", earlier.attempt + 1, earlier.result.detail);
      if (r.flaky) meta += fmt::format("flaky: passed on retry {}\n", retries);
      // What was saved about it (its services' logs), as CI systems read attachments.
      for (const auto& f : r.saved_files) meta += fmt::format("[[ATTACHMENT|{}]]\n", f);
      if (!r.saved_summary.empty()) meta += r.saved_summary;
      body += fmt::format("      <system-out>{}</system-out>\n", xml_escape(meta));
      cases += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"{}\" status=\"{}\">\n{}    </testcase>\n",
                           xml_escape(suite_name), xml_escape(case_name(*j)), seconds(r.duration), status, body);
    }
    if (!system_err.empty()) cases += fmt::format("    <system-err>{}</system-err>\n", xml_escape(system_err));
    all_tests += tests, all_failures += failures, all_skipped += skipped;
    if (tests == 0 && system_err.empty()) {  // every job reported its tests: the step is their suites
      suites += job_suites;
      continue;
    }
    suites += fmt::format(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{}\" "
        "timestamp=\"{}\">\n{}  </testsuite>\n",
        xml_escape(suite_name), tests, failures, skipped, seconds(step.result.duration),
        iso(run.started + step.start), cases);
    suites += job_suites;
  }
  return fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" "
      "errors=\"0\" skipped=\"{}\" time=\"{}\">\n{}</testsuites>\n",
      xml_escape(run.info.name.empty() ? "pcr" : run.info.name), all_tests, all_failures, all_skipped,
      seconds(run.result.duration), suites);
}

}  // namespace pcr::report
