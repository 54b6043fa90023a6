#pragma once

#include <pcr/docker/compose.hpp>
#include <pcr/pipeline/model.hpp>

#include <string>
#include <vector>

namespace pcr::docker {

// Command builders for pipelines written in C++, after the original framework's helpers.
// Every value that reaches the shell goes through util::shell_quote.

// `docker build -t REPO:TAG [-f DOCKERFILE] [--build-arg K=V]... CONTEXT`
std::string docker_build(const std::string& context, const std::string& repo, const std::string& tag = "latest",
                         const std::string& dockerfile = "", const pipeline::Env& build_args = {});

// A command running `argv` in container `<prefix><n>` (n: the job's number), as with a
// compose file's `container_name: ${PROJECT_NAME}_web`-style names.
pipeline::Command docker_exec(std::string prefix, std::vector<std::string> argv);

// Compose commands for the job's own project `<project>-<run id>-<n>` (as `compose:` names
// it): `up -d [SERVICE...]`, `exec` (through the `{exec SERVICE}` wrapper in ./.pcr, so a
// stopped job stops inside the container too), `run --rm SERVICE ARGV...`, `down -v
// --remove-orphans`.
class Compose {
 public:
  // The compose version is asked here, when the pipeline is built, never as a job starts.
  Compose(std::vector<std::string> files, std::string project,
          ComposeVersion version = detect_compose_version());
  pipeline::Command up(std::vector<std::string> services = {}) const;
  pipeline::Command exec(std::string service, std::vector<std::string> argv) const;
  pipeline::Command run(std::string service, std::vector<std::string> argv) const;
  pipeline::Command down() const;
  // The project of worker `ctx.number`.
  std::string project(const pipeline::JobContext& ctx) const;

 private:
  pipeline::Command with(std::vector<std::string> tail) const;
  std::vector<std::string> m_files;
  std::string m_project;
  ComposeVersion m_version;
};

// Split `files` into `groups` groups, round-robin in name order, each group sorted (the
// original framework's test splitting; a for_each step with a queue usually does better).
std::vector<std::vector<std::string>> split_into_groups(const std::vector<std::string>& files, std::size_t groups);

}  // namespace pcr::docker
