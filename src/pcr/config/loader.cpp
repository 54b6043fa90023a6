#include <pcr/config/limits.hpp>
#include <pcr/config/checks.hpp>
#include <pcr/config/loader.hpp>
#include <pcr/queue/redis.hpp>
#include <pcr/docker/compose.hpp>
#include <pcr/docker/lint.hpp>
#include <pcr/docker/hosts.hpp>
#include <pcr/pipeline/template.hpp>
#include <pcr/util/io.hpp>
#include <pcr/util/mask.hpp>
#include <pcr/util/regex.hpp>
#include <pcr/util/shell.hpp>
#include <pcr/util/text.hpp>

#include <fmt/format.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>

namespace pcr::config {

namespace fs = std::filesystem;
using namespace pcr::pipeline;
using namespace pcr::config::detail;

namespace {

// A value of the file as an error message quotes it: at most one line's worth.
std::string shown(std::string_view value) { return util::elide(value, 80); }

}  // namespace


namespace {

const std::vector<std::string> k_top_keys = {"name",  "timeout", "env",   "secrets", "defaults",
                                             "steps", "cleanup", "compose", "hosts", "queue"};
const std::vector<std::string> k_option_keys = {
    "timeout", "idle_timeout", "slow", "setup_timeout", "kill_grace", "retries", "fail_fast",
    "output",  "capture",      "expect",     "env",     "workdir", "results"};
const std::vector<std::string> k_form_keys = {"name",     "run",   "parallel", "commands",
                                              "for_each", "batch", "groups",   "separate",
                                              "workers",  "setup", "teardown", "per_host"};


// One pass over the document, collecting every problem instead of stopping at the first:
// a user fixes a file in one round. Nothing is built into the Pipeline's hooks (compose,
// hosts) until the file is known to be good, so a bad file has no effect at all.
class Loader {
 public:
  Loader(std::string file, const Machine& machine) : m_file(std::move(file)), m_machine(machine) {}

  Pipeline load(const std::string& text) {
    // The size bound comes before parsing: yaml-cpp holds the whole document in memory.
    if (text.size() > limits::file_bytes)
      throw LoadError({{m_file, 1, 1,
                        fmt::format("the file has {} bytes, more than the {} MiB a pipeline file "
                                    "may have",
                                    text.size(), limits::file_bytes >> 20)}});
    // YAML text holds no raw NUL (yaml-cpp's word for one is an odd "unknown escape").
    if (const auto nul = text.find('\0'); nul != std::string::npos) {
      const auto line_start = text.rfind('\n', nul) + 1;  // npos + 1 == 0: the first line
      throw LoadError({{m_file, 1 + static_cast<int>(std::count(text.begin(), text.begin() + nul, '\n')),
                        1 + static_cast<int>(nul - line_start), "a NUL byte (\\0): not a YAML text file"}});
    }
    // A second document would be silently ignored by the parser (which reads the first).
    if (const int line = second_document_line(text)) {
      throw LoadError({{m_file, line, 1, "a second YAML document (after `---`): a pipeline file holds one"}});
    }
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::DeepRecursion& ex) {  // yaml-cpp's own guard; its words: "bad file"
      error(ex.mark, fmt::format("nested more than {} levels deep; pcr refuses a document this "
                                 "deep",
                                 ex.depth()));
      throw LoadError(m_errors);
    } catch (const YAML::Exception& ex) {
      error(ex.mark, ex.msg);
      throw LoadError(m_errors);
    }
    if (!within_budget(root)) throw LoadError(m_errors);
    Pipeline p;
    if (!root.IsMap()) {
      error(root, "the pipeline file must be a mapping with a `steps:` list");
      throw LoadError(m_errors);
    }
    check_keys(root, k_top_keys, "the pipeline");
    if (auto n = root["name"]) p.name = scalar(n, "name");
    if (auto n = root["timeout"]) p.timeout = duration(n);
    if (auto n = root["queue"]) p.queue = queue_url(n);
    if (auto n = root["env"]) p.env = env(n);
    if (auto n = root["secrets"]) {
      for (const auto& s : sequence(n, "secrets")) {
        std::string var = scalar(s, "a secret");
        if (!valid_var(var)) error(s, fmt::format("'{}' is not a variable name", shown(var)));
        p.secrets.push_back(var);
        m_secret_names.insert(var);
      }
    }
    std::vector<Host> hosts;
    if (auto n = root["hosts"]) hosts = hosts_block(n);
    std::optional<docker::ComposeConfig> compose;
    if (auto n = root["compose"]) compose = compose_block(n, p.name);
    if (compose) {
      m_placeholders = docker::placeholder_names();
      m_services = docker::compose_services(compose->files);
      // `reset:` is a command of its own, placeholders and service names checked as a
      // step's are (`{exec db} psql …`).
      auto block = root["compose"];
      if (block.IsMap()) {
        if (auto r = block["reset"]) {
          std::string reset_text;
          command(r, "compose reset", reset_text);
        }
      }
    }
    StepOptions defaults;
    if (auto n = root["defaults"]) {
      if (!n.IsMap()) {
        error(n, "defaults: expected a mapping of step options");
      } else {
        check_keys(n, k_option_keys, "defaults");
        options(n, defaults);
      }
    }
    auto steps = root["steps"];
    if (!steps) {
      error(root, "no `steps:` list: a pipeline needs at least one step");
    } else {
      for (const auto& s : sequence(steps, "steps")) p.steps.push_back(step(s, defaults, false));
      if (steps.IsSequence() && steps.size() == 0)
        error(steps, "`steps:` is empty: a pipeline needs at least one step");
    }
    if (auto c = root["cleanup"])
      for (const auto& s : sequence(c, "cleanup")) p.cleanup.push_back(step(s, defaults, true));
    if (!m_errors.empty()) throw LoadError(m_errors, secret_values(p));
    if (!hosts.empty()) docker::use_hosts(p, std::move(hosts));
    if (compose) {
      if (m_machine.compose_version) compose->version = m_machine.compose_version();
      docker::install(p, *compose);
    }
    return p;
  }

