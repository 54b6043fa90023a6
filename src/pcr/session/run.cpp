#include <pcr/cli/split.hpp>
#include <pcr/config/loader.hpp>
#include <pcr/docker/compose.hpp>
#include <pcr/pipeline/engine.hpp>
#include <pcr/proc/runs.hpp>
#include <pcr/queue/redis.hpp>
#include <pcr/report/console.hpp>
#include <pcr/report/json_events.hpp>
#include <pcr/session/internal.hpp>
#include <pcr/session/outputs.hpp>
#include <pcr/util/mask.hpp>
#include <pcr/util/shell.hpp>
#include <pcr/util/text.hpp>

#include <fmt/format.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <optional>

namespace pcr::session {

using cli::parse_shard;
using config::secret_values;

namespace {

bool g_run_started = false;

// Whether pcr's standard output is /dev/null (the character device 1,3), where whatever
// the console writes is gone: `pcr run > /dev/null`.
bool stdout_is_dev_null() {
  struct stat out {}, null {};
  return ::fstat(1, &out) == 0 && S_ISCHR(out.st_mode) && ::stat("/dev/null", &null) == 0 &&
         S_ISCHR(null.st_mode) && out.st_rdev == null.st_rdev;
}

// CI=true: a CI machine's run.
bool ci_run() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

}  // namespace

bool clusters_kept(const RunFlags& f) { return f.keep_clusters && !ci_run(); }

bool keep_clusters(const RunFlags& f) {
  if (f.keep_clusters && ci_run())
    std::cerr << "pcr: --keep-clusters is for local runs: ignored under CI=true (the clusters are torn down)\n";
  return clusters_kept(f);
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

int print_plan(const pipeline::Pipeline& p, pipeline::RunOptions ro, bool no_color, bool json) {
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

namespace {

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

// `--queue`: each for_each step's jobs come from the build's queue in Redis.
std::optional<int> plan_queue(const pipeline::Pipeline& p, const RunFlags& f, pipeline::RunOptions& ro) {
  const std::string& given = f.queue.empty() ? p.queue : f.queue;
  if (given.empty()) return std::nullopt;
  auto url = queue::parse_url(given);
  if (!url) {
    std::cerr << fmt::format("pcr: --queue: {}\n", url.error());
    return k_exit_usage;
  }
  auto lease = util::parse_duration(f.queue_timeout);
  if (!lease || lease->count() < 1000) {
    std::cerr << fmt::format("pcr: --queue-timeout: {}\n", lease ? "at least 1s" : lease.error());
    return k_exit_usage;
  }
  if (ro.shard_total > 0 || f.rerun_failed || !f.only.empty()) {
    std::cerr << "pcr: --queue (or queue:) shares every item among the build's machines: it does not go with --shard, "
                 "--rerun-failed or --only\n";
    return k_exit_usage;
  }
  queue::Options options;
  options.lease = *lease;
  options.machine = f.queue_machine;
  ro.shared_heartbeat = std::max(pipeline::Millis(200), *lease / 3);
  if (!url->password.empty()) ro.secrets.push_back(url->password);
  ro.shared_queue = [url = *url, options](const pipeline::SharedJobs& jobs) -> std::unique_ptr<sched::SharedQueue> {
    return std::make_unique<queue::RedisQueue>(url, options, queue::SharedStep{jobs.step, jobs.jobs, jobs.result_of});
  };
  return std::nullopt;
}

// The run's options from its flags; an exit code when the flags cannot be run (a bad
// shard, an unknown step) or nothing is to run (--rerun-failed after a pass).
std::optional<int> options_from(const pipeline::Pipeline& p, const RunFlags& f, pipeline::RunOptions& ro) {
  ro.jobs = f.jobs;
  ro.only_step = f.step;
  ro.timings = f.timings;
  ro.fail_on_flaky = f.fail_on_flaky;
  ro.require_all_hosts = f.require_all_hosts;
  ro.only_jobs_streamed = f.log_dir.empty();  // the console streams a step's only job
  ro.output_unread = stdout_is_dev_null() && f.log_dir.empty() && f.junit.empty() &&
                     f.json.empty() && f.html.empty();
  if (!apply_shard(f.shard, ro)) return k_exit_usage;
  if (const auto code = plan_queue(p, f, ro)) return *code;
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
  return std::nullopt;
}

// After the run: the clusters it left up (kept on purpose, or a teardown cut short) and
// how to take them down.
void after_run(const pipeline::Pipeline& p, const RunFlags& f, const pipeline::RunOptions& ro) {
  const bool kept = clusters_kept(f);
  const util::Masker mask(secret_values(p));
  if (!p.extensions.empty()) {
    const auto up = docker::still_up(docker::state_dir(pipeline_dir(p)), ro.run_id);
    if (!up.empty() && kept && up.front().kept)
      std::cerr << fmt::format("pcr: kept {} cluster(s) up for the next `pcr run --keep-clusters` ({}{}); `pcr clean` "
                               "takes them down\n",
                               up.size(), util::visible(mask.mask(up.front().project)), up.size() > 1 ? ", …" : "");
    else if (!up.empty() && !kept)
      // Projects the teardown did not take down (a second interrupt cut it short, or it
      // failed) keep their records: say so, and how to finish.
      std::cerr << fmt::format("pcr: {} compose project(s) of this run are still up ({}{}): `pcr clean{}` "
                               "takes them down\n",
                               up.size(), util::visible(mask.mask(up.front().project)), up.size() > 1 ? ", …" : "",
                               p.source.empty() ? "" : " " + util::shell_quote(p.source));
  }
}

// The run itself, in the engine (or in the one process, without a supervisor).
int run_engine(const pipeline::Pipeline& p, const RunFlags& f, pipeline::RunOptions& ro) {
  ro.saved_dir = saved_dir(p, f.log_dir, ro.run_id);
  for (auto& secret : secret_values(p)) ro.secrets.push_back(std::move(secret));
  Outputs outputs(f, ro.secrets);
  if (const int code = outputs.open(); code != 0) return code;
  g_run_started = true;
  int code = pipeline::run(p, ro, outputs.observers());
  // Everything written out, then every failure to write said once, and the run fails for it.
  if (!outputs.finish() && code == 0) code = k_exit_internal;
  after_run(p, f, ro);
  return code;
}

// The engine is a fork of the program that started the run — pcr, or a C++ program that
// called run_main — so it ends here, its output flushed, rather than returning into that
// program: what the program does after run_main it does once, in the supervisor. (It
// also spares the engine freeing a copy of the program's memory, page by page.)
[[noreturn]] void end_engine(int code) {
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  ::_exit(code);
}

}  // namespace

bool run_started() { return g_run_started; }

int exit_code_after(const std::exception_ptr& error) {
  // Nothing may abort pcr with a bare "terminate called": say what happened. Before a run
  // nothing ran (2); an exception out of a run is pcr's own failure (3), and the engine's
  // ProcessSet has killed every job on the way out.
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    std::cerr << fmt::format("pcr: error: {}\n", util::visible(e.what()));
  } catch (...) {
    std::cerr << "pcr: error: an unknown exception\n";
  }
  return run_started() ? k_exit_internal : k_exit_usage;
}

int execute(const pipeline::Pipeline& p, const RunFlags& f, const std::string* text) {
  pipeline::RunOptions ro;
  if (const auto code = options_from(p, f, ro)) return *code;
  warn_about_leftovers(p, clusters_kept(f));
  if (f.dry_run) return print_plan(p, ro, f.no_color);
  warn_about_isolation(p);
  if (!supervised_engine()) {
    // `pcr run` forked its engine before loading (supervise_first); a C++ pipeline is
    // forked here. Returns in the supervisor when the run is over; the engine goes on
    // from here, and ends.
    if (!supervision_enabled()) return run_engine(p, f, ro);
    if (auto code = supervise_run(p, f)) return *code;
  }
  ro.run_id = engine_started(p, f, text);
  ro.supervisor_fd = supervisor_fd();
  int code = k_exit_internal;
  try {
    code = run_engine(p, f, ro);
  } catch (...) {
    code = exit_code_after(std::current_exception());
  }
  // The engine wrote the run's record (engine_started), and removes it, also after an
  // exception; the supervisor does only when the engine was killed.
  proc::remove_run_record(proc::runs_dir(pipeline_dir(p)), ro.run_id);
  end_engine(code);
}

}  // namespace pcr::session
