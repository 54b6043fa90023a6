#pragma once

#include <pcr/proc/loop.hpp>

#include <string>
#include <vector>

namespace pcr::proc {

struct Captured {
  int exit_code = -1;  // -1: could not start, killed, or timed out
  bool timed_out = false;
  std::string output;  // stdout and stderr together, at most `max_output` bytes kept
  std::string error;   // why it could not start
};

// Run `argv` (looked up in PATH) to its end, outside any event loop: stdin /dev/null,
// stdout and stderr captured together, killed (its whole process group) after `timeout`.
// For the few short commands pcr runs for itself (`docker compose version`, `docker
// context inspect`, `pcr clean`'s teardown): posix_spawn, so it is safe in a process
// with threads, and the only place besides ProcessSet where pcr starts a process.
Captured run_capture(const std::vector<std::string>& argv, Millis timeout,
                     std::size_t max_output = 64u << 10);

}  // namespace pcr::proc
