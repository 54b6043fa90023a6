#include <pcr/report/console.hpp>
#include <pcr/report/json_events.hpp>
#include <pcr/config/loader.hpp>
#include <pcr/proc/runs.hpp>
#include <pcr/proc/supervise.hpp>
#include <pcr/session/internal.hpp>
#include <pcr/util/io.hpp>
#include <pcr/util/text.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>

namespace pcr::session {

using config::secret_values;

namespace {

// In the engine: the supervisor's pipe and pid (proc/supervise.hpp), and the run id the
// supervisor chose before the fork.
int g_supervisor_fd = -1;
pid_t g_supervisor = 0;
std::string g_run_id;
// `pcr run`: the supervisor forked the engine first thing (supervise_first), before the
// pipeline was loaded. The engine leaves it a brief in this memory file once it has one.
int g_brief_fd = -1;

// What the supervisor needs of a run it did not load, should the engine die: where the
// run's record is, the pipeline's text as the engine loaded it (never the file again: it
// may have changed since), and the flags that say where the rest goes.
struct Brief {
  std::string runs_dir;
  std::string source;  // the pipeline file as named
  std::string text;    // what was read from it
  std::string json;    // --json
  bool no_color = false;
  bool keep_clusters = false;
};

constexpr std::string_view k_brief_magic = "pcr-brief 1\n";

std::string encode(const Brief& b) {
  std::string out(k_brief_magic);
  for (const std::string* field : {&b.runs_dir, &b.source, &b.text, &b.json})
    out += fmt::format("{}\n", field->size()) + *field;
  out += fmt::format("{}{}end\n", b.no_color ? 1 : 0, b.keep_clusters ? 1 : 0);
  return out;
}

// The brief the engine wrote, whole, or nothing (none written, or cut short by its death).
std::optional<Brief> decode(std::string_view in) {
  if (in.substr(0, k_brief_magic.size()) != k_brief_magic) return std::nullopt;
  in.remove_prefix(k_brief_magic.size());
  Brief b;
  for (std::string* field : {&b.runs_dir, &b.source, &b.text, &b.json}) {
    const auto nl = in.find('\n');
    if (nl == std::string_view::npos || nl == 0 || nl > 19) return std::nullopt;  // no overflow
    std::size_t size = 0;
    for (char c : in.substr(0, nl)) {
      if (c < '0' || c > '9') return std::nullopt;
      size = size * 10 + static_cast<std::size_t>(c - '0');
    }
    in.remove_prefix(nl + 1);
    if (size > in.size()) return std::nullopt;
    field->assign(in.substr(0, size));
    in.remove_prefix(size);
  }
  if (in.size() != 6 || in.substr(2) != "end\n") return std::nullopt;
  b.no_color = in[0] == '1';
  b.keep_clusters = in[1] == '1';
  return b;
}

// From the start: the engine's writes moved the offset the two processes share.
std::optional<Brief> read_brief(int fd) {
  if (::lseek(fd, 0, SEEK_SET) != 0) return std::nullopt;
  const auto text = util::read_all(fd);
  return text ? decode(*text) : std::nullopt;
}

// What the supervisor knows of a run whose engine died.
struct DeadRun {
  const pipeline::Pipeline* pipeline = nullptr;  // null: it could not be loaded again
  std::string runs_dir;
  std::string run_id;
  std::string json;
  bool no_color = false;
  std::chrono::steady_clock::time_point started;
};

int after_engine_died(const proc::EngineExit& engine, const DeadRun& run);

}  // namespace

bool supervision_enabled() {
  const char* v = std::getenv("PCR_SUPERVISOR");  // "0": one process (debugging, strace)
  return !(v && std::string(v) == "0");
}

int supervisor_fd() { return g_supervisor_fd; }

bool supervised_engine() { return g_supervisor_fd >= 0; }

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

namespace {

enum class Side { engine, supervisor, failed };

// Fork the engine of run `run_id` (proc::split). The engine learns where its supervisor
// is; the supervisor waits, and gets how the engine ended in `exit`. `failed`: no engine
// could be started (said here).
Side fork_engine(const std::string& run_id, proc::EngineExit& exit) {
  auto split = proc::split(nullptr);
  if (!split) {
    std::cerr << fmt::format("pcr: error: {}\n", split.error());
    return Side::failed;
  }
  if (!split->engine) {
    exit = split->exit;
    return Side::supervisor;
  }
  g_supervisor_fd = split->fd;
  g_supervisor = ::getppid();
  g_run_id = run_id;
  return Side::engine;
}

}  // namespace

// `pcr run`, first thing: fork the engine before anything is loaded, so that the fork
// copies little and the supervisor, which only waits, touches almost nothing the engine
// writes (copy-on-write faults in both). The engine leaves the supervisor a brief
// (engine_started) once it has loaded the pipeline.
std::optional<int> supervise_first() {
  if (!supervision_enabled()) return std::nullopt;
  const auto started = std::chrono::steady_clock::now();
  const std::string run_id = pipeline::make_run_id();
  const int brief = ::memfd_create("pcr-brief", MFD_CLOEXEC);
  if (brief < 0) return std::nullopt;  // no memory file: supervised later, as a C++ pipeline is
  proc::EngineExit engine;
  switch (fork_engine(run_id, engine)) {
    case Side::failed:
      return k_exit_internal;
    case Side::engine:
      g_brief_fd = brief;
      return std::nullopt;
    case Side::supervisor:
      break;
  }
  if (engine.signal == 0) {
    // The run is over and said so (the engine removed its record): nothing of the
    // supervisor's to flush or destroy, so no exit handlers either.
    std::fflush(nullptr);
    ::_exit(engine.exit_code);
  }
  auto b = read_brief(brief);
  ::close(brief);
  if (!b) {
    // Dead before its run started (loading the pipeline): nothing of it to end. Killed
    // by an interrupt or a termination signal, pcr dies of the same, as one process did.
    const int sig = engine.signal;
    if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGQUIT) {
      ::signal(sig, SIG_DFL);
      ::raise(sig);
      return 128 + sig;
    }
    std::cerr << fmt::format("pcr: error: pcr's engine (pid {}) was killed by {} before the run started\n",
                             engine.pid, signal_words(sig));
    return k_exit_internal;
  }
  DeadRun run;
  run.runs_dir = b->runs_dir;
  run.run_id = run_id;
  run.json = b->json;
  run.no_color = b->no_color;
  run.started = started;
  std::optional<pipeline::Pipeline> p;
  try {
    auto machine = config::docker_machine();
    machine.keep_clusters = b->keep_clusters;
    p = config::load_string(b->text, b->source, machine);
    run.pipeline = &*p;
  } catch (const std::exception& e) {
    std::cerr << fmt::format(
        "pcr: error: the pipeline cannot be loaded again to end the run ({}): its cleanup steps "
        "do not run; `pcr clean` takes down what is left\n",
        util::visible(e.what()));
  }
  return after_engine_died(engine, run);
}

