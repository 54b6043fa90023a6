#pragma once

#include <pcr/pipeline/model.hpp>

#include <cstddef>
#include <memory>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace pcr::docker {

enum class ComposeVersion { v1, v2 };

// The `compose:` block of a pipeline.
struct ComposeConfig {
  std::vector<std::string> files;  // absolute paths
  std::string project;             // base name
  pipeline::Env env;
  bool teardown = true;
  // `logs:`: when a worker's services' logs are saved (docs/docker.md).
  enum class Logs { on_failure, always, never };
  Logs logs = Logs::on_failure;
  // `stop_timeout:`: how long the teardown's `down` lets a container stop before killing
  // it. Its volumes go with it: a graceful stop saves nothing.
  std::chrono::milliseconds stop_timeout{1000};
  // `pcr run --keep-clusters`: stable project names per worker (`<base>-kept<hash>-<n>`,
  // the hash of the compose files' paths: one set per checkout), no teardown, and a
  // project found up with the same compose files and env is reused (changed: recreated).
  bool keep = false;
  // `reset:` a command run before each worker's first job of a for_each step (after its
  // set-up) and before each retry: on a reused cluster, what a fresh one would not need
  // (truncate the tables, flush the cache). With the job's environment.
  std::string reset;
  std::string state_dir;           // where projects are recorded: <pipeline folder>/.pcr/projects
  // v1 or v2, resolved before the run (detect_compose_version) so that no job start waits
  // on `docker compose version`.
  ComposeVersion version = ComposeVersion::v1;
};

// Compose v2 (`docker compose`) when the docker CLI has it, else v1 (`docker-compose`).
// Asked once per process.
ComposeVersion detect_compose_version();

// The argv prefix that addresses project `project` of `files`:
// `docker compose -f F… -p P` (v2) or `docker-compose -f F… -p P` (v1).
std::vector<std::string> compose_argv(ComposeVersion version, const std::vector<std::string>& files,
                                      const std::string& project);

// `<base>-<run id>-<n>`, made a valid project name for Compose v1 and v2: lowercase
// letters, digits, '-' and '_', starting with a letter or digit; the base cut to its
// first k_project_base bytes.
inline constexpr std::size_t k_project_base = 40;
std::string project_name(const std::string& base, const std::string& run_id, unsigned n);

// What pcr writes under `.pcr/projects/` before a project is first used, so that a run
// killed with SIGKILL can be cleaned up later.
struct ProjectRecord {
  std::string project;
  std::vector<std::string> files;
  ComposeVersion version = ComposeVersion::v1;
  std::string docker_host;  // DOCKER_HOST of its worker's jobs ("" = local)
  std::string host;         // its host's name in `hosts:` ("" without hosts)
  long pid = 0;             // the run's pcr
  unsigned long long pid_start = 0;  // its start time (clock ticks since boot): pids get reused
  std::string run_id;
  bool kept = false;        // a --keep-clusters run's: left up on purpose
  std::string config_hash;  // kept: of the compose files and env it was brought up with
};

std::string record_json(const ProjectRecord& r);
std::optional<ProjectRecord> parse_record(const std::string& text);

// How the run that wrote `r` (recorded under `state_dir`) stands. A run lives while
// either of its two processes does (the record's pid, and the pair in the run's record
// under .pcr/runs): a supervisor whose engine was killed still runs the cleanup steps,
// and an engine whose supervisor was killed still tears its projects down.
enum class Owner {
  gone,       // neither process is alive: the projects are leftovers
  running,    // both are (or the one a run without a supervisor has)
  finishing,  // one of the two was killed; the other is stopping and cleaning up
};
Owner owner_of(const std::string& state_dir, const ProjectRecord& r);

// The start time of process `pid` (field 22 of /proc/PID/stat), 0 if it is gone.
unsigned long long process_start(long pid);

// Add compose support to `pipeline`: every job with number n gets COMPOSE_PROJECT_NAME,
// PROJECT_NAME (= `{project}`), COMPOSE_FILE and the compose env, and the placeholders
// `{project}`, `{compose}` and `{exec SERVICE}`; each project is recorded before its first
// use; unless `teardown` is off, a last cleanup step takes every handed-out project
// down (`down -v --remove-orphans`, in parallel, bounded, retried once when a network
// still has active endpoints) and removes its record.
void install(pipeline::Pipeline& pipeline, ComposeConfig config);

// The placeholder names `install` adds, for the loader.
const std::vector<std::string>& placeholder_names();

// Where the projects of the pipeline in folder `pipeline_dir` are recorded:
// `<pipeline_dir>/.pcr/projects`.
std::string state_dir(const std::string& pipeline_dir);

// Where `r` is recorded under `state_dir`: `<project>.json`, or `<project>@<host>.json`
// with hosts (a worker moved off a host that stopped answering uses its project name on
// the new host too: two records, one per host).
std::string record_path(const std::string& state_dir, const ProjectRecord& r);

// `pcr clean`: take down every project recorded under `state_dir` whose run is no longer
// alive, and remove its record. Writes what it does to `log`. Returns the number of
// projects it could not take down. Each project is taken down on the host it was
// recorded with. `run_id` set: only that run's projects (a supervisor whose engine died).
// A run still alive keeps its projects: one that is finishing (half of it killed) is
// waited for, up to `wait`, saying so; one still running is named and left alone.
int clean(const std::string& state_dir, std::string& log, const std::string& run_id = "",
          std::chrono::milliseconds wait = std::chrono::minutes(2));

// The `{exec SERVICE}` wrapper script, written to `dir` if needed; returns its path.
std::string exec_wrapper(const std::string& dir);

// Records under `state_dir` whose run is gone.
std::vector<ProjectRecord> leftovers(const std::string& state_dir);

// Records of run `run_id` still under `state_dir`: its projects not taken down (a
// teardown a second interrupt cut short, or one that failed).
std::vector<ProjectRecord> still_up(const std::string& state_dir, const std::string& run_id);

}  // namespace pcr::docker
