#pragma once

// Whether `pcr check` showed what `pcr run` did: the plan (`pcr check --json`) against the
// run's JSON events, step by step: worker counts, and each job's command, worker and host.

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace pcr::test {

// "" when the run did what the plan said; else the first difference, in words.
// `partial`: the run may have stopped early (a failed step skips the rest, fail_fast
// cancels jobs): compare the steps and jobs that started, and each step's job count with
// the count its step_start announced.
inline std::string plan_differs(const std::string& plan_text, const std::string& events_text,
                                bool partial = false) {
  using nlohmann::json;
  const json plan = json::parse(plan_text);
  std::string run_id;
  std::vector<json> starts;                               // step_start events, in order
  std::map<std::string, std::map<unsigned, json>> jobs;  // step → job → first attempt
  std::istringstream in(events_text);
  for (std::string line; std::getline(in, line);) {
    // A run that could not write all its events (exit 3: a full disk) may end mid-line.
    const json e = json::parse(line, nullptr, !partial);
    if (e.is_discarded()) continue;
    const std::string event = e.value("event", "");
    if (event == "run_start") run_id = e.value("run_id", "");
    if (event == "step_start") starts.push_back(e);
    if (event == "job_start" && e.value("kind", "") == "job" && e.value("attempt", 0) == 0)
      jobs[e.value("step", "")][e.value("job", 0u)] = e;
  }
  auto replace_all = [](std::string s, const std::string& from, const std::string& to) {
    for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
      s.replace(at, from.size(), to);
    return s;
  };
  std::size_t at = 0;
  for (const auto& step : plan.at("steps")) {
    const std::string name = step.value("name", "");
    std::size_t found = at;
    while (found < starts.size() && starts[found].value("step", "") != name) ++found;
    if (found == starts.size()) {
      if (partial) continue;
      return "step '" + name + "' of the plan never started";
    }
    at = found;
    const json& started = starts[at++];
    const unsigned planned = step.value("workers", 0u), ran = started.value("workers", 0u);
    const bool bound = step.value("workers_bound", false);
    if (bound ? ran > planned : ran != planned)
      return "step '" + name + "': the plan said " + std::to_string(planned) + " workers" +
             (bound ? " at most" : "") + ", the run used " + std::to_string(ran);
    if (bound) continue;  // items only the run knows: nothing more to compare
    const auto& ran_jobs = jobs[name];
    const std::size_t ran_count = partial ? started.value("jobs", std::size_t{0}) : ran_jobs.size();
    if (ran_count != step.at("jobs").size())
      return "step '" + name + "': the plan had " + std::to_string(step.at("jobs").size()) +
             " jobs, the run started " + std::to_string(ran_jobs.size());
    for (const auto& job : step.at("jobs")) {
      const unsigned number = job.value("job", 0u);
      auto it = ran_jobs.find(number);
      if (it == ran_jobs.end()) {
        if (partial) continue;
        return "step '" + name + "': job " + std::to_string(number) + " never started";
      }
      const json& e = it->second;
      const unsigned worker = e.value("worker", 0u);
      if (job.value("worker", 0u) != 0 && job.value("worker", 0u) != worker)
        return "step '" + name + "' job " + std::to_string(number) + ": planned on worker " +
               std::to_string(job.value("worker", 0u)) + ", ran on " + std::to_string(worker);
      std::string expected = replace_all(job.value("command", ""), "{run_id}", run_id);
      expected = replace_all(expected, "{n}", std::to_string(worker));
      // A plan quotes a word holding `{run_id}` that the run, with a plain id, need not:
      // compare the words, not their quoting.
      auto unquoted = [&](std::string s) {
        s = replace_all(s, "'\\''", "'");
        s.erase(std::remove(s.begin(), s.end(), '\''), s.end());
        return s;
      };
      if (unquoted(expected) != unquoted(e.value("command", "")))
        return "step '" + name + "' job " + std::to_string(number) + ":\n  planned: " + expected +
               "\n  ran:     " + e.value("command", "");
      const std::string host = e["host"].is_string() ? e["host"].get<std::string>() : "";
      if (job.value("worker", 0u) != 0 && !job.value("host", "").empty() && job.value("host", "") != host)
        return "step '" + name + "' job " + std::to_string(number) + ": planned on host " +
               job.value("host", "") + ", ran on " + host;
    }
  }
  return "";
}

}  // namespace pcr::test
