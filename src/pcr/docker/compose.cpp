#include <pcr/docker/compose.hpp>
#include <pcr/docker/hosts.hpp>
#include <pcr/docker/lint.hpp>
#include <pcr/docker/scripts.hpp>
#include <pcr/pipeline/template.hpp>
#include <pcr/proc/capture.hpp>
#include <pcr/proc/runs.hpp>
#include <pcr/proc/supervise.hpp>
#include <pcr/util/expected.hpp>
#include <pcr/util/io.hpp>
#include <pcr/util/shell.hpp>
#include <pcr/util/text.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <stdexcept>

namespace pcr::docker {

namespace fs = std::filesystem;
using pipeline::JobContext;

namespace {

std::string planned_project(const std::string& base, unsigned n);


// Write `text` to `path` with `perms` through a temporary file renamed over it, so that a
// reader never sees half of it. Returns `path`, or why it could not be written.
util::Expected<std::string> replace_file(const std::string& path, const std::string& text,
                                         fs::perms perms) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  const std::string error = util::replace_file(path, text, static_cast<unsigned>(perms));
  if (!error.empty()) return util::Expected<std::string>::failure("cannot write " + error);
  return path;
}

// Write `text` as the executable `name` in `dir` (atomically); its path, or why not.
util::Expected<std::string> write_script(const std::string& dir, const std::string& name,
                                         const char* text) {
  return replace_file((fs::path(dir) / name).string(), text, fs::perms::owner_all);
}

// A script pcr needs, or an exception naming why it could not be written: thrown inside a
// command's or an extension's code, it fails the job that needed it ("could not be built").
//
// One already there as it should be is left alone: teardown on a disk that filled up
// during the run needs no write (down.sh is written with the first project's record).
std::string script_or_throw(const std::string& dir, const std::string& name, const char* text) {
  const fs::path at = fs::path(dir) / name;
  std::error_code ec;
  if (fs::is_regular_file(at, ec) && util::read_file(at.string(), std::strlen(text) + 1) == std::string(text) &&
      ::access(at.c_str(), X_OK) == 0)
    return fs::absolute(at).string();
  auto path = write_script(dir, name, text);
  if (!path) throw pipeline::OwnFailure(path.error());
  return fs::absolute(*path).string();
}

// The command that takes `record`'s project down on its host; the script goes in
// `pcr_dir` (.pcr). `write`: false in a plan, which shows the command and writes nothing.
std::string teardown_command(const ProjectRecord& r, const std::string& record_path,
                             const std::string& pcr_dir, bool write = true, long stop_seconds = 10) {
  const std::string script = write ? script_or_throw(pcr_dir, "down.sh", k_down_script)
                                   : fs::absolute(fs::path(pcr_dir) / "down.sh").string();
  const std::string exec_log = (fs::absolute(fs::path(pcr_dir)) / "exec" / (r.project + ".log")).string();
  std::string cmd =
      util::shell_join({script, util::shell_join(compose_argv(r.version, r.files, r.project)), record_path, exec_log,
                        r.project, std::to_string(stop_seconds)});
  if (!r.docker_host.empty()) cmd = "DOCKER_HOST=" + util::shell_quote(r.docker_host) + " " + cmd;
  return cmd;
}

// The most of each service's log kept (its end): a chatty database cannot fill the disk.
constexpr std::size_t k_service_log_bytes = 1u << 20;

// Whole seconds for compose's `-t`, rounded up: 0 would not wait for a clean exit at all.
long stop_seconds(std::chrono::milliseconds t) { return static_cast<long>((t.count() + 999) / 1000); }


// What the run's `docker events` watcher said of one container of a project: a line
// of k_events_format, parsed.
struct ServiceEvent {
  std::int64_t ns = 0;  // when, on the wall clock (UNIX nanoseconds)
  std::string service, action, exit_code, signal;
};

// One line per event, '|' between fields (no project or service name holds one):
// time, project, service, exit code (die), signal (kill), action ("health_status: x").
constexpr const char* k_events_format =
    "{{.TimeNano}}|{{index .Actor.Attributes \"com.docker.compose.project\"}}|"
    "{{index .Actor.Attributes \"com.docker.compose.service\"}}|{{index .Actor.Attributes \"exitCode\"}}|"
    "{{index .Actor.Attributes \"signal\"}}|{{.Action}}";

// Events kept per project: a service in a crash loop does not grow the run's memory.
constexpr std::size_t k_events_per_project = 64;

// `line` as an event with its project, or nullopt for a line that is not one.
std::optional<std::pair<std::string, ServiceEvent>> parse_event(std::string_view line) {
  std::vector<std::string> f;
  for (std::size_t from = 0;;) {
    const auto bar = line.find('|', from);
    f.emplace_back(line.substr(from, bar == std::string_view::npos ? std::string_view::npos : bar - from));
    if (bar == std::string_view::npos || f.size() == 6) break;
    from = bar + 1;
  }
  if (f.size() != 6 || f[1].empty() || f[2].empty()) return std::nullopt;
  ServiceEvent e;
  try {
    e.ns = std::stoll(f[0]);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  e.service = f[2], e.exit_code = f[3], e.signal = f[4], e.action = f[5];
  return std::make_pair(f[1], e);
}

// `ns` after `started`, in seconds with one decimal: "12.3 s into the job".
std::string into_job(std::int64_t ns, std::chrono::system_clock::time_point started) {
  const auto start_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(started.time_since_epoch()).count();
  const double s = static_cast<double>(ns - start_ns) / 1e9;
  return s >= 0 ? fmt::format("{:.1f} s into the job", s) : fmt::format("{:.1f} s before the job started", -s);
}

// What `events` (one project's, in order) say of its services since `started`: those that
// died (exit code not 0, a kill, OOM) or turned unhealthy, first death first; by service.
std::map<std::string, std::string> troubles_from_events(const std::vector<ServiceEvent>& events,
                                                        std::chrono::system_clock::time_point started) {
  const auto start_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(started.time_since_epoch()).count();
  std::map<std::string, std::string> out;
  std::map<std::string, std::string> killed;  // service → signal of a `docker kill` before its death
  std::set<std::string> oom;                  // OOM-killed, its death not seen yet
  std::map<std::string, unsigned> died;       // deaths named, by service
  for (const auto& e : events) {
    if (e.ns < start_ns) continue;
    if (e.action == "kill") {
      killed[e.service] = e.signal;
    } else if (e.action == "oom") {
      oom.insert(e.service);
    } else if (e.action == "die") {
      const bool by_oom = oom.count(e.service) > 0;
      const auto k = killed.find(e.service);
      const bool failed = e.exit_code != "0" || by_oom;
      if (failed && died[e.service]++ == 0) {
        std::string what = fmt::format("exited with code {}", e.exit_code.empty() ? "?" : e.exit_code);
        if (by_oom) what += ", OOM-killed";
        if (k != killed.end()) what += fmt::format(" (docker kill, signal {})", k->second);
        out[e.service] = what + ", " + into_job(e.ns, started);
      }
      killed.erase(e.service);
      oom.erase(e.service);
    } else if (e.action.rfind("health_status", 0) == 0 && e.action.find("unhealthy") != std::string::npos &&
               !out.count(e.service)) {
      out[e.service] = "turned unhealthy " + into_job(e.ns, started);
    }
  }
  for (const auto& [service, n] : died)
    if (n > 1) out[service] += fmt::format(" (and {} time{} more)", n - 1, n == 2 ? "" : "s");
  return out;
}

// The services that died or turned unhealthy — from the run's events (`from_events`, by
// service), else from `dir`'s state.txt (logs.sh: exited non-zero, dead, OOM-killed,
// unhealthy) — each with its last log lines: what to read first.
std::string troubled_services(const std::string& dir, std::map<std::string, std::string> from_events) {
  auto state = util::read_file(dir + "/state.txt", 1u << 20);
  std::map<std::string, std::string> troubles = std::move(from_events);
  for (const auto& line : util::split_lines(state.value_or(""))) {
    if (line.empty() || line[0] == ' ') continue;
    std::istringstream in(line);
    std::string service, status, exit, oom, health, finished;
    in >> service >> status >> exit >> oom >> health >> finished;
    if (troubles.count(service)) continue;  // the events said it, with when
    const std::string code = exit.rfind("exit=", 0) == 0 ? exit.substr(5) : "";
    const bool oom_killed = oom == "oom=true";
    const bool unhealthy = health == "health=unhealthy";
    const bool died = (status == "exited" && code != "0") || status == "dead";
    if (!died && !oom_killed && !unhealthy) continue;
    std::string what = died ? fmt::format("exited with code {}", code) : "is " + status;
    if (oom_killed) what += ", OOM-killed";
    if (unhealthy) what += ", unhealthy";
    // When it died (UTC, to the second): beside the job's own times, was it first?
    if (died && finished.rfind("finished=", 0) == 0 && finished.size() >= 28)
      what += " at " + finished.substr(20, 8) + " UTC";
    troubles[service] = what;
  }
  std::string out;
  for (const auto& [service, what] : troubles) {
    out += service + " " + what + "\n";
    for (const auto& l : util::split_lines(util::tail_lines(fmt::format("{}/{}.log", dir, service), 5)))
      out += "  │ " + l + "\n";
  }
  return out;
}


// The last `n` lines of `text`, joined by "; ".
std::string last_lines(const std::string& text, std::size_t n) {
  const auto lines = util::split_lines(text);
  std::string out;
  for (std::size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i)
    out += (out.empty() ? "" : "; ") + lines[i];
  return out;
}

// FNV-1a, 64 bits: a stable hash (the same in every process and build).
std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  return h;
}



// A project's name among the run's records: `project`, or `project@host` with hosts.
std::string record_key(const std::string& project, const std::string& host) {
  return host.empty() ? project : project + "@" + host;
}

// Bookkeeping shared by the extension and the teardown step of one pipeline.
struct State {
  ComposeConfig config;
  std::map<std::string, ProjectRecord> handed_out;  // by record name (project[@host]), in name order
  std::set<std::string> down_hosts;                 // hosts that stopped answering
  // What the run's `docker events` said of each handed-out project's containers, in order.
  std::map<std::string, std::vector<ServiceEvent>> events;

