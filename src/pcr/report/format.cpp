#include <pcr/report/format.hpp>
#include <pcr/util/text.hpp>

#include <fmt/format.h>

#include <string.h>

#include <algorithm>
#include <filesystem>
#include <functional>

namespace pcr::report {

namespace {
// Text from the pipeline file, items or job results, safe for a terminal: control
// characters shown as escapes (`\e`, `\x07`), never obeyed.
std::string v(std::string_view text) { return util::visible(text); }
}  // namespace

using pipeline::JobStatus;
using pipeline::StepOutcome;
using util::format_duration;

std::string Style::paint(std::string_view code, std::string_view text) const {
  if (!color) return std::string(text);
  return fmt::format("\x1b[{}m{}\x1b[0m", code, text);
}

std::string signal_name(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev ? fmt::format("SIG{}", abbrev) : fmt::format("signal {}", sig);
}

std::string host_counts(const std::vector<std::string>& worker_hosts) {
  std::vector<std::pair<std::string, unsigned>> counts;
  for (const auto& h : worker_hosts) {
    auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return c.first == h; });
    if (it == counts.end()) counts.emplace_back(h, 1);
    else ++it->second;
  }
  std::string out;
  for (const auto& [h, n] : counts) out += fmt::format("{}{}: {}", out.empty() ? "" : ", ", h, n);
  return out;
}

std::string host_down_line(const pipeline::HostEvent& e) {
  std::string where = e.address.empty() ? e.name : fmt::format("{} ({})", e.name, e.address);
  if (e.at_start)
    return fmt::format("host {} does not answer: {}; left out ({} host{} left)", where, e.reason, e.hosts_left,
                       e.hosts_left == 1 ? "" : "s");
  return fmt::format("host {} stopped answering during {}: {}; quarantined, its jobs run again on the other host{} "
                     "({} left)",
                     where, e.step.empty() ? "the run" : "step " + e.step, e.reason, e.hosts_left == 1 ? "" : "s",
                     e.hosts_left);
}

std::string banner(const pipeline::StepInfo& step, const Style& style) {
  std::string where = fmt::format("{} {}/{}", step.cleanup ? "cleanup" : "step", step.index, step.of);
  std::string shape = fmt::format("{} job{} on {} worker{}", step.jobs, step.jobs == 1 ? "" : "s",
                                  step.workers, step.workers == 1 ? "" : "s");
  if (!step.worker_hosts.empty()) shape += " (" + host_counts(step.worker_hosts) + ")";
  return style.bold(fmt::format("━━ {}: {}", where, v(step.name))) + style.dim(" — " + shape);
}

std::string test_counts(const results::Results& t) {
  std::string out = fmt::format("{} test{}", t.tests.size(), t.tests.size() == 1 ? "" : "s");
  if (t.failed()) out += fmt::format(", {} failed", t.failed());
  if (t.skipped()) out += fmt::format(", {} skipped", t.skipped());
  if (t.todo()) out += fmt::format(", {} todo", t.todo());
  return out;
}

std::string describe(const pipeline::JobResult& r, unsigned attempt) {
  std::string words;
  switch (r.status) {
    case JobStatus::passed:
      words = r.flaky ? fmt::format("passed on retry {} (flaky{})", attempt,
                                    r.flaky_fails ? ": a failure with --fail-on-flaky" : "")
              : r.skipped ? "skipped"
                          : "passed";
      break;
    case JobStatus::failed:
      // Exit code 0 and failed by its tests: the counts below say why.
      words = r.exit_code == 0 && r.tests ? std::string("failed")
                                          : fmt::format("failed with exit code {}", r.exit_code);
      break;
    case JobStatus::signalled:
      words = fmt::format("killed by signal {} ({})", r.signal, signal_name(r.signal));
      break;
    case JobStatus::timed_out:
      words = fmt::format("timed out after {}", util::format_duration_spec(r.limit));
      break;
    case JobStatus::idle_timeout:
      words = fmt::format("no output for {} (idle timeout)", util::format_duration_spec(r.limit));
      break;
    case JobStatus::unexpected_output:
      words = "unexpected output";
      break;
    case JobStatus::cancelled:
      words = "cancelled";
      break;
    case JobStatus::not_started:
      words = "could not start";
      break;
  }
  if (r.infrastructure) return fmt::format("lost with its host ({}): {}", words, v(r.detail));
  if (r.tests && r.tests->unreadable.empty() && !r.skipped) words += " (" + test_counts(*r.tests) + ")";
  if (!r.detail.empty()) words += ": " + v(r.detail);
  if (r.leftovers > 0)
    words += fmt::format(" ({} leftover process{} killed)", r.leftovers, r.leftovers == 1 ? "" : "es");
  if (r.will_retry) words += ", retrying";
  return words;
}

