#include <pcr/queue/redis.hpp>

#include <fmt/format.h>
#include <hiredis.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

namespace pcr::queue {

namespace {

// Keys of build NAME, step S: pcr:NAME:S:<what>. `steps` (a set) names the build's steps.
//   queue    list of item identities not taken yet (longest first; retries at the back)
//   total    how many items the step has; `check` a digest of them (every machine the same)
//   leased   sorted set: item → the lease's deadline (ms, Redis's clock)
//   owner    hash: item → the token of its lease ("machine#n"); `leases` the counter
//   done     hash: item → passed | failed;  results: item → JSON (machine, name, tail…)
//   tries    hash: item → failed attempts requeued;  requeues: the build's count of them
// Machines: pcr:NAME:machines (a set), pcr:NAME:alive:<machine> (expires with the lease).

// Fills the queue when nobody has (one step, atomically), else checks it holds the same
// items. KEYS: queue total check steps; ARGV: digest step item... → 1 filled, 0 there, -1 other items.
constexpr const char* k_fill = R"LUA(
if redis.call('EXISTS', KEYS[2]) == 1 then
  if redis.call('GET', KEYS[3]) ~= ARGV[1] then return -1 end
  return 0
end
for i = 3, #ARGV, 1000 do
  redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('SET', KEYS[2], #ARGV - 2)
redis.call('SET', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[2])
return 1
)LUA";

// A machine run again under the same name (a CI retry of that machine) gives the items
// that failed on it back to the queue, to run them again. KEYS: done results queue;
// ARGV: machine → how many.
constexpr const char* k_retry_mine = R"LUA(
local n = 0
local done = redis.call('HGETALL', KEYS[1])
for i = 1, #done, 2 do
  if done[i + 1] == 'failed' then
    local ok, r = pcall(cjson.decode, redis.call('HGET', KEYS[2], done[i]) or '{}')
    if ok and type(r) == 'table' and r['machine'] == ARGV[1] then
      redis.call('HDEL', KEYS[1], done[i])
      redis.call('HDEL', KEYS[2], done[i])
      redis.call('RPUSH', KEYS[3], done[i])
      n = n + 1
    end
  end
end
return n
)LUA";

// Takes the next item: one whose lease expired (its machine stopped answering) first,
// else the queue's head. KEYS: queue leased owner tries leases; ARGV: machine lease_ms
// → {'job', item, token, tries} | {'later'} | {'drained'}.
constexpr const char* k_take = R"LUA(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local item
local lost = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1)
if #lost > 0 then item = lost[1] else item = redis.call('LPOP', KEYS[1]) end
if not item then
  if redis.call('ZCARD', KEYS[2]) == 0 then return {'drained'} end
  return {'later'}
end
local token = ARGV[1] .. '#' .. redis.call('INCR', KEYS[5])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), item)
redis.call('HSET', KEYS[3], item, token)
return {'job', item, token, redis.call('HGET', KEYS[4], item) or '0'}
)LUA";

// Ends a lease: counts nothing unless the token is still the item's. KEYS: owner leased
// queue done tries requeues results; ARGV: item token status retry max_requeues result
// → 1 done, 2 requeued, 0 lost. Status "cancelled": back to the queue's head, for the others.
constexpr const char* k_finish = R"LUA(
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[3] == 'cancelled' then
  redis.call('LPUSH', KEYS[3], ARGV[1])
  return 2
end
if ARGV[4] == '1' and tonumber(redis.call('GET', KEYS[6]) or '0') < tonumber(ARGV[5]) then
  redis.call('INCR', KEYS[6])
  redis.call('HINCRBY', KEYS[5], ARGV[1], 1)
  redis.call('RPUSH', KEYS[3], ARGV[1])
  return 2
end
redis.call('HSET', KEYS[4], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[7], ARGV[1], ARGV[6])
return 1
)LUA";

// Moves the deadline of each lease this machine still holds, and says it is alive.
// KEYS: owner leased alive machines; ARGV: lease_ms machine item token item token…
constexpr const char* k_heartbeat = R"LUA(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local kept = 0
for i = 3, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('ZADD', KEYS[2], 'XX', now + tonumber(ARGV[1]), ARGV[i])
    kept = kept + 1
  end
end
redis.call('SET', KEYS[3], '1', 'PX', ARGV[1])
redis.call('SADD', KEYS[4], ARGV[2])
return kept
)LUA";

