#include <pcr/sched/scheduler.hpp>

#include <algorithm>

namespace pcr::sched {

Scheduler::Scheduler(std::vector<std::size_t> order, Options options, JobRunner& runner)
    : m_options(options),
      m_runner(runner),
      m_jobs(order.size()),
      m_queue(order.begin(), order.end()) {
  if (m_options.workers == 0) m_options.workers = 1;
  if (m_options.pinned)
    m_options.workers = std::max<unsigned>(m_options.workers, static_cast<unsigned>(order.size()));
  m_workers.assign(m_options.workers + 1, Worker::fresh);
  m_worked.assign(m_options.workers + 1, false);
  m_retired.assign(m_options.workers + 1, false);
  m_moved.assign(m_options.workers + 1, false);
}

void Scheduler::start() {
  m_started = true;
  settle();
}

bool Scheduler::capped() const { return m_options.cap > 0 && m_running >= m_options.cap; }

void Scheduler::launch(std::size_t job, unsigned worker) {
  Job& j = m_jobs[job];
  j.state = JobState::running;
  j.worker = worker;
  m_workers[worker] = Worker::busy;
  m_worked[worker] = true;
  ++m_running;
  m_runner.start(job, worker, j.attempts++);
}

// Shared: each ready worker asks the queue for a job until it has none for now.
void Scheduler::take_shared() {
  m_waiting = false;
  while (!m_drained && !m_stopping && !capped()) {
    unsigned worker = 0;
    for (unsigned w = 1; w <= m_options.workers && worker == 0; ++w)
      if (takes_jobs(w)) worker = w;
    if (worker == 0) break;
    const SharedQueue::Next next = m_shared->next();
    if (next.kind == SharedQueue::Next::Kind::later) {
      m_waiting = true;
      break;
    }
    if (next.kind != SharedQueue::Next::Kind::job || next.job >= m_jobs.size() ||
        m_jobs[next.job].state == JobState::running) {
      m_drained = true;  // done, broken, or not one of this machine's jobs: take nothing more
      if (next.kind == SharedQueue::Next::Kind::broken) m_failed = true;
      break;
    }
    m_jobs[next.job].attempts = next.attempt;
    launch(next.job, worker);
  }
  if (!m_options.setup || m_drained || m_stopping) return;
  // Every fresh worker is set up while the queue may still hand out work.
  for (unsigned w = 1; w <= m_options.workers && !capped(); ++w)
    if (m_workers[w] == Worker::fresh) set_up(w);
}

// A fresh worker with nothing to set up can take a job at once.
bool Scheduler::takes_jobs(unsigned w) const {
  return m_workers[w] == Worker::ready || (m_workers[w] == Worker::fresh && !m_options.setup);
}

void Scheduler::set_up(unsigned w) {
  m_workers[w] = Worker::setting_up;
  m_worked[w] = true;
  ++m_running;
  m_runner.start_setup(w);
}

void Scheduler::fill() {
  if (m_stopping) return;
  if (m_shared) return take_shared();
  // Queued jobs go to ready workers, lowest number first (pinned: to their own worker).
  for (auto it = m_queue.begin(); it != m_queue.end() && !capped();) {
    std::size_t job = *it;
    unsigned worker = 0;
    if (m_options.pinned) {
      unsigned own = static_cast<unsigned>(job) + 1;
      if (takes_jobs(own)) worker = own;
    } else {
      for (unsigned w = 1; w <= m_options.workers && worker == 0; ++w)
        if (takes_jobs(w)) worker = w;
    }
    if (worker == 0) {
      if (!m_options.pinned) break;
      ++it;
      continue;
    }
    it = m_queue.erase(it);
    launch(job, worker);
  }
  if (!m_options.setup) return;
  // Set up as many fresh workers as there are queued jobs that no ready worker will take.
  std::size_t waiting = m_queue.size();
  for (unsigned w = 1; w <= m_options.workers; ++w)
    if (m_workers[w] == Worker::setting_up) waiting = waiting > 0 ? waiting - 1 : 0;
  for (unsigned w = 1; w <= m_options.workers && waiting > 0 && !capped(); ++w) {
    if (m_workers[w] != Worker::fresh) continue;
    if (m_options.pinned && std::find(m_queue.begin(), m_queue.end(), w - 1) == m_queue.end())
      continue;
    --waiting;
    set_up(w);
  }
}

// Workers with nothing left to do tear down; when no worker can take the queued jobs
// any more, those jobs are cancelled.
void Scheduler::wind_down() {
  bool any_can_work = false;
  for (unsigned w = 1; w <= m_options.workers; ++w) {
    Worker s = m_workers[w];
    if (s == Worker::fresh || s == Worker::setting_up || s == Worker::ready || s == Worker::busy)
      any_can_work = true;
  }
  if ((!any_can_work || m_stopping) && !m_queue.empty()) {
    for (std::size_t job : m_queue) m_jobs[job].state = JobState::cancelled;
    m_queue.clear();
  }
  // Shared: what this machine cannot take stays in the queue for the others.
  if (m_shared && (!any_can_work || m_stopping)) m_drained = true;
  // Tear-downs run like cleanup, also after an interrupt that killed the jobs at once; a
  // further interrupt kills the ones running then (cancel).
  if (more()) return;
  for (unsigned w = 1; w <= m_options.workers; ++w) {
    Worker s = m_workers[w];
    if (s != Worker::ready && s != Worker::broken && s != Worker::fresh) continue;
    if (m_options.teardown && m_worked[w]) {
      m_workers[w] = Worker::tearing_down;
      ++m_running;
      m_runner.start_teardown(w);
    } else {
      m_workers[w] = Worker::finished;
    }
  }
}

bool Scheduler::will_retry(std::size_t job, Ended ended) const {
  const Job& j = m_jobs[job];
  return ended == Ended::failed && !m_stopping && j.attempts - j.requeued <= m_options.retries;
}

void Scheduler::requeue(std::size_t job) {
  Job& j = m_jobs[job];
  if (j.state != JobState::running) return;
  --m_running;
  ++j.requeued;
  back_to_queue(job);
}

// `job` goes back to the front of the queue (cancelled when the step is stopping); its
// worker takes jobs again unless retired.
void Scheduler::back_to_queue(std::size_t job) {
  Job& j = m_jobs[job];
  if (m_stopping) {
    j.state = JobState::cancelled;
  } else {
    j.state = JobState::queued;
    m_queue.push_front(job);
  }
  m_workers[j.worker] = m_retired[j.worker] ? Worker::finished : m_moved[j.worker] ? Worker::fresh : Worker::ready;
  m_moved[j.worker] = false;
  revive();
  settle();
}

// After any change: start what can start, wind down what is done, and tell when all is.
void Scheduler::settle() {
  fill();
  wind_down();
  check_done();
}

// Work came back to the queue after the other workers had wound down: those not retired
// take jobs again (set up again first, when the step has set-ups).
void Scheduler::revive() {
  if (m_stopping) return;
  for (unsigned w = 1; w <= m_options.workers; ++w)
    if (m_workers[w] == Worker::finished && !m_retired[w]) m_workers[w] = Worker::fresh;
}

void Scheduler::retire(unsigned worker) {
  if (worker == 0 || worker > m_options.workers || m_retired[worker]) return;
  m_retired[worker] = true;
  Worker& s = m_workers[worker];
  if (s == Worker::fresh || s == Worker::ready || s == Worker::broken) s = Worker::finished;
  if (!m_started) return;
  settle();
}

void Scheduler::moved(unsigned worker) {
  if (worker == 0 || worker > m_options.workers || !m_options.setup) return;
  m_worked[worker] = false;
  if (m_workers[worker] == Worker::ready || m_workers[worker] == Worker::broken) {
    m_workers[worker] = Worker::fresh;
    if (m_started) settle();
  } else if (m_workers[worker] == Worker::busy) {
    m_moved[worker] = true;  // its job, lost with the machine, comes back first
  }
}

void Scheduler::setup_lost(unsigned worker) {
  Worker& s = m_workers[worker];
  if (s != Worker::setting_up) return;
  --m_running;
  s = m_retired[worker] || m_stopping ? Worker::finished : Worker::fresh;
  m_worked[worker] = false;
  settle();
}

void Scheduler::finished(std::size_t job, Ended ended) {
  Job& j = m_jobs[job];
  if (j.state != JobState::running) return;
  --m_running;
  if (m_shared) {
    // A retry goes back through the shared queue, to whichever machine takes it first;
    // whatever else ends here as it does unshared (below).
    using Outcome = SharedQueue::Outcome;
    const auto ack = m_shared->finished(job,
                                        ended == Ended::passed   ? Outcome::passed
                                        : ended == Ended::failed ? Outcome::failed
                                                                 : Outcome::cancelled,
                                        will_retry(job, ended) && !m_drained);
    if (ack == SharedQueue::Ack::broken) m_drained = m_failed = true;
    if (ack == SharedQueue::Ack::requeued && ended != Ended::cancelled) {
      j.state = JobState::queued;
      m_workers[j.worker] = m_retired[j.worker] ? Worker::finished : Worker::ready;
      settle();
      return;
    }
  } else if (will_retry(job, ended) && !m_retired[j.worker]) {
    ++m_running;  // same worker: it may own resources the job needs
    j.state = JobState::running;
    m_runner.start(job, j.worker, j.attempts++);
    return;
  } else if (will_retry(job, ended)) {  // its worker is gone: the retry goes to another
    back_to_queue(job);
    return;
  }
  j.state = ended == Ended::passed   ? JobState::passed
            : ended == Ended::failed ? JobState::failed
                                     : JobState::cancelled;
  m_workers[j.worker] = m_retired[j.worker] ? Worker::finished : Worker::ready;
  if (ended == Ended::failed) {
    m_failed = true;
    if (m_options.fail_fast) cancel(false);
  }
  settle();
}

void Scheduler::worker_task_finished(unsigned worker, bool passed) {
  Worker& s = m_workers[worker];
  if (s != Worker::setting_up && s != Worker::tearing_down) return;
  --m_running;
  if (s == Worker::setting_up) {
    s = m_retired[worker]       ? Worker::finished
        : passed && !m_stopping ? Worker::ready
                                : Worker::broken;
    if (!passed && !m_stopping) m_failed = true;  // stopped (an interrupt): not a failure of its own
  } else {  // a job came back to the queue while it tore down: it takes jobs again
    s = more() && !m_retired[worker] && !m_stopping ? Worker::fresh : Worker::finished;
  }
  settle();
}

void Scheduler::cancel(bool immediately) {
  m_stopping = true;
  for (std::size_t job : m_queue) m_jobs[job].state = JobState::cancelled;
  m_queue.clear();
  for (std::size_t job = 0; job < m_jobs.size(); ++job)
    if (m_jobs[job].state == JobState::running) m_runner.stop(job, immediately);
  for (unsigned w = 1; w <= m_options.workers; ++w)
    if (m_workers[w] == Worker::setting_up || (immediately && m_workers[w] == Worker::tearing_down))
      m_runner.stop_worker_task(w, immediately);
  wind_down();
  check_done();
}

void Scheduler::check_done() {
  if (m_done || !m_started || m_running > 0 || more()) return;
  m_done = true;
  if (on_done) on_done();
}

}  // namespace pcr::sched