namespace {
std::string mark(const pipeline::JobResult& r, const Style& style) {
  if (r.status == JobStatus::passed && r.skipped) return style.dim("-");
  if (r.status == JobStatus::passed) return r.flaky ? style.yellow("✓") : style.green("✓");
  if (r.status == JobStatus::cancelled) return style.yellow("-");
  if (r.will_retry) return style.yellow("↻");
  return style.red("✗");
}

// Where the job ran: its worker, host and cluster, when the step has more than one.
std::string where(const pipeline::JobInfo& job) {
  const std::string at = job.host.empty() ? "" : " @" + job.host;
  if (job.kind == pipeline::JobKind::job && (job.step == nullptr || (job.step->jobs <= 1 && at.empty()))) return "";
  return fmt::format(" [n={}{}]", job.worker, at);
}
}  // namespace

// A command on a console line: whole up to a few lines' worth, since one with all its
// items can be megabytes (the JSON and JUnit reports and --log-dir keep it whole).
static std::string shown_command(const std::string& command) { return util::elide(v(command), 300); }

std::string job_name(const pipeline::JobInfo& job) {
  if (!job.name.empty()) return job.name;
  if (job.kind == pipeline::JobKind::setup) return "setup";
  if (job.kind == pipeline::JobKind::teardown) return "teardown";
  return job.command;  // a caller that set no name (a test's own JobInfo)
}

// The command after the name, dimmed, where the name does not say what ran (a `parallel:`
// job, a set-up); never for a for_each job, whose item is what it tests and whose command
// may be a wrapper around it.
static std::string command_after(const pipeline::JobInfo& job, const Style& style) {
  if (!job.items.empty() || job.command == job_name(job)) return "";
  return "  " + style.dim(shown_command(job.command));
}

std::string job_line(const pipeline::JobInfo& job, const pipeline::JobResult& r, const Style& style) {
  std::string words = describe(r, job.attempt);
  std::string painted = r.status == JobStatus::passed ? (r.flaky ? style.yellow(words) : words)
                        : r.status == JobStatus::cancelled || r.will_retry ? style.yellow(words)
                                                                           : style.red(words);
  return fmt::format("{} {} {} {}{}{}", mark(r, style), painted, style.dim(format_duration(r.duration)),
                     util::elide(v(job_name(job)), 120), style.dim(where(job)), command_after(job, style));
}

std::string live_line(const pipeline::JobInfo& job, const Style& style) {
  return style.dim(fmt::format("▶ {}{}", util::elide(v(job_name(job)), 120), where(job))) + command_after(job, style);
}

// Whether job name `name` is its step's own: the step's only job, or `step #n`.
static bool names_its_step(const std::string& name, const std::string& step) {
  return name == step || (name.rfind(step + " #", 0) == 0);
}

std::string saved_text(const pipeline::JobResult& r, const Style& style) {
  if (r.saved_dir.empty()) return "";
  std::string names;
  for (const auto& f : r.saved_files) names += (names.empty() ? "" : ", ") + std::filesystem::path(f).filename().string();
  std::string out = style.dim("    saved: ") + v(r.saved_dir) + style.dim(" (" + v(names) + ")") + "\n";
  for (const auto& line : util::split_lines(r.saved_summary))
    out += "    " + (line.rfind("  │", 0) == 0 ? style.dim(v(line)) : style.red(v(line))) + "\n";
  return out;
}

