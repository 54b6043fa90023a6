#include <pcr/pipeline/step_job.hpp>
#include <pcr/results/junit.hpp>
#include <pcr/results/tap.hpp>
#include <pcr/util/escape.hpp>
#include <pcr/util/glob.hpp>
#include <pcr/util/io.hpp>
#include <pcr/util/text.hpp>

#include <fmt/format.h>

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

// What a step keeps of its jobs: their progress (SIGUSR1, `slow:`), their outcome for
// `--rerun-failed`, their timings, captures and test results, and what extensions saved
// about a failed one.

namespace pcr::pipeline {

namespace {
// The most of a file an extension saved that pcr reads to mask (its logs are tails).
constexpr std::size_t k_max_saved_file = 8u << 20;
}  // namespace

JobProgress StepRun::progress(std::size_t index) const {
  const Job& job = m_jobs[index];
  JobProgress p;
  p.job = &job.info;
  p.age = std::chrono::duration_cast<Millis>(proc::Clock::now() - job.started_at);
  if (const auto timeout = m_step.options.timeout; timeout && timeout->count() > 0)
    p.left = std::max(Millis(0), *timeout - p.age);
  // The spool is masked as it is written; one kept only as a tail in memory, or not at
  // all, has nothing to show yet.
  p.tail = util::tail_lines(job.info.spool, 5);
  return p;
}

std::vector<JobProgress> StepRun::running() const {
  std::vector<JobProgress> out;
  for (std::size_t i = 0; i < m_jobs.size(); ++i)
    if (m_jobs[i].running) out.push_back(progress(i));
  return out;
}

// What the step leaves for the next `--rerun-failed`: whether it passed and, for a
// for_each step, the items whose jobs did not pass (failed, cancelled, never started). A
// step that could not list its items is left out: it counts as never run, so it reruns
// whole. A filtered run merges into the last record (what it did not run is unchanged).
void StepRun::record_outcome(bool failed) {
  if (m_info.cleanup || m_step.own) return;
  if (!m_result.error.empty() && m_jobs.empty()) return;
  StepRecord r;
  r.for_each = m_step.form == Form::for_each;
  const RunOptions& o = m_run.options;
  const bool merge = (o.rerun_failed || !o.only.empty()) && o.last_run;
  if (merge && r.for_each) {
    auto it = o.last_run->steps.find(m_step.name);
    if (it != o.last_run->steps.end()) r.not_passed = it->second.not_passed;
  }
  for (const auto& job : m_jobs)
    for (const auto& item : job.plan.items) {
      if (job.passed)
        r.not_passed.erase(item);
      else
        r.not_passed.insert(item);
    }
  r.passed = !failed && r.not_passed.empty();
  m_run.outcome.steps[m_step.name] = std::move(r);
}

// A captured variable is exported to later jobs when the kernel lets a process start with
// it: one variable ("VAR=value") holds at most 128 KiB, and all of a process's arguments
// and environment share one bound (a quarter of its stack limit, 2 MiB by default). Past
// half of that, or a variable past its own bound, every later job — cleanup too — would
// fail to start ("Argument list too long"); such a capture is kept for `for_each: {lines:
// VAR}` only, and the run says so.
void StepRun::export_capture(const std::string& var, const std::vector<std::string>& lines) {
  constexpr std::size_t k_variable = max_env_variable_bytes;
  constexpr std::size_t k_all = 1u << 20;         // of every exported capture
  std::string joined;
  for (const auto& l : lines) {
    if (joined.size() > k_all) break;  // too big either way: no need to join it all
    joined += (joined.empty() ? "" : "\n") + l;
  }
  m_run.exported.erase(var);
  std::size_t others = 0;
  for (const auto& [name, value] : m_run.exported) others += name.size() + value.size() + 2;
  const std::size_t size = var.size() + joined.size() + 2;
  if (size <= k_variable && others + size <= k_all) {
    m_run.exported[var] = std::move(joined);
    return;
  }
  std::size_t bytes = 0;
  for (const auto& l : lines) bytes += l.size() + 1;
  Note n(NoteKind::capture_not_exported,
         fmt::format("{} is not exported to later jobs: its {} lines ({} bytes) are more than {}; "
                     "`for_each: {{lines: {}}}` still takes them",
                     var, lines.size(), bytes > 0 ? bytes - 1 : 0,
                     size > k_variable ? "the 128 KiB one environment variable may hold"
                                       : "the 1 MiB all captured variables may hold together",
                     var));
  n.step = m_info.name;
  m_run.observer.note(n);
}

// Where what the extensions save about job (or task) `name` goes, or "".
std::string StepRun::saved_dir_for(const std::string& name, unsigned worker, unsigned attempt) const {
  if (m_run.saved_dir.empty() || !extended(m_step)) return "";
  // Names come from items: masked before they become a path.
  const util::Masker mask(m_run.options.secrets);
  return fmt::format("{}/{}/{}-n{}{}", m_run.saved_dir, util::slug(mask.mask(m_info.name), 40),
                     util::slug(mask.mask(name), 60), worker, attempt > 0 ? fmt::format(".try{}", attempt + 1) : "");
}

// The extensions' commands that save what they know of a job that ended (its services'
// logs), to run first, while its world is as the job left it.
std::string StepRun::collect_command(const JobContext& ctx, bool failed, const std::string& dir) const {
  std::string command;
  if (dir.empty()) return command;
  for (const auto& ext : m_run.pipeline.extensions)
    if (ext.collect)
      if (auto c = ext.collect(ctx, failed, dir)) command += (command.empty() ? "" : "; ") + *c;
  return command;
}

// What the extensions saved in `dir`, masked in place (a service may log a secret), into
// `r`: the folder, its files, and what to read first about the job of `ctx` that started
// at `started`.
void StepRun::take_saved(const std::string& dir, const JobContext& ctx, std::chrono::system_clock::time_point started,
                         JobResult& r) const {
  std::error_code ec;
  if (dir.empty() || !std::filesystem::is_directory(dir, ec)) return;
  const util::Masker mask(m_run.options.secrets);
  std::vector<std::string> files;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec)) files.push_back(it->path().string());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    // Bounded by the extension (a tail of each log); a file past that is cut, not read whole.
    auto text = util::read_file(f, k_max_saved_file);
    if (!text) continue;
    const std::string masked = util::valid_utf8(mask.mask(*text));
    if (masked != *text) util::replace_file(f, masked);
  }
  r.saved_dir = dir;
  r.saved_files = std::move(files);
  for (const auto& ext : m_run.pipeline.extensions)
    if (ext.summarize) r.saved_summary += mask.mask(ext.summarize(ctx, dir, started));
}