 private:
  // `compose:`. The project base name defaults to the pipeline's name, so two pipelines
  // in one folder do not share projects; files are made absolute here because jobs may
  // run in another `workdir`.
  docker::ComposeConfig compose_block(const YAML::Node& n, const std::string& pipeline_name) {
    docker::ComposeConfig c;
    if (!n.IsMap()) {
      error(n, "compose: expected a mapping with `file:` (and `project`, `env`, `teardown`)");
      return c;
    }
    check_keys(n, {"file", "project", "env", "teardown", "logs", "stop_timeout", "reset"}, "compose");
    const fs::path dir = fs::absolute(fs::path(m_file), m_ec).parent_path();
    auto add_file = [&](const YAML::Node& f) {
      std::string name = scalar(f, "compose file");
      if (name.empty()) return;
      fs::path path = fs::path(name).is_absolute() ? fs::path(name) : dir / name;
      if (!fs::exists(path, m_ec))
        error(f, fmt::format("compose file: {} does not exist", path.string()));
      else if (!fs::is_regular_file(path, m_ec))  // a FIFO would hang compose and the lint
        error(f, fmt::format("compose file: {} is not a regular file", path.string()));
      c.files.push_back(path.lexically_normal().string());
    };
    if (auto f = n["file"]) {
      if (f.IsSequence())
        for (const auto& item : f) add_file(item);
      else
        add_file(f);
    } else {
      error(n, "compose: give the compose `file:` (or a list of files)");
    }
    c.project = n["project"] ? scalar(n["project"], "compose project")
                             : (!pipeline_name.empty() ? pipeline_name : dir.filename().string());
    if (auto e = n["env"]) c.env = env(e);
    if (auto t = n["teardown"]) c.teardown = boolean(t, "compose teardown");
    if (auto l = n["logs"]) {
      const std::string v = scalar(l, "compose logs");
      using Logs = docker::ComposeConfig::Logs;
      if (v == "on-failure" || v == "on_failure")
        c.logs = Logs::on_failure;
      else if (v == "always")
        c.logs = Logs::always;
      else if (v == "never")
        c.logs = Logs::never;
      else
        error(l, fmt::format("compose logs: expected `on-failure`, `always` or `never`, not `{}`", util::visible(v)));
    }
    if (auto t = n["stop_timeout"])
      c.stop_timeout = duration(t);
    if (auto r = n["reset"]) c.reset = scalar(r, "compose reset");
    c.keep = m_machine.keep_clusters;
    c.state_dir = docker::state_dir(dir.string());
    return c;
  }