std::string progress_text(const pipeline::JobInfo& job, const pipeline::JobProgress& p, const Style& style) {
  std::string out = fmt::format("  {}{}{}{} · running {}{}\n", util::elide(v(job_name(job)), 120), where(job),
                                job.step ? " in " + v(job.step->name) : "",
                                job.project.empty() ? "" : " · cluster " + v(job.project), format_duration(p.age),
                                p.left ? fmt::format(", {} to its timeout", format_duration(*p.left)) : "");
  for (const auto& line : util::split_lines(p.tail)) out += style.dim("    │ ") + v(line) + "\n";
  return out;
}

std::string slow_line(const pipeline::JobInfo& job, const pipeline::JobProgress& p) {
  const auto lines = util::split_lines(p.tail);
  return fmt::format("{}{}{} still running after {}{}", util::elide(v(job_name(job)), 120), where(job),
                     job.step ? " in " + v(job.step->name) : "", format_duration(p.age),
                     lines.empty() ? "" : " · last: " + util::elide(v(lines.back()), 100));
}

std::string running_name(const pipeline::JobInfo& job) { return util::elide(v(job_name(job)), 40); }

std::optional<Millis> time_left(const std::vector<Millis>& expected, const std::vector<RunningJob>& running,
                                const std::vector<std::size_t>& queued, unsigned workers) {
  auto recorded = [&](std::size_t i) { return i < expected.size() ? expected[i] : Millis(0); };
  std::vector<Millis> known;
  for (const auto& e : expected)
    if (e > Millis(0)) known.push_back(e);
  bool any = false;
  for (const auto& r : running) any = any || recorded(r.index) > Millis(0);
  for (std::size_t i : queued) any = any || recorded(i) > Millis(0);
  if (!any) return std::nullopt;
  std::sort(known.begin(), known.end());
  const Millis median = known[known.size() / 2];
  auto estimate = [&](std::size_t i) { return recorded(i) > Millis(0) ? recorded(i) : median; };
  // Each worker's time until it is free: a running job's remaining time (none once it
  // has run past its record), or 0.
  std::vector<Millis> free_at(std::max<std::size_t>({workers, running.size(), 1}), Millis(0));
  for (std::size_t w = 0; w < running.size(); ++w)
    free_at[w] = std::max(estimate(running[w].index) - running[w].elapsed, Millis(0));
  std::vector<Millis> rest;
  for (std::size_t i : queued) rest.push_back(estimate(i));
  std::sort(rest.begin(), rest.end(), std::greater<>());
  for (const Millis d : rest) *std::min_element(free_at.begin(), free_at.end()) += d;
  return *std::max_element(free_at.begin(), free_at.end());
}

namespace {

// "~40s left": whole seconds, rounded up, so a last second does not read "~0s".
std::string left_words(Millis left) {
  const long long s = (left.count() + 999) / 1000;
  return fmt::format("~{} left", s < 60 ? fmt::format("{}s", std::max(s, 1LL)) : format_duration(Millis(s * 1000)));
}

// The running jobs, longest running first.
std::vector<const RunningJob*> by_elapsed(const std::vector<RunningJob>& running) {
  std::vector<const RunningJob*> out;
  for (const auto& r : running) out.push_back(&r);
  std::stable_sort(out.begin(), out.end(), [](const RunningJob* a, const RunningJob* b) { return a->elapsed > b->elapsed; });
  return out;
}

}  // namespace

