#!/usr/bin/env bash
# Stragglers: a skewed workload on 4 workers, as makespan / lower bound.
#   bench/pool.sh [PCR_BINARY]     (SCALE=0.5 multiplies every duration)
# 40 jobs: 8 long (4 s), 12 medium (1 s), 20 short (0.3 s), the long ones listed last.
# The lower bound is max(total work / workers, longest job).
set -euo pipefail
cd "$(dirname "$0")/.."
pcr=$(realpath "${1:-build/pcr}")
scale=${SCALE:-0.5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LC_ALL=C

items=()
for i in $(seq -w 1 20); do items+=("short$i:$(echo "0.3 * $scale" | bc -l)"); done
for i in $(seq -w 1 12); do items+=("medium$i:$(echo "1 * $scale" | bc -l)"); done
for i in $(seq -w 1 8); do items+=("long$i:$(echo "4 * $scale" | bc -l)"); done
printf '%s\n' "${items[@]}" > "$work/items"
total=$(echo "(8 * 4 + 12 * 1 + 20 * 0.3) * $scale" | bc -l)
bound=$(echo "b = $total / 4; l = 4 * $scale; if (l > b) b = l; b" | bc -l)

pipeline() {  # $1: extra step keys
  cat << YAML
steps:
  - name: skewed
    workers: 4
    for_each: {lines: ITEMS}
$1
    run: for x in {items}; do sleep \${x#*:}; done
YAML
}
{ echo "steps:"; echo "  - name: list"; echo "    run: cat $work/items"; echo "    capture: ITEMS"; echo "    output: hide"; } > "$work/head.yaml"
make_file() { { cat "$work/head.yaml"; pipeline "$1" | tail -n +2; } > "$2"; }

wall() {  # wall-clock seconds of "$@", output discarded
  local start end
  start=$(date +%s.%N)
  "$@" > /dev/null || true
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}
report() { printf '  %-46s %6.2f s   %5.3f × bound\n' "$1" "$2" "$(echo "$2 / $bound" | bc -l)"; }

run_all() {
  make_file "" "$work/queue.yaml"
  make_file "    groups: 4" "$work/groups.yaml"
  make_file "    batch: 10" "$work/chunks.yaml"
  rm -f "$work"/*.json
  report "static contiguous groups of 10 (batch: 10)" "$(wall "$pcr" run --no-color --timings "$work/none1.json" "$work/chunks.yaml")"
  report "static round-robin groups (groups: 4)" "$(wall "$pcr" run --no-color --timings "$work/none2.json" "$work/groups.yaml")"
  report "queue, listed order (no timings)" "$(wall "$pcr" run --no-color --timings "$work/t.json" "$work/queue.yaml")"
  report "queue after one recorded run (longest first)" "$(wall "$pcr" run --no-color --timings "$work/t.json" "$work/queue.yaml")"
  report "groups: 4 after one recorded run" "$(wall "$pcr" run --no-color --timings "$work/t.json" "$work/groups.yaml")"
  local sorted
  sorted=$(sort -t: -k2 -g -r "$work/items")
  report "reference: xargs -P4, longest first by hand" "$(wall bash -c "echo '$sorted' | xargs -P4 -I{} sh -c 'x={}; sleep \${x#*:}'")"
}

printf 'work %.2f s on 4 workers; lower bound %.2f s\n' "$total" "$bound"
echo "A. the issue's layout: short, then medium, then the long ones last"
run_all
echo "B. the same 40 jobs listed in an order unrelated to their length (a fixed shuffle)"
printf '%s\n' "${items[@]}" | shuf --random-source=<(yes pcr) > "$work/items"
run_all
