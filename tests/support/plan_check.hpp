#pragma once

// Whether `pcr check` showed what `pcr run` did: the plan (`pcr check --json`) against the
// run's JSON events, step by step: worker counts, and each job's command, worker and host.

#include "pcr_binary.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <sstream>
#include <string>

namespace pcr::test {

// "" when the run did what the plan said; else the first difference, in words.
inline std::string plan_differs(const std::string& plan_text, const std::string& events_text) {
  using nlohmann::json;
  const json plan = json::parse(plan_text);
  std::string run_id;
  std::vector<json> starts;                               // step_start events, in order
  std::map<std::string, std::map<unsigned, json>> jobs;  // step → job → first attempt
  std::istringstream in(events_text);
  for (std::string line; std::getline(in, line);) {
    const json e = json::parse(line);
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
    while (at < starts.size() && starts[at].value("step", "") != name) ++at;
    if (at == starts.size()) return "step '" + name + "' of the plan never started";
    const json& started = starts[at++];
    const unsigned planned = step.value("workers", 0u), ran = started.value("workers", 0u);
    const bool bound = step.value("workers_bound", false);
    if (bound ? ran > planned : ran != planned)
      return "step '" + name + "': the plan said " + std::to_string(planned) + " workers" +
             (bound ? " at most" : "") + ", the run used " + std::to_string(ran);
    if (bound) continue;  // items only the run knows: nothing more to compare
    const auto& ran_jobs = jobs[name];
    if (ran_jobs.size() != step.at("jobs").size())
      return "step '" + name + "': the plan had " + std::to_string(step.at("jobs").size()) +
             " jobs, the run started " + std::to_string(ran_jobs.size());
    for (const auto& job : step.at("jobs")) {
      const unsigned number = job.value("job", 0u);
      auto it = ran_jobs.find(number);
      if (it == ran_jobs.end()) return "step '" + name + "': job " + std::to_string(number) + " never started";
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

// Runs `pcr check --json FILE` and `pcr run --json … FILE` in `dir` and compares them.
// `run_exit` is the exit code the run must have.
inline std::string check_matches_run(const std::string& dir, const std::string& file,
                                     int run_exit = 0, const PcrOptions& options = {}) {
  PcrOptions o = options;
  o.cwd = dir;
  const auto check = run_pcr({"check", "--json", file}, o);
  if (check.exit_code != 0) return "pcr check exited " + std::to_string(check.exit_code) + ": " + check.err;
  TempDir out;
  const std::string events = out.file("events.jsonl");
  const auto run = run_pcr({"run", "--no-color", "--json", events, file}, o);
  if (run.exit_code != run_exit)
    return "pcr run exited " + std::to_string(run.exit_code) + ":\n" + run.out + run.err;
  return plan_differs(check.out, read_file(events));
}

}  // namespace pcr::test
