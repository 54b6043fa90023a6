#include <pcr/docker/scripts.hpp>

// The shell scripts pcr writes into a pipeline's `.pcr/` folder for compose: each one's
// contract is its usage line and the comment above it.

namespace pcr::docker {

// Takes a project down, retrying once when a network still has active endpoints (a
// container of another project was still detaching), and removes its record and its
// `{exec}` log when done. Where compose cannot (its file gone, moved or broken), what
// carries the project's label goes straight through docker.
extern const char* const k_down_script = R"SH(#!/bin/sh
# Written by pcr. usage: down.sh 'COMPOSE COMMAND' RECORD EXEC_LOG PROJECT [STOP_SECONDS]
for try in 1 2; do
  out=$(eval "$1 down -v --remove-orphans -t ${5:-10}" 2>&1)
  rc=$?
  [ -n "$out" ] && printf '%s\n' "$out"
  if [ $rc = 0 ]; then rm -f "$2" "$3" "${3%.log}".*.cid; exit 0; fi
  case "$out" in *'active endpoints'*) sleep 2 ;; *) break ;; esac
done
label="label=com.docker.compose.project=$4"
echo "pcr: compose could not take down $4: removing what carries its label"
ids=$(docker ps -aq --filter "$label") || exit $rc
[ -z "$ids" ] || docker rm -f -v $ids > /dev/null || exit $rc
nets=$(docker network ls -q --filter "$label") || exit $rc
[ -z "$nets" ] || docker network rm $nets > /dev/null || exit $rc
vols=$(docker volume ls -q --filter "$label") || exit $rc
[ -z "$vols" ] || docker volume rm $vols > /dev/null || exit $rc
rm -f "$2" "$3" "${3%.log}".*.cid
exit 0
)SH";

// Saves what a worker's cluster says, for a job or set-up that failed: every service's
// log (its last MAX_BYTES, with timestamps), `ps`, and each container's state (exit code,
// OOM-killed, health and its last probe outputs). A project with no container (never
// brought up) leaves nothing. pcr masks the files afterwards.
extern const char* const k_logs_script = R"SH(#!/bin/sh
# Written by pcr. usage: logs.sh 'COMPOSE COMMAND' DIR MAX_BYTES v1|v2
compose=$1 dir=$2 cap=$3 all=
[ "$4" = v2 ] && all=-a
ids=$(eval "$compose ps -q $all" 2>/dev/null)
[ -n "$ids" ] || exit 0
mkdir -p "$dir" || exit 1
eval "$compose ps $all" > "$dir/ps.txt" 2>&1
for s in $(eval "$compose config --services" 2>/dev/null); do
  eval "$compose logs --no-color --timestamps \"\$s\"" 2>&1 | tail -c "$cap" > "$dir/$s.log"
done
for id in $ids; do
  docker inspect --format '{{index .Config.Labels "com.docker.compose.service"}} {{.State.Status}} exit={{.State.ExitCode}} oom={{.State.OOMKilled}} health={{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} finished={{.State.FinishedAt}}' "$id"
  docker inspect --format '{{if .State.Health}}{{range .State.Health.Log}}{{if .Output}}{{printf "%q" .Output}}{{"\n"}}{{end}}{{end}}{{end}}' "$id" | grep -v '^$' | tail -n 2 | sed 's/^/  probe: /'
done > "$dir/state.txt" 2>&1
exit 0
)SH";

