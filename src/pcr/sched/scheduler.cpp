#include <algorithm>
#include <pcr/sched/scheduler.hpp>

namespace pcr::sched {

Scheduler::Scheduler(std::vector<std::size_t> order, Options options, JobRunner& runner)
    : m_options(options), m_runner(runner), m_jobs(order.size()), m_queue(order.begin(), order.end()) {
  if (m_options.workers == 0) m_options.workers = 1;
  for (unsigned w = 1; w <= m_options.workers; ++w) m_free_workers.insert(w);
}

void Scheduler::start() {
  m_started = true;
  fill();
  check_done();
}

void Scheduler::launch(std::size_t job, unsigned worker) {
  Job& j = m_jobs[job];
  j.state = JobState::running;
  j.worker = worker;
  ++m_running;
  m_runner.start(job, worker, j.attempts++);
}

void Scheduler::fill() {
  const std::size_t limit = m_options.cap > 0 ? m_options.cap : static_cast<std::size_t>(-1);
  while (!m_stopping && !m_queue.empty() && m_running < limit) {
    std::size_t job = m_queue.front();
    unsigned worker;
    if (m_options.pinned) {
      worker = static_cast<unsigned>(job) + 1;
    } else {
      if (m_free_workers.empty()) break;
      worker = *m_free_workers.begin();
      m_free_workers.erase(m_free_workers.begin());
    }
    m_queue.pop_front();
    launch(job, worker);
  }
}

bool Scheduler::will_retry(std::size_t job, Ended ended) const {
  return ended == Ended::failed && !m_stopping && m_jobs[job].attempts <= m_options.retries;
}

void Scheduler::finished(std::size_t job, Ended ended) {
  Job& j = m_jobs[job];
  if (j.state != JobState::running) return;
  --m_running;
  if (will_retry(job, ended)) {
    launch(job, j.worker);  // same worker: it may own resources the job needs
    return;
  }
  j.state = ended == Ended::passed   ? JobState::passed
            : ended == Ended::failed ? JobState::failed
                                     : JobState::cancelled;
  if (!m_options.pinned) m_free_workers.insert(j.worker);
  if (ended == Ended::failed) {
    m_failed = true;
    if (m_options.fail_fast) cancel(false);
  }
  fill();
  check_done();
}

void Scheduler::cancel(bool immediately) {
  m_stopping = true;
  for (std::size_t job : m_queue) m_jobs[job].state = JobState::cancelled;
  m_queue.clear();
  for (std::size_t job = 0; job < m_jobs.size(); ++job)
    if (m_jobs[job].state == JobState::running) m_runner.stop(job, immediately);
  check_done();
}

void Scheduler::check_done() {
  if (m_done || !m_started || m_running > 0 || !m_queue.empty()) return;
  m_done = true;
  if (on_done) on_done();
}

}  // namespace pcr::sched