  // `hosts:`. Names must be unique (they key project records and `CI_HOST`); a
  // `context:` is resolved through the Machine the front end gave, never by the loader.
  std::vector<Host> hosts_block(const YAML::Node& n) {
    std::vector<Host> hosts;
    std::set<std::string> names;
    for (const auto& h : sequence(n, "hosts")) {
      if (!h.IsMap()) {
        error(h,
              "a host must be a mapping: `name`, `docker` (a DOCKER_HOST value) or `context`, "
              "`workers`");
        continue;
      }
      check_keys(h, {"name", "docker", "context", "workers"}, "a host");
      std::string name;
      if (auto v = h["name"]) {
        name = scalar(v, "host name");
        if (!name.empty() && !valid_host_name(name))
          error(v, fmt::format("host name '{}': use letters, digits, '.', '_' and '-'",
                               shown(name)));
        if (!names.insert(name).second)
          error(v, fmt::format("two hosts are named '{}'", shown(name)));
      } else {
        error(h, "a host needs a `name:` (it becomes CI_HOST)");
      }
      unsigned workers = 1;
      if (auto v = h["workers"])
        if (auto w = integer(v, "workers", 1, limits::workers)) workers = static_cast<unsigned>(*w);
      const bool has_docker = h["docker"].IsDefined(), has_context = h["context"].IsDefined();
      if (has_docker == has_context) {
        error(has_docker ? key_mark(h, "context") : h.Mark(),
              has_docker ? "a host has `docker` or `context`, not both"
                         : "a host needs `docker:` (a DOCKER_HOST value, e.g. ssh://ci@box2) or "
                           "`context:` (a docker context)");
        continue;
      }
      std::string value;
      if (has_docker) {
        value = scalar(h["docker"], "docker");
        if (!value.empty() && !docker_host_value(value))
          error(
              h["docker"],
              fmt::format("docker: '{}' is not a DOCKER_HOST value (unix://PATH, tcp://HOST:PORT, "
                          "ssh://USER@HOST)",
                          shown(value)));
      } else {
        std::string context = scalar(h["context"], "context");
        if (!context.empty()) {
          auto endpoint = m_machine.context_endpoint
                              ? m_machine.context_endpoint(context)
                              : util::Expected<std::string>::failure(
                                    "docker contexts cannot be resolved here");
          if (endpoint)
            value = *endpoint;
          else
            error(h["context"], fmt::format("context '{}': {}", context, endpoint.error()));
        }
      }
      hosts.push_back(docker::docker_host(name, value, workers));
    }
    if (n.IsSequence() && n.size() == 0)
      error(n, "hosts: the list is empty (leave `hosts:` out to run here)");
    return hosts;
  }

