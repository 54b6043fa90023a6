#include <pcr/sched/timings.hpp>
#include <pcr/util/escape.hpp>
#include <pcr/util/io.hpp>

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <numeric>
#include <queue>

namespace pcr::sched {

namespace fs = std::filesystem;

namespace {

// Fold `samples` into `table`: a new key takes its sample, a known one the mean of the
// two (the smoothing over runs).
void smooth_into(Timings::Table& table, const Timings::Table& samples) {
  for (const auto& [step, entries] : samples) {
    auto& slot = table[step];
    for (const auto& [key, ms] : entries) {
      auto it = slot.find(key);
      if (it == slot.end())
        slot[key] = ms;
      else
        it->second = (it->second + ms) / 2;
    }
  }
}

}  // namespace

namespace {

// One pipeline's steps: {"step": {"key": ms, ...}, ...}.
bool parse_steps(const nlohmann::json& steps, Timings::Table& out) {
  if (!steps.is_object()) return false;
  for (const auto& [step, entries] : steps.items()) {
    if (!entries.is_object()) return false;
    for (const auto& [key, value] : entries.items()) {
      if (!value.is_number_integer() || value.get<std::int64_t>() < 0) return false;
      out[step][key] = value.get<std::int64_t>();
    }
  }
  return true;
}

}  // namespace

bool Timings::parse(const std::string& text, Pipelines& out) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return false;
  Pipelines pipelines;
  if (doc.contains("pipelines")) {
    if (!doc["pipelines"].is_object()) return false;
    for (const auto& [name, steps] : doc["pipelines"].items())
      if (!parse_steps(steps, pipelines[name])) return false;
  } else {
    // Version 1: one table of steps, of no pipeline yet.
    if (!doc.contains("steps") || !parse_steps(doc["steps"], pipelines[""])) return false;
  }
  out = std::move(pipelines);
  return true;
}

