#pragma once

// StepRun's own: a job of the step as StepRun tracks it, and what its two source files
// (step_run.cpp: running the jobs; step_outputs.cpp: what is kept of them) share. Not part
// of the library's API.

#include <pcr/pipeline/step_run.hpp>

#include <sys/stat.h>

#include <map>
#include <string>

namespace pcr::pipeline {

// What tells one version of a file from another.
struct FileStamp {
  ino_t ino;
  off_t size;
  time_t mtime;
  long mtime_ns;
  time_t ctime;
  long ctime_ns;
  bool operator==(const FileStamp&) const = default;
};

inline FileStamp stamp_of(const struct stat& st) {
  return {st.st_ino, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec, st.st_ctim.tv_sec, st.st_ctim.tv_nsec};
}

// Add `why` to what `r` says, after what it says already.
inline void add_detail(JobResult& r, const std::string& why) {
  r.detail = r.detail.empty() ? why : r.detail + "; " + why;
}

struct StepRun::Job {
  JobPlan plan;
  JobInfo info;
  JobContext ctx;  // of the current attempt
  proc::ProcessSet::Id process = 0;
  std::string stdout_path;
  unsigned failures = 0;  // attempts the job itself failed (not lost with a host)
  bool lost = false;      // stopped by pcr because its host stopped answering
  // The JUnit files there were when the attempt started, as they were: a file the
  // attempt wrote is new, or changed (its change time moves with every write).
  std::map<std::string, FileStamp> junit_before;
  bool own_fault = false;  // the attempt could not start through pcr's own failure
  bool passed = false;     // its final attempt passed
  std::string saved_dir;   // where the extensions saved what they know of this attempt
  bool running = false;    // an attempt is under way
  proc::Clock::time_point started_at;  // of the current attempt
  proc::Loop::TimerId slow_timer = 0;  // `slow:`: its SLOW lines
};

}  // namespace pcr::pipeline
