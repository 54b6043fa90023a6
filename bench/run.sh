#!/usr/bin/env bash
# pcr against the tools users would pick instead, measured in the same run, as ratios.
#   bench/run.sh [PCR_BINARY]        (default: build/pcr; REPEAT=3, JOBS=5000, GIB=1)
# Times are whole-process wall-clock medians; RSS is the tool's own peak (VmHWM of the
# process itself, not of the jobs it runs).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
pcr=$(realpath "${1:-build/pcr}")
repeat=${REPEAT:-3}
jobs=${JOBS:-5000}
gib=${GIB:-1}
bytes=$((gib * 1024 * 1024 * 1024))

need=()
command -v parallel > /dev/null || need+=(parallel)
command -v xargs > /dev/null || need+=(findutils)
if ((${#need[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get install -y -qq "${need[@]}" > /dev/null
fi
[ -x "$pcr" ] || { echo "no pcr binary at $pcr: run scripts/setup.sh"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LC_ALL=C

# measure NAME CMD...: run CMD (through bash -c, which execs a simple command so the pid
# is the tool's own) REPEAT times; record the median seconds and the median of the
# tool's own peak RSS in KiB. Items come from files, never through a pipeline, so that
# the measured process is the tool and not a shell.
declare -A secs rss
measure() {
  local name=$1; shift
  local times=() peaks=()
  for ((i = 0; i < repeat; i++)); do
    local start end peak=0 pid
    start=$(date +%s.%N)
    bash -c "$*" &
    pid=$!
    while kill -0 "$pid" 2> /dev/null; do
      local hwm
      hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2> /dev/null || true)
      [ -n "$hwm" ] && [ "$hwm" -gt "$peak" ] && peak=$hwm
      sleep 0.02
    done
    wait "$pid" || true
    end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc -l)")
    peaks+=("$peak")
  done
  secs[$name]=$(printf '%s\n' "${times[@]}" | median)
  rss[$name]=$(printf '%s\n' "${peaks[@]}" | median)
  printf '  %-28s %8.2f s  %7.1f MB\n' "$name" "${secs[$name]}" "$(echo "${rss[$name]} / 1024" | bc -l)"
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); repeat=$repeat"

# --- 1. dispatch: JOBS trivial jobs on 2 workers, output captured --------------------
echo "dispatch: $jobs × 'sh -c true' on 2 workers"
cat > "$work/dispatch.yaml" << YAML
steps:
  - name: dispatch
    workers: 2
    for_each: {command: "seq $jobs"}
    run: "true"
YAML
half=$((jobs / 2))
seq "$jobs" > "$work/items"
seq 100 > "$work/items100"
seq 200 > "$work/items200"
echo 1 > "$work/one"
measure floor "(for i in \$(seq $half); do sh -c true; done) & (for i in \$(seq $half); do sh -c true; done); wait"
measure xargs "exec xargs -P2 -I{} sh -c true < $work/items > $work/x.out"
measure parallel "exec parallel -j2 true < $work/items > $work/p.out"
measure pcr "exec '$pcr' run --no-color $work/dispatch.yaml > $work/pcr.out"
echo "  ratios: pcr/xargs $(ratio "${secs[pcr]}" "${secs[xargs]}"), pcr/floor $(ratio "${secs[pcr]}" "${secs[floor]}"), parallel/xargs $(ratio "${secs[parallel]}" "${secs[xargs]}")"
d_pcr=${secs[pcr]} d_xargs=${secs[xargs]} d_floor=${secs[floor]} d_par=${secs[parallel]}

# --- 2a. output: GIB GiB from one job ---------------------------------------------------
echo "output: $gib GiB from one job, to /dev/null"
gen="yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c $bytes"
cat > "$work/big.yaml" << YAML
steps:
  - run: $gen
YAML
echo "$gen" > "$work/big.sh"
measure xargs-1g "exec xargs -I{} sh $work/big.sh < $work/one > /dev/null"
measure parallel-1g "exec parallel --group 'sh $work/big.sh' < $work/one > /dev/null"
measure pcr-1g "exec '$pcr' run --no-color $work/big.yaml > /dev/null"
echo "  ratios: pcr/xargs $(ratio "${secs[pcr-1g]}" "${secs[xargs-1g]}"), pcr/parallel $(ratio "${secs[pcr-1g]}" "${secs[parallel-1g]}")"

# --- 2b. output: 100 jobs × 10 MB of numbered lines, 4 at once, grouped ----------------
echo "output: 100 jobs × 10 MB of numbered lines, 4 at a time; torn or interleaved lines"
cat > "$work/lines.sh" << 'SH'
awk -v j="$1" 'BEGIN { for (i = 1; i <= 200000; i++) printf "job%03d line%07d ............................\n", j, i }'
SH
cat > "$work/lines.yaml" << YAML
steps:
  - workers: 4
    for_each: {command: "seq 100"}
    run: sh $work/lines.sh {items}
YAML
# A line is torn when it is not exactly one whole generated line; interleaved when a
# job's lines are not one contiguous block.
cat > "$work/check.awk" << 'AWK'
/^job[0-9][0-9][0-9] line[0-9][0-9][0-9][0-9][0-9][0-9][0-9] [.]+$/ && length($0) == 47 {
  j = substr($1, 4); if (j != last) { blocks[j]++; last = j } ; good++; next
}
/job[0-9][0-9][0-9]|line[0-9]|[.][.][.]/ { torn++ }
END { for (j in blocks) if (blocks[j] > 1) inter += blocks[j] - 1; printf "%d %d %d\n", good, torn + 0, inter + 0 }
AWK
measure xargs-lines "exec xargs -P4 -I{} sh $work/lines.sh {} < $work/items100 > $work/xl.out"
read -r xg xt xi < <(awk -f "$work/check.awk" "$work/xl.out")
measure parallel-lines "exec parallel -j4 --group sh $work/lines.sh {} < $work/items100 > $work/pl.out"
read -r pg pt pi < <(awk -f "$work/check.awk" "$work/pl.out")
measure pcr-lines "exec '$pcr' run --no-color $work/lines.yaml > $work/cl.out"
read -r cg ct ci < <(awk -f "$work/check.awk" "$work/cl.out")
echo "  whole lines / torn / extra blocks: xargs $xg/$xt/$xi, parallel $pg/$pt/$pi, pcr $cg/$ct/$ci"
echo "  ratios: pcr/xargs $(ratio "${secs[pcr-lines]}" "${secs[xargs-lines]}"), pcr/parallel $(ratio "${secs[pcr-lines]}" "${secs[parallel-lines]}")"

# --- 3. concurrency: own RSS with 200 jobs running --------------------------------------
echo "concurrency: 200 jobs of 'sleep 5' running at once (measured once: GNU parallel takes minutes to start 200 here)"
repeat=1
cat > "$work/conc.yaml" << YAML
steps:
  - workers: 200
    for_each: {command: "seq 200"}
    run: sleep 5
YAML
measure xargs-200 "exec xargs -P200 -I{} sleep 5 < $work/items200"
measure parallel-200 "exec parallel -j200 sleep 5 < $work/items200"
measure pcr-200 "exec '$pcr' run --no-color $work/conc.yaml > /dev/null"

cat << SUMMARY

summary (ratios < 1 mean pcr is faster or smaller)
  dispatch  pcr/xargs $(ratio "$d_pcr" "$d_xargs")   pcr/floor $(ratio "$d_pcr" "$d_floor")   pcr/parallel $(ratio "$d_pcr" "$d_par")
  1 GiB     pcr/xargs $(ratio "${secs[pcr-1g]}" "${secs[xargs-1g]}")   pcr RSS $(echo "${rss[pcr-1g]} / 1024" | bc -l | xargs printf '%.1f') MB   parallel RSS $(echo "${rss[parallel-1g]} / 1024" | bc -l | xargs printf '%.1f') MB
  100×10MB  pcr/xargs $(ratio "${secs[pcr-lines]}" "${secs[xargs-lines]}")   torn lines: pcr $ct, xargs $xt, parallel $pt   pcr RSS $(echo "${rss[pcr-lines]} / 1024" | bc -l | xargs printf '%.1f') MB
  200 jobs  pcr RSS $(echo "${rss[pcr-200]} / 1024" | bc -l | xargs printf '%.1f') MB   parallel RSS $(echo "${rss[parallel-200]} / 1024" | bc -l | xargs printf '%.1f') MB   xargs RSS $(echo "${rss[xargs-200]} / 1024" | bc -l | xargs printf '%.1f') MB
SUMMARY
