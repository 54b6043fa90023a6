#pragma once

// What the docker tests share. The cluster: `db` serves a page naming its own project, `web` can
// fetch it; a named volume, so that volumes are checked too. `init: true` so containers stop at
// once. With `container_name`, web is also `${PROJECT_NAME}_web` for `docker exec`.

#include "../support/support.hpp"

#include <string>

namespace pcr::test {

// The engine the `docker.ready` fixture starts.
inline const std::string k_engine = "unix:///var/run/docker.sock";

// Containers, networks and volumes on engine `host` whose name contains `marker`, one per line.
inline std::string leftovers_on(const std::string& host, const std::string& marker) {
  const std::string d = "docker -H " + host;
  return sh("{ " + d + " ps -a --format '{{.Names}}'; " + d + " network ls --format '{{.Name}}'; " + d +
            " volume ls --format '{{.Name}}'; } | grep -F '" + marker + "' || true");
}

inline std::string cluster_compose(bool container_name) {
  return std::string(R"Y(version: "2.4"
services:
  db:
    image: pcr-busybox:test
    init: true
    command: ["sh", "-c", "mkdir -p /www && echo db-of-$$PROJECT_NAME > /www/index.html && httpd -f -p 8080 -h /www"]
    environment:
      PROJECT_NAME: ${PROJECT_NAME}
    volumes: [data:/data]
  web:
    image: pcr-busybox:test
    init: true
)Y") + (container_name ? "    container_name: ${PROJECT_NAME}_web\n" : "") + R"Y(    command: ["sleep", "3600"]
volumes:
  data: {}
)Y";
}

}  // namespace pcr::test