std::string status_line(const pipeline::StepInfo& step, size_t done, const std::vector<RunningJob>& running,
                        Millis elapsed, std::optional<Millis> left, size_t width) {
  std::string line = fmt::format("[{} {}/{} {}] {} of {} jobs done, {} running, {}",
                                 step.cleanup ? "cleanup" : "step", step.index, step.of, v(step.name), done,
                                 step.jobs, running.size(), format_duration(elapsed));
  if (left) line += ", " + left_words(*left);
  std::string names;
  for (const RunningJob* r : by_elapsed(running))
    names += fmt::format("{}{} {}", names.empty() ? " · " : ", ", r->name, format_duration(r->elapsed));
  return util::elide(line + names, width);
}

std::string heartbeat_line(const pipeline::StepInfo& step, size_t done, Millis elapsed,
                           const std::vector<RunningJob>& running, std::optional<Millis> left) {
  std::string line = fmt::format("… {}: running for {}, {} of {} jobs done", v(step.name), format_duration(elapsed),
                                 done, step.jobs);
  if (left) line += ", " + left_words(*left);
  const auto sorted = by_elapsed(running);
  constexpr std::size_t k_named = 4;
  for (std::size_t i = 0; i < sorted.size() && i < k_named; ++i)
    line += fmt::format("{}{} ({})", i == 0 ? "; running " : ", ", sorted[i]->name, format_duration(sorted[i]->elapsed));
  if (sorted.size() > k_named) line += fmt::format(" and {} more", sorted.size() - k_named);
  return line;
}

std::string interrupted_verdict(const pipeline::RunResult& run) {
  if (run.supervisor_gone) return "INTERRUPTED: pcr's supervisor process died";
  return fmt::format("INTERRUPTED by {}", signal_name(run.signal));
}

std::string note_text(const pipeline::Note& n) {
  using pipeline::NoteKind;
  switch (n.kind) {
    case NoteKind::spool_unavailable: return "cannot create a spool folder " + n.detail;
    case NoteKind::timings_unreadable: return n.detail;
    case NoteKind::timings_not_saved: return "could not save the timings: " + n.detail;
    case NoteKind::record_not_saved: return "could not save what failed, for --rerun-failed: " + n.detail;
    case NoteKind::shard:
      return fmt::format("shard {} of {}: running this shard's share of every for_each step", n.index, n.total);
    case NoteKind::shared_queue:
      return fmt::format("{}: {} of its {} job(s) ran here, the others on the build's other machines ({}; "
                         "`pcr report --queue` gives the whole build's result)",
                         n.step, n.count, n.total, n.detail);
    case NoteKind::supervisor_gone:
      return "pcr's supervisor process is gone (killed?): stopping the jobs and cleaning up";
    case NoteKind::pipeline_timeout:
      return fmt::format("the pipeline's timeout of {} expired: stopping the running jobs",
                         util::format_duration_spec(n.limit));
    case NoteKind::interrupted:
      return n.again ? fmt::format("{} again: killing the running jobs now", n.signal)
                     : fmt::format("{}: stopping the running jobs, then cleanup (again to kill at once)", n.signal);
    case NoteKind::interrupted_in_cleanup:
      return n.again ? fmt::format("{}: killing the current cleanup jobs", n.signal)
                     : fmt::format("{} during cleanup: finishing cleanup (again to kill the current cleanup jobs)",
                                   n.signal);
    case NoteKind::hosts_answering: {
      std::string hosts;
      for (const auto& h : n.hosts) hosts += (hosts.empty() ? "" : ", ") + h;
      return "hosts that answer: " + hosts;
    }
    case NoteKind::no_host_answers: return "no host answers: the steps are skipped";
    case NoteKind::host_required: return "--require-all-hosts: a host does not answer: the steps are skipped";
    case NoteKind::worker_moved: return fmt::format("worker {} moves from host {} to host {}", n.worker, n.from, n.to);
    case NoteKind::orphans_killed:
      return fmt::format("killed {} process(es) left behind by jobs (setsid or daemons)", n.count);
    case NoteKind::after_job_failed:
      return fmt::format("{} #{}: could not stop what the job started outside pcr (inside a container){}{}", n.step,
                         n.job, n.timed_out ? ": timed out" : "", n.detail.empty() ? "" : ":\n" + n.detail);
    case NoteKind::capture_not_exported: return fmt::format("{}: {}", n.step, n.detail);
    case NoteKind::items_filtered:
      return fmt::format("{}: running {} of its {} item{} ({})", n.step, n.count, n.total, n.total == 1 ? "" : "s",
                         n.detail);
    case NoteKind::suspended:
      return fmt::format("stopped: {} running job{} paused (fg or bg resumes; timeouts do not run meanwhile)",
                         n.count, n.count == 1 ? "" : "s");
    case NoteKind::resumed:
      return fmt::format("resumed after {} stopped", format_duration(n.limit));
  }
  return "";
}

