#!/usr/bin/env bash
# A newcomer's first command on a fresh Debian 12, checked for real: a minimal Debian
# (debootstrap --variant=minbase, imported into the local Docker engine once as
# pcr-fresh-debian:12) runs `scripts/setup.sh && scripts/example.sh` on a copy of this
# checkout. The container is unprivileged, so Docker cannot run inside it: setup.sh must
# install everything pcr needs from Debian and build, and example.sh must say why the
# compose example cannot run and run one that passes — exit 0.
#   tests/fresh/check.sh      (root, a Docker engine, network to deb.debian.org; ~10 min)
# Not part of the suite (it downloads and builds everything): run it when setup.sh or
# example.sh change.
set -euo pipefail
cd "$(dirname "$0")/../.."
image=pcr-fresh-debian:12
if ! docker image inspect "$image" > /dev/null 2>&1; then
  command -v debootstrap > /dev/null || { echo "fresh: debootstrap is missing (scripts/setup.sh installs it)"; exit 1; }
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  echo "fresh: making a minimal Debian 12 with debootstrap (~1 min)"
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian > /dev/null
  tar -C "$root" -c . | docker import - "$image" > /dev/null
fi
src=$(pwd)
log=$(mktemp)
echo "fresh: scripts/setup.sh && scripts/example.sh in a fresh $image (output: $log)"
set +e
docker run --rm --network host -v "$src:/src:ro" "$image" sh -c '
  set -e
  cp -a /src /pcr && cd /pcr && rm -rf build build-* .pcr
  apt-get update -qq > /dev/null && apt-get install -y -qq bash > /dev/null
  scripts/setup.sh > /tmp/setup.log 2>&1 || { tail -30 /tmp/setup.log; exit 1; }
  scripts/example.sh' > "$log" 2>&1
code=$?
set -e
tail -15 "$log"
if [ "$code" -ne 0 ]; then echo "fresh: FAILED (exit $code)"; exit 1; fi
grep -q "example: not running the compose example:" "$log" || { echo "fresh: FAILED: the fallback was not said"; exit 1; }
grep -q "PASSED" "$log" || { echo "fresh: FAILED: the example did not pass"; exit 1; }
echo "fresh: passed — setup.sh built pcr on a fresh Debian 12 and the first example exited 0"
