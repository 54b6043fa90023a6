#include <pcr/cli/app.hpp>
#include <pcr/cli/split.hpp>
#include <pcr/config/loader.hpp>
#include <pcr/docker/compose.hpp>
#include <pcr/pipeline/engine.hpp>
#include <pcr/proc/runs.hpp>
#include <pcr/proc/supervise.hpp>
#include <pcr/report/console.hpp>
#include <pcr/report/html.hpp>
#include <pcr/report/json_events.hpp>
#include <pcr/report/junit.hpp>
#include <pcr/report/log_dir.hpp>
#include <pcr/report/record.hpp>
#include <pcr/util/duration.hpp>
#include <pcr/util/io.hpp>
#include <pcr/util/shell.hpp>
#include <pcr/util/text.hpp>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <tuple>

#ifndef PCR_VERSION
#define PCR_VERSION "0.0.0"
#endif

namespace pcr::cli {

namespace {

constexpr int k_exit_usage = 2;
constexpr int k_exit_internal = 3;  // pcr itself failed during a run (docs/cli.md)
bool g_run_started = false;

// Lifetime (proc/supervise.hpp): in the engine, the supervisor's pipe and pid.
int g_supervisor_fd = -1;
pid_t g_supervisor = 0;

bool supervision_enabled() {
  const char* v = std::getenv("PCR_SUPERVISOR");  // "0": one process (debugging, strace)
  return !(v && std::string(v) == "0");
}

// Whether pcr's standard output is /dev/null (the character device 1,3), where whatever
// the console writes is gone: `pcr run > /dev/null`.
bool stdout_is_dev_null() {
  struct stat out {}, null {};
  return ::fstat(1, &out) == 0 && S_ISCHR(out.st_mode) && ::stat("/dev/null", &null) == 0 &&
         S_ISCHR(null.st_mode) && out.st_rdev == null.st_rdev;
}

std::string pipeline_dir(const pipeline::Pipeline& p) {
  std::error_code ec;
  return p.base_dir.empty() ? std::filesystem::current_path(ec).string() : p.base_dir;
}

// One line about anything killed runs left here: compose projects, processes, spool
// folders. A killed run that left nothing is forgotten quietly.
void warn_about_leftovers(const pipeline::Pipeline& p, bool keeping) {
  std::size_t projects = 0, processes = 0, spools = 0;
  std::string first;
  const util::Masker mask(config::secret_values(p));
  {
    // Whatever pipeline of the folder runs now: a killed compose run's projects are the
    // folder's leftovers too (`pcr clean` in the folder takes them down). Kept clusters
    // are no one's leftovers: told apart, and not at all to a run that reuses them.
    std::size_t kept = 0;
    std::string first_kept;
    for (const auto& r : docker::leftovers(docker::state_dir(pipeline_dir(p)))) {
      if (r.kept) {
        if (kept++ == 0) first_kept = r.project;
        continue;
      }
      if (projects++ == 0) first = r.project;
    }
    if (kept > 0 && !keeping)
      std::cerr << fmt::format("pcr: {} cluster(s) kept up by `pcr run --keep-clusters` (first: {}); `pcr clean` "
                               "takes them down\n",
                               kept, util::visible(mask.mask(first_kept)));
  }
  const std::string runs = proc::runs_dir(pipeline_dir(p));
  for (const auto& run : proc::dead_runs(runs)) {
    auto left = proc::leftovers_of(run);
    if (left.empty()) {
      proc::remove_run_record(runs, run.run_id);
      continue;
    }
    processes += left.processes.size();
    spools += left.spool_dirs.size();
    if (first.empty()) first = "run " + run.run_id;
  }
  if (projects + processes + spools == 0) return;
  std::vector<std::string> parts;
  if (projects) parts.push_back(fmt::format("{} compose project(s)", projects));
  if (processes) parts.push_back(fmt::format("{} process(es)", processes));
  if (spools) parts.push_back(fmt::format("{} spool folder(s)", spools));
  std::string what;
  for (size_t i = 0; i < parts.size(); ++i)
    what += (i == 0 ? "" : i + 1 == parts.size() ? " and " : ", ") + parts[i];
  std::cerr << fmt::format(
      "pcr: warning: {} left behind by an earlier run (killed, or its host stopped answering; "
      "first: {}); `pcr clean` removes them\n",
      what, util::visible(mask.mask(first)));
}

// The extensions' warnings `pcr check` prints (compose: a fixed container_name or host
// port, which only one worker's cluster can have), once, before anything starts.
void warn_about_isolation(const pipeline::Pipeline& p) {
  const util::Masker mask(config::secret_values(p));
  for (const auto& ext : p.extensions)
    if (ext.check)
      for (const auto& warning : ext.check()) std::cerr << util::visible(mask.mask(warning)) << "\n";
}

// Why `path` cannot be written as a report (or, `folder`, made as --log-dir), or "":
// what is there must be writable (and a folder, or not one), and what is not must have a
// writable folder to be made in.
std::string unusable_output(const std::string& path, bool folder) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path p(path);
  if (fs::exists(p, ec)) {
    if (folder != fs::is_directory(p, ec)) return path + (folder ? ": not a folder" : ": is a folder");
    if (::access(path.c_str(), W_OK) != 0) return path + ": " + std::strerror(errno);
    return "";
  }
  // The nearest folder that exists is where it (or its first missing folder) would be made.
  fs::path parent = fs::absolute(p, ec).parent_path();
  while (!parent.empty() && !fs::exists(parent, ec) && parent != parent.parent_path()) {
    if (!folder) return path + ": " + std::strerror(ENOENT);  // a report's folder is not made
    parent = parent.parent_path();
  }
  if (!fs::is_directory(parent, ec)) return path + ": " + std::strerror(ENOTDIR);
  if (::access(parent.c_str(), W_OK | X_OK) != 0) return path + ": " + std::strerror(errno);
  return "";
}

std::string signal_words(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev ? fmt::format("SIG{}", abbrev) : fmt::format("signal {}", sig);
}

// The kill_grace of the step a process belongs to (jobs carry CI_STEP in their
// environment); for a process of no known step, the longest of the pipeline (or the
// default grace, without a pipeline).
std::function<pipeline::Millis(pid_t)> grace_of(const pipeline::Pipeline* p) {
  return [p](pid_t pid) {
    const pipeline::Millis fallback = pipeline::StepOptions{}.kill_grace;
    if (p == nullptr) return fallback;
    const std::string step = proc::env_of(pid, "CI_STEP");
    std::optional<pipeline::Millis> mine;
    pipeline::Millis longest{0};
    for (const auto* steps : {&p->steps, &p->cleanup})
      for (const auto& s : *steps) {
        longest = std::max(longest, s.options.kill_grace);
        if (s.name == step) mine = std::max(mine.value_or(pipeline::Millis(0)), s.options.kill_grace);
      }
    return mine.value_or(longest);
  };
}

struct RunFlags {
  unsigned jobs = 0;
  std::string step;
  bool dry_run = false;
  std::string output = "grouped";
  bool no_color = false;
  std::string heartbeat = "30s";
  std::string timings;
  std::string log_dir, junit, json, html;
  bool fail_on_flaky = false;
  std::string shard;
  bool require_all_hosts = false;
  bool rerun_failed = false;
  bool keep_clusters = false;
  std::vector<std::string> only;
};

// A whole number from 1 to a million (-j, --total, --index). CLI11's own PositiveNumber
// words a refusal as "not in range 0.000000 to 1797…" with 300 digits.
constexpr std::size_t k_most = 1'000'000;
const CLI::Validator k_count(
    [](std::string& value) -> std::string {
      std::size_t n = 0;
      const char* end = value.data() + value.size();
      const auto [stop, ec] = std::from_chars(value.data(), end, n);
      if ((ec == std::errc::result_out_of_range && stop == end) || (ec == std::errc() && stop == end && n > k_most))
        return fmt::format("'{}' is too large (at most {})", util::visible(value), k_most);
      if (ec != std::errc() || stop != end || n == 0)
        return fmt::format("give a whole number of 1 or more, not '{}'", util::visible(value));
      return "";
    },
    "N>=1");

void add_run_flags(CLI::App& cmd, RunFlags& f) {
  cmd.add_option("-j,--jobs", f.jobs, "At most N jobs running at once across the run")
      ->check(k_count);
  cmd.add_option("--step", f.step, "Run only the step NAME (cleanup still runs)");
  cmd.add_flag("--dry-run", f.dry_run, "Print the plan with every command expanded; run nothing");
  cmd.add_option(
         "--output", f.output,
         "grouped (default): each job's output in one piece; prefixed: every line as it arrives")
      ->check(CLI::IsMember({"grouped", "prefixed"}));
  cmd.add_flag("--no-color", f.no_color, "No colour (also: NO_COLOR set in the environment)");
  cmd.add_option("--timings", f.timings,
                 "Recorded job durations, read to order the queue and written after the run "
                 "(default: .pcr/timings.json beside the pipeline file)");
  cmd.add_option(
      "--log-dir", f.log_dir,
      "Write each job's output to a file of its own in DIR, and the console's to DIR/run.log");
  cmd.add_option("--junit", f.junit, "Write a JUnit XML report to FILE");
  cmd.add_option("--json", f.json, "Write the run's events to FILE as JSON lines");
  cmd.add_option("--html", f.html, "Write a self-contained HTML report with a timeline to FILE");
  cmd.add_flag("--fail-on-flaky", f.fail_on_flaky,
               "A job that passes only on a retry fails its step");
  cmd.add_option(
      "--shard", f.shard,
      "Run only shard I of N (1-based, e.g. 2/4) of every for_each step's items, as `pcr split` "
      "chooses them; `auto` reads CI_NODE_INDEX/CI_NODE_TOTAL, CIRCLE_NODE_*, "
      "BUILDKITE_PARALLEL_JOB*");
  cmd.add_flag("--rerun-failed", f.rerun_failed,
               "Run only the for_each items that did not pass in the last run of this pipeline (and shard), "
               "and every other step as usual");
  cmd.add_option("--only", f.only,
                 "Run only the for_each items matching PATTERN (a shell glob; repeatable), every other step as usual")
      ->type_name("PATTERN")
      ->allow_extra_args(false);  // one pattern each, and `[ab]` is a glob, not CLI11's list
  cmd.add_flag("--keep-clusters", f.keep_clusters,
               "Keep the compose clusters up after the run, under stable names, and reuse them in the next "
               "--keep-clusters run (local runs only: ignored under CI=true)");
  cmd.add_flag("--require-all-hosts", f.require_all_hosts,
               "Fail the run when a docker host of `hosts:` is unreachable at the start");
  cmd.add_option("--heartbeat", f.heartbeat,
                 "Off a terminal, print a progress line this often (default 30s)")
      ->check([](const std::string& v) {
        auto d = util::parse_duration(v);
        if (!d) return d.error();
        return d->count() > 0 ? std::string() : std::string("must be more than 0s");
      });
}

// Whether this run keeps its clusters: asked with --keep-clusters, and not a CI run (a CI
// machine's clusters would outlive the job that could clean them), said when refused.
bool ci_run() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

bool keep_clusters(const RunFlags& f) {
  if (!f.keep_clusters) return false;
  if (ci_run()) {
    std::cerr << "pcr: --keep-clusters is for local runs: ignored under CI=true (the clusters are torn down)\n";
    return false;
  }
  return true;
}

// `--shard TEXT` (none when empty) into `ro`; false, having said why, when it is bad.
bool apply_shard(const std::string& text, pipeline::RunOptions& ro) {
  if (text.empty()) return true;
  auto shard = parse_shard(text);
  if (!shard) {
    std::cerr << fmt::format("pcr: --shard: {}\n", shard.error());
    return false;
  }
  ro.shard_index = shard->index;
  ro.shard_total = shard->total;
  return true;
}

// The values of the pipeline's secrets: from its `env`, else pcr's environment.
using config::secret_values;

int print_plan(const pipeline::Pipeline& p, pipeline::RunOptions ro, bool no_color,
               bool json = false) {
  report::Style style;
  style.color = report::detect_console(1, no_color).color;
  ro.secrets = secret_values(p);
  // A secret can reach the plan through an item or a command: masked like everything else.
  const util::Masker mask(ro.secrets);
  const auto steps = pipeline::plan(p, ro);
  std::cout << (json ? report::plan_json(p, steps, mask)
                     : mask.mask(report::plan_text(p, steps, style)))
            << std::flush;
  if (!std::cout) {
    std::cerr << "pcr: error: could not write the plan to standard output\n";
    return k_exit_internal;
  }
  return 0;
}

std::optional<int> supervise_run(const pipeline::Pipeline& p, const RunFlags& f,
                                 std::string& run_id);

// Where what extensions save about failed jobs goes (compose: services' logs): under
// --log-dir, else `.pcr/services/<run id>` beside the pipeline, of which the last few runs
// are kept ({run_id}: the engine's, when no supervisor chose one).
std::string saved_dir(const pipeline::Pipeline& p, const std::string& log_dir, const std::string& run_id) {
  if (p.extensions.empty()) return "";
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!log_dir.empty()) return (fs::absolute(log_dir, ec) / "services").string();
  const fs::path base = fs::absolute(fs::path(pipeline_dir(p)) / ".pcr" / "services", ec);
  // The newest runs' folders stay (with this one, k_saved_runs): bounded, and the last
  // failure's logs are still there to read.
  constexpr std::size_t k_saved_runs = 3;
  std::vector<std::pair<fs::file_time_type, fs::path>> runs;
  for (fs::directory_iterator it(base, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_directory(ec) && !it->is_symlink(ec)) runs.emplace_back(it->last_write_time(ec), it->path());
  std::sort(runs.begin(), runs.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (std::size_t i = k_saved_runs - 1; i < runs.size(); ++i) fs::remove_all(runs[i].second, ec);
  return (base / (run_id.empty() ? "{run_id}" : run_id)).string();
}

// `--rerun-failed` and `--only` into `ro`, with the last run's record (read whatever the
// flags: a filtered run merges into it). Returns an exit code when there is nothing to
// run: the last run passed whole.
std::optional<int> plan_rerun(const pipeline::Pipeline& p, const RunFlags& f, pipeline::RunOptions& ro) {
  ro.only = f.only;
  ro.last_run_path = pipeline::last_run_path(p, ro);
  auto last = pipeline::load_last_run(ro.last_run_path);
  if (last) ro.last_run = std::move(*last);
  if (!f.rerun_failed) return std::nullopt;
  const std::string which = p.source.empty() || p.source == "-" ? p.name : p.source;
  if (!ro.last_run) {
    std::error_code ec;
    const bool there = std::filesystem::exists(ro.last_run_path, ec);
    const std::string why = there ? fmt::format("its record is unreadable ({})", last.error())
                                  : fmt::format("no earlier run of {}{} is recorded", which,
                                                ro.shard_total ? fmt::format(" (shard {}/{})", ro.shard_index + 1, ro.shard_total) : "");
    std::cerr << util::Masker(secret_values(p)).mask(fmt::format("pcr: --rerun-failed: {}: running everything\n", util::visible(why)));
    return std::nullopt;
  }
  if (ro.last_run->passed) {
    // Nothing to rerun: nothing runs, as CTest's --rerun-failed (no clusters come up for no test).
    std::cout << fmt::format("pcr: --rerun-failed: nothing failed in the last run of {}: nothing to run\n",
                             util::visible(which));
    return 0;
  }
  ro.rerun_failed = true;
  return std::nullopt;
}

int execute(const pipeline::Pipeline& p, const RunFlags& f) {
  pipeline::RunOptions ro;
  ro.jobs = f.jobs;
  ro.only_step = f.step;
  ro.timings = f.timings;
  ro.fail_on_flaky = f.fail_on_flaky;
  ro.require_all_hosts = f.require_all_hosts;
  ro.only_jobs_streamed = f.log_dir.empty();  // the console streams a step's only job
  ro.output_unread = stdout_is_dev_null() && f.log_dir.empty() && f.junit.empty() &&
                     f.json.empty() && f.html.empty();
  if (!apply_shard(f.shard, ro)) return k_exit_usage;
  if (const auto code = plan_rerun(p, f, ro)) return *code;
  if (!f.step.empty() && !pipeline::has_step(p, f.step)) {
    std::string names;
    for (const auto& s : p.steps)
      names += (names.empty() ? "" : ", ") + fmt::format("'{}'", s.name);
    // What the user typed may be a secret's value too: masked like every other output.
    const util::Masker mask(secret_values(p));
    std::cerr << mask.mask(fmt::format("pcr: --step: no step is named '{}' (steps: {})\n",
                                       util::visible(f.step), util::visible(names)));
    return k_exit_usage;
  }
  warn_about_leftovers(p, f.keep_clusters && !ci_run());
  if (f.dry_run) return print_plan(p, ro, f.no_color);
  warn_about_isolation(p);
  if (supervision_enabled()) {
    // Returns in the supervisor when the run is over; the engine goes on from here.
    if (auto code = supervise_run(p, f, ro.run_id)) return *code;
    ro.supervisor_fd = g_supervisor_fd;
  }
  ro.saved_dir = saved_dir(p, f.log_dir, ro.run_id);
  auto console_options = report::detect_console(1, f.no_color);
  console_options.output =
      f.output == "prefixed" ? report::OutputStyle::prefixed : report::OutputStyle::grouped;
  console_options.heartbeat = *util::parse_duration(f.heartbeat);
  const std::vector<std::string> secrets = secret_values(p);
  ro.secrets = secrets;
  console_options.secrets = secrets;
  // Every output of the run is a report::Sink (masked, never blocking the run, failures
  // kept); they are all checked at the end.
  std::vector<report::Sink*> outputs;
  report::Sink stdout_sink(1, "stdout", secrets, false);
  outputs.push_back(&stdout_sink);
  console_options.sink = &stdout_sink;
  std::unique_ptr<report::LogDir> log_dir;
  std::vector<std::string> report_errors;  // --junit, --html: written at the end, whole
  // Every failure to write so far: the summary's last line tells the exit code it causes.
  const auto write_errors_of = [&](const std::string& lost_output) {
    std::vector<std::string> errors;
    for (auto* sink : outputs)
      if (!sink->error().empty()) errors.push_back(sink->error());
    if (log_dir && !log_dir->error().empty()) errors.push_back(log_dir->error());
    for (const auto& e : report_errors) errors.push_back(e);
    if (!lost_output.empty()) errors.push_back("a job's output to " + lost_output);
    return errors;
  };
  console_options.final_word = [&](const pipeline::RunResult& r) -> std::pair<int, std::string> {
    const auto errors = write_errors_of(r.output_error);
    if (errors.empty()) return {r.exit_code, ""};
    // A failed run keeps its own exit code; the loss is said either way.
    return {r.exit_code != 0 ? r.exit_code : k_exit_internal, "could not write " + errors.front()};
  };
  report::Console console(console_options);
  pipeline::Observers observers;

  // Reports. Every file is opened before the run, so a bad path stops it before anything ran.
  auto fail = [](const std::string& flag, const std::string& why) {
    std::cerr << fmt::format("pcr: {}: {}\n", flag, why);
    return k_exit_usage;
  };
  // And every path is looked at before any is opened: a bad --html must not leave an
  // earlier --junit truncated or a --log-dir made (exit 2 means nothing was touched).
  for (const auto& [flag, path, folder] : {std::tuple<std::string, std::string, bool>{"--log-dir", f.log_dir, true},
                                           {"--json", f.json, false},
                                           {"--junit", f.junit, false},
                                           {"--html", f.html, false}}) {
    if (path.empty()) continue;
    if (const std::string why = unusable_output(path, folder); !why.empty()) return fail(flag, why);
  }
  std::unique_ptr<report::Console> run_log;
  std::unique_ptr<report::Sink> run_log_sink;
  if (!f.log_dir.empty()) {
    std::string error = report::make_private_dir(f.log_dir);
    if (!error.empty()) return fail("--log-dir", error);
    run_log_sink = report::Sink::open(f.log_dir + "/run.log", secrets);
    if (!run_log_sink->error().empty()) return fail("--log-dir", run_log_sink->error());
    outputs.push_back(run_log_sink.get());
    report::ConsoleOptions plain;
    plain.fd = -1;
    plain.sink = run_log_sink.get();
    plain.output = console_options.output;
    plain.heartbeat = console_options.heartbeat;
    plain.secrets = secrets;
    plain.final_word = console_options.final_word;
    run_log = std::make_unique<report::Console>(plain);
    log_dir = std::make_unique<report::LogDir>(f.log_dir, secrets);
    observers.add(*log_dir);
  }
  std::unique_ptr<report::JsonEvents> json;
  if (!f.json.empty()) {
    auto opened = report::JsonEvents::open(f.json, secrets);
    if (!opened) return fail("--json", opened.error());
    json = std::move(*opened);
    outputs.push_back(&json->sink());
    observers.add(*json);
  }
  report::Recorder recorder(secrets);
  std::vector<std::unique_ptr<report::Sink>> report_sinks;
  for (const auto& [flag, path, render] :
       {std::tuple<std::string, std::string, std::string (*)(const report::RunRecord&)>{
            "--junit", f.junit, report::junit_xml},
        {"--html", f.html, report::html_report}}) {
    if (path.empty()) continue;
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
      // A device or a pipe (/dev/stdout): written as it goes, there is no file to replace.
      report_sinks.push_back(report::Sink::open(path, secrets));
      report::Sink* sink = report_sinks.back().get();
      if (!sink->error().empty()) return fail(flag, sink->error());
      outputs.push_back(sink);
      recorder.add_sink([sink, render = render](const report::RunRecord& record) {
        sink->write(render(record));
        sink->finish();
      });
      continue;
    }
    // Half a report is worse than none (a CI system would read a cut XML file as the
    // run's results), and so is the last run's: the file is written whole beside its
    // place and renamed over it at the end, and an earlier run's goes now. Whatever dies
    // meanwhile, a reader finds this run's report or none.
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return fail(flag, path + ": " + std::strerror(errno));
    recorder.add_sink([&report_errors, secrets, render = render, path = path](const report::RunRecord& record) {
      const std::string error = util::replace_file(path, util::Masker(secrets).mask(render(record)));
      if (!error.empty()) report_errors.push_back(error);
    });
  }
  if (!f.junit.empty() || !f.html.empty()) observers.add(recorder);
  struct LostOutput : pipeline::Observer {
    std::string error;
    void run_finished(const pipeline::RunResult& r) override { error = r.output_error; }
  } lost_output;
  observers.add(lost_output);
  // The consoles last: when they write the summary, the reports have been written, so its
  // last line knows whether writing them failed.
  if (run_log) observers.add(*run_log);
  observers.add(console);
  g_run_started = true;
  int code = pipeline::run(p, ro, observers);
  // Everything written out (a slow reader is waited for now that the run is over), then
  // every failure to write said once, on stderr, and the run fails for it.
  for (auto* sink : outputs) sink->finish();
  const std::vector<std::string> write_errors = write_errors_of(lost_output.error);
  for (const auto& e : write_errors)
    std::cerr << fmt::format("pcr: error: could not write {}\n", util::visible(e));
  // Projects the teardown did not take down (a second interrupt cut it short, or it
  // failed) keep their records: say so, and how to finish.
  const bool kept = f.keep_clusters && !ci_run();
  if (!p.extensions.empty() && kept)
    if (const auto up = docker::still_up(docker::state_dir(pipeline_dir(p)), ro.run_id); !up.empty() && up.front().kept)
      std::cerr << fmt::format("pcr: kept {} cluster(s) up for the next `pcr run --keep-clusters` ({}{}); `pcr clean` "
                               "takes them down\n",
                               up.size(), util::visible(util::Masker(secret_values(p)).mask(up.front().project)),
                               up.size() > 1 ? ", …" : "");
  if (!p.extensions.empty() && !kept)
    if (const auto up = docker::still_up(docker::state_dir(pipeline_dir(p)), ro.run_id); !up.empty())
      std::cerr << fmt::format("pcr: {} compose project(s) of this run are still up ({}{}): `pcr clean{}` "
                               "takes them down\n",
                               up.size(), util::visible(util::Masker(secret_values(p)).mask(up.front().project)),
                               up.size() > 1 ? ", …" : "",
                               p.source.empty() ? "" : " " + util::shell_quote(p.source));
  if (!write_errors.empty() && code == 0) code = k_exit_internal;
  // The supervisor removes the run's record; when it was killed, the engine does.
  if (g_supervisor_fd >= 0 && ::getppid() != g_supervisor)
    proc::remove_run_record(proc::runs_dir(pipeline_dir(p)), ro.run_id);
  return code;
}

// The `pcr` the user started: start the engine, wait, and when the engine died instead of
// exiting, end what it started (processes, the pipeline's cleanup steps, compose
// projects, the spool).
std::optional<int> supervise_run(const pipeline::Pipeline& p, const RunFlags& f,
                                 std::string& run_id) {
  const auto started = std::chrono::steady_clock::now();
  proc::RunRecord record;
  record.run_id = run_id = pipeline::make_run_id();
  record.pid = ::getpid();
  record.pid_start = proc::start_time(record.pid);
  record.tmpdir = proc::spool_parent();
  const std::string runs = proc::runs_dir(pipeline_dir(p));
  auto split = proc::split([&](pid_t pid) {
    record.engine = pid;
    record.engine_start = proc::start_time(pid);
    std::string error = proc::write_run_record(runs, record);
    if (!error.empty())
      std::cerr << fmt::format(
          "pcr: warning: cannot record the run ({}): if pcr is killed, `pcr clean` will not "
          "know its processes\n",
          error);
  });
  if (!split) {
    std::cerr << fmt::format("pcr: error: {}\n", split.error());
    return k_exit_internal;
  }
  if (split->engine) {
    g_supervisor_fd = split->fd;
    g_supervisor = ::getppid();
    return std::nullopt;
  }
  const proc::EngineExit* engine = &split->exit;
  if (engine->signal == 0) {
    proc::remove_run_record(runs, record.run_id);
    return engine->exit_code;
  }
  // The engine was killed (kill -9, the OOM killer) or crashed. Its jobs are ours now.
  std::cerr << fmt::format(
      "pcr: error: pcr's engine (pid {}) was killed by {}: ending what it started\n",
      engine->pid, signal_words(engine->signal));
  const int ended = proc::end_descendants(grace_of(&p));
  int cleanup_code = 0;
  // The cleanup steps the engine finished before it died are not run again.
  std::size_t cleanup_from = 0;
  for (const auto& dir : proc::spool_dirs_of(record.tmpdir, record.run_id))
    cleanup_from = std::max(cleanup_from, pipeline::cleanup_steps_done(dir));
  cleanup_from = std::min(cleanup_from, p.cleanup.size());
  if (cleanup_from < p.cleanup.size()) {
    pipeline::RunOptions ro;
    ro.cleanup_only = true;
    ro.run_id = record.run_id;
    ro.cleanup_from = cleanup_from;
    ro.started = started;
    ro.save_timings = false;  // the engine's timings are lost with it; keep the file as it was
    auto console_options = report::detect_console(1, f.no_color);
    console_options.secrets = secret_values(p);
    report::Sink out(1, "stdout", console_options.secrets, false);
    console_options.sink = &out;
    console_options.final_word = [&](const pipeline::RunResult&) -> std::pair<int, std::string> {
      return {k_exit_internal, "pcr's engine was killed by " + signal_words(engine->signal)};
    };
    report::Console console(console_options);
    pipeline::Observers observers;
    observers.add(console);
    cleanup_code = pipeline::run(p, ro, observers);
  }
  std::string compose_log;
  int compose_failed = 0;
  for (const auto& ext : p.extensions)
    if (ext.engine_died) compose_failed += ext.engine_died(record.run_id, compose_log);
  std::size_t spools = 0;
  for (const auto& dir : proc::spool_dirs_of(record.tmpdir, record.run_id)) {
    std::error_code ec;
    if (std::filesystem::remove_all(dir, ec) > 0 && !ec) ++spools;
  }
  proc::remove_run_record(runs, record.run_id);
  const std::string summary = fmt::format(
      "the engine died of {}; ended {} process(es), ran {} cleanup step(s){}, removed {} spool "
      "folder(s){}",
      signal_words(engine->signal), ended, p.cleanup.size() - cleanup_from,
      cleanup_code == 0 ? "" : " (cleanup failed)", spools,
      compose_failed ? fmt::format(", {} compose project(s) could not be taken down", compose_failed)
                     : "");
  if (!compose_log.empty() && compose_log.find("nothing left") == std::string::npos)
    std::cerr << compose_log;
  std::cerr << "pcr: " << summary << "\n";
  if (!f.json.empty()) {
    // The engine's event log ends where it died; say what happened after.
    int fd = ::open(f.json.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd >= 0) {
      nlohmann::ordered_json j;
      j["event"] = "engine_died";
      j["time"] = report::event_time();
      j["signal"] = signal_words(engine->signal);
      j["processes_ended"] = ended;
      j["cleanup_steps"] = p.cleanup.size() - cleanup_from;
      j["cleanup_exit_code"] = cleanup_code;
      j["spool_removed"] = spools;
      j["compose_failed"] = compose_failed;
      if (!util::write_all(fd, j.dump() + "\n"))
        std::cerr << fmt::format("pcr: error: --json: {}: {}\n", f.json, std::strerror(errno));
      ::close(fd);
    }
  }
  return k_exit_internal;
}

template <typename Fn>
int guarded(CLI::App& app, int argc, char** argv, Fn after_parse) {
  // Help and the version are output like any other: a failure to write them is an error.
  const auto printed = [](const std::string& text) {
    std::cout << text << std::flush;
    if (std::cout) return 0;
    std::cerr << "pcr: error: could not write to standard output\n";
    return k_exit_internal;
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    return printed(app.help());
  } catch (const CLI::CallForAllHelp&) {
    return printed(app.help("", CLI::AppFormatMode::All));
  } catch (const CLI::CallForVersion&) {
    return printed(std::string("pcr ") + PCR_VERSION + "\n");
  } catch (const CLI::ParseError& e) {
    std::cerr << "pcr: " << e.what() << "\nRun with --help for usage.\n";
    return k_exit_usage;
  }
  try {
    return after_parse();
  } catch (const config::LoadError& e) {
    std::cerr << e.what() << "\n";
    return k_exit_usage;
  } catch (const std::exception& e) {
    // Nothing may abort pcr with a bare "terminate called": say what happened. Before a
    // run nothing ran (2); an exception out of a run is pcr's own failure (3), and the
    // engine's ProcessSet has killed every job on the way out.
    std::cerr << fmt::format("pcr: error: {}\n", util::visible(e.what()));
    return g_run_started ? k_exit_internal : k_exit_usage;
  } catch (...) {
    std::cerr << "pcr: error: an unknown exception\n";
    return g_run_started ? k_exit_internal : k_exit_usage;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "pcr — the Parallel CI Runner: runs a CI pipeline's steps of shell commands, many at once"};
  app.set_version_flag("--version", std::string("pcr ") + PCR_VERSION);
  app.require_subcommand(1);

  RunFlags run_flags;
  std::string run_file = "ci.yaml";
  auto* run = app.add_subcommand("run", "Run the pipeline (default ./ci.yaml)");
  run->add_option("FILE", run_file, "The pipeline file");
  add_run_flags(*run, run_flags);

  std::string check_file = "ci.yaml";
  std::string check_timings;
  auto* check = app.add_subcommand("check", "Validate FILE and print the plan; exit 0 or 2");
  check->add_option("FILE", check_file, "The pipeline file");
  check->add_option("--timings", check_timings, "Recorded job durations to plan with");
  std::string check_shard;
  check->add_option("--shard", check_shard, "Plan shard I/N (or auto) of every for_each step, as `pcr run --shard`");
  bool check_json = false;
  check->add_flag("--json", check_json, "Print the plan as JSON (steps, workers, each job's command)");

  std::string clean_file = "ci.yaml";
  auto* clean = app.add_subcommand("clean",
                                   "End what a killed run left behind: its processes, its spool "
                                   "folder and its compose projects (recorded in .pcr/ beside "
                                   "FILE)");
  clean->add_option("FILE", clean_file,
                    "The pipeline file (default ./ci.yaml); only its folder matters");

  std::size_t split_total = 0, split_index = 0;
  std::string split_timings = ".pcr/timings.json", split_step;
  std::vector<std::string> split_items;
  auto* split = app.add_subcommand(
      "split",
      "Print this machine's share of ITEMS (or of stdin's lines), balanced by recorded timings; "
      "the same on every machine");
  split
      ->add_option("--total", split_total,
                   "Number of shards (default: from CI_NODE_TOTAL, CIRCLE_NODE_TOTAL, "
                   "BUILDKITE_PARALLEL_JOB_COUNT)")
      ->check(k_count);
  split
      ->add_option("--index", split_index,
                   "This shard, 1-based (default: from CI_NODE_INDEX (1-based), "
                   "CIRCLE_NODE_INDEX or BUILDKITE_PARALLEL_JOB (0-based))")
      ->check(k_count);
  split->add_option("--timings", split_timings,
                    "Recorded job durations (default .pcr/timings.json)");
  split->add_option("--step", split_step, "Use the timings of this step (default: any step's)");
  split->add_option("ITEMS", split_items,
                    "The items; read from stdin, one per line, when none is given");

  std::string merge_out = ".pcr/timings.json";
  std::vector<std::string> merge_files;
  auto* timings_cmd = app.add_subcommand("timings", "Work with recorded timings files");
  timings_cmd->require_subcommand(1);
  auto* merge =
      timings_cmd->add_subcommand("merge",
                                  "Combine the timings files that the shards of a run (`pcr run "
                                  "--shard`) brought back into OUT, the "
                                  "file they all started from: each shard's changes are kept");
  merge->add_option("-o,--output", merge_out,
                    "The combined file, read first as the shards' common start "
                    "(default .pcr/timings.json)");
  merge->add_option("FILE", merge_files, "The shards' timings files")->required();

  return guarded(app, argc, argv, [&]() -> int {
    if (*merge) {
      std::vector<sched::Timings::Pipelines> tables;
      for (const auto& file : merge_files) {
        auto text = util::read_file(file);
        if (!text) {
          std::cerr << fmt::format("pcr timings merge: {}: {}\n", file, std::strerror(errno));
          return k_exit_usage;
        }
        sched::Timings::Pipelines table;
        if (!sched::Timings::parse(*text, table)) {
          std::cerr << fmt::format("pcr timings merge: {}: not a pcr timings file\n", file);
          return k_exit_usage;
        }
        tables.push_back(std::move(table));
      }
      std::string error = sched::merge_shard_files(merge_out, tables);
      if (!error.empty()) {
        std::cerr << "pcr timings merge: " << error << "\n";
        return 1;
      }
      std::size_t entries = 0;
      for (const auto& t : tables)
        for (const auto& [pipeline, steps] : t)
          for (const auto& [step, e] : steps) entries += e.size();
      std::cout << fmt::format("pcr timings merge: {} file(s), {} entries, into {}\n",
                               tables.size(), entries, merge_out);
      return 0;
    }
    if (*check) {
      pipeline::RunOptions ro;
      ro.timings = check_timings;
      if (!apply_shard(check_shard, ro)) return k_exit_usage;
      auto p = config::load_file(check_file, config::docker_machine());
      int code = print_plan(p, ro, false, check_json);
      const util::Masker mask(secret_values(p));
      for (const auto& ext : p.extensions)
        if (ext.check)
          for (const auto& warning : ext.check())
            (check_json ? std::cerr : std::cout) << util::visible(mask.mask(warning)) << "\n";
      return code;
    }
    if (*clean) {
      const std::string dir = std::filesystem::absolute(clean_file).parent_path().string();
      bool any = false;
      // The pipeline, when it loads, gives each leftover job its step's kill_grace.
      std::optional<pipeline::Pipeline> pipeline;
      try {
        pipeline = config::load_file(clean_file, config::docker_machine());
      } catch (const config::LoadError&) {  // gone or changed: the default grace then
      }
      // Runs whose two pcr processes are both gone: their jobs (by CI_RUN_ID), their spool.
      const std::string runs = proc::runs_dir(dir);
      for (const auto& dead : proc::dead_runs(runs)) {
        auto left = proc::leftovers_of(dead);
        if (!left.empty()) {
          any = true;
          const int ended = proc::end_processes(left.processes, grace_of(pipeline ? &*pipeline : nullptr));
          std::size_t removed = 0;
          for (const auto& spool : left.spool_dirs) {
            std::error_code ec;
            if (std::filesystem::remove_all(spool, ec) > 0 && !ec) ++removed;
          }
          std::cout << fmt::format(
              "pcr clean: run {} (pid {} is gone): ended {} process(es), removed {} spool "
              "folder(s)\n",
              dead.run_id, dead.pid, ended, removed);
        }
        proc::remove_run_record(runs, dead.run_id);
      }
      // Project names may hold a secret (`compose: project:` from the env): masked with
      // the pipeline's secrets when it loads.
      const util::Masker mask(pipeline ? secret_values(*pipeline) : std::vector<std::string>{});
      std::string log;
      const int failed = docker::clean(docker::state_dir(dir), log);
      std::cout << util::visible(mask.mask(log));
      if (!any && log.empty()) std::cout << "pcr clean: nothing left behind by a killed run\n";
      return failed > 0 ? 1 : 0;
    }
    if (*split) {
      Shard shard;
      auto env_shard = shard_from_env();
      if (split_total == 0 && split_index == 0 && !env_shard) {
        std::cerr << "pcr split: " << env_shard.error() << "\n";
        return k_exit_usage;
      }
      // A bad pair in the environment does not matter when the flags say it all.
      const std::optional<Shard> from_env = env_shard ? *env_shard : std::nullopt;
      shard.total = split_total > 0 ? split_total : from_env ? from_env->total : 0;
      if (split_index > 0)
        shard.index = split_index - 1;
      else if (from_env)
        shard.index = from_env->index;
      else
        shard.index = static_cast<std::size_t>(-1);
      if (shard.total == 0) {
        std::cerr << "pcr split: --total: give the number of shards (or set CI_NODE_TOTAL)\n";
        return k_exit_usage;
      }
      if (shard.index >= shard.total) {
        std::cerr << fmt::format("pcr split: --index: give this shard's number, 1 to {}\n",
                                 shard.total);
        return k_exit_usage;
      }
      if (split_items.empty()) {
        // Read as a stream, within bounds: stdin may be anything (a runaway command).
        constexpr std::size_t k_items = 1'000'000;
        std::string bad;
        std::size_t line_number = 0;
        util::each_line("/dev/stdin", pipeline::max_line_bytes, [&](std::string_view line, bool cut) {
          ++line_number;
          if (cut)
            bad = fmt::format("line {} is longer than the {} MiB an item may have", line_number,
                              pipeline::max_line_bytes >> 20);
          else if (!line.empty() && split_items.size() == k_items)
            bad = fmt::format("more than {} items", k_items);
          else if (!line.empty())
            split_items.emplace_back(line);
          return bad.empty();
        });
        if (!bad.empty()) {
          std::cerr << "pcr split: stdin: " << bad << "\n";
          return k_exit_usage;
        }
      }
      std::string warning;
      auto timings = sched::Timings::load_any(split_timings, &warning);
      if (!warning.empty()) std::cerr << "pcr split: " << warning << "\n";
      for (const auto& item :
           sched::shard_items(split_items, timings, split_step, shard.index, shard.total))
        std::cout << item << "\n";
      return 0;
    }
    auto machine = config::docker_machine();
    machine.keep_clusters = keep_clusters(run_flags);
    auto p = config::load_file(run_file, machine);
    return execute(p, run_flags);
  });
}

int run_main(int argc, char** argv, const pipeline::Pipeline& pipeline) {
  CLI::App app{"Run this pipeline (the options of `pcr run`)"};
  app.set_version_flag("--version", std::string("pcr ") + PCR_VERSION);
  RunFlags flags;
  add_run_flags(app, flags);
  return guarded(app, argc, argv, [&] { return execute(pipeline, flags); });
}

}  // namespace pcr::cli