  void error(const YAML::Mark& mark, std::string message) {
    int line = mark.line >= 0 ? mark.line + 1 : 1;
    int column = mark.column >= 0 ? mark.column + 1 : 1;
    m_errors.push_back({m_file, line, column, std::move(message)});
  }
  // `queue:` — the build's queue (`pcr run --queue`): $VAR and ${VAR} taken from the
  // environment (the CI's build id), checked as a queue URL.
  std::string queue_url(const YAML::Node& n) {
    const std::string text = scalar(n, "queue");
    std::string url;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] != '$') {
        url += text[i];
        continue;
      }
      const bool braced = i + 1 < text.size() && text[i + 1] == '{';
      std::size_t start = i + (braced ? 2 : 1), end = start;
      while (end < text.size() && (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '_')) ++end;
      if (end == start || (braced && (end >= text.size() || text[end] != '}'))) {
        error(n, "queue: a '$' starts a variable: $NAME or ${NAME}");
        return "";
      }
      const std::string var = text.substr(start, end - start);
      const char* value = std::getenv(var.c_str());
      if (!value || !*value) {
        error(n, fmt::format("queue: ${} is not set (the build's name usually comes from the CI, e.g. "
                             "$CI_PIPELINE_ID)", var));
        return "";
      }
      url += value;
      i = braced ? end : end - 1;
    }
    if (auto parsed = queue::parse_url(url); !parsed) error(n, "queue: " + parsed.error());
    return url;
  }

  void error(const YAML::Node& node, std::string message) {
    error(node.Mark(), std::move(message));
  }


  // Refuses, at its place, a document too big once its aliases are expanded (checks.hpp).
  bool within_budget(const YAML::Node& root) {
    if (auto over = over_budget(root)) {
      error(over->first, over->second);
      return false;
    }
    return true;
  }

  // The mark of `key` itself inside `map` (yaml-cpp marks values; keys are found by walking).
  YAML::Mark key_mark(const YAML::Node& map, const std::string& key) {
    for (auto it = map.begin(); it != map.end(); ++it)
      if (it->first.IsScalar() && it->first.Scalar() == key) return it->first.Mark();
    return map.Mark();
  }

  void check_keys(const YAML::Node& map, const std::vector<std::string>& allowed,
                  const std::string& where, const std::vector<std::string>* later = nullptr,
                  const std::vector<std::string>* more = nullptr) {
    std::vector<std::string> all = allowed;
    if (more) all.insert(all.end(), more->begin(), more->end());
    std::map<std::string, int> seen;  // key → its line
    for (auto it = map.begin(); it != map.end(); ++it) {
      if (!it->first.IsScalar()) {
        error(it->first, fmt::format("{}: a key must be a plain name", where));
        continue;
      }
      const std::string key = it->first.Scalar();
      // YAML forbids it, and the parser would silently keep the first.
      if (auto [at, fresh] = seen.emplace(key, it->first.Mark().line + 1); !fresh) {
        error(it->first, fmt::format("'{}' is given twice in {} (first at line {})", shown(key), where, at->second));
        continue;
      }
      if (std::find(all.begin(), all.end(), key) != all.end()) continue;
      if (key.size() > 200) {  // no typo of a known key: spare the edit distance
        error(it->first, fmt::format("unknown key '{}' in {}", shown(key), where));
        continue;
      }
      if (later && std::find(later->begin(), later->end(), key) != later->end()) {
        error(it->first, fmt::format("'{}' is not supported by this version of pcr yet", key));
        continue;
      }
      std::string hint = util::did_you_mean(key, all);
      error(it->first, fmt::format("unknown key '{}' in {}{}", shown(key), where,
                                   hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint)));
    }
  }

  // A string where one is expected. A mapping or list there is an error at its own place
  // rather than yaml-cpp's "bad conversion" without a location.
  std::string scalar(const YAML::Node& n, const std::string& what) {
    if (!n.IsScalar()) {
      error(n, fmt::format("{}: expected a string", what));
      return "";
    }
    return checked_text(n, n.Scalar(), what);
  }

  // `text` (the value of `n`) if a command, name or value can hold it; else "" and an error.
  std::string checked_text(const YAML::Node& n, const std::string& text, const std::string& what) {
    if (text.size() > limits::scalar_bytes) {
      error(n, fmt::format("{}: {} bytes, more than the {} MiB one value may have", what,
                           text.size(), limits::scalar_bytes >> 20));
      return "";
    }
    if (text.find('\0') != std::string::npos) {
      // A C string ends at the first NUL: the command or name would be cut there.
      error(n, fmt::format("{}: contains a NUL byte (\\0), which no command, name or value "
                           "can hold",
                           what));
      return "";
    }
    return text;
  }

  // The elements of a list; an empty value (`steps:` with nothing under it) is an empty
  // list, anything else not a list is an error.
  std::vector<YAML::Node> sequence(const YAML::Node& n, const std::string& what) {
    std::vector<YAML::Node> out;
    if (!n.IsSequence()) {
      if (!n.IsNull())
        error(n, fmt::format("{}: expected a list", what));
      else
        error(n, fmt::format("{}: expected a list, found nothing", what));
      return out;
    }
    for (const auto& item : n) out.push_back(item);
    return out;
  }

  std::optional<long long> integer(const YAML::Node& n, const std::string& what, long long min,
                                   long long max) {
    long long v = 0;
    bool ok = n.IsScalar();
    if (ok) {
      const std::string& s = n.Scalar();
      size_t used = 0;
      try {
        v = std::stoll(s, &used);
      } catch (...) {
        ok = false;
      }
      ok = ok && used == s.size();
    }
    if (!ok) {
      error(n, fmt::format("{}: expected a whole number", what));
      return std::nullopt;
    }
    if (v < min) {
      error(n, fmt::format("{}: must be at least {}", what, min));
      return std::nullopt;
    }
    if (v > max) {
      error(n, fmt::format("{}: {} is more than pcr takes (at most {})", what, v, max));
      return std::nullopt;
    }
    return v;
  }

  bool boolean(const YAML::Node& n, const std::string& what) {
    if (n.IsScalar()) {
      const std::string& s = n.Scalar();
      if (s == "true" || s == "yes" || s == "on") return true;
      if (s == "false" || s == "no" || s == "off") return false;
    }
    error(n, fmt::format("{}: expected true or false", what));
    return false;
  }

  Millis duration(const YAML::Node& n) {
    if (!n.IsScalar()) {
      error(n, "expected a duration like 90s, 10m or 1h30m");
      return Millis(0);
    }
    auto d = util::parse_duration(n.Scalar());
    if (!d) {
      error(n, d.error());
      return Millis(0);
    }
    return *d;
  }

  Env env(const YAML::Node& n) {
    Env out;
    std::set<std::string> names;  // given so far (a set: a generated file may give 10^5)
    std::size_t total = 0;        // "NAME=value" bytes so far
    if (!n.IsMap()) {
      error(n, "env: expected a mapping of NAME: value");
      return out;
    }
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string name = it->first.IsScalar() ? it->first.Scalar() : "";
      if (!valid_var(name)) {
        error(it->first, fmt::format("env: '{}' is not a variable name", shown(name)));
        continue;
      }
      if (!it->second.IsScalar() && !it->second.IsNull()) {
        error(it->second, fmt::format("env {}: expected a string value", name));
        continue;
      }
      if (!names.insert(name).second) {
        error(it->first, fmt::format("env: '{}' is given twice", name));
        continue;
      }
      std::string value = it->second.IsNull() ? "" : checked_text(it->second, it->second.Scalar(), "env " + name);
      // The kernel's bound for one variable ("NAME=value"): past it no job could start,
      // cleanup's neither ("Argument list too long").
      if (name.size() + value.size() + 2 > limits::env_variable_bytes) {
        error(it->second, fmt::format("env {}: {} bytes, more than the 128 KiB one environment variable may hold",
                                      name, value.size()));
        continue;
      }
      total += name.size() + value.size() + 2;
      if (total > limits::env_block_bytes) {
        error(it->first, fmt::format("env: more than {} KiB in all; a job's whole environment and command "
                                     "must fit the kernel's 2 MiB",
                                     limits::env_block_bytes >> 10));
        return out;
      }
      out.emplace_back(name, std::move(value));
    }
    return out;
  }

  void options(const YAML::Node& n, StepOptions& o) {
    if (auto v = n["timeout"]) o.timeout = duration(v);
    if (auto v = n["idle_timeout"]) o.idle_timeout = duration(v);
    if (auto v = n["slow"]) o.slow = duration(v);
    if (auto v = n["setup_timeout"]) o.setup_timeout = duration(v);
    if (auto v = n["kill_grace"]) o.kill_grace = duration(v);
    if (auto v = n["retries"])
      if (auto r = integer(v, "retries", 0, limits::retries)) o.retries = static_cast<unsigned>(*r);
    if (auto v = n["fail_fast"]) o.fail_fast = boolean(v, "fail_fast");
    if (auto v = n["output"]) {
      std::string s = scalar(v, "output");
      if (s == "show")
        o.output = OutputMode::show;
      else if (s == "hide")
        o.output = OutputMode::hide;
      else if (s == "on-failure" || s == "on_failure")
        o.output = OutputMode::on_failure;
      else
        error(v, fmt::format("output: '{}' is not one of show, hide, on-failure", shown(s)));
    }
    if (auto v = n["capture"]) {
      o.capture = scalar(v, "capture");
      if (!valid_var(o.capture))
        error(v, fmt::format("capture: '{}' is not a variable name", shown(o.capture)));
      else if (m_secret_names.count(o.capture))
        error(v, fmt::format("capture: {} is named in `secrets`, but a captured value is only known "
                             "during the run, where pcr could not mask it; capture into another name",
                             o.capture));
    }
    if (auto v = n["expect"]) {
      o.expect = scalar(v, "expect");
      if (o.expect.size() > limits::expect_bytes)
        error(v, fmt::format("expect: {} bytes, more than the {} KiB a pattern may have",
                             o.expect.size(), limits::expect_bytes >> 10));
      else if (auto re = util::Regex::compile(o.expect); !re)
        error(v, fmt::format("expect: not a regular expression pcr can match in linear time "
                             "(RE2 syntax; no backreferences or lookaround): {}",
                             shown(re.error())));
    }
    if (auto v = n["env"]) {
      Env extra = env(v);
      for (auto& kv : extra) o.env.push_back(std::move(kv));
    }
    if (auto v = n["workdir"]) o.workdir = scalar(v, "workdir");
    if (auto v = n["results"]) results(v, o.results);
  }

  // `results: tap` or `results: {junit: GLOB}`.
  void results(const YAML::Node& n, ResultsSpec& r) {
    if (n.IsScalar() && n.Scalar() == "tap") {
      r.format = ResultsSpec::Format::tap;
      return;
    }
    if (n.IsMap() && n.size() == 1 && n["junit"]) {
      r.junit = scalar(n["junit"], "results junit");
      if (r.junit.empty() || r.junit.find('\0') != std::string::npos)
        error(n["junit"], "results: junit: a glob of the JUnit XML files the job writes, e.g. "
                          "\"reports/{job}/*.xml\"");
      r.format = ResultsSpec::Format::junit;
      return;
    }
    error(n, "results: expected `tap` (TAP on the job's stdout) or `{junit: GLOB}` (the JUnit "
             "XML files the job writes)");
  }

  // A command: its placeholders are parsed now, so an unknown `{name}` is a load error
  // at its column, not a failure of the job that would have expanded it.
  Command command(const YAML::Node& n, const std::string& what, std::string& text) {
    text = scalar(n, what);
    if (n.IsScalar() && n.Scalar().find_first_not_of(" \t\r\n") == std::string::npos)
      error(n, fmt::format("{}: the command is empty", what));
    std::vector<Template::Error> errors;
    Template t = Template::parse(text, errors, m_placeholders,
                                 [this](const std::string& name, const std::string& arg) { return service_error(name, arg); });
    for (const auto& e : errors) {
      YAML::Mark m = n.Mark();
      // Point into the string when it sits on one line as written.
      if (text.find('\n') == std::string::npos)
        m.column += static_cast<int>(e.offset) + (n.Tag() == "!" ? 1 : 0);
      error(m, e.message);
    }
    return make_command(std::move(t));
  }

  // A step starts from the file's `defaults:` and overrides them key by key. It has
  // exactly one form (`run`, `parallel`, `commands`, `for_each`); two in one step is an
  // error naming both, at the second.
  Step step(const YAML::Node& n, const StepOptions& defaults, bool cleanup) {
    Step s;
    s.options = defaults;
    const std::string where = cleanup ? "a cleanup step" : "a step";
    if (n.IsScalar()) {  // shorthand: "- make test"
      std::string text;
      s.commands.push_back(command(n, "run", text));
      s.texts.push_back(text);
      s.name = util::elide(text, 40);
      return s;
    }
    if (!n.IsMap()) {
      error(n, fmt::format("{} must be a mapping (with `run:` or `commands:`)", where));
      return s;
    }
    check_keys(n, k_form_keys, where, nullptr, &k_option_keys);
    options(n, s.options);
    if (n.size() == 0) error(n, fmt::format("empty step: give {} `run:` or `commands:`", where));

    const bool has_run = n["run"].IsDefined();
    const bool has_commands = n["commands"].IsDefined();
    const bool has_parallel = n["parallel"].IsDefined();
    const bool has_for_each = n["for_each"].IsDefined();
    if (auto v = n["name"]) s.name = scalar(v, "name");

    auto conflict = [&](const char* a, const char* b) {
      error(key_mark(n, b),
            fmt::format("two forms in one step: `{}` and `{}` (a step is exactly one of "
                        "`run`, `commands`, `run` + `parallel`, `run` + `for_each`)",
                        a, b));
    };
    if (has_run && has_commands) conflict("run", "commands");
    if (has_parallel && has_for_each) conflict("parallel", "for_each");
    if (has_commands && has_parallel) conflict("commands", "parallel");
    if (has_commands && has_for_each) conflict("commands", "for_each");
    if (!has_run && !has_commands && n.size() > 0)
      error(n, fmt::format("empty step: {} needs `run:` or `commands:`", where));
    if ((has_parallel || has_for_each) && !has_run && !has_commands)
      error(key_mark(n, has_parallel ? "parallel" : "for_each"),
            fmt::format("`{}` needs a `run:` command", has_parallel ? "parallel" : "for_each"));

    if (has_run) {
      std::string text;
      s.commands.push_back(command(n["run"], "run", text));
      s.texts.push_back(text);
      if (s.name.empty()) s.name = util::elide(text, 40);
    }
    if (has_commands) {
      s.form = Form::commands;
      for (const auto& c : sequence(n["commands"], "commands")) {
        std::string text;
        s.commands.push_back(command(c, "commands", text));
        s.texts.push_back(text);
      }
      if (n["commands"].IsSequence() && n["commands"].size() == 0)
        error(n["commands"], "commands: the list is empty");
      if (s.name.empty()) s.name = fmt::format("{} commands", s.commands.size());
    }
    if (has_parallel) {
      s.form = Form::parallel;
      if (auto v = integer(n["parallel"], "parallel", 1, limits::parallel))
        s.parallel = static_cast<unsigned>(*v);
    }
    if (has_for_each) {
      s.form = Form::for_each;
      for_each(n["for_each"], s.for_each);
    }
    for (const char* key : {"batch", "workers", "groups"}) {
      if (!n[key]) continue;
      if (!has_for_each) {
        error(key_mark(n, key), fmt::format("`{}` only applies to a `for_each` step", key));
        continue;
      }
      const std::string k = key;
      const long long max = k == "batch" ? limits::batch : k == "workers" ? limits::workers
                                                                          : limits::groups;
      if (auto v = integer(n[key], key, 1, max)) {
        (k == "batch"     ? s.batch
         : k == "workers" ? s.workers
                          : s.groups) = static_cast<unsigned>(*v);
      }
    }
    if (n["groups"] && n["batch"])
      error(key_mark(n, "groups"), "`groups` and `batch` both size the jobs: give one of them");
    if (auto v = n["separate"]) {
      if (!has_for_each)
        error(key_mark(n, "separate"), "`separate` only applies to a `for_each` step");
      for (const auto& item : sequence(v, "separate"))
        s.separate.push_back(scalar(item, "separate item"));
    }
    if (auto v = n["per_host"]) {
      s.per_host = boolean(v, "per_host");
      if (s.per_host && has_run && !m_placeholders.empty() && n["run"].IsScalar() &&
          uses_worker_placeholder(n["run"].Scalar()))
        error(n["run"],
              "a `per_host` job belongs to a host, not to a worker: it has no compose project, so "
              "{project}, {compose} and {exec SERVICE} are not available (plain docker commands "
              "are)");
      if (s.per_host && (has_parallel || has_for_each || has_commands))
        error(key_mark(n, "per_host"),
              fmt::format("`per_host` runs one `run:` command once on every host; it does "
                          "not combine with `{}`",
                          has_parallel   ? "parallel"
                          : has_for_each ? "for_each"
                                         : "commands"));
    }
    for (const char* key : {"setup", "teardown"}) {
      if (!n[key]) continue;
      std::string text;
      Command c = command(n[key], key, text);
      if (std::string(key) == "setup")
        s.setup = std::move(c), s.setup_text = text;
      else
        s.teardown = std::move(c), s.teardown_text = text;
    }
    if (s.for_each.source == ForEach::Source::lines && !m_captured.count(s.for_each.value))
      error(n["for_each"]["lines"],
            fmt::format("for_each lines: no earlier step has `capture: {}`", s.for_each.value));
    if (!s.options.capture.empty()) m_captured.insert(s.options.capture);
    if (s.name.empty()) s.name = cleanup ? "cleanup" : "step";
    if (!m_names.insert((cleanup ? "c:" : "s:") + s.name).second && n["name"])
      error(n["name"], fmt::format("two steps are named '{}'", shown(s.name)));
    return s;
  }

  // `for_each:` as a list, or one source: `glob`, `list`, `lines` (captured earlier),
  // `command`. A list's size is bounded here; the other sources are bounded when the run
  // finds their items.
  void for_each(const YAML::Node& n, ForEach& fe) {
    if (n.IsSequence()) {  // shorthand for {list: [...]}
      fe.source = ForEach::Source::list;
      for (const auto& item : n) fe.list.push_back(scalar(item, "for_each item"));
      too_many_items(n, fe.list.size());
      return;
    }
    if (!n.IsMap()) {
      error(
          n,
          "for_each: expected one of {glob: PATTERN}, {list: [...]}, {lines: VAR}, {command: CMD}");
      return;
    }
    static const std::vector<std::string> sources = {"glob", "list", "lines", "command"};
    check_keys(n, sources, "for_each");
    int found = 0;
    for (const auto& key : sources) {
      auto v = n[key];
      if (!v) continue;
      if (++found > 1) {
        error(key_mark(n, key), "for_each: give exactly one of glob, list, lines, command");
        return;
      }
      if (key == "list") {
        fe.source = ForEach::Source::list;
        for (const auto& item : sequence(v, "for_each list"))
          fe.list.push_back(scalar(item, "for_each item"));
        too_many_items(v, fe.list.size());
      } else {
        fe.value = scalar(v, "for_each " + key);
        if (v.IsScalar() && fe.value.empty()) error(v, fmt::format("for_each {}: empty", key));
        fe.source = key == "glob"    ? ForEach::Source::glob
                    : key == "lines" ? ForEach::Source::lines
                                     : ForEach::Source::command;
      }
    }
    if (found == 0) error(n, "for_each: give one of glob, list, lines, command");
  }

  void too_many_items(const YAML::Node& n, std::size_t count) {
    if (count > limits::items)
      error(n, fmt::format("for_each: {} items, more than the {} one step takes", count,
                           limits::items));
  }

  std::string m_file;
  const Machine& m_machine;
  std::error_code m_ec;
  std::vector<std::string> m_placeholders;  // extra placeholder names (compose)
  // The compose files' services, to check `{exec NAME}` and `{wait NAME…}` against;
  // nullopt when a file could not be read (its lint says why) or there is no compose.
  std::optional<std::vector<std::string>> m_services;

  // What is wrong with the services `{exec ARG}` / `{wait ARG}` name, or "". A name built
  // from a variable (`$SVC`) cannot be known before the run: not checked.
  std::string service_error(const std::string& name, const std::string& arg) const {
    if (name != "exec" && name != "wait") return "";
    std::vector<std::string> named;
    std::istringstream words(arg);
    for (std::string w; words >> w;) named.push_back(w);
    if (named.empty()) return fmt::format("{{{}}} needs a service: {{{} SERVICE}}", name, name == "exec" ? "exec" : "wait");
    if (name == "exec" && named.size() > 1)
      return fmt::format("{{exec {}}}: one service (the command goes after the braces)", arg);
    // A file with no service (yet) checks nothing: better no error than a wrong one.
    if (!m_services || m_services->empty()) return "";
    std::string all;
    for (const auto& s : *m_services) all += (all.empty() ? "" : ", ") + s;
    for (const auto& w : named) {
      if (w.find('$') != std::string::npos) continue;
      if (std::find(m_services->begin(), m_services->end(), w) != m_services->end()) continue;
      const std::string hint = util::did_you_mean(w, *m_services);
      return fmt::format("{{{} {}}}: the compose file has no service '{}'{}; services: {}", name, arg, w,
                         hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint), all);
    }
    return "";
  }
  std::vector<Diagnostic> m_errors;
  std::set<std::string> m_captured;
  std::set<std::string> m_secret_names;
  std::set<std::string> m_names;
};

}  // namespace


