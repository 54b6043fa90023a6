#include <pcr/sched/scheduler.hpp>

#include <gtest/gtest.h>

#include <deque>
#include <map>

using namespace pcr::sched;

// Drives the scheduler by hand, the way ninja's build tests drive its Builder.
struct FakeRunner : JobRunner {
  struct Start {
    size_t job;
    unsigned worker;
    unsigned attempt;
  };
  std::vector<Start> starts;
  std::vector<std::pair<size_t, bool>> stops;
  std::map<size_t, unsigned> running;  // job -> worker
  void start(size_t job, unsigned worker, unsigned attempt) override {
    for (auto& [j, w] : running) EXPECT_NE(w, worker) << "worker " << worker << " given twice";
    running[job] = worker;
    starts.push_back({job, worker, attempt});
  }
  void stop(size_t job, bool immediately) override { stops.emplace_back(job, immediately); }
};

std::vector<size_t> iota(size_t n) {
  std::vector<size_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

TEST(Scheduler, WorkersPullFromTheQueueOneAtATime) {
  FakeRunner r;
  Options o;
  o.workers = 2;
  Scheduler s(iota(5), o, r);
  s.start();
  ASSERT_EQ(r.starts.size(), 2u);
  EXPECT_EQ(r.starts[0].worker, 1u);
  EXPECT_EQ(r.starts[1].worker, 2u);
  // Worker 2 finishes first and takes the next job; worker 1 is still busy.
  r.running.erase(1);
  s.finished(1, Ended::passed);
  ASSERT_EQ(r.starts.size(), 3u);
  EXPECT_EQ(r.starts[2].job, 2u);
  EXPECT_EQ(r.starts[2].worker, 2u);
  for (size_t job : {0u, 2u, 3u, 4u}) {
    r.running.erase(job);
    s.finished(job, Ended::passed);
  }
  EXPECT_TRUE(s.done());
  EXPECT_FALSE(s.failed());
  EXPECT_EQ(r.starts.size(), 5u);
}

TEST(Scheduler, CapLimitsConcurrencyBelowWorkers) {
  FakeRunner r;
  Options o;
  o.workers = 4;
  o.cap = 1;
  Scheduler s(iota(3), o, r);
  s.start();
  EXPECT_EQ(r.starts.size(), 1u);
  EXPECT_EQ(s.running(), 1u);
}

TEST(Scheduler, PinnedJobsRunAsTheirOwnNumber) {
  FakeRunner r;
  Options o;
  o.workers = 3;
  o.pinned = true;
  o.cap = 2;
  Scheduler s(iota(3), o, r);
  s.start();
  r.running.erase(0);
  s.finished(0, Ended::passed);
  ASSERT_EQ(r.starts.size(), 3u);
  for (auto& st : r.starts) EXPECT_EQ(st.worker, st.job + 1);
}

TEST(Scheduler, RetriesOnTheSameWorkerThenGivesUp) {
  FakeRunner r;
  Options o;
  o.workers = 1;
  o.retries = 2;
  Scheduler s(iota(1), o, r);
  bool done = false;
  s.on_done = [&] { done = true; };
  s.start();
  for (unsigned attempt = 0; attempt < 3; ++attempt) {
    ASSERT_EQ(r.starts.size(), attempt + 1);
    EXPECT_EQ(r.starts.back().attempt, attempt);
    EXPECT_EQ(s.will_retry(0, Ended::failed), attempt < 2);
    r.running.clear();
    s.finished(0, Ended::failed);
  }
  EXPECT_TRUE(done);
  EXPECT_TRUE(s.failed());
  EXPECT_EQ(s.state(0), JobState::failed);
}

TEST(Scheduler, FailFastStopsTheOthersAndCancelsTheQueue) {
  FakeRunner r;
  Options o;
  o.workers = 2;
  o.fail_fast = true;
  Scheduler s(iota(4), o, r);
  s.start();
  r.running.erase(0);
  s.finished(0, Ended::failed);
  ASSERT_EQ(r.stops.size(), 1u);
  EXPECT_EQ(r.stops[0].first, 1u);
  EXPECT_EQ(r.starts.size(), 2u);  // nothing new started
  EXPECT_EQ(s.state(2), JobState::cancelled);
  EXPECT_FALSE(s.done());
  s.finished(1, Ended::cancelled);
  EXPECT_TRUE(s.done());
  EXPECT_TRUE(s.failed());
}

TEST(Scheduler, WithoutFailFastTheOthersFinish) {
  FakeRunner r;
  Options o;
  o.workers = 1;
  Scheduler s(iota(3), o, r);
  s.start();
  r.running.clear();
  s.finished(0, Ended::failed);
  EXPECT_EQ(r.starts.size(), 2u);
  EXPECT_TRUE(r.stops.empty());
}

TEST(Scheduler, EmptyStepIsDoneAtOnce) {
  FakeRunner r;
  Scheduler s({}, Options{}, r);
  bool done = false;
  s.on_done = [&] { done = true; };
  s.start();
  EXPECT_TRUE(done);
}

TEST(Scheduler, CancelledJobsAreNotRetried) {
  FakeRunner r;
  Options o;
  o.retries = 3;
  Scheduler s(iota(1), o, r);
  s.start();
  s.cancel(false);
  EXPECT_FALSE(s.will_retry(0, Ended::failed));
  s.finished(0, Ended::cancelled);
  EXPECT_EQ(r.starts.size(), 1u);
  EXPECT_TRUE(s.done());
}

// A runner that also logs set-ups and tear-downs, in order.
struct WorkerRunner : FakeRunner {
  std::vector<std::string> log;
  void start(size_t job, unsigned worker, unsigned attempt) override {
    FakeRunner::start(job, worker, attempt);
    log.push_back("job" + std::to_string(job) + "@" + std::to_string(worker));
  }
  void start_setup(unsigned worker) override { log.push_back("setup@" + std::to_string(worker)); }
  void start_teardown(unsigned worker) override {
    log.push_back("teardown@" + std::to_string(worker));
  }
};

TEST(Scheduler, SetupBeforeFirstJobTeardownAfterLast) {
  WorkerRunner r;
  Options o;
  o.workers = 2;
  o.setup = o.teardown = true;
  Scheduler s(iota(3), o, r);
  s.start();
  EXPECT_EQ(r.log, (std::vector<std::string>{"setup@1", "setup@2"}));
  // Worker 2 is ready first and takes job 0; worker 1 is still setting up.
  s.worker_task_finished(2, true);
  EXPECT_EQ(r.log.back(), "job0@2");
  s.worker_task_finished(1, true);
  EXPECT_EQ(r.log.back(), "job1@1");
  r.running.clear();
  s.finished(0, Ended::passed);
  EXPECT_EQ(r.log.back(), "job2@2");
  s.finished(1, Ended::passed);  // queue empty: worker 1 tears down
  EXPECT_EQ(r.log.back(), "teardown@1");
  s.finished(2, Ended::passed);
  EXPECT_EQ(r.log.back(), "teardown@2");
  EXPECT_FALSE(s.done());
  s.worker_task_finished(1, true);
  s.worker_task_finished(2, true);
  EXPECT_TRUE(s.done());
  EXPECT_FALSE(s.failed());
}

TEST(Scheduler, FailedSetupSendsTheJobsToOtherWorkersAndFailsTheStep) {
  WorkerRunner r;
  Options o;
  o.workers = 2;
  o.setup = o.teardown = true;
  Scheduler s(iota(2), o, r);
  s.start();
  s.worker_task_finished(1, false);  // worker 1 is broken: tears down at the end
  s.worker_task_finished(2, true);
  EXPECT_EQ(r.log.back(), "job0@2");
  r.running.clear();
  s.finished(0, Ended::passed);
  // The last queued job goes to worker 2 too; the queue is empty, so broken worker 1
  // tears down now.
  EXPECT_EQ(r.log,
            (std::vector<std::string>{"setup@1", "setup@2", "job0@2", "job1@2", "teardown@1"}));
  s.finished(1, Ended::passed);
  EXPECT_EQ(r.log.back(), "teardown@2");
  s.worker_task_finished(1, true);
  s.worker_task_finished(2, true);
  EXPECT_TRUE(s.done());
  EXPECT_TRUE(s.failed());
}

TEST(Scheduler, AllSetupsFailingCancelsTheQueue) {
  WorkerRunner r;
  Options o;
  o.workers = 2;
  o.setup = true;
  Scheduler s(iota(4), o, r);
  s.start();
  s.worker_task_finished(1, false);
  s.worker_task_finished(2, false);
  EXPECT_TRUE(s.done());
  EXPECT_TRUE(s.failed());
  EXPECT_EQ(s.state(3), JobState::cancelled);
  EXPECT_TRUE(r.starts.empty());
}

TEST(Scheduler, TeardownStillRunsWhenCancelled) {
  WorkerRunner r;
  Options o;
  o.workers = 1;
  o.teardown = true;
  Scheduler s(iota(3), o, r);
  s.start();
  s.cancel(false);
  EXPECT_EQ(r.log.back(), "job0@1");
  s.finished(0, Ended::cancelled);
  EXPECT_EQ(r.log.back(), "teardown@1");
  s.worker_task_finished(1, true);
  EXPECT_TRUE(s.done());
}

// A machine goes away under worker 2: its job goes back to the queue (no retry used) and
// runs on worker 1; worker 2 takes nothing more and owes no tear-down.
TEST(Scheduler, RequeueOnARetiredWorkerMovesTheJobWithoutARetry) {
  struct Runner : FakeRunner {
    std::vector<unsigned> teardowns;
    void start_teardown(unsigned worker) override { teardowns.push_back(worker); }
  } r;
  Options o;
  o.workers = 2;
  o.teardown = true;
  Scheduler s(iota(3), o, r);
  s.start();
  ASSERT_EQ(r.starts.size(), 2u);
  s.retire(2);
  r.running.erase(1);
  s.requeue(1);  // job 1 was on worker 2
  EXPECT_FALSE(s.done());
  EXPECT_EQ(s.state(1), JobState::queued);
  r.running.erase(0);
  s.finished(0, Ended::passed);
  ASSERT_EQ(r.starts.size(), 3u);
  EXPECT_EQ(r.starts[2].job, 1u) << "the lost job goes first";
  EXPECT_EQ(r.starts[2].worker, 1u);
  EXPECT_EQ(r.starts[2].attempt, 1u);
  EXPECT_FALSE(s.will_retry(1, Ended::failed))
      << "no retries configured: the lost attempt used none";
  r.running.erase(1);
  s.finished(1, Ended::passed);
  r.running.erase(2);
  s.finished(2, Ended::passed);
  EXPECT_EQ(r.teardowns, std::vector<unsigned>{1});
  s.worker_task_finished(1, true);
  EXPECT_TRUE(s.done());
  EXPECT_FALSE(s.failed());
}

// A pinned job whose worker was moved to another machine runs again on the same worker.
TEST(Scheduler, RequeuedPinnedJobRunsAgainOnItsWorker) {
  FakeRunner r;
  Options o;
  o.workers = 2;
  o.pinned = true;
  o.retries = 1;
  Scheduler s(iota(2), o, r);
  s.start();
  r.running.erase(1);
  s.requeue(1);
  ASSERT_EQ(r.starts.size(), 3u);
  EXPECT_EQ(r.starts[2].job, 1u);
  EXPECT_EQ(r.starts[2].worker, 2u);
  EXPECT_TRUE(s.will_retry(1, Ended::failed)) << "the retry is still there";
  for (size_t j : {0u, 1u}) r.running.erase(j), s.finished(j, Ended::passed);
  EXPECT_TRUE(s.done());
}

// A set-up lost with its machine neither fails the step nor breaks the worker: a retired
// one is done, and the others take the queue.
TEST(Scheduler, LostSetupOfARetiredWorkerDoesNotFailTheStep) {
  struct Runner : FakeRunner {
    std::vector<unsigned> setups;
    void start_setup(unsigned worker) override { setups.push_back(worker); }
  } r;
  Options o;
  o.workers = 2;
  o.setup = true;
  Scheduler s(iota(2), o, r);
  s.start();
  ASSERT_EQ(r.setups.size(), 2u);
  s.retire(2);
  s.setup_lost(2);
  s.worker_task_finished(1, true);
  ASSERT_EQ(r.starts.size(), 1u);
  EXPECT_EQ(r.starts[0].worker, 1u);
  r.running.erase(r.starts[0].job);
  s.finished(r.starts[0].job, Ended::passed);
  ASSERT_EQ(r.starts.size(), 2u);
  EXPECT_EQ(r.starts[1].worker, 1u);
  r.running.erase(r.starts[1].job);
  s.finished(r.starts[1].job, Ended::passed);
  EXPECT_TRUE(s.done());
  EXPECT_FALSE(s.failed());
}

// The queue had emptied and worker 2 had wound down when worker 1's machine went away:
// worker 2 takes the lost job.
TEST(Scheduler, AWoundDownWorkerTakesAJobThatCameBack) {
  FakeRunner r;
  Options o;
  o.workers = 2;
  Scheduler s(iota(2), o, r);
  s.start();
  r.running.erase(1);
  s.finished(1, Ended::passed);  // queue empty: worker 2 is done
  s.retire(1);
  r.running.erase(0);
  s.requeue(0);
  ASSERT_EQ(r.starts.size(), 3u);
  EXPECT_EQ(r.starts[2].job, 0u);
  EXPECT_EQ(r.starts[2].worker, 2u);
  EXPECT_FALSE(s.done());
  r.running.erase(0);
  s.finished(0, Ended::passed);
  EXPECT_TRUE(s.done());
}

// A shared queue held in memory: what other machines hold is `elsewhere` (later until
// they give it back), and what this machine was told is recorded.
struct FakeShared : SharedQueue {
  std::deque<size_t> items;
  size_t elsewhere = 0;  // items other machines are running
  std::vector<std::pair<size_t, Outcome>> told;
  std::map<size_t, unsigned> tries;
  bool broken = false;
  Next next() override {
    Next n;
    if (broken) {
      n.kind = Next::Kind::broken;
    } else if (!items.empty()) {
      n.kind = Next::Kind::job, n.job = items.front(), n.attempt = tries[items.front()];
      items.pop_front();
    } else {
      n.kind = elsewhere > 0 ? Next::Kind::later : Next::Kind::drained;
    }
    return n;
  }
  Ack finished(size_t job, Outcome outcome, bool retry) override {
    told.emplace_back(job, outcome);
    if (outcome == Outcome::cancelled || (outcome == Outcome::failed && retry)) {
      if (outcome == Outcome::failed) ++tries[job];
      items.push_back(job);
      return Ack::requeued;
    }
    return Ack::done;
  }
  std::string error() const override { return broken ? "lost" : ""; }
  std::string where() const override { return "fake"; }
};

// Shared: jobs come from the queue, a retry goes back through it (its attempt counted
// there), and the step waits while other machines hold items that may come back.
TEST(Scheduler, SharedQueueFeedsTheWorkersAndTakesRetriesBack) {
  FakeRunner r;
  FakeShared q;
  q.items = {2, 0, 1};
  q.elsewhere = 1;
  Options o;
  o.workers = 2;
  o.retries = 1;
  Scheduler s(iota(4), o, r);
  s.share(q);
  s.start();
  ASSERT_EQ(r.starts.size(), 2u);
  EXPECT_EQ(r.starts[0].job, 2u);
  EXPECT_EQ(r.starts[1].job, 0u);
  r.running.erase(2);
  s.finished(2, Ended::failed);  // retried through the queue, not on the same worker at once
  ASSERT_EQ(r.starts.size(), 3u);
  EXPECT_EQ(r.starts[2].job, 1u);
  r.running.erase(0);
  s.finished(0, Ended::passed);
  ASSERT_EQ(r.starts.size(), 4u);
  EXPECT_EQ(r.starts[3].job, 2u);
  EXPECT_EQ(r.starts[3].attempt, 1u);
  for (size_t job : {1u, 2u}) {
    r.running.erase(job);
    s.finished(job, Ended::passed);
  }
  EXPECT_FALSE(s.done()) << "another machine still holds an item";
  EXPECT_TRUE(s.waiting());
  q.elsewhere = 0;
  s.poll();
  EXPECT_TRUE(s.done());
  EXPECT_FALSE(s.failed());
}

// Shared: a stop gives the running jobs back to the queue (cancelled), and a broken queue
// fails the step and hands out nothing more.
TEST(Scheduler, SharedQueueCancelledJobsGoBackAndABrokenQueueFails) {
  FakeRunner r;
  FakeShared q;
  q.items = {0, 1, 2};
  Options o;
  o.workers = 2;
  Scheduler s(iota(3), o, r);
  s.share(q);
  s.start();
  s.cancel(false);
  for (size_t job : {0u, 1u}) {
    r.running.erase(job);
    s.finished(job, Ended::cancelled);
  }
  EXPECT_TRUE(s.done());
  ASSERT_EQ(q.told.size(), 2u);
  EXPECT_EQ(q.told[0].second, SharedQueue::Outcome::cancelled);
  EXPECT_EQ(q.items.size(), 3u) << "the cancelled jobs went back for the others";

  FakeRunner r2;
  FakeShared broken;
  broken.broken = true;
  Scheduler s2(iota(3), o, r2);
  s2.share(broken);
  s2.start();
  EXPECT_TRUE(s2.done());
  EXPECT_TRUE(s2.failed());
  EXPECT_TRUE(r2.starts.empty());
}