  // Worker `ctx.number`'s project: with the run id, or, kept, with the checkout's tag.
  std::string project_of(const JobContext& ctx) const {
    return project_name(config.project, config.keep ? keep_tag() : ctx.run_id, ctx.number);
  }

  // "kept" and a short hash of the compose files' absolute paths: stable from run to run,
  // apart from another checkout's.
  std::string keep_tag() const {
    std::string paths;
    for (const auto& f : config.files) paths += f + "\n";
    return fmt::format("kept{:04x}", static_cast<unsigned>(fnv1a(paths) & 0xffff));
  }

  // What a kept project was brought up with: its compose files' paths and contents and
  // the compose env. Changed, the project is taken down and brought up afresh.
  std::string config_hash() const {
    std::string all;
    for (const auto& f : config.files)
      all += f + "\n" + util::read_file(f, 8u << 20).value_or("") + "\n";
    for (const auto& [k, v] : config.env) all += k + "=" + v + "\n";
    return fmt::format("{:016x}", fnv1a(all));
  }

  // Resolved by the front end before the run (ComposeConfig::version): never asked mid-run.
  ComposeVersion compose_version() const { return config.version; }

  // The pipeline's .pcr folder: the records' parent, where pcr's scripts live.
  fs::path pcr_dir() const { return fs::path(config.state_dir).parent_path(); }