// What `{wait SERVICE...}` runs: waits until each service of the job's own project is
// ready — healthy where it has a healthcheck, running where it has none, exited 0 for a
// one-shot service — polling its container's state, as `up --wait` does in Compose v2
// (v1 has none). A service that exits non-zero, dies, is OOM-killed or turns unhealthy
// fails at once, naming it, with its state, last probe output and last log lines. The
// job's timeout bounds the wait; stopped by it, it says which service was not ready.
extern const char* const k_wait_script = R"SH(#!/bin/sh
# Written by pcr. usage: wait.sh 'COMPOSE COMMAND' PROJECT SERVICE...
compose=$1 project=$2
shift 2
service= state=
trap 'echo "pcr: {wait}: gave up waiting for $service (${state:-no container yet})" >&2; exit 143' TERM INT HUP
fail() {
  echo "pcr: {wait}: $1" >&2
  [ -n "$id" ] && docker inspect --format '{{if .State.Health}}{{range .State.Health.Log}}{{if .Output}}{{printf "%q" .Output}}{{"\n"}}{{end}}{{end}}{{end}}' "$id" 2>/dev/null |
    grep -v '^$' | tail -n 1 | sed 's/^/  last probe: /' >&2
  eval "$compose logs --no-color --tail 10 \"\$service\"" 2>&1 | sed 's/^/  | /' >&2
  exit 1
}
for service in "$@"; do
  said=
  while :; do
    # Found by its labels through docker: no compose start-up (a Python one, for v1) a poll.
    id=$(docker ps -a -q --filter "label=com.docker.compose.project=$project" \
      --filter "label=com.docker.compose.service=$service" 2>/dev/null | head -n 1)
    if [ -n "$id" ]; then
      state=$(docker inspect --format '{{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id" 2>/dev/null)
      read -r status code oom health <<EOF
$state
EOF
      [ "$oom" = true ] && fail "$service was OOM-killed (exit code $code)"
      case "$status:$health" in
        running:none|running:healthy) echo "pcr: {wait}: $service is ready"; break ;;
        exited:*) [ "$code" = 0 ] && { echo "pcr: {wait}: $service finished"; break; }
                  fail "$service exited with code $code" ;;
        dead:*) fail "$service is dead (exit code $code)" ;;
        *:unhealthy) fail "$service is unhealthy" ;;
      esac
    fi
    [ -n "$said" ] || { echo "pcr: {wait}: waiting for $service"; said=1; }
    sleep 0.3
  done
done
exit 0
)SH";

// What `{exec SERVICE}` runs: the command in the service through `compose exec -T`, with
// the pid it gets inside the container written to a file there. Killing the `docker exec`
// client (what stopping the job's process group does) leaves that process running inside
// the container, so the wrapper logs each command it starts ("start PIDFILE SERVICE") and
// each that ended by itself ("end PIDFILE") in LOG, and pcr stops the others inside their
// container once the job has ended (k_exec_stop_script), whatever the job's kill_grace,
// before the worker's next job. Needs `sh` in the container.
extern const char* const k_exec_script = R"SH(#!/bin/sh
# Written by pcr. usage: exec.sh 'COMPOSE COMMAND' SERVICE LOG|- COMMAND [ARG...]
# Runs COMMAND in SERVICE; pcr stops it there if this job ends before it does.
compose=$1 service=$2 log=$3
shift 3
pidfile="/tmp/.pcr-exec-$$-$(date +%s)"
shm="/dev/shm/${pidfile##*/}"
# Not logged, it could not be stopped if the job ended first: then it does not start.
if [ "$log" != - ] && ! printf 'start %s %s\n' "$pidfile" "$service" >> "$log"; then
  echo "pcr: cannot log the command in $log, so could not stop it: not started" >&2
  exit 125
