#!/usr/bin/env bash
# pcr's output path against xargs (and GNU parallel), in the same run, as ratios:
#   bench/output.sh [PCR_BINARY]     (default: build/pcr; REPEAT=3, GIB=1)
# 1. one job printing GIB GiB, into a pipe read by `cat > /dev/null` (as a CI agent
#    collects a log), into /dev/null, into a file, and into the pipe with a secret defined;
# 2. 100 jobs × 10 MB of numbered lines, 4 at a time, grouped, into the pipe (torn lines
#    counted in a separate run into a file).
# `cat` in pcr's place (job | cat) is the floor of any tool that reads the output and
# passes it on; its ratio to xargs is what that one hop costs on this machine.
# Times are wall-clock medians of the whole pipeline; RSS is the largest of the tool's
# own processes (GNU time's %M: pcr's supervisor and engine, or xargs), in MB.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
pcr=$(realpath "${1:-build/pcr}")
repeat=${REPEAT:-3}
gib=${GIB:-1}
bytes=$((gib * 1024 * 1024 * 1024))
command -v parallel > /dev/null || { echo "GNU parallel is missing: apt-get install parallel"; exit 1; }
[ -x /usr/bin/time ] || { echo "GNU time is missing: apt-get install time"; exit 1; }
[ -x "$pcr" ] || { echo "no pcr binary at $pcr: run scripts/setup.sh"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LC_ALL=C
cd "$work"

# measure NAME INTO CMD: run CMD (its stdout into INTO: "pipe" or a path) REPEAT times;
# keep the median seconds and the median peak RSS.
declare -A secs rss
measure() {
  local name=$1 into=$2 cmd=$3 times=() peaks=()
  for ((i = 0; i < repeat; i++)); do
    local start end
    start=$(date +%s.%N)
    if [ "$into" = pipe ]; then
      /usr/bin/time -o time.out -f %M bash -c "exec $cmd" | cat > /dev/null
    else
      /usr/bin/time -o time.out -f %M bash -c "exec $cmd" > "$into"
    fi
    end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc -l)")
    peaks+=("$(tail -1 time.out)")
  done
  secs[$name]=$(printf '%s\n' "${times[@]}" | median)
  rss[$name]=$(printf '%s\n' "${peaks[@]}" | median)
  printf '  %-24s %8.2f s  %7.1f MB\n' "$name" "${secs[$name]}" "$(echo "${rss[$name]} / 1024" | bc -l)"
}

echo "machine: $(nproc) cores; repeat=$repeat; $gib GiB"
gen="yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c $bytes"
echo "$gen" > big.sh
echo 1 > one
printf 'steps:\n  - run: sh %s/big.sh\n' "$work" > big.yaml
printf 'secrets: [TOKEN]\nenv: {TOKEN: not-in-the-output-4242}\nsteps:\n  - run: sh %s/big.sh\n' "$work" > secret.yaml

echo "1 GiB from one job"
measure xargs-pipe pipe "xargs -I{} sh big.sh < one"
# The floor for any tool that reads a job's output and passes it on: `cat` in its place.
measure cat-pipe pipe "sh -c 'sh big.sh | cat'"
measure parallel-pipe pipe "parallel --group 'sh big.sh' < one"
measure pcr-pipe pipe "'$pcr' run --no-color big.yaml"
measure pcr-pipe-secret pipe "'$pcr' run --no-color secret.yaml"
# /dev/null: pcr knows nobody can read the output, and the job writes straight there.
measure xargs-null /dev/null "xargs -I{} sh big.sh < one"
measure cat-null /dev/null "sh -c 'sh big.sh | cat'"
measure pcr-null /dev/null "'$pcr' run --no-color big.yaml"
# A file (a CI agent's log): every byte passes through pcr.
measure xargs-file out.file "xargs -I{} sh big.sh < one"
measure cat-file out.file "sh -c 'sh big.sh | cat'"
measure pcr-file out.file "'$pcr' run --no-color big.yaml"
rm -f out.file

echo "100 jobs × 10 MB of numbered lines, 4 at a time"
cat > lines.sh << 'SH'
awk -v j="$1" 'BEGIN { for (i = 1; i <= 200000; i++) printf "job%03d line%07d ............................\n", j, i }'
SH
seq 100 > items100
printf 'steps:\n  - workers: 4\n    for_each: {command: "seq 100"}\n    run: sh %s/lines.sh {items}\n' "$work" > lines.yaml
measure xargs-lines pipe "xargs -P4 -I{} sh lines.sh {} < items100"
measure parallel-lines pipe "parallel -j4 --group sh lines.sh {} < items100"
measure pcr-lines pipe "'$pcr' run --no-color lines.yaml"
"$pcr" run --no-color lines.yaml > pcr-lines.out
torn=$(grep -Evc '^job[0-9]{3} line[0-9]{7} [.]{28}$' pcr-lines.out || true)
# pcr's own lines (step banner, job result lines, summary) are not job lines: count the
# job lines that are whole instead.
whole=$(grep -Ec '^job[0-9]{3} line[0-9]{7} [.]{28}$' pcr-lines.out || true)

cat << SUMMARY

                          pcr / xargs   pcr / parallel   target   pcr / cat   cat / xargs
  1 GiB into a pipe       $(ratio "${secs[pcr-pipe]}" "${secs[xargs-pipe]}")          $(ratio "${secs[pcr-pipe]}" "${secs[parallel-pipe]}")             ≤ 1.10     $(ratio "${secs[pcr-pipe]}" "${secs[cat-pipe]}")        $(ratio "${secs[cat-pipe]}" "${secs[xargs-pipe]}")
  1 GiB into /dev/null    $(ratio "${secs[pcr-null]}" "${secs[xargs-null]}")                           ≤ 1.5      $(ratio "${secs[pcr-null]}" "${secs[cat-null]}")        $(ratio "${secs[cat-null]}" "${secs[xargs-null]}")
  1 GiB into a file       $(ratio "${secs[pcr-file]}" "${secs[xargs-file]}")                                      $(ratio "${secs[pcr-file]}" "${secs[cat-file]}")        $(ratio "${secs[cat-file]}" "${secs[xargs-file]}")
  with a secret / without $(ratio "${secs[pcr-pipe-secret]}" "${secs[pcr-pipe]}")                           ≤ 1.25
  100 × 10 MB grouped     $(ratio "${secs[pcr-lines]}" "${secs[xargs-lines]}")          $(ratio "${secs[pcr-lines]}" "${secs[parallel-lines]}")             ≤ 1.0
  whole job lines in pcr's output: $whole of 20000000 (other lines: $torn, pcr's own)
  pcr RSS (MB): pipe $(echo "${rss[pcr-pipe]} / 1024" | bc -l | xargs printf '%.1f'), /dev/null $(echo "${rss[pcr-null]} / 1024" | bc -l | xargs printf '%.1f'), secret $(echo "${rss[pcr-pipe-secret]} / 1024" | bc -l | xargs printf '%.1f'), lines $(echo "${rss[pcr-lines]} / 1024" | bc -l | xargs printf '%.1f')   (target ≤ 10)
SUMMARY
