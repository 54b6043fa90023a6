#include <pcr/report/format.hpp>
#include <pcr/report/record.hpp>
#include <pcr/util/escape.hpp>
#include <pcr/util/text.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

namespace pcr::report {

using pipeline::JobKind;
using pipeline::JobStatus;
using pipeline::StepOutcome;

const char* status_name(JobStatus s) {
  switch (s) {
    case JobStatus::passed: return "passed";
    case JobStatus::failed: return "failed";
    case JobStatus::signalled: return "signalled";
    case JobStatus::timed_out: return "timed_out";
    case JobStatus::idle_timeout: return "idle_timeout";
    case JobStatus::unexpected_output: return "unexpected_output";
    case JobStatus::cancelled: return "cancelled";
    case JobStatus::not_started: return "not_started";
  }
  return "unknown";
}

const char* outcome_name(StepOutcome o) {
  switch (o) {
    case StepOutcome::passed: return "passed";
    case StepOutcome::failed: return "failed";
    case StepOutcome::skipped: return "skipped";
    case StepOutcome::interrupted: return "interrupted";
  }
  return "unknown";
}

const char* kind_name(JobKind k) {
  switch (k) {
    case JobKind::job: return "job";
    case JobKind::setup: return "setup";
    case JobKind::teardown: return "teardown";
  }
  return "job";
}

std::string output_tail(const std::string& path, size_t max_bytes, const util::Masker& mask) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  off_t size = ::lseek(fd, 0, SEEK_END);
  off_t from = size > static_cast<off_t>(max_bytes) ? size - static_cast<off_t>(max_bytes) : 0;
  std::string buf(static_cast<size_t>(size - from), '\0');
  ssize_t n = ::pread(fd, buf.data(), buf.size(), from);
  ::close(fd);
  buf.resize(n > 0 ? static_cast<size_t>(n) : 0);
  // A cut start may be the end of a secret no masker can recognise: left out.
  if (from > 0) buf.erase(0, util::cut_piece(buf));
  return util::valid_utf8(mask.mask(buf));
}

Recorder::Recorder(std::vector<std::string> secrets, size_t tail_bytes)
    : m_mask(std::move(secrets)), m_tail_bytes(tail_bytes), m_t0(std::chrono::steady_clock::now()) {}

Millis Recorder::now() const {
  return std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - m_t0);
}

void Recorder::run_started(const pipeline::RunInfo& run) {
  m_record.info = run;
  m_record.info.name = m_mask.mask(run.name);
  m_record.started = std::chrono::system_clock::now();
  m_t0 = std::chrono::steady_clock::now();
}

void Recorder::step_started(const pipeline::StepInfo& s) {
  StepEntry e;
  e.name = m_mask.mask(s.name);
  e.cleanup = s.cleanup;
  e.index = s.index, e.of = s.of, e.jobs = s.jobs, e.workers = s.workers;
  e.start = now();
  e.ran = true;
  e.own = s.step && s.step->own;
  m_record.steps.push_back(std::move(e));
}

void Recorder::job_started(const pipeline::JobInfo& job) { m_started[&job] = now(); }

void Recorder::job_finished(const pipeline::JobInfo& job, const pipeline::JobResult& r) {
  JobEntry e;
  e.step = m_record.steps.empty() ? 0 : m_record.steps.size() - 1;
  e.kind = job.kind;
  e.job = job.job, e.worker = job.worker, e.attempt = job.attempt;
  e.host = job.host;
  e.name = m_mask.mask(job_name(job));
  e.command = m_mask.mask(job.command);
  e.project = m_mask.mask(job.project);
  for (const auto& item : job.items) e.items.push_back(m_mask.mask(item));
  e.result = r;
  e.result.detail = m_mask.mask(r.detail);
  if (r.tests) {
    // Test names and diagnostics are job output: masked like the rest of it.
    auto tests = std::make_shared<results::Results>(*r.tests);
    for (auto& t : tests->tests)
      for (auto* field : {&t.name, &t.suite, &t.classname, &t.reason, &t.details})
        *field = m_mask.mask(*field);
    for (auto* field : {&tests->skip_reason, &tests->problem, &tests->unreadable})
      *field = m_mask.mask(*field);
    e.result.tests = std::move(tests);
  }
  auto it = m_started.find(&job);
  e.start = it != m_started.end() ? it->second : now() - r.duration;
  if (it != m_started.end()) m_started.erase(it);
  if (r.status != JobStatus::passed) e.tail = output_tail(job.spool, m_tail_bytes, m_mask);
  if (m_log_path) e.log = m_log_path(job);
  m_record.jobs.push_back(std::move(e));
}

void Recorder::step_finished(const pipeline::StepInfo& s, const pipeline::StepResult& r) {
  if (r.outcome == StepOutcome::skipped) {
    StepEntry e;
    e.name = m_mask.mask(s.name);
    e.cleanup = s.cleanup;
    e.index = s.index, e.of = s.of;
    e.start = now();
    e.own = s.step && s.step->own;
    m_record.steps.push_back(std::move(e));
  }
  StepEntry& e = m_record.steps.back();
  e.result = r;
  e.result.error = m_mask.mask(r.error);
}

void Recorder::host_down(const pipeline::HostEvent& event) {
  pipeline::HostEvent e = event;
  e.address = m_mask.mask(e.address);
  e.reason = m_mask.mask(e.reason);
  e.step = m_mask.mask(e.step);
  m_record.hosts_down.push_back(std::move(e));
}

void Recorder::note(const pipeline::Note& note) { m_record.notes.push_back(m_mask.mask(note_text(note))); }

void Recorder::run_finished(const pipeline::RunResult& r) {
  m_record.result = r;
  for (auto& sink : m_sinks) sink(m_record);
}

}  // namespace pcr::report
