#!/usr/bin/env bash
# Start-up against a shell, and what the supervisor / engine split (docs/pipeline.md, "If
# pcr itself is killed") costs.
# Start-up: whole processes, paired (bench/startup.c: each round runs every command once,
# in turn; medians of ROUNDS, and of the per-round ratios to `sh -c true`): `sh -c true`,
# `pcr --version`, a one-job pipeline (`run: "true"`) as it runs by default, with
# PCR_SUPERVISOR=0 (one process) and with its spool on tmpfs (TMPDIR=/dev/shm).
# Dispatch: 2,000 `true` with and without the supervisor, medians of REPEAT.
#   bench/lifetime.sh [PCR_BINARY]   (ROUNDS=300, REPEAT=3, JOBS=2000)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
pcr=$(realpath "${1:-build/pcr}")
repeat=${REPEAT:-3}
rounds=${ROUNDS:-300}
jobs=${JOBS:-2000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf 'steps:\n  - run: "true"\n' > "$work/one.yaml"
printf 'steps:\n  - workers: 2\n    for_each: {command: "seq %s"}\n    run: "true"\n    output: hide\n' "$jobs" > "$work/many.yaml"

time_of() {  # seconds for "$@"
  local s e
  s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N)
  echo "$e - $s" | bc -l
}
cc -O2 -o "$work/startup" bench/startup.c
echo "machine: $(nproc) cores; start-up: $rounds paired rounds; dispatch: repeat=$repeat"
# From the pipeline's folder, as a user runs it: its .pcr/ (timings, last run) is there,
# written by a first run before the rounds.
(cd "$work" && "$pcr" run one.yaml > /dev/null)
(cd "$work" && ./startup "$rounds" "sh -c true=sh -c true" "pcr --version=$pcr --version" \
  "pcr run (one job)=$pcr run one.yaml" "  one process=PCR_SUPERVISOR=0 $pcr run one.yaml" \
  "  spool on tmpfs=TMPDIR=/dev/shm $pcr run one.yaml")
for mode in 0 1; do
  dp[$mode]=$(for ((r = 0; r < repeat; r++)); do
    time_of env PCR_SUPERVISOR=$mode "$pcr" run --timings "$work/t$mode.json" "$work/many.yaml"
  done | median)
done
printf 'dispatch, %s jobs:   one process %6.2f s    supervised %6.2f s    ratio %.3f\n' \
  "$jobs" "${dp[0]}" "${dp[1]}" "$(echo "${dp[1]} / ${dp[0]}" | bc -l)"
