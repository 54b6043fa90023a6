#include <pcr/report/console.hpp>
#include <pcr/report/json_events.hpp>
#include <pcr/config/loader.hpp>
#include <pcr/proc/runs.hpp>
#include <pcr/proc/supervise.hpp>
#include <pcr/session/internal.hpp>
#include <pcr/util/io.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>

namespace pcr::session {

using config::secret_values;

namespace {
// In the engine: the supervisor's pipe and pid (proc/supervise.hpp).
int g_supervisor_fd = -1;
pid_t g_supervisor = 0;
}  // namespace

int supervisor_fd() { return g_supervisor_fd; }

bool supervisor_gone() { return g_supervisor_fd >= 0 && ::getppid() != g_supervisor; }

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

}  // namespace pcr::session
