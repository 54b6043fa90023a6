#!/usr/bin/env bash
# The compose example (4 clusters of an app and its PostgreSQL, six tests on 4 workers)
# on one Docker engine vs spread over two engines on this machine (2 workers each). Both
# engines run on the same cores, so the ratio measures what spreading costs (placement,
# probing, per-host bookkeeping), not extra hardware. Needs Docker; starts both engines
# (tests/docker/ensure_docker.sh, tests/docker/second_docker.sh) and builds the
# example's image on the first one when missing (about 1.5 min, once).
#   bench/hosts.sh [PCR_BINARY]      (REPEAT=3)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
pcr=$(realpath "${1:-build/pcr}")
repeat=${REPEAT:-3}
tests/docker/ensure_docker.sh > /dev/null
two=$(tests/docker/second_docker.sh start)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r examples/compose/. "$work/"
(cd "$work" && ./build-images.sh > /dev/null)
steps='steps:
  - name: image
    per_host: true
    run: docker image inspect pcr-example-postgres:15 > /dev/null 2>&1 || docker -H unix:///var/run/docker.sock save pcr-example-postgres:15 | docker load
    timeout: 10m
  - name: up
    parallel: 4
    run: docker-compose up -d 2>&1 && until {exec db} pg_isready -q -h localhost; do sleep 0.5; done
    timeout: 3m
  - name: tests
    workers: 4
    for_each: {glob: "tests/*_test.sh"}
    run: "{exec app} sh /{items}"
    timeout: 2m'
printf 'name: shop\nhosts:\n  - {name: one, docker: "unix:///var/run/docker.sock", workers: 4}\ncompose: {file: docker-compose.yml}\n%s\n' \
  "$steps" > "$work/one.yaml"
printf 'name: shop\nhosts:\n  - {name: one, docker: "unix:///var/run/docker.sock", workers: 2}\n  - {name: two, docker: "%s", workers: 2}\ncompose: {file: docker-compose.yml}\n%s\n' \
  "$two" "$steps" > "$work/two.yaml"
"$pcr" run --no-color "$work/two.yaml" > "$work/warmup" || { cat "$work/warmup"; exit 1; }  # loads the image on two

# Seconds of step $2 (or the whole run: "run") in the JSON log $1.
seconds_of() {
  if [ "$2" = run ]; then grep '"event":"run_end"' "$1"; else grep '"event":"step_end"' "$1" | grep "\"step\":\"$2\""; fi |
    sed 's/.*"duration_ms":\([0-9]*\).*/\1/' | awk '{print $1 / 1000}'
}
measure() {  # $1: one|two
  for ((i = 0; i < repeat; i++)); do
    "$pcr" run --no-color --json "$work/$1-$i.json" "$work/$1.yaml" > "$work/out" || { cat "$work/out"; exit 1; }
  done
  for what in run up tests; do
    for ((i = 0; i < repeat; i++)); do seconds_of "$work/$1-$i.json" "$what"; done | median
  done | paste -sd' '
}
read -r one_run one_up one_tests <<< "$(measure one)"
read -r two_run two_up two_tests <<< "$(measure two)"
ratio() { echo "$1 / $2" | bc -l; }
printf 'compose example, median of %d, one engine (4 workers) vs two engines (2 + 2) on the same cores:\n' "$repeat"
printf '  whole run      %6.2f s  %6.2f s  ratio %.2f\n' "$one_run" "$two_run" "$(ratio "$two_run" "$one_run")"
printf '  up (4 clusters)%6.2f s  %6.2f s  ratio %.2f\n' "$one_up" "$two_up" "$(ratio "$two_up" "$one_up")"
printf '  tests step     %6.2f s  %6.2f s  ratio %.2f\n' "$one_tests" "$two_tests" "$(ratio "$two_tests" "$one_tests")"
