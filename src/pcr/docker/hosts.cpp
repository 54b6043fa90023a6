#include <pcr/docker/hosts.hpp>
#include <pcr/proc/capture.hpp>
#include <pcr/util/shell.hpp>

#include <fmt/format.h>

#include <cstdio>

namespace pcr::docker {

util::Expected<std::string> context_endpoint(const std::string& name) {
  using Result = util::Expected<std::string>;
  auto run = proc::run_capture(
      {"docker", "context", "inspect", "--format", "{{.Endpoints.docker.Host}}", name},
      std::chrono::seconds(20));
  if (!run.error.empty()) return Result::failure("cannot run `docker context inspect`: " + run.error);
  std::string out = run.output;
  const int status = run.timed_out ? -1 : run.exit_code;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == ' ')) out.pop_back();
  if (status != 0 || out.empty() || out.find("://") == std::string::npos)
    return Result::failure(out.empty() ? "`docker context inspect` failed" : out);
  return out;
}

pipeline::Host docker_host(const std::string& name, const std::string& value, unsigned workers) {
  pipeline::Host h;
  h.name = name;
  h.workers = workers;
  h.address = value;
  h.env = {{"DOCKER_HOST", value}};
  return h;
}

void use_hosts(pipeline::Pipeline& p, std::vector<pipeline::Host> hosts) {
  p.hosts = std::move(hosts);
  p.host_probe = k_host_probe;
}

std::string docker_host_of(const pipeline::Env& env) {
  for (const auto& [k, v] : env)
    if (k == "DOCKER_HOST") return v;
  return "";
}

}  // namespace pcr::docker
