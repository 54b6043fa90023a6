#!/usr/bin/env bash
# Make a Docker engine answer, and build the tests' busybox image: FROM scratch with
# the static busybox copied in (no registry is needed).
#   tests/docker/ensure_docker.sh     exit 0 when `docker info` answers and the image exists
set -euo pipefail
image=${PCR_TEST_IMAGE:-pcr-busybox:test}

for tool in docker dockerd docker-compose; do
  command -v "$tool" > /dev/null || { echo "ensure_docker: $tool is missing (scripts/test.sh installs docker.io docker-compose)"; exit 1; }
done
# A process that exists and is not a zombie (a killed daemon may linger as one).
alive() { [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f1)" != Z ]; }
if ! docker info > /dev/null 2>&1; then
  # A dockerd that was killed leaves its pid file behind and the next one refuses to start.
  if [ -f /var/run/docker.pid ] && ! alive "$(cat /var/run/docker.pid)"; then
    rm -f /var/run/docker.pid
  fi
  [ -f /var/run/docker.pid ] || (setsid nohup dockerd > /tmp/pcr-dockerd.log 2>&1 &)
  for _ in $(seq 120); do
    docker info > /dev/null 2>&1 && break
    sleep 0.5
  done
  docker info > /dev/null 2>&1 || { echo "ensure_docker: dockerd did not answer in 60 s"; tail -20 /tmp/pcr-dockerd.log 2>/dev/null; exit 1; }
fi
if ! docker image inspect "$image" > /dev/null 2>&1; then
  busybox=$(command -v busybox || echo /bin/busybox)  # busybox-static: statically linked
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
  cp "$busybox" "$ctx/busybox"
  printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nCMD ["sh"]\n' > "$ctx/Dockerfile"
  docker build -q -t "$image" "$ctx" > /dev/null 2>&1 || docker build -t "$image" "$ctx"
fi
echo "docker ready: $(docker info --format '{{.ServerVersion}}'), image $image"