  // Where the exec wrapper lives: .pcr/exec.sh beside the projects' records.
  std::string exec_script_path() const { return (fs::absolute(pcr_dir()) / "exec.sh").string(); }

  // The wait script, written on first use.
  std::string wait_script() {
    if (wait_path.empty()) wait_path = script_or_throw(pcr_dir().string(), "wait.sh", k_wait_script);
    return wait_path;
  }
  std::string wait_path;
  std::string wait_script_path() const { return (fs::absolute(pcr_dir()) / "wait.sh").string(); }

  // The logs script, written on first use.
  std::string logs_script() {
    if (logs_path.empty()) logs_path = script_or_throw(pcr_dir().string(), "logs.sh", k_logs_script);
    return logs_path;
  }
  std::string logs_path;

  // The exec wrapper and its stop script, written on first use.
  std::string exec_script() {
    if (exec_path.empty()) {
      exec_path = exec_wrapper(pcr_dir().string());
      stop_path = script_or_throw(pcr_dir().string(), "exec-stop.sh", k_exec_stop_script);
    }
    return exec_path;
  }
  std::string exec_path, stop_path;

  // Where the wrapper logs the commands worker `project`'s jobs started in containers.
  std::string exec_log(const std::string& project) const {
    return (fs::absolute(pcr_dir()) / "exec" / (project + ".log")).string();
  }

  // What addresses `project` on the host of `ctx`'s worker.
  ProjectRecord record_for(const std::string& project, const JobContext& ctx) const {
    ProjectRecord r;
    r.project = project;
    r.host = ctx.host;
    r.files = config.files;
    r.version = compose_version();
    const char* env_host = std::getenv("DOCKER_HOST");
    r.docker_host = !ctx.host.empty() ? docker_host_of(ctx.host_env) : env_host ? env_host : "";
    return r;
  }
  std::map<std::string, ProjectRecord> planned;  // what a plan expects to hand out

  // --keep-clusters: whether worker project `project` was kept by an earlier run and is
  // up and unchanged now (its record's compose files and env as this run's, every one of
  // its containers running) — asked once per project and run, before it is handed out,
  // and given to its jobs as CI_CLUSTER_REUSED, so a set-up may skip its `up`.
  bool cluster_reused(const std::string& project, const JobContext& ctx) {
    if (!config.keep || ctx.planned()) return false;
    const std::string key = record_key(project, ctx.host);
    if (const auto it = reused.find(key); it != reused.end()) return it->second;
    bool up = false;
    const ProjectRecord probe = record_for(project, ctx);
    const auto before = parse_record(util::read_file(record_path(config.state_dir, probe)).value_or(""));
    if (before && before->kept && before->config_hash == config_hash()) {
      std::vector<std::string> argv = {"docker"};
      if (!before->docker_host.empty()) argv.insert(argv.end(), {"-H", before->docker_host});
      argv.insert(argv.end(), {"ps", "-a", "--filter", "label=com.docker.compose.project=" + project, "--format",
                               "{{.State}}"});
      const auto ps = proc::run_capture(argv, std::chrono::seconds(20));
      const auto states = util::split_lines(ps.output);
      up = ps.exit_code == 0 && !states.empty() &&
           std::all_of(states.begin(), states.end(), [](const std::string& st) { return st == "running"; });
    }
    reused[key] = up;
    return up;
  }
  std::map<std::string, bool> reused;  // by record name: cluster_reused's answers