// A C++ pipeline (run_main), already built: the fork comes here.
std::optional<int> supervise_run(const pipeline::Pipeline& p, const RunFlags& f) {
  const auto started = std::chrono::steady_clock::now();
  const std::string run_id = pipeline::make_run_id();
  proc::EngineExit engine;
  switch (fork_engine(run_id, engine)) {
    case Side::failed:
      return k_exit_internal;
    case Side::engine:
      return std::nullopt;
    case Side::supervisor:
      break;
  }
  if (engine.signal == 0) return engine.exit_code;  // back into the C++ program, once
  DeadRun run;
  run.pipeline = &p;
  run.runs_dir = proc::runs_dir(pipeline_dir(p));
  run.run_id = run_id;
  run.json = f.json;
  run.no_color = f.no_color;
  run.started = started;
  return after_engine_died(engine, run);
}

std::string engine_started(const pipeline::Pipeline& p, const RunFlags& f, const std::string* text) {
  const std::string runs = proc::runs_dir(pipeline_dir(p));
  if (g_brief_fd >= 0) {
    // The brief first: with it, the supervisor can remove the record if the engine dies
    // right after writing it.
    Brief b;
    b.runs_dir = runs;
    b.source = p.source;
    if (text) b.text = *text;
    b.json = f.json;
    b.no_color = f.no_color;
    b.keep_clusters = clusters_kept(f);  // as loaded: --keep-clusters is off under CI=true
    if (!util::write_all(g_brief_fd, encode(b)))
      std::cerr << fmt::format(
          "pcr: warning: cannot brief the supervisor ({}): if pcr's engine is killed, its "
          "cleanup steps will not run\n",
          std::strerror(errno));
    ::close(g_brief_fd);
    g_brief_fd = -1;
  }
  proc::RunRecord record;
  record.run_id = g_run_id;
  record.pid = g_supervisor;
  record.pid_start = proc::start_time(g_supervisor);
  record.engine = ::getpid();
  record.engine_start = proc::start_time(record.engine);
  record.tmpdir = proc::spool_parent();
  const std::string error = proc::write_run_record(runs, record);
  if (!error.empty())
    std::cerr << fmt::format(
        "pcr: warning: cannot record the run ({}): if pcr is killed, `pcr clean` will not "
        "know its processes\n",
        error);
  return g_run_id;
}

