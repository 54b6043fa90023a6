#pragma once

#include <pcr/pipeline/events.hpp>
#include <pcr/report/console.hpp>
#include <pcr/report/json_events.hpp>
#include <pcr/report/log_dir.hpp>
#include <pcr/report/record.hpp>
#include <pcr/report/sink.hpp>
#include <pcr/session/run.hpp>

#include <memory>
#include <string>
#include <vector>

namespace pcr::session {

// Everything a run writes, as its flags ask: the console on stdout, `--log-dir` (a log
// per job and run.log), `--json`, and `--junit`/`--html` written whole at the end. Every
// output is a report::Sink (masked, never blocking the run, its failure kept); the
// consoles come last among the observers, so that the summary's last line knows whether
// a report could not be written.
class Outputs {
 public:
  Outputs(const RunFlags& flags, std::vector<std::string> secrets);
  Outputs(const Outputs&) = delete;
  Outputs& operator=(const Outputs&) = delete;

  // Look at every path first (a bad --html must not leave --junit truncated or --log-dir
  // made), then open them: 0, or k_exit_usage having said which flag and why.
  int open();

  pipeline::Observer& observers() { return m_observers; }

  // After the run: everything written out (a slow reader is waited for now), every
  // failure to write said once on stderr. False when something could not be written.
  bool finish();

 private:
  int fail(const std::string& flag, const std::string& why) const;
  int open_log_dir();
  int open_reports();
  std::vector<std::string> write_errors(const std::string& lost_output) const;

  const RunFlags& m_flags;
  std::vector<std::string> m_secrets;
  report::ConsoleOptions m_console_options;
  report::Sink m_stdout;
  std::vector<report::Sink*> m_sinks;  // every output, checked at the end
  std::unique_ptr<report::Console> m_console, m_run_log;
  std::unique_ptr<report::Sink> m_run_log_sink;
  std::unique_ptr<report::LogDir> m_log_dir;
  std::unique_ptr<report::JsonEvents> m_json;
  report::Recorder m_recorder;
  std::vector<std::unique_ptr<report::Sink>> m_report_sinks;
  std::vector<std::string> m_report_errors;  // --junit, --html: written at the end, whole
  struct LostOutput : pipeline::Observer {
    std::string error;
    void run_finished(const pipeline::RunResult& r) override { error = r.output_error; }
  } m_lost_output;
  pipeline::Observers m_observers;
};

}  // namespace pcr::session
