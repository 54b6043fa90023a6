#include <fmt/format.h>

#include <sys/stat.h>

// GCC 12 reports a dangling pointer inside yaml-cpp's node/impl.h for lookups on const
// nodes; the pointer is yaml-cpp's own and valid (a known false positive of that release).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
#include <yaml-cpp/yaml.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include <pcr/docker/lint.hpp>
#include <pcr/util/io.hpp>

#include <cctype>
#include <cerrno>
#include <cstring>

namespace pcr::docker {

namespace {

std::string where(const std::string& file, const YAML::Node& n) {
  return fmt::format("{}:{}:{}", file, n.Mark().line + 1, n.Mark().column + 1);
}

// Whether compose substitutes a variable in `s` ($NAME, ${NAME...}); `$$` is a literal `$`,
// so "fixed_$${X}" is as fixed as "fixed".
bool has_variable(const std::string& s) {
  for (std::size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] != '$') continue;
    const char next = s[i + 1];
    if (next == '$') {
      ++i;
      continue;
    }
    if (next == '{' || next == '_' || std::isalpha(static_cast<unsigned char>(next))) return true;
  }
  return false;
}

// The host part of a short port syntax entry, or "" when none is published on a fixed port:
// "8080:80", "127.0.0.1:8080:80", "8080:80/udp" publish 8080; "80" and "127.0.0.1::80" do not.
std::string fixed_host_port(const std::string& spec) {
  if (has_variable(spec)) return "";
  std::string s = spec.substr(0, spec.find('/'));
  size_t last = s.rfind(':');
  if (last == std::string::npos) return "";
  std::string host = s.substr(0, last);
  size_t ip = host.rfind(':');
  if (ip != std::string::npos) host = host.substr(ip + 1);
  return host;
}

// `key` of a service, also where a YAML merge key brings it (`<<: *base`, `<<: [*a, *b]`),
// as compose applies them: the service's own keys first, then the merged maps in order.
// Merged maps may merge others; `budget` bounds the walk (anchors can repeat a map, or
// name themselves).
YAML::Node merged_key(const YAML::Node& map, const std::string& key, int& budget) {
  if (--budget < 0 || !map.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  if (const YAML::Node own = map[key]) return own;
  const YAML::Node merge = map["<<"];
  if (!merge) return YAML::Node(YAML::NodeType::Undefined);
  if (merge.IsMap()) return merged_key(merge, key, budget);
  if (merge.IsSequence())
    for (const auto& m : merge)
      if (const YAML::Node found = merged_key(m, key, budget)) return found;
  return YAML::Node(YAML::NodeType::Undefined);
}

YAML::Node service_key(const YAML::Node& svc, const std::string& key) {
  int budget = 1000;
  return merged_key(svc, key, budget);
}

bool is_bind_source(const std::string& source) {
  return !source.empty() && (source[0] == '.' || source[0] == '/' || source[0] == '~');
}

}  // namespace

bool is_remote(const std::string& docker_host) {
  for (const char* scheme : {"tcp://", "ssh://"}) {
    if (docker_host.rfind(scheme, 0) != 0) continue;
    std::string rest = docker_host.substr(std::string(scheme).size());
    rest = rest.substr(rest.find('@') == std::string::npos ? 0 : rest.find('@') + 1);
    std::string host = rest.substr(0, rest.find_first_of(":/"));
    if (rest.rfind("[::1]", 0) == 0) host = "::1";
    return !(host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0);
  }
  return false;
}

std::optional<std::vector<std::string>> compose_services(const std::vector<std::string>& files) {
  std::set<std::string> names;
  for (const auto& file : files) {
    // A FIFO or a device would block the read: only a regular file is looked at.
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    constexpr std::size_t k_max_bytes = 8u << 20;
    const auto text = util::read_file(file, k_max_bytes + 1);
    if (!text || text->size() > k_max_bytes) return std::nullopt;
    try {
      const YAML::Node root = YAML::Load(*text);
      const YAML::Node services = root["services"];
      if (!services) continue;  // a file that only adds networks or volumes
      if (!services.IsMap()) return std::nullopt;
      for (auto it = services.begin(); it != services.end(); ++it) names.insert(it->first.Scalar());
    } catch (const YAML::Exception&) {
      return std::nullopt;
    }
  }
  return std::vector<std::string>(names.begin(), names.end());
}

