#include <pcr/report/console.hpp>
#include <pcr/report/record.hpp>
#include <pcr/util/assert.hpp>
#include <pcr/util/io.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace pcr::report {

using pipeline::JobStatus;
using pipeline::OutputMode;

namespace {

// The `--output prefixed` tag of a job's lines: its name (what it tests), short.
std::string tag(const pipeline::JobInfo& job) { return util::elide(util::visible(job_name(job)), 40); }

// Text for a GitHub workflow command: `%`, CR and LF escaped, and in a property (the
// title) `:` and `,` too, as the runner reads them.
std::string annotation_text(const std::string& text, bool property) {
  std::string out;
  for (char c : text) {
    if (c == '%') out += "%25";
    else if (c == '\r') out += "%0D";
    else if (c == '\n') out += "%0A";
    else if (property && c == ':') out += "%3A";
    else if (property && c == ',') out += "%2C";
    else out += c;
  }
  return out;
}

// The last `max_lines` lines of a job's output, without colour codes.
std::string tail_of(const std::string& path, size_t max_lines) {
  auto lines = util::split_lines(output_tail(path, 64 * 1024, util::Masker{}));
  size_t start = lines.size() > max_lines ? lines.size() - max_lines : 0;
  std::string out;
  for (size_t i = start; i < lines.size(); ++i) out += util::strip_ansi(lines[i]) + "\n";
  return out;
}

}  // namespace

ConsoleOptions detect_console(int fd, bool no_color_flag) {
  ConsoleOptions o;
  o.fd = fd;
  const char* term = std::getenv("TERM");
  o.terminal = ::isatty(fd) && !(term && std::string_view(term) == "dumb");
  const char* no_color = std::getenv("NO_COLOR");
  const char* force = std::getenv("CLICOLOR_FORCE");
  o.color = o.terminal && !no_color_flag && !(no_color && *no_color);
  if (force && *force && std::string_view(force) != "0" && !no_color_flag) o.color = true;
  winsize ws{};
  if (o.terminal && ::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) o.width = ws.ws_col;
  o.folding = detect_folding();
  return o;
}

Folding detect_folding() {
  const char* gh = std::getenv("GITHUB_ACTIONS");
  const char* gl = std::getenv("GITLAB_CI");
  if (gh && std::string_view(gh) == "true") return Folding::github;
  if (gl && std::string_view(gl) == "true") return Folding::gitlab;
  return Folding::none;
}

Console::Console(ConsoleOptions options)
    : m_options(options),
      // On a terminal with colour, job output keeps its colours and nothing else; off it
      // (CI logs, files), no escape sequence at all.
      m_stripper(util::AnsiStripper::terminal_safe(options.color)),
      m_secrets(options.secrets) {
  PCR_ASSERT(m_options.sink != nullptr);
  m_style.color = options.color;
}

void Console::erase_status() {
  if (!m_status_shown) return;
  m_options.sink->write("\r\x1b[K");
  m_status_shown = false;
}

void Console::write_raw(std::string_view text) {
  erase_status();
  m_options.sink->write(text);
}

void Console::open_fold(const pipeline::JobInfo& job, const std::string& title) {
  switch (m_options.folding) {
    case Folding::none:
      write(title);
      break;
    case Folding::github:
      write("::group::" + util::strip_ansi(title));
      break;
    case Folding::gitlab: {
      auto secs = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
      write(fmt::format("\x1b[0Ksection_start:{}:pcr_{}_{}_{}_{}[collapsed=true]\r\x1b[0K{}", secs,
                        job.step ? job.step->index : 0, static_cast<int>(job.kind), job.job * 1000 + job.worker,
                        job.attempt, title));
      break;
    }
  }
}

void Console::close_fold(const pipeline::JobInfo& job) {
  switch (m_options.folding) {
    case Folding::none:
      break;
    case Folding::github:
      write("::endgroup::\n");
      break;
    case Folding::gitlab: {
      auto secs = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
      write(fmt::format("\x1b[0Ksection_end:{}:pcr_{}_{}_{}_{}\r\x1b[0K", secs, job.step ? job.step->index : 0,
                        static_cast<int>(job.kind), job.job * 1000 + job.worker, job.attempt));
      break;
    }
  }
}

void Console::write(std::string_view text) {
  if (m_secrets.active())
    write_raw(m_secrets.mask_cut(text));  // names and commands are elided to fit
  else
    write_raw(text);
}

