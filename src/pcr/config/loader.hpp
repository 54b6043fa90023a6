#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include <pcr/pipeline/model.hpp>

namespace pcr::config {

// One thing wrong with a pipeline file, where it is.
struct Diagnostic {
  std::string file;
  int line = 0;    // 1-based; 0 when the file as a whole is at fault
  int column = 0;  // 1-based
  std::string message;
  std::string str() const;  // "file:line:column: message"
};

// Thrown by `load` with every problem found; nothing of the file may be run.
class LoadError : public std::runtime_error {
 public:
  explicit LoadError(std::vector<Diagnostic> diagnostics);
  const std::vector<Diagnostic>& diagnostics() const { return m_diagnostics; }

 private:
  std::vector<Diagnostic> m_diagnostics;
};

// Read the pipeline file at `path` (docs/pipeline.md). Jobs run in, and globs resolve from, the
// folder that holds it. Throws LoadError naming file, line and column of each problem.
pipeline::Pipeline load_file(const std::string& path);

// The same from `text`, as if read from `path` (for tests and stdin).
pipeline::Pipeline load_string(const std::string& text, const std::string& path);

}  // namespace pcr::config
