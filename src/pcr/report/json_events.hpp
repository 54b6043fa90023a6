#pragma once

#include <pcr/pipeline/engine.hpp>
#include <pcr/pipeline/events.hpp>
#include <pcr/report/sink.hpp>
#include <pcr/util/expected.hpp>
#include <pcr/util/mask.hpp>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>

namespace pcr::report {

// `--json FILE`: the run as JSON lines, one object per event, flushed as they happen so
// the file is useful while the run goes on and complete after an interrupt. The schema
// is in docs/reports.md. Strings are masked and valid UTF-8.
class JsonEvents : public pipeline::Observer {
 public:
  // Opens `path` (0600), or says why it cannot.
  static util::Expected<std::unique_ptr<JsonEvents>> open(const std::string& path,
                                                          std::vector<std::string> secrets);
  ~JsonEvents() override;
  Sink& sink() { return *m_sink; }

  void run_started(const pipeline::RunInfo&) override;
  void step_started(const pipeline::StepInfo&) override;
  void job_started(const pipeline::JobInfo&) override;
  void job_finished(const pipeline::JobInfo&, const pipeline::JobResult&) override;
  void step_finished(const pipeline::StepInfo&, const pipeline::StepResult&) override;
  void run_finished(const pipeline::RunResult&) override;
  void note(const pipeline::Note&) override;
  void status(const std::vector<pipeline::JobProgress>&) override;
  void job_slow(const pipeline::JobProgress&) override;
  void host_down(const pipeline::HostEvent&) override;

 private:
  JsonEvents(std::vector<std::string> secrets, std::unique_ptr<Sink> sink);
  void emit(const std::string& line);
  util::Masker m_mask;
  std::unique_ptr<Sink> m_sink;
};

// `pcr check --json`: the plan as one JSON object (docs/cli.md), masked with `mask`.
std::string plan_json(const pipeline::Pipeline& p, const std::vector<pipeline::PlannedStep>& plan,
                      const util::Masker& mask);

// An event's "time": now, UTC, to the millisecond ("2026-11-27T10:05:59.123Z").
std::string event_time();

}  // namespace pcr::report