void Console::write_output(std::string_view bytes, util::Masker& mask) {
  // Plain text and no secret: out as it came, one write per read (a megabyte in slices
  // took 16 writes and 16 wake-ups of the reader: bench/output.sh).
  if (!mask.active() && m_stripper.idle() && !util::has_controls(bytes)) return write_raw(bytes);
  // Else in slices: a megabyte read at once would otherwise be copied whole by each masker
  // (here and in the sink) and the filter, and pcr's memory would grow by those copies.
  constexpr std::size_t k_slice = 64 * 1024;
  for (std::size_t at = 0; at < bytes.size(); at += k_slice) write_slice(bytes.substr(at, k_slice), mask);
}

void Console::write_slice(std::string_view bytes, util::Masker& mask) {
  std::string masked;
  if (mask.active()) {
    masked = mask.feed(bytes);
    bytes = masked;
  }
  // Fast path: nothing that is not plain text (most output). Else through the filter.
  const bool plain = !util::has_controls(bytes);
  if (plain && m_stripper.idle()) {  // a sequence split across chunks must finish first
    write_raw(bytes);
    return;
  }
  std::string clean;
  m_stripper.feed(bytes, clean);
  write_raw(clean);
}

void Console::end_output(util::Masker& mask) {
  // Already masked: through the terminal filter only. Nothing held back: nothing to write
  // (an empty write would still erase the status line).
  if (mask.active())
    if (std::string rest = mask.flush(); !rest.empty()) write_output(rest, m_no_mask);
  // A colour the job left on ends with its output, and so does a sequence it left
  // unfinished: pcr's next line is not coloured, the next job's output not eaten.
  if (m_stripper.coloured()) write_raw("\x1b[0m");
  m_stripper.reset();
}

void Console::replay(const std::string& spool, bool end_line) {
  // The mask first: a live job goes live before its spool exists, and everything it
  // prints then arrives through m_live_mask.
  util::Masker& mask = end_line ? m_replay_mask : m_live_mask;
  mask = m_secrets;
  int fd = ::open(spool.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  static char buf[256 * 1024];
  bool ends_with_newline = true;
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    write_output(std::string_view(buf, static_cast<size_t>(n)), mask);
    ends_with_newline = buf[n - 1] == '\n';
  }
  ::close(fd);
  if (end_line) end_output(mask);
  if (end_line && !ends_with_newline) write("\n");
  if (!end_line) m_live_at_line_start = ends_with_newline;
}

bool Console::shows_output(const pipeline::JobResult& r) const {
  if (m_step == nullptr || m_step->step == nullptr) return true;
  switch (m_step->step->options.output) {
    case OutputMode::show: return true;
    case OutputMode::hide: return false;
    case OutputMode::on_failure: return r.status != JobStatus::passed || r.will_retry;
  }
  return true;
}

void Console::run_started(const pipeline::RunInfo& run) {
  if (!run.name.empty())
    write(m_style.bold(fmt::format("pcr: {} (run {})", util::visible(run.name), run.run_id)) + "\n");
}

void Console::step_started(const pipeline::StepInfo& step) {
  m_step = &step;
  m_step_copy = step;
  m_done = 0;
  m_live = nullptr;
  m_running.clear();
  m_step_elapsed = Millis(0);
  m_last_heartbeat = Millis(0);
  m_finished.assign(step.jobs, false);
  estimate_left();
  write(banner(step, m_style) + "\n");
  redraw_status();
}

void Console::maybe_go_live() {
  if (m_live != nullptr || m_options.output != OutputStyle::grouped || m_step == nullptr) return;
  if (m_step->step && m_step->step->options.output != OutputMode::show) return;
  if (m_running.size() != 1 || m_done + 1 != m_step->jobs) return;
  m_live = m_running.begin()->second;
  open_fold(*m_live, live_line(*m_live, m_style) + "\n");
  m_live_at_line_start = true;
  replay(m_live->spool, false);  // what it printed so far; the rest arrives through job_output
}

void Console::job_started(const pipeline::JobInfo& job) {
  if (job.kind != pipeline::JobKind::job) return;  // shown when it ends
  m_running[job.index] = &job;
  m_job_start[job.index] = std::chrono::steady_clock::now();
  maybe_go_live();
  redraw_status();
}