Pipeline load_string(const std::string& text, const std::string& path, const Machine& machine) {
  Pipeline p = Loader(path, machine).load(text);
  std::error_code ec;
  fs::path dir = fs::absolute(fs::path(path), ec).parent_path();
  p.base_dir = dir.string();
  p.source = path;
  return p;
}

std::string read_pipeline_file(const std::string& path) {
  // One byte past the bound tells it is passed: a FIFO or /dev/zero never ends, and a
  // huge file need not be read whole to be refused.
  auto text = util::read_file(path, limits::file_bytes + 1);
  if (!text) {
    throw LoadError(
        {{path, 1, 1, fmt::format("cannot read the pipeline file: {}", std::strerror(errno))}});
  }
  if (text->size() > limits::file_bytes) {
    std::error_code ec;
    const auto size = fs::is_regular_file(path, ec) ? fs::file_size(path, ec) : 0;
    throw LoadError({{path, 1, 1,
                      fmt::format("the file has {}more than the {} MiB a pipeline file may have",
                                  ec || size == 0 ? "" : fmt::format("{} bytes, ", size),
                                  limits::file_bytes >> 20)}});
  }
  return std::move(*text);
}

Pipeline load_file(const std::string& path, const Machine& machine) {
  return load_string(read_pipeline_file(path), path, machine);
}

}  // namespace pcr::config