std::string_view note_kind(pipeline::NoteKind kind) {
  using pipeline::NoteKind;
  switch (kind) {
    case NoteKind::spool_unavailable: return "spool_unavailable";
    case NoteKind::timings_unreadable: return "timings_unreadable";
    case NoteKind::timings_not_saved: return "timings_not_saved";
    case NoteKind::record_not_saved: return "record_not_saved";
    case NoteKind::shard: return "shard";
    case NoteKind::shared_queue: return "shared_queue";
    case NoteKind::supervisor_gone: return "supervisor_gone";
    case NoteKind::pipeline_timeout: return "pipeline_timeout";
    case NoteKind::interrupted: return "interrupted";
    case NoteKind::interrupted_in_cleanup: return "interrupted_in_cleanup";
    case NoteKind::hosts_answering: return "hosts_answering";
    case NoteKind::no_host_answers: return "no_host_answers";
    case NoteKind::host_required: return "host_required";
    case NoteKind::worker_moved: return "worker_moved";
    case NoteKind::orphans_killed: return "orphans_killed";
    case NoteKind::after_job_failed: return "after_job_failed";
    case NoteKind::capture_not_exported: return "capture_not_exported";
    case NoteKind::items_filtered: return "items_filtered";
    case NoteKind::suspended: return "suspended";
    case NoteKind::resumed: return "resumed";
  }
  return "";
}

std::string straggler_report(const std::vector<Millis>& busy, Millis makespan, Millis longest) {
  if (busy.size() < 2) return "";
  long long total = 0;
  std::string per_worker;
  for (size_t w = 0; w < busy.size(); ++w) {
    total += busy[w].count();
    per_worker += fmt::format("{}n={} {}", w ? ", " : "", w + 1, format_duration(busy[w]));
  }
  long long bound = std::max<long long>(total / static_cast<long long>(busy.size()), longest.count());
  std::string ratio = bound > 0 ? fmt::format(" ({:.2f}×)", static_cast<double>(makespan.count()) / bound) : "";
  return fmt::format("workers busy: {}; makespan {} against a lower bound of {}{}", per_worker,
                     format_duration(makespan), format_duration(Millis(bound)), ratio);
}

