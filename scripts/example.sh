#!/usr/bin/env bash
# Run the example that fits this machine: the compose example (four isolated clusters of
# an app and its PostgreSQL) when a Docker engine answers — started here when it is
# installed and we may — else the basic one. Run scripts/setup.sh first.
set -uo pipefail
cd "$(dirname "$0")/.."
pcr=build/pcr
docker_ok() {
  command -v docker > /dev/null && command -v docker-compose > /dev/null && command -v debootstrap > /dev/null || return 1
  docker info > /dev/null 2>&1 && return 0
  [ "$(id -u)" -eq 0 ] && command -v dockerd > /dev/null && tests/docker/ensure_docker.sh > /dev/null 2>&1
}
if docker_ok; then
  echo "example: Docker is here, running examples/compose (the first run builds a PostgreSQL image, ~1.5 min)"
  exec "$pcr" run examples/compose/ci.yaml
fi
echo "example: no usable Docker engine (or no docker-compose/debootstrap), running examples/basic"
exec "$pcr" run examples/basic/ci.yaml
