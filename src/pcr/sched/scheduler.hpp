#pragma once

#include <pcr/sched/shared_queue.hpp>

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
  // Run the step's per-worker set-up / tear-down on `worker`; report the end through
  // `Scheduler::worker_task_finished`. Only called when the options ask for them.
  virtual void start_setup(unsigned /*worker*/) {}
  virtual void start_teardown(unsigned /*worker*/) {}
  // Ask the running set-up or tear-down of `worker` to end.
  virtual void stop_worker_task(unsigned /*worker*/, bool /*immediately*/) {}
};

struct Options {
  unsigned workers = 1;    // worker slots 1..workers
  unsigned cap = 0;        // at most this many running at once (0: no cap but workers)
  unsigned retries = 0;    // a failed job is run again up to this many times
  bool fail_fast = false;  // first failure stops the step's other jobs
  bool pinned = false;     // job i always runs as worker i+1 (the parallel/commands forms)
  bool setup = false;      // run a set-up on each worker before its first job
  bool teardown = false;   // and a tear-down after its last (always, once set up)
};

// `queued`, at the end of a shared step, is a job that ran on another machine.
enum class JobState { queued, running, passed, failed, cancelled };
enum class Ended { passed, failed, cancelled };

// Runs one step's jobs on its workers: a worker takes the next job from the queue as soon
// as it is free, one at a time, and a worker number is never held by two running jobs.
// A failed job is retried on the same worker. With set-up, a worker takes jobs only once
// its set-up passed; a worker whose set-up failed takes none, and the others drain the
// queue. Tear-down runs on every worker that was set up or ran a job, when the queue is
// empty or the step is stopping. Single-threaded; driven by its runner.
class Scheduler {
 public:
  // `order` is the queue: job indices in the order they should start (each exactly once).
  Scheduler(std::vector<std::size_t> order, Options options, JobRunner& runner);

  // Take jobs from `queue` (shared with other machines) instead of `order`, before
  // start(): a retry goes back through it, and the step is done when it is drained.
  void share(SharedQueue& queue) { m_shared = &queue; m_queue.clear(); }
  // Shared: the queue said `later` — ask it again (the runner calls this on a timer).
  void poll() { if (m_started && !m_done) settle(); }
  bool waiting() const { return m_waiting; }

  // Start as many jobs as the workers allow. Calls `on_done` at once for an empty queue.
  void start();

  // Whether `finished(job, ended)` would start `job` again.
  bool will_retry(std::size_t job, Ended ended) const;

  // The running attempt of `job` ended. Starts a retry or the next queued jobs.
  void finished(std::size_t job, Ended ended);

  // The set-up or tear-down of `worker` ended.
  void worker_task_finished(unsigned worker, bool passed);

  // The running attempt of `job` was lost with the machine it ran on, not failed by the
  // job: it goes back to the front of the queue without using a retry. Its worker takes
  // jobs again unless retired (pinned jobs keep their worker, which the runner has moved).
  void requeue(std::size_t job);

  // `worker` takes no more jobs (its machine is gone) and owes no tear-down; a job it is
  // running still reports its end. Wakes the others for the queue.
  void retire(unsigned worker);

  // The set-up of `worker` was lost with its machine: a retired worker is done, another
  // one (moved by the runner) is set up again when needed. Neither fails the step.
  void setup_lost(unsigned worker);
  // `worker` now runs on another machine (the runner moved it): what its set-up made is
  // not there, so it sets up again before its next job, and owes no tear-down where it was.
  void moved(unsigned worker);
  bool retired(unsigned worker) const { return worker < m_retired.size() && m_retired[worker]; }

  // Start nothing more; stop every running job (and set-up). Queued jobs become
  // `cancelled`. Tear-downs still run unless `immediately`.
  void cancel(bool immediately);

  bool done() const { return m_done; }
  bool failed() const { return m_failed; }
  JobState state(std::size_t job) const { return m_jobs[job].state; }
  unsigned attempts(std::size_t job) const { return m_jobs[job].attempts; }
  unsigned worker(std::size_t job) const { return m_jobs[job].worker; }
  std::size_t running() const { return m_running; }

  // Called once, when nothing runs and nothing will start.
  std::function<void()> on_done;

 private:
  struct Job {
    JobState state = JobState::queued;
    unsigned attempts = 0;
    unsigned requeued = 0;  // attempts lost with their machine: they use no retry
    unsigned worker = 0;
  };
  enum class Worker { fresh, setting_up, ready, busy, broken, tearing_down, finished };
  void fill();
  void settle();
  void revive();
  void back_to_queue(std::size_t job);
  void launch(std::size_t job, unsigned worker);
  void wind_down();
  void check_done();
  bool capped() const;
  bool more() const { return m_shared ? !m_drained : !m_queue.empty(); }
  void take_shared();
  bool takes_jobs(unsigned worker) const;
  void set_up(unsigned worker);

  Options m_options;
  JobRunner& m_runner;
  std::vector<Job> m_jobs;
  std::deque<std::size_t> m_queue;
  std::vector<Worker> m_workers;  // index 0 unused
  std::vector<bool> m_worked;     // set up or ran a job: owes a tear-down
  std::vector<bool> m_retired;    // its machine is gone: no more jobs, no tear-down
  std::vector<bool> m_moved;      // set up elsewhere: sets up again before its next job
  std::size_t m_running = 0;      // jobs, set-ups and tear-downs running
  bool m_stopping = false;
  bool m_failed = false;
  bool m_done = false;
  bool m_started = false;
  SharedQueue* m_shared = nullptr;
  bool m_drained = false;  // shared: the queue said every item is done (or it broke)
  bool m_waiting = false;  // shared: it said `later` at the last ask
};

}  // namespace pcr::sched
