#!/usr/bin/env bash
# Run the example that fits this machine: the compose example (four isolated clusters of
# an app and its PostgreSQL) when a Docker engine answers — started here when it is
# installed and we may (root, not running yet) — else one that passes, saying why Docker
# could not be used. Run scripts/setup.sh first (it installs Docker, Compose and
# debootstrap from Debian when missing).
set -uo pipefail
cd "$(dirname "$0")/.."
pcr=build/pcr
why=""
docker_ok() {
  for tool in docker docker-compose debootstrap; do
    command -v "$tool" > /dev/null || { why="$tool is not installed"; return 1; }
  done
  docker info > /dev/null 2>&1 && return 0
  if [ "$(id -u)" -ne 0 ]; then
    why="no Docker engine answers, and only root may start one here"
    return 1
  fi
  command -v dockerd > /dev/null || { why="dockerd is not installed"; return 1; }
  tests/docker/ensure_docker.sh > /dev/null 2>&1 && return 0
  why="dockerd would not start (see /tmp/pcr-dockerd.log)"
  return 1
}
if docker_ok; then
  echo "example: Docker is here, running examples/compose (the first run builds a PostgreSQL image, ~1.5 min)"
  exec "$pcr" run examples/compose/ci.yaml
fi
echo "example: not running the compose example: $why"
echo "example: running examples/passing instead (examples/basic shows a timeout and a failed run)"
exec "$pcr" run examples/passing/ci.yaml
