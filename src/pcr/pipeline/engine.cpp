#include <pcr/pipeline/engine.hpp>
#include <pcr/pipeline/step_run.hpp>
#include <pcr/proc/loop.hpp>
#include <pcr/proc/process.hpp>
#include <pcr/util/io.hpp>
#include <pcr/util/mask.hpp>

#include <fmt/format.h>

#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <thread>
#include <utility>

extern char** environ;

// The engine: the order of steps (main steps, then cleanup steps, which always run), the
// pipeline's timeout, interrupts, and the hosts' probes. Each step is a StepRun
// (step_run.hpp); what a step's jobs are is the layout's (layout.hpp).

namespace pcr::pipeline {

namespace fs = std::filesystem;
using proc::Clock;

namespace {

constexpr std::size_t k_max_watched_line = 64 * 1024;
constexpr const char* k_cleanup_done_file = "cleanup.done";  // in the run's spool folder

Millis since(Clock::time_point t) { return std::chrono::duration_cast<Millis>(Clock::now() - t); }

std::string base_dir_of(const Pipeline& p) { return p.base_dir.empty() ? "." : p.base_dir; }

std::vector<const Step*> selected_steps(const Pipeline& p, const RunOptions& o) {
  std::vector<const Step*> out;
  for (const auto& s : p.steps)
    if (!o.cleanup_only && (o.only_step.empty() || s.name == o.only_step)) out.push_back(&s);
  return out;
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    case SIGHUP:
      return "SIGHUP";
    case SIGQUIT:
      return "SIGQUIT";
    default:
      return "a signal";
  }
}

// pcr's own environment, then the pipeline's `env`.
Vars base_env(const Pipeline& p) {
  Vars env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    const std::size_t eq = kv.find('=');
    if (eq != std::string_view::npos)
      env[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
  }
  for (const auto& [k, v] : p.env) env[k] = v;
  return env;
}

class Engine {
 public:
  Engine(const Pipeline& p, const RunOptions& o, Observer& obs)
      : m_procs(m_loop), m_run(p, o, obs, m_loop, m_procs) {
    m_procs.mask(o.secrets);  // no secret reaches a spool file, where a killed run may leave it
    m_procs.spool_in(&m_spool);
  }

  int run();

 private:
  enum class Phase { steps, cleanup, done };

  bool make_spool();
  void next();
  void step_done();
  void finish();
  void on_signal(int sig);
  void save_outcome();
  void suspend();
  void status();
  void timed_out();
  void probe_hosts();
  void probe(std::size_t host, std::function<void()> then);
  void start_watchers();
  Vars host_vars(std::size_t host) const;
  void host_lost(std::size_t host, bool at_start);
  const std::vector<const Step*>& current_list() const {
    return m_phase == Phase::steps ? m_steps : m_cleanup;
  }

