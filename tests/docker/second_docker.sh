#!/usr/bin/env bash
# A second Docker engine on this machine, for the tests of `hosts:`: its own socket, data
# root, exec root, pid file and address pool, and no default bridge (compose makes its
# own networks), so that it shares nothing with the first engine but the kernel. It
# leaves iptables to the first engine: two engines rewriting the FORWARD chain at once
# make each other's network creation fail ("unable to remove jump to
# DOCKER-ISOLATION-STAGE-1 rule"). One rule in DOCKER-USER (the chain Docker leaves to
# users) lets its containers talk within its own address pool.
#   tests/docker/second_docker.sh start   start it (if needed) and wait until it answers
#   tests/docker/second_docker.sh stop    stop it (SIGTERM, as a host going away) and wait
#   tests/docker/second_docker.sh kill    SIGKILL it (a host that dies)
# Prints the DOCKER_HOST value on start.
set -euo pipefail
name=${PCR_SECOND_DOCKER:-pcr-docker2}
sock=/var/run/$name.sock
pidfile=/var/run/$name.pid
host=unix://$sock
pool=10.213.0.0/16
alive() { [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f1)" != Z ]; }
answers() { DOCKER_HOST=$host docker info > /dev/null 2>&1; }
pid() { [ -f "$pidfile" ] && cat "$pidfile" || echo 0; }

case "${1:-}" in
  start)
    if ! answers; then
      if [ -f "$pidfile" ] && ! alive "$(pid)"; then rm -f "$pidfile"; fi
      if [ ! -f "$pidfile" ]; then
        mkdir -p "/var/lib/$name" "/var/run/$name"
        (setsid nohup dockerd --host "$host" --data-root "/var/lib/$name" --exec-root "/var/run/$name" \
          --pidfile "$pidfile" --bridge none --default-address-pool "base=$pool,size=24" \
          --iptables=false --ip-masq=false > "/tmp/$name.log" 2>&1 &)
      fi
      for _ in $(seq 120); do answers && break; sleep 0.5; done
      answers || { echo "second_docker: $name did not answer in 60 s"; tail -20 "/tmp/$name.log"; exit 1; }
    fi
    iptables -N DOCKER-USER 2> /dev/null || true
    iptables -C DOCKER-USER -s "$pool" -d "$pool" -j ACCEPT 2> /dev/null ||
      iptables -I DOCKER-USER -s "$pool" -d "$pool" -j ACCEPT
    echo "$host"
    ;;
  stop|kill)
    p=$(pid)
    if [ "$p" != 0 ] && alive "$p"; then
      kill "-$([ "$1" = kill ] && echo KILL || echo TERM)" "$p"
      for _ in $(seq 120); do alive "$p" || break; sleep 0.5; done
    fi
    [ "$1" = kill ] && rm -f "$pidfile"
    ! answers
    ;;
  *)
    echo "usage: $0 start|stop|kill" >&2
    exit 2
    ;;
esac
