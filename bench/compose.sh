#!/usr/bin/env bash
# Bringing up and tearing down 4 compose clusters (2 services each), in parallel vs one
# after another, through pcr itself (-j 4 vs -j 1). Needs a Docker engine:
# tests/docker/ensure_docker.sh starts one and builds the busybox image.
#   bench/compose.sh [PCR_BINARY]      (REPEAT=3)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
pcr=$(realpath "${1:-build/pcr}")
repeat=${REPEAT:-3}
tests/docker/ensure_docker.sh > /dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/docker-compose.yml" << 'YAML'
version: "2.4"
services:
  db:
    image: pcr-busybox:test
    init: true
    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && httpd -f -p 8080 -h /www"]
  web:
    image: pcr-busybox:test
    init: true
    command: ["sleep", "3600"]
YAML
cat > "$work/ci.yaml" << 'YAML'
name: benchcompose
compose: {file: docker-compose.yml}
steps:
  - name: up
    parallel: 4
    run: docker-compose up -d 2>&1
YAML
run() {  # $1: -j value
  for ((i = 0; i < repeat; i++)); do
    start=$(date +%s.%N)
    "$pcr" run --no-color -j "$1" "$work/ci.yaml" > "$work/out" || { cat "$work/out"; exit 1; }
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
  done | median
}
parallel=$(run 4)
serial=$(run 1)
printf 'up + teardown of 4 clusters: in parallel %.2f s, one after another %.2f s, ratio %.2f\n' \
  "$parallel" "$serial" "$(echo "$parallel / $serial" | bc -l)"