std::vector<std::string> lint_compose(const std::vector<std::string>& files,
                                      const std::string& docker_host) {
  return lint_compose(files, std::vector<LintHost>{{"", docker_host}});
}

std::vector<std::string> lint_compose(const std::vector<std::string>& files,
                                      const std::vector<LintHost>& hosts) {
  std::vector<std::string> out;
  std::vector<LintHost> remotes;
  for (const auto& h : hosts)
    if (is_remote(h.docker_host)) remotes.push_back(h);
  auto host_words = [](const LintHost& h) {
    return h.name.empty() ? h.docker_host : fmt::format("{} ({})", h.name, h.docker_host);
  };
  for (const auto& file : files) {
    // Bounded like a pipeline file: a compose file comes from the same pull request.
    constexpr std::size_t k_max_bytes = 8u << 20;
    const auto text = util::read_file(file, k_max_bytes + 1);
    if (!text) {
      out.push_back(fmt::format("{}:1:1: warning: cannot read the compose file: {}", file, std::strerror(errno)));
      continue;
    }
    if (text->size() > k_max_bytes) {
      out.push_back(fmt::format("{}:1:1: warning: the compose file has more than {} MiB: not checked", file,
                                k_max_bytes >> 20));
      continue;
    }
    YAML::Node root;
    try {
      root = YAML::Load(*text);
    } catch (const YAML::Exception& ex) {
      out.push_back(fmt::format("{}:{}:{}: warning: cannot read the compose file: {}", file,
                                ex.mark.line + 1, ex.mark.column + 1, ex.msg));
      continue;
    }
    auto services = root["services"];
    if (!services || !services.IsMap()) continue;
    for (auto it = services.begin(); it != services.end(); ++it) {
      const std::string name = it->first.Scalar();
      // A copy: `it->second` lives in a temporary that the iterator hands out.
      const YAML::Node svc = it->second;
      if (!svc.IsMap()) continue;
      if (auto cn = service_key(svc, "container_name"); cn && cn.IsScalar() && !has_variable(cn.Scalar()))
        out.push_back(fmt::format(
            "{}: warning: service {}: container_name '{}' is fixed, so only one worker's "
            "cluster can have it; use a variable, e.g. ${{PROJECT_NAME}}_{}",
            where(file, cn), name, cn.Scalar(), name));
      if (auto ports = service_key(svc, "ports"); ports && ports.IsSequence()) {
        for (const auto& p : ports) {
          std::string host;
          if (p.IsScalar())
            host = fixed_host_port(p.Scalar());
          else if (p.IsMap() && p["published"] && p["published"].IsScalar() &&
                   !has_variable(p["published"].Scalar()))
            host = p["published"].Scalar();
          if (!host.empty())
            out.push_back(fmt::format(
                "{}: warning: service {}: host port {} is fixed, so only one worker's cluster "
                "can publish it; publish no host port, or use a variable",
                where(file, p), name, host));
        }
      }
      for (const auto& remote : remotes) {
        const std::string host = host_words(remote);
        if (auto vols = service_key(svc, "volumes"); vols && vols.IsSequence()) {
          for (const auto& v : vols) {
            std::string source;
            if (v.IsScalar())
              source = v.Scalar().substr(0, v.Scalar().find(':'));
            else if (v.IsMap() && v["type"] && v["type"].Scalar() == "bind" && v["source"])
              source = v["source"].Scalar();
            if (v.IsScalar() && !is_bind_source(source)) continue;
            if (!source.empty())
              out.push_back(fmt::format(
                  "{}: warning: service {}: bind mount of {} will not exist on the remote docker "
                  "host {}",
                  where(file, v), name, source, host));
          }
        }
        if (auto build = service_key(svc, "build")) {
          out.push_back(fmt::format(
              "{}: warning: service {}: the build context is sent from here to {}; an image "
              "built there is not on other hosts",
              where(file, build), name, host));
        }
      }
    }
  }
  return out;
}

}  // namespace pcr::docker