  proc::Loop m_loop;
  proc::SpoolFolder m_spool;  // declared before m_procs, which writes into it
  proc::ProcessSet m_procs;
  RunState m_run;
  bool m_own_spool = false;
  std::vector<const Step*> m_steps, m_cleanup;
  Phase m_phase = Phase::steps;
  std::size_t m_index = 0;
  std::unique_ptr<StepRun> m_current;
  Clock::time_point m_step_started;
  std::string m_timings_path;
  bool m_failed = false;
  int m_signals = 0;
  bool m_supervisor_gone = false;  // the interrupt is the supervisor's death, not a signal
  Clock::time_point m_started;
  proc::Loop::TimerId m_tick = 0, m_deadline = 0;
  struct Probe {
    bool running = false;
    proc::ProcessSet::Id process = 0;
    std::vector<std::function<void()>> waiting;  // to call when the probe ends
  };
  std::vector<Probe> m_probes;  // as `pipeline.hosts`
  unsigned m_first_probes = 0;  // start-up probes still running
  unsigned m_probe_count = 0;   // probes so far (spool names)
  std::vector<proc::ProcessSet::Id> m_watchers;  // the extensions' `watch` commands
};

bool Engine::make_spool() {
  const RunOptions& o = m_run.options;
  if (!o.spool_dir.empty()) {
    m_run.spool_dir = o.spool_dir;
    std::error_code ec;
    fs::create_directories(m_run.spool_dir, ec);
    // A job that cannot write its spool says so on its result; nothing to add here.
    fs::permissions(m_run.spool_dir, fs::perms::owner_all, ec);
    m_spool.reset(m_run.spool_dir, true);
    return true;
  }
  // Named now, made when something is first written in it (proc::SpoolFolder): a name no
  // one can guess, as mkdtemp's. The parent is checked now, so that a TMPDIR pcr cannot
  // write in still stops the run before anything runs.
  const char* tmp = std::getenv("TMPDIR");
  const std::string parent = tmp && *tmp ? tmp : "/tmp";
  m_run.spool_dir = fmt::format("{}/pcr-{}-{}", parent, m_run.run_id, make_run_id().substr(0, 6));
  int error = 0;
  struct stat st {};
  if (::stat(parent.c_str(), &st) != 0)
    error = errno;
  else if (!S_ISDIR(st.st_mode))
    error = ENOTDIR;
  else if (::access(parent.c_str(), W_OK | X_OK) != 0)
    error = errno;
  if (error != 0) {
    m_run.observer.note({NoteKind::spool_unavailable, fmt::format("{}: {}", m_run.spool_dir, std::strerror(error))});
    return false;
  }
  m_spool.reset(m_run.spool_dir, false);
  m_own_spool = true;
  return true;
}

int Engine::run() {
  const Pipeline& p = m_run.pipeline;
  const RunOptions& o = m_run.options;
  m_run.run_id = o.run_id.empty() ? make_run_id() : o.run_id;
  m_run.saved_dir = o.saved_dir;
  if (const auto at = o.saved_dir.find("{run_id}"); at != std::string::npos)
    m_run.saved_dir.replace(at, 8, m_run.run_id);
  if (!make_spool()) return 3;  // pcr itself cannot run (docs/cli.md); nothing started
  m_steps = selected_steps(p, o);
  m_timings_path = timings_path(p, o);
  std::string warning;
  m_run.timings = sched::Timings::load(m_timings_path, timings_key(p, o), &warning);
  m_run.timings.mask_keys(util::Masker(o.secrets));
  m_run.timings.portable_keys(m_run.run_id, p.base_dir);
  m_run.base_env = base_env(p);
  m_run.probe = [this](std::size_t host, std::function<void()> then) {
    probe(host, std::move(then));
  };
  for (const auto& s : p.cleanup) m_cleanup.push_back(&s);

  ::signal(SIGPIPE, SIG_IGN);  // `pcr run | head` must still run cleanup
  proc::ProcessSet::become_subreaper();
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT})
    m_loop.watch_signal(sig, [this](int s) { on_signal(s); });
  m_loop.watch_signal(SIGTSTP, [this](int) { suspend(); });
  for (int sig : {SIGUSR1, SIGUSR2})
    m_loop.watch_signal(sig, [this](int) { status(); });
  if (o.supervisor_fd >= 0)
    m_loop.watch_hangup(o.supervisor_fd, [this] {
      // kill -9 of the `pcr` the user started, or the OOM killer: nobody else will stop
      // these jobs or run cleanup, so the engine does, as it would on SIGTERM.
      m_run.observer.note({NoteKind::supervisor_gone});
      m_supervisor_gone = m_run.interrupt == 0;  // else a signal came first, and ended the run
      on_signal(SIGTERM);
    });
  m_started = o.started.value_or(Clock::now());
  m_tick = m_loop.add_timer(Millis(1000), Millis(1000), [this] { m_run.observer.tick(); });
  if (p.timeout)
    m_deadline = m_loop.add_timer(*p.timeout, Millis(0), [this] { timed_out(); });
  m_run.observer.run_started({p.name, m_run.run_id, m_steps.size(), m_cleanup.size(), p.hosts});
  if (!warning.empty()) m_run.observer.note({NoteKind::timings_unreadable, warning});
  if (o.shard_total > 0) {
    Note n{NoteKind::shard};
    n.index = o.shard_index + 1;
    n.total = o.shard_total;
    m_run.observer.note(n);
  }
  m_probes.resize(p.hosts.size());
  m_run.pool = m_run.hosts.capacity_up();
  m_loop.post([this] {
    if (m_run.hosts.empty()) {
      start_watchers();
      next();
    } else {
      probe_hosts();
    }
  });
  m_loop.run();

  if (m_own_spool && m_spool.made()) {
    std::error_code ec;
    // Best effort: the supervisor removes what is left of the spool after the run too.
    fs::remove_all(m_run.spool_dir, ec);
  }
  return m_run.result.exit_code;
}