  // Note that `project` is in use on the job's host; record it on disk the first time.
  void hand_out(const std::string& project, const JobContext& ctx, const std::string& docker_host) {
    const std::string key = record_key(project, ctx.host);
    if (handed_out.count(key)) return;
    ProjectRecord r = record_for(project, ctx);
    r.docker_host = docker_host;
    r.pid = ::getpid();
    r.pid_start = process_start(r.pid);
    r.run_id = ctx.run_id;
    if (config.keep) {
      r.kept = true;
      r.config_hash = config_hash();
      // Kept by an earlier run with other compose files or env: down first, so that this
      // run's `up` makes it afresh (bounded; a project that will not go down is the job's
      // failure to start, as an unwritable record is).
      auto before = parse_record(util::read_file(record_path(config.state_dir, r)).value_or(""));
      if (before && before->kept && before->config_hash != r.config_hash) {
        const auto down = proc::run_capture(
            {"/bin/sh", "-c", teardown_command(*before, record_path(config.state_dir, *before), pcr_dir().string(), true,
                                               stop_seconds(config.stop_timeout))},
            std::chrono::minutes(2));
        if (down.exit_code != 0)
          throw pipeline::OwnFailure(fmt::format("cannot take down kept cluster {} (its compose files changed): {}",
                                                 project, last_lines(down.output, 5)));
      }
    }
    std::error_code ec;
    fs::create_directories(config.state_dir, ec);
    // .pcr and its projects/ folder: the user's only; best effort, as the folder's own
    // creation (the record below is checked).
    fs::permissions(config.state_dir, fs::perms::owner_all, ec);
    fs::permissions(pcr_dir(), fs::perms::owner_all, ec);
    // Unrecorded, a project of a killed run would escape `pcr clean`: the job that would
    // start it does not start (the engine reports the reason as the job's).
    auto written = replace_file(record_path(config.state_dir, r), record_json(r),
                                fs::perms::owner_read | fs::perms::owner_write);
    if (!written)
      throw pipeline::OwnFailure(fmt::format("cannot record compose project {} for `pcr clean`: {}",
                                             project, written.error()));
    // Its teardown script too, now: a disk full by the end of the run could not take it.
    script_or_throw(pcr_dir().string(), "down.sh", k_down_script);
    handed_out.emplace(key, r);
  }
};

}  // namespace

ComposeVersion detect_compose_version() {
  static std::once_flag once;
  static ComposeVersion version = ComposeVersion::v1;
  std::call_once(once, [] {
    if (proc::run_capture({"docker", "compose", "version"}, std::chrono::seconds(20)).exit_code == 0)
      version = ComposeVersion::v2;
  });
  return version;
}

std::vector<std::string> compose_argv(ComposeVersion version, const std::vector<std::string>& files,
                                      const std::string& project) {
  std::vector<std::string> argv;
  if (version == ComposeVersion::v2)
    argv = {"docker", "compose"};
  else
    argv = {"docker-compose"};
  for (const auto& f : files) argv.insert(argv.end(), {"-f", f});
  argv.insert(argv.end(), {"-p", project});
  return argv;
}

namespace {
std::string sanitize(const std::string& raw);
}

namespace {
// Project `n` of a run whose id is not known yet (a plan): `shop-{run_id}-2`; `{n}` for a
// worker only the run knows.
std::string planned_project(const std::string& base, unsigned n) {
  return fmt::format("{}-{{run_id}}-{}", sanitize(base.empty() ? "pcr" : base),
                     n ? std::to_string(n) : std::string("{n}"));
}
}  // namespace

std::string project_name(const std::string& base, const std::string& run_id, unsigned n) {
  // The base is cut to k_project_base characters: the name goes into file names (the
  // record, the exec log) and Docker's container and network names, and a long pipeline
  // name or `project:` made the run fail with "File name too long".
  std::string b = base.empty() ? "pcr" : base;
  if (b.size() > k_project_base) b.resize(k_project_base);
  std::string out = sanitize(fmt::format("{}-{}-{}", b, run_id, n));
  return out.empty() ? fmt::format("pcr-{}", n) : out;
}

