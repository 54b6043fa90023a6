#include <pcr/report/format.hpp>
#include <pcr/report/json_events.hpp>
#include <pcr/report/record.hpp>
#include <pcr/util/escape.hpp>

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pcr::report {

using nlohmann::ordered_json;

std::string event_time() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms % 1000));
  return out;
}

namespace {

ordered_json base(const char* event) {
  ordered_json j;
  j["event"] = event;
  j["time"] = event_time();
  return j;
}

}  // namespace

// The fields every job event has.
static ordered_json job_event(const char* event, const pipeline::JobInfo& job, const util::Masker& mask) {
  auto j = base(event);
  j["step"] = util::valid_utf8(mask.mask(job.step ? job.step->name : ""));
  j["kind"] = kind_name(job.kind);
  j["job"] = job.job;
  j["worker"] = job.worker;
  j["attempt"] = job.attempt;
  j["host"] = job.host.empty() ? ordered_json() : ordered_json(job.host);
  return j;
}

// What a job is, on its job_start and job_end alike (a tool joins them, a plan and a
// rerun by `name`): its name, items, compose project and command.
static void job_identity(ordered_json& j, const pipeline::JobInfo& job, const util::Masker& mask) {
  auto text = [&](const std::string& s) { return util::valid_utf8(mask.mask(s)); };
  j["name"] = text(job_name(job));
  ordered_json items = ordered_json::array();
  for (const auto& i : job.items) items.push_back(text(i));
  j["items"] = items;
  j["project"] = job.project.empty() ? ordered_json() : ordered_json(text(job.project));
  j["command"] = text(job.command);
}

JsonEvents::JsonEvents(std::vector<std::string> secrets, std::unique_ptr<Sink> sink)
    : m_mask(std::move(secrets)), m_sink(std::move(sink)) {}

util::Expected<std::unique_ptr<JsonEvents>> JsonEvents::open(const std::string& path,
                                                             std::vector<std::string> secrets) {
  auto sink = Sink::open(path, secrets);
  if (!sink->error().empty()) return util::Expected<std::unique_ptr<JsonEvents>>::failure(sink->error());
  return std::unique_ptr<JsonEvents>(new JsonEvents(std::move(secrets), std::move(sink)));
}

JsonEvents::~JsonEvents() = default;

void JsonEvents::emit(const std::string& line) {
  m_sink->write(line + "\n");  // a regular file: written at once, useful while the run goes on
  m_sink->release();
}

void JsonEvents::run_started(const pipeline::RunInfo& r) {
  auto j = base("run_start");
  j["run_id"] = r.run_id;
  j["name"] = util::valid_utf8(m_mask.mask(r.name));
  j["steps"] = r.steps;
  j["cleanup_steps"] = r.cleanup;
  j["pid"] = ::getpid();
  if (!r.hosts.empty()) {
    ordered_json hosts = ordered_json::array();
    for (const auto& h : r.hosts)
      hosts.push_back({{"name", h.name}, {"address", util::valid_utf8(m_mask.mask(h.address))}, {"workers", h.workers}});
    j["hosts"] = hosts;
  }
  emit(j.dump());
}

void JsonEvents::step_started(const pipeline::StepInfo& s) {
  auto j = base("step_start");
  j["step"] = util::valid_utf8(m_mask.mask(s.name));
  j["index"] = s.index;
  j["of"] = s.of;
  j["cleanup"] = s.cleanup;
  j["jobs"] = s.jobs;
  j["workers"] = s.workers;
  if (!s.worker_hosts.empty()) j["worker_hosts"] = s.worker_hosts;
  emit(j.dump());
}

void JsonEvents::job_started(const pipeline::JobInfo& job) {
  auto j = job_event("job_start", job, m_mask);
  job_identity(j, job, m_mask);
  emit(j.dump());
}