void Engine::timed_out() {
  m_deadline = 0;
  if (m_phase != Phase::steps) return;
  m_run.timed_out = true;
  Note n{NoteKind::pipeline_timeout};
  n.limit = *m_run.pipeline.timeout;
  m_run.observer.note(n);
  if (m_current) m_current->cancel(false);
}

// Every host, in parallel, before the first step. Those that do not answer are left out.
void Engine::probe_hosts() {
  const auto& hosts = m_run.pipeline.hosts;
  m_first_probes = static_cast<unsigned>(hosts.size());
  for (std::size_t h = 0; h < hosts.size(); ++h) {
    probe(h, [this, &hosts] {
      if (--m_first_probes > 0) return;
      for (std::size_t d = 0; d < hosts.size(); ++d)
        if (!m_run.hosts.up(d)) host_lost(d, true);
      m_run.pool = m_run.hosts.capacity_up();
      Note up{NoteKind::hosts_answering};
      for (std::size_t u = 0; u < hosts.size(); ++u)
        if (m_run.hosts.up(u))
          up.hosts.push_back(fmt::format("{} ({} worker{})", hosts[u].name, hosts[u].workers,
                                         hosts[u].workers == 1 ? "" : "s"));
      if (!up.hosts.empty()) m_run.observer.note(up);
      if (m_run.hosts.up_count() == 0) {
        m_run.observer.note({NoteKind::no_host_answers});
        m_failed = m_run.other_failures = true;
      } else if (m_run.options.require_all_hosts && m_run.hosts.up_count() < hosts.size()) {
        m_run.observer.note({NoteKind::host_required});
        m_failed = m_run.other_failures = true;
      }
      start_watchers();
      next();
    });
  }
}

// pcr's environment, the pipeline's, then host `host`'s (its DOCKER_HOST wins), and its name.
Vars Engine::host_vars(std::size_t host) const {
  const Host& h = m_run.pipeline.hosts[host];
  Vars vars = m_run.base_env;
  for (const auto& [k, v] : h.env) vars[k] = v;
  vars["CI_HOST"] = h.name;
  return vars;
}

