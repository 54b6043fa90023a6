#pragma once

#include <pcr/pipeline/events.hpp>
#include <pcr/util/mask.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace pcr::report {

using pipeline::Millis;

// One attempt of a job (or a worker's set-up / tear-down), as the reports show it.
// Every string is already masked: secrets never reach a report.
struct JobEntry {
  size_t step = 0;  // index into RunRecord::steps
  pipeline::JobKind kind = pipeline::JobKind::job;
  unsigned job = 0, worker = 0, attempt = 0;
  std::string host;  // its worker's host, with hosts
  std::string name;  // what it tests (pipeline::JobInfo::name)
  std::string command;
  std::vector<std::string> items;
  std::string project;  // its compose project, when it has one
  pipeline::JobResult result;
  Millis start{0};   // since the run started
  std::string tail;  // the end of its output, for jobs that did not pass
  std::string log;   // its file under --log-dir (absolute), when there is one
};

struct StepEntry {
  std::string name;
  bool cleanup = false;
  size_t index = 0, of = 0, jobs = 0;
  unsigned workers = 0;
  pipeline::StepResult result;
  Millis start{0};
  bool ran = false;  // false: skipped
  bool own = false;  // pcr's own step (pipeline::Step::own), not the user's tests
};

struct RunRecord {
  pipeline::RunInfo info;
  pipeline::RunResult result;
  std::chrono::system_clock::time_point started;
  std::vector<StepEntry> steps;
  std::vector<JobEntry> jobs;
  std::vector<std::string> notes;
  std::vector<pipeline::HostEvent> hosts_down;  // masked
};

// Collects a run for the reports that are written at its end (JUnit, HTML), and calls
// each of `sinks` with the record when the run finishes — interrupted runs included.
class Recorder : public pipeline::Observer {
 public:
  using Sink = std::function<void(const RunRecord&)>;
  Recorder(std::vector<std::string> secrets, size_t tail_bytes = 64 * 1024);
  void add_sink(Sink sink) { m_sinks.push_back(std::move(sink)); }
  // Where each job's log is (--log-dir), for the reports to link it.
  void set_log_paths(std::function<std::string(const pipeline::JobInfo&)> path) { m_log_path = std::move(path); }

  void run_started(const pipeline::RunInfo&) override;
  void step_started(const pipeline::StepInfo&) override;
  void job_started(const pipeline::JobInfo&) override;
  void job_finished(const pipeline::JobInfo&, const pipeline::JobResult&) override;
  void step_finished(const pipeline::StepInfo&, const pipeline::StepResult&) override;
  void run_finished(const pipeline::RunResult&) override;
  void note(const pipeline::Note&) override;
  void host_down(const pipeline::HostEvent&) override;

  const RunRecord& record() const { return m_record; }

 private:
  Millis now() const;
  util::Masker m_mask;
  size_t m_tail_bytes;
  RunRecord m_record;
  std::chrono::steady_clock::time_point m_t0;
  std::map<const pipeline::JobInfo*, Millis> m_started;
  std::vector<Sink> m_sinks;
  std::function<std::string(const pipeline::JobInfo&)> m_log_path;
};

// The last `max_bytes` of file `path` (from a line start where possible), masked by
// `mask`, as valid UTF-8.
std::string output_tail(const std::string& path, size_t max_bytes, const util::Masker& mask);

// Names of statuses and outcomes as the machine-readable reports spell them.
const char* status_name(pipeline::JobStatus s);
const char* outcome_name(pipeline::StepOutcome o);
const char* kind_name(pipeline::JobKind k);

}  // namespace pcr::report