std::string summary(const Summary& s, const Style& style) {
  std::string out = style.bold("━━ summary") + "\n";
  bool cleanup_header = false;
  for (const auto& rec : s.steps) {
    if (rec.info.cleanup && !cleanup_header) {
      out += "  cleanup:\n";
      cleanup_header = true;
    }
    std::string outcome;
    std::string m;
    switch (rec.result.outcome) {
      case StepOutcome::passed:
        m = style.green("✓");
        outcome = "passed";
        break;
      case StepOutcome::failed:
        m = style.red("✗");
        outcome = style.red(fmt::format("failed{}", rec.result.failed > 0 ? fmt::format(
                                                                                 " ({} of {} jobs)",
                                                                                 rec.result.failed,
                                                                                 rec.info.jobs)
                                                                           : ""));
        break;
      case StepOutcome::skipped:
        m = style.dim("-");
        outcome = style.dim("skipped");
        break;
      case StepOutcome::interrupted:
        m = style.yellow("!");
        outcome = style.yellow("interrupted");
        break;
    }
    std::string extra;
    if (rec.result.flaky > 0) extra += style.yellow(fmt::format(", {} flaky", rec.result.flaky));
    std::string dur = rec.result.outcome == StepOutcome::skipped ? "" : format_duration(rec.result.duration);
    out += fmt::format("  {} {:<30} {}{} {}\n", m, util::elide(v(rec.info.name), 30), outcome, extra,
                       style.dim(dur));
    if (!rec.result.error.empty()) {
      for (const auto& line : util::split_lines(rec.result.error)) out += "      " + style.red(v(line)) + "\n";
    }
  }
  auto job_title = [&](const JobRecord& j) {
    const std::string name = j.name.empty() ? j.command : j.name;
    // "step › name", unless the name is the step's own ("lint", "load #3").
    const std::string step = names_its_step(name, j.step) ? "" : v(j.step) + " › ";
    const std::string command = j.itemized || j.command == name ? "" : ": " + shown_command(j.command);
    return fmt::format("{}{} [n={}]: {}{}", step, util::elide(v(name), 120), j.worker, describe(j.result, j.attempt),
                       command);
  };
  if (!s.failed.empty()) {
    out += style.bold("failed jobs:") + "\n";
    for (const auto& j : s.failed) {
      out += "  " + style.red("✗ " + job_title(j)) + "\n";
      // Its failed tests first, with the lines under them: what to read before the tail.
      if (j.result.tests) {
        std::size_t shown = 0;
        for (const auto& t : j.result.tests->tests) {
          if (t.outcome != results::Outcome::failed) continue;
          if (++shown > 20) {
            out += style.dim(fmt::format("    … and {} more failed tests\n", j.result.tests->failed() - 20));
            break;
          }
          out += "    " + style.red("✗ " + v(t.name)) + (t.reason.empty() ? "" : style.dim(": " + v(t.reason))) + "\n";
          std::size_t lines = 0;
          for (const auto& line : util::split_lines(t.details))
            if (++lines <= 8) out += style.dim("        ") + v(line) + "\n";
        }
      }
      for (const auto& line : util::split_lines(j.tail)) out += style.dim("    │ ") + v(line) + "\n";
      out += saved_text(j.result, style);
    }
  }
  if (!s.hosts_down.empty()) {
    out += style.bold("hosts that did not answer:") + "\n";
    for (const auto& h : s.hosts_down) out += "  " + style.yellow("! " + host_down_line(h)) + "\n";
    for (const auto& j : s.lost) out += "    " + style.yellow("↻ " + job_title(j)) + "\n";
  }
  if (!s.flaky.empty()) {
    out += style.bold("flaky jobs (passed on a retry):") + "\n";
    for (const auto& j : s.flaky) out += "  " + style.yellow("✓ " + job_title(j)) + "\n";
  }
  if (!s.slowest.empty()) {
    out += style.bold("slowest jobs:") + "\n";
    for (const auto& j : s.slowest)
      out += fmt::format("  {:>8}  {}{}\n", format_duration(j.result.duration),
                         names_its_step(j.name, j.step) ? "" : v(j.step) + " › ",
                         util::elide(v(j.name.empty() ? j.command : j.name), 80));
  }
  if (s.tests.jobs > 0) {
    const auto& t = s.tests;
    std::string counts = fmt::format("{} passed", t.passed);
    if (t.failed) counts += ", " + style.red(fmt::format("{} failed", t.failed));
    if (t.skipped) counts += fmt::format(", {} skipped", t.skipped);
    if (t.todo) counts += fmt::format(", {} todo", t.todo);
    if (t.skipped_jobs) counts += fmt::format("; {} job{} skipped as a whole", t.skipped_jobs, t.skipped_jobs == 1 ? "" : "s");
    out += style.bold("tests:") + " " + counts + style.dim(fmt::format(" (from {} job{})", t.jobs, t.jobs == 1 ? "" : "s")) + "\n";
  }
  const auto& run = s.run;
  std::string verdict;
  if (run.signal != 0)
    verdict = style.yellow(interrupted_verdict(run));
  else if (!s.failure.empty())
    verdict = style.red("FAILED: " + util::visible(s.failure));
  else if (run.exit_code == 0)
    verdict = style.green("PASSED");
  else if (run.timed_out)
    verdict = style.red("FAILED (pipeline timeout)");
  else
    verdict = style.red("FAILED");
  out += fmt::format("{} in {} (exit {})\n", style.bold(verdict), format_duration(run.duration), run.exit_code);
  return out;
}

}  // namespace pcr::report