// Each extension's `watch` command, once per host that answers (once without hosts), for
// the whole run; its lines go to the extension's `watched`. Its output is not the user's:
// only a tail of it is kept, in memory.
void Engine::start_watchers() {
  const Pipeline& p = m_run.pipeline;
  if (m_run.options.cleanup_only) return;  // a dead engine's cleanup: nothing runs to watch
  for (const Extension& ext : p.extensions) {
    if (ext.watch.empty() || !ext.watched) continue;
    auto watch_on = [&](const std::string& host, const Vars& vars) {
      const std::string spool = fmt::format("{}/watch-{}.log", m_run.spool_dir, m_watchers.size() + 1);
      proc::Spawn spawn = make_spawn(ext.watch, vars, base_dir_of(p), spool, {});
      spawn.spool_tail = 4096;
      auto pending = std::make_shared<std::string>();
      auto on_output = [&ext, host, pending](proc::Stream, std::string_view data) {
        pending->append(data);
        std::size_t from = 0;
        for (std::size_t nl; (nl = pending->find('\n', from)) != std::string::npos; from = nl + 1)
          ext.watched(host, std::string_view(*pending).substr(from, nl - from));
        pending->erase(0, from);
        if (pending->size() > k_max_watched_line) pending->clear();  // no event is that long
      };
      // It ends when the run does (killed in finish()) or by itself (its engine gone): either
      // way jobs' failures are still explained from what `collect` saves.
      m_watchers.push_back(m_procs.spawn(std::move(spawn), std::move(on_output), [](const proc::Exit&) {}));
    };
    if (p.hosts.empty()) {
      watch_on("", m_run.base_env);
      continue;
    }
    for (std::size_t h = 0; h < p.hosts.size(); ++h)
      if (m_run.hosts.up(h)) watch_on(p.hosts[h].name, host_vars(h));
  }
}

// Ask `host` whether it answers (one probe at a time per host; a host found down stays
// down), then call `then`.
void Engine::probe(std::size_t host, std::function<void()> then) {
  Probe& state = m_probes[host];
  if (!m_run.hosts.up(host)) {
    m_loop.post(std::move(then));
    return;
  }
  state.waiting.push_back(std::move(then));
  if (state.running) return;
  state.running = true;
  const Pipeline& p = m_run.pipeline;
  const Vars vars = host_vars(host);
  const std::string spool =
      fmt::format("{}/probe-{}-{}.log", m_run.spool_dir, host, ++m_probe_count);
  state.process = m_procs.spawn(
      make_spawn(p.host_probe.empty() ? "true" : p.host_probe, vars, base_dir_of(p), spool,
                 {p.probe_timeout, Millis(0), k_helper_grace}),
      nullptr, [this, host, spool](const proc::Exit& exit) {
        Probe& st = m_probes[host];
        st.running = false;
        st.process = 0;
        // A probe stopped by an interrupt says nothing about the host.
        const bool answers = exit.stopped || (exit.spawn_error.empty() && !exit.timed_out &&
                                              exit.signal == 0 && exit.exit_code == 0);
        if (!answers && m_run.hosts.up(host)) {
          std::string said = util::tail_lines(spool, 3);
          while (!said.empty() && said.back() == '\n') said.pop_back();
          std::replace(said.begin(), said.end(), '\n', ' ');
          m_run.hosts.set_down(
              host, exit.timed_out ? fmt::format("no answer within {}",
                                                 util::format_duration_spec(
                                                     m_run.pipeline.probe_timeout))
                    : !exit.spawn_error.empty() ? exit.spawn_error
                    : said.empty()              ? fmt::format("the probe exited {}", exit.exit_code)
                                                : said);
          if (m_phase != Phase::done && m_first_probes == 0) host_lost(host, false);
        }
        auto waiting = std::move(st.waiting);
        st.waiting.clear();
        for (auto& w : waiting) w();
      });
}

// `host` does not answer: tell the observers and extensions, and take it out of the
// running step's placement.
void Engine::host_lost(std::size_t host, bool at_start) {
  const Host& h = m_run.pipeline.hosts[host];
  HostEvent e;
  e.name = h.name;
  e.address = h.address;
  e.workers = h.workers;
  e.at_start = at_start;
  e.reason = m_run.hosts.reason(host);
  e.hosts_left = m_run.hosts.up_count();
  if (m_current) e.step = m_current->info().name;
  m_run.observer.host_down(e);
  for (const auto& ext : m_run.pipeline.extensions)
    if (ext.host_down) ext.host_down(h);
  if (m_current) m_current->host_gone(host);
}

