#pragma once

#include <cstddef>
#include <string>

namespace pcr::sched {

// A step's queue shared with other machines running the same pipeline (`pcr run
// --queue`): the scheduler asks it for each next job instead of taking from its own
// queue, and tells it how each ended. Whatever it is built on, the scheduler sees only this.
class SharedQueue {
 public:
  virtual ~SharedQueue() = default;

  struct Next {
    enum class Kind {
      job,      // run `job` (a local index), its `attempt`th attempt (0 = first)
      later,    // nothing free now, but other machines hold items that may come back: ask again
      drained,  // every item is done
      broken,   // the queue itself failed (error() says how): take nothing more
    } kind = Kind::drained;
    std::size_t job = 0;
    unsigned attempt = 0;
  };
  virtual Next next() = 0;

  // `job`, taken from next(), ended here. Failed with `retry` asked, it goes back for any
  // machine to run again (within the queue's bound on retries); cancelled (this machine
  // is stopping), it goes back at once for the others, using no retry.
  enum class Outcome { passed, failed, cancelled };
  enum class Ack {
    done,      // counted as this machine's result
    requeued,  // back in the queue for another attempt (or for the others)
    lost,      // not counted: another machine took the item over after this one stopped answering
    broken,    // the queue failed
  };
  virtual Ack finished(std::size_t job, Outcome outcome, bool retry) = 0;

  // Empty while the queue works; else what failed, for the user.
  virtual std::string error() const = 0;

  // Where the queue is, for the user (no password).
  virtual std::string where() const = 0;

  // Keep this machine's leases alive; the runner calls it on a timer.
  virtual void heartbeat() {}
};

}  // namespace pcr::sched