namespace pcr::report {

std::string plan_text(const pipeline::Pipeline& p, const std::vector<pipeline::PlannedStep>& plan,
                      const Style& style) {
  size_t steps = 0, cleanup = 0;
  for (const auto& s : plan) (s.cleanup ? cleanup : steps)++;
  std::string out = style.bold(fmt::format("pipeline{}: {} step{}, {} cleanup step{}",
                                           p.name.empty() ? "" : " " + v(p.name), steps, steps == 1 ? "" : "s",
                                           cleanup, cleanup == 1 ? "" : "s"));
  if (p.timeout) out += fmt::format(", timeout {}", util::format_duration_spec(*p.timeout));
  out += "\n";
  if (!p.hosts.empty()) {
    out += style.bold("hosts") + style.dim(" — probed before the first step; workers spread by capacity") + "\n";
    for (const auto& h : p.hosts)
      out += fmt::format("  {:<12} {} worker{}  {}\n", h.name, h.workers, h.workers == 1 ? " " : "s", h.address);
  }
  size_t si = 0, ci = 0;
  for (const auto& s : plan) {
    size_t index = s.cleanup ? ++ci : ++si;
    std::string head = fmt::format("{} {}/{}: {}", s.cleanup ? "cleanup" : "step", index,
                                   s.cleanup ? cleanup : steps, v(s.name));
    // Items only the run knows: as many workers as their jobs need, up to the pool.
    std::string shape = s.workers_bound
                            ? fmt::format("up to {} worker{}", s.workers, s.workers == 1 ? "" : "s")
                            : fmt::format("{} job{} on {} worker{}", s.jobs.size(),
                                          s.jobs.size() == 1 ? "" : "s", s.workers,
                                          s.workers == 1 ? "" : "s");
    // Options worth seeing before a run.
    const pipeline::Step* step = s.step;
    if (step != nullptr) {
      const auto& o = step->options;
      if (o.timeout) shape += o.timeout->count() == 0 ? ", no timeout" : ", timeout " + util::format_duration_spec(*o.timeout);
      if (o.idle_timeout) shape += ", idle timeout " + util::format_duration_spec(*o.idle_timeout);
      if (o.retries) shape += fmt::format(", {} retr{}", o.retries, o.retries == 1 ? "y" : "ies");
      if (o.fail_fast) shape += ", fail fast";
      if (!o.capture.empty()) shape += ", captures " + o.capture;
    }
    if (step != nullptr && step->per_host) shape += ", once per host";
    out += style.bold(head) + style.dim(" — " + shape) + "\n";
    if (!s.worker_hosts.empty()) {
      std::string where;
      for (size_t w = 0; w < s.worker_hosts.size(); ++w)
        where += fmt::format("{}n={} {}", where.empty() ? "" : ", ", w + 1, s.worker_hosts[w]);
      out += "  " + style.dim("workers: " + where) + "\n";
    }
    if (!s.note.empty()) out += "  " + v(s.note) + "\n";
    for (const auto& j : s.jobs) {
      std::string who = j.worker ? fmt::format("n={}", j.worker) : "n=?";
      if (!j.host.empty()) who += " @" + j.host;
      out += fmt::format("  #{:<3} {:<5} {}\n", j.job, who, v(j.command));
    }
  }
  return out;
}

}  // namespace pcr::report