void JsonEvents::job_finished(const pipeline::JobInfo& job, const pipeline::JobResult& r) {
  auto text = [this](const std::string& s) { return util::valid_utf8(m_mask.mask(s)); };
  if (r.tests) {
    // One `test` event per test the job reported, before its job_end.
    static const char* const k_outcomes[] = {"passed", "failed", "skipped", "todo"};
    for (const auto& t : r.tests->tests) {
      auto e = job_event("test", job, m_mask);
      e["name"] = text(t.name);
      e["suite"] = text(t.suite);
      e["outcome"] = k_outcomes[static_cast<int>(t.outcome)];
      e["reason"] = text(t.reason);
      e["details"] = text(t.details);
      e["time_ms"] = t.time ? ordered_json(t.time->count()) : ordered_json();
      emit(e.dump());
    }
  }
  auto j = job_event("job_end", job, m_mask);
  job_identity(j, job, m_mask);
  j["status"] = status_name(r.status);
  j["exit_code"] = r.signal == 0 && r.status != pipeline::JobStatus::not_started ? ordered_json(r.exit_code) : ordered_json();
  j["signal"] = r.signal != 0 ? ordered_json(signal_name(r.signal)) : ordered_json();
  j["duration_ms"] = r.duration.count();
  j["timeout_ms"] = r.limit.count() > 0 ? ordered_json(r.limit.count()) : ordered_json();
  j["retrying"] = r.will_retry;
  j["flaky"] = r.flaky;
  j["infrastructure"] = r.infrastructure;
  j["leftovers_killed"] = r.leftovers;
  j["output_bytes"] = r.bytes;
  j["detail"] = util::valid_utf8(m_mask.mask(r.detail));
  j["skipped"] = r.skipped;
  if (r.tests)
    j["tests"] = {{"passed", r.tests->passed()},     {"failed", r.tests->failed()},
                  {"skipped", r.tests->skipped()},   {"todo", r.tests->todo()},
                  {"problem", text(r.tests->problem)}, {"unreadable", text(r.tests->unreadable)}};
  else
    j["tests"] = ordered_json();
  emit(j.dump());
}

void JsonEvents::step_finished(const pipeline::StepInfo& s, const pipeline::StepResult& r) {
  auto j = base("step_end");
  j["step"] = util::valid_utf8(m_mask.mask(s.name));
  j["index"] = s.index;
  j["cleanup"] = s.cleanup;
  j["outcome"] = outcome_name(r.outcome);
  j["duration_ms"] = r.duration.count();
  j["passed"] = r.passed;
  j["failed"] = r.failed;
  j["cancelled"] = r.cancelled;
  j["flaky"] = r.flaky;
  j["rerun"] = r.rerun;
  j["error"] = util::valid_utf8(m_mask.mask(r.error));
  emit(j.dump());
}

void JsonEvents::host_down(const pipeline::HostEvent& e) {
  auto j = base("host_down");
  j["host"] = e.name;
  j["address"] = util::valid_utf8(m_mask.mask(e.address));
  j["workers"] = e.workers;
  j["at_start"] = e.at_start;
  j["step"] = e.step.empty() ? ordered_json() : ordered_json(util::valid_utf8(m_mask.mask(e.step)));
  j["reason"] = util::valid_utf8(m_mask.mask(e.reason));
  j["hosts_left"] = e.hosts_left;
  emit(j.dump());
}

