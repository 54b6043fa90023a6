#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

struct uv_loop_s;
struct uv_timer_s;

namespace pcr::proc {

using Millis = std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Start libuv timer `timer` to call `callback` at `at`, never before. libuv counts from its
// cached loop time, which lags the clock by whatever the current iteration has spent
// (starting a hundred jobs, say) and is truncated to the millisecond: it is refreshed
// here and the wait rounded up, and a callback checks the clock again (`fired_early`).
// For the Loop's own timers and ProcessSet's.
void arm_at(uv_timer_s* timer, Clock::time_point at, void (*callback)(uv_timer_s*));
// Whether `timer`'s callback runs before `at`; then the timer is started again for the rest.
bool fired_early(uv_timer_s* timer, Clock::time_point at, void (*callback)(uv_timer_s*));

// The one event loop of a run (libuv underneath). Everything pcr does — process exits,
// output, timers, signals — arrives as a callback on this loop, on this thread; nothing
// runs in signal context. Not thread-safe.
class Loop {
 public:
  using TimerId = std::uint64_t;

  Loop();
  ~Loop();  // Closes every handle it still owns.
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Call `fn` after `delay`, then every `repeat` when `repeat` is non-zero. A one-shot
  // timer forgets itself after it fires. Returns an id for `cancel`.
  TimerId add_timer(Millis delay, Millis repeat, std::function<void()> fn);

  // Move every one-shot timer's deadline `by` later (the time the run spent stopped by
  // job control, which counts against no deadline).
  void shift_timers(Clock::duration by);

  // Stop timer `id`; a no-op for an id that already fired or was cancelled.
  void cancel(TimerId id);

  // Run `fn` on a later turn of the loop, never from within the caller. Use it to leave a
  // callback before doing something that may destroy the callback's owner.
  void post(std::function<void()> fn) { add_timer(Millis(0), Millis(0), std::move(fn)); }

  // Call `fn(signum)` from the loop each time `signum` arrives. Watching SIGINT/SIGTERM
  // replaces their default action for the life of the loop.
  void watch_signal(int signum, std::function<void(int)> fn);

  // Call `fn` once when the peer of pipe `fd` has closed it (end of file, or an error):
  // how the engine learns that its supervisor is gone. Reads and discards anything else.
  void watch_hangup(int fd, std::function<void()> fn);

  // Run until `stop()` is called.
  void run();
  void stop();

  uv_loop_s* raw() { return m_loop.get(); }

 private:
  struct Timer;
  struct Signal;
  static void fire(uv_timer_s* handle);
  std::unique_ptr<uv_loop_s> m_loop;
  std::unordered_map<TimerId, Timer*> m_timers;
  std::vector<Signal*> m_signals;
  struct Hangup;
  std::vector<Hangup*> m_hangups;
  TimerId m_next_timer = 1;
  bool m_stopped = false;
};

}  // namespace pcr::proc