namespace {

std::string quoted(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// `map` as a JSON object at `depth` (one space a level, as dump(1)), each value by `value`.
template <typename Map, typename Value>
void object(std::string& out, const Map& map, int depth, Value value) {
  if (map.empty()) {
    out += "{}";
    return;
  }
  const std::string indent(static_cast<std::size_t>(depth) + 1, ' ');
  out += "{";
  const char* separator = "\n";
  for (const auto& [key, v] : map) {
    out += separator + indent + quoted(key) + ": ";
    value(out, v);
    separator = ",\n";
  }
  out += "\n" + std::string(static_cast<std::size_t>(depth), ' ') + "}";
}

}  // namespace

std::string Timings::to_json(const Pipelines& pipelines) {
  // Written here, not built as an nlohmann::ordered_json: that finds each key by a linear
  // search, and a step of 100,000 items took seconds to save (quadratic). The maps are
  // sorted already.
  std::string out = "{\n \"version\": 2,\n \"unit\": \"ms\",\n \"pipelines\": ";
  object(out, pipelines, 1, [](std::string& o, const Table& table) {
    object(o, table, 2, [](std::string& o2, const std::map<std::string, std::int64_t>& entries) {
      object(o2, entries, 3, [](std::string& o3, std::int64_t ms) { o3 += std::to_string(ms); });
    });
  });
  return out + "\n}\n";
}

namespace {

// The file at `path` (missing: empty; damaged: empty, with `warning` set).
Timings::Pipelines read_pipelines(const std::string& path, std::string* warning) {
  Timings::Pipelines pipelines;
  auto text = util::read_file(path);
  if (text && !Timings::parse(*text, pipelines)) {
    pipelines.clear();
    if (warning) *warning = path + ": damaged timings file, ignored (it is rewritten after this run)";
  }
  return pipelines;
}

}  // namespace

Timings Timings::load(const std::string& path, const std::string& pipeline, std::string* warning) {
  Timings t;
  t.m_pipeline = pipeline;
  Pipelines all = read_pipelines(path, warning);
  auto own = all.find(pipeline);
  t.m_found_own = own != all.end();
  if (own == all.end()) own = all.find("");  // an old file's entries, not yet taken over
  if (own != all.end()) t.m_table = std::move(own->second);
  return t;
}

Timings Timings::load_any(const std::string& path, std::string* warning) {
  Timings t;
  for (const auto& [name, table] : read_pipelines(path, warning))
    for (const auto& [step, entries] : table)
      for (const auto& [key, ms] : entries) {
        auto [it, added] = t.m_table[step].emplace(key, ms);
        if (!added) it->second = std::max(it->second, ms);
      }
  return t;
}

std::string Timings::stored(const std::string& key) const {
  std::string out = m_mask.active() ? m_mask.mask(key) : key;
  const auto replace_all = [&out](const std::string& from, const std::string& to) {
    if (from.empty()) return;
    for (std::size_t at = out.find(from); at != std::string::npos; at = out.find(from, at + to.size()))
      out.replace(at, from.size(), to);
  };
  replace_all(m_run_id, "{run}");
  if (m_folder != "/") replace_all(m_folder, ".");
  return util::valid_utf8(out);
}

std::optional<std::int64_t> Timings::get(const std::string& step, const std::string& key) const {
  auto s = m_table.find(stored(step));
  if (s == m_table.end()) return std::nullopt;
  auto k = s->second.find(stored(key));
  if (k == s->second.end()) return std::nullopt;
  return k->second;
}

void Timings::record(const std::string& step, const std::string& key, std::int64_t ms) {
  m_samples[stored(step)][stored(key)] = std::max<std::int64_t>(0, ms);
}

namespace {

// Under an exclusive lock of `path.lock`: read `path` (damaged or missing: empty), let
// `update` change the table, write it to a temporary file, rename it over `path`. No
// fsync: the rename alone keeps every reader's view whole (the old table or the new one),
// and after a power cut a file left empty or torn reads as no timings (with a warning) —
// the queue's order, never a result, depends on them. The fsync was 0.6 ms of a one-job
// run's 5 ms (bench/lifetime.sh).
std::string update_file(const std::string& path, const std::function<void(Timings::Pipelines&)>& update) {
  std::error_code ec;
  fs::path target(path);
  // `--timings /dev/null` means "keep nothing": a rename would replace the device (as root)
  // with a file. Only a regular file, or none, is ever written.
  if (fs::exists(target, ec) && !fs::is_regular_file(target, ec)) return "";
  if (target.has_parent_path()) {
    util::make_private_dirs(target.parent_path().string());
    if (target.parent_path().filename() == ".pcr") fs::permissions(target.parent_path(), fs::perms::owner_all, ec);
  }
  std::string lock_path = path + ".lock";
  int lock = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock < 0) return lock_path + ": " + std::strerror(errno);
  while (::flock(lock, LOCK_EX) != 0 && errno == EINTR) {
  }
  // Under the lock: what is on disk now may include another run's samples.
  Timings::Pipelines table = read_pipelines(path, nullptr);
  const Timings::Pipelines before = table;
  update(table);
  // Smoothed times often land where they were: then the file already says it all, and is
  // not rewritten (a rename over it costs more than the rest of a short run's record).
  const bool unchanged = table == before && fs::is_regular_file(target, ec);
  const std::string error = unchanged ? "" : util::replace_file(path, Timings::to_json(table));
  ::flock(lock, LOCK_UN);
  ::close(lock);
  return error;
}

}  // namespace

std::string Timings::save(const std::string& path) const {
  if (m_samples.empty()) return "";
  if (m_found_own) {
    // This run's times smoothed into its pipeline's table as it was loaded change
    // nothing (a 1 ms job's record stays 1 ms): nothing to lock, read again or write.
    Table mine = m_table;
    smooth_into(mine, m_samples);
    if (mine == m_table) return "";
  }
  return update_file(path, [this](Pipelines& all) {
    auto own = all.find(m_pipeline);
    if (own == all.end()) {
      // The first save of this pipeline takes over an old file's entries.
      auto old = all.find("");
      own = all.emplace(m_pipeline, old == all.end() ? Table{} : std::move(old->second)).first;
      if (old != all.end() && !m_pipeline.empty()) all.erase(old);
    }
    smooth_into(own->second, m_samples);
  });
}