void JsonEvents::note(const pipeline::Note& n) {
  using pipeline::NoteKind;
  auto j = base("note");
  j["kind"] = note_kind(n.kind);
  auto text = [&](const std::string& s) { return util::valid_utf8(m_mask.mask(s)); };
  switch (n.kind) {
    case NoteKind::spool_unavailable:
    case NoteKind::timings_unreadable:
    case NoteKind::timings_not_saved:
    case NoteKind::record_not_saved:
      j["detail"] = text(n.detail);
      break;
    case NoteKind::capture_not_exported:
      j["step"] = text(n.step), j["detail"] = text(n.detail);
      break;
    case NoteKind::shard:
      j["index"] = n.index, j["total"] = n.total;
      break;
    case NoteKind::shared_queue:
      j["step"] = text(n.step), j["count"] = n.count, j["total"] = n.total, j["detail"] = text(n.detail);
      break;
    case NoteKind::pipeline_timeout:
      j["limit_ms"] = n.limit.count();
      break;
    case NoteKind::interrupted:
    case NoteKind::interrupted_in_cleanup:
      j["signal"] = n.signal, j["again"] = n.again;
      break;
    case NoteKind::hosts_answering: {
      ordered_json hosts = ordered_json::array();
      for (const auto& h : n.hosts) hosts.push_back(text(h));
      j["hosts"] = hosts;
      break;
    }
    case NoteKind::worker_moved:
      j["worker"] = n.worker, j["from"] = text(n.from), j["to"] = text(n.to);
      break;
    case NoteKind::orphans_killed:
    case NoteKind::suspended:
      j["count"] = n.count;
      break;
    case NoteKind::resumed:
      j["stopped_ms"] = n.limit.count();
      break;
    case NoteKind::items_filtered:
      j["step"] = text(n.step), j["count"] = n.count, j["total"] = n.total, j["by"] = n.detail;
      break;
    case NoteKind::after_job_failed:
      j["step"] = text(n.step), j["job"] = n.job, j["timed_out"] = n.timed_out, j["detail"] = text(n.detail);
      break;
    case NoteKind::supervisor_gone:
    case NoteKind::no_host_answers:
    case NoteKind::host_required:
      break;
  }
  j["message"] = text(note_text(n));  // the console's words, for people reading the log
  emit(j.dump());
}

// A running job's state, for `status` and `job_slow`.
static ordered_json progress_json(const pipeline::JobProgress& p, const util::Masker& mask) {
  auto j = job_event("", *p.job, mask);
  j.erase("event");
  j.erase("time");
  job_identity(j, *p.job, mask);
  j["age_ms"] = p.age.count();
  j["left_ms"] = p.left ? ordered_json(p.left->count()) : ordered_json();
  j["tail"] = util::valid_utf8(mask.mask(p.tail));
  return j;
}

void JsonEvents::status(const std::vector<pipeline::JobProgress>& jobs) {
  auto j = base("status");
  ordered_json list = ordered_json::array();
  for (const auto& p : jobs) list.push_back(progress_json(p, m_mask));
  j["jobs"] = list;
  emit(j.dump());
}

void JsonEvents::job_slow(const pipeline::JobProgress& p) {
  auto j = base("job_slow");
  j.update(progress_json(p, m_mask));
  emit(j.dump());
}

void JsonEvents::run_finished(const pipeline::RunResult& r) {
  auto j = base("run_end");
  j["exit_code"] = r.exit_code;
  j["duration_ms"] = r.duration.count();
  j["signal"] = r.signal != 0 && !r.supervisor_gone ? ordered_json(signal_name(r.signal)) : ordered_json();
  j["supervisor_gone"] = r.supervisor_gone;
  j["timed_out"] = r.timed_out;
  j["orphans_killed"] = r.orphans_killed;
  emit(j.dump());
}

std::string plan_json(const pipeline::Pipeline& p, const std::vector<pipeline::PlannedStep>& plan,
                      const util::Masker& mask) {
  auto text = [&](const std::string& s) { return util::valid_utf8(mask.mask(s)); };
  nlohmann::ordered_json out;
  out["pipeline"] = text(p.name);
  out["steps"] = nlohmann::json::array();
  for (const auto& s : plan) {
    nlohmann::ordered_json step;
    step["name"] = text(s.name);
    step["cleanup"] = s.cleanup;
    step["workers"] = s.workers;
    // true: the items are only known at run time; `workers` is then the most it uses.
    step["workers_bound"] = s.workers_bound;
    step["worker_hosts"] = s.worker_hosts;
    step["note"] = text(s.note);
    step["jobs"] = nlohmann::json::array();
    for (const auto& j : s.jobs) {
      nlohmann::ordered_json job;
      job["job"] = j.job;
      job["worker"] = j.worker;  // 0: the first free worker of the pool takes it
      job["host"] = j.host;
      job["name"] = text(j.name);
      job["command"] = text(j.command);
      nlohmann::json items = nlohmann::json::array();
      for (const auto& i : j.items) items.push_back(text(i));
      job["items"] = std::move(items);
      step["jobs"].push_back(std::move(job));
    }
    out["steps"].push_back(std::move(step));
  }
  return out.dump(1) + "\n";
}

}  // namespace pcr::report
