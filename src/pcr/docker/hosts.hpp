#pragma once

#include <pcr/pipeline/model.hpp>
#include <pcr/util/expected.hpp>

#include <optional>
#include <string>
#include <vector>

namespace pcr::docker {

// What pcr runs, with a host's DOCKER_HOST, to ask whether its engine answers.
// Its stderr is the reason shown when the host does not answer.
inline constexpr const char* k_host_probe = "docker info --format '{{.ServerVersion}}' > /dev/null";

// The DOCKER_HOST value of docker context `name` (`docker context inspect`, which reads
// the CLI's own files and asks no engine), or why there is none.
util::Expected<std::string> context_endpoint(const std::string& name);

// A docker host of `hosts:`: jobs of its workers get DOCKER_HOST=`docker_host`.
pipeline::Host docker_host(const std::string& name, const std::string& docker_host, unsigned workers);

// Spread `pipeline`'s workers over `hosts`, each probed with `docker info`.
void use_hosts(pipeline::Pipeline& pipeline, std::vector<pipeline::Host> hosts);

// The DOCKER_HOST a host gives its jobs ("" when it sets none).
std::string docker_host_of(const pipeline::Env& env);

}  // namespace pcr::docker