namespace {

// The engine was killed (kill -9, the OOM killer) or crashed. Its jobs are ours now: end
// them, run the cleanup steps it had not, take down its compose projects, remove its
// spool and its record.
int end_what_it_left(const proc::EngineExit& engine, const DeadRun& run);

// The supervisor's last work, outside any other handler (`pcr run` forks before the CLI
// guards anything): nothing in it may end pcr with a bare "terminate called".
int after_engine_died(const proc::EngineExit& engine, const DeadRun& run) {
  try {
    return end_what_it_left(engine, run);
  } catch (const std::exception& e) {
    std::cerr << fmt::format("pcr: error: ending what the engine left: {}\n", util::visible(e.what()));
  } catch (...) {
    std::cerr << "pcr: error: ending what the engine left: an unknown exception\n";
  }
  return k_exit_internal;
}

int end_what_it_left(const proc::EngineExit& engine, const DeadRun& run) {
  const pipeline::Pipeline* p = run.pipeline;
  std::cerr << fmt::format(
      "pcr: error: pcr's engine (pid {}) was killed by {}: ending what it started\n",
      engine.pid, signal_words(engine.signal));
  const int ended = proc::end_descendants(grace_of(p));
  const std::string tmpdir = proc::spool_parent();
  int cleanup_code = 0;
  // The cleanup steps the engine finished before it died are not run again.
  const std::size_t cleanup_steps = p ? p->cleanup.size() : 0;
  std::size_t cleanup_from = 0;
  for (const auto& dir : proc::spool_dirs_of(tmpdir, run.run_id))
    cleanup_from = std::max(cleanup_from, pipeline::cleanup_steps_done(dir));
  cleanup_from = std::min(cleanup_from, cleanup_steps);
  if (cleanup_from < cleanup_steps) {
    pipeline::RunOptions ro;
    ro.cleanup_only = true;
    ro.run_id = run.run_id;
    ro.cleanup_from = cleanup_from;
    ro.started = run.started;
    ro.save_timings = false;  // the engine's timings are lost with it; keep the file as it was
    auto console_options = report::detect_console(1, run.no_color);
    console_options.secrets = secret_values(*p);
    report::Sink out(1, "stdout", console_options.secrets, false);
    console_options.sink = &out;
    console_options.final_word = [&](const pipeline::RunResult&) -> std::pair<int, std::string> {
      return {k_exit_internal, "pcr's engine was killed by " + signal_words(engine.signal)};
    };
    report::Console console(console_options);
    pipeline::Observers observers;
    observers.add(console);
    cleanup_code = pipeline::run(*p, ro, observers);
  }
  std::string compose_log;
  int compose_failed = 0;
  if (p)
    for (const auto& ext : p->extensions)
      if (ext.engine_died) compose_failed += ext.engine_died(run.run_id, compose_log);
  std::size_t spools = 0;
  for (const auto& dir : proc::spool_dirs_of(tmpdir, run.run_id)) {
    std::error_code ec;
    if (std::filesystem::remove_all(dir, ec) > 0 && !ec) ++spools;
  }
  proc::remove_run_record(run.runs_dir, run.run_id);
  const std::string summary = fmt::format(
      "the engine died of {}; ended {} process(es), ran {} cleanup step(s){}, removed {} spool "
      "folder(s){}",
      signal_words(engine.signal), ended, cleanup_steps - cleanup_from,
      cleanup_code == 0 ? "" : " (cleanup failed)", spools,
      compose_failed ? fmt::format(", {} compose project(s) could not be taken down", compose_failed)
                     : "");
  if (!compose_log.empty() && compose_log.find("nothing left") == std::string::npos)
    std::cerr << compose_log;
  std::cerr << "pcr: " << summary << "\n";
  if (!run.json.empty()) {
    // The engine's event log ends where it died; say what happened after.
    int fd = ::open(run.json.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd >= 0) {
      nlohmann::ordered_json j;
      j["event"] = "engine_died";
      j["time"] = report::event_time();
      j["signal"] = signal_words(engine.signal);
      j["processes_ended"] = ended;
      j["cleanup_steps"] = cleanup_steps - cleanup_from;
      j["cleanup_exit_code"] = cleanup_code;
      j["spool_removed"] = spools;
      j["compose_failed"] = compose_failed;
      if (!util::write_all(fd, j.dump() + "\n"))
        std::cerr << fmt::format("pcr: error: --json: {}: {}\n", run.json, std::strerror(errno));
      ::close(fd);
    }
  }
  return k_exit_internal;
}

}  // namespace

}  // namespace pcr::session
