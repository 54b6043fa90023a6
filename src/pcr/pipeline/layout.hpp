#pragma once

#include <pcr/pipeline/model.hpp>
#include <pcr/sched/timings.hpp>
#include <pcr/util/expected.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace pcr::pipeline {

// How a step's jobs are laid out: which jobs, in which queue order, on how many workers.
// One pure function of the step, its items and the recorded timings, used by the run and
// by the plan alike, so that `pcr check` shows what a run does. No processes, no hosts'
// answers: the caller passes the capacity that answered.

struct JobPlan {
  std::size_t command = 0;  // index into Step::commands
  std::vector<std::string> items;
  std::int64_t cost = 1;  // estimated from recorded timings
  bool known = false;     // some timing of the step was recorded
};

struct LayoutInput {
  bool cleanup = false;
  // `--shard`: run shard `shard_index` of `shard_total` of a main for_each step's items.
  std::size_t shard_index = 0, shard_total = 0;
  // The default size of a for_each pool: the capacity of the hosts that answer, or 0 for
  // as many as CPUs.
  unsigned pool = 0;
  // per_host: the number of hosts the step runs on (one job each).
  std::size_t hosts = 0;
};

struct Layout {
  std::vector<JobPlan> jobs;       // job i is job number i + 1
  std::vector<std::size_t> order;  // the queue: indices into `jobs`
  unsigned workers = 1;
  std::string error;  // the items cannot be run (too many, a NUL byte): no jobs
};

// Jobs keep their worker (`{n}` = job number) in `parallel:` and `commands:` steps; a
// for_each pool hands its queue to whichever worker is free.
bool pinned(const Step& step);

// What job number `job` of the `jobs` of `step`, laid out as `plan`, is called wherever
// pcr shows it: what it tests, never its expanded command (which, through `{exec}`, is a
// wrapper with the test as its last word). A for_each job: its item, or a batch's first
// two items and a count ("a.sh, b.sh +3 more"); a `commands:` job: its command as
// written; a job of a `parallel:` step: the step's name and `#job`; a step's only job:
// the step's name. The same in a plan, a run and a rerun, so tools can join them by it.
std::string job_name(const Step& step, const JobPlan& plan, unsigned job, std::size_t jobs);

// The layout of `step` over `items` (ignored unless for_each).
Layout lay_out(const Step& step, const std::vector<std::string>& items,
               const sched::Timings& timings, const LayoutInput& in);

// The layout of `step` when it cannot run (its items could not be found, a bad pattern):
// no jobs, and the workers a step of no jobs has.
Layout no_jobs(const Step& step, const LayoutInput& in);

// A for_each step's items when they are known before the run (a list, a glob); nullopt
// for sources only the run knows (a command, a captured variable, a function).
std::optional<util::Expected<std::vector<std::string>>> static_items(const Step& step,
                                                                     const std::string& dir);

// The folder a step's jobs run in: its `workdir` under the pipeline's base directory.
std::string step_dir(const Pipeline& pipeline, const Step& step);

// Give `ctx` the placeholders of `pipeline`'s extensions (`{exec web}`), for a step they
// extend. Plan and run build commands through this and `build_command` alike.
void bind_extensions(const Pipeline& pipeline, const Step& step, JobContext& ctx);

// Whether extensions add to `step`'s jobs: they add to workers' jobs, and a per_host job
// belongs to a host, not a worker.
bool extended(const Step& step);

// The command `cmd` gives for `ctx`, or why it could not be built (it threw).
util::Expected<std::string> build_command(const Command& cmd, const JobContext& ctx);

// The label of a job of items, for timings and queue ties: its items joined by spaces.
std::string job_name(const JobPlan& job);

}  // namespace pcr::pipeline
