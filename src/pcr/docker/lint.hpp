#pragma once

#include <optional>
#include <string>
#include <vector>

namespace pcr::docker {

// What in compose `files` breaks isolation between workers' clusters, or cannot work on a
// remote docker host, as "file:line:column: warning: …" lines:
// - a fixed `container_name` (one without a `${VAR}`): two workers' projects would claim
//   the same name;
// - a fixed host port (`"8080:80"`, `published: 8080`): only one worker can bind it;
// - bind mounts (`./src:/app`, `type: bind`) and build contexts, when `docker_host` is a
//   remote engine (tcp:// or ssh://): the path is looked up on that host, not here.
// A file that cannot be read or parsed gives one warning saying so.
// The services the compose `files` define, in name order; nullopt when one of them cannot
// be read (then nothing can be checked against them). Bounded like lint_compose.
std::optional<std::vector<std::string>> compose_services(const std::vector<std::string>& files);

std::vector<std::string> lint_compose(const std::vector<std::string>& files, const std::string& docker_host);

// A docker host as lint names it: its name in `hosts:` (may be empty) and DOCKER_HOST value.
struct LintHost {
  std::string name;
  std::string docker_host;
};

// The same for several hosts: the isolation warnings once, the remote ones per remote host.
std::vector<std::string> lint_compose(const std::vector<std::string>& files, const std::vector<LintHost>& hosts);

// Whether `docker_host` (a DOCKER_HOST value) is an engine on another machine: tcp:// or
// ssh:// to anything but this machine's loopback.
bool is_remote(const std::string& docker_host);

}  // namespace pcr::docker
