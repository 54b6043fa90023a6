#pragma once

// A step's items shared by every machine running the same pipeline, through Redis
// (`pcr run --queue redis://HOST:PORT/NAME`), and what `pcr report --queue` reads of a
// build. Every change of state is one Lua script, so two machines never both take or
// both complete an item; a lease is a number that also fences (a machine whose item was
// taken over acknowledges it for nothing).

#include <pcr/sched/shared_queue.hpp>
#include <pcr/util/expected.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace pcr::queue {

// redis://[[USER]:PASSWORD@]HOST[:PORT]/NAME: NAME is the build (every machine of one
// build gives the same), the password may also come from PCR_QUEUE_PASSWORD.
struct Url {
  std::string host;
  int port = 6379;
  std::string name;
  std::string password;
  std::string shown;  // the URL without its password, for messages
};
util::Expected<Url> parse_url(const std::string& text);

// One step's jobs as this machine laid them out, for the queue.
struct SharedStep {
  std::string step;
  // Each job's identity (its items), in queue order (longest first), with its local index:
  // the same on every machine of the build.
  std::vector<std::pair<std::size_t, std::string>> jobs;
  // A job's name and JSON result (status, duration, output tail) once it ended here.
  std::function<std::string(std::size_t job)> result_of;
};

struct Options {
  std::chrono::milliseconds lease{30'000};  // --queue-timeout: a machine silent this long loses its items
  std::chrono::milliseconds io_timeout{5'000};  // a Redis call that takes longer fails the queue
  unsigned max_requeues = 0;  // retries through the queue for the whole build; 0: 10 + the items / 10
  std::string machine;        // this machine's name; empty: host name and pid
  bool named = false;         // `machine` was given: a rerun under it retries its failures
};

class Connection;

class RedisQueue final : public sched::SharedQueue {
 public:
  // Connects and fills the step's queue when this machine is the first (atomically), or
  // checks that the queue holds the same items. Throws std::runtime_error saying what failed.
  RedisQueue(const Url& url, const Options& options, SharedStep step);
  ~RedisQueue() override;
  Next next() override;
  Ack finished(std::size_t job, Outcome outcome, bool retry) override;
  std::string error() const override { return m_error; }
  std::string where() const override { return m_url.shown; }
  // Keep this machine's leases (the run calls it every lease / 3).
  void heartbeat() override;
  // Items that had failed on this machine (same name) in an earlier attempt of the build
  // and went back to the queue when it joined.
  std::size_t requeued() const { return m_requeued; }

 private:
  std::string key(const std::string& what) const;
  std::string result_json(std::size_t job) const;
  void fail(const std::string& what);
  std::unique_ptr<Connection> m_redis;
  Url m_url;
  Options m_options;
  SharedStep m_step;
  std::map<std::string, std::size_t> m_index;   // identity → local job
  std::map<std::size_t, std::string> m_identity;  // local job → identity
  std::map<std::size_t, std::string> m_tokens;  // local job → the lease it runs under
  std::string m_error;
  std::size_t m_requeued = 0;
};

// What `pcr report --queue` shows of a build: every item of every step.
struct ItemResult {
  std::string step, item, status;  // status: passed, failed, running, queued
  std::string machine, name, tail;
  std::int64_t duration_ms = 0;
  unsigned tries = 0;
};
struct Build {
  std::vector<ItemResult> items;
  std::vector<std::string> machines_alive;
  bool finished = false;  // every step's items done
};
// Reads build `url.name`. Throws std::runtime_error when Redis cannot be read.
Build read_build(const Url& url, std::chrono::milliseconds io_timeout);

}  // namespace pcr::queue
