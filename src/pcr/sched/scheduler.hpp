#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <set>
#include <vector>

namespace pcr::sched {

// The scheduler's whole view of whoever runs jobs. It knows nothing of processes.
class JobRunner {
 public:
  virtual ~JobRunner() = default;
  // Start attempt `attempt` (0 = first) of `job` on worker slot `worker` (1-based). The
  // end is reported through `Scheduler::finished`, never from within `start`.
  virtual void start(std::size_t job, unsigned worker, unsigned attempt) = 0;
  // Ask the running `job` to end; its end is still reported through `finished`.
  virtual void stop(std::size_t job, bool immediately) = 0;
};

struct Options {
  unsigned workers = 1;    // worker slots 1..workers
  unsigned cap = 0;        // at most this many running at once (0: no cap but workers)
  unsigned retries = 0;    // a failed job is run again up to this many times
  bool fail_fast = false;  // first failure stops the step's other jobs
  bool pinned = false;     // job i always runs as worker i+1 (the parallel/commands forms)
};

enum class JobState { queued, running, passed, failed, cancelled };
enum class Ended { passed, failed, cancelled };

// Runs one step's jobs on its workers: a worker takes the next job from the queue as soon
// as it is free, one at a time, and a worker number is never held by two running jobs.
// A failed job is retried on the same worker. Single-threaded; driven by its runner.
class Scheduler {
 public:
  // `order` is the queue: job indices in the order they should start (each exactly once).
  Scheduler(std::vector<std::size_t> order, Options options, JobRunner& runner);

  // Start as many jobs as the workers allow. Calls `on_done` at once for an empty queue.
  void start();

  // Whether `finished(job, ended)` would start `job` again.
  bool will_retry(std::size_t job, Ended ended) const;

  // The running attempt of `job` ended. Starts a retry or the next queued jobs.
  void finished(std::size_t job, Ended ended);

  // Start nothing more; stop every running job. Queued jobs become `cancelled`.
  void cancel(bool immediately);

  bool done() const { return m_done; }
  bool failed() const { return m_failed; }
  JobState state(std::size_t job) const { return m_jobs[job].state; }
  unsigned attempts(std::size_t job) const { return m_jobs[job].attempts; }
  unsigned worker(std::size_t job) const { return m_jobs[job].worker; }
  std::size_t running() const { return m_running; }

  // Called once, when no job runs and none will start.
  std::function<void()> on_done;

 private:
  struct Job {
    JobState state = JobState::queued;
    unsigned attempts = 0;
    unsigned worker = 0;
  };
  void fill();
  void launch(std::size_t job, unsigned worker);
  void check_done();

  Options m_options;
  JobRunner& m_runner;
  std::vector<Job> m_jobs;
  std::deque<std::size_t> m_queue;
  std::set<unsigned> m_free_workers;
  std::size_t m_running = 0;
  bool m_stopping = false;
  bool m_failed = false;
  bool m_done = false;
  bool m_started = false;
};

}  // namespace pcr::sched
