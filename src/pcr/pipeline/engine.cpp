#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <pcr/pipeline/engine.hpp>
#include <pcr/proc/loop.hpp>
#include <pcr/proc/process.hpp>
#include <pcr/sched/scheduler.hpp>
#include <pcr/sched/timings.hpp>
#include <pcr/util/glob.hpp>
#include <pcr/util/regex.hpp>
#include <pcr/util/text.hpp>
#include <random>
#include <thread>
#include <utility>

extern char** environ;

namespace pcr::pipeline {

namespace fs = std::filesystem;
using proc::Clock;

namespace {

Millis since(Clock::time_point t) { return std::chrono::duration_cast<Millis>(Clock::now() - t); }

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(std::move(line));
  return lines;
}

std::string tail_of(const std::string& path, size_t max_lines) {
  auto lines = read_lines(path);
  size_t from = lines.size() > max_lines ? lines.size() - max_lines : 0;
  std::string out;
  for (size_t i = from; i < lines.size(); ++i) out += lines[i] + "\n";
  return out;
}

unsigned worker_count(const Step& step, size_t jobs, unsigned pool = 0) {
  if (step.per_host) return static_cast<unsigned>(std::max<size_t>(jobs, 1));
  switch (step.form) {
    case Form::run:
      return 1;
    case Form::parallel:
      return step.parallel;
    case Form::commands:
      return static_cast<unsigned>(step.commands.size());
    case Form::for_each: {
      unsigned w = step.workers > 0 ? step.workers : pool > 0 ? pool : default_workers();
      return std::max(1u, std::min<unsigned>(w, static_cast<unsigned>(std::max<size_t>(jobs, 1))));
    }
  }
  return 1;
}

// Why a step cannot take these items ("" when it can): more than max_items (a runaway
// glob or command), or an item holding a NUL byte, which would cut the command there.
std::string bad_items(const std::vector<std::string>& items) {
  if (items.size() > max_items)
    return fmt::format("for_each: {} items, more than the {} one step takes", items.size(),
                       max_items);
  for (size_t i = 0; i < items.size(); ++i)
    if (items[i].find('\0') != std::string::npos)
      return fmt::format("for_each: item {} contains a NUL byte, which no command can hold",
                         i + 1);
  return "";
}

// How long an extension's after-job command (Extension::after_job) may take.
constexpr Millis k_after_job_timeout{60'000};

struct JobPlan {
  size_t command = 0;  // index into Step::commands
  std::vector<std::string> items;
  std::int64_t cost = 1;  // estimated from recorded timings
  bool known = false;     // some timing of the step was recorded
};

std::string job_name(const JobPlan& j) {
  std::string name;
  for (const auto& item : j.items) name += (name.empty() ? "" : " ") + item;
  return name;
}

// A for_each step's jobs: each `separate` item alone, the rest in `groups` balanced by
// recorded timings, or in batches of `batch`; each job's cost is the sum of its items'.
std::vector<JobPlan> for_each_jobs(const Step& step, const std::vector<std::string>& items,
                                   const sched::Timings& timings) {
  bool known = false;
  const auto costs = sched::estimate(timings, step.name, items, &known);
  std::vector<JobPlan> jobs;
  std::vector<size_t> rest;
  for (size_t i = 0; i < items.size(); ++i) {
    if (std::find(step.separate.begin(), step.separate.end(), items[i]) != step.separate.end())
      jobs.push_back({0, {items[i]}, costs[i], known});
    else
      rest.push_back(i);
  }
  if (step.groups > 0) {
    std::vector<std::int64_t> rest_costs;
    std::vector<std::string> rest_names;
    // Nothing recorded yet: round-robin in listed order (equal names keep index order).
    for (size_t i : rest)
      rest_costs.push_back(costs[i]), rest_names.push_back(known ? items[i] : "");
    for (const auto& group : sched::balance(rest_costs, rest_names, step.groups)) {
      if (group.empty()) continue;  // fewer items than groups: no job without items
      JobPlan j;
      j.cost = 0;
      j.known = known;
      for (size_t g : group) j.items.push_back(items[rest[g]]), j.cost += costs[rest[g]];
      jobs.push_back(std::move(j));
    }
  } else {
    const size_t batch = std::max(1u, step.batch);
    for (size_t at = 0; at < rest.size(); at += batch) {
      JobPlan j;
      j.cost = 0;
      j.known = known;
      for (size_t k = at; k < std::min(rest.size(), at + batch); ++k)
        j.items.push_back(items[rest[k]]), j.cost += costs[rest[k]];
      jobs.push_back(std::move(j));
    }
  }
  return jobs;
}

// The queue: for_each jobs longest first by recorded timings (ties by name); others,
// and steps with nothing recorded yet, as listed.
std::vector<size_t> queue_order(const Step& step, const std::vector<JobPlan>& jobs) {
  if (step.form != Form::for_each || jobs.empty() || !jobs.front().known) {
    std::vector<size_t> order(jobs.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    return order;
  }
  std::vector<std::int64_t> costs;
  std::vector<std::string> names;
  for (const auto& j : jobs) costs.push_back(j.cost), names.push_back(job_name(j));
  return sched::longest_first(costs, names);
}

std::vector<JobPlan> expand_jobs(const Step& step, const std::vector<std::string>& items,
                                 const sched::Timings& timings) {
  std::vector<JobPlan> jobs;
  switch (step.form) {
    case Form::run:
      jobs.push_back({});
      break;
    case Form::parallel:
      jobs.resize(step.parallel);
      break;
    case Form::commands:
      for (size_t i = 0; i < step.commands.size(); ++i) jobs.push_back({i, {}});
      break;
    case Form::for_each:
      jobs = for_each_jobs(step, items, timings);
      break;
  }
  return jobs;
}

// This machine's share of a for_each step's items under `--shard` (main steps only).
std::vector<std::string> shard_share(const Step& step, bool cleanup, std::vector<std::string> items,
                                     const sched::Timings& timings, const RunOptions& o) {
  if (o.shard_total == 0 || cleanup || !step.extended || step.form != Form::for_each) return items;
  return sched::shard_items(items, timings, step.name, o.shard_index, o.shard_total);
}

// The host the next worker goes to: among those `up`, the one with the lowest load per
// capacity after taking it (the lowest index on a tie), so that workers 1, 2, 3, …
// interleave over the hosts in proportion to their capacity. Every host when none is up.
size_t pick_host(const std::vector<Host>& hosts, const std::vector<bool>& up,
                 const std::vector<unsigned>& load) {
  const bool any_up = std::find(up.begin(), up.end(), true) != up.end();
  size_t best = 0;
  bool found = false;
  for (size_t h = 0; h < hosts.size(); ++h) {
    if (any_up && !up[h]) continue;
    const auto cap = std::max(1u, hosts[h].workers);
    const auto best_cap = std::max(1u, hosts[best].workers);
    // (load+1)/cap < (best_load+1)/best_cap, in integers.
    if (!found || static_cast<std::uint64_t>(load[h] + 1) * best_cap <
                      static_cast<std::uint64_t>(load[best] + 1) * cap)
      best = h, found = true;
  }
  return best;
}

// Workers 1..n placed on all hosts, as a run places them when every host answers.
std::vector<size_t> initial_placement(const std::vector<Host>& hosts, unsigned n) {
  std::vector<bool> up(hosts.size(), true);
  std::vector<unsigned> load(hosts.size(), 0);
  std::vector<size_t> out;
  for (unsigned w = 0; w < n && !hosts.empty(); ++w) {
    size_t h = pick_host(hosts, up, load);
    ++load[h];
    out.push_back(h);
  }
  return out;
}

unsigned total_capacity(const std::vector<Host>& hosts) {
  unsigned sum = 0;
  for (const auto& h : hosts) sum += h.workers;
  return sum;
}

bool placed(const Pipeline& p, const Step& s) { return !p.hosts.empty() && s.extended; }

std::string base_dir_of(const Pipeline& p) { return p.base_dir.empty() ? "." : p.base_dir; }

// Give `ctx` the placeholders of `p`'s extensions.
// Extensions add to the jobs of workers; a per_host job belongs to a host, not a worker.
bool extended(const Step& step) { return step.extended && !step.per_host; }

void bind_extensions(const Pipeline& p, const Step& step, JobContext& ctx) {
  if (p.extensions.empty() || !extended(step)) return;
  ctx.resolve = [&p, ctx](const std::string& name,
                          const std::string& arg) -> std::optional<std::string> {
    for (const auto& ext : p.extensions)
      if (ext.placeholder)
        if (auto v = ext.placeholder(name, arg, ctx)) return v;
    return std::nullopt;
  };
}

// The extensions' environment for a job, under the step's own `env`.
// Set `env` in `vars` under the step's own `env`: a variable the step sets keeps its value.
void add_under_step_env(const Step& step, const Env& env, std::map<std::string, std::string>& vars) {
  for (const auto& kv : env) {
    bool step_sets = std::any_of(step.options.env.begin(), step.options.env.end(),
                                 [&](const auto& set) { return set.first == kv.first; });
    if (!step_sets) vars[kv.first] = kv.second;
  }
}

void add_extension_env(const Pipeline& p, const Step& step, const JobContext& ctx,
                       std::map<std::string, std::string>& vars) {
  if (!extended(step)) return;
  for (const auto& ext : p.extensions)
    if (ext.env) add_under_step_env(step, ext.env(ctx), vars);
}

std::string step_dir(const Pipeline& p, const Step& s) {
  if (s.options.workdir.empty()) return base_dir_of(p);
  fs::path w(s.options.workdir);
  return w.is_absolute() ? w.string() : (fs::path(base_dir_of(p)) / w).string();
}

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
    default:
      return "a signal";
  }
}

class Engine {
 public:
  Engine(const Pipeline& p, const RunOptions& o, Observer& obs)
      : m_pipeline(p), m_options(o), m_observer(obs), m_procs(m_loop) {}

