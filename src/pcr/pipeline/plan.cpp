#include <pcr/pipeline/engine.hpp>
#include <pcr/pipeline/host_pool.hpp>
#include <pcr/pipeline/layout.hpp>
#include <pcr/util/mask.hpp>

#include <fmt/format.h>

// The plan: what a run would do, from the same layout (layout.hpp) and the same command
// building as the run, so that `pcr check` shows the run's commands and worker counts.
// What only the run can know (the run id, the items of a command or a captured variable,
// which pool worker takes a job) is shown as a placeholder or described.

namespace pcr::pipeline {

namespace {

std::string run_time_items(const Step& step) {
  switch (step.for_each.source) {
    case ForEach::Source::lines:
      return fmt::format("items: the lines captured as {} (known at run time)", step.for_each.value);
    case ForEach::Source::command:
      return fmt::format("items: the lines printed by `{}` (run at step start)", step.for_each.value);
    default:
      return "items: known at run time";
  }
}

}  // namespace

std::vector<PlannedStep> plan(const Pipeline& pipeline, const RunOptions& options) {
  std::vector<PlannedStep> out;
  sched::Timings timings = sched::Timings::load(timings_path(pipeline, options), timings_key(pipeline, options), nullptr);
  timings.mask_keys(util::Masker(options.secrets));
  timings.portable_keys("", pipeline.base_dir);
  // The workers of the steps extensions add to, as extensions see them: their number and
  // host (e.g. a compose project each).
  std::vector<JobContext> workers;
  // A pool's default size with hosts: their capacity, every host answering.
  const unsigned capacity = HostPool(pipeline.hosts).capacity_up();
  auto add = [&](const Step& step, bool cleanup) {
    PlannedStep ps;
    ps.name = step.name;
    ps.step = &step;
    ps.cleanup = cleanup;
    const bool on_hosts = !pipeline.hosts.empty() && step.extended;
    std::vector<std::string> items;
    bool known = true;
    if (step.form == Form::for_each) {
      if (auto found = static_items(step, step_dir(pipeline, step))) {
        if (*found)
          items = std::move(**found);
        else
          ps.note = found->error();
      } else if (step.for_each.planned) {
        items = step.for_each.planned(workers);
      } else {
        known = false;
        ps.note = run_time_items(step);
      }
    }
    LayoutInput in;
    in.cleanup = cleanup;
    in.shard_index = options.shard_index;
    in.shard_total = options.shard_total;
    in.pool = on_hosts ? capacity : 0;
    in.hosts = step.per_host && on_hosts ? pipeline.hosts.size() : 0;
    const Layout layout = ps.note.empty() ? lay_out(step, items, timings, in) : no_jobs(step, in);
    if (ps.note.empty()) ps.note = layout.error;
    ps.workers = layout.workers;
    if (!known) {
      // As many as the items will need, up to the pool's size.
      ps.workers = step.workers > 0 ? step.workers : in.pool > 0 ? in.pool : default_workers();
      ps.workers_bound = true;
    }
    // Where each worker goes when every host answers (per_host: worker k on host k).
    std::vector<std::size_t> placement;
    if (on_hosts && step.per_host)
      for (std::size_t h = 0; h < pipeline.hosts.size(); ++h) placement.push_back(h);
    else if (on_hosts)
      placement = HostPool::placement(pipeline.hosts, ps.workers);
    for (std::size_t h : placement) ps.worker_hosts.push_back(pipeline.hosts[h].name);
    if (extended(step))
      for (unsigned w = 1; w <= ps.workers; ++w) {
        JobContext ctx{w, 0, 0, {}, k_planned_run_id, step.name, {}, {}, {}};
        if (w <= placement.size()) {
          ctx.host = pipeline.hosts[placement[w - 1]].name;
          ctx.host_env = pipeline.hosts[placement[w - 1]].env;
        }
        workers.push_back(std::move(ctx));
      }
    // A job whose worker is known before the run: pinned or once per host, it keeps its
    // number as worker; a pool of one worker runs every job on worker 1.
    const bool own_worker = pinned(step) || step.per_host;
    for (std::size_t i : layout.order) {
      PlannedJob pj;
      pj.job = static_cast<unsigned>(i + 1);
      pj.worker = own_worker ? pj.job : layout.workers == 1 ? 1 : 0;
      pj.items = layout.jobs[i].items;
      pj.name = job_name(step, layout.jobs[i], pj.job, layout.jobs.size());
      JobContext ctx{pj.worker, pj.job, static_cast<unsigned>(layout.jobs.size()),
                     pj.items,  k_planned_run_id, step.name,
                     {},        {},         {}};
      if (pj.worker >= 1 && pj.worker <= placement.size()) {
        const std::size_t h = placement[pj.worker - 1];
        ctx.host = pj.host = pipeline.hosts[h].name;
        ctx.host_env = pipeline.hosts[h].env;
      }
      bind_extensions(pipeline, step, ctx);
      auto command = build_command(step.commands[layout.jobs[i].command], ctx);
      pj.command = command ? *command
                           : fmt::format("<cannot build the command: {}>", command.error());
      ps.jobs.push_back(std::move(pj));
    }
    if (!known && !step.texts.empty()) ps.note += "; command: " + step.texts[0];
    out.push_back(std::move(ps));
  };
  for (const auto& s : pipeline.steps)
    if (!options.cleanup_only && (options.only_step.empty() || s.name == options.only_step))
      add(s, false);
  for (const auto& s : pipeline.cleanup) add(s, true);
  return out;
}

}  // namespace pcr::pipeline