// FNV-1a, 64 bits, of the step's items (sorted: each machine orders them by its own
// timings): every machine of a build must have the same.
std::string digest(const std::vector<std::pair<std::size_t, std::string>>& jobs) {
  std::vector<std::string> ids;
  for (const auto& [index, id] : jobs) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  std::uint64_t h = 14695981039346656037ull;
  for (const auto& id : ids) {
    for (unsigned char c : id) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
  }
  return fmt::format("{:016x}:{}", h, jobs.size());
}

std::string default_machine() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return fmt::format("{}/{}", host[0] ? host : "machine", ::getpid());
}

struct ReplyFree {
  void operator()(redisReply* r) const { if (r) freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

std::string text_of(const redisReply* r) {
  if (!r) return "";
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR)
    return std::string(r->str, r->len);
  if (r->type == REDIS_REPLY_INTEGER) return std::to_string(r->integer);
  return "";
}

}  // namespace

// One blocking connection with timeouts: every call ends within `io_timeout` or throws.
class Connection {
 public:
  Connection(const Url& url, std::chrono::milliseconds io_timeout) : m_shown(url.shown) {
    timeval tv{static_cast<time_t>(io_timeout.count() / 1000),
               static_cast<suseconds_t>((io_timeout.count() % 1000) * 1000)};
    m_c = redisConnectWithTimeout(url.host.c_str(), url.port, tv);
    if (!m_c) throw std::runtime_error(fmt::format("{}: cannot allocate a connection", m_shown));
    if (m_c->err) throw std::runtime_error(fmt::format("{}: {}", m_shown, m_c->errstr));
    redisSetTimeout(m_c, tv);
    if (!url.password.empty()) call({"AUTH", url.password});
  }
  ~Connection() {
    if (m_c) redisFree(m_c);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  Reply call(const std::vector<std::string>& args) {
    if (m_c->err) throw std::runtime_error(fmt::format("{}: {}", m_shown, m_c->errstr));
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) argv.push_back(a.data()), lens.push_back(a.size());
    Reply r(static_cast<redisReply*>(
        redisCommandArgv(m_c, static_cast<int>(argv.size()), argv.data(), lens.data())));
    if (!r) throw std::runtime_error(fmt::format("{}: {}", m_shown, m_c->err ? m_c->errstr : "no reply"));
    if (r->type == REDIS_REPLY_ERROR) throw std::runtime_error(fmt::format("{}: {}", m_shown, text_of(r.get())));
    return r;
  }

  Reply eval(const char* script, const std::vector<std::string>& keys, const std::vector<std::string>& args) {
    std::vector<std::string> all = {"EVAL", script, std::to_string(keys.size())};
    all.insert(all.end(), keys.begin(), keys.end());
    all.insert(all.end(), args.begin(), args.end());
    return call(all);
  }

 private:
  redisContext* m_c = nullptr;
  std::string m_shown;
};

util::Expected<Url> parse_url(const std::string& text) {
  using E = util::Expected<Url>;
  Url u;
  std::string rest;
  if (text.rfind("redis://", 0) == 0) {
    rest = text.substr(8);
  } else if (text.rfind("rediss://", 0) == 0) {
    return E::failure("rediss:// (TLS) needs a hiredis built with SSL, which this pcr is not: "
                      "reach Redis over a tunnel (stunnel, ssh -L) as redis://");
  } else {
    return E::failure("a queue is redis://HOST:PORT/NAME");
  }
  const auto slash = rest.find('/');
  if (slash == std::string::npos || slash + 1 == rest.size())
    return E::failure("a queue URL ends with /NAME, the build's name (e.g. redis://ci-redis:6379/$CI_PIPELINE_ID)");
  u.name = rest.substr(slash + 1);
  for (unsigned char c : u.name)
    if (c <= ' ' || c == 0x7f) return E::failure("the queue's NAME holds a space or control character");
  std::string authority = rest.substr(0, slash);
  if (const auto at = authority.rfind('@'); at != std::string::npos) {
    std::string userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const auto colon = userinfo.find(':');
    u.password = colon == std::string::npos ? userinfo : userinfo.substr(colon + 1);
  }
  if (u.password.empty())
    if (const char* p = std::getenv("PCR_QUEUE_PASSWORD")) u.password = p;
  if (const auto colon = authority.rfind(':'); colon != std::string::npos && authority.find(']') == std::string::npos) {
    const std::string port = authority.substr(colon + 1);
    authority = authority.substr(0, colon);
    if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        std::stoi(port) == 0 || std::stoi(port) > 65535)
      return E::failure(fmt::format("'{}' is not a port", port));
    u.port = std::stoi(port);
  }
  if (authority.empty()) return E::failure("a queue URL names its host: redis://HOST:PORT/NAME");
  u.host = authority;
  u.shown = fmt::format("redis://{}:{}/{}", u.host, u.port, u.name);
  return u;
}

