#!/usr/bin/env bash
# pcr's output path against xargs (and GNU parallel), in the same run, as ratios:
#   bench/output.sh [PCR_BINARY]     (default: build/pcr; REPEAT=9, GIB=1)
# 1. one job printing GIB GiB, into a pipe read by `cat > /dev/null` (as a CI agent
#    collects a log), into /dev/null, into a file, and into the pipe with a secret defined;
# 2. 100 jobs × 10 MB of numbered lines, 4 at a time, grouped, into the pipe (torn lines
#    counted in a separate run into a file).
# `cat` in pcr's place (job | cat) is the floor of any tool that reads the output and
# passes it on; its ratio to xargs is what that one hop costs on this machine.
# Times are wall-clock medians of the whole pipeline, the cases of a group run in turn;
# ratios are medians of each round's ratio (a slow spell of the machine divides out); RSS
# is the largest of the tool's own processes (GNU time's %M: pcr's supervisor and engine,
# or xargs), in MB.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
pcr=$(realpath "${1:-build/pcr}")
repeat=${REPEAT:-9}
gib=${GIB:-1}
bytes=$((gib * 1024 * 1024 * 1024))
command -v parallel > /dev/null || { echo "GNU parallel is missing: apt-get install parallel"; exit 1; }
[ -x /usr/bin/time ] || { echo "GNU time is missing: apt-get install time"; exit 1; }
[ -x "$pcr" ] || { echo "no pcr binary at $pcr: run scripts/setup.sh"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LC_ALL=C
cd "$work"

# once NAME INTO CMD: run CMD once (its stdout into INTO: "pipe" or a path); add its
# seconds and peak RSS to NAME's.
declare -A times peaks secs rss
once() {
  local name=$1 into=$2 cmd=$3 start end
  start=$(date +%s.%N)
  if [ "$into" = pipe ]; then
    /usr/bin/time -o time.out -f %M bash -c "exec $cmd" | cat > /dev/null
  else
    /usr/bin/time -o time.out -f %M bash -c "exec $cmd" > "$into"
  fi
  end=$(date +%s.%N)
  times[$name]+="$(echo "$end - $start" | bc -l) "
  peaks[$name]+="$(tail -1 time.out) "
}

# rounds "NAME INTO CMD" ...: REPEAT rounds, each running every case once, in turn: a
# slow minute of the machine then slows every tool alike, not just the one measured in
# it. Keeps each case's median seconds and median peak RSS, and prints them.
rounds() {
  local case name into cmd
  for ((r = 0; r < repeat; r++)); do
    for case in "$@"; do
      IFS=$'\t' read -r name into cmd <<< "$case"
      once "$name" "$into" "$cmd"
    done
  done
  for case in "$@"; do
    name=${case%%$'\t'*}
    secs[$name]=$(printf '%s\n' ${times[$name]} | median)
    rss[$name]=$(printf '%s\n' ${peaks[$name]} | median)
    printf '  %-24s %8.2f s  %7.1f MB\n' "$name" "${secs[$name]}" "$(echo "${rss[$name]} / 1024" | bc -l)"
  done
}
t=$'\t'

echo "machine: $(nproc) cores; repeat=$repeat; $gib GiB"
gen="yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c $bytes"
echo "$gen" > big.sh
echo 1 > one
printf 'steps:\n  - run: sh %s/big.sh\n' "$work" > big.yaml
printf 'secrets: [TOKEN]\nenv: {TOKEN: not-in-the-output-4242}\nsteps:\n  - run: sh %s/big.sh\n' "$work" > secret.yaml

echo "1 GiB from one job"
# The floor for any tool that reads a job's output and passes it on: `cat` in its place.
# /dev/null: pcr knows nobody can read the output, and the job writes straight there.
# A file (a CI agent's log): every byte passes through pcr.
rounds "xargs-pipe${t}pipe${t}xargs -I{} sh big.sh < one" \
  "cat-pipe${t}pipe${t}sh -c 'sh big.sh | cat'" \
  "parallel-pipe${t}pipe${t}parallel --group 'sh big.sh' < one" \
  "pcr-pipe${t}pipe${t}'$pcr' run --no-color big.yaml" \
  "pcr-pipe-secret${t}pipe${t}'$pcr' run --no-color secret.yaml"
rounds "xargs-null${t}/dev/null${t}xargs -I{} sh big.sh < one" \
  "cat-null${t}/dev/null${t}sh -c 'sh big.sh | cat'" \
  "pcr-null${t}/dev/null${t}'$pcr' run --no-color big.yaml"
rounds "xargs-file${t}out.file${t}xargs -I{} sh big.sh < one" \
  "cat-file${t}out.file${t}sh -c 'sh big.sh | cat'" \
  "pcr-file${t}out.file${t}'$pcr' run --no-color big.yaml"
rm -f out.file

echo "100 jobs × 10 MB of numbered lines, 4 at a time"
cat > lines.sh << 'SH'
awk -v j="$1" 'BEGIN { for (i = 1; i <= 200000; i++) printf "job%03d line%07d ............................\n", j, i }'
SH
seq 100 > items100
printf 'steps:\n  - workers: 4\n    for_each: {command: "seq 100"}\n    run: sh %s/lines.sh {items}\n' "$work" > lines.yaml
rounds "xargs-lines${t}pipe${t}xargs -P4 -I{} sh lines.sh {} < items100" \
  "parallel-lines${t}pipe${t}parallel -j4 --group sh lines.sh {} < items100" \
  "pcr-lines${t}pipe${t}'$pcr' run --no-color lines.yaml"
"$pcr" run --no-color lines.yaml > pcr-lines.out
torn=$(grep -Evc '^job[0-9]{3} line[0-9]{7} [.]{28}$' pcr-lines.out || true)
# pcr's own lines (step banner, job result lines, summary) are not job lines: count the
# job lines that are whole instead.
whole=$(grep -Ec '^job[0-9]{3} line[0-9]{7} [.]{28}$' pcr-lines.out || true)

# pr A B: A / B, the median of the rounds' ratios.
pr() { paired_ratio "${times[$1]}" "${times[$2]}"; }

cat << SUMMARY

                          pcr / xargs   pcr / parallel   target   pcr / cat   cat / xargs
  1 GiB into a pipe       $(pr pcr-pipe xargs-pipe)          $(pr pcr-pipe parallel-pipe)             ≤ 1.10     $(pr pcr-pipe cat-pipe)        $(pr cat-pipe xargs-pipe)
  1 GiB into /dev/null    $(pr pcr-null xargs-null)                           ≤ 1.5      $(pr pcr-null cat-null)        $(pr cat-null xargs-null)
  1 GiB into a file       $(pr pcr-file xargs-file)                                      $(pr pcr-file cat-file)        $(pr cat-file xargs-file)
  with a secret / without $(pr pcr-pipe-secret pcr-pipe)                           ≤ 1.25
  100 × 10 MB grouped     $(pr pcr-lines xargs-lines)          $(pr pcr-lines parallel-lines)             ≤ 1.0
  whole job lines in pcr's output: $whole of 20000000 (other lines: $torn, pcr's own)
  pcr RSS (MB): pipe $(echo "${rss[pcr-pipe]} / 1024" | bc -l | xargs printf '%.1f'), /dev/null $(echo "${rss[pcr-null]} / 1024" | bc -l | xargs printf '%.1f'), secret $(echo "${rss[pcr-pipe-secret]} / 1024" | bc -l | xargs printf '%.1f'), lines $(echo "${rss[pcr-lines]} / 1024" | bc -l | xargs printf '%.1f')   (target ≤ 10)
SUMMARY
