#include <pcr/pipeline/engine.hpp>
#include <pcr/pipeline/layout.hpp>
#include <pcr/util/glob.hpp>
#include <pcr/util/text.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

namespace pcr::pipeline {

namespace {

// Why a step cannot take these items ("" when it can): more than max_items (a runaway
// glob or command), or an item holding a NUL byte, which would cut the command there.
std::string bad_items(const std::vector<std::string>& items) {
  if (items.size() > max_items)
    return fmt::format("for_each: {} items, more than the {} one step takes", items.size(),
                       max_items);
  for (std::size_t i = 0; i < items.size(); ++i)
    if (items[i].find('\0') != std::string::npos)
      return fmt::format("for_each: item {} contains a NUL byte, which no command can hold",
                         i + 1);
  return "";
}

unsigned worker_count(const Step& step, std::size_t jobs, unsigned pool) {
  if (step.per_host) return static_cast<unsigned>(std::max<std::size_t>(jobs, 1));
  switch (step.form) {
    case Form::run:
      return 1;
    case Form::parallel:
      return step.parallel;
    case Form::commands:
      return static_cast<unsigned>(step.commands.size());
    case Form::for_each: {
      unsigned w = step.workers > 0 ? step.workers : pool > 0 ? pool : default_workers();
      // Never more workers than jobs: a worker without a job would only set up and tear down.
      return std::max(1u, std::min<unsigned>(w, static_cast<unsigned>(std::max<std::size_t>(jobs, 1))));
    }
  }
  return 1;
}

// A for_each step's jobs: each `separate` item alone, the rest in `groups` balanced by
// recorded timings, or in batches of `batch`; each job's cost is the sum of its items'.
std::vector<JobPlan> for_each_jobs(const Step& step, const std::vector<std::string>& items,
                                   const sched::Timings& timings) {
  bool known = false;
  const auto costs = sched::estimate(timings, step.name, items, &known);
  std::vector<JobPlan> jobs;
  std::vector<std::size_t> rest;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (std::find(step.separate.begin(), step.separate.end(), items[i]) != step.separate.end())
      jobs.push_back({0, {items[i]}, costs[i], known});
    else
      rest.push_back(i);
  }
  if (step.groups > 0) {
    std::vector<std::int64_t> rest_costs;
    std::vector<std::string> rest_names;
    // Nothing recorded yet: round-robin in listed order (equal names keep index order).
    for (std::size_t i : rest)
      rest_costs.push_back(costs[i]), rest_names.push_back(known ? items[i] : "");
    for (const auto& group : sched::balance(rest_costs, rest_names, step.groups)) {
      if (group.empty()) continue;  // fewer items than groups: no job without items
      JobPlan j;
      j.cost = 0;
      j.known = known;
      for (std::size_t g : group) j.items.push_back(items[rest[g]]), j.cost += costs[rest[g]];
      jobs.push_back(std::move(j));
    }
  } else {
    const std::size_t batch = std::max(1u, step.batch);
    for (std::size_t at = 0; at < rest.size(); at += batch) {
      JobPlan j;
      j.cost = 0;
      j.known = known;
      for (std::size_t k = at; k < std::min(rest.size(), at + batch); ++k)
        j.items.push_back(items[rest[k]]), j.cost += costs[rest[k]];
      jobs.push_back(std::move(j));
    }
  }
  return jobs;
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
      for (std::size_t i = 0; i < step.commands.size(); ++i) jobs.push_back({i, {}});
      break;
    case Form::for_each:
      jobs = for_each_jobs(step, items, timings);
      break;
  }
  return jobs;
}

// The queue: for_each jobs longest first by recorded timings (ties by name); others,
// and steps with nothing recorded yet, as listed.
std::vector<std::size_t> queue_order(const Step& step, const std::vector<JobPlan>& jobs) {
  if (step.form != Form::for_each || jobs.empty() || !jobs.front().known) {
    std::vector<std::size_t> order(jobs.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    return order;
  }
  std::vector<std::int64_t> costs;
  std::vector<std::string> names;
  for (const auto& j : jobs) costs.push_back(j.cost), names.push_back(job_name(j));
  return sched::longest_first(costs, names);
}

}  // namespace

std::string job_name(const Step& step, const JobPlan& plan, unsigned job, std::size_t jobs) {
  if (step.form == Form::for_each) {
    const auto& items = plan.items;
    if (items.empty()) return fmt::format("{} #{}", step.name, job);
    if (items.size() == 1) return items.front();
    if (items.size() == 2) return items[0] + ", " + items[1];
    return fmt::format("{}, {} +{} more", items[0], items[1], items.size() - 2);
  }
  if (step.form == Form::commands && plan.command < step.texts.size() && !step.texts[plan.command].empty())
    return step.texts[plan.command];
  if (jobs <= 1) return step.name;
  return fmt::format("{} #{}", step.name, job);
}

bool pinned(const Step& step) { return step.form == Form::parallel || step.form == Form::commands; }

std::string job_name(const JobPlan& j) { return util::join(j.items, " "); }

Layout lay_out(const Step& step, const std::vector<std::string>& all_items,
               const sched::Timings& timings, const LayoutInput& in) {
  Layout out;
  out.error = step.form == Form::for_each ? bad_items(all_items) : "";
  if (out.error.empty()) {
    // `--shard` splits the items of main for_each steps, as `pcr split` would.
    const bool sharded = in.shard_total > 0 && !in.cleanup && step.extended &&
                         step.form == Form::for_each;
    out.jobs = expand_jobs(
        step,
        sharded ? sched::shard_items(all_items, timings, step.name, in.shard_index, in.shard_total)
                : all_items,
        timings);
    // Once on every host (the caller says how many): copies of the one job.
    if (step.per_host && in.hosts > 0 && !out.jobs.empty())
      out.jobs.assign(in.hosts, out.jobs.front());
  }
  out.order = queue_order(step, out.jobs);
  out.workers = worker_count(step, out.jobs.size(), in.pool);
  return out;
}

Layout no_jobs(const Step& step, const LayoutInput& in) {
  Layout out;
  out.workers = worker_count(step, 0, in.pool);
  return out;
}

std::optional<util::Expected<std::vector<std::string>>> static_items(const Step& step,
                                                                     const std::string& dir) {
  switch (step.for_each.source) {
    case ForEach::Source::list:
      return util::Expected<std::vector<std::string>>(step.for_each.list);
    case ForEach::Source::glob:
      return util::glob(dir, step.for_each.value);
    case ForEach::Source::none:
      return util::Expected<std::vector<std::string>>(std::vector<std::string>{});
    case ForEach::Source::lines:
    case ForEach::Source::command:
    case ForEach::Source::function:
      break;
  }
  return std::nullopt;
}

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

util::Expected<std::string> build_command(const Command& cmd, const JobContext& ctx) {
  // A command is user code (a C++ pipeline's lambda, a placeholder an extension rejects):
  // what it throws is that job's failure to start, never the run's.
  try {
    return cmd(ctx);
  } catch (const std::exception& ex) {
    return util::Expected<std::string>::failure(ex.what());
  }
}

std::string step_dir(const Pipeline& p, const Step& s) {
  const std::string base = p.base_dir.empty() ? "." : p.base_dir;
  if (s.options.workdir.empty()) return base;
  std::filesystem::path w(s.options.workdir);
  return w.is_absolute() ? w.string() : (std::filesystem::path(base) / w).string();
}

}  // namespace pcr::pipeline