void Engine::next() {
  const auto& list = current_list();
  if (m_phase == Phase::steps && (m_failed || m_run.interrupt || m_run.timed_out)) {
    for (; m_index < list.size(); ++m_index) {
      StepInfo info;
      info.index = m_index + 1;
      info.of = list.size();
      info.name = list[m_index]->name;
      info.step = list[m_index];
      StepResult r;
      r.outcome = StepOutcome::skipped;
      m_run.observer.step_finished(info, r);
    }
  }
  if (m_index >= list.size()) {
    if (m_phase == Phase::steps) {
      m_phase = Phase::cleanup;
      m_index = m_run.options.cleanup_only ? std::min(m_run.options.cleanup_from, m_run.pipeline.cleanup.size()) : 0;
      if (m_deadline) m_loop.cancel(m_deadline), m_deadline = 0;
      next();
    } else {
      finish();
    }
    return;
  }
  const Step& step = *list[m_index];
  StepInfo info;
  info.index = m_index + 1;
  info.of = list.size();
  info.cleanup = m_phase == Phase::cleanup;
  info.name = step.name;
  m_current = std::make_unique<StepRun>(m_run, step, std::move(info));
  m_step_started = Clock::now();
  m_current->start([this] { step_done(); });
}

void Engine::step_done() {
  const StepResult r = m_current->finish(since(m_step_started));
  if (!m_current->info().cleanup && r.outcome == StepOutcome::failed) m_failed = true;
  // For a supervisor that outlives this engine: the cleanup steps done need not run again
  // (a cleanup that posts a message or drops a table ran twice).
  if (m_current->info().cleanup && m_own_spool && m_spool.make()) {
    std::ofstream(fs::path(m_run.spool_dir) / k_cleanup_done_file, std::ios::trunc) << m_index + 1 << "\n";
  }
  m_run.observer.step_finished(m_current->info(), r);
  m_current.reset();
  ++m_index;
  next();
}

void Engine::finish() {
  m_phase = Phase::done;
  if (m_tick) m_loop.cancel(m_tick);
  RunResult& result = m_run.result;
  for (auto id : m_watchers) m_procs.stop(id, true);
  result.orphans_killed = m_procs.kill_orphans();
  const std::string error = m_run.options.save_timings ? m_run.timings.save(m_timings_path) : "";
  if (!error.empty()) m_run.observer.note({NoteKind::timings_not_saved, error});
  save_outcome();
  if (result.orphans_killed > 0) {
    Note n{NoteKind::orphans_killed};
    n.count = static_cast<std::size_t>(result.orphans_killed);
    m_run.observer.note(n);
  }
  result.duration = since(m_started);
  result.signal = m_run.interrupt;
  result.supervisor_gone = m_supervisor_gone && m_run.interrupt != 0;
  result.timed_out = m_run.timed_out;
  const bool only_own = m_run.own_failures && !m_run.other_failures && !m_run.timed_out;
  result.exit_code = m_run.interrupt               ? 128 + m_run.interrupt
                     : only_own                      ? 3
                     : (m_failed || m_run.timed_out) ? 1
                                                     : 0;
  m_run.observer.run_finished(result);
  m_loop.stop();
}

// For the next `--rerun-failed`: the steps this run ran, merged into the last record
// when this run ran only some of the items (a rerun, `--only`, `--step`).
void Engine::save_outcome() {
  const RunOptions& o = m_run.options;
  if (o.last_run_path.empty() || o.cleanup_only) return;
  LastRun record = m_run.outcome;
  const bool partial = o.rerun_failed || !o.only.empty() || !o.only_step.empty();
  if (partial && o.last_run)
    for (const auto& [name, step] : o.last_run->steps) record.steps.emplace(name, step);  // kept where not run
  // Steps that never ran (after a failure, an interrupt) are absent: they run whole.
  record.passed = !m_failed && !m_run.interrupt && !m_run.timed_out && record.steps.size() >= m_steps.size();
  for (const auto& [name, step] : record.steps) record.passed = record.passed && step.passed;
  const std::string error = save_last_run(o.last_run_path, record);
  if (!error.empty()) m_run.observer.note({NoteKind::record_not_saved, error});
}