RedisQueue::RedisQueue(const Url& url, const Options& options, SharedStep step)
    : m_url(url), m_options(options), m_step(std::move(step)) {
  m_options.named = !m_options.machine.empty();
  if (m_options.machine.empty()) m_options.machine = default_machine();
  if (m_options.max_requeues == 0) m_options.max_requeues = 10 + static_cast<unsigned>(m_step.jobs.size() / 10);
  for (const auto& [index, id] : m_step.jobs) {
    m_index.emplace(id, index);
    m_identity[index] = id;
  }
  m_redis = std::make_unique<Connection>(m_url, m_options.io_timeout);
  std::vector<std::string> args = {digest(m_step.jobs), m_step.step};
  for (const auto& [index, id] : m_step.jobs) args.push_back(id);
  const auto filled =
      m_redis->eval(k_fill, {key("queue"), key("total"), key("check"), fmt::format("pcr:{}:steps", m_url.name)}, args);
  if (filled->type == REDIS_REPLY_INTEGER && filled->integer < 0)
    throw std::runtime_error(fmt::format(
        "{}: step '{}' of this machine has other items than the queue's (another pipeline, checkout or "
        "--only under the same NAME?)",
        m_url.shown, m_step.step));
  // Run again under its own name: what failed here last time runs again.
  if (filled->type == REDIS_REPLY_INTEGER && filled->integer == 0 && m_options.named)
    m_requeued = static_cast<std::size_t>(
        m_redis->eval(k_retry_mine, {key("done"), key("results"), key("queue")}, {m_options.machine})->integer);
  heartbeat();
}

RedisQueue::~RedisQueue() = default;

std::string RedisQueue::key(const std::string& what) const {
  return fmt::format("pcr:{}:{}:{}", m_url.name, m_step.step, what);
}

void RedisQueue::fail(const std::string& what) {
  if (m_error.empty()) m_error = what;
}

sched::SharedQueue::Next RedisQueue::next() {
  Next n;
  if (!m_error.empty()) {
    n.kind = Next::Kind::broken;
    return n;
  }
  try {
    const auto r = m_redis->eval(k_take, {key("queue"), key("leased"), key("owner"), key("tries"), key("leases")},
                                 {m_options.machine, std::to_string(m_options.lease.count())});
    const std::string kind = r->type == REDIS_REPLY_ARRAY && r->elements > 0 ? text_of(r->element[0]) : "";
    if (kind == "later") {
      n.kind = Next::Kind::later;
    } else if (kind == "drained") {
      n.kind = Next::Kind::drained;
    } else if (kind == "job" && r->elements == 4) {
      const std::string id = text_of(r->element[1]);
      const auto it = m_index.find(id);
      if (it == m_index.end()) throw std::runtime_error(fmt::format("{}: an item this machine does not have", m_url.shown));
      n.kind = Next::Kind::job;
      n.job = it->second;
      n.attempt = static_cast<unsigned>(std::strtoul(text_of(r->element[3]).c_str(), nullptr, 10));
      m_tokens[n.job] = text_of(r->element[2]);
    } else {
      throw std::runtime_error(fmt::format("{}: an answer pcr does not know", m_url.shown));
    }
  } catch (const std::exception& e) {
    fail(e.what());
    n.kind = Next::Kind::broken;
  }
  return n;
}