void Console::job_output(const pipeline::JobInfo& job, std::string_view data) {
  if (job.kind != pipeline::JobKind::job) return;  // replayed in one piece when it ends
  if (m_options.output == OutputStyle::prefixed) {
    if (m_step && m_step->step && m_step->step->options.output != OutputMode::show) return;
    std::string& partial = m_partial[job.index];
    std::string prefix = m_style.dim(fmt::format("[{}] ", tag(job)));
    std::string out;
    size_t start = 0;
    while (start < data.size()) {
      size_t nl = data.find('\n', start);
      if (nl == std::string_view::npos) {
        partial.append(data.substr(start));
        // A line longer than 64 KiB is shown in tagged pieces of 64 KiB (less the end of a
        // UTF-8 character that would be cut): where it is cut depends on the line alone,
        // not on how the job's writes were read, and pcr's memory stays bounded.
        constexpr std::size_t k_piece = 64 * 1024;
        while (partial.size() > k_piece) {
          std::size_t cut = k_piece;
          while (cut > k_piece - 3 && (static_cast<unsigned char>(partial[cut]) & 0xC0) == 0x80) --cut;
          out += prefix;
          out.append(partial, 0, cut);
          out += "\n";
          partial.erase(0, cut);
        }
        break;
      }
      out += prefix;
      out += partial;
      out.append(data.substr(start, nl + 1 - start));
      partial.clear();
      start = nl + 1;
    }
    if (!out.empty()) write_output(m_secrets.mask(out), m_no_mask), redraw_status();
    return;
  }
  if (&job == m_live) {
    write_output(data, m_live_mask);
    if (!data.empty()) m_live_at_line_start = data.back() == '\n';
  }
}

void Console::job_finished(const pipeline::JobInfo& job, const pipeline::JobResult& r) {
  const bool failed = (r.status != JobStatus::passed && r.status != JobStatus::cancelled) || r.flaky_fails;
  if (failed && !r.will_retry && m_options.folding == Folding::github)
    write(fmt::format("::error title={}::{}\n", annotation_text(job_name(job), true),
                      annotation_text(util::strip_ansi(job_line(job, r, Style{})) + (job.step ? " (step " + job.step->name + ")" : ""), false)));
  if (job.kind != pipeline::JobKind::job) {
    open_fold(job, job_line(job, r, m_style) + "\n");
    if (shows_output(r)) replay(job.spool);
    close_fold(job);
    if (failed) {
      JobRecord rec{job.step->name, job.kind, job.job, job.worker, 0, job.command, r, tail_of(job.spool, m_options.tail_lines), job_name(job), !job.items.empty()};
      (r.infrastructure ? m_summary.lost : m_summary.failed).push_back(std::move(rec));
    }
    redraw_status();
    return;
  }
  m_running.erase(job.index);
  if (!r.will_retry) {
    if (m_busy.size() < job.worker) m_busy.resize(job.worker, Millis(0));
    m_busy[job.worker - 1] += r.duration;
    m_longest = std::max(m_longest, r.duration);
  }
  if (!r.will_retry) {
    ++m_done;
    if (job.index < m_finished.size()) m_finished[job.index] = true;
  }
  if (m_options.output == OutputStyle::prefixed) {
    auto it = m_partial.find(job.index);
    if (it != m_partial.end()) {
      if (!it->second.empty())
        write_output(m_secrets.mask(fmt::format("[{}] {}\n", tag(job), it->second)), m_no_mask);
      m_partial.erase(it);
    }
    write(job_line(job, r, m_style) + "\n");
  } else if (&job == m_live) {
    end_output(m_live_mask);
    m_live = nullptr;
    if (!m_live_at_line_start) write("\n");
    close_fold(job);
    write(job_line(job, r, m_style) + "\n");
  } else {
    open_fold(job, job_line(job, r, m_style) + "\n");
    if (shows_output(r)) replay(job.spool);
    close_fold(job);
  }
  m_job_start.erase(job.index);
  if (r.infrastructure)
    m_summary.lost.push_back({job.step->name, job.kind, job.job, job.worker, job.attempt, job.command, r, "", job_name(job), !job.items.empty()});
  if (!r.will_retry && r.tests) m_summary.tests.add(*r.tests);
  if (!r.will_retry || r.flaky) {
    JobRecord rec{job.step->name, job.kind, job.job, job.worker, job.attempt, job.command, r, "", job_name(job), !job.items.empty()};
    if (failed && !r.will_retry) {
      rec.tail = tail_of(job.spool, m_options.tail_lines);
      m_summary.failed.push_back(rec);
    }
    if (r.flaky) m_summary.flaky.push_back(rec);
    // pcr's own work (the compose teardown) is not among the tests to speed up.
    const bool own = job.step && job.step->step && job.step->step->own;
    auto& slow = m_summary.slowest;
    if (!own) slow.push_back(std::move(rec));
    std::stable_sort(slow.begin(), slow.end(),
                     [](const JobRecord& a, const JobRecord& b) { return a.result.duration > b.result.duration; });
    if (slow.size() > m_options.slowest) slow.pop_back();
  }
  maybe_go_live();
  redraw_status();
  m_options.sink->release();
}