  int run();

 private:
  struct StepRun;
  enum class Phase { steps, cleanup, done };

  void next();
  void start_step(const Step& step);
  void launch_step(StepRun& run, const std::vector<std::string>& items);
  void step_done();
  void finish();
  void on_signal(int sig);
  std::map<std::string, std::string> base_env() const;
  std::map<std::string, std::string> step_env(const Step& step) const;
  // Hosts: probing, placement of workers, quarantine.
  void probe_hosts();
  void probe(size_t host, std::function<void()> then);
  void host_lost(size_t host, const std::string& reason, bool at_start);
  size_t pick() const;  // the host the next worker goes to
  size_t slot_host(unsigned slot);
  void move_slot(unsigned slot);
  size_t hosts_up() const;
  std::string lost(size_t host) const;  // "host b stopped answering (why)"
  unsigned capacity_up() const;
  const std::vector<const Step*>& current_list() const {
    return m_phase == Phase::steps ? m_steps : m_cleanup;
  }

  const Pipeline& m_pipeline;
  const RunOptions& m_options;
  Observer& m_observer;
  proc::Loop m_loop;
  proc::ProcessSet m_procs;
  std::string m_run_id;
  std::string m_spool_dir;
  bool m_own_spool = false;
  std::vector<const Step*> m_steps, m_cleanup;
  Phase m_phase = Phase::steps;
  size_t m_index = 0;
  std::unique_ptr<StepRun> m_current;
  std::map<std::string, std::vector<std::string>> m_captures;
  sched::Timings m_timings;
  std::string m_timings_path;
  bool m_failed = false;
  bool m_timed_out = false;
  int m_interrupt = 0;
  int m_signals = 0;
  Clock::time_point m_started;
  proc::Loop::TimerId m_tick = 0, m_deadline = 0;
  RunResult m_result;
  struct HostState {
    bool up = true;
    std::string reason;
    unsigned load = 0;  // worker slots placed on it
    bool probing = false;
    proc::ProcessSet::Id probe = 0;
    std::vector<std::function<void()>> waiting;  // to call when the probe ends
  };
  std::vector<HostState> m_hosts;   // as `m_pipeline.hosts`
  std::vector<size_t> m_slot_host;  // worker slot - 1 → host
  unsigned m_pool = 0;    // a for_each pool's default size: the capacity that answered at the start
  unsigned m_probes = 0;  // start-up probes still running
  unsigned m_probe_count = 0;  // probes so far (spool names)
};

struct Engine::StepRun : sched::JobRunner {
  struct Job {
    JobPlan plan;
    JobInfo info;
    JobContext ctx;  // of the current attempt
    proc::ProcessSet::Id process = 0;
    std::string stdout_path;
    unsigned failures = 0;  // attempts the job itself failed (not lost with a host)
    bool lost = false;      // stopped by pcr because its host stopped answering
  };