// What `pcr report --queue` shows of a job that ended here: the step's result, and where.
std::string RedisQueue::result_json(std::size_t job) const {
  auto j = nlohmann::json::parse(m_step.result_of ? m_step.result_of(job) : "{}", nullptr, false);
  if (!j.is_object()) j = nlohmann::json::object();
  j["machine"] = m_options.machine;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

sched::SharedQueue::Ack RedisQueue::finished(std::size_t job, Outcome outcome, bool retry) {
  const auto token = m_tokens.find(job);
  if (token == m_tokens.end()) return Ack::lost;
  const std::string tok = token->second;
  m_tokens.erase(token);
  if (!m_error.empty()) return Ack::broken;
  const std::string& id = m_identity[job];
  try {
    const auto r = m_redis->eval(
        k_finish, {key("owner"), key("leased"), key("queue"), key("done"), key("tries"), key("requeues"), key("results")},
        {id, tok, outcome == Outcome::passed ? "passed" : outcome == Outcome::failed ? "failed" : "cancelled",
         retry ? "1" : "0", std::to_string(m_options.max_requeues),
         result_json(job)});
    return r->integer == 2 ? Ack::requeued : r->integer == 1 ? Ack::done : Ack::lost;
  } catch (const std::exception& e) {
    fail(e.what());
    return Ack::broken;
  }
}

void RedisQueue::heartbeat() {
  if (!m_error.empty()) return;
  std::vector<std::string> args = {std::to_string(m_options.lease.count()), m_options.machine};
  for (const auto& [job, tok] : m_tokens) {
    args.push_back(m_identity[job]);
    args.push_back(tok);
  }
  try {
    m_redis->eval(k_heartbeat,
                  {key("owner"), key("leased"), fmt::format("pcr:{}:alive:{}", m_url.name, m_options.machine),
                   fmt::format("pcr:{}:machines", m_url.name)},
                  args);
  } catch (const std::exception& e) {
    fail(e.what());
  }
}

Build read_build(const Url& url, std::chrono::milliseconds io_timeout) {
  Connection redis(url, io_timeout);
  Build b;
  const auto list = [&](const std::vector<std::string>& cmd) {
    std::vector<std::string> out;
    const auto r = redis.call(cmd);
    for (std::size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; ++i) out.push_back(text_of(r->element[i]));
    return out;
  };
  const auto hash = [&](const std::string& key) {
    std::map<std::string, std::string> out;
    const auto all = list({"HGETALL", key});
    for (std::size_t i = 0; i + 1 < all.size(); i += 2) out[all[i]] = all[i + 1];
    return out;
  };
  for (const auto& m : list({"SMEMBERS", fmt::format("pcr:{}:machines", url.name)}))
    if (redis.call({"EXISTS", fmt::format("pcr:{}:alive:{}", url.name, m)})->integer == 1) b.machines_alive.push_back(m);
  std::sort(b.machines_alive.begin(), b.machines_alive.end());
  auto steps = list({"SMEMBERS", fmt::format("pcr:{}:steps", url.name)});
  std::sort(steps.begin(), steps.end());
  b.finished = !steps.empty();
  for (const auto& step : steps) {
    const std::string k = fmt::format("pcr:{}:{}:", url.name, step);
    const auto done = hash(k + "done");
    const auto results = hash(k + "results");
    const auto tries = hash(k + "tries");
    const auto total = std::strtoull(text_of(redis.call({"GET", k + "total"}).get()).c_str(), nullptr, 10);
    if (done.size() < total) b.finished = false;
    std::vector<std::string> pending = list({"LRANGE", k + "queue", "0", "-1"});
    for (const auto& leased : list({"ZRANGE", k + "leased", "0", "-1"})) pending.push_back(leased);
    for (const auto& [item, status] : done) {
      ItemResult r;
      r.step = step, r.item = item, r.status = status;
      if (auto t = tries.find(item); t != tries.end()) r.tries = static_cast<unsigned>(std::strtoul(t->second.c_str(), nullptr, 10));
      if (auto it = results.find(item); it != results.end()) {
        const auto j = nlohmann::json::parse(it->second, nullptr, false);
        if (j.is_object()) {
          r.machine = j.value("machine", "");
          r.name = j.value("name", "");
          r.tail = j.value("tail", "");
          r.duration_ms = j.value("duration_ms", std::int64_t{0});
        }
      }
      b.items.push_back(std::move(r));
    }
    for (const auto& item : pending) {
      if (done.count(item)) continue;
      ItemResult r;
      r.step = step, r.item = item, r.status = "not run";
      b.items.push_back(std::move(r));
    }
  }
  return b;
}

}  // namespace pcr::queue
