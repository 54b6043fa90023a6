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
    run: 'if [ "$CI_CLUSTER_REUSED" != true ]; then docker-compose up -d 2>&1; fi'
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

# `{exec}` cost: 200 jobs `{exec web} true` on 2 workers (clusters up first, in a set-up),
# against 200 `docker exec CONTAINER true` two at a time, in the same run.
cat > "$work/exec.yaml" << 'YAML'
name: benchexec
compose: {file: docker-compose.yml}
steps:
  - name: exec
    workers: 2
    setup: docker-compose up -d 2>&1
    for_each: {command: "seq 1 200"}
    run: "{exec web} true"
YAML
docker compose version > /dev/null 2>&1 && dc="docker compose" || dc=docker-compose
(cd "$work" && COMPOSE_PROJECT_NAME=benchexecref $dc up -d > /dev/null 2>&1)
ref=$(docker ps -q --filter label=com.docker.compose.project=benchexecref --filter label=com.docker.compose.service=web)
exec_pcr=() exec_ref=() setup=()
for ((i = 0; i < repeat; i++)); do
  start=$(date +%s.%N)
  "$pcr" run --no-color --json "$work/exec.jsonl" "$work/exec.yaml" > "$work/out" || { cat "$work/out"; exit 1; }
  end=$(date +%s.%N)
  # The step's time without its set-ups: from the first job's start to the last job's end.
  steps=$(python3 -c '
import json,sys,datetime
t=[json.loads(l) for l in open(sys.argv[1])]
ts=lambda e: datetime.datetime.fromisoformat(e["time"].replace("Z","+00:00")).timestamp()
jobs=[e for e in t if e.get("kind")=="job" and e.get("step")=="exec"]
print(max(ts(e) for e in jobs if e["event"]=="job_end")-min(ts(e) for e in jobs if e["event"]=="job_start"))' "$work/exec.jsonl")
  exec_pcr+=("$steps")
  start=$(date +%s.%N)
  seq 1 200 | xargs -P 2 -I{} docker exec "$ref" true
  end=$(date +%s.%N)
  exec_ref+=("$(echo "$end - $start" | bc -l)")
done
(cd "$work" && COMPOSE_PROJECT_NAME=benchexecref $dc down -t 1 > /dev/null 2>&1)
p=$(printf '%s\n' "${exec_pcr[@]}" | median)
r=$(printf '%s\n' "${exec_ref[@]}" | median)
printf '{exec web} true x200 on 2 workers: pcr %.2f s, docker exec x200 (xargs -P 2) %.2f s, ratio %.2f\n' \
  "$p" "$r" "$(echo "$p / $r" | bc -l)"

# Teardown of clusters whose services ignore SIGTERM (a plain `sleep` as PID 1).
cat > "$work/stubborn.yml" << 'YAML'
version: "2.4"
services:
  web:
    image: pcr-busybox:test
    command: ["sh", "-c", "trap '' TERM; while :; do sleep 0.2; done"]
YAML
cat > "$work/stubborn.yaml" << 'YAML'
name: benchstubborn
compose: {file: stubborn.yml}
steps:
  - name: up
    parallel: 4
    run: 'if [ "$CI_CLUSTER_REUSED" != true ]; then docker-compose up -d 2>&1; fi'
YAML
downs=()
for ((i = 0; i < repeat; i++)); do
  "$pcr" run --no-color --json "$work/down.jsonl" "$work/stubborn.yaml" > "$work/out" || { cat "$work/out"; exit 1; }
  downs+=("$(python3 -c '
import json,sys
print(max(json.loads(l)["duration_ms"] for l in open(sys.argv[1]) if "\"compose teardown\"" in l and "\"job_end\"" in l)/1000)' "$work/down.jsonl")")
done
printf 'teardown of 4 clusters of TERM-ignoring services: longest %.2f s (median of %d)\n' \
  "$(printf '%s\n' "${downs[@]}" | median)" "$repeat"

# Warm clusters: the start-up (the `up` step: 4 clusters) of a cold run against a second
# `--keep-clusters` run, which finds them up and unchanged.
cat > "$work/keep.yaml" << 'YAML'
name: benchkeep
compose: {file: docker-compose.yml}
steps:
  - name: up
    parallel: 4
    run: 'if [ "$CI_CLUSTER_REUSED" != true ]; then docker-compose up -d 2>&1; fi'
YAML
up_time() {  # the `up` step's duration_ms, in seconds, from the JSON events $1
  python3 -c '
import json,sys
print([json.loads(l)["duration_ms"] for l in open(sys.argv[1]) if "\"step_end\"" in l and "\"step\":\"up\"" in l][0]/1000)' "$1"
}
cold=() warm=()
for ((i = 0; i < repeat; i++)); do
  "$pcr" run --no-color --json "$work/cold.jsonl" "$work/keep.yaml" > "$work/out" || { cat "$work/out"; exit 1; }
  cold+=("$(up_time "$work/cold.jsonl")")
  "$pcr" run --no-color --keep-clusters "$work/keep.yaml" > "$work/out" 2>&1 || { cat "$work/out"; exit 1; }
  "$pcr" run --no-color --keep-clusters --json "$work/warm.jsonl" "$work/keep.yaml" > "$work/out" 2>&1 || { cat "$work/out"; exit 1; }
  warm+=("$(up_time "$work/warm.jsonl")")
  (cd "$work" && "$pcr" clean keep.yaml > /dev/null)
done
printf 'start-up of 4 clusters: cold %.2f s, kept (second --keep-clusters run) %.2f s\n' \
  "$(printf '%s\n' "${cold[@]}" | median)" "$(printf '%s\n' "${warm[@]}" | median)"