  Engine& engine;
  const Step& step;
  StepInfo info;
  std::vector<Job> jobs;
  std::unique_ptr<sched::Scheduler> scheduler;
  std::map<std::string, std::string> env;
  std::vector<std::vector<std::string>> stdout_lines;  // per job, when captured
  std::optional<util::Regex> expect;
  Clock::time_point started = Clock::now();
  StepResult result;
  proc::ProcessSet::Id lister = 0;  // the for_each command, while it runs
  bool keep_stdout = false;
  std::vector<JobInfo> tasks;  // per worker: its set-up or tear-down
  std::vector<proc::ProcessSet::Id> task_process;
  std::vector<size_t> job_host;  // per_host: job → host

  // The host of `worker` (or, per_host, of job `index`), and whether the step has hosts.
  std::optional<size_t> host_of(unsigned worker, size_t index) {
    if (!placed(engine.m_pipeline, step)) return std::nullopt;
    if (step.per_host)
      return index < job_host.size() ? std::optional<size_t>(job_host[index]) : std::nullopt;
    return engine.slot_host(worker);
  }

  void place(JobContext& ctx, JobInfo& job_info, std::optional<size_t> host) {
    if (!host) return;
    const Host& h = engine.m_pipeline.hosts[*host];
    ctx.host = job_info.host = h.name;
    ctx.host_env = h.env;
  }

  // A failure that may be the host's: everything but a clean pass, an output check or
  // a stop pcr asked for.
  static bool may_be_the_host(const JobResult& r) {
    return r.status == JobStatus::failed || r.status == JobStatus::signalled ||
           r.status == JobStatus::timed_out || r.status == JobStatus::idle_timeout ||
           r.status == JobStatus::not_started;
  }

  // The slots of this step on `host`, after it stopped answering: a pool retires them
  // while another of its workers is on a host that answers; pinned jobs (and a pool left
  // with no worker) move theirs to another host.
  void host_gone(size_t host) {
    if (!scheduler) return;
    // Jobs still running there may wait on an engine that will never answer: stop them
    // now; they end as lost with their host.
    for (size_t i = 0; i < jobs.size(); ++i) {
      if (scheduler->state(i) != sched::JobState::running || jobs[i].lost) continue;
      auto h = host_of(jobs[i].info.worker, i);
      if (h && *h == host) jobs[i].lost = true, engine.m_procs.stop(jobs[i].process, false);
    }
    leave_down_hosts();
  }

  // This step's workers on hosts that do not answer: a pool retires them while another of
  // its workers is on a host that answers; pinned jobs (and a pool left with no worker)
  // move theirs to another host.
  void leave_down_hosts() {
    if (step.per_host) return;
    const bool pinned = step.form != Form::for_each;
    bool others = false;
    for (unsigned w = 1; w <= info.workers; ++w)
      if (!scheduler->retired(w) && engine.m_hosts[engine.slot_host(w)].up) others = true;
    for (unsigned w = 1; w <= info.workers; ++w) {
      if (engine.m_hosts[engine.slot_host(w)].up) continue;
      if (pinned || !others)
        engine.move_slot(w);
      else
        scheduler->retire(w);
    }
  }

  StepRun(Engine& e, const Step& s) : engine(e), step(s) {}

  void start_setup(unsigned worker) override { start_task(worker, JobKind::setup); }
  void start_teardown(unsigned worker) override { start_task(worker, JobKind::teardown); }
  void stop_worker_task(unsigned worker, bool immediately) override {
    engine.m_procs.stop(task_process[worker], immediately);
  }

  void start_task(unsigned worker, JobKind kind) {
    const bool setup = kind == JobKind::setup;
    JobInfo& task = tasks[worker];
    task = JobInfo{};
    task.step = &info;
    task.kind = kind;
    task.worker = worker;
    JobContext ctx{
        worker, 0, static_cast<unsigned>(jobs.size()), {}, engine.m_run_id, info.name, {}, {}, {}};
    const auto host = host_of(worker, 0);
    place(ctx, task, host);
    bind_extensions(engine.m_pipeline, step, ctx);
    std::string error;
    task.command = build((setup ? step.setup : step.teardown), ctx, error);
    task.spool = fmt::format("{}/{}-{}-{}-w{}.log", engine.m_spool_dir, info.cleanup ? "c" : "s",
                             info.index, setup ? "setup" : "teardown", worker);
    proc::Spawn spawn = spawn_for(task.command, ctx, task.spool);
    if (!error.empty()) spawn.command = "exit 127";
    engine.m_observer.job_started(task);
    task_process[worker] = engine.m_procs.spawn(
        std::move(spawn),
        [this, worker](proc::Stream, std::string_view data) {
          engine.m_observer.job_output(tasks[worker], data);
        },
        [this, worker, error, host, setup](const proc::Exit& exit) {
          JobResult r = classify(exit, error, false);
          auto conclude = [this, worker, r, host, setup]() mutable {
            if (host && !engine.m_hosts[*host].up && setup) {
              r.infrastructure = true;
              r.detail = engine.lost(*host);
              engine.m_observer.job_finished(tasks[worker], r);
              scheduler->setup_lost(worker);
              return;
            }
            engine.m_observer.job_finished(tasks[worker], r);
            scheduler->worker_task_finished(worker, r.status == JobStatus::passed);
          };
          if (host && may_be_the_host(r) && !exit.stopped)
            engine.probe(*host, conclude);
          else
            conclude();
        });
  }

  // What `cmd` gives for `ctx`; empty, with `error` set, when it throws.
  static std::string build(const Command& cmd, const JobContext& ctx, std::string& error) {
    try {
      return cmd(ctx);
    } catch (const std::exception& ex) {
      error = fmt::format("the command could not be built: {}", ex.what());
      return "";
    }
  }

  proc::Spawn spawn_for(const std::string& command, const JobContext& ctx,
                        const std::string& spool) {
    proc::Spawn spawn;
    spawn.command = command;
    auto vars = env;
    add_under_step_env(step, ctx.host_env, vars);
    if (!ctx.host.empty()) vars["CI_HOST"] = ctx.host;
    add_extension_env(engine.m_pipeline, step, ctx, vars);
    vars["CI_COMMAND_NUMBER"] = std::to_string(ctx.number);
    vars["CI_JOB_NUMBER"] = std::to_string(ctx.job);
    for (auto& [k, v] : vars) spawn.env.push_back(k + "=" + v);
    spawn.workdir = step_dir(engine.m_pipeline, step);
    spawn.spool_path = spool;
    spawn.timeout = step.options.timeout.value_or(Millis(0));
    spawn.idle_timeout = step.options.idle_timeout.value_or(Millis(0));
    spawn.kill_grace = step.options.kill_grace;
    return spawn;
  }