void combine_shards(Timings::Table& base, const std::vector<Timings::Table>& shards) {
  std::map<std::string, std::map<std::string, std::vector<std::int64_t>>> changed, seen;
  for (const auto& shard : shards)
    for (const auto& [step, entries] : shard)
      for (const auto& [key, ms] : entries) {
        auto b = base.find(step);
        bool in_base = b != base.end() && b->second.count(key);
        if (!in_base)
          seen[step][key].push_back(ms);
        else if (b->second.at(key) != ms)
          changed[step][key].push_back(ms);
      }
  auto mean = [](const std::vector<std::int64_t>& v) {
    std::int64_t sum = 0;
    for (auto x : v) sum += x;
    return sum / static_cast<std::int64_t>(v.size());
  };
  for (const auto& [step, entries] : changed)
    for (const auto& [key, values] : entries) base[step][key] = mean(values);
  for (const auto& [step, entries] : seen)
    for (const auto& [key, values] : entries) base[step][key] = mean(values);
}

void combine_shards(Timings::Pipelines& base, const std::vector<Timings::Pipelines>& shards) {
  std::map<std::string, std::vector<Timings::Table>> by_pipeline;
  for (const auto& shard : shards)
    for (const auto& [name, table] : shard) by_pipeline[name].push_back(table);
  for (const auto& [name, tables] : by_pipeline) combine_shards(base[name], tables);
}

std::string merge_shard_files(const std::string& path, const std::vector<Timings::Pipelines>& shards) {
  return update_file(path, [&](Timings::Pipelines& all) { combine_shards(all, shards); });
}

std::vector<std::int64_t> estimate(const Timings& timings, const std::string& step,
                                   const std::vector<std::string>& keys, bool* any_known) {
  std::vector<std::optional<std::int64_t>> known(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!step.empty()) {
      known[i] = timings.get(step, keys[i]);
    } else {
      for (const auto& [s, entries] : timings.table()) {
        auto it = entries.find(timings.stored(keys[i]));
        if (it != entries.end()) known[i] = std::max(known[i].value_or(0), it->second);
      }
    }
  }
  std::vector<std::int64_t> values;
  for (const auto& k : known)
    if (k) values.push_back(*k);
  std::int64_t fill = 1;
  if (!values.empty()) {
    std::sort(values.begin(), values.end());
    size_t n = values.size();
    fill = n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
  }
  if (any_known) *any_known = !values.empty();
  std::vector<std::int64_t> costs(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) costs[i] = values.empty() ? 1 : known[i].value_or(fill);
  return costs;
}

std::vector<std::size_t> longest_first(const std::vector<std::int64_t>& costs,
                                       const std::vector<std::string>& names) {
  std::vector<std::size_t> order(costs.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (costs[a] != costs[b]) return costs[a] > costs[b];
    return names[a] < names[b];
  });
  return order;
}

std::vector<std::vector<std::size_t>> balance(const std::vector<std::int64_t>& costs,
                                              const std::vector<std::string>& names, std::size_t groups) {
  // More groups than items: the groups past the items' count stay empty whatever the
  // costs, so they cost nothing here (a shard count from a CI variable may be huge).
  std::vector<std::vector<std::size_t>> out(std::min(std::max<std::size_t>(groups, 1), std::max<std::size_t>(costs.size(), 1)));
  // The lightest group, the first of equals: a heap of (load, group), O(n log groups).
  using Slot = std::pair<std::int64_t, std::size_t>;
  std::priority_queue<Slot, std::vector<Slot>, std::greater<>> lightest;
  for (std::size_t g = 0; g < out.size(); ++g) lightest.emplace(0, g);
  for (std::size_t i : longest_first(costs, names)) {
    auto [load, g] = lightest.top();
    lightest.pop();
    out[g].push_back(i);
    lightest.emplace(load + std::max<std::int64_t>(costs[i], 1), g);
  }
  for (auto& g : out) std::sort(g.begin(), g.end());
  return out;
}

std::vector<std::string> shard_items(const std::vector<std::string>& items, const Timings& timings,
                                     const std::string& step, std::size_t index, std::size_t total) {
  auto costs = estimate(timings, step, items);
  auto groups = balance(costs, items, total);
  std::vector<std::string> out;
  if (index < groups.size())
    for (std::size_t i : groups[index]) out.push_back(items[i]);
  return out;
}

}  // namespace pcr::sched
