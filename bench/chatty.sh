#!/usr/bin/env bash
# A chatty suite: 16 jobs × 1,500 lines (a /bin/true and an echo per line, as a test
# suite prints a line per test) on 2 workers, output into a file and into a pipe.
#   bench/chatty.sh [PCR_BINARY]     (default: build/pcr; ROUNDS=7)
# 1. pcr's own read + write + epoll_wait calls per job line, counted with strace (one
#    process: PCR_SUPERVISOR=0; the jobs are not traced);
# 2. wall time against xargs -P 2 and GNU parallel, interleaved rounds, as the median of
#    each round's ratio; every job line checked whole in pcr's output.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
pcr=$(realpath "${1:-build/pcr}")
rounds=${ROUNDS:-7}
command -v parallel > /dev/null || { echo "GNU parallel is missing: apt-get install parallel"; exit 1; }
command -v strace > /dev/null || { echo "strace is missing: apt-get install strace"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/job.sh" << 'SH'
i=0
while [ $i -lt 1500 ]; do /bin/true; echo "ok $i - test $i of job $1"; i=$((i + 1)); done
SH
cat > "$work/ci.yaml" << YAML
steps:
  - name: chatty
    workers: 2
    for_each: [$(seq -s, 1 16)]
    run: sh $work/job.sh {items}
YAML
lines=$((16 * 1500))

PCR_SUPERVISOR=0 strace -c -o "$work/strace.txt" "$pcr" run --no-color "$work/ci.yaml" > "$work/out.txt"
calls=$(awk '$NF == "read" || $NF == "write" || $NF == "epoll_wait" || $NF == "pwrite64" { s += $4 } END { print s + 0 }' \
  "$work/strace.txt")
whole=$(grep -c '^ok [0-9]* - test [0-9]* of job [0-9]*$' "$work/out.txt" || true)
printf 'pcr calls (read+write+epoll_wait) per job line: %.3f (%d calls, %d lines; %d of them whole in the output)\n' \
  "$(echo "$calls / $lines" | bc -l)" "$calls" "$lines" "$whole"

t_pcr="" t_xargs="" t_parallel="" t_pcr_pipe="" t_xargs_pipe=""
timed() { local s e; s=$(date +%s.%N); "$@"; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
for ((r = 0; r < rounds; r++)); do
  t_pcr+=" $(timed sh -c "'$pcr' run --no-color '$work/ci.yaml' > '$work/pcr.out'")"
  t_xargs+=" $(timed sh -c "seq 1 16 | xargs -P 2 -I{} sh '$work/job.sh' {} > '$work/xargs.out'")"
  t_parallel+=" $(timed sh -c "seq 1 16 | parallel -j 2 sh '$work/job.sh' {} > '$work/parallel.out'")"
  t_pcr_pipe+=" $(timed sh -c "'$pcr' run --no-color '$work/ci.yaml' | cat > /dev/null")"
  t_xargs_pipe+=" $(timed sh -c "seq 1 16 | xargs -P 2 -I{} sh '$work/job.sh' {} | cat > /dev/null")"
done
[ "$(grep -c '^ok ' "$work/pcr.out")" = "$lines" ] || { echo "pcr lost lines"; exit 1; }
printf 'into a file: pcr %.2f s, xargs %.2f s, parallel %.2f s (medians of %d); pcr/xargs %s, pcr/parallel %s\n' \
  "$(printf '%s\n' $t_pcr | median)" "$(printf '%s\n' $t_xargs | median)" "$(printf '%s\n' $t_parallel | median)" \
  "$rounds" "$(paired_ratio "$t_pcr" "$t_xargs")" "$(paired_ratio "$t_pcr" "$t_parallel")"
printf 'into a pipe: pcr %.2f s, xargs %.2f s; pcr/xargs %s\n' \
  "$(printf '%s\n' $t_pcr_pipe | median)" "$(printf '%s\n' $t_xargs_pipe | median)" \
  "$(paired_ratio "$t_pcr_pipe" "$t_xargs_pipe")"