// ^Z (from the supervisor, or the terminal when there is none): every job is stopped,
// then the engine itself, until SIGCONT; the time stopped counts against no deadline.
void Engine::suspend() {
  Note n{NoteKind::suspended};
  n.count = m_procs.running();
  m_run.observer.note(n);
  const auto at = Clock::now();
  m_procs.pause();
  ::raise(SIGSTOP);
  m_procs.resume();
  Note r{NoteKind::resumed};
  r.limit = since(at);
  m_run.observer.note(r);
}

// SIGUSR1 (SIGUSR2): what is running, told by the observers; the run goes on unchanged.
void Engine::status() { m_run.observer.status(m_current ? m_current->running() : std::vector<JobProgress>{}); }

void Engine::on_signal(int sig) {
  ++m_signals;
  if (m_phase == Phase::done) return;
  const bool first = m_run.interrupt == 0;
  if (first) m_run.interrupt = sig;
  Note n{NoteKind::interrupted};
  n.signal = signal_name(sig);
  n.again = !first;
  if (m_phase == Phase::steps) {
    // The supervisor's death was told as such (NoteKind::supervisor_gone): no signal came.
    if (!(first && m_supervisor_gone)) m_run.observer.note(n);
    if (m_current) m_current->cancel(!first);
    for (const auto& probe : m_probes)
      if (probe.running) m_procs.stop(probe.process, true);
    return;
  }
  // Cleanup is what an interrupt asks for: the first one lets it run; each further one
  // kills the current cleanup step's jobs at once and moves on to the next.
  n.kind = NoteKind::interrupted_in_cleanup;
  n.again = !(first && m_signals == 1);
  if (!(first && m_supervisor_gone)) m_run.observer.note(n);
  if (!n.again) return;
  if (m_current) m_current->cancel(true);
}

}  // namespace

int run(const Pipeline& pipeline, const RunOptions& options, Observer& observer) {
  Engine engine(pipeline, options, observer);
  return engine.run();
}

bool has_step(const Pipeline& pipeline, const std::string& name) {
  return std::any_of(pipeline.steps.begin(), pipeline.steps.end(),
                     [&](const Step& s) { return s.name == name; });
}

std::string make_run_id() {
  // getrandom(2), not std::random_device: its set-up probes the CPU (cpuid), which a
  // virtual machine traps, and a run id is made on every start.
  uint64_t seed = 0;
  if (::getrandom(&seed, sizeof seed, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof seed))
    seed = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  std::mt19937_64 gen(seed ^ static_cast<uint64_t>(::getpid()));
  static const char k_alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string id;
  for (int i = 0; i < 8; ++i) id += k_alphabet[gen() % 36];
  return id;
}

unsigned default_workers() { return std::max(1u, std::thread::hardware_concurrency()); }

std::string timings_path(const Pipeline& pipeline, const RunOptions& options) {
  if (!options.timings.empty()) return options.timings;
  return (fs::path(base_dir_of(pipeline)) / ".pcr" / "timings.json").string();
}

std::string last_run_path(const Pipeline& pipeline, const RunOptions& options) {
  return pipeline::last_run_path(base_dir_of(pipeline), timings_key(pipeline, options), options.shard_index,
                                 options.shard_total);
}

std::string timings_key(const Pipeline& pipeline, const RunOptions& options) {
  // The file's name, not its path: the default timings file sits beside it, and a path
  // would differ between checkouts (shards on other machines) and working directories.
  std::string key = !pipeline.source.empty() && pipeline.source != "-"
                        ? fs::path(pipeline.source).filename().string()
                        : pipeline.name;
  if (key.empty()) key = "pipeline";
  return util::Masker(options.secrets).mask(key);
}

std::size_t cleanup_steps_done(const std::string& spool_dir) {
  std::ifstream in(fs::path(spool_dir) / k_cleanup_done_file);
  std::size_t done = 0;
  return in >> done ? done : 0;
}

}  // namespace pcr::pipeline
