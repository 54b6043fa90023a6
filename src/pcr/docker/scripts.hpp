#pragma once

// The shell scripts of compose support (scripts.cpp), written into `.pcr/` when first
// needed: down.sh (teardown), exec.sh and exec-stop.sh ({exec}), logs.sh (a failed
// worker's services' logs), wait.sh ({wait}). Not part of the library's API.

namespace pcr::docker {

extern const char* const k_down_script;
extern const char* const k_exec_script;
extern const char* const k_exec_stop_script;
extern const char* const k_logs_script;
extern const char* const k_wait_script;

}  // namespace pcr::docker