fi
# Inside, its pid goes to /tmp, or to /dev/shm where /tmp cannot be written (a read-only
# container); where neither can, it does not start, for the same reason.
inner="mkdir -p /tmp 2>/dev/null; { echo \$\$ > $pidfile || echo \$\$ > $shm; } 2>/dev/null || { echo \"pcr: cannot write the pid of the command in the container (/tmp and /dev/shm), so could not stop it: not started\" >&2; exit 125; }; exec \"\$@\""
# The service's container, found once per worker and kept beside LOG: `docker exec`
# starts in a tenth of the time `compose exec` takes (a Python start-up, for v1).
via="$compose exec -T \"\$service\"" cid= cache=
if [ "$log" != - ]; then
  cache="${log%.log}.$service.cid"
  cid=$(cat "$cache" 2>/dev/null)
  if [ -z "$cid" ]; then
    project=${log##*/}
    cid=$(docker ps -q --no-trunc --filter "label=com.docker.compose.project=${project%.log}" \
      --filter "label=com.docker.compose.service=$service" 2>/dev/null | head -n 1)
    [ -n "$cid" ] && printf '%s\n' "$cid" > "$cache"
  fi
  [ -n "$cid" ] && via="docker exec \"\$cid\""
fi
eval "$via sh -c \"\$inner\" sh \"\$@\"" &
client=$!
stop() {
  trap '' TERM INT HUP
  # LOG "-" (the C++ helper, no pcr to do it afterwards): stop it inside the container
  # now, within the job's kill_grace.
  [ "$log" = - ] && eval "$compose exec -T \"\$service\" sh -c 'tree() { for c in \$(cat /proc/\$1/task/*/children 2>/dev/null); do tree \$c; done; echo \$1; }
    kill -TERM \$(tree \$(cat $pidfile $shm 2>/dev/null)) 2>/dev/null; rm -f $pidfile $shm'" > /dev/null 2>&1
  kill -TERM "$client" 2> /dev/null
  exit 143
}
trap stop TERM INT HUP
wait "$client"
rc=$?
# A container gone since it was found (recreated): nothing ran there; through compose.
if [ -n "$cid" ] && [ $rc -ne 0 ] && ! docker inspect --format . "$cid" > /dev/null 2>&1; then
  rm -f "$cache"
  eval "$compose exec -T \"\$service\" sh -c \"\$inner\" sh \"\$@\"" &
  client=$!
  wait "$client"
  rc=$?
fi
[ "$log" = - ] || printf 'end %s\n' "$pidfile" >> "$log"
exit $rc
)SH";

// Run by pcr after a job of a worker that used `{exec SERVICE}`: every command of LOG
// that did not end by itself is stopped inside its container with its whole process tree
// (found through /proc before any is signalled: a killed parent's children would be
// handed to the container's init; TERM, KILL 2 s later) and its pid file removed; LOG is
// emptied. Exits non-zero when one could not be reached.
extern const char* const k_exec_stop_script = R"SH(#!/bin/sh
# Written by pcr. usage: exec-stop.sh 'COMPOSE COMMAND' LOG
compose=$1 log=$2
rc=0
for entry in $(awk '$1 == "start" { s[$2] = $3 } $1 == "end" { delete s[$2] }
                    END { for (p in s) print p "=" s[p] }' "$log"); do
  pidfile=${entry%%=*} service=${entry#*=}
  shm="/dev/shm/${pidfile##*/}"  # where a read-only container keeps it
  # The pid file may still be on its way (the job ended as the command started).
  eval "$compose exec -T \"\$service\" sh -c 'i=0; while [ ! -s $pidfile ] && [ ! -s $shm ] && [ \$i -lt 20 ]; do sleep 0.1; i=\$((i+1)); done
    p=\$(cat $pidfile $shm 2>/dev/null); [ -n \"\$p\" ] || exit 0
    tree() { for c in \$(cat /proc/\$1/task/*/children 2>/dev/null); do tree \$c; done; echo \$1; }
    all=\$(tree \$p)
    alive() { for q in \$all; do kill -0 \$q 2>/dev/null && return 0; done; return 1; }
    kill -TERM \$all 2>/dev/null; i=0
    while alive && [ \$i -lt 20 ]; do sleep 0.1; i=\$((i+1)); done
    kill -KILL \$all 2>/dev/null; rm -f $pidfile $shm; exit 0'" || { echo "could not reach $service to stop its command"; rc=1; }
done
: > "$log"
exit $rc
)SH";

}  // namespace pcr::docker
