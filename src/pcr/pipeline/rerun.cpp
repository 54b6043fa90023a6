#include <pcr/pipeline/rerun.hpp>
#include <pcr/util/io.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fnmatch.h>

#include <filesystem>

namespace pcr::pipeline {

namespace fs = std::filesystem;

// A record larger than this is not one pcr wrote for any pipeline it accepts.
constexpr std::size_t k_max_record = 64u << 20;

std::string last_run_path(const std::string& pipeline_dir, const std::string& key, std::size_t shard_index,
                          std::size_t shard_total) {
  // The key is a file name (masked); keep it one path segment.
  std::string name;
  for (char c : key) name += c == '/' ? '_' : c;
  if (shard_total > 0) name += fmt::format(".shard-{}-of-{}", shard_index + 1, shard_total);
  return (fs::path(pipeline_dir) / ".pcr" / "last-run" / (name + ".json")).string();
}

std::string save_last_run(const std::string& path, const LastRun& run) {
  nlohmann::ordered_json j;
  j["version"] = 1;
  j["passed"] = run.passed;
  j["steps"] = nlohmann::ordered_json::object();
  for (const auto& [name, s] : run.steps) {
    nlohmann::ordered_json step;
    step["passed"] = s.passed;
    step["for_each"] = s.for_each;
    step["not_passed"] = s.not_passed;
    j["steps"][name] = std::move(step);
  }
  const std::string text = j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  // The same outcome as last time (the usual case of a passing pipeline run again): the
  // record stands; a new file and a rename cost more than the whole of a small run's
  // bookkeeping otherwise.
  if (const auto old = util::read_file(path, text.size() + 1); old && *old == text) return "";
  const std::string dir = fs::path(path).parent_path().string();
  if (!util::make_private_dirs(dir)) return fmt::format("{}: {}", dir, std::strerror(errno));
  return util::replace_file(path, text);
}

util::Expected<LastRun> load_last_run(const std::string& path) {
  using Result = util::Expected<LastRun>;
  auto text = util::read_file(path, k_max_record + 1);
  if (!text) return Result::failure(fmt::format("{}: {}", path, std::strerror(errno)));
  if (text->size() > k_max_record) return Result::failure(path + ": too large");
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Result::failure(path + ": not a record pcr wrote");
  try {
    LastRun run;
    run.passed = j.at("passed").get<bool>();
    for (const auto& [name, s] : j.at("steps").items()) {
      StepRecord r;
      r.passed = s.at("passed").get<bool>();
      r.for_each = s.value("for_each", false);
      for (const auto& item : s.at("not_passed")) r.not_passed.insert(item.get<std::string>());
      run.steps.emplace(name, std::move(r));
    }
    return run;
  } catch (const std::exception&) {
    return Result::failure(path + ": not a record pcr wrote");
  }
}

std::vector<std::string> rerun_items(const LastRun& last, const std::string& step, const std::vector<std::string>& items) {
  auto it = last.steps.find(step);
  if (it == last.steps.end()) return items;  // never ran: all of it is still to run
  std::vector<std::string> out;
  for (const auto& item : items)
    if (it->second.not_passed.count(item)) out.push_back(item);
  return out;
}

std::vector<std::string> only_items(const std::vector<std::string>& patterns, const std::vector<std::string>& items) {
  std::vector<std::string> out;
  for (const auto& item : items)
    for (const auto& p : patterns)
      if (::fnmatch(p.c_str(), item.c_str(), 0) == 0) {
        out.push_back(item);
        break;
      }
  return out;
}

}  // namespace pcr::pipeline