namespace {
// Lowercase letters, digits, '-' and '_', starting with a letter or digit.
std::string sanitize(const std::string& raw) {
  std::string out;
  for (char c : raw) {
    char l = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    bool ok = (l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') || l == '-' || l == '_';
    out += ok ? l : '-';
  }
  while (!out.empty() && (out[0] == '-' || out[0] == '_')) out.erase(0, 1);
  return out;
}
}  // namespace

std::string record_json(const ProjectRecord& r) {
  nlohmann::ordered_json j;
  j["project"] = r.project;
  j["files"] = r.files;
  j["compose"] = r.version == ComposeVersion::v2 ? "v2" : "v1";
  j["docker_host"] = r.docker_host;
  j["host"] = r.host;
  j["pid"] = r.pid;
  j["pid_start"] = r.pid_start;
  j["run_id"] = r.run_id;
  j["kept"] = r.kept;
  j["config_hash"] = r.config_hash;
  return j.dump(1) + "\n";
}

std::optional<ProjectRecord> parse_record(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  try {
    ProjectRecord r;
    r.project = j.at("project").get<std::string>();
    r.files = j.at("files").get<std::vector<std::string>>();
    r.version = j.value("compose", "v1") == "v2" ? ComposeVersion::v2 : ComposeVersion::v1;
    r.docker_host = j.value("docker_host", "");
    r.host = j.value("host", "");
    r.pid = j.value("pid", 0L);
    r.pid_start = j.value("pid_start", 0ULL);
    r.run_id = j.value("run_id", "");
    r.kept = j.value("kept", false);
    r.config_hash = j.value("config_hash", "");
    if (r.project.empty()) return std::nullopt;
    return r;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

unsigned long long process_start(long pid) { return proc::start_time(static_cast<pid_t>(pid)); }

Owner owner_of(const std::string& state_dir, const ProjectRecord& r) {
  // A killed process may linger as a zombie until its new parent reaps it: that is dead.
  const bool writer = proc::alive(static_cast<pid_t>(r.pid), r.pid_start);
  const auto run = proc::read_run_record(proc::runs_dir(fs::path(state_dir).parent_path().parent_path().string()), r.run_id);
  if (!run) return writer ? Owner::running : Owner::gone;
  const bool supervisor = proc::alive(run->pid, run->pid_start);
  const bool engine = proc::alive(run->engine, run->engine_start);
  if (!supervisor && !engine && !writer) return Owner::gone;
  return supervisor && engine ? Owner::running : Owner::finishing;
}

const std::vector<std::string>& placeholder_names() {
  static const std::vector<std::string> k_names = {"project", "compose", "exec", "wait"};
  return k_names;
}

void install(pipeline::Pipeline& p, ComposeConfig config) {
  auto state = std::make_shared<State>();
  state->config = std::move(config);

  pipeline::Extension ext;
  ext.fixed_env = state->config.env;
  ext.env = [state](const JobContext& ctx) {
    std::string project = state->project_of(ctx);
    // COMPOSE_FILE's separator is ':' unless a path holds one (a folder named "a:b"):
    // then another that none holds, named in COMPOSE_PATH_SEPARATOR (v1 and v2 read it).
    std::string separator = ":";
    for (const char* candidate : {":", ";", ",", "|"}) {
      separator = candidate;
      if (std::none_of(state->config.files.begin(), state->config.files.end(),
                       [&](const std::string& f) { return f.find(candidate) != std::string::npos; }))
        break;
    }
    std::string files;
    for (const auto& f : state->config.files) files += (files.empty() ? "" : separator) + f;
    pipeline::Env env = state->config.env;
    env.emplace_back("COMPOSE_PROJECT_NAME", project);
    env.emplace_back("PROJECT_NAME", project);
    env.emplace_back("COMPOSE_FILE", files);
    if (state->config.keep) env.emplace_back("CI_CLUSTER_REUSED", state->cluster_reused(project, ctx) ? "true" : "false");
    if (separator != ":") env.emplace_back("COMPOSE_PATH_SEPARATOR", separator);
    return env;
  };
  // Recorded with the DOCKER_HOST the job really gets — from `hosts:`, the pipeline's,
  // the step's or `compose: env:` — so that `pcr clean` and a supervisor whose engine was
  // killed take it down where it is.
  ext.starting = [state](const JobContext& ctx, const pipeline::Env& job_env) {
    state->hand_out(state->project_of(ctx), ctx, docker_host_of(job_env));
  };
  ext.placeholder = [state](const std::string& name, const std::string& arg,
                            const JobContext& ctx) -> std::optional<std::string> {
    // In a plan the run id and perhaps the worker are not known yet: show them as such.
    const bool planning = ctx.planned();
    std::string project = planning ? planned_project(state->config.project, ctx.number)
                                   : state->project_of(ctx);
    if (name == "project") return project;
    std::string compose = util::shell_join(compose_argv(state->compose_version(), state->config.files, project));
    if (name == "compose") return compose;
    if (name == "wait") {
      std::vector<std::string> argv = {planning ? state->wait_script_path() : state->wait_script(), compose, project};
      std::istringstream services(arg);
      for (std::string s; services >> s;) argv.push_back(s);
      return util::shell_join(argv);
    }
    if (name == "exec") {
      const std::string log = state->exec_log(project);
      // A plan shows the command the run gives, writing nothing.
      if (planning) return util::shell_join({state->exec_script_path(), compose, arg, log});
      std::error_code ec;
      // When the folder cannot be made, the wrapper says so in the job's output and the
      // command still runs; only stopping it afterwards is lost.
      fs::create_directories(fs::path(log).parent_path(), ec);
      // The user's only, like all of .pcr: the log made here keeps its 0600 when the
      // wrapper appends to it.
      fs::permissions(fs::path(log).parent_path(), fs::perms::owner_all, ec);
      if (const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600); fd >= 0)
        ::close(fd);
      return util::shell_join({state->exec_script(), compose, arg, log});
    }
    return std::nullopt;
  };
  std::vector<LintHost> lint_hosts;
  for (const auto& h : p.hosts) lint_hosts.push_back({h.name, docker_host_of(h.env)});
  if (lint_hosts.empty()) {
    const char* host = std::getenv("DOCKER_HOST");
    lint_hosts.push_back({"", host ? host : ""});
  }
  ext.check = [state, lint_hosts] { return lint_compose(state->config.files, lint_hosts); };
  ext.host_down = [state](const pipeline::Host& h) { state->down_hosts.insert(h.name); };
  ext.after_job = [state](const JobContext& ctx) -> std::optional<std::string> {
    if (state->exec_path.empty()) return std::nullopt;  // no {exec SERVICE} so far
    const std::string project = state->project_of(ctx);
    const std::string log = state->exec_log(project);
    // Only when a command the wrapper started has no "end": the usual case costs a read.
    auto text = util::read_file(log);
    if (!text || text->empty()) return std::nullopt;
    std::set<std::string> open;
    for (const auto& line : util::split_lines(*text)) {
      const auto space = line.find(' ', 6);
      if (line.rfind("start ", 0) == 0) open.insert(line.substr(6, space - 6));
      if (line.rfind("end ", 0) == 0) open.erase(line.substr(4));
    }
    if (open.empty()) {
      std::error_code ec;
      fs::resize_file(log, 0, ec);  // all ended by themselves; nothing to stop
      return std::nullopt;
    }
    const std::string compose =
        util::shell_join(compose_argv(state->compose_version(), state->config.files, project));
    std::string cmd = util::shell_join({state->stop_path, compose, log});
    // Where the job's commands went: its recorded DOCKER_HOST (pcr's own may differ).
    const auto it = state->handed_out.find(record_key(project, ctx.host));
    const std::string docker_host = it != state->handed_out.end() ? it->second.docker_host
                                    : !ctx.host.empty()          ? docker_host_of(ctx.host_env)
                                                                 : "";
    if (!docker_host.empty()) cmd = "DOCKER_HOST=" + util::shell_quote(docker_host) + " " + cmd;
    return cmd;
  };
  // Before anything else touches a worker whose job or set-up failed: its services' logs.
  ext.collect = [state](const JobContext& ctx, bool failed, const std::string& dir) -> std::optional<std::string> {
    using Logs = ComposeConfig::Logs;
    if (state->config.logs == Logs::never || (!failed && state->config.logs != Logs::always)) return std::nullopt;
    const std::string project = state->project_of(ctx);
    const std::string compose = util::shell_join(compose_argv(state->compose_version(), state->config.files, project));
    std::string script;
    try {
      script = state->logs_script();
    } catch (const std::exception&) {
      return std::nullopt;  // .pcr cannot be written: no logs, the job's result stands
    }
    return util::shell_join({script, compose, dir, std::to_string(k_service_log_bytes),
                             state->compose_version() == ComposeVersion::v2 ? "v2" : "v1"});
  };
  ext.summarize = [state](const JobContext& ctx, const std::string& dir, std::chrono::system_clock::time_point started) {
    const auto it = state->events.find(record_key(state->project_of(ctx), ctx.host));
    return troubled_services(dir, it == state->events.end() ? std::map<std::string, std::string>{}
                                                           : troubles_from_events(it->second, started));
  };
  // One `docker events` per host for the whole run, for the deaths, OOM kills and health
  // changes of compose's containers; kept for the projects this run handed out. Only
  // when logs are saved: that is where what it knows is shown.
  if (state->config.logs != ComposeConfig::Logs::never) {
    ext.watch = util::shell_join({"docker", "events", "--filter", "type=container", "--filter",
                                  "label=com.docker.compose.project", "--filter", "event=die", "--filter",
                                  "event=oom", "--filter", "event=kill", "--filter", "event=health_status",
                                  "--format", k_events_format});
    // Where `compose: env:` names the engine (and no `hosts:` does): watch that one.
    for (const auto& [k, v] : state->config.env)
      if (k == "DOCKER_HOST" && p.hosts.empty()) ext.watch = "DOCKER_HOST=" + util::shell_quote(v) + " " + ext.watch;
    ext.watch = "exec " + ext.watch;
    ext.watched = [state](const std::string& host, std::string_view line) {
      auto event = parse_event(line);
      if (!event) return;
      const std::string key = record_key(event->first, host);
      if (!state->handed_out.count(key)) return;  // another run's, or another pipeline's
      auto& kept = state->events[key];
      if (kept.size() >= k_events_per_project) kept.erase(kept.begin());
      kept.push_back(std::move(event->second));
    };
  }
  // The run's own projects, only when a teardown was asked for; the teardown step in the
  // supervisor's cleanup run knows nothing was handed out in its process.
  ext.engine_died = [state](const std::string& run_id, std::string& log) {
    return state->config.teardown && !state->config.keep ? clean(state->config.state_dir, log, run_id) : 0;
  };
  // `reset:` before a worker's first job of a for_each step, and before each retry.
  if (!state->config.reset.empty()) {
    // With the placeholders of a job's command ({exec db}, {compose}), for the job's own
    // cluster; the loader checked them.
    std::vector<pipeline::Template::Error> errors;
    auto reset = std::make_shared<pipeline::Template>(
        pipeline::Template::parse(state->config.reset, errors, placeholder_names()));
    ext.before_job = [reset](const JobContext& ctx, bool first, unsigned attempt) -> std::optional<std::string> {
      if (!first && attempt == 0) return std::nullopt;
      return reset->expand(ctx);
    };
  }
  p.extensions.push_back(std::move(ext));

  if (!state->config.teardown || state->config.keep) return;  // kept: up for the next run
  pipeline::Step down;
  down.name = "compose teardown";
  down.form = pipeline::Form::for_each;
  down.extended = false;
  down.own = true;
  down.workers = 16;
  down.for_each.source = pipeline::ForEach::Source::function;
  down.for_each.items = [state] {
    std::vector<std::string> records;
    for (const auto& [key, record] : state->handed_out) records.push_back(key);
    return records;
  };
  // In a plan: the projects of the workers the steps before would hand out.
  down.for_each.planned = [state](const std::vector<JobContext>& workers) {
    std::set<std::string> keys;  // in name order, as the run's records are
    for (const auto& ctx : workers) {
      const std::string project = planned_project(state->config.project, ctx.number);
      const std::string key = record_key(project, ctx.host);
      keys.insert(key);
      state->planned.emplace(key, state->record_for(project, ctx));
    }
    return std::vector<std::string>(keys.begin(), keys.end());
  };
  down.commands.push_back([state](const JobContext& ctx) {
    const std::string& key = ctx.items.at(0);
    const bool planning = ctx.planned();
    const auto& record = planning ? state->planned.at(key) : state->handed_out.at(key);
    if (state->down_hosts.count(record.host))
      return fmt::format("echo {}", util::shell_quote(fmt::format(
                                        "host {} does not answer: project {} stays recorded for `pcr clean`",
                                        record.host, record.project)));
    return teardown_command(record, record_path(state->config.state_dir, record), state->pcr_dir().string(),
                            !planning, stop_seconds(state->config.stop_timeout));
  });
  down.texts.push_back("<compose> down -v --remove-orphans");
  down.options.timeout = pipeline::Millis(5 * 60 * 1000);
  down.options.kill_grace = pipeline::Millis(10'000);
  down.options.output = pipeline::OutputMode::on_failure;
  p.cleanup.push_back(std::move(down));
}

std::string state_dir(const std::string& pipeline_dir) {
  return (fs::path(pipeline_dir) / ".pcr" / "projects").string();
}

std::string record_path(const std::string& state_dir, const ProjectRecord& r) {
  return fmt::format("{}/{}.json", state_dir, record_key(r.project, r.host));
}

std::string exec_wrapper(const std::string& dir) {
  return script_or_throw(dir, "exec.sh", k_exec_script);
}

namespace {
// The records under `state_dir` that `keep` accepts, in file name order.
template <typename Keep>
std::vector<ProjectRecord> records(const std::string& state_dir, Keep keep) {
  std::vector<ProjectRecord> out;
  std::error_code ec;
  std::set<std::string> paths;
  for (fs::directory_iterator it(state_dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().extension() == ".json") paths.insert(it->path().string());
  for (const auto& path : paths) {
    auto r = parse_record(util::read_file(path).value_or(""));
    if (r && keep(*r)) out.push_back(*r);
  }
  return out;
}
}  // namespace

std::vector<ProjectRecord> leftovers(const std::string& state_dir) {
  return records(state_dir, [&](const ProjectRecord& r) { return owner_of(state_dir, r) == Owner::gone; });
}

std::vector<ProjectRecord> still_up(const std::string& state_dir, const std::string& run_id) {
  return records(state_dir, [&](const ProjectRecord& r) { return r.run_id == run_id; });
}

namespace {
std::string on_host(const ProjectRecord& r) {
  if (r.host.empty() && r.docker_host.empty()) return "";
  if (r.host.empty()) return fmt::format(" on {}", r.docker_host);
  return fmt::format(" on host {} ({})", r.host, r.docker_host);
}
}  // namespace

namespace {
// "a, b and 2 more" of the projects of `rs`.
std::string project_list(const std::vector<ProjectRecord>& rs) {
  std::string out;
  constexpr std::size_t k_named = 4;
  for (std::size_t i = 0; i < rs.size() && i < k_named; ++i) out += (i ? ", " : "") + rs[i].project + on_host(rs[i]);
  if (rs.size() > k_named) out += fmt::format(" and {} more", rs.size() - k_named);
  return out;
}

// The records under `state_dir` of live runs, by run id, as `owner_of` finds them.
std::map<std::string, std::vector<ProjectRecord>> live_runs(const std::string& state_dir, Owner which) {
  std::map<std::string, std::vector<ProjectRecord>> out;
  for (auto& r : records(state_dir, [&](const ProjectRecord& r) { return owner_of(state_dir, r) == which; }))
    out[r.run_id].push_back(r);
  return out;
}
}  // namespace

int clean(const std::string& state_dir, std::string& log, const std::string& run_id, std::chrono::milliseconds wait) {
  int failed = 0;
  std::vector<ProjectRecord> found;
  if (run_id.empty()) {
    // A run killed in half is still taking its projects down: wait for it (bounded), so
    // that what is reported left is what is left.
    auto finishing = live_runs(state_dir, Owner::finishing);
    const auto deadline = std::chrono::steady_clock::now() + wait;
    const auto waited = finishing;
    for (const auto& [id, rs] : finishing)
      log += fmt::format("pcr clean: run {} was killed and is still tearing down {}: waiting for it (up to {}s)\n", id,
                         project_list(rs), std::chrono::duration_cast<std::chrono::seconds>(wait).count());
    while (!finishing.empty() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      finishing = live_runs(state_dir, Owner::finishing);
    }
    for (const auto& [id, rs] : waited)
      if (!finishing.count(id)) log += fmt::format("pcr clean: run {} has ended\n", id);
    for (const auto& [id, rs] : finishing)
      log += fmt::format("pcr clean: run {} is still tearing down {}: left alone (run pcr clean again when it ends)\n",
                         id, project_list(rs));
    for (const auto& [id, rs] : live_runs(state_dir, Owner::running))
      log += fmt::format("pcr clean: run {} is still running: its projects {} left alone\n", id, project_list(rs));
    found = leftovers(state_dir);
  } else {
    // The supervisor of run `run_id`, whose engine died: the run is its own.
    found = still_up(state_dir, run_id);
  }
  for (const auto& r : found) {
    std::string cmd;
    try {
      cmd = teardown_command(r, record_path(state_dir, r), fs::path(state_dir).parent_path().string());
    } catch (const std::exception& ex) {
      ++failed;
      log += fmt::format("pcr clean: could not take down {}{}: {}\n", r.project, on_host(r), ex.what());
      continue;
    }
    // Bounded like the teardown step of a run (5 minutes a project).
    const auto down = proc::run_capture({"/bin/sh", "-c", cmd}, std::chrono::minutes(5));
    const int rc = down.exit_code;
    if (rc == 0) {
      log += r.kept ? fmt::format("pcr clean: took down kept cluster {}{} (kept by run {})\n", r.project, on_host(r),
                                  r.run_id)
                    : fmt::format("pcr clean: took down {}{} (run {}, pid {} is gone)\n", r.project, on_host(r),
                                  r.run_id, r.pid);
    } else {
      ++failed;
      // What compose and docker said: the last lines, which name the cause.
      const auto lines = util::split_lines(down.output);
      std::string said;
      for (std::size_t i = lines.size() > 10 ? lines.size() - 10 : 0; i < lines.size(); ++i)
        said += "  " + lines[i] + "\n";
      log += fmt::format("pcr clean: could not take down {}{}: `docker-compose down` exited {}{}\n", r.project,
                         on_host(r), rc, said.empty() ? "" : ":\n" + said.substr(0, said.size() - 1));
    }
  }
  return failed;
}

}  // namespace pcr::docker
