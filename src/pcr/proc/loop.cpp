#include <pcr/proc/loop.hpp>

#include <uv.h>

#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstdlib>

namespace pcr::proc {

struct Loop::Timer {
  uv_timer_t handle;
  Loop* loop;
  TimerId id;
  bool repeating;
  Clock::time_point at;  // a one-shot timer's deadline: it never runs `fn` before
  std::function<void()> fn;
};

struct Loop::Signal {
  uv_signal_t handle;
  std::function<void(int)> fn;
};

struct Loop::Hangup {
  uv_poll_t handle;
  int fd;
  std::function<void()> fn;
};

namespace {
template <typename T>
void close_and_delete(T* owner) {
  uv_close(reinterpret_cast<uv_handle_t*>(&owner->handle),
           [](uv_handle_t* h) { delete static_cast<T*>(h->data); });
}
}  // namespace

Loop::Loop() : m_loop(std::make_unique<uv_loop_t>()) {
  if (uv_loop_init(m_loop.get()) != 0) std::abort();
}

Loop::~Loop() {
  for (auto& [id, timer] : m_timers) close_and_delete(timer);
  m_timers.clear();
  for (auto* signal : m_signals) close_and_delete(signal);
  m_signals.clear();
  for (auto* hangup : m_hangups) close_and_delete(hangup);
  m_hangups.clear();
  // Let close callbacks (ours and those of handles owned by other objects) finish.
  while (uv_run(m_loop.get(), UV_RUN_NOWAIT) != 0) {
  }
  uv_loop_close(m_loop.get());
}

void arm_at(uv_timer_s* timer, Clock::time_point at, void (*callback)(uv_timer_s*)) {
  uv_update_time(timer->loop);
  const auto left = std::chrono::ceil<Millis>(at - Clock::now()).count();
  uv_timer_start(timer, callback, static_cast<uint64_t>(std::max<Millis::rep>(left, 0)), 0);
}

bool fired_early(uv_timer_s* timer, Clock::time_point at, void (*callback)(uv_timer_s*)) {
  if (Clock::now() >= at) return false;
  arm_at(timer, at, callback);
  return true;
}

Loop::TimerId Loop::add_timer(Millis delay, Millis repeat, std::function<void()> fn) {
  auto* timer = new Timer{{}, this, m_next_timer++, repeat.count() > 0, Clock::now() + delay, std::move(fn)};
  uv_timer_init(m_loop.get(), &timer->handle);
  timer->handle.data = timer;
  m_timers.emplace(timer->id, timer);
  if (timer->repeating) {
    uv_update_time(m_loop.get());  // the cached loop time lags (arm_at)
    uv_timer_start(&timer->handle, &Loop::fire, static_cast<uint64_t>(delay.count()),
                   static_cast<uint64_t>(repeat.count()));
  } else {
    arm_at(&timer->handle, timer->at, &Loop::fire);
  }
  return timer->id;
}

void Loop::fire(uv_timer_s* h) {
  auto* t = static_cast<Timer*>(h->data);
  if (t->repeating) {
    t->fn();  // may cancel this very timer; `cancel` defers the delete to close.
    return;
  }
  if (fired_early(h, t->at, &Loop::fire)) return;
  auto callback = std::move(t->fn);
  t->loop->m_timers.erase(t->id);
  close_and_delete(t);
  callback();
}

void Loop::shift_timers(Clock::duration by) {
  for (auto& [id, t] : m_timers) {
    if (t->repeating || !uv_is_active(reinterpret_cast<uv_handle_t*>(&t->handle))) continue;
    t->at += by;
    arm_at(&t->handle, t->at, &Loop::fire);
  }
}

void Loop::cancel(TimerId id) {
  auto it = m_timers.find(id);
  if (it == m_timers.end()) return;
  uv_timer_stop(&it->second->handle);
  close_and_delete(it->second);
  m_timers.erase(it);
}

void Loop::watch_signal(int signum, std::function<void(int)> fn) {
  auto* signal = new Signal{{}, std::move(fn)};
  uv_signal_init(m_loop.get(), &signal->handle);
  signal->handle.data = signal;
  uv_signal_start(
      &signal->handle, [](uv_signal_t* h, int n) { static_cast<Signal*>(h->data)->fn(n); },
      signum);
  m_signals.push_back(signal);
}

void Loop::watch_hangup(int fd, std::function<void()> fn) {
  auto* hangup = new Hangup{{}, fd, std::move(fn)};
  uv_poll_init(m_loop.get(), &hangup->handle, fd);
  hangup->handle.data = hangup;
  uv_poll_start(&hangup->handle, UV_READABLE | UV_DISCONNECT,
                [](uv_poll_t* h, int status, int) {
                  auto* self = static_cast<Hangup*>(h->data);
                  char buf[256];
                  ssize_t n = status < 0 ? -1 : ::read(self->fd, buf, sizeof buf);
                  if (n > 0 || (n < 0 && errno == EAGAIN)) return;  // not the end yet
                  uv_poll_stop(h);
                  if (self->fn) {
                    auto callback = std::move(self->fn);
                    self->fn = nullptr;
                    callback();
                  }
                });
  m_hangups.push_back(hangup);
}

void Loop::run() {
  m_stopped = false;
  while (!m_stopped) {
    if (uv_run(m_loop.get(), UV_RUN_ONCE) == 0 && !m_stopped) {
      // Nothing left that could wake us: leaving beats hanging forever.
      break;
    }
  }
}

void Loop::stop() {
  m_stopped = true;
  uv_stop(m_loop.get());
}

}  // namespace pcr::proc
