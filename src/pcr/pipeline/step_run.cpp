#include <pcr/pipeline/step_job.hpp>
#include <pcr/pipeline/step_run.hpp>
#include <pcr/results/junit.hpp>
#include <pcr/results/tap.hpp>
#include <pcr/util/glob.hpp>
#include <pcr/util/escape.hpp>
#include <pcr/util/io.hpp>
#include <pcr/util/text.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <map>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <cstdlib>
#include <utility>

namespace pcr::pipeline {

namespace {

// How long an extension's after-job command (Extension::after_job) may take.
constexpr Millis k_after_job_timeout{60'000};

// A process that failed by itself: not stopped by pcr (a cancel, an interrupt).
bool failed_by_itself(const proc::Exit& e) {
  return !e.stopped && (e.exit_code != 0 || e.signal != 0 || e.timed_out || e.idle_timed_out);
}

// A stdout kept for pcr to read (items, capture, expect, TAP) holds what the job printed,
// unmasked (docs/pipeline.md): it leaves the disk as soon as it has been read.
void forget_stdout(const std::string& path) {
  std::error_code ignored;
  if (!path.empty()) std::filesystem::remove(path, ignored);
}

// A failure that may be the host's: everything but a clean pass, an output check or a
// stop pcr asked for.
bool may_be_the_host(const JobResult& r) {
  return r.status == JobStatus::failed || r.status == JobStatus::signalled ||
         r.status == JobStatus::timed_out || r.status == JobStatus::idle_timeout ||
         r.status == JobStatus::not_started;
}


// Set `env` in `vars` under the step's own `env`: a variable the step sets keeps its value.
void add_under_step_env(const Step& step, const Env& env, Vars& vars) {
  for (const auto& kv : env) {
    const bool step_sets = std::any_of(step.options.env.begin(), step.options.env.end(),
                                       [&](const auto& set) { return set.first == kv.first; });
    if (!step_sets) vars[kv.first] = kv.second;
  }
}

// The job's `{project}` (its compose project, say), when an extension gives it one.
std::string project_of(const JobContext& ctx) {
  if (!ctx.resolve) return "";
  try {
    return ctx.resolve("project", "").value_or("");
  } catch (const std::exception&) {
    return "";  // shown only; the command itself reports what went wrong
  }
}


}  // namespace


Limits limits_of(const StepOptions& o) {
  return {o.timeout.value_or(Millis(0)), o.idle_timeout.value_or(Millis(0)), o.kill_grace};
}

proc::Spawn make_spawn(std::string command, const Vars& env, std::string workdir,
                       std::string spool, const Limits& limits) {
  proc::Spawn spawn;
  spawn.command = std::move(command);
  spawn.env.reserve(env.size());
  for (const auto& [k, v] : env) spawn.env.push_back(k + "=" + v);
  spawn.workdir = std::move(workdir);
  // Beside the spool, in the run's private folder: where a command too long for an
  // argument goes (proc::Spawn::script_path).
  if (!spool.empty()) {
    std::error_code ec;  // absolute: the shell starts in the job's workdir
    const std::string base = spool.ends_with(".log") ? spool.substr(0, spool.size() - 4) : spool;
    spawn.script_path = std::filesystem::absolute(base + ".sh", ec).string();
  }
  spawn.spool_path = std::move(spool);
  spawn.timeout = limits.timeout;
  spawn.idle_timeout = limits.idle_timeout;
  spawn.kill_grace = limits.kill_grace;
  return spawn;
}

void RunState::move_slot(unsigned slot) {
  const std::size_t from = hosts.slot_host(slot);
  if (auto to = hosts.move(slot)) {
    Note n{NoteKind::worker_moved};
    n.worker = slot;
    n.from = pipeline.hosts[from].name;
    n.to = pipeline.hosts[*to].name;
    observer.note(n);
  }
}

StepRun::StepRun(RunState& run, const Step& step, StepInfo info)
    : m_run(run), m_step(step), m_info(std::move(info)) {
  m_info.step = &m_step;
}

StepRun::~StepRun() {
  for (auto& job : m_jobs)
    if (job.slow_timer) m_run.loop.cancel(job.slow_timer);  // they call back into this step
  stop_sharing();
}

// --queue: this step's jobs come from the build's shared queue (filled by the first
// machine to arrive, in `order`); a queue that cannot be reached fails the step as pcr's
// own failure. Idle workers ask again every 200 ms; the leases are kept alive on a timer.
void StepRun::share(const std::vector<std::size_t>& order) {
  SharedJobs offer;
  offer.step = m_info.name;
  for (std::size_t i : order) {
    std::string identity;
    for (const auto& item : m_jobs[i].plan.items) identity += (identity.empty() ? "" : "\n") + item;
    offer.jobs.emplace_back(i, identity);
  }
  m_shared_results.assign(m_jobs.size(), "{}");
  offer.result_of = [this](std::size_t job) { return job < m_shared_results.size() ? m_shared_results[job] : "{}"; };
  try {
    m_shared = m_run.options.shared_queue(offer);
  } catch (const std::exception& e) {
    m_result.error = e.what();
    m_shared_failed = true;
    m_scheduler->cancel(true);
    return;
  }
  m_scheduler->share(*m_shared);
  m_heartbeat = m_run.loop.add_timer(m_run.options.shared_heartbeat, m_run.options.shared_heartbeat,
                                     [this] { m_shared->heartbeat(); });
  m_poll = m_run.loop.add_timer(Millis(200), Millis(200), [this] {
    if (m_scheduler->waiting()) m_scheduler->poll();
  });
}

void StepRun::stop_sharing() {
  if (m_heartbeat) m_run.loop.cancel(std::exchange(m_heartbeat, 0));
  if (m_poll) m_run.loop.cancel(std::exchange(m_poll, 0));
  if (m_shared && m_result.error.empty() && !m_shared->error().empty()) {
    m_result.error = m_shared->error();
    m_shared_failed = true;
  }
}

void StepRun::start(std::function<void()> done) {
  m_done = std::move(done);
  const StepOptions& o = m_step.options;
  // Stdout is read as lines for `capture`, `expect` and a C++ check; TAP is parsed from
  // the same file as a stream (never held whole).
  m_read_stdout = !o.capture.empty() || !o.expect.empty() || static_cast<bool>(o.check);
  m_keep_stdout = m_read_stdout || o.results.format == ResultsSpec::Format::tap;
  if (!o.expect.empty()) {
    // The loader has compiled it already; a C++ pipeline's pattern is checked here.
    if (auto re = util::Regex::compile(o.expect))
      m_expect.emplace(*re);
    else
      m_result.error = fmt::format("expect: bad regular expression /{}/: {}", o.expect, re.error());
  }
  m_env = m_run.base_env;
  for (const auto& [var, joined] : m_run.exported) m_env[var] = joined;
  for (const auto& [k, v] : o.env) m_env[k] = v;
  m_env["CI_RUN_ID"] = m_run.run_id;
  // The for_each command has it too: a supervisor whose engine died finds a process's
  // step, and so its kill_grace, by it.
  m_env["CI_STEP"] = m_info.name;

  if (m_step.form != Form::for_each || !m_result.error.empty()) return launch({});
  const ForEach& fe = m_step.for_each;
  const std::string dir = step_dir(m_run.pipeline, m_step);
  if (auto known = static_items(m_step, dir)) {
    if (*known) return launch(**known);
    m_result.error = known->error();
    return launch({});
  }
  switch (fe.source) {
    case ForEach::Source::lines: {
      auto it = m_run.captures.find(fe.value);
      if (it != m_run.captures.end()) return launch(it->second);
      // e.g. `--step` without the capturing step: the variable may come from outside.
      if (const char* v = std::getenv(fe.value.c_str())) return launch(util::split_lines(v));
      m_result.error = fmt::format("for_each lines: nothing was captured as {}", fe.value);
      return launch({});
    }
    case ForEach::Source::function:
      return launch(fe.items ? fe.items() : std::vector<std::string>{});
    case ForEach::Source::command:
      break;
    default:
      return launch({});
  }
  // The for_each command: its stdout lines are the items. Bounded like the step's jobs.
  const std::string base = fmt::format("{}/list-{}", m_run.spool_dir, m_info.index);
  proc::Spawn spawn = make_spawn(fe.value, m_env, dir, base + ".log", limits_of(o));
  spawn.stdout_path = base + ".out";
  m_lister = m_run.procs.spawn(std::move(spawn), nullptr, [this, base](const proc::Exit& exit) {
    m_lister = 0;
    const bool listed = exit.exit_code == 0 && exit.signal == 0 && exit.spawn_error.empty() && !exit.stopped &&
                        !exit.timed_out && !exit.idle_timed_out && exit.spool_error.empty();
    std::vector<std::string> found;
    std::string bad;  // read in bounded memory: a runaway command is the step's error
    if (listed)
      util::each_line(base + ".out", max_line_bytes, [&](std::string_view line, bool cut) {
        if (cut)
          bad = fmt::format("line {} is longer than the {} MiB an item may have", found.size() + 1,
                            max_line_bytes >> 20);
        else if (!line.empty() && found.size() == max_items)
          bad = fmt::format("it printed more than the {} items one step takes", max_items);
        else if (!line.empty())
          found.emplace_back(line);
        return bad.empty();
      });
    forget_stdout(base + ".out");
    if (listed && bad.empty()) return launch(found);
    if (!bad.empty()) {
      m_result.error = fmt::format("the for_each command `{}`: {}", m_step.for_each.value, bad);
      return launch({});
    }
    const std::string why = !exit.spawn_error.empty()   ? exit.spawn_error
                            : !exit.spool_error.empty() ? "its output could not all be kept: " + exit.spool_error
                            : exit.timed_out          ? std::string("timed out")
                            : exit.idle_timed_out     ? std::string("printed nothing for too long")
                            : exit.stopped            ? std::string("stopped")
                            : exit.signal ? fmt::format("killed by signal {}", exit.signal)
                                          : fmt::format("exit code {}", exit.exit_code);
    m_result.error = fmt::format("the for_each command `{}` failed ({})", m_step.for_each.value, why);
    const std::string tail = util::tail_lines(base + ".log", 20);
    if (!tail.empty()) m_result.error += ":\n" + tail;
    launch({});
  });
}




void StepRun::launch(const std::vector<std::string>& all_items) {
  // `--rerun-failed` and `--only` narrow a main for_each step's items. A rerun's record is
  // per shard already: its items are not sharded again.
  std::vector<std::string> items = all_items;
  bool rerun = false;
  if (m_step.form == Form::for_each && !m_info.cleanup) {
    const RunOptions& o = m_run.options;
    if (o.rerun_failed && o.last_run) {
      items = rerun_items(*o.last_run, m_step.name, items);
      rerun = o.last_run->steps.count(m_step.name) > 0;
    }
    if (!o.only.empty()) items = only_items(o.only, items);
    if (o.rerun_failed || !o.only.empty()) {
      Note n{NoteKind::items_filtered};
      n.step = m_info.name;
      n.count = items.size();
      n.total = all_items.size();
      n.detail = o.rerun_failed && !o.only.empty() ? "--rerun-failed, --only" : o.rerun_failed ? "--rerun-failed" : "--only";
      m_run.observer.note(n);
    }
  }
  const bool on_hosts = m_run.placed(m_step);
  if (m_step.per_host && on_hosts) {
    // Once on every host that answers (on every host when none does: it fails there).
    for (std::size_t h = 0; h < m_run.hosts.size(); ++h)
      if (m_run.hosts.up(h) || m_run.hosts.up_count() == 0) m_job_host.push_back(h);
  }
  LayoutInput in;
  in.cleanup = m_info.cleanup;
  in.shard_index = m_run.options.shard_index;
  in.shard_total = rerun ? 0 : m_run.options.shard_total;
  in.pool = on_hosts ? m_run.pool : 0;
  in.hosts = m_job_host.size();
  Layout layout = m_result.error.empty() ? lay_out(m_step, items, m_run.timings, in)
                                          : no_jobs(m_step, in);
  if (m_result.error.empty()) m_result.error = layout.error;
  if (layout.jobs.empty()) m_job_host.clear();
  m_info.jobs = layout.jobs.size();
  m_info.workers = layout.workers;
  m_info.at_once = m_run.options.jobs > 0 ? std::min(layout.workers, m_run.options.jobs) : layout.workers;
  m_info.expected.assign(layout.jobs.size(), Millis(0));
  for (std::size_t i = 0; i < layout.jobs.size(); ++i)
    if (layout.jobs[i].known) m_info.expected[i] = Millis(layout.jobs[i].cost);
  m_stdout_lines.resize(layout.jobs.size());
  for (std::size_t i = 0; i < layout.jobs.size(); ++i) {
    Job job;
    job.plan = std::move(layout.jobs[i]);
    job.info.step = &m_info;
    job.info.index = i;
    job.info.job = static_cast<unsigned>(i + 1);
    job.info.items = job.plan.items;
    job.info.name = job_name(m_step, job.plan, job.info.job, layout.jobs.size());
    m_jobs.push_back(std::move(job));
  }
  m_env["CI_WORKERS"] = std::to_string(m_info.workers);
  m_env["CI_TOTAL_JOBS"] = std::to_string(m_jobs.size());

  sched::Options so;
  so.workers = m_info.workers;
  so.cap = m_run.options.jobs;
  so.retries = m_step.options.retries;
  so.fail_fast = m_step.options.fail_fast;
  so.pinned = pinned(m_step);
  so.setup = static_cast<bool>(m_step.setup);
  so.teardown = static_cast<bool>(m_step.teardown);
  m_tasks.resize(m_info.workers + 1);
  m_task_process.resize(m_info.workers + 1);
  const std::vector<std::size_t> order = layout.order;
  m_scheduler = std::make_unique<sched::Scheduler>(std::move(layout.order), so, *this);
  m_scheduler->on_done = [this] {
    stop_sharing();
    m_run.loop.post([this] { m_done(); });
  };
  if (m_run.options.shared_queue && m_step.form == Form::for_each && !m_info.cleanup && !m_jobs.empty() &&
      !m_step.per_host)
    share(order);
  if (on_hosts) leave_down_hosts();
  if (on_hosts && m_step.per_host)
    for (std::size_t h : m_job_host) m_info.worker_hosts.push_back(m_run.pipeline.hosts[h].name);
  else if (on_hosts)
    for (unsigned w = 1; w <= m_info.workers; ++w)
      m_info.worker_hosts.push_back(m_run.pipeline.hosts[m_run.hosts.slot_host(w)].name);
  m_run.observer.step_started(m_info);
  // A main step whose start was interrupted (or timed out) runs nothing.
  if (!m_info.cleanup && (m_run.interrupt || m_run.timed_out)) m_scheduler->cancel(false);
  m_scheduler->start();
}

void StepRun::cancel(bool immediately) {
  if (m_scheduler) m_scheduler->cancel(immediately);
  if (m_lister) m_run.procs.stop(m_lister, immediately);
}

StepResult StepRun::finish(Millis duration) {
  StepResult r = m_result;
  r.duration = duration;
  // Jobs a stop kept from ever starting (an interrupt during the set-ups) are cancelled
  // too: the step was cut short, it did not pass.
  const std::size_t ended = r.passed + r.failed + r.cancelled;
  if ((m_run.interrupt || m_run.timed_out) && m_scheduler && ended < m_jobs.size()) r.cancelled += m_jobs.size() - ended;
  stop_sharing();
  if (r.error.empty()) r.error = m_result.error;
  if (m_shared) {
    Note n{NoteKind::shared_queue};
    n.step = m_info.name;
    n.count = r.passed + r.failed + r.cancelled;
    n.total = m_jobs.size();
    n.detail = m_shared->where();
    m_run.observer.note(n);
  }
  const bool failed = (m_scheduler && m_scheduler->failed()) || !r.error.empty();
  if (!r.error.empty()) (m_shared_failed ? m_run.own_failures : m_run.other_failures) = true;
  record_outcome(failed);
  if (failed)
    r.outcome = StepOutcome::failed;
  else if (!m_info.cleanup && m_run.timed_out && r.cancelled > 0)
    r.outcome = StepOutcome::failed;
  else if (m_run.interrupt && r.cancelled > 0)  // in cleanup: a second interrupt killed its jobs
    r.outcome = StepOutcome::interrupted;
  else
    r.outcome = StepOutcome::passed;
  if (!m_info.cleanup && !m_step.options.capture.empty() && r.outcome == StepOutcome::passed) {
    const std::string& var = m_step.options.capture;
    auto& lines = m_run.captures[var];
    lines.clear();
    for (auto& job_lines : m_stdout_lines)
      for (auto& l : job_lines) lines.push_back(std::move(l));
    export_capture(var, lines);
  }
  return r;
}


std::optional<std::size_t> StepRun::host_of(unsigned worker, std::size_t index) {
  if (!m_run.placed(m_step)) return std::nullopt;
  if (m_step.per_host)
    return index < m_job_host.size() ? std::optional<std::size_t>(m_job_host[index]) : std::nullopt;
  return m_run.hosts.slot_host(worker);
}

void StepRun::place(JobContext& ctx, JobInfo& job_info, std::optional<std::size_t> host) const {
  if (!host) return;
  const Host& h = m_run.pipeline.hosts[*host];
  ctx.host = job_info.host = h.name;
  ctx.host_env = h.env;
}

void StepRun::host_gone(std::size_t host) {
  if (!m_scheduler) return;
  // Jobs still running there may wait on an engine that will never answer: stop them now;
  // they end as lost with their host.
  for (std::size_t i = 0; i < m_jobs.size(); ++i) {
    if (m_scheduler->state(i) != sched::JobState::running || m_jobs[i].lost) continue;
    auto h = host_of(m_jobs[i].info.worker, i);
    if (h && *h == host) m_jobs[i].lost = true, m_run.procs.stop(m_jobs[i].process, false);
  }
  leave_down_hosts();
}

// This step's workers on hosts that do not answer: a pool retires them while another of
// its workers is on a host that answers; pinned jobs (and a pool left with no worker)
// move theirs to another host.
void StepRun::leave_down_hosts() {
  if (m_step.per_host) return;
  bool others = false;
  for (unsigned w = 1; w <= m_info.workers; ++w)
    if (!m_scheduler->retired(w) && m_run.hosts.up(m_run.hosts.slot_host(w))) others = true;
  for (unsigned w = 1; w <= m_info.workers; ++w) {
    if (m_run.hosts.up(m_run.hosts.slot_host(w))) continue;
    if (pinned(m_step) || !others) {
      m_run.move_slot(w);
      m_scheduler->moved(w);
    } else
      m_scheduler->retire(w);
  }
}

void StepRun::start_setup(unsigned worker) { start_task(worker, JobKind::setup); }
void StepRun::start_teardown(unsigned worker) { start_task(worker, JobKind::teardown); }
void StepRun::stop_worker_task(unsigned worker, bool immediately) {
  m_run.procs.stop(m_task_process[worker], immediately);
}

void StepRun::start_task(unsigned worker, JobKind kind) {
  const bool setup = kind == JobKind::setup;
  JobInfo& task = m_tasks[worker];
  task = JobInfo{};
  task.step = &m_info;
  task.kind = kind;
  task.worker = worker;
  task.name = setup ? "setup" : "teardown";
  JobContext ctx{worker, 0, static_cast<unsigned>(m_jobs.size()), {}, m_run.run_id, m_info.name, {}, {}, {}};
  const auto host = host_of(worker, 0);
  place(ctx, task, host);
  bind_extensions(m_run.pipeline, m_step, ctx);
  task.project = project_of(ctx);
  task.spool = fmt::format("{}/{}-{}-{}-w{}.log", m_run.spool_dir, m_info.cleanup ? "c" : "s",
                           m_info.index, setup ? "setup" : "teardown", worker);
  Prepared p = prepare(setup ? m_step.setup : m_step.teardown, ctx, task.spool);
  // A set-up is not the test: it has its own bound (a cluster coming up, `{wait}`), and
  // no idle timeout meant for the tests' output.
  p.spawn.timeout = m_step.options.setup_timeout;
  p.spawn.idle_timeout = Millis(0);
  task.command = std::move(p.command);
  const std::string error = std::move(p.error);
  m_run.observer.job_started(task);
  m_task_process[worker] = m_run.procs.spawn(
      std::move(p.spawn),
      [this, worker](proc::Stream, std::string_view data) {
        m_run.observer.job_output(m_tasks[worker], data);
      },
      [this, worker, error, setup, ctx](const proc::Exit& exit) {
        JobResult r = classify(exit, error, false);
        if (exit.timed_out) r.limit = m_step.options.setup_timeout;
        // A set-up that failed: what its cluster says (a service that did not come up),
        // saved before the worker's tear-down takes it down.
        const std::string saved = setup && failed_by_itself(exit) ? saved_dir_for("setup", worker, 0) : "";
        const std::string collect = collect_command(ctx, true, saved);
        if (!collect.empty()) {
          const auto started = std::chrono::system_clock::now() - exit.duration;
          run_helper(collect, ctx, m_tasks[worker].spool + ".saved", 0,
                     [this, worker, exit, r, saved, ctx, started]() mutable {
            take_saved(saved, ctx, started, r);
            task_ended(worker, exit, std::move(r));
          });
          return;
        }
        task_ended(worker, exit, std::move(r));
      });
}

// A worker's set-up or tear-down ended (what its extensions saved already taken): said,
// then the scheduler told, after asking its host whether it still answers when it failed.
void StepRun::task_ended(unsigned worker, const proc::Exit& exit, JobResult result) {
  const bool setup = m_tasks[worker].kind == JobKind::setup;
  const auto host = host_of(worker, 0);
  const bool ask_host = host && may_be_the_host(result) && !exit.stopped;
  auto conclude = [this, worker, r = std::move(result), host, setup]() mutable {
    if (host && !m_run.hosts.up(*host) && setup) {
      r.infrastructure = true;
      r.detail = m_run.hosts.lost(*host);
      m_run.observer.job_finished(m_tasks[worker], r);
      m_scheduler->setup_lost(worker);
      return;
    }
    m_run.observer.job_finished(m_tasks[worker], r);
    if (r.status != JobStatus::passed && r.status != JobStatus::cancelled) m_run.other_failures = true;
    m_scheduler->worker_task_finished(worker, r.status == JobStatus::passed);
  };
  if (ask_host)
    m_run.probe(*host, conclude);
  else
    conclude();
}

util::Expected<proc::Spawn> StepRun::spawn_for(const std::string& command, const JobContext& ctx,
                                               const std::string& spool, bool* own) const {
  Vars vars = m_env;
  add_under_step_env(m_step, ctx.host_env, vars);
  if (!ctx.host.empty()) vars["CI_HOST"] = ctx.host;
  if (extended(m_step))
    for (const auto& ext : m_run.pipeline.extensions) {
      if (!ext.env) continue;
      // An extension that cannot give a job what it needs (compose: the project record
      // `pcr clean` relies on) keeps the job from starting, with its reason.
      try {
        add_under_step_env(m_step, ext.env(ctx), vars);
      } catch (const OwnFailure& ex) {
        if (own) *own = true;
        return util::Expected<proc::Spawn>::failure(ex.what());
      } catch (const std::exception& ex) {
        return util::Expected<proc::Spawn>::failure(ex.what());
      }
    }
  vars["CI_COMMAND_NUMBER"] = std::to_string(ctx.number);
  vars["CI_JOB_NUMBER"] = std::to_string(ctx.job);
  if (extended(m_step))
    for (const auto& ext : m_run.pipeline.extensions) {
      if (!ext.starting) continue;
      try {
        ext.starting(ctx, Env(vars.begin(), vars.end()));
      } catch (const OwnFailure& ex) {
        if (own) *own = true;
        return util::Expected<proc::Spawn>::failure(ex.what());
      } catch (const std::exception& ex) {
        return util::Expected<proc::Spawn>::failure(ex.what());
      }
    }
  return make_spawn(command, vars, step_dir(m_run.pipeline, m_step), spool,
                    limits_of(m_step.options));
}

StepRun::Prepared StepRun::prepare(const Command& cmd, const JobContext& ctx,
                                   const std::string& spool) const {
  Prepared p;
  auto command = build_command(cmd, ctx);
  if (command)
    p.command = std::move(*command);
  else
    p.error = fmt::format("the command could not be built: {}", command.error());
  auto spawn = spawn_for(p.command, ctx, spool, &p.own);
  if (!spawn && p.error.empty()) p.error = spawn.error();
  if (p.error.empty()) {
    p.spawn = std::move(*spawn);
  } else {
    // Reported as not started; the process only gives the job its place in the run.
    p.spawn = make_spawn("exit 127", m_env, step_dir(m_run.pipeline, m_step), spool, limits_of(m_step.options));
  }
  return p;
}

// How a process ended, as a job result (before output checks).
JobResult StepRun::classify(const proc::Exit& exit, const std::string& build_error,
                            bool pipeline_timed_out) const {
  JobResult r;
  r.exit_code = exit.exit_code;
  r.signal = exit.signal;
  r.duration = exit.duration;
  r.leftovers = exit.leftovers;
  r.bytes = exit.bytes;
  r.output_error = exit.spool_error;
  if (!build_error.empty() || !exit.spawn_error.empty()) {
    r.status = JobStatus::not_started;
    r.detail =
        build_error.empty() ? fmt::format("could not start: {}", exit.spawn_error) : build_error;
  } else if (exit.timed_out) {
    r.status = JobStatus::timed_out;
    r.limit = m_step.options.timeout.value_or(Millis(0));
  } else if (exit.idle_timed_out) {
    r.status = JobStatus::idle_timeout;
    r.limit = m_step.options.idle_timeout.value_or(Millis(0));
  } else if (exit.stopped && pipeline_timed_out) {
    r.status = JobStatus::timed_out;
    r.limit = m_run.pipeline.timeout.value_or(Millis(0));
    r.detail = "the pipeline's timeout expired";
  } else if (exit.stopped) {
    r.status = JobStatus::cancelled;
  } else if (exit.signal != 0) {
    r.status = JobStatus::signalled;
  } else if (exit.exit_code != 0) {
    r.status = JobStatus::failed;
  }
  return r;
}

void StepRun::start(std::size_t index, unsigned worker, unsigned attempt) {
  Job& job = m_jobs[index];
  JobContext ctx{worker,        job.info.job, static_cast<unsigned>(m_jobs.size()),
                 job.plan.items, m_run.run_id, m_info.name,
                 {},            {},           {}};
  place(ctx, job.info, host_of(worker, index));
  bind_extensions(m_run.pipeline, m_step, ctx);
  job.info.worker = worker;
  job.info.attempt = attempt;
  job.info.project = project_of(ctx);
  const std::string prefix = fmt::format("{}/{}-{}-{}-{}", m_run.spool_dir,
                                         m_info.cleanup ? "c" : "s", m_info.index, job.info.job,
                                         attempt);
  job.info.spool = prefix + ".log";
  job.junit_before.clear();
  if (m_step.options.results.format == ResultsSpec::Format::junit)
    for (const auto& path : junit_files(job)) {
      struct stat st {};
      if (::stat(path.c_str(), &st) == 0) job.junit_before.emplace(path, stamp_of(st));
    }
  job.stdout_path = m_keep_stdout ? prefix + ".out" : "";
  Prepared p = prepare(m_step.commands[job.plan.command], ctx, job.info.spool);
  if (p.error.empty() && m_step.form == Form::for_each && extended(m_step)) {
    // An extension's step before the job (compose `reset:` on a reused cluster): in the
    // same shell, so its failure keeps the job from running, said in its output.
    const bool first = m_reset_workers.insert(worker).second;
    for (const auto& ext : m_run.pipeline.extensions)
      if (ext.before_job)
        if (auto before = ext.before_job(ctx, first, attempt)) {
          const std::string first_run = fmt::format(
              "{{ {}\n}} || {{ echo 'pcr: the reset before the job failed' >&2; exit 125; }}\n", *before);
          p.command = first_run + p.command;
          p.spawn.command = first_run + p.spawn.command;
        }
  }
  job.info.command = std::move(p.command);
  if (m_step.form != Form::for_each)
    m_info.expected[index] = Millis(m_run.timings.get(m_info.name, job.info.command).value_or(0));
  const std::string error = std::move(p.error);
  job.own_fault = p.own;
  p.spawn.stdout_path = job.stdout_path;
  if (m_run.options.only_jobs_streamed && m_jobs.size() == 1 && m_step.options.output == OutputMode::show)
    p.spawn.spool_tail = k_streamed_tail;
  p.spawn.discard_output = m_run.options.output_unread && !m_keep_stdout && !m_step.options.idle_timeout;
  m_run.observer.job_started(job.info);
  job.running = true;
  job.started_at = proc::Clock::now();
  if (const auto slow = m_step.options.slow; slow && slow->count() > 0)
    job.slow_timer = m_run.loop.add_timer(*slow, *slow, [this, index] { m_run.observer.job_slow(progress(index)); });
  job.process = m_run.procs.spawn(
      std::move(p.spawn),
      [this, index](proc::Stream, std::string_view data) {
        m_run.observer.job_output(m_jobs[index].info, data);
      },
      [this, index, error](const proc::Exit& exit) {
        after_job(index, failed_by_itself(exit), [this, index, error, exit] { ended(index, exit, error); });
      });
  job.ctx = std::move(ctx);
}




// The extensions' after-job commands (e.g. stopping a command inside a container), run
// before the job is reported and its worker goes on; then `then`. First, what they save
// about the job (its services' logs, when it failed).
void StepRun::after_job(std::size_t index, bool failed, std::function<void()> then) {
  Job& job = m_jobs[index];
  std::string command;
  job.saved_dir.clear();
  if (extended(m_step)) {
    const std::string dir = saved_dir_for(job.info.name, job.info.worker, job.info.attempt);
    command = collect_command(job.ctx, failed, dir);
    if (!command.empty()) job.saved_dir = dir;
    for (const auto& ext : m_run.pipeline.extensions)
      if (ext.after_job)
        if (auto c = ext.after_job(job.ctx)) command += (command.empty() ? "" : "; ") + *c;
  }
  if (command.empty()) return then();
  run_helper(command, job.ctx, job.info.spool + ".after", job.info.job, std::move(then));
}

// An extension's command for a job or task (number `job`, 0 for a task) that ended,
// bounded by its own timeout; a failure is a note. Then `then`.
void StepRun::run_helper(const std::string& command, const JobContext& ctx, const std::string& spool, unsigned job,
                         std::function<void()> then) {
  auto described = spawn_for(command, ctx, spool);
  // An extension that failed here failed at the job's start too, which reported it.
  if (!described) return then();
  proc::Spawn spawn = std::move(*described);
  spawn.timeout = k_after_job_timeout;
  spawn.idle_timeout = Millis(0);
  spawn.kill_grace = k_helper_grace;
  m_run.procs.spawn(std::move(spawn), nullptr, [this, job, spool, then](const proc::Exit& exit) {
    if (exit.exit_code != 0 || exit.signal != 0 || exit.timed_out || !exit.spawn_error.empty()) {
      Note n{NoteKind::after_job_failed};
      n.step = m_info.name;
      n.job = job;
      n.timed_out = exit.timed_out;
      n.detail = util::tail_lines(spool, 5);
      m_run.observer.note(n);
    }
    then();
  });
}

void StepRun::stop(std::size_t index, bool immediately) {
  m_run.procs.stop(m_jobs[index].process, immediately);
}


void StepRun::ended(std::size_t index, const proc::Exit& exit, const std::string& build_error) {
  Job& job = m_jobs[index];
  job.running = false;
  if (job.slow_timer) m_run.loop.cancel(std::exchange(job.slow_timer, 0));
  JobResult r = classify(exit, build_error, m_run.timed_out && !m_info.cleanup);
  r.own_fault = job.own_fault;
  // When the job started, on the wall clock the extensions' worlds keep (docker events).
  const auto started = std::chrono::system_clock::now() -
                       std::chrono::duration_cast<std::chrono::system_clock::duration>(proc::Clock::now() - job.started_at);
  take_saved(std::exchange(job.saved_dir, ""), job.ctx, started, r);
  if (!r.output_error.empty()) {
    // Said on the job, and the run fails for it at the end.
    add_detail(r, "its output could not all be kept (" + r.output_error + ")");
    if (m_run.result.output_error.empty()) m_run.result.output_error = r.output_error;
  }
  if (r.status == JobStatus::passed && m_keep_stdout && !r.output_error.empty()) {
    // What the step reads of it (capture, expect, TAP) is not all there: not a pass, and
    // not the job's fault either.
    r.status = JobStatus::unexpected_output;
    r.own_fault = true;
  } else if (r.status == JobStatus::passed && m_read_stdout) {
    // Read as a stream: `expect` looks at a line at a time (the first max_line_bytes of a
    // longer one), and only what `capture` or a check keeps is held, within a bound.
    const bool keep = !m_step.options.capture.empty() || static_cast<bool>(m_step.options.check);
    std::vector<std::string> lines;
    std::size_t kept = 0, count = 0;
    bool matched = !m_expect;
    std::string too_much;
    util::each_line(job.stdout_path, max_line_bytes, [&](std::string_view line, bool cut) {
      ++count;
      if (!matched && m_expect->search(line)) matched = true;
      if (!keep) return !matched;
      kept += line.size() + 1;
      if (cut)
        too_much = fmt::format("line {} of stdout is longer than the {} MiB a kept line may have", count,
                               max_line_bytes >> 20);
      else if (m_kept_bytes + kept > max_kept_bytes || m_kept_lines + lines.size() == max_items)
        too_much = fmt::format("the step's stdout is more than the {} MiB or {} lines its {} keeps",
                               max_kept_bytes >> 20, max_items,
                               m_step.options.capture.empty() ? "output check" : "capture");
      else
        lines.emplace_back(line);
      return too_much.empty();
    });
    bool ok = matched && too_much.empty();
    if (!too_much.empty())
      r.detail = too_much;
    else if (!matched)
      r.detail = fmt::format("no line of stdout matches /{}/", m_step.options.expect);
    if (ok && m_step.options.check && !m_step.options.check(lines)) {
      ok = false;
      r.detail = "the output check rejected stdout";
    }
    if (!ok) r.status = JobStatus::unexpected_output;
    if (ok && !m_step.options.capture.empty()) {
      m_kept_bytes += kept;
      m_kept_lines += lines.size();
      m_stdout_lines[index] = std::move(lines);
    }
  }
  if (m_step.options.results.format != ResultsSpec::Format::none &&
      (r.status == JobStatus::passed || r.status == JobStatus::failed))
    read_results(job, r);
  forget_stdout(job.stdout_path);
  // A failure on a host: ask the host whether it still answers before blaming the job.
  const auto host = host_of(job.info.worker, index);
  if (host && may_be_the_host(r) && !exit.stopped) {
    m_run.probe(*host, [this, index, r, host]() { conclude(index, r, host); });
    return;
  }
  conclude(index, r, host);
}




void StepRun::conclude(std::size_t index, JobResult r, std::optional<std::size_t> host) {
  Job& job = m_jobs[index];
  const bool lost = std::exchange(job.lost, false);
  if (host && !m_run.hosts.up(*host) &&
      ((r.status != JobStatus::passed && r.status != JobStatus::cancelled) ||
       (lost && r.status == JobStatus::cancelled))) {
    r.infrastructure = true;
    const std::string why = m_run.hosts.lost(*host);
    const std::size_t up = m_run.hosts.up_count();
    if (m_step.per_host) {
      r.status = JobStatus::cancelled;
      r.detail = why + ": no once-per-host job there";
    } else if (up > 0 && (m_run.interrupt || m_run.timed_out)) {
      r.status = JobStatus::cancelled;  // the run is stopping: nothing runs again
      r.detail = why;
    } else if (up > 0) {
      r.will_retry = true;
      r.detail = why + ": the job runs again on another host";
      ++m_result.rerun;
      m_run.observer.job_finished(job.info, r);
      m_scheduler->requeue(index);
      return;
    } else {
      r.detail = why + ", and no other host answers";
    }
  }
  if (r.status != JobStatus::passed && r.status != JobStatus::cancelled && !r.infrastructure)
    ++job.failures;
  r.flaky = r.status == JobStatus::passed && job.failures > 0;
  r.flaky_fails = r.flaky && m_run.options.fail_on_flaky;
  const sched::Ended ended = r.status == JobStatus::passed && !r.flaky_fails
                                 ? sched::Ended::passed
                             : r.status == JobStatus::cancelled ? sched::Ended::cancelled
                                                                : sched::Ended::failed;
  record_timing(job, r);
  r.will_retry = !r.flaky_fails && m_scheduler->will_retry(index, ended);
  if (r.status == JobStatus::passed && !r.flaky_fails) ++m_result.passed;
  if (!r.will_retry) job.passed = r.status == JobStatus::passed && !r.flaky_fails;
  if (r.flaky) ++m_result.flaky;
  if (!r.will_retry && ended == sched::Ended::failed) {
    ++m_result.failed;
    (r.own_fault ? m_run.own_failures : m_run.other_failures) = true;
  }
  if (ended == sched::Ended::cancelled) ++m_result.cancelled;
  if (m_shared) {
    nlohmann::json j = {{"name", job.info.name},
                        {"status", r.status == JobStatus::passed ? (r.flaky ? "flaky" : "passed") : "failed"},
                        {"duration_ms", r.duration.count()},
                        {"attempt", job.info.attempt + 1},
                        {"tail", r.status == JobStatus::passed ? "" : util::tail_lines(job.info.spool, 20)}};
    m_shared_results[index] = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  m_run.observer.job_finished(job.info, r);
  m_scheduler->finished(index, ended);
}

}  // namespace pcr::pipeline