void Console::step_finished(const pipeline::StepInfo& step, const pipeline::StepResult& r) {
  m_summary.steps.push_back({step, r});
  if (r.outcome != pipeline::StepOutcome::skipped && !r.error.empty())
    write(m_style.red(util::visible(r.error, true)) + "\n");
  // How well the pool was balanced: for a step that ran its course (cut short, its bound
  // would count only the work done).
  if (step.step && step.step->form == pipeline::Form::for_each && step.workers > 1 && step.jobs > 1 &&
      r.outcome != pipeline::StepOutcome::interrupted && r.cancelled == 0) {
    m_busy.resize(step.workers, Millis(0));
    std::string report = straggler_report(m_busy, r.duration, m_longest);
    if (!report.empty()) write(m_style.dim(report) + "\n");
  }
  m_busy.clear();
  m_longest = Millis(0);
  m_step = nullptr;
  m_live = nullptr;
  m_running.clear();
}

void Console::run_finished(const pipeline::RunResult& run) {
  m_summary.run = run;
  if (m_options.final_word) {
    auto [code, why] = m_options.final_word(run);
    m_summary.run.exit_code = code;
    m_summary.failure = why;
  }
  // The slowest list only helps when there is more than a handful of jobs to compare.
  size_t jobs = 0;
  for (const auto& s : m_summary.steps)
    if (!(s.info.step && s.info.step->own)) jobs += s.info.jobs;  // pcr's own steps are not compared
  if (jobs <= 1) m_summary.slowest.clear();
  // Names masked before the table is laid out: a column padded to a secret's own length
  // would tell it.
  Summary shown = m_summary;
  for (auto& step : shown.steps) step.info.name = m_secrets.mask(step.info.name);
  write("\n" + summary(shown, m_style));
}

void Console::host_down(const pipeline::HostEvent& e) {
  m_summary.hosts_down.push_back(e);
  write(m_style.yellow("pcr: " + host_down_line(e)) + "\n");
}

void Console::note(const pipeline::Note& note) {
  write(m_style.yellow(fmt::format("pcr: {}", util::visible(note_text(note), true))) + "\n");
  if (note.kind == pipeline::NoteKind::suspended) {
    // pcr stops next: what it said shows before the shell's prompt, not after `fg`.
    m_options.sink->release();
    m_options.sink->drain(std::chrono::milliseconds(500));
  }
}

void Console::status(const std::vector<pipeline::JobProgress>& jobs) {
  std::string out = m_style.yellow(fmt::format("pcr: status: {} job{} running{}", jobs.size(), jobs.size() == 1 ? "" : "s",
                                               m_step ? fmt::format(" in step {} ({} of {} done)", util::visible(m_step->name),
                                                                    m_done, m_step->jobs)
                                                      : "")) +
                    "\n";
  for (const auto& p : jobs) out += progress_text(*p.job, p, m_style);
  write(out);
}

void Console::job_slow(const pipeline::JobProgress& p) {
  write(m_style.yellow("SLOW ") + slow_line(*p.job, p) + "\n");
}

void Console::tick() {
  m_elapsed += Millis(1000);
  m_options.sink->release();  // a quiet second: what the sink held back may show
  if (m_step == nullptr) return;
  m_step_elapsed += Millis(1000);
  estimate_left();
  if (m_options.terminal) {
    redraw_status();
  } else if ((m_live == nullptr || m_live_at_line_start) && m_step_elapsed - m_last_heartbeat >= m_options.heartbeat) {
    m_last_heartbeat = m_step_elapsed;
    write(heartbeat_line(*m_step, m_done, m_step_elapsed, running_jobs(), m_left) + "\n");
  }
}

std::vector<RunningJob> Console::running_jobs() const {
  const auto now = std::chrono::steady_clock::now();
  std::vector<RunningJob> out;
  for (const auto& [index, job] : m_running) {
    auto it = m_job_start.find(index);
    out.push_back({index, running_name(*job),
                   it == m_job_start.end() ? Millis(0) : std::chrono::duration_cast<Millis>(now - it->second)});
  }
  return out;
}

// Once a second, not at every redraw: it walks the step's jobs.
void Console::estimate_left() {
  m_left.reset();
  if (m_step == nullptr) return;
  std::vector<std::size_t> queued;
  for (std::size_t i = 0; i < m_finished.size(); ++i)
    if (!m_finished[i] && m_running.count(i) == 0) queued.push_back(i);
  m_left = time_left(m_step->expected, running_jobs(), queued, m_step->at_once ? m_step->at_once : m_step->workers);
}

void Console::redraw_status() {
  // Never inside a live job's unfinished line: "\r\x1b[K" would erase it.
  if (!m_options.terminal || m_step == nullptr || (m_live != nullptr && !m_live_at_line_start)) return;
  const size_t width = m_options.width > 1 ? m_options.width - 1 : 1;
  const std::string line = m_style.dim(status_line(*m_step, m_done, running_jobs(), m_step_elapsed, m_left, width));
  erase_status();
  m_options.sink->write(m_secrets.active() ? m_secrets.mask_cut(line) : line);
  m_status_shown = true;
}

}  // namespace pcr::report