  // How a process ended, as a job result (before output checks).
  JobResult classify(const proc::Exit& exit, const std::string& build_error,
                     bool pipeline_timed_out) {
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
      r.limit = step.options.timeout.value_or(Millis(0));
    } else if (exit.idle_timed_out) {
      r.status = JobStatus::idle_timeout;
      r.limit = step.options.idle_timeout.value_or(Millis(0));
    } else if (exit.stopped && pipeline_timed_out) {
      r.status = JobStatus::timed_out;
      r.limit = engine.m_pipeline.timeout.value_or(Millis(0));
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

  void start(size_t index, unsigned worker, unsigned attempt) override {
    Job& job = jobs[index];
    JobContext ctx{worker,
                   job.info.job,
                   static_cast<unsigned>(jobs.size()),
                   job.plan.items,
                   engine.m_run_id,
                   info.name,
                   {},
                   {},
                   {}};
    place(ctx, job.info, host_of(worker, index));
    bind_extensions(engine.m_pipeline, step, ctx);
    job.info.worker = worker;
    job.info.attempt = attempt;
    std::string prefix = fmt::format("{}/{}-{}-{}-{}", engine.m_spool_dir, info.cleanup ? "c" : "s",
                                     info.index, job.info.job, attempt);
    job.info.spool = prefix + ".log";
    job.stdout_path = keep_stdout ? prefix + ".out" : "";
    std::string error;
    job.info.command = build(step.commands[job.plan.command], ctx, error);
    proc::Spawn spawn = spawn_for(job.info.command, ctx, job.info.spool);
    spawn.stdout_path = job.stdout_path;
    if (!error.empty()) spawn.command = "exit 127";  // reported below as not started
    engine.m_observer.job_started(job.info);
    job.process = engine.m_procs.spawn(
        std::move(spawn),
        [this, index](proc::Stream, std::string_view data) {
          engine.m_observer.job_output(jobs[index].info, data);
        },
        [this, index, error](const proc::Exit& exit) {
          after_job(index, [this, index, error, exit] { ended(index, exit, error); });
        });
    job.ctx = std::move(ctx);
  }

  // The extensions' after-job commands (e.g. stopping a command inside a container), run
  // before the job is reported and its worker goes on; then `then`.
  void after_job(size_t index, std::function<void()> then) {
    Job& job = jobs[index];
    std::string command;
    if (extended(step))
      for (const auto& ext : engine.m_pipeline.extensions)
        if (ext.after_job)
          if (auto c = ext.after_job(job.ctx)) command += (command.empty() ? "" : "; ") + *c;
    if (command.empty()) return then();
    const std::string spool = job.info.spool + ".after";
    proc::Spawn spawn = spawn_for(command, job.ctx, spool);
    spawn.timeout = k_after_job_timeout;
    spawn.idle_timeout = Millis(0);
    spawn.kill_grace = Millis(2000);
    engine.m_procs.spawn(std::move(spawn), nullptr,
                         [this, index, spool, then](const proc::Exit& exit) {
                           if (exit.exit_code != 0 || exit.signal != 0 || exit.timed_out ||
                               !exit.spawn_error.empty()) {
                             std::string tail = tail_of(spool, 5);
                             engine.m_observer.note(fmt::format(
                                 "{} #{}: could not stop what the job started outside pcr "
                                 "(inside a container){}{}",
                                 info.name, jobs[index].info.job,
                                 exit.timed_out ? ": timed out" : "",
                                 tail.empty() ? "" : ":\n" + tail));
                           }
                           then();
                         });
  }

  void stop(size_t index, bool immediately) override {
    engine.m_procs.stop(jobs[index].process, immediately);
  }

  // What a job took, for the next run's queue order: per item for for_each jobs.
  void record_timing(const Job& job, const JobResult& r) {
    if (r.status == JobStatus::cancelled || r.status == JobStatus::not_started) return;
    const auto ms = static_cast<std::int64_t>(r.duration.count());
    if (step.form == Form::for_each) {
      if (job.plan.items.empty()) return;
      const auto each = ms / static_cast<std::int64_t>(job.plan.items.size());
      for (const auto& item : job.plan.items) engine.m_timings.record(info.name, item, each);
    } else {
      engine.m_timings.record(info.name, job.info.command, ms);
    }
  }

  void ended(size_t index, const proc::Exit& exit, const std::string& build_error) {
    Job& job = jobs[index];
    JobResult r = classify(exit, build_error, engine.m_timed_out && !info.cleanup);
    if (!r.output_error.empty()) {
      // Said on the job, and the run fails for it at the end.
      const std::string lost = "its output could not all be kept (" + r.output_error + ")";
      r.detail = r.detail.empty() ? lost : r.detail + "; " + lost;
      if (engine.m_result.output_error.empty()) engine.m_result.output_error = r.output_error;
    }
    if (r.status == JobStatus::passed && keep_stdout) {
      auto lines = read_lines(job.stdout_path);
      bool ok = true;
      if (expect) {
        ok = std::any_of(lines.begin(), lines.end(),
                         [&](const std::string& l) { return expect->search(l); });
        if (!ok) r.detail = fmt::format("no line of stdout matches /{}/", step.options.expect);
      }
      if (ok && step.options.check && !step.options.check(lines)) {
        ok = false;
        r.detail = "the output check rejected stdout";
      }
      if (!ok) r.status = JobStatus::unexpected_output;
      if (ok && !step.options.capture.empty()) stdout_lines[index] = std::move(lines);
    }
    // A failure on a host: ask the host whether it still answers before blaming the job.
    const auto host = host_of(job.info.worker, index);
    if (host && may_be_the_host(r) && !exit.stopped) {
      engine.probe(*host, [this, index, r, host]() { conclude(index, r, host); });
      return;
    }
    conclude(index, r, host);
  }

  void conclude(size_t index, JobResult r, std::optional<size_t> host) {
    Job& job = jobs[index];
    const bool lost = std::exchange(job.lost, false);
    if (host && !engine.m_hosts[*host].up &&
        ((r.status != JobStatus::passed && r.status != JobStatus::cancelled) ||
         (lost && r.status == JobStatus::cancelled))) {
      r.infrastructure = true;
      const std::string why = engine.lost(*host);
      if (step.per_host) {
        r.status = JobStatus::cancelled;
        r.detail = why + ": no once-per-host job there";
      } else if (engine.hosts_up() > 0 && (engine.m_interrupt || engine.m_timed_out)) {
        r.status = JobStatus::cancelled;  // the run is stopping: nothing runs again
        r.detail = why;
      } else if (engine.hosts_up() > 0) {
        r.will_retry = true;
        r.detail = why + ": the job runs again on another host";
        ++result.rerun;
        engine.m_observer.job_finished(job.info, r);
        scheduler->requeue(index);
        return;
      } else {
        r.detail = why + ", and no other host answers";
      }
    }
    if (r.status != JobStatus::passed && r.status != JobStatus::cancelled && !r.infrastructure)
      ++job.failures;
    r.flaky = r.status == JobStatus::passed && job.failures > 0;
    r.flaky_fails = r.flaky && engine.m_options.fail_on_flaky;
    const sched::Ended ended = r.status == JobStatus::passed && !r.flaky_fails
                                   ? sched::Ended::passed
                               : r.status == JobStatus::cancelled ? sched::Ended::cancelled
                                                                  : sched::Ended::failed;
    record_timing(job, r);
    r.will_retry = !r.flaky_fails && scheduler->will_retry(index, ended);
    if (r.status == JobStatus::passed && !r.flaky_fails) ++result.passed;
    if (r.flaky) ++result.flaky;
    if (!r.will_retry && ended == sched::Ended::failed) ++result.failed;
    if (ended == sched::Ended::cancelled) ++result.cancelled;
    engine.m_observer.job_finished(job.info, r);
    scheduler->finished(index, ended);
  }
};

// pcr's own environment, then the pipeline's `env`.
std::map<std::string, std::string> Engine::base_env() const {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    size_t eq = kv.find('=');
    if (eq != std::string_view::npos)
      env[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
  }
  for (const auto& [k, v] : m_pipeline.env) env[k] = v;
  return env;
}

std::map<std::string, std::string> Engine::step_env(const Step& step) const {
  std::map<std::string, std::string> env = base_env();
  for (const auto& [var, lines] : m_captures) {
    std::string joined;
    for (const auto& l : lines) joined += (joined.empty() ? "" : "\n") + l;
    env[var] = joined;
  }
  for (const auto& [k, v] : step.options.env) env[k] = v;
  env["CI_RUN_ID"] = m_run_id;
  return env;
}

int Engine::run() {
  m_run_id = m_options.run_id.empty() ? make_run_id() : m_options.run_id;
  if (m_options.spool_dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = fmt::format("{}/pcr-{}-XXXXXX", tmp && *tmp ? tmp : "/tmp", m_run_id);
    if (::mkdtemp(templ.data()) == nullptr) {
      m_observer.note(
          fmt::format("cannot create a spool folder {}: {}", templ, std::strerror(errno)));
      return 1;
    }
    m_spool_dir = templ;
    m_own_spool = true;
  } else {
    m_spool_dir = m_options.spool_dir;
    std::error_code ec;
    fs::create_directories(m_spool_dir, ec);
    fs::permissions(m_spool_dir, fs::perms::owner_all, ec);
  }
  m_steps = selected_steps(m_pipeline, m_options);
  m_timings_path = timings_path(m_pipeline, m_options);
  std::string warning;
  m_timings = sched::Timings::load(m_timings_path, &warning);
  m_timings.mask_keys(util::Masker(m_options.secrets));
  for (const auto& s : m_pipeline.cleanup) m_cleanup.push_back(&s);

  ::signal(SIGPIPE, SIG_IGN);  // `pcr run | head` must still run cleanup
  proc::ProcessSet::become_subreaper();
  for (int sig : {SIGINT, SIGTERM, SIGHUP})
    m_loop.watch_signal(sig, [this](int s) { on_signal(s); });
  if (m_options.supervisor_fd >= 0)
    m_loop.watch_hangup(m_options.supervisor_fd, [this] {
      // kill -9 of the `pcr` the user started, or the OOM killer: nobody else will stop
      // these jobs or run cleanup, so the engine does, as it would on SIGTERM.
      m_observer.note("pcr's supervisor process is gone (killed?): stopping the jobs and "
                      "cleaning up");
      on_signal(SIGTERM);
    });
  m_started = Clock::now();
  m_tick = m_loop.add_timer(Millis(1000), Millis(1000), [this] { m_observer.tick(); });
  if (m_pipeline.timeout) {
    m_deadline = m_loop.add_timer(*m_pipeline.timeout, Millis(0), [this] {
      m_deadline = 0;
      if (m_phase != Phase::steps) return;
      m_timed_out = true;
      m_observer.note(fmt::format("the pipeline's timeout of {} expired: stopping the running jobs",
                                  util::format_duration_spec(*m_pipeline.timeout)));
      if (m_current && m_current->scheduler) m_current->scheduler->cancel(false);
      if (m_current && m_current->lister) m_procs.stop(m_current->lister, false);
    });
  }
  m_observer.run_started({m_pipeline.name, m_run_id, m_steps.size(), m_cleanup.size(), m_pipeline.hosts});
  if (!warning.empty()) m_observer.note(warning);
  if (m_options.shard_total > 0)
    m_observer.note(fmt::format("shard {} of {}: running this shard's share of every for_each step",
                                m_options.shard_index + 1, m_options.shard_total));
  m_hosts.resize(m_pipeline.hosts.size());
  m_pool = total_capacity(m_pipeline.hosts);
  if (m_pipeline.hosts.empty())
    m_loop.post([this] { next(); });
  else
    m_loop.post([this] { probe_hosts(); });
  m_loop.run();

  if (m_own_spool) {
    std::error_code ec;
    fs::remove_all(m_spool_dir, ec);
  }
  return m_result.exit_code;
}

size_t Engine::hosts_up() const {
  return static_cast<size_t>(
      std::count_if(m_hosts.begin(), m_hosts.end(), [](const HostState& h) { return h.up; }));
}

std::string Engine::lost(size_t host) const {
  return fmt::format("host {} stopped answering ({})", m_pipeline.hosts[host].name, m_hosts[host].reason);
}

unsigned Engine::capacity_up() const {
  unsigned sum = 0;
  for (size_t h = 0; h < m_hosts.size(); ++h)
    if (m_hosts[h].up) sum += m_pipeline.hosts[h].workers;
  return sum;
}

// Every host, in parallel, before the first step. Those that do not answer are left out.
void Engine::probe_hosts() {
  m_probes = static_cast<unsigned>(m_pipeline.hosts.size());
  for (size_t h = 0; h < m_pipeline.hosts.size(); ++h) {
    probe(h, [this] {
      if (--m_probes > 0) return;
      for (size_t d = 0; d < m_hosts.size(); ++d)
        if (!m_hosts[d].up) host_lost(d, m_hosts[d].reason, true);
      m_pool = capacity_up();
      std::string up;
      for (size_t u = 0; u < m_hosts.size(); ++u)
        if (m_hosts[u].up)
          up += fmt::format("{}{} ({} worker{})", up.empty() ? "" : ", ", m_pipeline.hosts[u].name,
                            m_pipeline.hosts[u].workers, m_pipeline.hosts[u].workers == 1 ? "" : "s");
      if (!up.empty()) m_observer.note("hosts that answer: " + up);
      if (hosts_up() == 0) {
        m_observer.note("no host answers: the steps are skipped");
        m_failed = true;
      } else if (m_options.require_all_hosts && hosts_up() < m_hosts.size()) {
        m_observer.note("--require-all-hosts: a host does not answer: the steps are skipped");
        m_failed = true;
      }
      next();
    });
  }
}

// Ask `host` whether it answers (one probe at a time per host; a host found down stays
// down), then call `then`.
void Engine::probe(size_t host, std::function<void()> then) {
  HostState& state = m_hosts[host];
  if (!state.up) {
    m_loop.post(std::move(then));
    return;
  }
  state.waiting.push_back(std::move(then));
  if (state.probing) return;
  state.probing = true;
  const Host& h = m_pipeline.hosts[host];
  proc::Spawn spawn;
  spawn.command = m_pipeline.host_probe.empty() ? "true" : m_pipeline.host_probe;
  // pcr's environment, the pipeline's, then the host's: the host's DOCKER_HOST wins.
  std::map<std::string, std::string> vars = base_env();
  for (const auto& [k, v] : h.env) vars[k] = v;
  vars["CI_HOST"] = h.name;
  for (const auto& [k, v] : vars) spawn.env.push_back(k + "=" + v);
  spawn.workdir = base_dir_of(m_pipeline);
  spawn.spool_path = fmt::format("{}/probe-{}-{}.log", m_spool_dir, host, ++m_probe_count);
  spawn.timeout = m_pipeline.probe_timeout;
  spawn.kill_grace = Millis(2000);
  const std::string spool = spawn.spool_path;
  state.probe =
      m_procs.spawn(std::move(spawn), nullptr, [this, host, spool](const proc::Exit& exit) {
        HostState& st = m_hosts[host];
        st.probing = false;
        st.probe = 0;
        // A probe stopped by an interrupt says nothing about the host.
        const bool answers = exit.stopped || (exit.spawn_error.empty() && !exit.timed_out &&
                                              exit.signal == 0 && exit.exit_code == 0);
        if (!answers && st.up) {
          std::string said = tail_of(spool, 3);
          while (!said.empty() && said.back() == '\n') said.pop_back();
          for (auto& c : said)
            if (c == '\n') c = ' ';
          st.reason = exit.timed_out
                          ? fmt::format("no answer within {}",
                                        util::format_duration_spec(m_pipeline.probe_timeout))
                      : !exit.spawn_error.empty() ? exit.spawn_error
                      : said.empty() ? fmt::format("the probe exited {}", exit.exit_code)
                                     : said;
          st.up = false;
          if (m_phase != Phase::done && m_probes == 0) host_lost(host, st.reason, false);
        }
        auto waiting = std::move(st.waiting);
        st.waiting.clear();
        for (auto& w : waiting) w();
      });
}

// `host` does not answer: tell the observers and extensions, and take it out of the
// running step's placement.
void Engine::host_lost(size_t host, const std::string& reason, bool at_start) {
  const Host& h = m_pipeline.hosts[host];
  HostEvent e;
  e.name = h.name;
  e.address = h.address;
  e.workers = h.workers;
  e.at_start = at_start;
  e.reason = reason;
  e.hosts_left = hosts_up();
  if (m_current) e.step = m_current->info.name;
  m_observer.host_down(e);
  for (const auto& ext : m_pipeline.extensions)
    if (ext.host_down) ext.host_down(h);
  if (m_current) m_current->host_gone(host);
}

size_t Engine::pick() const {
  std::vector<bool> up;
  std::vector<unsigned> load;
  for (const auto& st : m_hosts) up.push_back(st.up), load.push_back(st.load);
  return pick_host(m_pipeline.hosts, up, load);
}

size_t Engine::slot_host(unsigned slot) {
  while (m_slot_host.size() < slot) {
    size_t h = pick();
    ++m_hosts[h].load;
    m_slot_host.push_back(h);
  }
  return m_slot_host[slot - 1];
}

void Engine::move_slot(unsigned slot) {
  size_t from = slot_host(slot);
  if (m_hosts[from].up) return;
  size_t to = pick();
  if (!m_hosts[to].up) return;
  --m_hosts[from].load;
  ++m_hosts[to].load;
  m_slot_host[slot - 1] = to;
  m_observer.note(fmt::format("worker {} moves from host {} to host {}", slot,
                              m_pipeline.hosts[from].name, m_pipeline.hosts[to].name));
}

void Engine::next() {
  const auto& list = current_list();
  if (m_phase == Phase::steps && (m_failed || m_interrupt || m_timed_out)) {
    for (; m_index < list.size(); ++m_index) {
      StepInfo info;
      info.index = m_index + 1;
      info.of = list.size();
      info.name = list[m_index]->name;
      info.step = list[m_index];
      StepResult r;
      r.outcome = StepOutcome::skipped;
      m_observer.step_finished(info, r);
    }
  }
  if (m_index >= list.size()) {
    if (m_phase == Phase::steps) {
      m_phase = Phase::cleanup;
      m_index = 0;
      if (m_deadline) m_loop.cancel(m_deadline), m_deadline = 0;
      next();
    } else {
      finish();
    }
    return;
  }
  start_step(*list[m_index]);
}

void Engine::start_step(const Step& step) {
  m_current = std::make_unique<StepRun>(*this, step);
  StepRun& run = *m_current;
  run.info.index = m_index + 1;
  run.info.of = current_list().size();
  run.info.cleanup = m_phase == Phase::cleanup;
  run.info.name = step.name;
  run.info.step = &step;
  run.keep_stdout = !step.options.capture.empty() || !step.options.expect.empty() ||
                    static_cast<bool>(step.options.check);
  if (!step.options.expect.empty()) {
    // The loader has compiled it already; a C++ pipeline's pattern is checked here.
    if (auto re = util::Regex::compile(step.options.expect))
      run.expect.emplace(*re);
    else
      run.result.error =
          fmt::format("expect: bad regular expression /{}/: {}", step.options.expect, re.error());
  }
  run.env = step_env(step);

  const ForEach& fe = step.for_each;
  std::vector<std::string> items;
  if (step.form == Form::for_each && run.result.error.empty()) {
    switch (fe.source) {
      case ForEach::Source::list:
        items = fe.list;
        break;
      case ForEach::Source::glob:
        if (auto found = util::glob(step_dir(m_pipeline, step), fe.value))
          items = std::move(*found);
        else
          run.result.error = found.error();
        break;
      case ForEach::Source::lines: {
        auto it = m_captures.find(fe.value);
        if (it != m_captures.end()) {
          items = it->second;
        } else if (const char* v = std::getenv(fe.value.c_str())) {
          items = util::split_lines(v);  // e.g. `--step` without the capturing step
        } else {
          run.result.error = fmt::format("for_each lines: nothing was captured as {}", fe.value);
        }
        break;
      }
      case ForEach::Source::command: {
        proc::Spawn spawn;
        spawn.command = fe.value;
        for (auto& [k, v] : run.env) spawn.env.push_back(k + "=" + v);
        spawn.workdir = step_dir(m_pipeline, step);
        spawn.spool_path = fmt::format("{}/list-{}.log", m_spool_dir, run.info.index);
        spawn.stdout_path = fmt::format("{}/list-{}.out", m_spool_dir, run.info.index);
        spawn.timeout = step.options.timeout.value_or(Millis(0));
        spawn.kill_grace = step.options.kill_grace;
        run.lister = m_procs.spawn(
            std::move(spawn), nullptr,
            [this, &run, &fe, spawn_out = fmt::format("{}/list-{}", m_spool_dir, run.info.index)](
                const proc::Exit& exit) {
              run.lister = 0;
              if (exit.exit_code == 0 && exit.signal == 0 && exit.spawn_error.empty() &&
                  !exit.stopped && !exit.timed_out) {
                std::vector<std::string> found;
                for (auto& l : read_lines(spawn_out + ".out"))
                  if (!l.empty()) found.push_back(std::move(l));
                launch_step(run, found);
                return;
              }
              std::string why = !exit.spawn_error.empty() ? exit.spawn_error
                                : exit.timed_out          ? "timed out"
                                : exit.stopped            ? "stopped"
                                : exit.signal ? fmt::format("killed by signal {}", exit.signal)
                                              : fmt::format("exit code {}", exit.exit_code);
              run.result.error =
                  fmt::format("the for_each command `{}` failed ({})", fe.value, why);
              std::string tail = tail_of(spawn_out + ".log", 20);
              if (!tail.empty()) run.result.error += ":\n" + tail;
              launch_step(run, {});
            });
        return;
      }
      case ForEach::Source::function:
        if (fe.items) items = fe.items();
        break;
      case ForEach::Source::none:
        break;
    }
  }
  launch_step(run, items);
}

void Engine::launch_step(StepRun& run, const std::vector<std::string>& items) {
  const Step& step = run.step;
  if (run.result.error.empty()) run.result.error = bad_items(items);
  auto plans =
      run.result.error.empty()
          ? expand_jobs(step, shard_share(step, run.info.cleanup, items, m_timings, m_options),
                        m_timings)
          : std::vector<JobPlan>{};
  const bool on_hosts = placed(m_pipeline, step);
  if (step.per_host && on_hosts && !plans.empty()) {
    // Once on every host that answers (on every host when none does: it fails there).
    for (size_t h = 0; h < m_hosts.size(); ++h)
      if (m_hosts[h].up || hosts_up() == 0) run.job_host.push_back(h);
    plans.assign(run.job_host.size(), plans.front());
  }
  run.info.jobs = plans.size();
  run.info.workers = worker_count(step, plans.size(), on_hosts ? m_pool : 0);
  run.stdout_lines.resize(plans.size());
  for (size_t i = 0; i < plans.size(); ++i) {
    StepRun::Job job;
    job.plan = std::move(plans[i]);
    job.info.step = &run.info;
    job.info.index = i;
    job.info.job = static_cast<unsigned>(i + 1);
    job.info.items = job.plan.items;
    run.jobs.push_back(std::move(job));
  }
  run.env["CI_STEP"] = run.info.name;
  run.env["CI_WORKERS"] = std::to_string(run.info.workers);
  run.env["CI_TOTAL_JOBS"] = std::to_string(run.jobs.size());

  sched::Options so;
  so.workers = run.info.workers;
  so.cap = m_options.jobs;
  so.retries = step.options.retries;
  so.fail_fast = step.options.fail_fast;
  so.pinned = step.form == Form::parallel || step.form == Form::commands;
  so.setup = static_cast<bool>(step.setup);
  so.teardown = static_cast<bool>(step.teardown);
  run.tasks.resize(run.info.workers + 1);
  run.task_process.resize(run.info.workers + 1);
  std::vector<JobPlan> planned;
  for (const auto& j : run.jobs) planned.push_back(j.plan);
  std::vector<size_t> order = queue_order(step, planned);
  run.scheduler = std::make_unique<sched::Scheduler>(std::move(order), so, run);
  run.scheduler->on_done = [this] { m_loop.post([this] { step_done(); }); };
  if (on_hosts) run.leave_down_hosts();
  if (on_hosts && step.per_host)
    for (size_t h : run.job_host) run.info.worker_hosts.push_back(m_pipeline.hosts[h].name);
  else if (on_hosts)
    for (unsigned w = 1; w <= run.info.workers; ++w) run.info.worker_hosts.push_back(m_pipeline.hosts[slot_host(w)].name);
  m_observer.step_started(run.info);
  // A step whose start was interrupted (or timed out) runs nothing.
  bool stopping = run.info.cleanup ? false : (m_interrupt || m_timed_out);
  if (stopping) run.scheduler->cancel(false);
  run.scheduler->start();
}

void Engine::step_done() {
  StepRun& run = *m_current;
  run.result.duration = since(run.started);
  const bool failed = run.scheduler->failed() || !run.result.error.empty();
  if (failed)
    run.result.outcome = StepOutcome::failed;
  else if (!run.info.cleanup && (m_interrupt || m_timed_out) && run.result.cancelled > 0)
    run.result.outcome = m_timed_out ? StepOutcome::failed : StepOutcome::interrupted;
  else
    run.result.outcome = StepOutcome::passed;
  if (!run.info.cleanup) {
    if (run.result.outcome == StepOutcome::failed) m_failed = true;
    if (!run.step.options.capture.empty() && run.result.outcome == StepOutcome::passed) {
      auto& lines = m_captures[run.step.options.capture];
      lines.clear();
      for (auto& job_lines : run.stdout_lines)
        for (auto& l : job_lines) lines.push_back(std::move(l));
    }
  }
  m_observer.step_finished(run.info, run.result);
  m_current.reset();
  ++m_index;
  next();
}

void Engine::finish() {
  m_phase = Phase::done;
  if (m_tick) m_loop.cancel(m_tick);
  m_result.orphans_killed = m_procs.kill_orphans();
  std::string error = m_options.save_timings ? m_timings.save(m_timings_path) : "";
  if (!error.empty()) m_observer.note(fmt::format("could not save the timings: {}", error));
  if (m_result.orphans_killed > 0)
    m_observer.note(fmt::format("killed {} process(es) left behind by jobs (setsid or daemons)",
                                m_result.orphans_killed));
  m_result.duration = since(m_started);
  m_result.signal = m_interrupt;
  m_result.timed_out = m_timed_out;
  m_result.exit_code = m_interrupt ? 128 + m_interrupt : (m_failed || m_timed_out) ? 1 : 0;
  m_observer.run_finished(m_result);
  m_loop.stop();
}

void Engine::on_signal(int sig) {
  ++m_signals;
  if (m_phase == Phase::done) return;
  const bool first = m_interrupt == 0;
  if (first) m_interrupt = sig;
  if (m_phase == Phase::steps) {
    m_observer.note(
        first ? fmt::format("{}: stopping the running jobs, then cleanup (again to kill at once)",
                            signal_name(sig))
              : fmt::format("{} again: killing the running jobs now", signal_name(sig)));
    if (m_current) {
      if (m_current->scheduler) m_current->scheduler->cancel(!first);
      if (m_current->lister) m_procs.stop(m_current->lister, !first);
    }
    for (const auto& h : m_hosts)
      if (h.probing) m_procs.stop(h.probe, true);
    return;
  }
  // Cleanup is what an interrupt asks for: the first one lets it run; each further one
  // kills the current cleanup step's jobs at once and moves on to the next.
  if (first && m_signals == 1) {
    m_observer.note(
        fmt::format("{} during cleanup: finishing cleanup (again to kill the current cleanup jobs)",
                    signal_name(sig)));
    return;
  }
  m_observer.note(fmt::format("{}: killing the current cleanup jobs", signal_name(sig)));
  if (m_current) {
    if (m_current->scheduler) m_current->scheduler->cancel(true);
    if (m_current->lister) m_procs.stop(m_current->lister, true);
  }
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
  std::random_device rd;
  std::mt19937_64 gen((static_cast<uint64_t>(rd()) << 32) ^ rd() ^
                      static_cast<uint64_t>(::getpid()));
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

std::vector<PlannedStep> plan(const Pipeline& pipeline, const RunOptions& options) {
  std::vector<PlannedStep> out;
  sched::Timings timings = sched::Timings::load(timings_path(pipeline, options), nullptr);
  timings.mask_keys(util::Masker(options.secrets));
  auto add = [&](const Step& step, bool cleanup) {
    PlannedStep ps;
    ps.name = step.name;
    ps.cleanup = cleanup;
    std::vector<std::string> items;
    if (step.form == Form::for_each) {
      switch (step.for_each.source) {
        case ForEach::Source::list:
          items = step.for_each.list;
          break;
        case ForEach::Source::glob:
          if (auto found = util::glob(step_dir(pipeline, step), step.for_each.value))
            items = std::move(*found);
          else
            ps.note = found.error();
          break;
        case ForEach::Source::lines:
          ps.note = fmt::format("items: the lines captured as {} (known at run time)",
                                step.for_each.value);
          break;
        case ForEach::Source::command:
          ps.note = fmt::format("items: the lines printed by `{}` (run at step start)",
                                step.for_each.value);
          break;
        case ForEach::Source::function:
          ps.note = "items: known at run time";
          break;
        case ForEach::Source::none:
          break;
      }
      if (ps.note.empty()) ps.note = bad_items(items);
      if (!ps.note.empty()) items.clear();
    }
    auto jobs = expand_jobs(step, shard_share(step, cleanup, items, timings, options), timings);
    const bool on_hosts = placed(pipeline, step);
    const unsigned pool = on_hosts ? total_capacity(pipeline.hosts) : 0;
    if (step.per_host && on_hosts) jobs.assign(pipeline.hosts.size(), jobs.front());
    auto order = queue_order(step, jobs);
    const bool pinned = step.form != Form::for_each;
    ps.workers = worker_count(step, jobs.size(), pool);
    if (!ps.note.empty()) {
      ps.workers = step.workers > 0 ? step.workers : pool > 0 ? pool : default_workers();
      jobs.clear();
    }
    // Where each worker goes when every host answers (per_host: worker k on host k).
    std::vector<size_t> placement;
    if (on_hosts && step.per_host)
      for (size_t h = 0; h < pipeline.hosts.size(); ++h) placement.push_back(h);
    else if (on_hosts)
      placement = initial_placement(pipeline.hosts, ps.workers);
    for (size_t h : placement) ps.worker_hosts.push_back(pipeline.hosts[h].name);
    for (size_t i : order) {
      PlannedJob pj;
      pj.job = static_cast<unsigned>(i + 1);
      pj.worker = pinned ? pj.job : 0;
      pj.items = jobs[i].items;
      JobContext ctx{pj.worker, pj.job,     static_cast<unsigned>(jobs.size()),
                     pj.items,  "{run_id}", step.name,
                     {},        {},         {}};
      if (pinned && pj.worker >= 1 && pj.worker <= placement.size()) {
        const size_t h = placement[pj.worker - 1];
        ctx.host = pj.host = pipeline.hosts[h].name;
        ctx.host_env = pipeline.hosts[h].env;
      }
      bind_extensions(pipeline, step, ctx);
      try {
        pj.command = step.commands[jobs[i].command](ctx);
      } catch (const std::exception& ex) {
        pj.command = fmt::format("<cannot build the command: {}>", ex.what());
      }
      ps.jobs.push_back(std::move(pj));
    }
    if (!ps.note.empty() && !step.texts.empty()) ps.note += "; command: " + step.texts[0];
    out.push_back(std::move(ps));
  };
  for (const Step* s : selected_steps(pipeline, options)) add(*s, false);
  for (const auto& s : pipeline.cleanup) add(s, true);
  return out;
}

}  // namespace pcr::pipeline
