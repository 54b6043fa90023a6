#!/usr/bin/env bash
# Dispatch of trivial jobs against xargs, on a quiet disk and on a busy one, as ratios:
#   bench/dispatch.sh [PCR_BINARY]     (default: build/pcr; REPEAT=5, JOBS=3000)
# JOBS `true` on 2 workers (pcr: a for_each pool; xargs -P2). "Busy": a writer beside the
# run fills the disk the spool lives on (`dd` of 1.5 GB with fsync, in a loop), as another
# test suite on the same CI machine would. A job that prints nothing should cost pcr no
# file: its spool is made on the first byte.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
pcr=$(realpath "${1:-build/pcr}")
repeat=${REPEAT:-5}
jobs=${JOBS:-3000}
[ -x "$pcr" ] || { echo "no pcr binary at $pcr: run scripts/setup.sh"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/pcr-dispatch.XXXXXX")
busy_pid=
trap '[ -n "$busy_pid" ] && kill "$busy_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
seq "$jobs" > items
printf 'steps:\n  - workers: 2\n    for_each: {command: "cat %s/items"}\n    run: "true"\n' "$work" > ci.yaml

declare -A secs
measure() {
  local name=$1 cmd=$2 times=()
  for ((i = 0; i < repeat; i++)); do
    local start end
    start=$(date +%s.%N)
    bash -c "$cmd" > /dev/null
    end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc -l)")
  done
  secs[$name]=$(printf '%s\n' "${times[@]}" | median)
  printf '  %-14s %7.2f s   (%s)\n' "$name" "${secs[$name]}" "$(printf '%.2f ' "${times[@]}")"
}

echo "machine: $(nproc) cores; repeat=$repeat; $jobs jobs on 2 workers; spool in ${TMPDIR:-/tmp}"
echo "quiet disk"
measure xargs "xargs -P2 -n1 true < items"
measure pcr "'$pcr' run --no-color --timings /dev/null ci.yaml"
quiet_ratio=$(ratio "${secs[pcr]}" "${secs[xargs]}")

echo "busy disk (dd writing 1.5 GB with fsync, in a loop, beside)"
(while :; do dd if=/dev/zero of="$work/busy" bs=1M count=1500 conv=fsync status=none; rm -f "$work/busy"; done) &
busy_pid=$!
sleep 2
measure xargs "xargs -P2 -n1 true < items"
measure pcr "'$pcr' run --no-color --timings /dev/null ci.yaml"
busy_ratio=$(ratio "${secs[pcr]}" "${secs[xargs]}")

echo
echo "pcr / xargs: quiet $quiet_ratio, busy $busy_ratio (target ≤ 1.0 on both)"
