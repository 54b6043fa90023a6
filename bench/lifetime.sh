#!/usr/bin/env bash
# What the supervisor / engine split (docs/pipeline.md, "If pcr itself is killed") costs:
# start-up and dispatch with it (the default) and without it (PCR_SUPERVISOR=0, one
# process, as before the split), measured in the same run, medians of REPEAT.
#   bench/lifetime.sh [PCR_BINARY]   (REPEAT=3, RUNS=200 start-ups, JOBS=2000)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
pcr=$(realpath "${1:-build/pcr}")
repeat=${REPEAT:-3}
runs=${RUNS:-200}
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
startups() {  # ms per start-up of a one-job pipeline, PCR_SUPERVISOR=$1
  local s e
  s=$(date +%s.%N)
  for ((i = 0; i < runs; i++)); do PCR_SUPERVISOR=$1 "$pcr" run "$work/one.yaml" > /dev/null; done
  e=$(date +%s.%N)
  echo "($e - $s) * 1000 / $runs" | bc -l
}

echo "machine: $(nproc) cores; repeat=$repeat"
for mode in 0 1; do
  st[$mode]=$(for ((r = 0; r < repeat; r++)); do startups $mode; done | median)
  dp[$mode]=$(for ((r = 0; r < repeat; r++)); do
    time_of env PCR_SUPERVISOR=$mode "$pcr" run --timings "$work/t$mode.json" "$work/many.yaml"
  done | median)
done
printf 'start-up, one job:     one process %6.2f ms   supervised %6.2f ms   +%.2f ms\n' \
  "${st[0]}" "${st[1]}" "$(echo "${st[1]} - ${st[0]}" | bc -l)"
printf 'dispatch, %s jobs:   one process %6.2f s    supervised %6.2f s    ratio %.3f\n' \
  "$jobs" "${dp[0]}" "${dp[1]}" "$(echo "${dp[1]} / ${dp[0]}" | bc -l)"
