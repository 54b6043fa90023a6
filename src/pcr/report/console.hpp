#pragma once

#include <pcr/pipeline/events.hpp>
#include <pcr/report/format.hpp>
#include <pcr/report/sink.hpp>
#include <pcr/util/mask.hpp>
#include <pcr/util/text.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pcr::report {

enum class OutputStyle { grouped, prefixed };

// How a CI system folds a job's output in its log: GitHub Actions' `::group::`, GitLab's
// collapsible sections, or not at all.
enum class Folding { none, github, gitlab };

struct ConsoleOptions {
  int fd = 1;             // what `detect_console` looked at
  Sink* sink = nullptr;   // where the console writes (required)
  OutputStyle output = OutputStyle::grouped;
  bool color = false;     // pcr's colours; off: job output is stripped of colour codes too
  bool terminal = false;  // one live status line instead of heartbeats
  size_t width = 80;
  Millis heartbeat{30'000};
  size_t slowest = 5;     // slowest jobs listed in the summary
  size_t tail_lines = 20; // lines of a failed job's output in the summary
  std::vector<std::string> secrets;  // values shown as *** wherever they would appear
  Folding folding = Folding::none;
  // The front end's last word, asked as the summary ends: the code pcr will exit with,
  // given the run's result, and why it is not the run's own ("" when it is). Unset: the
  // run's. (pcr exits 3 when it could not write an output: the summary says so.)
  std::function<std::pair<int, std::string>(const pipeline::RunResult&)> final_word;
};

// GITHUB_ACTIONS=true → github, GITLAB_CI=true → gitlab, else none.
Folding detect_folding();

// Decide colour and terminal from the environment and `fd`, as ninja does: a terminal is
// `isatty` and TERM is not "dumb"; NO_COLOR turns colour off, CLICOLOR_FORCE turns it on.
ConsoleOptions detect_console(int fd, bool no_color_flag);

// Prints the run for a person: a banner per step, a result line per job followed by its
// output in one piece (never interleaved with another job's), the last running job of a
// step streamed live, and a summary at the end.
class Console : public pipeline::Observer {
 public:
  explicit Console(ConsoleOptions options);

  void run_started(const pipeline::RunInfo&) override;
  void step_started(const pipeline::StepInfo&) override;
  void job_started(const pipeline::JobInfo&) override;
  void job_output(const pipeline::JobInfo&, std::string_view) override;
  void job_finished(const pipeline::JobInfo&, const pipeline::JobResult&) override;
  void step_finished(const pipeline::StepInfo&, const pipeline::StepResult&) override;
  void run_finished(const pipeline::RunResult&) override;
  void tick() override;
  void note(const pipeline::Note&) override;
  void status(const std::vector<pipeline::JobProgress>&) override;
  void job_slow(const pipeline::JobProgress&) override;
  void host_down(const pipeline::HostEvent&) override;

 private:
  void write(std::string_view text);      // pcr's own text, secrets masked
  void write_raw(std::string_view text);  // erases the status line first
  // Job output through `mask` (a stream that may hold back a split secret); colour
  // codes stripped when colour is off.
  void write_output(std::string_view bytes, util::Masker& mask);
  void write_slice(std::string_view bytes, util::Masker& mask);
  void end_output(util::Masker& mask);
  void replay(const std::string& spool, bool end_line = true);
  void maybe_go_live();
  void redraw_status();
  void erase_status();
  std::vector<RunningJob> running_jobs() const;
  void estimate_left();
  void open_fold(const pipeline::JobInfo& job, const std::string& title);
  void close_fold(const pipeline::JobInfo& job);
  bool shows_output(const pipeline::JobResult& r) const;

  ConsoleOptions m_options;
  Style m_style;
  Summary m_summary;
  const pipeline::StepInfo* m_step = nullptr;
  pipeline::StepInfo m_step_copy;
  const pipeline::JobInfo* m_live = nullptr;  // the job whose output streams now
  std::map<size_t, const pipeline::JobInfo*> m_running;
  std::map<size_t, std::string> m_partial;    // prefixed mode: unfinished line per job
  size_t m_done = 0;
  std::vector<pipeline::Millis> m_busy;  // per worker, this step
  pipeline::Millis m_longest{0};
  bool m_status_shown = false;
  std::map<size_t, std::chrono::steady_clock::time_point> m_job_start;
  std::vector<bool> m_finished;  // by job index: done for good (not to be retried)
  std::optional<pipeline::Millis> m_left;  // the step's estimated time left, once a second
  bool m_live_at_line_start = true;
  pipeline::Millis m_elapsed{0};
  pipeline::Millis m_step_elapsed{0};
  pipeline::Millis m_last_heartbeat{0};
  util::AnsiStripper m_stripper;
  util::Masker m_secrets;    // the template every output stream copies
  util::Masker m_live_mask;  // the live job's stream
  util::Masker m_replay_mask;
  util::Masker m_no_mask;    // for text already masked whole
};

}  // namespace pcr::report
