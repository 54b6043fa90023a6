#pragma once

#include <pcr/docker/compose.hpp>
#include <pcr/pipeline/model.hpp>
#include <pcr/util/expected.hpp>

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace pcr::config {

// One thing wrong with a pipeline file, where it is.
struct Diagnostic {
  std::string file;
  int line = 0;    // 1-based; 0 when the file as a whole is at fault
  int column = 0;  // 1-based
  std::string message;
  std::string str() const;  // "file:line:column: message"
};

// Thrown by `load` with every problem found; nothing of the file may be run. A message
// quotes the file: the values of its secrets that the loader knew by then are masked
// (also the start of one that a quote cut short with "…").
class LoadError : public std::runtime_error {
 public:
  explicit LoadError(std::vector<Diagnostic> diagnostics, const std::vector<std::string>& secrets = {});
  const std::vector<Diagnostic>& diagnostics() const { return m_diagnostics; }

 private:
  struct Ordered {};  // the diagnostics are masked and in file order already
  LoadError(Ordered, std::vector<Diagnostic> diagnostics);
  std::vector<Diagnostic> m_diagnostics;
};

// What loading asks of the machine, given by the front end: the loader itself starts no
// process and writes nothing (it reads the pipeline file and checks that the compose
// files it names exist). The CLI gives `docker_machine()`.
struct Machine {
  // The DOCKER_HOST value of docker context `name`, or why there is none. Unset: a
  // `context:` host is a load error ("contexts cannot be resolved here").
  std::function<util::Expected<std::string>(const std::string& name)> context_endpoint;
  // Compose v2 or v1, asked once when the file has `compose:`. Unset: v1.
  std::function<docker::ComposeVersion()> compose_version;
  // `pcr run --keep-clusters`: the compose projects keep stable names, stay up after the
  // run, and are reused by the next such run (docs/docker.md). Never from the file alone.
  bool keep_clusters = false;
};

// The values of `p`'s secrets: each from its `env`, else from pcr's environment (unset
// or empty ones are left out).
std::vector<std::string> secret_values(const pipeline::Pipeline& p);

// The machine as the docker CLI sees it: `docker context inspect`, `docker compose version`.
Machine docker_machine();

// Read the pipeline file at `path` (docs/pipeline.md). Jobs run in, and globs resolve from, the
// folder that holds it. Throws LoadError naming file, line and column of each problem.
pipeline::Pipeline load_file(const std::string& path, const Machine& machine = {});

// What `load_file` loads: the text of `path`, within the size a pipeline file may have.
// Throws LoadError when it cannot be read or is too big.
std::string read_pipeline_file(const std::string& path);

// The same from `text`, as if read from `path` (for tests, and for the supervisor, which
// loads again what its engine read).
pipeline::Pipeline load_string(const std::string& text, const std::string& path,
                               const Machine& machine = {});

}  // namespace pcr::config