// What a job took, for the next run's queue order: per item for for_each jobs.
void StepRun::record_timing(const Job& job, const JobResult& r) {
  if (r.status == JobStatus::cancelled || r.status == JobStatus::not_started) return;
  const auto ms = static_cast<std::int64_t>(r.duration.count());
  if (m_step.form == Form::for_each) {
    if (job.plan.items.empty()) return;
    const auto each = ms / static_cast<std::int64_t>(job.plan.items.size());
    for (const auto& item : job.plan.items) m_run.timings.record(m_info.name, item, each);
  } else {
    m_run.timings.record(m_info.name, job.info.command, ms);
  }
}

std::string StepRun::junit_pattern(const Job& job) const {
  std::string pattern = m_step.options.results.junit;
  for (const auto& [from, to] : {std::pair<std::string, std::string>{"{job}", std::to_string(job.info.job)},
                                 {"{n}", std::to_string(job.info.worker)}})
    for (auto at = pattern.find(from); at != std::string::npos; at = pattern.find(from, at + to.size()))
      pattern.replace(at, from.size(), to);
  return pattern;
}

std::vector<std::string> StepRun::junit_files(const Job& job, std::string* error) const {
  std::vector<std::string> paths;
  const std::string dir = step_dir(m_run.pipeline, m_step);
  auto matched = util::glob(dir, junit_pattern(job));
  if (!matched) {
    if (error) *error = matched.error();
    return paths;
  }
  for (const auto& m : *matched) paths.push_back(std::filesystem::path(m).is_absolute() ? m : dir + "/" + m);
  return paths;
}

// The job's tests, from its stdout (TAP) or the JUnit files it wrote; a job whose exit
// code and tests disagree fails, saying why.
void StepRun::read_results(const Job& job, JobResult& r) const {
  const ResultsSpec& spec = m_step.options.results;
  results::Results found;
  if (spec.format == ResultsSpec::Format::tap) {
    results::TapParser parser;
    // Chunks, not the whole file: a job may print gigabytes; the parser holds a line.
    std::ifstream in(job.stdout_path, std::ios::binary);
    std::string chunk(64 * 1024, '\0');
    while (in) {
      in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
      parser.feed(std::string_view(chunk.data(), static_cast<std::size_t>(in.gcount())));
    }
    found = parser.finish();
  } else {
    std::string error;
    std::vector<std::string> paths;
    for (const auto& path : junit_files(job, &error)) {
      // Only what this attempt wrote: a report left by an earlier attempt or run is not
      // its result.
      struct stat st {};
      if (::stat(path.c_str(), &st) != 0) continue;
      const auto before = job.junit_before.find(path);
      if (before == job.junit_before.end() || !(before->second == stamp_of(st))) paths.push_back(path);
    }
    if (!error.empty())
      found.unreadable = error;
    else if (paths.empty())
      found.unreadable = fmt::format("no JUnit file matching {} was written by the job", junit_pattern(job));
    if (!paths.empty()) found = results::read_junit(paths);
  }
  auto tests = std::make_shared<results::Results>(std::move(found));
  const results::Results& t = *tests;
  if (!t.unreadable.empty()) {
    add_detail(r, "unreadable results: " + t.unreadable);
    r.status = JobStatus::failed;
  } else if (r.status == JobStatus::passed) {
    if (t.failed() > 0) {
      r.status = JobStatus::failed;  // exit code 0, and the counts say why it failed
    } else if (!t.problem.empty()) {
      add_detail(r, "its tests disagree: " + t.problem);
      r.status = JobStatus::failed;
    } else if (t.skip_all) {
      r.skipped = true;
      if (!t.skip_reason.empty()) add_detail(r, t.skip_reason);  // "skipped: REASON"
    }
  } else if (!t.problem.empty()) {
    add_detail(r, t.problem);
  }
  r.tests = std::move(tests);
}

}  // namespace pcr::pipeline
