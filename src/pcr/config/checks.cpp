#include <pcr/config/checks.hpp>
#include <pcr/config/limits.hpp>
#include <pcr/config/loader.hpp>
#include <pcr/docker/compose.hpp>
#include <pcr/docker/hosts.hpp>
#include <pcr/util/shell.hpp>
#include <pcr/util/text.hpp>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace pcr::config {

using namespace pcr::pipeline;

std::vector<std::string> secret_values(const Pipeline& p) {
  // Every value a secret's name may have in a job: pcr's environment, the pipeline's env,
  // a step's (`defaults:` env is in every step's), a host's, an extension's (compose:
  // env:). All of them are masked, and each also as pcr may show it: with its control
  // characters made visible (a multi-line key shown as `\n`), and as a shell word in a
  // command (an item quoted: a quote inside becomes '\'').
  std::vector<std::string> values;
  const auto add = [&](const Env& env, const std::string& name) {
    for (const auto& [k, v] : env)
      if (k == name && !v.empty()) values.push_back(v);
  };
  for (const auto& name : p.secrets) {
    if (const char* value = std::getenv(name.c_str()); value && *value) values.emplace_back(value);
    add(p.env, name);
    for (const auto* steps : {&p.steps, &p.cleanup})
      for (const auto& step : *steps) add(step.options.env, name);
    for (const auto& host : p.hosts) add(host.env, name);
    for (const auto& ext : p.extensions) add(ext.fixed_env, name);
  }
  std::vector<std::string> secrets;
  for (const auto& v : values) {
    const std::string quoted = util::shell_quote_inside(v);
    for (const auto& form : {v, quoted, util::visible(v), util::visible(quoted)})
      if (std::find(secrets.begin(), secrets.end(), form) == secrets.end()) secrets.push_back(form);
  }
  return secrets;
}

Machine docker_machine() {
  Machine m;
  m.context_endpoint = docker::context_endpoint;
  m.compose_version = [] { return docker::detect_compose_version(); };
  return m;
}

namespace detail {

// The line (1-based) where a second YAML document starts to hold something, or 0. A
// document ends at a line that begins with `---` or `...` (YAML forbids such a line
// inside any scalar); what follows it, but for blank lines, comments and more markers (an
// empty document), is another document. A text scan: yaml-cpp's LoadAll loops forever on
// some broken input (a lone ",").
int second_document_line(std::string_view text) {
  const auto is_marker = [](std::string_view line) {
    return (line.substr(0, 3) == "---" || line.substr(0, 3) == "...") &&
           (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r');
  };
  const auto is_empty = [](std::string_view line) {
    const auto at = line.find_first_not_of(" \t\r");
    return at == std::string_view::npos || line[at] == '#';
  };
  bool content = false, ended = false;
  int number = 0;
  for (std::size_t at = 0; at <= text.size();) {
    const std::size_t nl = std::min(text.find('\n', at), text.size());
    const std::string_view line = text.substr(at, nl - at);
    ++number;
    at = nl + 1;
    if (is_marker(line)) {
      const std::string_view rest = line.substr(3);
      if (ended && !is_empty(rest)) return number;  // "--- value": a document on the marker line
      if (content) ended = true;                    // the first document's end
      if (!is_empty(rest) && !ended) content = true;
      continue;
    }
    if (is_empty(line) || line[0] == '%') continue;  // a directive (%YAML) belongs to a marker
    if (ended) return number;
    content = true;
  }
  return 0;
}

// Names are checked by hand, not by a regex: linear, no recursion, whatever their length.
bool valid_var(const std::string& v) {
  if (v.empty() || std::isdigit(static_cast<unsigned char>(v[0]))) return false;
  return std::all_of(v.begin(), v.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

bool valid_host_name(const std::string& v) {
  if (v.empty() || !std::isalnum(static_cast<unsigned char>(v[0]))) return false;
  return std::all_of(v.begin(), v.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

// unix://, tcp://, ssh://, fd:// or npipe:// and something after it, on one line.
bool docker_host_value(const std::string& v) {
  const size_t sep = v.find("://");
  if (sep == std::string::npos || sep + 3 == v.size()) return false;
  const std::string scheme = v.substr(0, sep);
  if (scheme != "unix" && scheme != "tcp" && scheme != "ssh" && scheme != "fd" &&
      scheme != "npipe")
    return false;
  return std::none_of(v.begin(), v.end(),
                      [](char c) { return static_cast<unsigned char>(c) < 0x20; });
}

// Whether `run` uses {project}, {compose} or {exec ...} (and not the escaped `{{`).
bool uses_worker_placeholder(const std::string& run) {
  for (size_t i = 0; (i = run.find('{', i)) != std::string::npos; ++i) {
    if (i > 0 && run[i - 1] == '{') continue;
    for (std::string_view name : {"project", "compose", "exec", "wait"}) {
      if (run.compare(i + 1, name.size(), name) != 0) continue;
      const size_t after = i + 1 + name.size();
      if (after < run.size() && (run[after] == '}' || run[after] == ' ')) return true;
    }
  }
  return false;
}

// Walks the document as the loader will read it, every alias (*name) counted as a copy
// of what it names, and stops past limits::expanded_*: a small file whose aliases repeat a
// big value thousands of times (or nest: "billion laughs") costs bounded time and memory.
// Iterative: the depth of the document does not reach the stack. Counted as pushed, so
// the stack holds at most limits::expanded_nodes: an anchor naming itself (`&a [1, 2,
// *a]`) is a cycle, each visit of which pushed its children again (fuzzing found the
// stack at gigabytes). Refused at the collection being expanded.
std::optional<std::pair<YAML::Node, std::string>> over_budget(const YAML::Node& root) {
  std::size_t nodes = 1, bytes = 0;
  std::vector<YAML::Node> todo{root};
  std::optional<std::pair<YAML::Node, std::string>> over;
  const auto push = [&](const YAML::Node& parent, const YAML::Node& child) {
    if (++nodes > limits::expanded_nodes) {
      over.emplace(parent, fmt::format("the file holds more than {} values, counting each YAML alias "
                                       "(*name) as a copy of what it names (an alias inside the value "
                                       "it names never ends); pcr refuses a document this big",
                                       limits::expanded_nodes));
      return false;
    }
    todo.push_back(child);
    return true;
  };
  while (!todo.empty()) {
    const YAML::Node n = todo.back();  // a copy: assigning a YAML::Node rewrites its node
    todo.pop_back();
    if (n.IsScalar()) {
      bytes += n.Scalar().size();
      if (bytes > limits::expanded_bytes) {
        over.emplace(n, fmt::format("the file holds more than {} MiB of text, counting each YAML alias "
                                    "(*name) as a copy of what it names; pcr refuses a document this big",
                                    limits::expanded_bytes >> 20));
        return over;
      }
    } else if (n.IsSequence()) {
      for (const auto& child : n)
        if (!push(n, child)) return over;
    } else if (n.IsMap()) {
      for (auto it = n.begin(); it != n.end(); ++it)
        if (!push(n, it->first) || !push(n, it->second)) return over;
    }
  }
  return over;
}

}  // namespace detail

}  // namespace pcr::config
