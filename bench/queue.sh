#!/usr/bin/env bash
# One queue for three CI machines (`pcr run --queue`), against static shards (`--shard
# I/3`), on a redis-server of its own (loopback, no persistence).
#   bench/queue.sh [PCR_BINARY]     (ITEMS=300)
# The "machines" are three `pcr run` processes here, 2 workers each. The items have mixed
# lengths (the last tenth take 0.5 s each, the rest 0.05 s), and the recorded timings are
# stale on purpose: recorded by a run where the first tenth were the long ones.
# 1. shards vs queue, nobody dies: the build's makespan (its slowest machine);
# 2. the queue with machine 3 killed (kill -9, all its processes) at half time: the
#    makespan of the two survivors, against the bound of the work left for their 4 workers;
# 3. the queue's own cost per item: ITEMS × `true` on one machine with --queue vs without.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
pcr=$(realpath "${1:-build/pcr}")
items=${ITEMS:-300}
command -v redis-server > /dev/null || { echo "redis-server is missing: apt-get install redis-server"; exit 1; }
work=$(mktemp -d)
port=$((30000 + RANDOM % 20000))
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no > "$work/redis.log" 2>&1 &
redis=$!
trap 'kill -9 $redis 2> /dev/null; pkill -9 -f "queue-machine qb-" 2> /dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do [ "$(redis-cli -p "$port" ping 2> /dev/null)" = PONG ] && break; sleep 0.1; done

list=$(seq -f 'i%03g' 1 "$items" | paste -sd, -)
# Item iNNN takes 0.5 s in the last tenth, else 0.05 s; STALE=1: the first tenth instead.
cat > "$work/ci.yaml" << YAML
steps:
  - name: tests
    workers: 2
    for_each: [$list]
    output: hide
    run: |
      n=\$(echo {items} | sed 's/^i0*//'); long=\$(( n > $items - $items / 10 ))
      [ "\${STALE:-0}" = 1 ] && long=\$(( n <= $items / 10 ))
      if [ \$long = 1 ]; then sleep 0.5; else sleep 0.05; fi
      echo {items} >> $work/done.log
YAML
work_s=$(echo "($items / 10) * 0.5 + ($items - $items / 10) * 0.05" | bc -l)
STALE=1 "$pcr" run --timings "$work/stale.json" "$work/ci.yaml" > /dev/null

now() { date +%s.%N; }
# Three machines in parallel, each with its own copy of the stale timings; $1: a name,
# then the flags. Prints the makespan (until the last machine ends).
three() {
  local name=$1 s e pids=()
  shift
  : > "$work/done.log"
  s=$(now)
  for m in 1 2 3; do
    cp "$work/stale.json" "$work/t$m.json"
    "$pcr" run --timings "$work/t$m.json" --queue-machine "qb-$name-$m" "${@//\{m\}/$m}" "$work/ci.yaml" \
      > "$work/$name-$m.out" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || true; done
  e=$(now)
  echo "$e - $s" | bc -l
}
# The makespan of a shard run is its slowest shard's; --shard needs no --queue-machine,
# so those flags go through a wrapper that drops them.
shard_run() {
  local s e pids=()
  : > "$work/done.log"
  s=$(now)
  for m in 1 2 3; do
    cp "$work/stale.json" "$work/t$m.json"
    "$pcr" run --timings "$work/t$m.json" --shard "$m/3" "$work/ci.yaml" > "$work/shard-$m.out" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || true; done
  e=$(now)
  echo "$e - $s" | bc -l
}

echo "machine: $(nproc) cores; $items items, $(printf '%.1f' "$work_s") s of work; 3 machines × 2 workers"
t_shard=$(shard_run)
t_queue=$(three q1 --queue "redis://127.0.0.1:$port/q1")
bound6=$(echo "$work_s / 6" | bc -l)
printf 'stale timings, nobody dies:   shards %.2f s   queue %.2f s   (queue/shards %.2f; bound %.2f s)\n' \
  "$t_shard" "$t_queue" "$(echo "$t_queue / $t_shard" | bc -l)" "$bound6"

# Machine 3 killed at half the bound: all its processes, as when the machine dies.
: > "$work/done.log"
s=$(now)
pids=()
for m in 1 2 3; do
  cp "$work/stale.json" "$work/t$m.json"
  "$pcr" run --timings "$work/t$m.json" --queue "redis://127.0.0.1:$port/q2" --queue-timeout 2s \
    --queue-machine "qb-kill-$m" "$work/ci.yaml" > "$work/kill-$m.out" 2>&1 &
  pids+=($!)
done
half=$(echo "$bound6 / 2" | bc -l)
sleep "$half"
t_kill=$(echo "$(now) - $s" | bc -l)
pkill -9 -f "queue-machine qb-kill-3" || true
for p in "${pids[@]:0:2}"; do wait "$p" || true; done
e=$(now)
"$pcr" clean "$work/ci.yaml" > /dev/null 2>&1 || true  # what the dead machine left
wait "${pids[2]}" 2> /dev/null || true
t_dead=$(echo "$e - $s" | bc -l)
# 6 workers until the kill, 4 after: T >= t_kill + (work - 6 t_kill) / 4.
bound_dead=$(echo "$t_kill + ($work_s - 6 * $t_kill) / 4" | bc -l)
done_items=$(sort -u "$work/done.log" | wc -l)
printf 'machine 3 killed at %.2f s:     survivors done at %.2f s, bound %.2f s (%.2f×); %d of %d items done\n' \
  "$t_kill" "$t_dead" "$bound_dead" "$(echo "$t_dead / $bound_dead" | bc -l)" "$done_items" "$items"
redis-cli -p "$port" keys 'pcr:q2:*' > /dev/null
"$pcr" report --queue "redis://127.0.0.1:$port/q2" --timeout 10s | head -1

# The queue's own cost: ITEMS × true on one machine, 2 workers, with and without --queue.
printf 'steps:\n  - workers: 2\n    for_each: {command: "seq %s"}\n    run: "true"\n    output: hide\n' "$items" \
  > "$work/fast.yaml"
t_local=() t_q=()
for r in 1 2 3; do
  s=$(now); "$pcr" run --timings "$work/f.json" "$work/fast.yaml" > /dev/null; t_local+=("$(echo "$(now) - $s" | bc -l)")
  s=$(now); "$pcr" run --timings "$work/f.json" --queue "redis://127.0.0.1:$port/f$r" "$work/fast.yaml" > /dev/null
  t_q+=("$(echo "$(now) - $s" | bc -l)")
done
tl=$(printf '%s\n' "${t_local[@]}" | median) tq=$(printf '%s\n' "${t_q[@]}" | median)
printf 'queue cost: %d × true on 2 workers: %.2f s local, %.2f s through the queue: %.2f ms per item\n' \
  "$items" "$tl" "$tq" "$(echo "($tq - $tl) * 1000 / $items" | bc -l)"
