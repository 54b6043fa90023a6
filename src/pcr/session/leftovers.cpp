#include <pcr/config/loader.hpp>
#include <pcr/docker/compose.hpp>
#include <pcr/proc/runs.hpp>
#include <pcr/proc/supervise.hpp>
#include <pcr/session/internal.hpp>
#include <pcr/util/mask.hpp>
#include <pcr/util/text.hpp>

#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <optional>

namespace pcr::session {

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

int clean(const std::string& clean_file) {
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
  const util::Masker mask(pipeline ? config::secret_values(*pipeline) : std::vector<std::string>{});
  std::string log;
  const int failed = docker::clean(docker::state_dir(dir), log);
  std::cout << util::visible(mask.mask(log), true);
  if (!any && log.empty()) std::cout << "pcr clean: nothing left behind by a killed run\n";
  return failed > 0 ? 1 : 0;
}

}  // namespace pcr::session
